/*
 * quant_panels512.h — the AVX-512 tables' packed layout of block-quantized weight matrices: panels of 16
 * rows, one row per 32-bit lane of a 512-bit vector (quant_panels512.c), shared by the VNNI table's
 * products and the AMX tiles' (quant_amx.c). Included only by units compiled with AVX-512.
 *
 * Every product over these panels, VNNI or AMX, any T, reaches a token's outputs by the same float
 * operations in the same order: per block (32-element types) or super-block (K-quants) the exact integer
 * sum of code products is formed, then scaled and accumulated by the functions below, block after block
 * from zero. Integer sums are exact whatever instructions formed them, so a token gets the same bits
 * alone, beside 15 others (VNNI) or in a 16-token AMX tile: batch invariance on these machines.
 *
 * Records of 16 rows x 1 block, the bytes of the 16 native blocks (the last panel padded with rows of
 * zero scales), so a panel starts where its first row did. Offsets in a record:
 *   32-element types: d[16] f16 at 0 | m[16] f16 at 32 (Q4_1, Q5_1) | codes at P16_CODES(type):
 *     Q8_0: 8 groups g of 64 bytes, byte 4r + i = row r's code 4g + i + 128 (unsigned);
 *     Q4/Q5: 4 group pairs j of 64 bytes, byte 4r + i = row r's code 8j + i (low nibble) and 8j + 4 + i
 *     (high nibble); then (Q5_0, Q5_1) hb[8] u64: bit 4r + i of hb[g] = the fifth bit of code 4g + i.
 *   Q4_K, Q5_K: d[16] f16 at 0 | dmin[16] f16 at 32 | sm[8 sub-blocks][16 rows] u8 at 64 (scale |
 *     (min & 3) << 6) | mh[8 sub-blocks][8] u8 at 192 (byte r / 2, nibble r % 2: min >> 2) | codes at
 *     256: per sub-block of 32 codes, 256 bytes as a Q4_0 record's codes | (Q5_K) hb at 2304: per
 *     sub-block 8 u64 as Q5_0's.
 *   Q6_K: d[16] f16 at 0 | sc[16 sub-blocks][16 rows] i8 at 32 | nibbles at 288: per 32 codes G, 256
 *     bytes as Q4_0's | top bits at 2336: per G two 64-byte vectors v, byte 4r + i bits 2u, 2u + 1 = the
 *     top 2 bits of row r's code 32G + 4 (4v + u) + i.
 */
#ifndef HEARTH_CPU_QUANT_PANELS512_H
#define HEARTH_CPU_QUANT_PANELS512_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "quant_panels.h"

#define P16 16 /* rows per panel */

#define PI static inline __attribute__((always_inline))

PI int p16_is_k(int32_t type) {
  return type == HEARTH_DTYPE_Q4_K || type == HEARTH_DTYPE_Q5_K || type == HEARTH_DTYPE_Q6_K;
}
PI int p16_has_min(int32_t type) { return type == HEARTH_DTYPE_Q4_1 || type == HEARTH_DTYPE_Q5_1; }
PI int p16_is_q5(int32_t type) { return type == HEARTH_DTYPE_Q5_0 || type == HEARTH_DTYPE_Q5_1; }
/* What the stored codes carry above their value: the integer sums take offset * sum(x) off. */
PI int p16_offset(int32_t type) {
  return type == HEARTH_DTYPE_Q8_0 ? 128 : type == HEARTH_DTYPE_Q4_0 ? 8 : type == HEARTH_DTYPE_Q5_0 ? 16 : 0;
}
PI int64_t p16_rec(int32_t type) { return P16 * (int64_t)hearth_quant_block_bytes(type); }
PI int p16_codes(int32_t type) { return p16_has_min(type) ? 64 : 32; }

/* One block of a 32-element type into 16 rows' accumulators: acc + cvt(sum + off) * (d_w d_x), then
   + m_w * (sum(x) d_x) for the types with mins. sum: the exact sum of code products (with_off: of the
   codes as stored, the offset then taken off; else of the codes' values). */
PI __m512 p16_block(__m512 acc, __m512i sum, __m512 dw, __m512 mw, const hearth_panel_x* o, int mins, int with_off) {
  const __m512i s = with_off ? _mm512_add_epi32(sum, _mm512_set1_epi32(o->off)) : sum;
  acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw, _mm512_set1_ps(o->dx)), acc);
  if (mins) acc = _mm512_fmadd_ps(mw, _mm512_set1_ps(o->mx), acc);
  return acc;
}

/* One K-quant super-block: isum = sum over sub-blocks of scale * (code products), msum = sum of min *
   sum(x) (Q4_K, Q5_K) or of scale * sum(x) (Q6_K, whose codes as stored carry 32 above their value; 0
   where isum was taken over the codes' values). */
PI __m512 p16_superblock(__m512 acc, __m512i isum, __m512i msum, __m512 dw, __m512 dmw, float dx, int32_t type) {
  const __m512 d = _mm512_set1_ps(dx);
  if (type == HEARTH_DTYPE_Q6_K) {
    const __m512i s = _mm512_sub_epi32(isum, _mm512_slli_epi32(msum, 5));
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw, d), acc);
  }
  acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_mul_ps(dw, d), acc);
  return _mm512_fmadd_ps(_mm512_cvtepi32_ps(msum), _mm512_mul_ps(_mm512_sub_ps(_mm512_setzero_ps(), dmw), d), acc);
}

