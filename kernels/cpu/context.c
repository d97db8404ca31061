/*
 * context.c — a context owns the paged KV cache, the activation scratch and the thread pool; hearth_step
 * checks a batch completely (every id, position and block against its bounds: context_check.c, shared
 * with the CUDA backend) before computing, so a bad batch is an error message, never a wild read.
 */
#include <stdlib.h>
#include <string.h>

#include "../include/hearth_context_check.h"
#include "internal.h"
#include "quant.h"

void hearth_context_free(hearth_context* ctx) {
  if (!ctx) return;
  if (ctx->async_step.pending) hearth_step_join(ctx); /* its workers must be done with the buffers */
  hearth_pool_free(ctx->pool);
  hearth_free_aligned(ctx->key_cache);
  hearth_free_aligned(ctx->value_cache);
  float* buffers[] = {ctx->x,        ctx->xb,       ctx->q,      ctx->k,      ctx->v,     ctx->att_out,
                      ctx->hb,       ctx->hb2,      ctx->rope_cos, ctx->rope_sin, ctx->logits, ctx->att_scratch, ctx->att_zero, ctx->att_part};
  for (size_t i = 0; i < sizeof buffers / sizeof buffers[0]; i++) hearth_free_aligned(buffers[i]);
  hearth_free_aligned(ctx->token_seq);
  hearth_free_aligned(ctx->att_tasks);
  hearth_free_aligned(ctx->att_kv);
  hearth_free_aligned(ctx->att_range);
  hearth_free_aligned(ctx->att_split);
  hearth_free_aligned(ctx->act_q8_0);
  hearth_free_aligned(ctx->act_q8_k);
  if (ctx->samplers) {
    for (int32_t i = 0; i < ctx->opts.n_threads; i++) {
      hearth_free_aligned(ctx->samplers[i].work);
      hearth_free_aligned(ctx->samplers[i].ids);
      hearth_free_aligned(ctx->samplers[i].stamp);
      hearth_free_aligned(ctx->samplers[i].counts);
      hearth_free_aligned(ctx->samplers[i].cum);
    }
    free(ctx->samplers);
  }
  free(ctx);
}

