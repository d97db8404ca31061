/*
 * sampler.cu — kernels/cpu/sampler.c on the device: one block of 1024 threads per sequence runs the same
 * pipeline in the same order (bias and bans, minimum length, repetition / presence / frequency penalties,
 * no-repeat n-grams, temperature, top-k, top-p, min-p, draw), with the same counter-based RNG
 * (hc_uniform, bit-identical to hearth_uniform), the same candidate order (higher value first, then
 * lower id) and the same top-p growth (sorted windows of 64, x4, ...). Reported log-probabilities are
 * those of the raw logits.
 *
 * Sums are in double as on the CPU but reduced as trees in a fixed order (deterministic, not the CPU's
 * sequential order), and expf is CUDA's: a draw can differ from the CPU's only where the uniform falls
 * within rounding of a boundary between two candidates.
 */
#include "internal.cuh"
#include "kernels_common.cuh"

#define SB 1024         /* threads per sequence */
#define SORT_SMEM 2048  /* candidates sorted in shared memory; more go through global memory */

/* ---------------------------------------------------------------------------------------------------- */
/* Block-wide reductions (SB threads)                                                                     */

struct smp_shared {
  double dpart[SB / 32];
  float fpart[SB / 32];
  int32_t ipart[SB / 32];
  uint32_t hist[256];
  uint32_t skey[SORT_SMEM];
  int32_t sid[SORT_SMEM];
  int32_t scalar[8];
  double dscalar[2];
};

__device__ static double block_sum_d(smp_shared& sh, double v) {
  v = hc_warp_sum_double(v);
  __syncthreads();
  if (threadIdx.x % 32 == 0) sh.dpart[threadIdx.x / 32] = v;
  __syncthreads();
  double t = 0;
  for (int i = 0; i < SB / 32; i++) t += sh.dpart[i];
  return t;
}

__device__ static float block_max_f(smp_shared& sh, float v) {
  v = hc_warp_max(v);
  __syncthreads();
  if (threadIdx.x % 32 == 0) sh.fpart[threadIdx.x / 32] = v;
  __syncthreads();
  float t = -INFINITY;
  for (int i = 0; i < SB / 32; i++) t = fmaxf(t, sh.fpart[i]);
  return t;
}

/* Index of the largest value, the lowest such index on ties (the CPU's `if (w[i] > w[best])`). */
__device__ static int32_t block_argmax(smp_shared& sh, const float* w, int32_t n) {
  float bv = -INFINITY;
  int32_t bi = 0x7fffffff; /* none yet */
  for (int32_t i = threadIdx.x; i < n; i += SB) {
    const float x = w[i];
    if (bi == 0x7fffffff || x > bv) bv = x, bi = i; /* strict: the first of equal values stays */
  }
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
    const int32_t oi = __shfl_xor_sync(0xffffffffu, bi, o);
    if (ov > bv || (ov == bv && oi < bi)) bv = ov, bi = oi;
  }
  __syncthreads();
  if (threadIdx.x % 32 == 0) sh.fpart[threadIdx.x / 32] = bv, sh.ipart[threadIdx.x / 32] = bi;
  __syncthreads();
  float v = sh.fpart[0];
  int32_t idx = sh.ipart[0];
  for (int i = 1; i < SB / 32; i++)
    if (sh.fpart[i] > v || (sh.fpart[i] == v && sh.ipart[i] < idx)) v = sh.fpart[i], idx = sh.ipart[i];
  return idx == 0x7fffffff ? 0 : idx;
}

/* Inclusive prefix sums over SB values (one per thread); returns this thread's, *total gets the tile's. */
__device__ static double block_scan_d(smp_shared& sh, double v, double* total) {
  const int32_t lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  for (int o = 1; o < 32; o <<= 1) {
    const double n = __shfl_up_sync(0xffffffffu, v, o);
    if (lane >= o) v += n;
  }
  __syncthreads();
  if (lane == 31) sh.dpart[warp] = v;
  __syncthreads();
  double before = 0, all = 0;
  for (int i = 0; i < SB / 32; i++) {
    if (i < warp) before += sh.dpart[i];
    all += sh.dpart[i];
  }
  *total = all;
  return before + v;
}

__device__ static int32_t block_scan_i(smp_shared& sh, int32_t v, int32_t* total) {
  const int32_t lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  for (int o = 1; o < 32; o <<= 1) {
    const int32_t n = __shfl_up_sync(0xffffffffu, v, o);
    if (lane >= o) v += n;
  }
  __syncthreads();
  if (lane == 31) sh.ipart[warp] = v;
  __syncthreads();
  int32_t before = 0, all = 0;
  for (int i = 0; i < SB / 32; i++) {
    if (i < warp) before += sh.ipart[i];
    all += sh.ipart[i];
  }
  *total = all;
  return before + v;
}

