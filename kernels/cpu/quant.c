/*
 * quant.c — the reference scalar code of the block-quantized types: dequantizing rows, quantizing rows
 * (quantize-on-load and activations), and the plain C dot products every vector path is tested against.
 *
 * Written from the format description in hearth_quant.h. Dequantization does the float32 operations in
 * the order GGML's reference does (scale * code, then the min), so it is bit-exact with the gguf Python
 * package. This file is compiled without FMA so that no multiply-add is contracted.
 */
#include <math.h>
#include <string.h>

#include "../include/hearth_half.h"
#include "quant.h"

#define F16(h) hearth_f16_to_f32(h)

/* fminf / fmaxf without their NaN rules (libm calls otherwise); the inputs here are finite. */
static inline float min_f(float a, float b) { return a < b ? a : b; }
static inline float max_f(float a, float b) { return a > b ? a : b; }

/* ---------------------------------------------------------------------------------------------------- */
/* Unpacking: the codes of a block as small integers                                                     */

/* The 32 nibbles of a 16-byte Q4 payload, element order. */
static void unpack_nibbles(const uint8_t* qs, uint8_t q[32]) {
  for (int j = 0; j < 16; j++) {
    q[j] = qs[j] & 15;
    q[j + 16] = qs[j] >> 4;
  }
}

/* Q5: nibbles plus bit j of qh (little-endian) as bit 4. */
static void unpack_q5(const uint8_t* qh4, const uint8_t* qs, uint8_t q[32]) {
  uint32_t qh = (uint32_t)qh4[0] | (uint32_t)qh4[1] << 8 | (uint32_t)qh4[2] << 16 | (uint32_t)qh4[3] << 24;
  unpack_nibbles(qs, q);
  for (int j = 0; j < 32; j++) q[j] |= (uint8_t)(((qh >> j) & 1) << 4);
}

/*
 * A K-quant super-block as value[i] = d * sc[i/16] * q[i] - dmin * mn[i/16] with small integer codes q
 * (offsets folded in: Q3_K and Q6_K give signed q and mn = 0). Per-32 scales (Q4_K, Q5_K) are repeated
 * over both halves.
 */
typedef struct {
  float d, dmin;
  int sc[16];
  int mn[16];
  int8_t q[256];
} kblock;

static void unpack_k(int32_t type, const void* blk, kblock* o) {
  switch (type) {
    case HEARTH_DTYPE_Q2_K: {
      const hearth_block_q2_k* b = (const hearth_block_q2_k*)blk;
      o->d = F16(b->d);
      o->dmin = F16(b->dmin);
      for (int j = 0; j < 16; j++) o->sc[j] = b->scales[j] & 15, o->mn[j] = b->scales[j] >> 4;
      for (int i = 0; i < 256; i++) {
        int h = i / 128, j = i % 128;
        o->q[i] = (int8_t)((b->qs[32 * h + j % 32] >> (2 * (j / 32))) & 3);
      }
      break;
    }
    case HEARTH_DTYPE_Q3_K: {
      const hearth_block_q3_k* b = (const hearth_block_q3_k*)blk;
      o->d = F16(b->d);
      o->dmin = 0;
      for (int j = 0; j < 16; j++) o->sc[j] = hearth_q3k_scale(b->scales, j), o->mn[j] = 0;
      for (int i = 0; i < 256; i++) {
        int h = i / 128, j = i % 128;
        int lo = (b->qs[32 * h + j % 32] >> (2 * (j / 32))) & 3;
        int hi = (b->hmask[i % 32] >> (i / 32)) & 1;
        o->q[i] = (int8_t)((lo | hi << 2) - 4);
      }
      break;
    }
    case HEARTH_DTYPE_Q4_K:
    case HEARTH_DTYPE_Q5_K: {
      const uint8_t *scales, *qs, *qh = NULL;
      uint16_t d, dmin;
      if (type == HEARTH_DTYPE_Q4_K) {
        const hearth_block_q4_k* b = (const hearth_block_q4_k*)blk;
        scales = b->scales, qs = b->qs, d = b->d, dmin = b->dmin;
      } else {
        const hearth_block_q5_k* b = (const hearth_block_q5_k*)blk;
        scales = b->scales, qs = b->qs, qh = b->qh, d = b->d, dmin = b->dmin;
      }
      o->d = F16(d);
      o->dmin = F16(dmin);
      for (int j = 0; j < 8; j++) {
        uint8_t sc, m;
        hearth_q4k_scale_min(scales, j, &sc, &m);
        o->sc[2 * j] = o->sc[2 * j + 1] = sc;
        o->mn[2 * j] = o->mn[2 * j + 1] = m;
      }
      for (int i = 0; i < 256; i++) {
        int q = (qs[32 * (i / 64) + i % 32] >> (4 * ((i / 32) % 2))) & 15;
        if (qh) q |= ((qh[i % 32] >> (i / 32)) & 1) << 4;
        o->q[i] = (int8_t)q;
      }
      break;
    }
    default: { /* Q6_K */
      const hearth_block_q6_k* b = (const hearth_block_q6_k*)blk;
      o->d = F16(b->d);
      o->dmin = 0;
      for (int j = 0; j < 16; j++) o->sc[j] = b->scales[j], o->mn[j] = 0;
      for (int i = 0; i < 256; i++) {
        int h = i / 128, j = i % 128;
        int lo = (b->ql[64 * h + j % 64] >> (4 * (j / 64))) & 15;
        int hi = (b->qh[32 * h + j % 32] >> (2 * (j / 32))) & 3;
        o->q[i] = (int8_t)((lo | hi << 4) - 32);
      }
      break;
    }
  }
}