hearth_context* hearth_context_new(hearth_model* m, const hearth_context_options* o, char* err, size_t err_len) {
  if (hearth_check_context_new(m != NULL, m && m->finished, o, err, err_len) != HEARTH_OK) return NULL;
  const hearth_model_config* c = &m->cfg;
  hearth_context* ctx = calloc(1, sizeof(hearth_context));
  if (!ctx) goto nomem;
  ctx->model = m;
  ctx->opts = *o;
  ctx->ops = hearth_cpu_ops_get();
  const size_t T = (size_t)o->max_batch_tokens, hd = (size_t)c->head_dim;
  const size_t q_dim = (size_t)c->n_heads * hd, kv_dim = (size_t)c->n_kv_heads * hd;
  /* KV cache: per layer (blocks, KVH, block_size, hd) elements of kv_dtype, for keys and for values. */
  const size_t per_layer = (size_t)o->kv_num_blocks * (size_t)o->kv_block_size * kv_dim;
  if (per_layer / kv_dim / (size_t)o->kv_block_size != (size_t)o->kv_num_blocks) goto nomem;
  const size_t elem = hearth_kv_elem(ctx);
  ctx->key_cache = hearth_alloc_uninit(per_layer * (size_t)c->n_layers, elem);
  ctx->value_cache = hearth_alloc_uninit(per_layer * (size_t)c->n_layers, elem);
  ctx->kv_bytes = 2 * per_layer * (size_t)c->n_layers * elem;
  ctx->x = hearth_alloc(T * (size_t)c->dim, sizeof(float));
  ctx->xb = hearth_alloc(T * (size_t)c->dim, sizeof(float));
  ctx->q = hearth_alloc(T * q_dim, sizeof(float));
  ctx->k = hearth_alloc(T * kv_dim, sizeof(float));
  ctx->v = hearth_alloc(T * kv_dim, sizeof(float));
  ctx->att_out = hearth_alloc(T * q_dim, sizeof(float));
  ctx->hb = hearth_alloc(T * (size_t)c->hidden_dim, sizeof(float));
  ctx->hb2 = hearth_alloc(T * (size_t)c->hidden_dim, sizeof(float));
  ctx->rope_cos = hearth_alloc(T * hd / 2, sizeof(float));
  ctx->rope_sin = hearth_alloc(T * hd / 2, sizeof(float));
  /* Attention (forward_llama.c): tiles of about 32 query rows (whole GQA groups); segments of 64 keys,
     or more where the context is longer than HEARTH_ATT_MAX_SEGS of them. A decode's segments are its
     parallel tasks: with 64 keys each, a single sequence at a hundred positions already gives every
     thread work (with 256, the floor before, a decode of 3 kv heads on 2 threads left one thread idle
     for a third of each layer's attention; one sequence decoding at positions 150 to 250, Q8_0, 2 Zen 3
     threads, medians of paired runs: segments of 128 instead of 256 keys +7.8 % tok/s, 64 instead of
     128 +7.5 %). Segment boundaries fix where the online softmax's partial results are folded, so they
     depend on the context length allowed, never on the batch. */
  {
    const int32_t group = c->n_heads / c->n_kv_heads;
    ctx->att_rows = (group >= 32 ? 1 : 32 / group) * group;
    int64_t seg = ((int64_t)c->max_seq_len + HEARTH_ATT_MAX_SEGS - 1) / HEARTH_ATT_MAX_SEGS;
    seg = (seg + HEARTH_ATT_KC - 1) / HEARTH_ATT_KC * HEARTH_ATT_KC;
    ctx->att_seg = (int32_t)seg;
    ctx->att_max_segs = (c->max_seq_len + ctx->att_seg - 1) / ctx->att_seg;
    ctx->att_max_split = o->max_batch_seqs < HEARTH_ATT_MAX_SPLIT ? o->max_batch_seqs : HEARTH_ATT_MAX_SPLIT;
    /* Tiles: at most one per token per kv head; split decodes: one per segment per kv head. */
    ctx->att_max_tasks = c->n_kv_heads * (o->max_batch_tokens + ctx->att_max_split * ctx->att_max_segs);
    ctx->att_thread_floats = (int32_t)hearth_att_thread_floats(ctx->att_rows, c->head_dim);
    ctx->att_tasks = hearth_alloc((size_t)ctx->att_max_tasks, sizeof(hearth_att_task));
    ctx->att_scratch = hearth_alloc((size_t)o->n_threads * (size_t)ctx->att_thread_floats, sizeof(float));
    ctx->att_kv = hearth_alloc((size_t)o->n_threads * 2 * HEARTH_ATT_KC, sizeof(void*));
    ctx->att_range = hearth_alloc((size_t)o->n_threads * 2 * (size_t)ctx->att_rows, sizeof(int32_t));
    ctx->att_zero = hearth_alloc(hd, sizeof(float));
    ctx->att_split = hearth_alloc((size_t)ctx->att_max_split, sizeof(int32_t));
    ctx->att_part = hearth_alloc((size_t)ctx->att_max_split * (size_t)c->n_heads * (size_t)ctx->att_max_segs * (hd + 2),
                                 sizeof(float));
  }
  ctx->token_seq = hearth_alloc(T, sizeof(int32_t));
  ctx->logits = hearth_alloc((size_t)o->max_batch_seqs * (size_t)c->vocab_size, sizeof(float));
  /* Quantized activations: the widest matmul input (dim, q_dim or hidden_dim), rounded up to whole
     blocks; sized for the largest block format of each kind. */
  {
    int64_t k_max = c->dim > (int64_t)q_dim ? c->dim : (int64_t)q_dim;
    if (c->hidden_dim > k_max) k_max = c->hidden_dim;
    k_max = (k_max + HEARTH_QK_K - 1) / HEARTH_QK_K * HEARTH_QK_K;
    ctx->act_q8_0 = hearth_alloc_uninit(hearth_quant_act_bytes(HEARTH_DTYPE_Q8_0, (int64_t)T, k_max), 1);
    ctx->act_q8_k = hearth_alloc_uninit(hearth_quant_act_bytes(HEARTH_DTYPE_Q4_K, (int64_t)T, k_max), 1);
  }
  ctx->samplers = calloc((size_t)o->n_threads, sizeof(hearth_sampler_scratch));
  if (!ctx->key_cache || !ctx->value_cache || !ctx->x || !ctx->xb || !ctx->q || !ctx->k || !ctx->v || !ctx->att_out ||
      !ctx->hb || !ctx->hb2 || !ctx->rope_cos || !ctx->rope_sin || !ctx->token_seq || !ctx->logits ||
      !ctx->act_q8_0 || !ctx->act_q8_k || !ctx->samplers || !ctx->att_tasks || !ctx->att_scratch || !ctx->att_kv ||
      !ctx->att_range || !ctx->att_zero || !ctx->att_split || !ctx->att_part)
    goto nomem;
  for (int32_t i = 0; i < o->n_threads; i++) {
    hearth_sampler_scratch* s = &ctx->samplers[i];
    s->work = hearth_alloc((size_t)c->vocab_size, sizeof(float));
    s->ids = hearth_alloc((size_t)c->vocab_size, sizeof(int32_t));
    s->stamp = hearth_alloc((size_t)c->vocab_size, sizeof(uint32_t));
    s->counts = hearth_alloc((size_t)c->vocab_size, sizeof(int32_t));
    s->cum = hearth_alloc((size_t)c->vocab_size, sizeof(double));
    if (!s->work || !s->ids || !s->stamp || !s->counts || !s->cum) goto nomem;
  }
  ctx->pool = hearth_pool_new(o->n_threads);
  if (!ctx->pool) goto nomem;
  return ctx;
nomem:
  if (ctx) ctx->opts.n_threads = o->n_threads;
  hearth_context_free(ctx);
  hearth_fail(err, err_len, HEARTH_E_NOMEM,
              "out of memory allocating the context (KV cache of %d blocks x %d tokens, %d batch tokens)",
              o->kv_num_blocks, o->kv_block_size, o->max_batch_tokens);
  return NULL;
}

