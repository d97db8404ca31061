/*
 * context.cu — the CUDA backend's context (the paged KV cache, activations and sampler scratch in device
 * memory) and hearth_step: the batch is checked by the CPU backend's own code (kernels/cpu/context_check.c,
 * linked into this library: the same checks, the same messages), planned on the host (token -> sequence,
 * rows for lm_head, attention work items), packed behind a descriptor into pinned memory and uploaded with
 * one copy; then the forward pass, lm_head and the sampler run on the device, and only the sampled tokens
 * (and logits / log-probabilities when asked) come back. A step of decodes only (every sequence one token)
 * is captured once as a CUDA Graph per (tokens, rows) shape and replayed (HEARTH_CUDA_GRAPHS=0 turns that
 * off).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../include/hearth_context_check.h"
#include "internal.cuh"

static void destroy_graphs(hearth_context* ctx) {
  for (int32_t i = 0; i < ctx->n_graphs; i++) cudaGraphExecDestroy(ctx->graphs[i].exec);
  ctx->n_graphs = 0;
}

extern "C" HEARTH_API void hearth_context_free(hearth_context* ctx) {
  if (!ctx) return;
  cudaSetDevice(ctx->model->device);
  if (ctx->stream) cudaStreamSynchronize(ctx->stream);
  destroy_graphs(ctx);
  void* dev[] = {ctx->key_cache, ctx->value_cache, ctx->x,          ctx->xb,        ctx->q,          ctx->k,
                 ctx->v,         ctx->att_out,     ctx->hb,         ctx->hb2,       ctx->act.q,      ctx->act.d,
                 ctx->act.s,     ctx->att_part,    ctx->logits,     ctx->smp.work,  ctx->smp.stamp,  ctx->smp.counts,
                 ctx->smp.keys,  ctx->smp.ids,     ctx->smp_out,    ctx->dev_block};
  for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++)
    if (dev[i]) cudaFree(dev[i]);
  if (ctx->host_block) cudaFreeHost(ctx->host_block);
  if (ctx->host_out) cudaFreeHost(ctx->host_out);
  if (ctx->stream) cudaStreamDestroy(ctx->stream);
  free(ctx);
}

/* cudaMalloc of count * size bytes (overflow-checked); records the first failure in *e. */
static void* dalloc(size_t count, size_t size, cudaError_t* e) {
  if (*e != cudaSuccess) return NULL;
  if (size != 0 && count > SIZE_MAX / size) {
    *e = cudaErrorMemoryAllocation;
    return NULL;
  }
  void* p = NULL;
  *e = cudaMalloc(&p, count * size ? count * size : 1);
  return *e == cudaSuccess ? p : NULL;
}

/* (Re)allocates the batch block (device and pinned) for at least `bytes`; drops the graphs that hold the
   old descriptor pointer. */
static cudaError_t ensure_block(hearth_context* ctx, size_t bytes) {
  if (bytes <= ctx->block_cap) return cudaSuccess;
  size_t cap = ctx->block_cap ? ctx->block_cap : 1 << 20;
  while (cap < bytes) cap *= 2;
  destroy_graphs(ctx);
  if (ctx->dev_block) cudaFree(ctx->dev_block), ctx->dev_block = NULL;
  if (ctx->host_block) cudaFreeHost(ctx->host_block), ctx->host_block = NULL;
  ctx->block_cap = 0;
  cudaError_t e = cudaMalloc(&ctx->dev_block, cap);
  if (e == cudaSuccess) e = cudaHostAlloc(&ctx->host_block, cap, cudaHostAllocDefault);
  if (e != cudaSuccess) return e;
  ctx->block_cap = cap;
  ctx->bd = (hc_batch_dev*)ctx->dev_block;
  return cudaSuccess;
}