/* ---------------------------------------------------------------------------------------------------- */
/* Dequantization                                                                                         */

void hearth_dequantize_row(int32_t dtype, const void* src, float* dst, int64_t n) {
  const int64_t qk = hearth_quant_block_elems(dtype);
  if (qk == 0 || n <= 0 || n % qk != 0) return;
  const int64_t nb = n / qk;
  const uint8_t* p = (const uint8_t*)src;
  const int64_t bs = hearth_quant_block_bytes(dtype);
  uint8_t q[32];
  switch (dtype) {
    case HEARTH_DTYPE_F32: memcpy(dst, src, (size_t)n * 4); return;
    case HEARTH_DTYPE_F16:
      for (int64_t i = 0; i < n; i++) dst[i] = F16(((const uint16_t*)src)[i]);
      return;
    case HEARTH_DTYPE_BF16:
      for (int64_t i = 0; i < n; i++) dst[i] = hearth_bf16_to_f32(((const uint16_t*)src)[i]);
      return;
    case HEARTH_DTYPE_Q8_0:
      for (int64_t b = 0; b < nb; b++) {
        const hearth_block_q8_0* x = (const hearth_block_q8_0*)(p + b * bs);
        const float d = F16(x->d);
        for (int j = 0; j < 32; j++) dst[b * 32 + j] = (float)x->qs[j] * d;
      }
      return;
    case HEARTH_DTYPE_Q4_0:
      for (int64_t b = 0; b < nb; b++) {
        const hearth_block_q4_0* x = (const hearth_block_q4_0*)(p + b * bs);
        const float d = F16(x->d);
        unpack_nibbles(x->qs, q);
        for (int j = 0; j < 32; j++) dst[b * 32 + j] = d * (float)((int)q[j] - 8);
      }
      return;
    case HEARTH_DTYPE_Q4_1:
      for (int64_t b = 0; b < nb; b++) {
        const hearth_block_q4_1* x = (const hearth_block_q4_1*)(p + b * bs);
        const float d = F16(x->d), m = F16(x->m);
        unpack_nibbles(x->qs, q);
        for (int j = 0; j < 32; j++) dst[b * 32 + j] = d * (float)q[j] + m;
      }
      return;
    case HEARTH_DTYPE_Q5_0:
      for (int64_t b = 0; b < nb; b++) {
        const hearth_block_q5_0* x = (const hearth_block_q5_0*)(p + b * bs);
        const float d = F16(x->d);
        unpack_q5(x->qh, x->qs, q);
        for (int j = 0; j < 32; j++) dst[b * 32 + j] = d * (float)((int)q[j] - 16);
      }
      return;
    case HEARTH_DTYPE_Q5_1:
      for (int64_t b = 0; b < nb; b++) {
        const hearth_block_q5_1* x = (const hearth_block_q5_1*)(p + b * bs);
        const float d = F16(x->d), m = F16(x->m);
        unpack_q5(x->qh, x->qs, q);
        for (int j = 0; j < 32; j++) dst[b * 32 + j] = d * (float)q[j] + m;
      }
      return;
    default: { /* K-quants */
      kblock kb;
      for (int64_t b = 0; b < nb; b++) {
        unpack_k(dtype, p + b * bs, &kb);
        float* o = dst + b * 256;
        for (int j = 0; j < 16; j++) {
          const float dl = kb.d * (float)kb.sc[j];
          const float ml = kb.dmin * (float)kb.mn[j];
          for (int i = 16 * j; i < 16 * j + 16; i++) o[i] = dl * (float)kb.q[i] - ml;
        }
      }
      return;
    }
  }
}