/* The 16 rows' f16 scales at p as floats. */
PI __m512 p16_h16(const uint8_t* p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)p)); }

/* Q4_K / Q5_K sub-block `sub` of record R: the rows' scales and mins (int32 lanes). */
PI void p16_q4k_scales(const uint8_t* R, int sub, __m512i* sc, __m512i* mn) {
  const __m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)(R + 64 + 16 * sub)));
  int64_t b8;
  memcpy(&b8, R + 192 + 8 * sub, 8);
  const __m128i pairs = _mm_shuffle_epi8(_mm_cvtsi64_si128(b8), _mm_set_epi8(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0));
  const __m512i h = _mm512_and_si512(_mm512_srlv_epi32(_mm512_cvtepu8_epi32(pairs),
                                                        _mm512_set_epi32(4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0)),
                                     _mm512_set1_epi32(15));
  *sc = _mm512_and_si512(v, _mm512_set1_epi32(63));
  *mn = _mm512_or_si512(_mm512_srli_epi32(v, 6), _mm512_slli_epi32(h, 2));
}

/* v in both int16 halves of each lane (v < 2^15), for VPDPWSSD against a pair of int16 values. */
PI __m512i p16_twice16(__m512i v) { return _mm512_or_si512(v, _mm512_slli_epi32(v, 16)); }

/* Lanes of a (low half) and b (high half) as int16 pairs. */
PI __m512i p16_pair16(__m512i a, __m512i b) {
  return _mm512_or_si512(_mm512_and_si512(a, _mm512_set1_epi32(0xffff)), _mm512_slli_epi32(b, 16));
}

/* The int16 pair bsums[j], bsums[j + 1] of a Q8_K block (j even) in every lane. */
PI __m512i p16_bsum_pair(const hearth_block_q8_k* xb, int j) {
  int32_t v;
  memcpy(&v, &xb->bsums[j], 4);
  return _mm512_set1_epi32(v);
}

/* Q6_K sub-block `sub` (16 codes) of record R: the rows' signed scales. */
PI __m512i p16_q6k_scales(const uint8_t* R, int sub) {
  return _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i*)(R + 32 + 16 * sub)));
}

/* Q6_K group pair j (0..3) of the 32 codes G of record R: the codes of groups 2j (lo) and 2j + 1 (hi). */
PI void p16_q6k_codes(const uint8_t* R, int G, int j, __m512i* lo, __m512i* hi) {
  const __m512i m4 = _mm512_set1_epi8(0x0f), m3 = _mm512_set1_epi8(3);
  const __m512i v = _mm512_loadu_si512(R + 288 + 256 * G + 64 * j);
  const __m512i top = _mm512_loadu_si512(R + 2336 + 128 * G + 64 * (j / 2));
  const int s = 4 * (j % 2);
  *lo = _mm512_or_si512(_mm512_and_si512(v, m4),
                        _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(top, s), m3), 4));
  *hi = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(v, 4), m4),
                        _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(top, s + 2), m3), 4));
}

/* Nibble group pair at codes (64 bytes) into the codes of groups 2j (lo) and 2j + 1 (hi); hb: the fifth
   bits of the 8 groups (u64 each) or NULL. */
PI void p16_nibbles(const uint8_t* codes, const uint8_t* hb, int j, __m512i* lo, __m512i* hi) {
  const __m512i m4 = _mm512_set1_epi8(0x0f);
  const __m512i v = _mm512_loadu_si512(codes + 64 * j);
  *lo = _mm512_and_si512(v, m4);
  *hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
  if (hb) {
    uint64_t h0, h1;
    memcpy(&h0, hb + 16 * j, 8);
    memcpy(&h1, hb + 16 * j + 8, 8);
    *lo = _mm512_mask_add_epi8(*lo, (__mmask64)h0, *lo, _mm512_set1_epi8(16));
    *hi = _mm512_mask_add_epi8(*hi, (__mmask64)h1, *hi, _mm512_set1_epi8(16));
  }
}

/* y[t * ldy + r] = lane r of acc[t] for rows r < rows. */
PI void p16_store(float* y, int64_t ldy, int rows, const __m512* acc, int TT) {
  const __mmask16 m = (__mmask16)((1u << rows) - 1);
  for (int t = 0; t < TT; t++) _mm512_mask_storeu_ps(y + t * ldy, m, acc[t]);
}

/* quant_panels512.c: the layout's size (0 where a type or k has none), the packing, and the VNNI product
   (any T; quant_amx.c takes the 16-token tiles of T >= 16 and leaves it the rest). */
size_t hearth_p16_bytes(int32_t type, int64_t n, int64_t k);
void hearth_p16_pack(void* dst, const void* w, int32_t type, int64_t n, int64_t k);
void hearth_p16_matmul(float* y, int64_t ldy, const void* wp, int32_t type, const void* x_act, int64_t T, int64_t n,
                       int64_t k);

#endif
