/*
 * kernels_misc.cu — the per-token pieces of the forward pass: embedding lookup, the residual add fused
 * with RMSNorm, the q/k/v post-processing (biases, per-head norms, RoPE, the write into the paged KV
 * cache, all in one pass), SwiGLU, and the quantization of activations for the integer dot products.
 *
 * Arithmetic that the CPU backend does in a fixed order (RMSNorm's double sum of squares, RoPE's
 * products, dequantized embeddings) is written with explicit round-to-nearest intrinsics so that nvcc
 * does not contract it into FMAs: given the same inputs these produce the CPU's bits (cosf / sinf /
 * expf may still differ from glibc in the last place).
 */
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "internal.cuh"
#include "kernels_common.cuh"

/* ---------------------------------------------------------------------------------------------------- */
/* Embedding                                                                                              */

/* x[t] = dequantized row tokens[t] of the embedding; one block per token. */
__global__ void embed_kernel(float* __restrict__ x, hc_weight emb, const hc_batch_dev* __restrict__ bd, int32_t D) {
  const int32_t t = blockIdx.x;
  const int64_t row = bd->tokens[t];
  for (int32_t c = threadIdx.x; c < D; c += blockDim.x) x[(size_t)t * D + c] = hc_weight_at(emb, row, c);
}

void hc_embed(cudaStream_t st, float* x, const hc_weight* emb, const hc_batch_dev* bd, int32_t T, int32_t D) {
  embed_kernel<<<T, 256, 0, st>>>(x, *emb, bd, D);
}

/* out[r] = x[logit_rows[r]] */
__global__ void gather_rows_kernel(float* __restrict__ out, const float* __restrict__ x, const hc_batch_dev* __restrict__ bd,
                                   int32_t D) {
  const int32_t r = blockIdx.x, src = bd->logit_rows[r];
  for (int32_t c = threadIdx.x; c < D; c += blockDim.x) out[(size_t)r * D + c] = x[(size_t)src * D + c];
}

void hc_gather_rows(cudaStream_t st, float* out, const float* x, const hc_batch_dev* bd, int32_t n_rows, int32_t D) {
  gather_rows_kernel<<<n_rows, 256, 0, st>>>(out, x, bd, D);
}

/* ---------------------------------------------------------------------------------------------------- */
/* Residual add + RMSNorm                                                                                 */

/* Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the total. */
__device__ static double block_sum_double(double v) {
  __shared__ double part[32];
  v = hc_warp_sum_double(v);
  const int32_t warp = threadIdx.x / 32, lane = threadIdx.x % 32, n_warps = blockDim.x / 32;
  __syncthreads(); /* part may still be read by a previous call */
  if (lane == 0) part[warp] = v;
  __syncthreads();
  double total = 0;
  for (int32_t w = 0; w < n_warps; w++) total += part[w]; /* fixed order: deterministic */
  return total;
}

/* One block per row r: x[r] += add[r]; out[r] = w * (x[r] * 1 / sqrt(mean(x^2) + eps)). out may be add:
   each thread reads its own elements of the row before it writes them. */
__global__ void add_rmsnorm_kernel(float* out, float* __restrict__ x, const float* add, const float* __restrict__ w,
                                   int32_t D, float eps) {
  const int32_t r = blockIdx.x;
  float* xr = x + (size_t)r * D;
  double ss = 0;
  for (int32_t c = threadIdx.x; c < D; c += blockDim.x) {
    float v = xr[c];
    if (add) v = __fadd_rn(v, add[(size_t)r * D + c]), xr[c] = v;
    ss += (double)v * v;
  }
  ss = block_sum_double(ss);
  const float scale = 1.0f / sqrtf((float)(ss / (double)D) + eps);
  for (int32_t c = threadIdx.x; c < D; c += blockDim.x) out[(size_t)r * D + c] = __fmul_rn(w[c], __fmul_rn(xr[c], scale));
}