/* ---------------------------------------------------------------------------------------------------- */
/* Quantization                                                                                           */

/* roundf (half away from zero) for |v| < 2^23, without a libm call. */
static inline int round_away(float v) {
  int i = (int)v; /* toward zero */
  const float f = v - (float)i; /* exact */
  return i + (f >= 0.5f) - (f <= -0.5f);
}

/* Q8_0 as GGML's reference: d = max|x| / 127, q = round-half-away(x / d), d stored as f16. */
static void quantize_q8_0(const float* x, hearth_block_q8_0* y, int64_t nb) {
  for (int64_t b = 0; b < nb; b++, x += 32) {
    float amax = 0;
    for (int j = 0; j < 32; j++) amax = max_f(amax, fabsf(x[j]));
    const float d = amax / 127.0f;
    const float id = hearth_quant_inverse(d);
    y[b].d = hearth_f32_to_f16(d);
    for (int j = 0; j < 32; j++) y[b].qs[j] = (int8_t)round_away(x[j] * id);
  }
}


/* Q4_0 as GGML's reference: d = (the value of largest magnitude) / -8, q = trunc(x / d + 8.5) in [0, 15]. */
static void quantize_q4_0(const float* x, hearth_block_q4_0* y, int64_t nb) {
  for (int64_t b = 0; b < nb; b++, x += 32) {
    float amax = 0, max = 0;
    for (int j = 0; j < 32; j++)
      if (fabsf(x[j]) > amax) amax = fabsf(x[j]), max = x[j];
    const float d = max / -8.0f;
    const float id = hearth_quant_inverse(d);
    y[b].d = hearth_f32_to_f16(d);
    for (int j = 0; j < 16; j++) {
      const float a = x[j] * id + 8.5f, c = x[j + 16] * id + 8.5f;
      int qa = (int)a, qc = (int)c; /* truncation, the operands are >= 0 */
      qa = qa > 15 ? 15 : qa;
      qc = qc > 15 ? 15 : qc;
      y[b].qs[j] = (uint8_t)(qa | qc << 4);
    }
  }
}

/* 4-lane vectors (GCC vector extensions: SSE2 on x86-64, NEON on arm64) for the Q4_K fit. */
typedef float v4f __attribute__((vector_size(16)));
typedef int32_t v4i __attribute__((vector_size(16)));
static inline v4f v4(float f) { return (v4f){f, f, f, f}; }

/* The nearest code of v in [0, max] (v >= 0 after the clamp, so adding a half and truncating rounds). */
static inline float code_of(float v, float max) {
  v = v > 0.0f ? v : 0.0f;
  v = v < max ? v : max;
  return (float)(int)(v + 0.5f);
}


/*
 * The scale and offset of one Q4_K sub-block: x ~ s * q - m with q in [0, 15], s >= 0, m >= 0 (the
 * format can only shift down, so a sub-block of positive values gets m = 0). Tries Q4K_GRIDS grids
 * around (max - min) / 15, each refined once by least squares on the codes it produced, and keeps the
 * (s, m) with the smallest squared error. Sums run in 4 lanes so the compiler can vectorise them.
 */
