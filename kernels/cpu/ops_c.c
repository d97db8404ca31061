/*
 * ops_c.c — the plain C kernels: the reference every vector path is tested against, and the path
 * used on CPUs without AVX2 (and on arm64).
 */
#include <math.h>

#include "../include/hearth_half.h"
#include "internal.h"

static float dot_c(const float* a, const float* b, int64_t n) {
  /* Four partial sums: fewer rounding steps in a row and room for the compiler to vectorise. */
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += a[i] * b[i];
    s1 += a[i + 1] * b[i + 1];
    s2 += a[i + 2] * b[i + 2];
    s3 += a[i + 3] * b[i + 3];
  }
  for (; i < n; i++) s0 += a[i] * b[i];
  return (s0 + s1) + (s2 + s3);
}

static float dot_f16_c(const uint16_t* w, const float* x, int64_t n) {
  float s0 = 0, s1 = 0;
  int64_t i = 0;
  for (; i + 2 <= n; i += 2) {
    s0 += hearth_f16_to_f32(w[i]) * x[i];
    s1 += hearth_f16_to_f32(w[i + 1]) * x[i + 1];
  }
  for (; i < n; i++) s0 += hearth_f16_to_f32(w[i]) * x[i];
  return s0 + s1;
}

static float dot_bf16_c(const uint16_t* w, const float* x, int64_t n) {
  float s0 = 0, s1 = 0;
  int64_t i = 0;
  for (; i + 2 <= n; i += 2) {
    s0 += hearth_bf16_to_f32(w[i]) * x[i];
    s1 += hearth_bf16_to_f32(w[i + 1]) * x[i + 1];
  }
  for (; i < n; i++) s0 += hearth_bf16_to_f32(w[i]) * x[i];
  return s0 + s1;
}

static float dot_row_c(const void* w, int32_t dtype, int64_t row, const float* x, int64_t k) {
  switch (dtype) {
    case HEARTH_DTYPE_F16: return dot_f16_c((const uint16_t*)w + row * k, x, k);
    case HEARTH_DTYPE_BF16: return dot_bf16_c((const uint16_t*)w + row * k, x, k);
    default: return dot_c((const float*)w + row * k, x, k);
  }
}

static void matvec_c(float* y, const void* w, int32_t dtype, const float* x, int64_t n, int64_t k) {
  for (int64_t r = 0; r < n; r++) y[r] = dot_row_c(w, dtype, r, x, k);
}

static void matmul_c(float* y, int64_t ldy, const void* w, int32_t dtype, const float* x, int64_t T,
                     int64_t n, int64_t k) {
  for (int64_t r = 0; r < n; r++)
    for (int64_t t = 0; t < T; t++) y[t * ldy + r] = dot_row_c(w, dtype, r, x + t * k, k);
}

static void axpy_c(float* y, float a, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}

static void to_f32_c(float* dst, const void* src, int32_t dtype, int64_t n) {
  switch (dtype) {
    case HEARTH_DTYPE_F16:
      for (int64_t i = 0; i < n; i++) dst[i] = hearth_f16_to_f32(((const uint16_t*)src)[i]);
      break;
    case HEARTH_DTYPE_BF16:
      for (int64_t i = 0; i < n; i++) dst[i] = hearth_bf16_to_f32(((const uint16_t*)src)[i]);
      break;
    default:
      for (int64_t i = 0; i < n; i++) dst[i] = ((const float*)src)[i];
  }
}

/* The reference: per row, scores of the keys it sees, then the online-softmax update of (m, l, acc). */
static void silu_mul_c(float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; i++) gate[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

static int32_t argmax_c(const float* w, int32_t n) {
  int32_t best = 0;
  for (int32_t i = 1; i < n; i++)
    if (w[i] > w[best]) best = i;
  return best;
}

static double exp_sum_c(float* w, int64_t n, float shift, float scale) {
  double total = 0;
  for (int64_t i = 0; i < n; i++) total += w[i] = expf((w[i] - shift) * scale);
  return total;
}

static void to_f16_c(uint16_t* dst, const float* src, int64_t n) {
  for (int64_t i = 0; i < n; i++) dst[i] = hearth_f32_to_f16(src[i]);
}

/* A cache row as float32: the row itself, or its f16 elements converted into buf (hd <= 1024, checked at
   model load). */
static const float* kv_row(const void* row, int32_t kv_f16, float* buf, int32_t hd) {
  if (!kv_f16) return (const float*)row;
  for (int32_t i = 0; i < hd; i++) buf[i] = hearth_f16_to_f32(((const uint16_t*)row)[i]);
  return buf;
}

static void attend_chunk_c(float* acc, float* m, float* l, const float* q, int32_t nq, int32_t hd,
                           const void* const* k, const void* const* v, int32_t kv_f16, int32_t nk,
                           const int32_t* lo, const int32_t* hi, float scale, float* scratch) {
  (void)nk;
  float* s = scratch; /* (KC) scores of one row, then exp(score - new max) */
  float row[1024];    /* (hd) an f16 key or value row as float32 */
  for (int32_t r = 0; r < nq; r++) {
    if (hi[r] <= lo[r]) continue;
    const float* qr = q + (size_t)r * hd;
    float mc = -INFINITY;
    for (int32_t j = lo[r]; j < hi[r]; j++) {
      s[j] = dot_c(qr, kv_row(k[j], kv_f16, row, hd), hd) * scale;
      if (s[j] > mc) mc = s[j];
    }
    /* New max; the old sum and output were relative to the old max, so they shrink by exp(old - new)
       (0 on the row's first chunk, where the old max is -inf). */
    const float mn = m[r] > mc ? m[r] : mc, alpha = expf(m[r] - mn);
    float sum = 0;
    for (int32_t j = lo[r]; j < hi[r]; j++) sum += s[j] = expf(s[j] - mn);
    l[r] = l[r] * alpha + sum;
    m[r] = mn;
    float* out = acc + (size_t)r * hd;
    for (int32_t i = 0; i < hd; i++) out[i] *= alpha;
    for (int32_t j = lo[r]; j < hi[r]; j++) axpy_c(out, s[j], kv_row(v[j], kv_f16, row, hd), hd);
  }
}

const hearth_cpu_ops hearth_ops_c = {
    .isa = "c",
    .matvec = matvec_c,
    .matmul = matmul_c,
    .dot = dot_c,
    .axpy = axpy_c,
    .to_f32 = to_f32_c,
    .to_f16 = to_f16_c,
    .silu_mul = silu_mul_c,
    .exp_sum = exp_sum_c,
    .argmax = argmax_c,
    .attend_chunk = attend_chunk_c,
};