extern "C" HEARTH_API hearth_context* hearth_context_new(hearth_model* m, const hearth_context_options* o, char* err,
                                                         size_t err_len) {
  if (hearth_check_context_new(m != NULL, m && m->finished, o, err, err_len) != HEARTH_OK) return NULL;
  if (o->kv_dtype != HEARTH_DTYPE_F32) {
    hearth_fail(err, err_len, HEARTH_E_INVALID, "context options: the CUDA backend keeps its KV cache in float32 "
                                                "(kv_dtype %d asked for)", o->kv_dtype);
    return NULL;
  }
  const hearth_model_config* c = &m->cfg;
  if (hc_use_device(m->device, err, err_len) != HEARTH_OK) return NULL;
  hearth_context* ctx = (hearth_context*)calloc(1, sizeof(hearth_context));
  if (!ctx) {
    hearth_fail(err, err_len, HEARTH_E_NOMEM, "out of memory allocating the context");
    return NULL;
  }
  ctx->model = m;
  ctx->opts = *o;
  const char* graphs = getenv("HEARTH_CUDA_GRAPHS");
  ctx->graphs_on = !(graphs && strcmp(graphs, "0") == 0);
  const size_t T = (size_t)o->max_batch_tokens, S = (size_t)o->max_batch_seqs, hd = (size_t)c->head_dim;
  const size_t q_dim = (size_t)c->n_heads * hd, kv_dim = (size_t)c->n_kv_heads * hd, V = (size_t)c->vocab_size;
  cudaError_t e = cudaStreamCreateWithFlags(&ctx->stream, cudaStreamNonBlocking);
  /* KV cache: per layer (blocks, KVH, block_size, hd) floats, for keys and for values. */
  const size_t per_layer = (size_t)o->kv_num_blocks * (size_t)o->kv_block_size * kv_dim;
  ctx->key_cache = (float*)dalloc(per_layer * (size_t)c->n_layers, sizeof(float), &e);
  ctx->value_cache = (float*)dalloc(per_layer * (size_t)c->n_layers, sizeof(float), &e);
  ctx->kv_bytes = 2 * per_layer * (size_t)c->n_layers * sizeof(float);
  ctx->x = (float*)dalloc(T * (size_t)c->dim, sizeof(float), &e);
  ctx->xb = (float*)dalloc(T * (size_t)c->dim, sizeof(float), &e);
  ctx->q = (float*)dalloc(T * q_dim, sizeof(float), &e);
  ctx->k = (float*)dalloc(T * kv_dim, sizeof(float), &e);
  ctx->v = (float*)dalloc(T * kv_dim, sizeof(float), &e);
  ctx->att_out = (float*)dalloc(T * q_dim, sizeof(float), &e);
  ctx->hb = (float*)dalloc(T * (size_t)c->hidden_dim, sizeof(float), &e);
  ctx->hb2 = (float*)dalloc(T * (size_t)c->hidden_dim, sizeof(float), &e);
  {
    size_t k_max = (size_t)c->dim > q_dim ? (size_t)c->dim : q_dim;
    if ((size_t)c->hidden_dim > k_max) k_max = (size_t)c->hidden_dim;
    k_max = (k_max + 255) / 256 * 256;
    ctx->act.q = (int8_t*)dalloc(T * k_max, 1, &e);
    ctx->act.d = (float*)dalloc(T * k_max / 32, sizeof(float), &e);
    ctx->act.s = (int32_t*)dalloc(T * k_max / 32, sizeof(int32_t), &e);
  }
  /* Split attention parts: every (token, head) row of a step is in one item, split at most MAX_SPLIT ways. */
  ctx->att_rows = hc_att_rows(c->head_dim);
  ctx->att_part = (float*)dalloc(T * (size_t)c->n_heads * HC_ATT_MAX_SPLIT * (hd + 2), sizeof(float), &e);
  ctx->logit_cap = o->max_batch_seqs;
  ctx->logits = (float*)dalloc((size_t)ctx->logit_cap * V, sizeof(float), &e);
  int32_t cap = 1;
  while ((size_t)cap < V) cap <<= 1;
  ctx->smp.sort_cap = cap;
  ctx->smp.work = (float*)dalloc(S * V, sizeof(float), &e);
  ctx->smp.stamp = (uint32_t*)dalloc(S * V, sizeof(uint32_t), &e);
  ctx->smp.counts = (int32_t*)dalloc(S * V, sizeof(int32_t), &e);
  ctx->smp.keys = (uint32_t*)dalloc(S * (size_t)cap, sizeof(uint32_t), &e);
  ctx->smp.ids = (int32_t*)dalloc(S * (size_t)cap, sizeof(int32_t), &e);
  ctx->smp_out = (hc_sample_out*)dalloc(S, sizeof(hc_sample_out), &e);
  if (e == cudaSuccess) e = cudaMemset(ctx->smp.stamp, 0, S * V * sizeof(uint32_t));
  if (e == cudaSuccess) e = cudaMemset(ctx->smp.counts, 0, S * V * sizeof(int32_t));
  if (e == cudaSuccess) e = cudaHostAlloc((void**)&ctx->host_out, S * sizeof(hc_sample_out), cudaHostAllocDefault);
  if (e == cudaSuccess) e = ensure_block(ctx, 1 << 20);
  if (e == cudaSuccess) e = hc_attention_init(c->head_dim);
  if (e != cudaSuccess) {
    char what[192];
    snprintf(what, sizeof what,
             "allocating the context on the device (KV cache of %d blocks x %d tokens = %.1f MiB, %d batch tokens)",
             o->kv_num_blocks, o->kv_block_size, (double)ctx->kv_bytes / 1048576.0, o->max_batch_tokens);
    hc_cuda_fail(err, err_len, e, what);
    cudaGetLastError();
    hearth_context_free(ctx);
    return NULL;
  }
  return ctx;
}