#define Q4K_GRIDS 1
static void q4k_fit(const float* x, float* s_out, float* m_out) {
  float lo = x[0], hi = x[0], sx = 0;
  for (int i = 0; i < 32; i++) lo = min_f(lo, x[i]), hi = max_f(hi, x[i]), sx += x[i];
  if (lo > 0) lo = 0;
  if (hi <= lo) {
    *s_out = 0;
    *m_out = -lo;
    return;
  }
  float best_s = (hi - lo) / 15.0f, best_m = -lo, best_err = INFINITY;
  for (int step = -Q4K_GRIDS; step <= Q4K_GRIDS; step++) {
    float s = (hi - lo) / (15.0f + 0.3f * (float)step), m = -lo;
    for (int pass = 0; pass < 2; pass++) {
      const float inv = 1.0f / s;
      const v4f vinv = v4(inv), vm = v4(m), vs = v4(s), zero = v4(0.0f), top = v4(15.0f), half = v4(0.5f);
      v4f vq = zero, vqq = zero, vqx = zero, ve = zero;
      for (int i = 0; i < 32; i += 4) {
        v4f xv;
        memcpy(&xv, x + i, 16);
        v4f c = (xv + vm) * vinv;
        c = (v4f)((v4i)c & (c > zero)); /* max(c, 0) */
        const v4i lt = c < top;
        c = (v4f)(((v4i)c & lt) | ((v4i)top & ~lt)); /* min(c, 15) */
        const v4f q = __builtin_convertvector(__builtin_convertvector(c + half, v4i), v4f);
        const v4f e = vs * q - vm - xv;
        vq += q, vqq += q * q, vqx += q * xv, ve += e * e;
      }
      float sq[4], sqq[4], sqx[4], se[4];
      memcpy(sq, &vq, 16), memcpy(sqq, &vqq, 16), memcpy(sqx, &vqx, 16), memcpy(se, &ve, 16);
      const float err = (se[0] + se[1]) + (se[2] + se[3]);
      if (err < best_err) best_err = err, best_s = s, best_m = m;
      if (pass == 1) break;
      /* least squares x ~ ns * q - nm over the codes */
      const float tq = (sq[0] + sq[1]) + (sq[2] + sq[3]), tqq = (sqq[0] + sqq[1]) + (sqq[2] + sqq[3]);
      const float tqx = (sqx[0] + sqx[1]) + (sqx[2] + sqx[3]);
      const float det = 32.0f * tqq - tq * tq;
      if (!(det > 0)) break;
      float ns = (32.0f * tqx - tq * sx) / det, nm = (ns * tq - sx) / 32.0f;
      if (nm < 0) { /* m pinned at 0: s = sum(q x) / sum(q q) */
        nm = 0;
        ns = tqx / tqq;
      }
      if (!(ns > 0)) break;
      s = ns, m = nm;
    }
  }
  *s_out = best_s;
  *m_out = best_m;
}

/* Q4_K: per sub-block (s, m) fits, then 6-bit codes of them against f16 super-scales, then the codes
   of the values against the scales as stored. */
