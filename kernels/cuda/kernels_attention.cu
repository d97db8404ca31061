/*
 * kernels_attention.cu — causal attention over the paged KV cache, blocked with an online softmax
 * ("flash" attention), for prefill tiles and decodes alike.
 *
 * A work item (hc_att_item, planned on the host per step) is a tile of consecutive query tokens of one
 * sequence with some query heads of one kv head's GQA group: every key and value a block loads from the
 * cache serves all of its query rows. Keys are visited in chunks of HC_ATT_KC = 32 at multiples of 32
 * (one key per lane for the scores, then one output dimension per lane for P V). A long item's chunks are
 * split into up to HC_ATT_MAX_SPLIT parts that run as separate blocks (flash-decoding, so one long
 * decode spreads over the chip); their partial (max, sum, output) are folded in order by the merge
 * kernel, as forward_llama.c folds its segments. The split depends only on the item's own positions, so a
 * sequence's result does not depend on what else is in the batch.
 */
#include "internal.cuh"
#include "kernels_common.cuh"

typedef struct {
  const float* q;           /* (T, H, hd) */
  float* out;               /* (T, H, hd) */
  const float* key_cache;   /* this layer's (blocks, KVH, bs, hd) */
  const float* value_cache;
  float* part;              /* (part rows, hd + 2) */
  const hc_batch_dev* bd;
  int32_t H, KVH, hd, bs, window;
  float scale;
} att_args;

__device__ __forceinline__ int32_t first_key(int32_t pos, int32_t window) {
  return window > 0 && pos + 1 > window ? pos + 1 - window : 0;
}

/* NI = ceil(hd / 32) output values per lane; RPW query rows per warp. */
template <int NI>
__global__ void __launch_bounds__(HC_ATT_THREADS) attention_kernel(att_args a) {
  constexpr int RPW = NI >= 16 ? 1 : 16 / NI;
  constexpr int RPB = RPW * (HC_ATT_THREADS / 32);
  const hc_att_item it = a.bd->att[blockIdx.x];
  const int32_t split = blockIdx.y;
  if (split >= it.n_split) return;
  extern __shared__ float smem[];
  const int32_t hd = a.hd, ldk = hd + 1;
  float* qs = smem;                  /* (RPB, hd) the item's query rows */
  float* ks = qs + RPB * hd;         /* (KC, hd + 1) the chunk's keys (padded: lanes read different rows) */
  float* vs = ks + HC_ATT_KC * ldk;  /* (KC, hd) the chunk's values */
  const int32_t warp = threadIdx.x / 32, lane = threadIdx.x % 32, rows = it.nt * it.nh;
  const int32_t kvh = it.h0 / (a.H / a.KVH);
  const int32_t* table = a.bd->block_tables + (size_t)it.seq * a.bd->bt_stride;
  const int32_t p_first = a.bd->positions[it.t0], p_last = p_first + it.nt - 1;
  const int32_t item_lo = first_key(p_first, a.window), item_hi = p_last + 1;

  /* Row r is token t0 + r / nh with query head h0 + r % nh. */
  for (int32_t i = threadIdx.x; i < rows * hd; i += blockDim.x) {
    const int32_t r = i / hd, d = i % hd;
    qs[i] = a.q[((size_t)(it.t0 + r / it.nh) * a.H + it.h0 + r % it.nh) * hd + d];
  }
  float m[RPW], l[RPW], acc[RPW][NI];
  int32_t lo[RPW], hi[RPW];
#pragma unroll
  for (int i = 0; i < RPW; i++) {
    m[i] = -INFINITY, l[i] = 0;
#pragma unroll
    for (int n = 0; n < NI; n++) acc[i][n] = 0;
    const int32_t r = warp + 4 * i, pos = p_first + (r < rows ? r / it.nh : 0);
    lo[i] = first_key(pos, a.window);
    hi[i] = pos + 1;
  }
  const int32_t cs = split * it.chunks_per_split;
  const int32_t ce = cs + it.chunks_per_split < it.n_chunks ? cs + it.chunks_per_split : it.n_chunks;
  for (int32_t cc = cs; cc < ce; cc++) {
    const int32_t base = (it.c0 + cc) * HC_ATT_KC;
    __syncthreads(); /* the previous chunk is consumed (and qs is written, the first time) */
    for (int32_t i = threadIdx.x; i < HC_ATT_KC * hd; i += blockDim.x) {
      const int32_t j = i / hd, d = i % hd, p = base + j;
      float kv = 0, vv = 0; /* slots no row sees hold zeros: finite, so a masked slot adds 0 * value */
      if (p >= item_lo && p < item_hi) {
        const size_t off = (((size_t)table[p / a.bs] * a.KVH + kvh) * a.bs + p % a.bs) * hd + d;
        kv = a.key_cache[off];
        vv = a.value_cache[off];
      }
      ks[j * ldk + d] = kv;
      vs[j * hd + d] = vv;
    }
    __syncthreads();
#pragma unroll
    for (int i = 0; i < RPW; i++) {
      const int32_t r = warp + 4 * i;
      if (r >= rows) break;
      const int32_t p = base + lane;
      const int visible = p >= lo[i] && p < hi[i];
      float s = -INFINITY;
      if (visible) {
        const float* qr = qs + r * hd;
        const float* kr = ks + lane * ldk;
        float dot = 0;
        for (int32_t d = 0; d < hd; d++) dot += qr[d] * kr[d];
        s = dot * a.scale;
      }
      const float mc = hc_warp_max(s);
      if (mc == -INFINITY) continue; /* this row sees no key of the chunk */
      const float mn = fmaxf(m[i], mc), alpha = expf(m[i] - mn);
      const float pe = visible ? expf(s - mn) : 0.0f;
      l[i] = l[i] * alpha + hc_warp_sum(pe);
#pragma unroll
      for (int n = 0; n < NI; n++) acc[i][n] *= alpha;
      for (int32_t j = 0; j < HC_ATT_KC; j++) {
        const float pj = __shfl_sync(0xffffffffu, pe, j);
#pragma unroll
        for (int n = 0; n < NI; n++) {
          const int32_t d = lane + 32 * n;
          if (d < hd) acc[i][n] += pj * vs[j * hd + d];
        }
      }
      m[i] = mn;
    }
  }
#pragma unroll
  for (int i = 0; i < RPW; i++) {
    const int32_t r = warp + 4 * i;
    if (r >= rows) break;
    if (it.n_split == 1) {
      const float inv = 1.0f / l[i];
      float* o = a.out + ((size_t)(it.t0 + r / it.nh) * a.H + it.h0 + r % it.nh) * hd;
#pragma unroll
      for (int n = 0; n < NI; n++)
        if (lane + 32 * n < hd) o[lane + 32 * n] = acc[i][n] * inv;
    } else {
      float* pr = a.part + ((size_t)it.part + (size_t)split * rows + r) * (hd + 2);
      if (lane == 0) pr[0] = m[i], pr[1] = l[i];
#pragma unroll
      for (int n = 0; n < NI; n++)
        if (lane + 32 * n < hd) pr[2 + lane + 32 * n] = acc[i][n];
    }
  }
  (void)RPB;
}

