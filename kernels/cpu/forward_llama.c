/*
 * forward_llama.c — one forward step of the Llama family (Llama 1/2/3, Mistral, Qwen2, Qwen3) over a
 * batch of sequences, on the CPU. Read it top to bottom: hearth_forward_llama is the whole model; the
 * functions above it are the parallel pieces it is made of.
 *
 * Shapes: T = tokens in the batch, D = dim, H = n_heads, KVH = n_kv_heads, hd = head_dim,
 * F = hidden_dim (FFN), V = vocab. The batch is flat: every matmul runs over all T tokens at once, so a
 * prefill of 500 tokens and 15 decodes are one pass over the weights.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "quant.h"

/* ---------------------------------------------------------------------------------------------------- */
/* Matmuls: up to three weights over the same input in one parallel region (q|k|v, gate|up), split    */
/* into row ranges so every thread streams its own part of the weights.                                 */

/* Bytes of one row of a weight. */
static size_t row_bytes(const hearth_weight* w) {
  if (hearth_dtype_is_quantized(w->dtype)) return (size_t)hearth_quant_row_bytes(w->dtype, w->cols);
  return (size_t)w->cols * (w->dtype == HEARTH_DTYPE_F32 ? 4 : 2);
}

typedef struct {
  const hearth_cpu_ops* ops;
  const float* x; /* (T, k) */
  int64_t T, k;
  int32_t n_targets;
  const hearth_weight* w[3]; /* each (rows, k) */
  float* y[3];               /* each (T, rows) */
  const void* x_act[3];      /* x quantized for w[i]'s dot products, when w[i] is quantized */
  int64_t rows_per_task[3];
  int32_t first_task[4]; /* tasks of target i are [first_task[i], first_task[i + 1]) */
} matmul_job;

/* The rows of task `task`: its target i, rows [r0, r0 + n) of j->w[i], and where they start in the
   weight's bytes (its packed layout when it has one: r0 is a multiple of the panel, so the slice starts
   where row r0 would). Returns 0 past the last task. */
typedef struct {
  int32_t i;
  int64_t r0, n;
  const uint8_t* bytes;
} task_slice;

static int slice_of(const matmul_job* j, int32_t task, task_slice* s) {
  if (task >= j->first_task[j->n_targets]) return 0;
  s->i = 0;
  while (task >= j->first_task[s->i + 1]) s->i++;
  const hearth_weight* w = j->w[s->i];
  const int64_t per = j->rows_per_task[s->i];
  s->r0 = (int64_t)(task - j->first_task[s->i]) * per;
  s->n = w->rows - s->r0 < per ? w->rows - s->r0 : per;
  s->bytes = (const uint8_t*)(w->packed ? w->packed : w->data) + (size_t)s->r0 * row_bytes(w);
  return 1;
}

/* Rows [s->r0, s->r0 + s->n) of target s->i, from s->bytes. */
static void matmul_slice(const matmul_job* j, const task_slice* s) {
  const hearth_weight* w = j->w[s->i];
  float* y = j->y[s->i] + s->r0;
  if (w->packed && j->x_act[s->i])
    hearth_quant_matmul_packed(y, w->rows, s->bytes, w->dtype, j->x_act[s->i], j->T, s->n, j->k);
  else if (w->packed) j->ops->matmul_packed(y, w->rows, s->bytes, w->dtype, j->x, j->T, s->n, j->k);
  else if (j->x_act[s->i]) hearth_quant_matmul(y, w->rows, s->bytes, w->dtype, j->x_act[s->i], j->T, s->n, j->k);
  else if (j->T == 1) j->ops->matvec(y, s->bytes, w->dtype, j->x, s->n, j->k);
  else j->ops->matmul(y, w->rows, s->bytes, w->dtype, j->x, j->T, s->n, j->k);
}

static void matmul_task(void* arg, int32_t task, int32_t thread) {
  (void)thread;
  const matmul_job* j = (const matmul_job*)arg;
  task_slice s;
  if (!slice_of(j, task, &s)) return; /* never: the loop has exactly first_task[n_targets] tasks */
  matmul_slice(j, &s);
}

/* The gate and up products of one row range, then hb = silu(gate) * up on it: SwiGLU in the task that
   made its inputs, while they are in this core's cache, instead of a pass of its own over (T, F) after
   the loop (the same ops on the same values, so the same bits). Tasks cover the gate's rows; target 1
   (up) has the same rows and row split. */