static void quantize_q4_k(const float* x, hearth_block_q4_k* y, int64_t nb) {
  for (int64_t b = 0; b < nb; b++, x += 256) {
    float s[8], m[8], smax = 0, mmax = 0;
    for (int j = 0; j < 8; j++) {
      q4k_fit(x + 32 * j, &s[j], &m[j]);
      smax = max_f(smax, s[j]);
      mmax = max_f(mmax, m[j]);
    }
    const uint16_t d16 = hearth_f32_to_f16(smax / 63.0f), dmin16 = hearth_f32_to_f16(mmax / 63.0f);
    const float d = F16(d16), dmin = F16(dmin16);
    uint8_t sc[8], mn[8];
    for (int j = 0; j < 8; j++) {
      int a = d > 0 ? (int)lrintf(s[j] / d) : 0, c = dmin > 0 ? (int)lrintf(m[j] / dmin) : 0;
      sc[j] = (uint8_t)(a < 0 ? 0 : a > 63 ? 63 : a);
      mn[j] = (uint8_t)(c < 0 ? 0 : c > 63 ? 63 : c);
    }
    memset(y[b].scales, 0, 12);
    for (int j = 0; j < 8; j++) {
      if (j < 4) {
        y[b].scales[j] = sc[j];
        y[b].scales[j + 4] = mn[j];
      } else {
        y[b].scales[j + 4] = (uint8_t)((sc[j] & 15) | (mn[j] & 15) << 4);
        y[b].scales[j - 4] |= (uint8_t)((sc[j] >> 4) << 6);
        y[b].scales[j] |= (uint8_t)((mn[j] >> 4) << 6);
      }
    }
    y[b].d = d16;
    y[b].dmin = dmin16;
    memset(y[b].qs, 0, 128);
    for (int j = 0; j < 8; j++) {
      const float dl = d * (float)sc[j], ml = dmin * (float)mn[j], inv = dl > 0 ? 1.0f / dl : 0.0f;
      for (int i = 0; i < 32; i++) {
        const int q = (int)code_of((x[32 * j + i] + ml) * inv, 15.0f);
        y[b].qs[32 * (j / 2) + i] |= (uint8_t)(q << (4 * (j % 2)));
      }
    }
  }
}

int32_t hearth_quantize_row(int32_t dtype, const float* src, void* dst, int64_t n) {
  const int64_t qk = hearth_quant_block_elems(dtype);
  if (qk <= 1 || n < 0 || n % qk != 0) return -1;
  switch (dtype) {
    case HEARTH_DTYPE_Q8_0: quantize_q8_0(src, (hearth_block_q8_0*)dst, n / qk); return 0;
    case HEARTH_DTYPE_Q4_0: quantize_q4_0(src, (hearth_block_q4_0*)dst, n / qk); return 0;
    case HEARTH_DTYPE_Q4_K: quantize_q4_k(src, (hearth_block_q4_k*)dst, n / qk); return 0;
    default: return -1;
  }
}

/* Q8_K activations: d = max|x| / 127 (float), q = round(x / d), bsums per 16. */
static void quant_act_q8_k(const float* x, hearth_block_q8_k* y, int64_t k) {
  for (int64_t b = 0; b < k / 256; b++, x += 256) {
    float amax = 0;
    for (int j = 0; j < 256; j++) amax = max_f(amax, fabsf(x[j]));
    const float d = amax / 127.0f;
    const float id = hearth_quant_inverse(d);
    y[b].d = d;
    for (int j = 0; j < 256; j++) {
      const int q = round_away(x[j] * id);
      y[b].qs[j] = (int8_t)(q > 127 ? 127 : q < -127 ? -127 : q);
    }
    for (int j = 0; j < 16; j++) {
      int s = 0;
      for (int i = 0; i < 16; i++) s += y[b].qs[16 * j + i];
      y[b].bsums[j] = (int16_t)s;
    }
  }
}

size_t hearth_quant_act_bytes(int32_t w_dtype, int64_t T, int64_t k) {
  if (!hearth_dtype_is_quantized(w_dtype) || T < 0) return 0;
  const int64_t qk = hearth_quant_block_elems(w_dtype);
  if (k <= 0 || k % qk != 0) return 0;
  const size_t row = hearth_dtype_is_k_quant(w_dtype) ? (size_t)(k / 256) * sizeof(hearth_block_q8_k)
                                                      : (size_t)(k / 32) * sizeof(hearth_block_q8_0);
  return row * (size_t)T;
}

static void quant_act_c(int32_t w_dtype, const float* x, int64_t T, int64_t k, void* out) {
  const size_t row = hearth_quant_act_bytes(w_dtype, 1, k);
  if (row == 0) return;
  for (int64_t t = 0; t < T; t++) {
    void* o = (uint8_t*)out + (size_t)t * row;
    if (hearth_dtype_is_k_quant(w_dtype)) quant_act_q8_k(x + t * k, (hearth_block_q8_k*)o, k);
    else quantize_q8_0(x + t * k, (hearth_block_q8_0*)o, k / 32);
  }
}