/* ---------------------------------------------------------------------------------------------------- */
/* The K best ids of v[0..n) in candidate order                                                           */

/* Order-preserving key of a float: larger float, larger key. */
__device__ __forceinline__ uint32_t fkey(float f) {
  const uint32_t b = __float_as_uint(f);
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

/* a before b: higher key first, then lower id. */
__device__ __forceinline__ bool before(uint32_t ka, int32_t ia, uint32_t kb, int32_t ib) {
  return ka > kb || (ka == kb && ia < ib);
}

/* Bitonic sort of P (a power of two) pairs, best first. */
__device__ static void bitonic(uint32_t* key, int32_t* id, int32_t P) {
  for (int32_t size = 2; size <= P; size <<= 1)
    for (int32_t stride = size / 2; stride > 0; stride >>= 1) {
      __syncthreads();
      for (int32_t i = threadIdx.x; i < P; i += SB) {
        const int32_t jx = i ^ stride;
        if (jx <= i) continue;
        const bool up = (i & size) == 0; /* this run ends best first */
        const bool swap = up ? before(key[jx], id[jx], key[i], id[i]) : before(key[i], id[i], key[jx], id[jx]);
        if (swap) {
          const uint32_t tk = key[i];
          key[i] = key[jx], key[jx] = tk;
          const int32_t ti = id[i];
          id[i] = id[jx], id[jx] = ti;
        }
      }
    }
  __syncthreads();
}

/* Writes the K (1 <= K <= n) best ids of v into out[0..K), sorted: radix select of the K-th key (4 passes
   of 8 bits), a gather of the keys above it and of the lowest ids equal to it, then a sort. */
__device__ static void top_k_sorted(smp_shared& sh, const float* v, int32_t n, int32_t K, int32_t* out,
                                    uint32_t* gkey, int32_t* gid) {
  uint32_t prefix = 0, mask = 0;
  int32_t remaining = K;
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int32_t i = threadIdx.x; i < 256; i += SB) sh.hist[i] = 0;
    __syncthreads();
    for (int32_t i = threadIdx.x; i < n; i += SB) {
      const uint32_t k = fkey(v[i]);
      if ((k & mask) == prefix) atomicAdd(&sh.hist[(k >> shift) & 255], 1u);
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      int32_t above = 0, d = 255;
      for (; d > 0; d--) {
        if (above + (int32_t)sh.hist[d] >= remaining) break;
        above += (int32_t)sh.hist[d];
      }
      sh.scalar[0] = d;
      sh.scalar[1] = remaining - above;
    }
    __syncthreads();
    prefix |= (uint32_t)sh.scalar[0] << shift;
    mask |= 255u << shift;
    remaining = sh.scalar[1];
    __syncthreads();
  }
  /* prefix is the K-th key; take every key above it and the `remaining` lowest ids equal to it. */
  const int32_t n_above = K - remaining;
  const bool in_smem = K <= SORT_SMEM;
  uint32_t* key = in_smem ? sh.skey : gkey;
  int32_t* id = in_smem ? sh.sid : gid;
  if (threadIdx.x == 0) sh.scalar[2] = 0;
  __syncthreads();
  int32_t eq_base = 0;
  for (int32_t i0 = 0; i0 < n; i0 += SB) {
    const int32_t i = i0 + threadIdx.x;
    const uint32_t k = i < n ? fkey(v[i]) : 0;
    if (i < n && k > prefix) {
      const int32_t slot = atomicAdd(&sh.scalar[2], 1);
      key[slot] = k, id[slot] = i;
    }
    int32_t total;
    const int32_t rank = block_scan_i(sh, i < n && k == prefix ? 1 : 0, &total) - 1;
    if (i < n && k == prefix && eq_base + rank < remaining) key[n_above + eq_base + rank] = k, id[n_above + eq_base + rank] = i;
    eq_base += total;
  }
  int32_t P = 1;
  while (P < K) P <<= 1;
  for (int32_t i = K + threadIdx.x; i < P; i += SB) key[i] = 0, id[i] = 0x7fffffff; /* sentinels sort last */
  bitonic(key, id, P);
  for (int32_t i = threadIdx.x; i < K; i += SB) out[i] = id[i];
  __syncthreads();
}

/* ---------------------------------------------------------------------------------------------------- */

typedef struct {
  const float* logits;       /* (rows, V) */
  const hc_batch_dev* bd;
  hc_sampler_scratch smp;
  hc_sample_out* out;        /* (S) */
  int32_t V;
} smp_args;

/* First index i in [0, n) whose inclusive sum of w[ids[i]] (ids NULL: identity) reaches the test: cum >= t
   (strict = 0) or cum > t (strict = 1); -1 if none. *sum_out gets the sum of all n. */