static void gate_up_task(void* arg, int32_t task, int32_t thread) {
  (void)thread;
  const matmul_job* j = (const matmul_job*)arg;
  task_slice gate, up;
  if (!slice_of(j, task, &gate)) return;
  up = gate;
  up.i = 1;
  up.bytes = (const uint8_t*)(j->w[1]->packed ? j->w[1]->packed : j->w[1]->data) + (size_t)up.r0 * row_bytes(j->w[1]);
  matmul_slice(j, &gate);
  matmul_slice(j, &up);
  const int64_t F = j->w[0]->rows;
  for (int64_t t = 0; t < j->T; t++)
    j->ops->silu_mul(j->y[0] + t * F + gate.r0, j->y[1] + t * F + gate.r0, gate.n);
}

typedef struct {
  int32_t w_dtype;
  const float* x; /* (T, k) */
  int64_t T, k, tokens_per_task;
  void* out; /* T rows of hearth_quant_act_bytes(w_dtype, 1, k) */
} quant_act_job;

static void quant_act_task(void* arg, int32_t task, int32_t thread) {
  (void)thread;
  quant_act_job* j = (quant_act_job*)arg;
  const int64_t t0 = task * j->tokens_per_task, n = j->T - t0 < j->tokens_per_task ? j->T - t0 : j->tokens_per_task;
  hearth_quant_act(j->w_dtype, j->x + t0 * j->k, n, j->k,
                   (uint8_t*)j->out + (size_t)t0 * hearth_quant_act_bytes(j->w_dtype, 1, j->k));
}

/* out = x (T, k) quantized for weights of w_dtype: on this thread for a few tokens, else split over the
   pool (a prefill's activations are a few hundred KB to quantize, worth a parallel region). */
static void quant_act(hearth_context* ctx, int32_t w_dtype, const float* x, int64_t T, int64_t k, void* out) {
  const int32_t threads = hearth_pool_threads(ctx->pool);
  if (T < 16 || threads == 1) {
    hearth_quant_act(w_dtype, x, T, k, out);
    return;
  }
  quant_act_job j = {.w_dtype = w_dtype, .x = x, .T = T, .k = k, .out = out};
  j.tokens_per_task = (T + threads * 2 - 1) / (threads * 2);
  hearth_pool_run(ctx->pool, quant_act_task, &j, (int32_t)((T + j.tokens_per_task - 1) / j.tokens_per_task));
}

/* y_i = x @ w_i^T for each of the n weights given (the others NULL). Quantized weights take x quantized
   once per activation format (Q8_0 blocks for the 32-element types, Q8_K for the K-quants). swiglu: w0 and
   w1 are the gate and up weights (both (F, D), as the model's description checks, so they split alike), and
   y0 becomes silu(y0) * y1 in the tasks that make them (gate_up_task). */
static void matmul_run(hearth_context* ctx, const float* x, int64_t T, const hearth_weight* w0, float* y0,
                       const hearth_weight* w1, float* y1, const hearth_weight* w2, float* y2, int swiglu) {
  matmul_job j = {.ops = ctx->ops, .x = x, .T = T, .k = w0->cols};
  const hearth_weight* ws[3] = {w0, w1, w2};
  float* ys[3] = {y0, y1, y2};
  int32_t threads = hearth_pool_threads(ctx->pool);
  const void* act_q8_0 = NULL;
  const void* act_q8_k = NULL;
  j.first_task[0] = 0;
  for (int i = 0; i < 3 && ws[i]; i++) {
    j.w[i] = ws[i];
    j.y[i] = ys[i];
    if (hearth_dtype_is_quantized(ws[i]->dtype)) {
      const void** act = hearth_dtype_is_k_quant(ws[i]->dtype) ? &act_q8_k : &act_q8_0;
      if (!*act) {
        void* buf = hearth_dtype_is_k_quant(ws[i]->dtype) ? ctx->act_q8_k : ctx->act_q8_0;
        quant_act(ctx, ws[i]->dtype, x, T, j.k, buf);
        *act = buf;
      }
      j.x_act[i] = *act;
    }
    /* About 8 tasks per thread per weight: enough to balance, few enough to keep rows contiguous. */
    int64_t per = (ws[i]->rows + threads * 8 - 1) / (threads * 8);
    if (per < 16) per = 16;
    per = (per + HEARTH_QUANT_PANEL - 1) / HEARTH_QUANT_PANEL * HEARTH_QUANT_PANEL; /* whole panels (and 4-row tiles) */
    j.rows_per_task[i] = per;
    j.first_task[i + 1] = j.first_task[i] + (int32_t)((ws[i]->rows + per - 1) / per);
    j.n_targets = i + 1;
  }
  /* Each thread streams one contiguous range of tasks, then helps at the ends of the others. Tasks dealt
     out in turn from one counter began a new stream at every task and moved the counter's cache line
     between cores at every claim. Paired in one process on 2 Zen 3 threads, one decode: Q8_0 x1.08 and
     x1.09, Q4_0 x1.03, F16 x1.02, Q4_K x1.01; Q8_0 16 decodes x1.04, 4 decodes and a 512-token prefill
     within the noise. (Each decode task also prefetched the head of the task its thread would take next;
     in a range those are the rows right after its own, which the stream reaches anyway: without it Q8_0
     x1.022 and x1.006, F16 x1.029, Q4_0 x1.040.) */
  if (swiglu) hearth_pool_run_ranged(ctx->pool, gate_up_task, &j, j.first_task[1]);
  else hearth_pool_run_ranged(ctx->pool, matmul_task, &j, j.first_task[j.n_targets]);
}