extern "C" HEARTH_API uint64_t hearth_context_kv_bytes(const hearth_context* ctx) { return ctx ? ctx->kv_bytes : 0; }

/* ---------------------------------------------------------------------------------------------------- */
/* The batch: plan, upload (the checks: kernels/cpu/context_check.c)                                      */

static int32_t first_key(int32_t pos, int32_t window) { return window > 0 && pos + 1 > window ? pos + 1 - window : 0; }

/* Attention items of the batch (the same for every layer); writes them to `items` when not NULL. */
static int32_t plan_attention(const hearth_context* ctx, const hearth_batch* b, hc_att_item* items) {
  const hearth_model_config* c = &ctx->model->cfg;
  const int32_t group = c->n_heads / c->n_kv_heads, rpb = ctx->att_rows;
  const int32_t nh = group < rpb ? group : rpb, tq = rpb / nh > 1 ? rpb / nh : 1, sub = (group + nh - 1) / nh;
  int32_t n = 0, part_rows = 0;
  for (int32_t s = 0; s < b->n_seqs; s++) {
    const int32_t start = b->seq_start[s], end = b->seq_start[s + 1];
    for (int32_t t0 = start; t0 < end; t0 += tq) {
      const int32_t nt = end - t0 < tq ? end - t0 : tq;
      const int32_t lo = first_key(b->positions[t0], c->sliding_window), hi = b->positions[t0 + nt - 1] + 1;
      const int32_t c0 = lo / HC_ATT_KC, n_chunks = (hi + HC_ATT_KC - 1) / HC_ATT_KC - c0;
      int32_t n_split = n_chunks / HC_ATT_MIN_CHUNKS;
      n_split = n_split < 1 ? 1 : n_split > HC_ATT_MAX_SPLIT ? HC_ATT_MAX_SPLIT : n_split;
      const int32_t cps = (n_chunks + n_split - 1) / n_split;
      n_split = (n_chunks + cps - 1) / cps;
      for (int32_t kvh = 0; kvh < c->n_kv_heads; kvh++)
        for (int32_t sb = 0; sb < sub; sb++) {
          const int32_t h0 = kvh * group + sb * nh, nhi = group - sb * nh < nh ? group - sb * nh : nh;
          if (items) {
            hc_att_item* it = &items[n];
            memset(it, 0, sizeof *it);
            it->seq = s, it->t0 = t0, it->nt = nt, it->h0 = h0, it->nh = nhi, it->c0 = c0, it->n_chunks = n_chunks;
            it->n_split = n_split, it->chunks_per_split = cps, it->part = part_rows;
          }
          if (n_split > 1) part_rows += n_split * nt * nhi;
          n++;
        }
    }
  }
  return n;
}