uint64_t hearth_context_kv_bytes(const hearth_context* ctx) { return ctx ? ctx->kv_bytes : 0; }

int32_t hearth_step(hearth_context* ctx, const hearth_batch* b, char* err, size_t err_len) {
  if (!ctx || !b) return hearth_fail(err, err_len, HEARTH_E_INVALID, "step: context or batch is NULL");
  int32_t rc = hearth_check_batch(&ctx->model->cfg, &ctx->opts, b, err, err_len);
  if (rc != HEARTH_OK) return rc;
  const int32_t vocab = ctx->model->cfg.vocab_size;

  /* Rows that go through lm_head: every token, or the last token of each sequence that needs one. */
  int32_t rows_buf[1024];
  int32_t* rows = b->n_tokens <= 1024 ? rows_buf : malloc(sizeof(int32_t) * (size_t)b->n_tokens);
  const float** seq_logits = calloc((size_t)b->n_seqs, sizeof(float*));
  if (!rows || !seq_logits) {
    if (rows != rows_buf) free(rows);
    free(seq_logits);
    return hearth_fail(err, err_len, HEARTH_E_NOMEM, "step: out of memory");
  }
  int32_t n_rows = 0;
  float* logits;
  if (b->logits_mode == HEARTH_LOGITS_ALL) {
    for (int32_t t = 0; t < b->n_tokens; t++) rows[n_rows++] = t;
    logits = b->out_logits;
    for (int32_t s = 0; s < b->n_seqs; s++)
      if (b->sample[s]) seq_logits[s] = logits + (size_t)(b->seq_start[s + 1] - 1) * vocab;
  } else {
    logits = ctx->logits;
    for (int32_t s = 0; s < b->n_seqs; s++)
      if (b->sample[s] || b->logits_mode == HEARTH_LOGITS_LAST) {
        if (b->sample[s]) seq_logits[s] = logits + (size_t)n_rows * vocab;
        rows[n_rows++] = b->seq_start[s + 1] - 1;
      }
  }
  rc = hearth_forward_llama(ctx, b, logits, rows, n_rows);
  if (rc == HEARTH_OK && b->logits_mode == HEARTH_LOGITS_LAST)
    memcpy(b->out_logits, logits, sizeof(float) * (size_t)n_rows * vocab);
  if (rc == HEARTH_OK) hearth_sample_batch(ctx, b, seq_logits);
  if (rows != rows_buf) free(rows);
  free(seq_logits);
  return rc;
}

/* Worker 1's part of hearth_step_begin: the whole step, as the pool's caller. */
static void async_step_job(void* arg) {
  hearth_context* ctx = (hearth_context*)arg;
  ctx->async_step.rc = hearth_step(ctx, ctx->async_step.batch, ctx->async_step.err, ctx->async_step.err_len);
}

int32_t hearth_step_begin(hearth_context* ctx, const hearth_batch* b, char* err, size_t err_len) {
  if (!ctx || !b) return hearth_fail(err, err_len, HEARTH_E_INVALID, "step_begin: context or batch is NULL");
  if (ctx->async_step.pending)
    return hearth_fail(err, err_len, HEARTH_E_INVALID, "step_begin: a step is already in flight on this context");
  ctx->async_step.batch = b;
  ctx->async_step.err = err;
  ctx->async_step.err_len = err_len;
  ctx->async_step.pending = 1;
  if (!hearth_pool_submit(ctx->pool, async_step_job, ctx)) async_step_job(ctx); /* one thread: here, now */
  return HEARTH_OK;
}

int32_t hearth_step_join(hearth_context* ctx) {
  if (!ctx || !ctx->async_step.pending) return HEARTH_E_INVALID;
  hearth_pool_help(ctx->pool); /* returns at once when the step ran inline (one thread) */
  ctx->async_step.pending = 0;
  return ctx->async_step.rc;
}