static void matmul(hearth_context* ctx, const float* x, int64_t T, const hearth_weight* w0, float* y0,
                   const hearth_weight* w1, float* y1, const hearth_weight* w2, float* y2) {
  matmul_run(ctx, x, T, w0, y0, w1, y1, w2, y2, 0);
}

/* ---------------------------------------------------------------------------------------------------- */
/* Per-token pieces.                                                                                      */

static void rmsnorm(float* out, const float* x, const float* w, int64_t n, float eps) {
  double ss = 0; /* a double sum: the mean of squares of a long row should not depend on summation order */
  for (int64_t i = 0; i < n; i++) ss += (double)x[i] * x[i];
  float scale = 1.0f / sqrtf((float)(ss / (double)n) + eps);
  for (int64_t i = 0; i < n; i++) out[i] = w[i] * (x[i] * scale);
}

/* Rotates pairs of one head by the token's angles. HALF pairs (i, i + hd/2); INTERLEAVED pairs (2i, 2i+1). */
static void rope(float* v, const float* cos_t, const float* sin_t, int32_t hd, int32_t style) {
  int32_t half = hd / 2;
  for (int32_t i = 0; i < half; i++) {
    int32_t a = style == HEARTH_ROPE_HALF ? i : 2 * i, b = style == HEARTH_ROPE_HALF ? i + half : 2 * i + 1;
    float x0 = v[a], x1 = v[b];
    v[a] = x0 * cos_t[i] - x1 * sin_t[i];
    v[b] = x1 * cos_t[i] + x0 * sin_t[i];
  }
}

typedef struct {
  hearth_context* ctx;
  const hearth_batch* b;
  int32_t layer;
  const hearth_weight* norm; /* (D) */
  const float* add;          /* (T, D) added into x before the norm, or NULL */
} norm_job;

/* x += add; xb = rmsnorm(x) * norm, for one token: the residual add and the next norm in one pass. */
static void add_norm_task(void* arg, int32_t t, int32_t thread) {
  (void)thread;
  norm_job* j = (norm_job*)arg;
  const hearth_model_config* c = &j->ctx->model->cfg;
  float* x = j->ctx->x + (size_t)t * c->dim;
  if (j->add) j->ctx->ops->axpy(x, 1.0f, j->add + (size_t)t * c->dim, c->dim);
  rmsnorm(j->ctx->xb + (size_t)t * c->dim, x, (const float*)j->norm->data, c->dim, c->norm_eps);
}

