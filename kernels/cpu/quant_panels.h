/*
 * quant_panels.h — what the packed layouts of block-quantized weights share, whatever their panel height
 * (AVX2: 8 rows, quant_avx2.c; AVX-512 VNNI and AMX: 16, quant_panels512.c): reading the native blocks
 * at pack time, and the per-token data of a Q8_0 activation block the products scale by. Included only by
 * units compiled with AVX2 and F16C (or more).
 */
#ifndef HEARTH_CPU_QUANT_PANELS_H
#define HEARTH_CPU_QUANT_PANELS_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "quant.h"

#define HEARTH_PANEL_XSIDE 4096 /* (token, block) entries of prepared activations at a time: 64 KiB */
#define HEARTH_PANEL_MAX_K (HEARTH_PANEL_XSIDE * 32) /* longest row packed: one token's blocks fit */
#define HEARTH_PANEL_XTOKENS 64 /* most tokens prepared at a time */

#define HPI static inline __attribute__((always_inline))

/* Zeros as long as the longest block (Q6_K's): the last panel's padding rows, zero scales and codes. */
static const uint8_t hearth_panel_zero_block[sizeof(hearth_block_q6_k)];

/* Record (p, b) of a layout of nb records of rec bytes per panel, cleared for packing into. */
HPI uint8_t* hearth_panel_record(uint8_t* dst, int64_t p, int64_t nb, int64_t b, int64_t rec) {
  uint8_t* R = dst + (p * nb + b) * rec;
  memset(R, 0, (size_t)rec);
  return R;
}

/* Native block b (bs bytes, nb per row) of row `height` p + r of w (n rows), or zeros past the last row. */
HPI const uint8_t* hearth_panel_row_block(const uint8_t* w, int64_t n, int64_t nb, int64_t bs, int height, int64_t p,
                                          int r, int64_t b) {
  const int64_t row = p * height + r;
  return row < n ? w + (row * nb + b) * bs : hearth_panel_zero_block;
}

/* Code e (0..31) of a native 32-element block: unsigned for the 4/5-bit types, the signed byte for Q8_0. */
HPI int hearth_panel_code32(const uint8_t* b, int e, int32_t type) {
  if (type == HEARTH_DTYPE_Q8_0) return (int8_t)b[2 + e];
  const int qo = type == HEARTH_DTYPE_Q4_0 ? 2 : type == HEARTH_DTYPE_Q4_1 ? 4 : type == HEARTH_DTYPE_Q5_0 ? 6 : 8;
  const int c = e < 16 ? b[qo + e] & 15 : b[qo + e - 16] >> 4;
  if (type != HEARTH_DTYPE_Q5_0 && type != HEARTH_DTYPE_Q5_1) return c;
  uint32_t qh;
  memcpy(&qh, b + qo - 4, 4);
  return c | (int)((qh >> e) & 1) << 4;
}

/* Code i (0..255) of a native Q4_K block (0..15), or of a Q5_K block (q5: 0..31, its fifth bit from qh). */
HPI int hearth_panel_code_q4k(const uint8_t* blk, int i, int q5) {
  /* element i: qs byte 32 (i / 64) + i % 32, nibble (i / 32) % 2 */
  const int c = (blk[(q5 ? 48 : 16) + 32 * (i / 64) + i % 32] >> (4 * ((i / 32) % 2))) & 15;
  return q5 ? c | ((blk[16 + i % 32] >> (i / 32)) & 1) << 4 : c;
}

/* The scale half of row r of a Q4_K / Q5_K record of P rows (AVX2's panels of 8, AVX-512's of 16: one
   layout at both heights): d[P] f16 | dmin[P] f16 | sm[8 sub-blocks][P] u8 | mh[8 sub-blocks][P / 2] u8,
   sm = scale | (min & 3) << 6, mh byte r / 2, nibble r % 2 = min >> 2. The codes follow at 16 P. */
