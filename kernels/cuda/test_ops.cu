/*
 * test_ops.cu — test-only exports (hearth_test_cuda_*) that test/gpu/ reaches through FFI to run single
 * ops of this backend on host arrays: dequantization, the matmul paths, RMSNorm, SwiGLU, the device
 * uniform and the whole sampler on given logits. Not part of hearth.h; each call allocates, runs, copies
 * back and frees, synchronously, on the current device. They return 0, or a negative value with nothing
 * left allocated.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.cuh"
#include "kernels_common.cuh"

static int native(int32_t dtype) {
  return dtype == HEARTH_DTYPE_F32 || dtype == HEARTH_DTYPE_F16 || dtype == HEARTH_DTYPE_BF16 || dtype == HEARTH_DTYPE_Q8_0 ||
         dtype == HEARTH_DTYPE_Q4_0 || dtype == HEARTH_DTYPE_Q4_K;
}

static int64_t host_bytes(int32_t dtype, int64_t rows, int64_t cols) {
  if (dtype == HEARTH_DTYPE_F32) return rows * cols * 4;
  if (dtype == HEARTH_DTYPE_F16 || dtype == HEARTH_DTYPE_BF16) return rows * cols * 2;
  return rows * hearth_quant_row_bytes(dtype, cols);
}

static int upload_test_weight(hc_weight* w, int32_t dtype, const void* src, int64_t rows, int64_t cols) {
  memset(w, 0, sizeof *w);
  if (!native(dtype) || rows <= 0 || cols <= 0 || host_bytes(dtype, rows, cols) <= 0) return -1;
  w->dtype = dtype, w->rows = rows, w->cols = cols;
  char err[256];
  return hc_upload_weight(NULL, w, src, "test weight", err, sizeof err) == HEARTH_OK ? 0 : -1;
}

static void free_test_weight(hc_weight* w) {
  if (w->data) cudaFree(w->data);
  if (w->scales) cudaFree(w->scales);
}

__global__ void dequant_kernel(float* out, hc_weight w) {
  const int64_t n = w.rows * w.cols;
  for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    out[i] = hc_weight_at(w, i / w.cols, i % w.cols);
}

__global__ void uniform_kernel(double* out, const uint64_t* seeds, const uint64_t* positions, int32_t n) {
  const int32_t i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = hc_uniform(seeds[i], positions[i]);
}

__global__ void copy_kernel(uint4* __restrict__ dst, const uint4* __restrict__ src, size_t n) {
  for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) dst[i] = src[i];
}

/* Allocations of one test call, freed together. */
typedef struct {
  void* p[24];
  int n;
  cudaError_t e;
} dev_set;

static void* dset_alloc(dev_set* s, size_t bytes, const void* init) {
  if (s->e != cudaSuccess) return NULL;
  void* p = NULL;
  s->e = cudaMalloc(&p, bytes ? bytes : 1);
  if (s->e != cudaSuccess) return NULL;
  s->p[s->n++] = p;
  if (init) s->e = cudaMemcpy(p, init, bytes, cudaMemcpyHostToDevice);
  return p;
}

static void dset_free(dev_set* s) {
  for (int i = 0; i < s->n; i++) cudaFree(s->p[i]);
}