/* Biases, per-head q/k norms, RoPE, then this token's k and v into its slot of the paged cache. */
static void qkv_post_task(void* arg, int32_t t, int32_t thread) {
  (void)thread;
  norm_job* j = (norm_job*)arg;
  hearth_context* ctx = j->ctx;
  const hearth_model_config* c = &ctx->model->cfg;
  const hearth_layer_weights* L = &ctx->model->layers[j->layer];
  const int32_t hd = c->head_dim, q_dim = c->n_heads * hd, kv_dim = c->n_kv_heads * hd;
  float* q = ctx->q + (size_t)t * q_dim;  /* (H, hd) */
  float* k = ctx->k + (size_t)t * kv_dim; /* (KVH, hd) */
  float* v = ctx->v + (size_t)t * kv_dim; /* (KVH, hd) */
  if (L->bq.data) {
    ctx->ops->axpy(q, 1.0f, (const float*)L->bq.data, q_dim);
    ctx->ops->axpy(k, 1.0f, (const float*)L->bk.data, kv_dim);
    ctx->ops->axpy(v, 1.0f, (const float*)L->bv.data, kv_dim);
  }
  const float* cos_t = ctx->rope_cos + (size_t)t * (hd / 2);
  const float* sin_t = ctx->rope_sin + (size_t)t * (hd / 2);
  for (int32_t h = 0; h < c->n_heads; h++) {
    if (L->q_norm.data) rmsnorm(q + h * hd, q + h * hd, (const float*)L->q_norm.data, hd, c->norm_eps);
    rope(q + h * hd, cos_t, sin_t, hd, c->rope_style);
  }
  for (int32_t h = 0; h < c->n_kv_heads; h++) {
    if (L->k_norm.data) rmsnorm(k + h * hd, k + h * hd, (const float*)L->k_norm.data, hd, c->norm_eps);
    rope(k + h * hd, cos_t, sin_t, hd, c->rope_style);
  }
  /* Cache layout per layer: (blocks, KVH, block_size, hd), so one head's keys of a block are contiguous. */
  const hearth_batch* b = j->b;
  const int32_t bs = ctx->opts.kv_block_size, pos = b->positions[t], s = ctx->token_seq[t];
  const int32_t block = b->block_tables[(size_t)s * ctx->opts.max_blocks_per_seq + pos / bs];
  const size_t layer_off = (size_t)j->layer * ctx->opts.kv_num_blocks * c->n_kv_heads * bs * hd;
  for (int32_t h = 0; h < c->n_kv_heads; h++) {
    const size_t off = (layer_off + (((size_t)block * c->n_kv_heads + h) * bs + (size_t)(pos % bs)) * hd) * hearth_kv_elem(ctx);
    uint8_t* kc = (uint8_t*)ctx->key_cache + off;
    uint8_t* vc = (uint8_t*)ctx->value_cache + off;
    if (ctx->opts.kv_dtype == HEARTH_DTYPE_F16) {
      ctx->ops->to_f16((uint16_t*)kc, k + h * hd, hd);
      ctx->ops->to_f16((uint16_t*)vc, v + h * hd, hd);
    } else {
      memcpy(kc, k + h * hd, sizeof(float) * (size_t)hd);
      memcpy(vc, v + h * hd, sizeof(float) * (size_t)hd);
    }
  }
}

/* ---------------------------------------------------------------------------------------------------- */
/* Attention: blocked, with an online softmax ("flash attention").                                        */
/*                                                                                                        */
/* A work item (hearth_att_task) is a tile of consecutive query tokens of one sequence with all the query */
/* heads of one kv head (its GQA group): every key and value read from the cache serves tokens x group    */
/* query rows. Keys are visited in chunks of HEARTH_ATT_KC that start at multiples of KC (ops->attend_chunk */
/* does the math), grouped into segments of ctx->att_seg keys. Each segment starts a fresh online-softmax  */
/* state and segment results are folded together in order (fold_row). So a row's result depends only on    */
/* its query, its position and the cache: not on the tile it is in, nor on whether its segments ran in    */
/* one item or several. Batching, chunked prefill and prefix reuse therefore give identical bits. A single */
/* token (a decode) with several segments runs each segment as its own item, so its context spreads over  */
/* all threads; a merge pass folds its partial results. Up to HEARTH_ATT_MAX_SPLIT decodes per step split  */
/* (past that many, a batch has items enough); the rest fold their segments in one item, the same bits.   */

/* First position a query at pos sees: all of them, or the last `window` with a sliding window. */
static int32_t first_key(int32_t pos, int32_t window) { return window > 0 && pos + 1 > window ? pos + 1 - window : 0; }

/* Folds one segment's result of a row (max m, sum l, unnormalised output acc) into the row's running
   (M, L, ACC): both are put relative to the larger max. From the empty state (M = -inf, L = 0, ACC = 0)
   the segment is copied exactly. */