void hc_add_rmsnorm(cudaStream_t st, float* out, float* x, const float* add, const float* w, int32_t n_rows, int32_t D,
                    float eps) {
  const int32_t threads = D >= 1024 ? 512 : D >= 256 ? 256 : 64;
  add_rmsnorm_kernel<<<n_rows, threads, 0, st>>>(out, x, add, w, D, eps);
}

/* ---------------------------------------------------------------------------------------------------- */
/* q / k / v after their projections                                                                      */

typedef struct {
  float* q;                /* (T, H, hd) in place */
  const float* k;          /* (T, KVH, hd) */
  const float* v;          /* (T, KVH, hd) */
  const float* bq;         /* (H * hd) or NULL */
  const float* bk;
  const float* bv;
  const float* q_norm;     /* (hd) or NULL */
  const float* k_norm;
  const float* inv_freq;   /* (hd / 2) */
  float* key_cache;        /* this layer's (blocks, KVH, bs, hd) */
  float* value_cache;
  const hc_batch_dev* bd;
  int32_t H, KVH, hd, bs, rope_style;
  float eps, attn_factor;
} qkv_args;

/* One block per token, one warp per head: q heads, then k heads, then v heads. Each warp stages its head
   in shared memory, normalises it (Qwen3), rotates it (RoPE) and writes it out. */
__global__ void qkv_post_kernel(qkv_args a) {
  extern __shared__ float stage[]; /* (warps, hd) */
  const int32_t t = blockIdx.x, warp = threadIdx.x / 32, lane = threadIdx.x % 32, n_warps = blockDim.x / 32;
  const int32_t hd = a.hd, half = hd / 2, pos = a.bd->positions[t], s = a.bd->token_seq[t];
  float* buf = stage + (size_t)warp * hd;
  const int32_t block = a.bd->block_tables[(size_t)s * a.bd->bt_stride + pos / a.bs];
  for (int32_t head = warp; head < a.H + 2 * a.KVH; head += n_warps) {
    const int32_t kind = head < a.H ? 0 : head < a.H + a.KVH ? 1 : 2; /* q, k, v */
    const int32_t h = kind == 0 ? head : kind == 1 ? head - a.H : head - a.H - a.KVH;
    const float* src = kind == 0 ? a.q + ((size_t)t * a.H + h) * hd
                       : kind == 1 ? a.k + ((size_t)t * a.KVH + h) * hd
                                   : a.v + ((size_t)t * a.KVH + h) * hd;
    const float* bias = kind == 0 ? a.bq : kind == 1 ? a.bk : a.bv;
    const float* norm = kind == 0 ? a.q_norm : kind == 1 ? a.k_norm : NULL;
    double ss = 0;
    for (int32_t d = lane; d < hd; d += 32) {
      float v = src[d];
      if (bias) v = __fadd_rn(v, bias[(size_t)h * hd + d]);
      buf[d] = v;
      ss += (double)v * v;
    }
    if (norm) {
      ss = hc_warp_sum_double(ss);
      const float scale = 1.0f / sqrtf((float)(ss / (double)hd) + a.eps);
      for (int32_t d = lane; d < hd; d += 32) buf[d] = __fmul_rn(norm[d], __fmul_rn(buf[d], scale));
    }
    __syncwarp();
    float* dst;
    if (kind == 0) dst = a.q + ((size_t)t * a.H + h) * hd;
    else {
      const size_t off = (((size_t)block * a.KVH + h) * a.bs + (size_t)(pos % a.bs)) * hd;
      dst = kind == 1 ? a.key_cache + off : a.value_cache + off;
    }
    if (kind == 2) {
      for (int32_t d = lane; d < hd; d += 32) dst[d] = buf[d];
    } else {
      for (int32_t i = lane; i < half; i += 32) {
        const int32_t ia = a.rope_style == HEARTH_ROPE_HALF ? i : 2 * i;
        const int32_t ib = a.rope_style == HEARTH_ROPE_HALF ? i + half : 2 * i + 1;
        const float angle = __fmul_rn((float)pos, a.inv_freq[i]); /* float32, as transformers computes it */
        const float c = __fmul_rn(cosf(angle), a.attn_factor), sn = __fmul_rn(sinf(angle), a.attn_factor);
        const float x0 = buf[ia], x1 = buf[ib];
        dst[ia] = __fsub_rn(__fmul_rn(x0, c), __fmul_rn(x1, sn));
        dst[ib] = __fadd_rn(__fmul_rn(x1, c), __fmul_rn(x0, sn));
      }
    }
    __syncwarp(); /* buf is reused by this warp's next head */
  }
}