static size_t align16(size_t n) { return (n + 15) & ~(size_t)15; }

/* What hearth_step needs to know about the plan after packing. */
typedef struct {
  int32_t T, S, R, n_items;
  int32_t decode_only; /* every sequence has one token */
  size_t bytes;        /* packed bytes to upload */
} step_plan;

/* Packs the descriptor and the data behind it into the pinned block. rows: (R) token rows for lm_head,
   sample_row: (S). */
static cudaError_t pack_batch(hearth_context* ctx, const hearth_batch* b, const int32_t* rows, int32_t R,
                              const int32_t* sample_row, step_plan* plan) {
  const int32_t T = b->n_tokens, S = b->n_seqs, bs = ctx->opts.kv_block_size;
  int32_t stride = 1;
  for (int32_t s = 0; s < S; s++) {
    const int32_t nblk = b->positions[b->seq_start[s + 1] - 1] / bs + 1;
    stride = nblk > stride ? nblk : stride;
  }
  const int32_t n_items = plan_attention(ctx, b, NULL);
  const int32_t n_hist = b->history ? b->n_history : 0;
  size_t off = align16(sizeof(hc_batch_dev));
  size_t o_tokens = off;       off = align16(off + 4 * (size_t)T);
  size_t o_pos = off;          off = align16(off + 4 * (size_t)T);
  size_t o_tseq = off;         off = align16(off + 4 * (size_t)T);
  size_t o_start = off;        off = align16(off + 4 * (size_t)(S + 1));
  size_t o_bt = off;           off = align16(off + 4 * (size_t)S * stride);
  size_t o_rows = off;         off = align16(off + 4 * (size_t)(R > 0 ? R : 1));
  size_t o_srow = off;         off = align16(off + 4 * (size_t)S);
  size_t o_att = off;          off = align16(off + sizeof(hc_att_item) * (size_t)n_items);
  size_t o_smp = off;          off = align16(off + sizeof(hearth_sampling) * (size_t)S);
  size_t o_hist = off;         off = align16(off + 4 * (size_t)n_hist);
  size_t o_bias = off;         off = align16(off + 4 * (size_t)b->n_bias);
  size_t o_biasv = off;        off = align16(off + 4 * (size_t)b->n_bias);
  size_t o_stop = off;         off = align16(off + 4 * (size_t)b->n_stop_ids);
  cudaError_t e = ensure_block(ctx, off);
  if (e != cudaSuccess) return e;
  uint8_t* h = (uint8_t*)ctx->host_block;
  uint8_t* d = (uint8_t*)ctx->dev_block;
  hc_batch_dev* desc = (hc_batch_dev*)h;
  memset(desc, 0, sizeof *desc);
  if (++ctx->epoch == 0) { /* stamps wrapped: clear them so that no old stamp equals a new epoch */
    cudaMemsetAsync(ctx->smp.stamp, 0, (size_t)ctx->opts.max_batch_seqs * ctx->model->cfg.vocab_size * 4, ctx->stream);
    ctx->epoch = 1;
  }
  desc->n_tokens = T, desc->n_seqs = S, desc->n_rows = R, desc->n_items = n_items, desc->bt_stride = stride;
  desc->epoch = ctx->epoch, desc->has_history = b->history != NULL;
  desc->tokens = (int32_t*)(d + o_tokens);
  desc->positions = (int32_t*)(d + o_pos);
  desc->token_seq = (int32_t*)(d + o_tseq);
  desc->seq_start = (int32_t*)(d + o_start);
  desc->block_tables = (int32_t*)(d + o_bt);
  desc->logit_rows = (int32_t*)(d + o_rows);
  desc->sample_row = (int32_t*)(d + o_srow);
  desc->att = (hc_att_item*)(d + o_att);
  desc->sampling = (hearth_sampling*)(d + o_smp);
  desc->history = (int32_t*)(d + o_hist);
  desc->bias_ids = (int32_t*)(d + o_bias);
  desc->bias_values = (float*)(d + o_biasv);
  desc->stop_ids = (int32_t*)(d + o_stop);
  memcpy(h + o_tokens, b->tokens, 4 * (size_t)T);
  memcpy(h + o_pos, b->positions, 4 * (size_t)T);
  int32_t* tseq = (int32_t*)(h + o_tseq);
  for (int32_t s = 0; s < S; s++)
    for (int32_t t = b->seq_start[s]; t < b->seq_start[s + 1]; t++) tseq[t] = s;
  memcpy(h + o_start, b->seq_start, 4 * (size_t)(S + 1));
  int32_t* bt = (int32_t*)(h + o_bt);
  for (int32_t s = 0; s < S; s++) {
    const int32_t nblk = b->positions[b->seq_start[s + 1] - 1] / bs + 1;
    memcpy(bt + (size_t)s * stride, b->block_tables + (size_t)s * ctx->opts.max_blocks_per_seq, 4 * (size_t)nblk);
    for (int32_t i = nblk; i < stride; i++) bt[(size_t)s * stride + i] = 0;
  }
  if (R > 0) memcpy(h + o_rows, rows, 4 * (size_t)R);
  memcpy(h + o_srow, sample_row, 4 * (size_t)S);
  plan_attention(ctx, b, (hc_att_item*)(h + o_att));
  memcpy(h + o_smp, b->sampling, sizeof(hearth_sampling) * (size_t)S);
  if (n_hist > 0) memcpy(h + o_hist, b->history, 4 * (size_t)n_hist);
  if (b->n_bias > 0) memcpy(h + o_bias, b->bias_ids, 4 * (size_t)b->n_bias), memcpy(h + o_biasv, b->bias_values, 4 * (size_t)b->n_bias);
  if (b->n_stop_ids > 0) memcpy(h + o_stop, b->stop_ids, 4 * (size_t)b->n_stop_ids);
  plan->T = T, plan->S = S, plan->R = R, plan->n_items = n_items, plan->bytes = off;
  plan->decode_only = T == S;
  return cudaMemcpyAsync(ctx->dev_block, ctx->host_block, off, cudaMemcpyHostToDevice, ctx->stream);
}