static void fold_row(float* M, float* L, float* ACC, float m, float l, const float* acc, int32_t hd) {
  if (l == 0) return; /* the row saw no key of that segment */
  const float mn = *M > m ? *M : m, a = expf(*M - mn), b = expf(m - mn);
  *L = *L * a + l * b;
  for (int32_t i = 0; i < hd; i++) ACC[i] = ACC[i] * a + acc[i] * b;
  *M = mn;
}

/* out = ACC / L */
static void finish_row(float* out, const float* ACC, float L, int32_t hd) {
  const float inv = 1.0f / L;
  for (int32_t i = 0; i < hd; i++) out[i] = ACC[i] * inv;
}

/* Orders work items costliest first (ties in a fixed order), so the long causal tiles start early and the
   short ones fill the gaps at the end. */
static int cmp_att_task(const void* pa, const void* pb) {
  const hearth_att_task *a = (const hearth_att_task*)pa, *b = (const hearth_att_task*)pb;
  if (a->cost != b->cost) return a->cost > b->cost ? -1 : 1;
  if (a->t0 != b->t0) return a->t0 < b->t0 ? -1 : 1;
  if (a->kvh != b->kvh) return a->kvh < b->kvh ? -1 : 1;
  return a->seg0 < b->seg0 ? -1 : a->seg0 > b->seg0;
}

/* Fills ctx->att_tasks for this batch (the same for every layer) and ctx->att_split with the tokens whose
   segments run separately; returns the number of items, *n_split the number of split tokens. */
static int32_t plan_attention(hearth_context* ctx, const hearth_batch* b, int32_t* n_split) {
  const hearth_model_config* c = &ctx->model->cfg;
  const int32_t group = c->n_heads / c->n_kv_heads, tile = ctx->att_rows / group, seg = ctx->att_seg;
  int32_t n = 0, ns = 0;
  for (int32_t s = 0; s < b->n_seqs; s++) {
    const int32_t start = b->seq_start[s], end = b->seq_start[s + 1];
    const int32_t pos = b->positions[start], first = first_key(pos, c->sliding_window);
    if (end - start == 1 && first / seg < pos / seg && ns < ctx->att_max_split) {
      const int32_t part = ns++;
      ctx->att_split[part] = start;
      for (int32_t kvh = 0; kvh < c->n_kv_heads; kvh++)
        for (int32_t g = first / seg; g <= pos / seg; g++) {
          const int32_t lo = first > g * seg ? first : g * seg, hi = pos + 1 < (g + 1) * seg ? pos + 1 : (g + 1) * seg;
          ctx->att_tasks[n++] = (hearth_att_task){.seq = s, .kvh = kvh, .t0 = start, .nt = 1, .seg0 = g,
                                                  .seg1 = g + 1, .part = part, .cost = (int64_t)group * (hi - lo)};
        }
      continue;
    }
    for (int32_t t0 = start; t0 < end; t0 += tile) {
      const int32_t nt = end - t0 < tile ? end - t0 : tile;
      const int32_t lo = first_key(b->positions[t0], c->sliding_window), hi = b->positions[t0 + nt - 1] + 1;
      for (int32_t kvh = 0; kvh < c->n_kv_heads; kvh++)
        ctx->att_tasks[n++] = (hearth_att_task){.seq = s, .kvh = kvh, .t0 = t0, .nt = nt, .seg0 = lo / seg,
                                                .seg1 = (hi - 1) / seg + 1, .part = -1,
                                                .cost = (int64_t)nt * group * (hi - lo)};
    }
  }
  qsort(ctx->att_tasks, (size_t)n, sizeof(hearth_att_task), cmp_att_task);
  *n_split = ns;
  return n;
}

/* Reads every cache line of the chunk's n key and value rows (bytes each), with nothing else in the loop.
   A decode reads each key and value once, from memory when the cache is larger than the CPU's caches
   (a 16-sequence step reads about 100 MB of them): the kernel's own reads, interleaved with its
   arithmetic, kept few misses in flight and did not overlap with it; loads in a tight loop keep many in
   flight, and the kernel then finds the chunk in L1. One thread, 16 sequences of 240-1000 keys from DRAM:
   43-56 ns per key without, 33-49 with (software prefetches of this or the next chunk did not help).
   In the model, paired: 16 decodes at 200-800 keys x1.09-1.10, one at 200-1500 x1.06-1.07. */