__device__ static int32_t first_reaching(smp_shared& sh, const float* w, const int32_t* ids, int32_t n, double t,
                                         int strict, double* sum_out) {
  double carry = 0;
  int32_t found = -1;
  for (int32_t i0 = 0; i0 < n; i0 += SB) {
    const int32_t i = i0 + threadIdx.x;
    const double x = i < n ? (double)w[ids ? ids[i] : i] : 0.0;
    double tile;
    const double cum = carry + block_scan_d(sh, x, &tile);
    if (threadIdx.x == 0) sh.scalar[3] = 0x7fffffff;
    __syncthreads();
    if (found < 0 && i < n && (strict ? t < cum : cum >= t)) atomicMin(&sh.scalar[3], i);
    __syncthreads();
    if (found < 0 && sh.scalar[3] != 0x7fffffff) found = sh.scalar[3];
    carry += tile;
  }
  *sum_out = carry;
  return found;
}

__global__ void __launch_bounds__(SB) sample_kernel(smp_args a) {
  __shared__ smp_shared sh;
  const int32_t s = blockIdx.x, V = a.V;
  const hc_batch_dev& b = *a.bd;
  const int32_t row = b.sample_row[s];
  hc_sample_out* o = a.out + s;
  if (row < 0) {
    if (threadIdx.x == 0) o->token = -1, o->wrote_logprobs = 0;
    return;
  }
  const hearth_sampling p = b.sampling[s];
  const float* raw = a.logits + (size_t)row * V;
  float* w = a.smp.work + (size_t)s * V;
  uint32_t* stamp = a.smp.stamp + (size_t)s * V;
  int32_t* counts = a.smp.counts + (size_t)s * V;
  int32_t* ids = a.smp.ids + (size_t)s * a.smp.sort_cap;
  uint32_t* gkey = a.smp.keys + (size_t)s * a.smp.sort_cap;
  const uint32_t epoch = b.epoch;
  const int32_t has_history = b.has_history;

  for (int32_t i = threadIdx.x; i < V; i += SB) w[i] = raw[i];
  __syncthreads();
  /* Logit bias, in order (an id given twice gets both). */
  if (threadIdx.x == 0)
    for (int32_t i = 0; i < p.bias_len; i++) {
      const int32_t id = b.bias_ids[p.bias_start + i];
      if (id >= 0 && id < V) w[id] = __fadd_rn(w[id], b.bias_values[p.bias_start + i]);
    }
  __syncthreads();
  const int32_t* hist = has_history ? b.history + p.history_start : NULL;
  const int32_t n_hist = hist ? p.history_len : 0, n_prompt = p.prompt_len < n_hist ? p.prompt_len : n_hist;
  if (n_hist - n_prompt < p.min_tokens)
    for (int32_t i = threadIdx.x; i < p.stop_ids_len; i += SB) {
      const int32_t id = b.stop_ids[p.stop_ids_start + i];
      if (id >= 0 && id < V) w[id] = -INFINITY;
    }
  __syncthreads();
  if (p.repetition_penalty != 1.0f && p.repetition_penalty > 0) {
    /* Each distinct id once: the thread that stamps it first applies the penalty. */
    for (int32_t i = threadIdx.x; i < n_hist; i += SB) {
      const int32_t id = hist[i];
      if (id < 0 || id >= V) continue;
      if (atomicMax(&stamp[id], epoch) < epoch)
        w[id] = w[id] > 0 ? __fdiv_rn(w[id], p.repetition_penalty) : __fmul_rn(w[id], p.repetition_penalty);
    }
    __syncthreads();
  }
  if (p.presence_penalty != 0 || p.frequency_penalty != 0) {
    for (int32_t i = n_prompt + threadIdx.x; i < n_hist; i += SB)
      if (hist[i] >= 0 && hist[i] < V) atomicAdd(&counts[hist[i]], 1);
    __syncthreads();
    for (int32_t i = n_prompt + threadIdx.x; i < n_hist; i += SB) {
      const int32_t id = hist[i];
      if (id < 0 || id >= V) continue;
      const int32_t c = atomicExch(&counts[id], 0); /* once per id, and the array is clean again */
      if (c > 0) w[id] = __fsub_rn(w[id], __fadd_rn(__fmul_rn(p.frequency_penalty, (float)c), p.presence_penalty));
    }
    __syncthreads();
  }
  const int32_t ng = p.no_repeat_ngram_size;
  if (ng > 0 && n_hist >= ng - 1) {
    const int32_t* tail = hist + n_hist - (ng - 1);
    for (int32_t i = threadIdx.x; i + ng <= n_hist; i += SB) {
      bool match = true;
      for (int32_t jx = 0; jx < ng - 1 && match; jx++) match = hist[i + jx] == tail[jx];
      if (!match) continue;
      const int32_t id = hist[i + ng - 1];
      if (id >= 0 && id < V) w[id] = -INFINITY;
    }
  }
  __syncthreads();

  int32_t token;
  const uint64_t position = (uint64_t)b.positions[b.seq_start[s + 1] - 1] + 1;
  const int32_t best = block_argmax(sh, w, V);
  if (p.temperature <= 0 || w[best] == -INFINITY) {
    token = best;
  } else {
    const float inv_t = 1.0f / p.temperature, mx = w[best];
    __syncthreads();
    double part = 0;
    for (int32_t i = threadIdx.x; i < V; i += SB) {
      const float e = expf(__fmul_rn(__fsub_rn(w[i], mx), inv_t));
      w[i] = e;
      part += (double)e;
    }
    const double total = block_sum_d(sh, part);
    __syncthreads();
    const bool limit_k = p.top_k > 0 && p.top_k < V, limit_p = p.top_p > 0 && p.top_p < 1;
    const int32_t* cand = NULL; /* candidate ids in order; NULL: the identity */
    int32_t n = V;
    if (limit_k || limit_p) {
      int32_t k = limit_k ? p.top_k : (V < 64 ? V : 64);
      double kept = 0;
      for (;;) {
        top_k_sorted(sh, w, V, k, ids, gkey, ids);
        double kp = 0;
        for (int32_t i = threadIdx.x; i < k; i += SB) kp += (double)w[ids[i]];
        kept = block_sum_d(sh, kp);
        if (!limit_p || limit_k || kept >= (double)p.top_p * total || k == V) break;
        k = k > V / 4 ? V : k * 4;
      }
      cand = ids;
      n = k;
      if (limit_p) {
        const double target = (double)p.top_p * (limit_k ? kept : total);
        double all;
        const int32_t f = first_reaching(sh, w, cand, k, target, 0, &all);
        if (f >= 0) n = f + 1;
      }
    }
    if (p.min_p > 0) { /* keep what is at least min_p times the most likely (weight 1), in order */
      int32_t kept_n = 0;
      for (int32_t i0 = 0; i0 < n; i0 += SB) {
        const int32_t i = i0 + threadIdx.x;
        const int32_t id = i < n ? (cand ? cand[i] : i) : -1;
        const int keep = id >= 0 && w[id] >= p.min_p;
        int32_t total_keep;
        const int32_t rank = block_scan_i(sh, keep, &total_keep) - 1;
        __syncthreads(); /* every thread has read cand[i] before any writes below */
        if (keep) ids[kept_n + rank] = id;
        kept_n += total_keep;
        __syncthreads();
      }
      cand = ids;
      n = kept_n;
    }
    double mass;
    first_reaching(sh, w, cand, n, 0.0, 0, &mass); /* the sum of the candidates' weights */
    const double u = hc_uniform(p.seed, position) * mass;
    const int32_t f = first_reaching(sh, w, cand, n, u, 1, &mass);
    token = f >= 0 ? (cand ? cand[f] : f) : (cand ? cand[n - 1] : n - 1);
  }
  __syncthreads();

  /* Raw log-probabilities: the sampled token's and the top n. */
  const int want = p.want_logprob || p.n_top_logprobs > 0;
  if (want) {
    float mloc = -INFINITY;
    for (int32_t i = threadIdx.x; i < V; i += SB) mloc = fmaxf(mloc, raw[i]);
    const float mxr = block_max_f(sh, mloc);
    double part = 0;
    for (int32_t i = threadIdx.x; i < V; i += SB) part += exp((double)raw[i] - mxr);
    const double sum = block_sum_d(sh, part);
    const float log_z = mxr + (float)log(sum);
    int32_t n_top = p.n_top_logprobs > HEARTH_MAX_TOP_LOGPROBS ? HEARTH_MAX_TOP_LOGPROBS : p.n_top_logprobs;
    if (n_top > V) n_top = V;
    if (n_top > 0) top_k_sorted(sh, raw, V, n_top, ids, gkey, ids);
    if (threadIdx.x == 0) {
      o->logprob = raw[token] - log_z;
      o->n_top = n_top;
      for (int32_t i = 0; i < HEARTH_MAX_TOP_LOGPROBS; i++) {
        o->top_ids[i] = i < n_top ? ids[i] : -1;
        o->top_logprobs[i] = i < n_top ? raw[ids[i]] - log_z : -INFINITY;
      }
    }
  }
  if (threadIdx.x == 0) o->token = token, o->wrote_logprobs = want;
}

void hc_sample(cudaStream_t st, const hearth_context* ctx, int32_t n_seqs) {
  smp_args a;
  a.logits = ctx->logits;
  a.bd = ctx->bd;
  a.smp = ctx->smp;
  a.out = ctx->smp_out;
  a.V = ctx->model->cfg.vocab_size;
  sample_kernel<<<n_seqs, SB, 0, st>>>(a);
}