HPI void hearth_panel_pack_q4k_scales(uint8_t* R, const uint8_t* blk, int r, int P) {
  memcpy(R + 2 * r, blk, 2);
  memcpy(R + 2 * P + 2 * r, blk + 2, 2);
  for (int sub = 0; sub < 8; sub++) {
    uint8_t sc, m;
    hearth_q4k_scale_min(blk + 4, sub, &sc, &m);
    R[4 * P + P * sub + r] = (uint8_t)(sc | (m & 3) << 6);
    R[12 * P + P / 2 * sub + r / 2] |= (uint8_t)((m >> 2) << (4 * (r % 2)));
  }
}

/* The 2-bit code i (0..255) of Q2_K's and Q3_K's qs: byte 32 (i / 128) + i % 32, bits 2 ((i % 128) / 32). */
HPI int hearth_panel_code2(const uint8_t* qs, int i) { return (qs[32 * (i / 128) + i % 32] >> (2 * ((i % 128) / 32))) & 3; }

/* Code i (0..255) of a native Q2_K block, 0..3. */
HPI int hearth_panel_code_q2k(const uint8_t* blk, int i) { return hearth_panel_code2(blk + 16, i); }

/* Code i (0..255) of a native Q3_K block, 0..7 (its value + 4): the low 2 bits from qs, the third from hmask. */
HPI int hearth_panel_code_q3k(const uint8_t* blk, int i) {
  return hearth_panel_code2(blk + 32, i) | ((blk[i % 32] >> (i / 32)) & 1) << 2;
}

/* Code i (0..255) of a native Q6_K block, 0..63 (its value + 32). */
HPI int hearth_panel_code_q6k(const uint8_t* blk, int i) {
  const int h = i / 128, j = i % 128;
  return ((blk[64 * h + j % 64] >> (4 * (j / 64))) & 15) | ((blk[128 + 32 * h + j % 32] >> (2 * (j / 32))) & 3) << 4;
}

/* What a token's Q8_0 block contributes besides its codes: d_x, -offset * sum(x), sum(x) * d_x. */
typedef struct {
  float dx;
  int32_t off;
  float mx;
  int32_t pad;
} hearth_panel_x;

/* The sum of a Q8_0 block's 32 signed codes (bytes + 128 summed unsigned, 32 * 128 taken off). */
HPI int32_t hearth_panel_code_sum(const int8_t* qs) {
  const __m256i u = _mm256_xor_si256(_mm256_loadu_si256((const __m256i*)qs), _mm256_set1_epi8((char)0x80));
  const __m256i s = _mm256_sad_epu8(u, _mm256_setzero_si256()); /* 4 x u64 */
  const __m128i h = _mm_add_epi64(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
  return (int32_t)(_mm_cvtsi128_si64(h) + _mm_extract_epi64(h, 1)) - 32 * 128;
}

/* px[t * nb + b] for tn tokens (xa: token 0's Q8_0 row, xrow bytes apart) and nb blocks: off = -offset *
   sum(x) for weight codes stored `offset` above their value, mx = sum(x) d_x for the types with mins. */
HPI void hearth_panel_prep_x(hearth_panel_x* px, const uint8_t* xa, int64_t xrow, int64_t tn, int64_t nb, int offset,
                             int mins) {
  for (int64_t t = 0; t < tn; t++)
    for (int64_t b = 0; b < nb; b++) {
      const hearth_block_q8_0* xb = (const hearth_block_q8_0*)(xa + t * xrow + b * 34);
      const int32_t sum = offset || mins ? hearth_panel_code_sum(xb->qs) : 0;
      hearth_panel_x* o = &px[t * nb + b];
      o->dx = _cvtsh_ss(xb->d);
      o->off = -offset * sum;
      o->mx = (float)sum * o->dx;
      o->pad = 0;
    }
}

/* Tokens prepared at a time for rows of nb blocks (at least 1: k <= HEARTH_PANEL_MAX_K). */
HPI int64_t hearth_panel_xtokens(int64_t nb) {
  const int64_t tb = HEARTH_PANEL_XSIDE / nb;
  return tb < HEARTH_PANEL_XTOKENS ? tb : HEARTH_PANEL_XTOKENS;
}

#undef HPI

#endif
