/*
 * forward.cu — one forward step of the Llama family (Llama 1/2/3, Mistral, Qwen2, Qwen3) on the device,
 * as kernels/cpu/forward_llama.c defines it. Read hc_forward top to bottom: it is the whole model; every
 * call below it is one kernel launch (or two) on the context's stream, nothing synchronises.
 *
 * Shapes: T = tokens in the batch, D = dim, H = n_heads, KVH = n_kv_heads, hd = head_dim, F = hidden_dim,
 * V = vocab, R = rows that go through lm_head. The batch is flat: every matmul runs over all T tokens at
 * once (the decode matvec for T <= 8, tensor-core tiles above).
 */
#include "internal.cuh"

/* y_i = x @ w_i^T for the weights given (1 to 3, NULL after the last); x quantized once for them first if
   any is quantized. swiglu: (gate, up) and y0 = silu(x @ gate^T) * (x @ up^T), y1 scratch. */
static void matmul(hearth_context* ctx, const float* x, int32_t T, const hc_weight* w0, float* y0, const hc_weight* w1,
                   float* y1, const hc_weight* w2, float* y2, int swiglu) {
  hc_targets tg;
  tg.n = w2 ? 3 : w1 ? 2 : 1;
  tg.w[0] = *w0, tg.y[0] = y0;
  if (w1) tg.w[1] = *w1, tg.y[1] = y1;
  if (w2) tg.w[2] = *w2, tg.y[2] = y2;
  tg.swiglu = swiglu;
  int quantized = 0;
  for (int32_t i = 0; i < tg.n; i++) quantized |= hearth_dtype_is_quantized(tg.w[i].dtype);
  if (quantized) hc_quantize_act(ctx->stream, &ctx->act, x, T, (int32_t)w0->cols);
  hc_matmul(ctx->stream, &tg, x, &ctx->act, T, w0->cols);
}

void hc_forward(hearth_context* ctx, int32_t T, int32_t n_items) {
  const hearth_model* m = ctx->model;
  const hearth_model_config* c = &m->cfg;
  const int32_t D = c->dim;
  cudaStream_t st = ctx->stream;

  /* x (T, D) = token embeddings */
  hc_embed(st, ctx->x, &m->tok_embd, ctx->bd, T, D);

  for (int32_t l = 0; l < c->n_layers; l++) {
    const hc_layer* L = &m->layers[l];

    /* xb = rmsnorm(x += previous layer's FFN output in xb) */
    hc_add_rmsnorm(st, ctx->xb, ctx->x, l == 0 ? NULL : ctx->xb, (const float*)L->attn_norm.data, T, D, c->norm_eps);

    /* q (T, H*hd), k, v (T, KVH*hd) = xb @ wq^T, wk^T, wv^T; then bias, q/k norm, RoPE, k and v into the cache */
    matmul(ctx, ctx->xb, T, &L->wq, ctx->q, &L->wk, ctx->k, &L->wv, ctx->v, 0);
    hc_qkv_post(st, m, ctx, l, T);

    /* att_out (T, H*hd) = softmax(q k^T * scale) v over each sequence's cache (split parts folded) */
    hc_attention(st, m, ctx, l, n_items);

    /* xb (T, D) = att_out @ wo^T; then x += xb and xb = rmsnorm(x) for the FFN */
    matmul(ctx, ctx->att_out, T, &L->wo, ctx->xb, NULL, NULL, NULL, NULL, 0);
    hc_add_rmsnorm(st, ctx->xb, ctx->x, ctx->xb, (const float*)L->ffn_norm.data, T, D, c->norm_eps);

    /* hb (T, F) = silu(xb @ w_gate^T) * (xb @ w_up^T) (hb2 scratch); xb (T, D) = hb @ w_down^T */
    matmul(ctx, ctx->xb, T, &L->w_gate, ctx->hb, &L->w_up, ctx->hb2, NULL, NULL, 1);
    matmul(ctx, ctx->hb, T, &L->w_down, ctx->xb, NULL, NULL, NULL, NULL, 0);
  }

  /* xb (T, D) = rmsnorm(x += last FFN output): the final hidden states of every token */
  hc_add_rmsnorm(st, ctx->xb, ctx->x, ctx->xb, (const float*)m->output_norm.data, T, D, c->norm_eps);
}

/* logits (R, V) = rows (R, D) @ lm_head^T */
void hc_lm_head(hearth_context* ctx, const float* rows, int32_t R) {
  matmul(ctx, rows, R, &ctx->model->lm_head, ctx->logits, NULL, NULL, NULL, NULL, 0);
}