/* The device part of a step after the upload: forward, lm_head over the R gathered rows, sampler. */
static void run_device(hearth_context* ctx, const step_plan* p) {
  hc_forward(ctx, p->T, p->n_items);
  if (p->R > 0) {
    hc_gather_rows(ctx->stream, ctx->x, ctx->xb, ctx->bd, p->R, ctx->model->cfg.dim);
    hc_lm_head(ctx, ctx->x, p->R);
    hc_sample(ctx->stream, ctx, p->S);
  }
}

/* Replays (capturing first) the graph of a decode step of this shape; 0 if it ran, -1 to run directly. */
static int run_graph(hearth_context* ctx, const step_plan* p) {
  hc_graph* g = NULL;
  for (int32_t i = 0; i < ctx->n_graphs; i++)
    if (ctx->graphs[i].n_tokens == p->T && ctx->graphs[i].n_rows == p->R) g = &ctx->graphs[i];
  if (!g) {
    if (ctx->n_graphs == HC_GRAPH_SLOTS) { /* full: drop the oldest */
      cudaGraphExecDestroy(ctx->graphs[0].exec);
      memmove(ctx->graphs, ctx->graphs + 1, sizeof(hc_graph) * (HC_GRAPH_SLOTS - 1));
      ctx->n_graphs--;
    }
    cudaGraph_t graph = NULL;
    if (cudaStreamBeginCapture(ctx->stream, cudaStreamCaptureModeThreadLocal) != cudaSuccess) goto off;
    run_device(ctx, p);
    if (cudaStreamEndCapture(ctx->stream, &graph) != cudaSuccess || !graph) goto off;
    cudaGraphExec_t exec;
    if (cudaGraphInstantiate(&exec, graph, 0) != cudaSuccess) {
      cudaGraphDestroy(graph);
      goto off;
    }
    cudaGraphDestroy(graph);
    g = &ctx->graphs[ctx->n_graphs++];
    g->n_tokens = p->T, g->n_rows = p->R, g->exec = exec;
  }
  if (cudaGraphLaunch(g->exec, ctx->stream) == cudaSuccess) return 0;
off: /* graphs do not work here: run without them from now on */
  {
    cudaStreamCaptureStatus cs;
    if (cudaStreamIsCapturing(ctx->stream, &cs) == cudaSuccess && cs != cudaStreamCaptureStatusNone) {
      cudaGraph_t dummy = NULL;
      cudaStreamEndCapture(ctx->stream, &dummy);
      if (dummy) cudaGraphDestroy(dummy);
    }
  }
  cudaGetLastError();
  ctx->graphs_on = 0;
  destroy_graphs(ctx);
  return -1;
}