/* Folds an item's split parts in order (empty parts skipped), then out = acc / sum. One block per item. */
__global__ void attention_merge_kernel(att_args a) {
  const hc_att_item it = a.bd->att[blockIdx.x];
  if (it.n_split <= 1) return;
  const int32_t hd = a.hd, rows = it.nt * it.nh;
  for (int32_t i = threadIdx.x; i < rows * hd; i += blockDim.x) {
    const int32_t r = i / hd, d = i % hd;
    float M = -INFINITY, L = 0, ACC = 0;
    for (int32_t s = 0; s < it.n_split; s++) {
      const float* pr = a.part + ((size_t)it.part + (size_t)s * rows + r) * (hd + 2);
      const float pm = pr[0], pl = pr[1];
      if (pl == 0) continue;
      const float mn = fmaxf(M, pm), ea = expf(M - mn), eb = expf(pm - mn);
      L = L * ea + pl * eb;
      ACC = ACC * ea + pr[2 + d] * eb;
      M = mn;
    }
    a.out[((size_t)(it.t0 + r / it.nh) * a.H + it.h0 + r % it.nh) * hd + d] = ACC / L;
  }
}

static size_t att_smem(int32_t hd) {
  return sizeof(float) * ((size_t)hc_att_rows(hd) * hd + (size_t)HC_ATT_KC * (hd + 1) + (size_t)HC_ATT_KC * hd);
}

cudaError_t hc_attention_init(int32_t hd) {
  const int smem = (int)att_smem(hd);
  cudaError_t e = cudaSuccess;
  if (hd <= 32) e = cudaFuncSetAttribute(attention_kernel<1>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  else if (hd <= 64) e = cudaFuncSetAttribute(attention_kernel<2>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  else if (hd <= 128) e = cudaFuncSetAttribute(attention_kernel<4>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  else e = cudaFuncSetAttribute(attention_kernel<8>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
  return e;
}

void hc_attention(cudaStream_t st, const hearth_model* m, const hearth_context* ctx, int32_t layer, int32_t n_items) {
  const hearth_model_config* c = &m->cfg;
  const size_t layer_off = (size_t)layer * ctx->opts.kv_num_blocks * c->n_kv_heads * ctx->opts.kv_block_size * c->head_dim;
  att_args a;
  a.q = ctx->q;
  a.out = ctx->att_out;
  a.key_cache = ctx->key_cache + layer_off;
  a.value_cache = ctx->value_cache + layer_off;
  a.part = ctx->att_part;
  a.bd = ctx->bd;
  a.H = c->n_heads;
  a.KVH = c->n_kv_heads;
  a.hd = c->head_dim;
  a.bs = ctx->opts.kv_block_size;
  a.window = c->sliding_window;
  a.scale = c->attn_scale;
  const dim3 grid((unsigned)n_items, HC_ATT_MAX_SPLIT);
  const size_t smem = att_smem(c->head_dim);
  if (c->head_dim <= 32) attention_kernel<1><<<grid, HC_ATT_THREADS, smem, st>>>(a);
  else if (c->head_dim <= 64) attention_kernel<2><<<grid, HC_ATT_THREADS, smem, st>>>(a);
  else if (c->head_dim <= 128) attention_kernel<4><<<grid, HC_ATT_THREADS, smem, st>>>(a);
  else attention_kernel<8><<<grid, HC_ATT_THREADS, smem, st>>>(a);
  attention_merge_kernel<<<(unsigned)n_items, 256, 0, st>>>(a);
}