void hc_qkv_post(cudaStream_t st, const hearth_model* m, const hearth_context* ctx, int32_t layer, int32_t T) {
  const hearth_model_config* c = &m->cfg;
  const hc_layer* L = &m->layers[layer];
  const size_t layer_off = (size_t)layer * ctx->opts.kv_num_blocks * c->n_kv_heads * ctx->opts.kv_block_size * c->head_dim;
  qkv_args a;
  a.q = ctx->q;
  a.k = ctx->k;
  a.v = ctx->v;
  a.bq = (const float*)L->bq.data;
  a.bk = (const float*)L->bk.data;
  a.bv = (const float*)L->bv.data;
  a.q_norm = (const float*)L->q_norm.data;
  a.k_norm = (const float*)L->k_norm.data;
  a.inv_freq = m->rope_inv_freq;
  a.key_cache = ctx->key_cache + layer_off;
  a.value_cache = ctx->value_cache + layer_off;
  a.bd = ctx->bd;
  a.H = c->n_heads;
  a.KVH = c->n_kv_heads;
  a.hd = c->head_dim;
  a.bs = ctx->opts.kv_block_size;
  a.rope_style = c->rope_style;
  a.eps = c->norm_eps;
  a.attn_factor = c->rope_attn_factor;
  const int32_t heads = c->n_heads + 2 * c->n_kv_heads, warps = heads < 8 ? heads : 8;
  qkv_post_kernel<<<T, warps * 32, sizeof(float) * (size_t)warps * c->head_dim, st>>>(a);
}

/* ---------------------------------------------------------------------------------------------------- */
/* SwiGLU                                                                                                 */

__global__ void swiglu_kernel(float* __restrict__ a, const float* __restrict__ b, int64_t n) {
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    const float g = a[i];
    a[i] = __fmul_rn(__fdiv_rn(g, __fadd_rn(1.0f, expf(-g))), b[i]);
  }
}

void hc_swiglu(cudaStream_t st, float* a, const float* b, int64_t n) {
  int64_t blocks = (n + 255) / 256;
  swiglu_kernel<<<(unsigned)(blocks < 65535 ? blocks : 65535), 256, 0, st>>>(a, b, n);
}

/* ---------------------------------------------------------------------------------------------------- */
/* Activation quantization                                                                                */

/* One warp per 32 values: d = max|x| / 127, q = round(x / d), s = sum of q. */
__global__ void quantize_act_kernel(hc_qact act, const float* __restrict__ x, int64_t n_chunks) {
  const int64_t chunk = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) / 32;
  const int32_t lane = threadIdx.x % 32;
  if (chunk >= n_chunks) return;
  const float v = x[chunk * 32 + lane];
  const float amax = hc_warp_max(fabsf(v));
  const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
  int32_t q = __float2int_rn(v * id);
  q = q > 127 ? 127 : q < -127 ? -127 : q;
  act.q[chunk * 32 + lane] = (int8_t)q;
  const int32_t sum = hc_warp_sum_int(q);
  if (lane == 0) {
    act.d[chunk] = d;
    act.s[chunk] = sum;
  }
}

void hc_quantize_act(cudaStream_t st, const hc_qact* act, const float* x, int32_t T, int32_t k) {
  const int64_t n_chunks = (int64_t)T * k / 32;
  quantize_act_kernel<<<(unsigned)((n_chunks + 7) / 8), 256, 0, st>>>(*act, x, n_chunks);
}