extern "C" HEARTH_API int32_t hearth_step(hearth_context* ctx, const hearth_batch* b, char* err, size_t err_len) {
  if (!ctx || !b) return hearth_fail(err, err_len, HEARTH_E_INVALID, "step: context or batch is NULL");
  int32_t rc = hearth_check_batch(&ctx->model->cfg, &ctx->opts, b, err, err_len);
  if (rc != HEARTH_OK) return rc;
  HC_CHECK(cudaSetDevice(ctx->model->device), "step: cudaSetDevice");
  const int32_t V = ctx->model->cfg.vocab_size, D = ctx->model->cfg.dim, S = b->n_seqs;

  /* Rows that go through lm_head for sampling (and LOGITS_LAST): the last token of each sequence that
     needs one; sample_row[s]: its row, -1 when s does not sample. LOGITS_ALL rows are extra passes. */
  int32_t rows_buf[1024], srow_buf[1024];
  int32_t* rows = S <= 1024 ? rows_buf : (int32_t*)malloc(sizeof(int32_t) * (size_t)S);
  int32_t* sample_row = S <= 1024 ? srow_buf : (int32_t*)malloc(sizeof(int32_t) * (size_t)S);
  if (!rows || !sample_row) {
    if (rows != rows_buf) free(rows);
    if (sample_row != srow_buf) free(sample_row);
    return hearth_fail(err, err_len, HEARTH_E_NOMEM, "step: out of memory");
  }
  int32_t R = 0;
  for (int32_t s = 0; s < S; s++) {
    sample_row[s] = -1;
    if (b->sample[s] || b->logits_mode == HEARTH_LOGITS_LAST) {
      if (b->sample[s]) sample_row[s] = R;
      rows[R++] = b->seq_start[s + 1] - 1;
    }
  }
  int32_t n_sampled = 0;
  for (int32_t s = 0; s < S; s++) n_sampled += b->sample[s] != 0;
  step_plan plan;
  cudaError_t e = pack_batch(ctx, b, rows, R, sample_row, &plan);
  if (rows != rows_buf) free(rows);
  if (sample_row != srow_buf) free(sample_row);
  if (e != cudaSuccess) return hc_cuda_fail(err, err_len, e, "step: uploading the batch");
  cudaStream_t st = ctx->stream;

  if (b->logits_mode == HEARTH_LOGITS_ALL) {
    /* Every token's logits, logit_cap rows per lm_head pass, then the sampled rows as usual. */
    hc_forward(ctx, plan.T, plan.n_items);
    for (int32_t r0 = 0; r0 < plan.T; r0 += ctx->logit_cap) {
      const int32_t n = plan.T - r0 < ctx->logit_cap ? plan.T - r0 : ctx->logit_cap;
      hc_lm_head(ctx, ctx->xb + (size_t)r0 * D, n);
      e = cudaMemcpyAsync(b->out_logits + (size_t)r0 * V, ctx->logits, sizeof(float) * (size_t)n * V, cudaMemcpyDeviceToHost, st);
      if (e != cudaSuccess) return hc_cuda_fail(err, err_len, e, "step: copying logits");
    }
    if (n_sampled > 0) {
      hc_gather_rows(st, ctx->x, ctx->xb, ctx->bd, plan.R, D);
      hc_lm_head(ctx, ctx->x, plan.R);
      hc_sample(st, ctx, plan.S);
    }
  } else if (!(ctx->graphs_on && plan.decode_only && run_graph(ctx, &plan) == 0)) {
    run_device(ctx, &plan);
  }
  e = cudaPeekAtLastError();
  if (e != cudaSuccess) return hc_cuda_fail(err, err_len, e, "step: launching the forward pass");
  if (b->logits_mode == HEARTH_LOGITS_LAST && plan.R > 0) {
    e = cudaMemcpyAsync(b->out_logits, ctx->logits, sizeof(float) * (size_t)plan.R * V, cudaMemcpyDeviceToHost, st);
    if (e != cudaSuccess) return hc_cuda_fail(err, err_len, e, "step: copying logits");
  }
  if (n_sampled > 0) {
    e = cudaMemcpyAsync(ctx->host_out, ctx->smp_out, sizeof(hc_sample_out) * (size_t)S, cudaMemcpyDeviceToHost, st);
    if (e != cudaSuccess) return hc_cuda_fail(err, err_len, e, "step: copying the sampled tokens");
  }
  e = cudaStreamSynchronize(st);
  if (e != cudaSuccess) return hc_cuda_fail(err, err_len, e, "step: running the forward pass");

  /* Outputs, written where the CPU backend writes them (and only there). */
  for (int32_t s = 0; s < S; s++) {
    if (!b->sample[s]) {
      b->out_tokens[s] = -1;
      continue;
    }
    const hc_sample_out* o = &ctx->host_out[s];
    b->out_tokens[s] = o->token;
    const hearth_sampling* sp = &b->sampling[s];
    if (o->wrote_logprobs && (sp->want_logprob || (sp->n_top_logprobs > 0 && b->out_top_ids && b->out_top_logprobs))) {
      if (b->out_logprobs) b->out_logprobs[s] = o->logprob;
      if (b->out_top_ids && b->out_top_logprobs) {
        memcpy(b->out_top_ids + (size_t)s * HEARTH_MAX_TOP_LOGPROBS, o->top_ids, sizeof o->top_ids);
        memcpy(b->out_top_logprobs + (size_t)s * HEARTH_MAX_TOP_LOGPROBS, o->top_logprobs, sizeof o->top_logprobs);
      }
    }
  }
  return HEARTH_OK;
}

/* The two halves of hearth_step (hearth.h). On the device the step is already asynchronous to the host
   in its own way, so begin runs it whole and join hands back its result. */
extern "C" HEARTH_API int32_t hearth_step_begin(hearth_context* ctx, const hearth_batch* b, char* err,
                                                size_t err_len) {
  if (!ctx || !b) return hearth_fail(err, err_len, HEARTH_E_INVALID, "step_begin: context or batch is NULL");
  if (ctx->async_pending)
    return hearth_fail(err, err_len, HEARTH_E_INVALID, "step_begin: a step is already in flight on this context");
  ctx->async_rc = hearth_step(ctx, b, err, err_len);
  ctx->async_pending = 1;
  return HEARTH_OK;
}

extern "C" HEARTH_API int32_t hearth_step_join(hearth_context* ctx) {
  if (!ctx || !ctx->async_pending) return HEARTH_E_INVALID;
  ctx->async_pending = 0;
  return ctx->async_rc;
}