/* ---------------------------------------------------------------------------------------------------- */
/* Plain C dot products                                                                                   */

/* One weight row (nb blocks of 32) with one activation row. */
static float dot_32(int32_t type, const uint8_t* w, const hearth_block_q8_0* x, int64_t nb) {
  const int64_t bs = hearth_quant_block_bytes(type);
  float sum = 0;
  uint8_t q[32];
  for (int64_t b = 0; b < nb; b++, w += bs) {
    const float dx = F16(x[b].d);
    const int8_t* xq = x[b].qs;
    int32_t isum = 0, xsum = 0;
    float dw, mw = 0;
    int off = 0;
    switch (type) {
      case HEARTH_DTYPE_Q8_0: {
        const hearth_block_q8_0* blk = (const hearth_block_q8_0*)w;
        dw = F16(blk->d);
        for (int j = 0; j < 32; j++) isum += blk->qs[j] * xq[j];
        sum += dw * dx * (float)isum;
        continue;
      }
      case HEARTH_DTYPE_Q4_0: {
        const hearth_block_q4_0* blk = (const hearth_block_q4_0*)w;
        dw = F16(blk->d), off = 8;
        unpack_nibbles(blk->qs, q);
        break;
      }
      case HEARTH_DTYPE_Q4_1: {
        const hearth_block_q4_1* blk = (const hearth_block_q4_1*)w;
        dw = F16(blk->d), mw = F16(blk->m);
        unpack_nibbles(blk->qs, q);
        break;
      }
      case HEARTH_DTYPE_Q5_0: {
        const hearth_block_q5_0* blk = (const hearth_block_q5_0*)w;
        dw = F16(blk->d), off = 16;
        unpack_q5(blk->qh, blk->qs, q);
        break;
      }
      default: { /* Q5_1 */
        const hearth_block_q5_1* blk = (const hearth_block_q5_1*)w;
        dw = F16(blk->d), mw = F16(blk->m);
        unpack_q5(blk->qh, blk->qs, q);
        break;
      }
    }
    for (int j = 0; j < 32; j++) isum += q[j] * xq[j], xsum += xq[j];
    sum += dw * dx * (float)(isum - off * xsum) + mw * dx * (float)xsum;
  }
  return sum;
}

static float dot_k(int32_t type, const uint8_t* w, const hearth_block_q8_k* x, int64_t nb) {
  const int64_t bs = hearth_quant_block_bytes(type);
  float sum = 0;
  kblock kb;
  for (int64_t b = 0; b < nb; b++, w += bs) {
    unpack_k(type, w, &kb);
    int32_t isum = 0, imin = 0;
    for (int j = 0; j < 16; j++) {
      int32_t s = 0;
      for (int i = 16 * j; i < 16 * j + 16; i++) s += kb.q[i] * x[b].qs[i];
      isum += kb.sc[j] * s;
      imin += kb.mn[j] * x[b].bsums[j];
    }
    sum += kb.d * x[b].d * (float)isum - kb.dmin * x[b].d * (float)imin;
  }
  return sum;
}

static void matmul_c(float* y, int64_t ldy, const void* w, int32_t type, const void* x_act, int64_t T,
                     int64_t n, int64_t k) {
  const int64_t row = hearth_quant_row_bytes(type, k);
  const size_t xrow = hearth_quant_act_bytes(type, 1, k);
  if (row == 0 || xrow == 0) return;
  const int kq = hearth_dtype_is_k_quant(type);
  for (int64_t r = 0; r < n; r++) {
    const uint8_t* wr = (const uint8_t*)w + r * row;
    for (int64_t t = 0; t < T; t++) {
      const void* xt = (const uint8_t*)x_act + (size_t)t * xrow;
      y[t * ldy + r] = kq ? dot_k(type, wr, (const hearth_block_q8_k*)xt, k / 256)
                          : dot_32(type, wr, (const hearth_block_q8_0*)xt, k / 32);
    }
  }
}

const hearth_quant_ops hearth_quant_ops_c = {.isa = "c", .matmul = matmul_c, .quant_act = quant_act_c};
