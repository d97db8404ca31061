/*
 * hearth_quant.h — the block-quantized weight formats, laid out byte for byte as GGUF files store them,
 * and the activation blocks the integer dot products take. Plain C (no intrinsics), shared by every
 * backend.
 *
 * A row of n values of a quantized type is n / QK consecutive blocks (QK = 32 or 256); n must be a
 * multiple of QK. Half-precision fields are IEEE f16 bit patterns (uint16_t; hearth_half.h converts).
 *
 * Value of element i of a block (q: the element's code, as the comments below say how it is packed):
 *   Q8_0  d * qs[i]                                       (qs signed)
 *   Q4_0  d * (q - 8)       q = nibble: i < 16 low nibble of qs[i], else high nibble of qs[i - 16]
 *   Q4_1  d * q + m         q as Q4_0
 *   Q5_0  d * (q - 16)      q = Q4_0's nibble | bit i of qh (little-endian uint32) << 4
 *   Q5_1  d * q + m         q as Q5_0
 *   K-quants: 256 elements in sub-blocks of 16 (Q2_K, Q3_K, Q6_K) or 32 (Q4_K, Q5_K), each with its own
 *   small integer scale (and min); d (and dmin) scale those. Element i, with h = i / 128, j = i % 128:
 *   Q2_K  d * (scales[i/16] & 15) * q - dmin * (scales[i/16] >> 4)
 *           q = (qs[32h + j%32] >> 2*(j/32)) & 3
 *   Q3_K  d * (sc[i/16] - 32) * (q - 4)
 *           q = ((qs[32h + j%32] >> 2*(j/32)) & 3) | ((hmask[i%32] >> (i/32)) & 1) << 2
 *           sc: 6 bits each, low 4 bits: scales[0..7] low nibbles (sub-blocks 0..7), then high nibbles
 *           (8..15); high 2 bits: scales[8 + s%4] >> 2*(s/4)
 *   Q4_K  d * sc[i/32] * q - dmin * m[i/32]
 *           q = (qs[32*(i/64) + i%32] >> 4*((i/32)%2)) & 15
 *           sc, m: 6 bits each in scales[12] (hearth_q4k_scale_min below)
 *   Q5_K  as Q4_K with q |= ((qh[i%32] >> (i/32)) & 1) << 4
 *   Q6_K  d * scales[i/16] * (q - 32)
 *           q = ((ql[64h + j%64] >> 4*(j/64)) & 15) | ((qh[32h + j%32] >> 2*(j/32)) & 3) << 4
 */
#ifndef HEARTH_QUANT_H
#define HEARTH_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "hearth.h"

/* The same header serves nvcc (C++): static_assert there, and the inline helpers below callable from
   device code too. Nothing here changes a layout. */
#ifdef __cplusplus
#define HEARTH_QUANT_STATIC_ASSERT static_assert
#else
#define HEARTH_QUANT_STATIC_ASSERT _Static_assert
#endif
#ifdef __CUDACC__
#define HEARTH_QUANT_FN static inline __host__ __device__
#else
#define HEARTH_QUANT_FN static inline
#endif

#define HEARTH_QK32 32
#define HEARTH_QK_K 256

typedef struct {
  uint16_t d;
  int8_t qs[32];
} hearth_block_q8_0;

typedef struct {
  uint16_t d;
  uint8_t qs[16];
} hearth_block_q4_0;

typedef struct {
  uint16_t d;
  uint16_t m;
  uint8_t qs[16];
} hearth_block_q4_1;

typedef struct {
  uint16_t d;
  uint8_t qh[4];
  uint8_t qs[16];
} hearth_block_q5_0;

typedef struct {
  uint16_t d;
  uint16_t m;
  uint8_t qh[4];
  uint8_t qs[16];
} hearth_block_q5_1;

typedef struct {
  uint8_t scales[16]; /* low nibble: scale, high nibble: min, per 16 elements */
  uint8_t qs[64];
  uint16_t d;
  uint16_t dmin;
} hearth_block_q2_k;

typedef struct {
  uint8_t hmask[32];
  uint8_t qs[64];
  uint8_t scales[12];
  uint16_t d;
} hearth_block_q3_k;

typedef struct {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qs[128];
} hearth_block_q4_k;

typedef struct {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qh[32];
  uint8_t qs[128];
} hearth_block_q5_k;

typedef struct {
  uint8_t ql[128];
  uint8_t qh[64];
  int8_t scales[16];
  uint16_t d;
} hearth_block_q6_k;

/*
 * Activations, quantized per token for the integer dot products:
 *  - with Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0 weights: hearth_block_q8_0 (the weight format itself);
 *  - with K-quant weights: hearth_block_q8_k, value d * qs[i]; bsums[j] = sum of qs[16j .. 16j + 16).
 */
typedef struct {
  float d;
  int8_t qs[256];
  int16_t bsums[16];
} hearth_block_q8_k;