static void touch_rows(const void* const* k, const void* const* v, int32_t n, size_t bytes) {
  for (int32_t j = 0; j < n; j++)
    for (size_t o = 0; o < bytes; o += 64) {
      (void)((const volatile uint8_t*)k[j])[o];
      (void)((const volatile uint8_t*)v[j])[o];
    }
}

/* One work item: its tile's query rows against the keys of its segments. */
static void attention_task(void* arg, int32_t task, int32_t thread) {
  norm_job* j = (norm_job*)arg;
  hearth_context* ctx = j->ctx;
  const hearth_model_config* c = &ctx->model->cfg;
  const hearth_batch* b = j->b;
  const hearth_att_task* w = &ctx->att_tasks[task];
  const int32_t H = c->n_heads, KVH = c->n_kv_heads, group = H / KVH, hd = c->head_dim, KC = HEARTH_ATT_KC;
  const int32_t bs = ctx->opts.kv_block_size, seg = ctx->att_seg, R = ctx->att_rows, rows = w->nt * group;
  const int32_t* table = b->block_tables + (size_t)w->seq * ctx->opts.max_blocks_per_seq;
  const size_t layer_off = (size_t)j->layer * ctx->opts.kv_num_blocks * KVH * bs * hd;
  const size_t big = hearth_round16((size_t)R * hd), small = hearth_round16((size_t)R);
  /* This thread's scratch. Row i * group + g of a tile is token t0 + i with query head kvh * group + g. */
  float* q = ctx->att_scratch + (size_t)thread * ctx->att_thread_floats; /* (rows, hd) the tile's queries */
  float* acc = q + big;                      /* (rows, hd) the segment's unnormalised outputs */
  float* tot = acc + big;                    /* (rows, hd) outputs folded over segments */
  float* m = tot + big;                      /* (rows) the segment's running max */
  float* l = m + small;                      /* (rows) the segment's running sum of exp(score - m) */
  float* tm = l + small;                     /* (rows) folded max */
  float* tl = tm + small;                    /* (rows) folded sum */
  float* scratch = tl + small;               /* HEARTH_ATT_SCRATCH(rows, hd) for attend_chunk */
  const void** kp = ctx->att_kv + (size_t)thread * 2 * KC; /* (KC) key rows of the chunk */
  const void** vp = kp + KC;                               /* (KC) value rows of the chunk */
  const int32_t kv_f16 = ctx->opts.kv_dtype == HEARTH_DTYPE_F16;
  int32_t* lo = ctx->att_range + (size_t)thread * 2 * R;    /* (rows) first key each row sees in the chunk */
  int32_t* hi = lo + R;                                     /* (rows) one past its last */

  const int32_t p0 = b->positions[w->t0];
  const int32_t tile_first = first_key(p0, c->sliding_window), tile_last = p0 + w->nt - 1;
  for (int32_t i = 0; i < w->nt; i++)
    memcpy(q + (size_t)i * group * hd, ctx->q + ((size_t)(w->t0 + i) * H + (size_t)w->kvh * group) * hd,
           sizeof(float) * (size_t)group * hd);
  const int single = w->part < 0 && w->seg1 - w->seg0 == 1; /* one segment: its state is the result */
  if (!single)
    for (int32_t r = 0; r < rows; r++) {
      tm[r] = -INFINITY;
      tl[r] = 0;
      memset(tot + (size_t)r * hd, 0, sizeof(float) * (size_t)hd);
    }

  for (int32_t g = w->seg0; g < w->seg1; g++) {
    const int32_t seg_lo = tile_first > g * seg ? tile_first : g * seg;
    const int32_t seg_hi = tile_last + 1 < (g + 1) * seg ? tile_last + 1 : (g + 1) * seg;
    for (int32_t r = 0; r < rows; r++) {
      m[r] = -INFINITY;
      l[r] = 0;
      memset(acc + (size_t)r * hd, 0, sizeof(float) * (size_t)hd);
    }
    for (int32_t c0 = seg_lo / KC * KC; c0 < seg_hi; c0 += KC) {
      const int32_t nk = seg_hi - c0 < KC ? seg_hi - c0 : KC;
      /* Slots before the tile's first key may hold stale cache bytes; no row sees them, so they point at
         zeros (finite: a masked slot contributes 0 * value). */
      for (int32_t jj = 0; jj < nk; jj++) {
        const int32_t p = c0 + jj;
        if (p < seg_lo) {
          kp[jj] = vp[jj] = ctx->att_zero;
          continue;
        }
        const size_t off = (layer_off + (((size_t)table[p / bs] * KVH + w->kvh) * bs + p % bs) * hd) * hearth_kv_elem(ctx);
        kp[jj] = (const uint8_t*)ctx->key_cache + off;
        vp[jj] = (const uint8_t*)ctx->value_cache + off;
      }
      if (w->nt == 1) touch_rows(kp, vp, nk, (size_t)hd * hearth_kv_elem(ctx));
      for (int32_t i = 0; i < w->nt; i++) {
        const int32_t pos = p0 + i, f = first_key(pos, c->sliding_window) - c0, e = pos + 1 - c0;
        for (int32_t gg = 0; gg < group; gg++) {
          lo[i * group + gg] = f < 0 ? 0 : f > nk ? nk : f;
          hi[i * group + gg] = e < 0 ? 0 : e > nk ? nk : e;
        }
      }
      ctx->ops->attend_chunk(acc, m, l, q, rows, hd, kp, vp, kv_f16, nk, lo, hi, c->attn_scale, scratch);
    }
    if (w->part >= 0) { /* a split decode: keep this segment's partial result for the merge pass */
      for (int32_t r = 0; r < rows; r++) {
        const int32_t h = w->kvh * group + r;
        float* part = ctx->att_part + (((size_t)w->part * H + h) * ctx->att_max_segs + g) * (hd + 2);
        part[0] = m[r];
        part[1] = l[r];
        memcpy(part + 2, acc + (size_t)r * hd, sizeof(float) * (size_t)hd);
      }
    } else if (!single) {
      for (int32_t r = 0; r < rows; r++) fold_row(&tm[r], &tl[r], tot + (size_t)r * hd, m[r], l[r], acc + (size_t)r * hd, hd);
    }
  }
  if (w->part >= 0) return;
  for (int32_t i = 0; i < w->nt; i++)
    for (int32_t gg = 0; gg < group; gg++) {
      const int32_t r = i * group + gg;
      float* out = ctx->att_out + ((size_t)(w->t0 + i) * H + (size_t)w->kvh * group + gg) * hd;
      if (single) finish_row(out, acc + (size_t)r * hd, l[r], hd);
      else finish_row(out, tot + (size_t)r * hd, tl[r], hd);
    }
}