extern "C" {

/* dst (rows, cols) = the values of a weight of dtype (GGUF bytes) as the kernels read them. */
HEARTH_API int32_t hearth_test_cuda_dequantize(int32_t dtype, const void* src, int64_t rows, int64_t cols, float* dst) {
  hc_weight w;
  if (upload_test_weight(&w, dtype, src, rows, cols) != 0) return -1;
  dev_set s = {};
  float* out = (float*)dset_alloc(&s, sizeof(float) * (size_t)(rows * cols), NULL);
  if (s.e == cudaSuccess) {
    dequant_kernel<<<256, 256>>>(out, w);
    s.e = cudaMemcpy(dst, out, sizeof(float) * (size_t)(rows * cols), cudaMemcpyDeviceToHost);
  }
  dset_free(&s);
  free_test_weight(&w);
  return s.e == cudaSuccess ? 0 : -1;
}

/*
 * y (T, rows) = x (T, cols) @ W^T for W of dtype (GGUF bytes): the path the forward pass takes for T
 * tokens (decode matvec for T <= 8, tiles above), or the tiles for any T when force_tiles. With
 * swiglu, W2 (the same shape and dtype) is the up projection and y = silu(x W^T) * (x W2^T).
 */
HEARTH_API int32_t hearth_test_cuda_matmul(int32_t dtype, const void* w_bytes, const void* w2_bytes, int64_t rows,
                                           int64_t cols, const float* x, int32_t T, float* y, int32_t force_tiles) {
  hc_weight w, w2;
  memset(&w2, 0, sizeof w2);
  if (T <= 0 || upload_test_weight(&w, dtype, w_bytes, rows, cols) != 0) return -1;
  if (w2_bytes && upload_test_weight(&w2, dtype, w2_bytes, rows, cols) != 0) {
    free_test_weight(&w);
    return -1;
  }
  dev_set s = {};
  const int64_t kq = (cols + 31) / 32 * 32;
  float* dx = (float*)dset_alloc(&s, sizeof(float) * (size_t)(T * cols), x);
  float* dy = (float*)dset_alloc(&s, sizeof(float) * (size_t)(T * rows), NULL);
  float* dy2 = (float*)dset_alloc(&s, sizeof(float) * (size_t)(T * rows), NULL);
  hc_qact act;
  act.q = (int8_t*)dset_alloc(&s, (size_t)(T * kq), NULL);
  act.d = (float*)dset_alloc(&s, sizeof(float) * (size_t)(T * kq / 32), NULL);
  act.s = (int32_t*)dset_alloc(&s, sizeof(int32_t) * (size_t)(T * kq / 32), NULL);
  if (s.e == cudaSuccess) {
    if (hearth_dtype_is_quantized(dtype)) hc_quantize_act(0, &act, dx, T, (int32_t)cols);
    hc_targets tg;
    memset(&tg, 0, sizeof tg);
    tg.n = w2_bytes ? 2 : 1;
    tg.w[0] = w, tg.y[0] = dy, tg.w[1] = w2, tg.y[1] = dy2, tg.swiglu = w2_bytes != NULL;
    if (force_tiles && !w2_bytes) {
      /* the tiles for any T: hc_matmul takes them above HC_MATVEC_MAX_T, so ask with a padded T */
      const int32_t Tp = T > HC_MATVEC_MAX_T ? T : HC_MATVEC_MAX_T + 1;
      float* px = (float*)dset_alloc(&s, sizeof(float) * (size_t)(Tp * cols), NULL);
      float* py = (float*)dset_alloc(&s, sizeof(float) * (size_t)(Tp * rows), NULL);
      hc_qact pact;
      pact.q = (int8_t*)dset_alloc(&s, (size_t)(Tp * kq), NULL);
      pact.d = (float*)dset_alloc(&s, sizeof(float) * (size_t)(Tp * kq / 32), NULL);
      pact.s = (int32_t*)dset_alloc(&s, sizeof(int32_t) * (size_t)(Tp * kq / 32), NULL);
      if (s.e == cudaSuccess) s.e = cudaMemset(px, 0, sizeof(float) * (size_t)(Tp * cols));
      if (s.e == cudaSuccess) s.e = cudaMemcpy(px, x, sizeof(float) * (size_t)(T * cols), cudaMemcpyHostToDevice);
      if (s.e == cudaSuccess) {
        if (hearth_dtype_is_quantized(dtype)) hc_quantize_act(0, &pact, px, Tp, (int32_t)cols);
        tg.y[0] = py;
        hc_matmul(0, &tg, px, &pact, Tp, cols);
        s.e = cudaMemcpy(y, py, sizeof(float) * (size_t)(T * rows), cudaMemcpyDeviceToHost);
      }
    } else {
      hc_matmul(0, &tg, dx, &act, T, cols);
      s.e = cudaMemcpy(y, dy, sizeof(float) * (size_t)(T * rows), cudaMemcpyDeviceToHost);
    }
  }
  if (s.e == cudaSuccess) s.e = cudaGetLastError();
  dset_free(&s);
  free_test_weight(&w);
  free_test_weight(&w2);
  return s.e == cudaSuccess ? 0 : -1;
}

/* x (n_rows, D) += add (when given); out = rmsnorm(x) * w. x_out gets the updated x. */
HEARTH_API int32_t hearth_test_cuda_rmsnorm(const float* x, const float* add, const float* w, int32_t n_rows, int32_t D,
                                            float eps, float* out, float* x_out) {
  dev_set s = {};
  const size_t n = (size_t)n_rows * D;
  float* dx = (float*)dset_alloc(&s, sizeof(float) * n, x);
  float* da = add ? (float*)dset_alloc(&s, sizeof(float) * n, add) : NULL;
  float* dw = (float*)dset_alloc(&s, sizeof(float) * (size_t)D, w);
  float* dout = (float*)dset_alloc(&s, sizeof(float) * n, NULL);
  if (s.e == cudaSuccess) {
    hc_add_rmsnorm(0, dout, dx, da, dw, n_rows, D, eps);
    s.e = cudaMemcpy(out, dout, sizeof(float) * n, cudaMemcpyDeviceToHost);
    if (s.e == cudaSuccess && x_out) s.e = cudaMemcpy(x_out, dx, sizeof(float) * n, cudaMemcpyDeviceToHost);
  }
  dset_free(&s);
  return s.e == cudaSuccess ? 0 : -1;
}

/* out = silu(a) * b */
HEARTH_API int32_t hearth_test_cuda_swiglu(const float* a, const float* b, int64_t n, float* out) {
  dev_set s = {};
  float* da = (float*)dset_alloc(&s, sizeof(float) * (size_t)n, a);
  float* db = (float*)dset_alloc(&s, sizeof(float) * (size_t)n, b);
  if (s.e == cudaSuccess) {
    hc_swiglu(0, da, db, n);
    s.e = cudaMemcpy(out, da, sizeof(float) * (size_t)n, cudaMemcpyDeviceToHost);
  }
  dset_free(&s);
  return s.e == cudaSuccess ? 0 : -1;
}

/* out[i] = hc_uniform(seeds[i], positions[i]) computed on the device. */
HEARTH_API int32_t hearth_test_cuda_uniform(const uint64_t* seeds, const uint64_t* positions, int32_t n, double* out) {
  dev_set s = {};
  uint64_t* ds = (uint64_t*)dset_alloc(&s, 8 * (size_t)n, seeds);
  uint64_t* dp = (uint64_t*)dset_alloc(&s, 8 * (size_t)n, positions);
  double* dout = (double*)dset_alloc(&s, 8 * (size_t)n, NULL);
  if (s.e == cudaSuccess) {
    uniform_kernel<<<(n + 255) / 256, 256>>>(dout, ds, dp, n);
    s.e = cudaMemcpy(out, dout, 8 * (size_t)n, cudaMemcpyDeviceToHost);
  }
  dset_free(&s);
  return s.e == cudaSuccess ? 0 : -1;
}

/*
 * The device sampler on given logits: row s of logits (n_seqs, vocab) is sequence s's last-token row.
 * Reads from the batch exactly what hearth_step's sampler reads (positions, seq_start, sample, sampling,
 * history, bias, stop ids) and writes out_tokens / out_logprobs / out_top_* as hearth_step does.
 */
HEARTH_API int32_t hearth_test_cuda_sample(int32_t vocab, const float* logits, const hearth_batch* b) {
  const int32_t S = b->n_seqs, T = b->n_tokens;
  if (S < 1 || vocab < 1) return -1;
  hearth_model fake_model;
  memset(&fake_model, 0, sizeof fake_model);
  fake_model.cfg.vocab_size = vocab;
  hearth_context* ctx = (hearth_context*)calloc(1, sizeof(hearth_context));
  if (!ctx) return -1;
  ctx->model = &fake_model;
  dev_set s = {};
  int32_t* srow = (int32_t*)malloc(4 * (size_t)S);
  for (int32_t i = 0; i < S; i++) srow[i] = b->sample[i] ? i : -1;
  int32_t cap = 1;
  while (cap < vocab) cap <<= 1;
  ctx->logits = (float*)dset_alloc(&s, sizeof(float) * (size_t)S * vocab, logits);
  ctx->smp.sort_cap = cap;
  ctx->smp.work = (float*)dset_alloc(&s, sizeof(float) * (size_t)S * vocab, NULL);
  ctx->smp.stamp = (uint32_t*)dset_alloc(&s, 4 * (size_t)S * vocab, NULL);
  ctx->smp.counts = (int32_t*)dset_alloc(&s, 4 * (size_t)S * vocab, NULL);
  ctx->smp.keys = (uint32_t*)dset_alloc(&s, 4 * (size_t)S * cap, NULL);
  ctx->smp.ids = (int32_t*)dset_alloc(&s, 4 * (size_t)S * cap, NULL);
  ctx->smp_out = (hc_sample_out*)dset_alloc(&s, sizeof(hc_sample_out) * (size_t)S, NULL);
  hc_batch_dev desc;
  memset(&desc, 0, sizeof desc);
  desc.n_tokens = T, desc.n_seqs = S, desc.epoch = 1, desc.has_history = b->history != NULL;
  desc.positions = (int32_t*)dset_alloc(&s, 4 * (size_t)T, b->positions);
  desc.seq_start = (int32_t*)dset_alloc(&s, 4 * (size_t)(S + 1), b->seq_start);
  desc.sample_row = (int32_t*)dset_alloc(&s, 4 * (size_t)S, srow);
  desc.sampling = (hearth_sampling*)dset_alloc(&s, sizeof(hearth_sampling) * (size_t)S, b->sampling);
  desc.history = (int32_t*)dset_alloc(&s, 4 * (size_t)(b->history ? b->n_history : 0), b->history && b->n_history ? b->history : NULL);
  desc.bias_ids = (int32_t*)dset_alloc(&s, 4 * (size_t)b->n_bias, b->n_bias ? b->bias_ids : NULL);
  desc.bias_values = (float*)dset_alloc(&s, 4 * (size_t)b->n_bias, b->n_bias ? b->bias_values : NULL);
  desc.stop_ids = (int32_t*)dset_alloc(&s, 4 * (size_t)b->n_stop_ids, b->n_stop_ids ? b->stop_ids : NULL);
  ctx->bd = (hc_batch_dev*)dset_alloc(&s, sizeof desc, &desc);
  if (s.e == cudaSuccess) s.e = cudaMemset(ctx->smp.stamp, 0, 4 * (size_t)S * vocab);
  if (s.e == cudaSuccess) s.e = cudaMemset(ctx->smp.counts, 0, 4 * (size_t)S * vocab);
  hc_sample_out* host = (hc_sample_out*)malloc(sizeof(hc_sample_out) * (size_t)S);
  if (s.e == cudaSuccess && host) {
    hc_sample(0, ctx, S);
    s.e = cudaMemcpy(host, ctx->smp_out, sizeof(hc_sample_out) * (size_t)S, cudaMemcpyDeviceToHost);
  }
  if (s.e == cudaSuccess && host)
    for (int32_t i = 0; i < S; i++) {
      if (!b->sample[i]) {
        b->out_tokens[i] = -1;
        continue;
      }
      b->out_tokens[i] = host[i].token;
      const hearth_sampling* sp = &b->sampling[i];
      if (host[i].wrote_logprobs && (sp->want_logprob || (sp->n_top_logprobs > 0 && b->out_top_ids && b->out_top_logprobs))) {
        if (b->out_logprobs) b->out_logprobs[i] = host[i].logprob;
        if (b->out_top_ids && b->out_top_logprobs) {
          memcpy(b->out_top_ids + (size_t)i * HEARTH_MAX_TOP_LOGPROBS, host[i].top_ids, sizeof host[i].top_ids);
          memcpy(b->out_top_logprobs + (size_t)i * HEARTH_MAX_TOP_LOGPROBS, host[i].top_logprobs, sizeof host[i].top_logprobs);
        }
      }
    }
  const int ok = s.e == cudaSuccess && host;
  free(host);
  free(srow);
  dset_free(&s);
  free(ctx);
  return ok ? 0 : -1;
}

/* For benchmarks: device-to-device copy bandwidth with this library's own copy kernel (16-byte loads
   and stores, grid-stride), over `bytes` bytes, `iters` timed copies after a warm-up; *gbps gets the
   median rate counting bytes read plus bytes written (GB/s, 1e9). */
HEARTH_API int32_t hearth_cuda_bench_copy(uint64_t bytes, int32_t iters, double* gbps) {
  if (bytes < 16 || iters < 1 || iters > 1000) return -1;
  dev_set s = {};
  const size_t n = (size_t)(bytes / 16);
  uint4* a = (uint4*)dset_alloc(&s, n * 16, NULL);
  uint4* b = (uint4*)dset_alloc(&s, n * 16, NULL);
  cudaEvent_t e0 = NULL, e1 = NULL;
  double* times = (double*)malloc(sizeof(double) * (size_t)iters);
  if (s.e == cudaSuccess) s.e = cudaMemset(a, 1, n * 16);
  if (s.e == cudaSuccess) s.e = cudaEventCreate(&e0);
  if (s.e == cudaSuccess) s.e = cudaEventCreate(&e1);
  int dev = 0, sms = 0;
  cudaGetDevice(&dev);
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
  const int blocks = sms > 0 ? sms * 8 : 1024;
  for (int32_t i = -2; s.e == cudaSuccess && times && i < iters; i++) {
    cudaEventRecord(e0);
    copy_kernel<<<blocks, 512>>>(b, a, n);
    cudaEventRecord(e1);
    s.e = cudaEventSynchronize(e1);
    float ms = 0;
    if (s.e == cudaSuccess) s.e = cudaEventElapsedTime(&ms, e0, e1);
    if (i >= 0) times[i] = ms;
  }
  if (s.e == cudaSuccess && times) {
    for (int32_t i = 1; i < iters; i++) /* insertion sort: iters is small */
      for (int32_t j = i; j > 0 && times[j] < times[j - 1]; j--) {
        const double t = times[j];
        times[j] = times[j - 1], times[j - 1] = t;
      }
    *gbps = 2.0 * (double)n * 16 / (times[iters / 2] * 1e-3) / 1e9;
  }
  const int ok = s.e == cudaSuccess && times;
  free(times);
  if (e0) cudaEventDestroy(e0);
  if (e1) cudaEventDestroy(e1);
  dset_free(&s);
  return ok ? 0 : -1;
}

} /* extern "C" */