HEARTH_QUANT_STATIC_ASSERT(sizeof(hearth_block_q8_0) == 34, "q8_0 block");
HEARTH_QUANT_STATIC_ASSERT(sizeof(hearth_block_q4_0) == 18, "q4_0 block");
HEARTH_QUANT_STATIC_ASSERT(sizeof(hearth_block_q4_1) == 20, "q4_1 block");
HEARTH_QUANT_STATIC_ASSERT(sizeof(hearth_block_q5_0) == 22, "q5_0 block");
HEARTH_QUANT_STATIC_ASSERT(sizeof(hearth_block_q5_1) == 24, "q5_1 block");
HEARTH_QUANT_STATIC_ASSERT(sizeof(hearth_block_q2_k) == 84, "q2_k block");
HEARTH_QUANT_STATIC_ASSERT(sizeof(hearth_block_q3_k) == 110, "q3_k block");
HEARTH_QUANT_STATIC_ASSERT(sizeof(hearth_block_q4_k) == 144, "q4_k block");
HEARTH_QUANT_STATIC_ASSERT(sizeof(hearth_block_q5_k) == 176, "q5_k block");
HEARTH_QUANT_STATIC_ASSERT(sizeof(hearth_block_q6_k) == 210, "q6_k block");
HEARTH_QUANT_STATIC_ASSERT(sizeof(hearth_block_q8_k) == 292, "q8_k block");

/* True for the block-quantized dtypes (Q8_0 .. Q6_K). */
HEARTH_QUANT_FN int hearth_dtype_is_quantized(int32_t dtype) {
  return dtype >= HEARTH_DTYPE_Q8_0 && dtype <= HEARTH_DTYPE_Q6_K;
}

/* True for the K-quants (256-element super-blocks, Q8_K activations). */
HEARTH_QUANT_FN int hearth_dtype_is_k_quant(int32_t dtype) {
  return dtype >= HEARTH_DTYPE_Q2_K && dtype <= HEARTH_DTYPE_Q6_K;
}

/* Elements per block: 32 or 256 for the quantized types, 1 for F32/F16/BF16, 0 for an unknown dtype. */
HEARTH_QUANT_FN int64_t hearth_quant_block_elems(int32_t dtype) {
  switch (dtype) {
    case HEARTH_DTYPE_F32:
    case HEARTH_DTYPE_F16:
    case HEARTH_DTYPE_BF16: return 1;
    case HEARTH_DTYPE_Q8_0:
    case HEARTH_DTYPE_Q4_0:
    case HEARTH_DTYPE_Q4_1:
    case HEARTH_DTYPE_Q5_0:
    case HEARTH_DTYPE_Q5_1: return HEARTH_QK32;
    case HEARTH_DTYPE_Q2_K:
    case HEARTH_DTYPE_Q3_K:
    case HEARTH_DTYPE_Q4_K:
    case HEARTH_DTYPE_Q5_K:
    case HEARTH_DTYPE_Q6_K: return HEARTH_QK_K;
    default: return 0;
  }
}

/* Bytes per block (per element for F32/F16/BF16), 0 for an unknown dtype. */
HEARTH_QUANT_FN int64_t hearth_quant_block_bytes(int32_t dtype) {
  switch (dtype) {
    case HEARTH_DTYPE_F32: return 4;
    case HEARTH_DTYPE_F16:
    case HEARTH_DTYPE_BF16: return 2;
    case HEARTH_DTYPE_Q8_0: return (int64_t)sizeof(hearth_block_q8_0);
    case HEARTH_DTYPE_Q4_0: return (int64_t)sizeof(hearth_block_q4_0);
    case HEARTH_DTYPE_Q4_1: return (int64_t)sizeof(hearth_block_q4_1);
    case HEARTH_DTYPE_Q5_0: return (int64_t)sizeof(hearth_block_q5_0);
    case HEARTH_DTYPE_Q5_1: return (int64_t)sizeof(hearth_block_q5_1);
    case HEARTH_DTYPE_Q2_K: return (int64_t)sizeof(hearth_block_q2_k);
    case HEARTH_DTYPE_Q3_K: return (int64_t)sizeof(hearth_block_q3_k);
    case HEARTH_DTYPE_Q4_K: return (int64_t)sizeof(hearth_block_q4_k);
    case HEARTH_DTYPE_Q5_K: return (int64_t)sizeof(hearth_block_q5_k);
    case HEARTH_DTYPE_Q6_K: return (int64_t)sizeof(hearth_block_q6_k);
    default: return 0;
  }
}

/* Bytes of one row of n elements; 0 when n is negative, not a multiple of the block, or dtype unknown. */
HEARTH_QUANT_FN int64_t hearth_quant_row_bytes(int32_t dtype, int64_t n) {
  int64_t qk = hearth_quant_block_elems(dtype);
  if (qk == 0 || n < 0 || n % qk != 0) return 0;
  return n / qk * hearth_quant_block_bytes(dtype);
}

/* 1 / d for quantizing with scale d: 0 for d = 0 and where 1 / d overflows (max |x| below ~4e-37). */
HEARTH_QUANT_FN float hearth_quant_inverse(float d) {
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  return id <= 3.4e38f ? id : 0.0f;
}

/* The 6-bit scale and min of sub-block j (0..7) of a Q4_K / Q5_K super-block, from its 12 scale bytes. */
HEARTH_QUANT_FN void hearth_q4k_scale_min(const uint8_t* s, int j, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = (uint8_t)((s[j + 4] & 15) | ((s[j - 4] >> 6) << 4));
    *m = (uint8_t)((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
  }
}

/* The signed scale of sub-block j (0..15) of a Q3_K super-block, from its 12 scale bytes. */
HEARTH_QUANT_FN int hearth_q3k_scale(const uint8_t* s, int j) {
  int lo = j < 8 ? (s[j] & 15) : (s[j - 8] >> 4);
  int hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
  return (lo | (hi << 4)) - 32;
}

#endif