/* A split decode's output for one query head: its segments' partial results folded in order. */
static void attention_merge_task(void* arg, int32_t task, int32_t thread) {
  norm_job* j = (norm_job*)arg;
  hearth_context* ctx = j->ctx;
  const hearth_model_config* c = &ctx->model->cfg;
  const int32_t H = c->n_heads, hd = c->head_dim, seg = ctx->att_seg, split = task / H, h = task % H;
  const int32_t t = ctx->att_split[split], pos = j->b->positions[t];
  float* tot = ctx->att_scratch + (size_t)thread * ctx->att_thread_floats; /* (hd) folded output */
  float M = -INFINITY, L = 0;
  memset(tot, 0, sizeof(float) * (size_t)hd);
  for (int32_t g = first_key(pos, c->sliding_window) / seg; g <= pos / seg; g++) {
    const float* part = ctx->att_part + (((size_t)split * H + h) * ctx->att_max_segs + g) * (hd + 2);
    fold_row(&M, &L, tot, part[0], part[1], part + 2, hd);
  }
  finish_row(ctx->att_out + ((size_t)t * H + h) * hd, tot, L, hd);
}

/* ---------------------------------------------------------------------------------------------------- */

int32_t hearth_forward_llama(hearth_context* ctx, const hearth_batch* b, float* logits_out,
                             const int32_t* logit_rows, int32_t n_logit_rows) {
  const hearth_model* m = ctx->model;
  const hearth_model_config* c = &m->cfg;
  const int32_t T = b->n_tokens, D = c->dim, hd = c->head_dim;

  /* Which sequence each token belongs to, and the RoPE angles of its position. */
  for (int32_t s = 0; s < b->n_seqs; s++)
    for (int32_t t = b->seq_start[s]; t < b->seq_start[s + 1]; t++) ctx->token_seq[t] = s;
  for (int32_t t = 0; t < T; t++)
    for (int32_t i = 0; i < hd / 2; i++) {
      float angle = (float)b->positions[t] * m->rope_inv_freq[i]; /* float32, as transformers computes it */
      ctx->rope_cos[(size_t)t * (hd / 2) + i] = cosf(angle) * c->rope_attn_factor;
      ctx->rope_sin[(size_t)t * (hd / 2) + i] = sinf(angle) * c->rope_attn_factor;
    }

  /* x (T, D) = token embeddings */
  for (int32_t t = 0; t < T; t++) {
    if (m->tok_embd.packed) { /* a tied float embedding, in the output matrix's panels */
      ctx->ops->unpack_row(ctx->x + (size_t)t * D, m->tok_embd.packed, m->tok_embd.dtype, b->tokens[t], D);
      continue;
    }
    const void* row = (const uint8_t*)m->tok_embd.data + (size_t)b->tokens[t] * row_bytes(&m->tok_embd);
    if (hearth_dtype_is_quantized(m->tok_embd.dtype)) hearth_dequantize_row(m->tok_embd.dtype, row, ctx->x + (size_t)t * D, D);
    else ctx->ops->to_f32(ctx->x + (size_t)t * D, row, m->tok_embd.dtype, D);
  }

  /* Attention work items, the same for every layer. */
  int32_t n_split;
  const int32_t n_att = plan_attention(ctx, b, &n_split);

  norm_job job = {.ctx = ctx, .b = b};
  for (int32_t l = 0; l < c->n_layers; l++) {
    const hearth_layer_weights* L = &m->layers[l];
    job.layer = l;

    /* xb = rmsnorm(x += previous layer's FFN output in xb); in place is safe: each token reads its own
       row of xb before writing it */
    job.norm = &L->attn_norm;
    job.add = l == 0 ? NULL : ctx->xb;
    hearth_pool_run(ctx->pool, add_norm_task, &job, T);

    /* q (T, H*hd), k, v (T, KVH*hd) = xb @ wq^T, wk^T, wv^T; then bias, q/k norm, RoPE, into the cache */
    matmul(ctx, ctx->xb, T, &L->wq, ctx->q, &L->wk, ctx->k, &L->wv, ctx->v);
    hearth_pool_run(ctx->pool, qkv_post_task, &job, T);

    /* att_out (T, H*hd) = softmax(q k^T * scale) v over each sequence's cache; then split decodes merged */
    hearth_pool_run(ctx->pool, attention_task, &job, n_att);
    if (n_split > 0) hearth_pool_run(ctx->pool, attention_merge_task, &job, n_split * c->n_heads);

    /* xb (T, D) = att_out @ wo^T; then x += xb and xb = rmsnorm(x) for the FFN */
    matmul(ctx, ctx->att_out, T, &L->wo, ctx->xb, NULL, NULL, NULL, NULL);
    job.norm = &L->ffn_norm;
    job.add = ctx->xb;
    hearth_pool_run(ctx->pool, add_norm_task, &job, T);

    /* hb (T, F) = silu(xb @ w_gate^T) * (xb @ w_up^T); xb (T, D) = hb @ w_down^T */
    matmul_run(ctx, ctx->xb, T, &L->w_gate, ctx->hb, &L->w_up, ctx->hb2, NULL, NULL, 1); /* SwiGLU in its tasks */
    matmul(ctx, ctx->hb, T, &L->w_down, ctx->xb, NULL, NULL, NULL, NULL);
  }

  /* x += last FFN output; xb (R, D) = rmsnorm of the R rows that need logits; logits (R, V) = xb @ lm_head^T */
  for (int32_t t = 0; t < T; t++) ctx->ops->axpy(ctx->x + (size_t)t * D, 1.0f, ctx->xb + (size_t)t * D, D);
  for (int32_t r = 0; r < n_logit_rows; r++)
    rmsnorm(ctx->xb + (size_t)r * D, ctx->x + (size_t)logit_rows[r] * D, (const float*)m->output_norm.data, D,
            c->norm_eps);
  if (n_logit_rows > 0) matmul(ctx, ctx->xb, n_logit_rows, &m->lm_head, logits_out, NULL, NULL, NULL, NULL);
  return HEARTH_OK;
}
