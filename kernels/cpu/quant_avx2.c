/* quant_avx2.c — AVX2 dot products of the quantized types (-mavx2 -mfma -mf16c). */
#include <immintrin.h>
#include <string.h>

#include "quant_panels.h"

#define IV __m256i
#define FV __m256
#define QCHUNK 32
#define T32_R 4
#define T32_DR 4
#define T32_T 2
/* K-quant tiles: 1 row x 4 tokens. A row's codes and scales are unpacked once per chunk for 4 tokens,
   and the tile's 4 + 4 accumulators stay in registers (2 x 2 spilled): one thread, 1536 x 512 at 64
   tokens, Q4_K 27 -> 39 and Q6_K 22 -> 32 GMAC/s; decode rows 16 -> 18 and 13 -> 15. Same bits. */
#define TK_R 1
#define TK_T 4

#define QI static inline __attribute__((always_inline))

QI IV iv_zero(void) { return _mm256_setzero_si256(); }
QI IV iv_set1_8(char c) { return _mm256_set1_epi8(c); }
QI IV iv_sub32(IV a, IV b) { return _mm256_sub_epi32(a, b); }

QI IV dot_us(IV acc, IV u, IV x) {
  return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, x), _mm256_set1_epi16(1)));
}
QI IV dot_us_sc(IV acc, IV u, IV x, IV s) {
  return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, x), s));
}
/* |w| * (x with w's sign): u8 x s8 with no overflow (|w| <= 128, |x| <= 127). */
QI IV dot_ss(IV acc, IV w, IV x) { return dot_us(acc, _mm256_abs_epi8(w), _mm256_sign_epi8(x, w)); }

static inline float hsum256(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

QI FV fv_zero(void) { return _mm256_setzero_ps(); }
QI FV fv_cvt(IV v) { return _mm256_cvtepi32_ps(v); }
QI FV fv_fma(FV a, FV b, FV c) { return _mm256_fmadd_ps(a, b, c); }
QI FV fv_mul(FV a, FV b) { return _mm256_mul_ps(a, b); }
QI FV fv_set1(float f) { return _mm256_set1_ps(f); }
QI float fv_reduce(FV v) { return hsum256(v); }
QI FV fv_from_i32x8(__m256i m) { return _mm256_cvtepi32_ps(m); }

#define QVL 8
QI FV fv_load(const float* p) { return _mm256_loadu_ps(p); }
QI FV fv_add(FV a, FV b) { return _mm256_add_ps(a, b); }
QI FV fv_abs(FV v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }
QI FV fv_max(FV a, FV b) { return _mm256_max_ps(a, b); }
QI float fv_reduce_max(FV v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}
QI FV fv_round_away(FV v) {
  const FV t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC), f = _mm256_sub_ps(v, t);
  const FV one = _mm256_set1_ps(1.0f);
  const FV up = _mm256_and_ps(_mm256_cmp_ps(f, _mm256_set1_ps(0.5f), _CMP_GE_OQ), one);
  const FV down = _mm256_and_ps(_mm256_cmp_ps(f, _mm256_set1_ps(-0.5f), _CMP_LE_OQ), one);
  return _mm256_sub_ps(_mm256_add_ps(t, up), down);
}
QI void store_i8(int8_t* p, FV v) {
  const __m256i i = _mm256_cvtps_epi32(v);
  const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(i), _mm256_extracti128_si256(i, 1));
  _mm_storel_epi64((__m128i*)p, _mm_packs_epi16(w, w));
}

/* Chunk c covers sub-blocks 2c, 2c + 1: the low 128 bits take scale 2c, the high 128 bits 2c + 1. */
QI IV sc_chunk(__m256i s16, int c) {
  const __m256i pair = _mm256_permutevar8x32_epi32(s16, _mm256_set1_epi32(c));
  return _mm256_shuffle_epi8(pair, _mm256_set_epi8(3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 1, 0, 1, 0, 1, 0,
                                                   1, 0, 1, 0, 1, 0, 1, 0, 1, 0));
}

QI __m256i bits_to_bytes(uint32_t bits, char v) {
  const __m256i rep = _mm256_shuffle_epi8(_mm256_set1_epi32((int)bits),
                                          _mm256_set_epi8(3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1,
                                                          1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0));
  const __m256i m = _mm256_set1_epi64x((long long)0x8040201008040201ull);
  return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(rep, m), m), _mm256_set1_epi8(v));
}
QI __m256i bitplane_to_bytes(__m256i p, int bit, char v) {
  const __m256i m = _mm256_set1_epi8((char)(1 << bit));
  return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(p, m), m), _mm256_set1_epi8(v));
}

#define QOPS_NAME hearth_quant_ops_avx2
#define QOPS_ISA "avx2"
#define QOPS_PACK_BYTES panel_bytes
#define QOPS_PACK panel_pack
#define QOPS_MATMUL_PACKED panel_matmul

#include "quant_simd.inc"

/* ---------------------------------------------------------------------------------------------------- */
/* Packed panels of 8 rows: one row per 32-bit lane.                                                       */
/*                                                                                                        */
/* In the stored layout a block's 32 products land in the lanes of one vector and must be summed across  */
/* them (quant_simd.inc's tiles): on AVX2 VPMADDUBSW, VPMADDWD, VCVTDQ2PS and the FMA share two pipes (Zen */
/* 3, measured), so those per-block sums cost more than the products. Laid out so that each 32-bit lane    */
/* holds 4 consecutive codes of one of 8 rows, a block is 8 VPMADDUBSW against 4 bytes of the token        */
/* broadcast to every lane (a load, no shuffle), summed in int16 and widened once: per row and block, one  */
/* VPMADDUBSW, an add and an eighth of the widening, conversion and FMA, nothing to fold across lanes, and */
/* the 8 results land in y side by side. Against those tiles, one Zen 3 core: 2-3.6x the GMAC/s at 24     */
/* tokens (Q4_0 24 -> 52, Q4_1 19 -> 67), 2-3.6x the decode GB/s from L2 (Q8_0 21 -> 40, Q4_0 7 -> 27).     */
/*                                                                                                        */
/* Weight matrices of these types are packed once at load (model.c), into records of 8 rows x 1 block:   */
/*   d[8] f16 | m[8] f16 (Q4_1, Q5_1) | codes | hb[8] u32 (Q5_0, Q5_1)                                    */
/* codes, Q8_0: 8 groups g of 32 bytes, byte 4r + i = row r's code 4g + i (signed);                       */
/*        Q4/Q5: 4 group pairs j of 32 bytes, byte 4r + i = row r's code 8j + i (low nibble) and          */
/*        8j + 4 + i (high nibble); hb[g] bit 4r + i = the fifth bit of row r's code 4g + i.               */
/* A record has the bytes of its 8 native blocks, so a panel starts where its first row did; the last     */
/* panel is padded with rows of zero scales. Int16 sums stay in range: 8 products of 4-bit codes reach    */
/* 8 * 2 * 15 * 127, of 5-bit codes 4 (then widened) * 2 * 31 * 127; Q8_0's pairs widen per group.        */
/*                                                                                                        */
/* Per token and block the order of the float operations is fixed (acc = fma(cvt(sum) , d_w d_x, acc),   */
/* then the min term), the same for T = 1 and in the GEMM's token tiles: the same bits whatever T.        */

#define PANEL_TT 4 /* tokens per tile of the GEMM */

QI int64_t rec_bytes(const int type) { return 8 * bytes32(type); }
QI int code_off(const int type) { return has_min32(type) ? 32 : 16; }
QI int is_q5(const int type) { return type == HEARTH_DTYPE_Q5_0 || type == HEARTH_DTYPE_Q5_1; }

static size_t panel_bytes(int32_t type, int64_t n, int64_t k) {
  if (hearth_dtype_is_k_quant(type)) /* 8 rows x 1 super-block */
    return k % 256 == 0 && k <= HEARTH_PANEL_MAX_K && n > 0 ? (size_t)((n + 7) / 8) * (size_t)(k / 256) * 8 * bytesk(type) : 0;
  if (hearth_quant_block_elems(type) != 32 || k % 32 != 0 || k > HEARTH_PANEL_MAX_K || n <= 0) return 0;
  return (size_t)((n + 7) / 8) * (size_t)(k / 32) * (size_t)rec_bytes(type);
}

QI void panel_pack_typed(uint8_t* dst, const uint8_t* w, int64_t n, int64_t k, const int type) {
  const int64_t nb = k / 32, bs = bytes32(type), rec = rec_bytes(type);
  for (int64_t p = 0; p < (n + 7) / 8; p++)
    for (int64_t b = 0; b < nb; b++) {
      uint8_t* R = hearth_panel_record(dst, p, nb, b, rec);
      uint8_t* codes = R + code_off(type);
      for (int r = 0; r < 8; r++) {
        const uint8_t* blk = hearth_panel_row_block(w, n, nb, bs, 8, p, r, b);
        memcpy(R + 2 * r, blk, 2);
        if (has_min32(type)) memcpy(R + 16 + 2 * r, blk + 2, 2);
        for (int e = 0; e < 32; e++) {
          const int c = hearth_panel_code32(blk, e, type), g = e / 4, i = e % 4;
          if (type == HEARTH_DTYPE_Q8_0) {
            codes[g * 32 + 4 * r + i] = (uint8_t)c;
            continue;
          }
          codes[(g / 2) * 32 + 4 * r + i] |= (uint8_t)((c & 15) << (g % 2 ? 4 : 0));
          if (is_q5(type) && (c >> 4)) {
            uint32_t m;
            memcpy(&m, codes + 128 + 4 * g, 4);
            m |= 1u << (4 * r + i);
            memcpy(codes + 128 + 4 * g, &m, 4);
          }
        }
      }
    }
}

static void pack_row_q2k(uint8_t* R, const uint8_t* blk, int r);
static void pack_row_q3k(uint8_t* R, const uint8_t* blk, int r);
static void pack_row_q4k(uint8_t* R, const uint8_t* blk, int r, const int type);
static void pack_row_q6k(uint8_t* R, const uint8_t* blk, int r);

/* The K-quants' records of 8 rows x 1 super-block: each cleared, then its rows' native blocks put in by the
   type's row packer (padding rows past n are zero blocks). */
static void panel_pack_k(uint8_t* dst, const uint8_t* w, int64_t n, int64_t k, const int type) {
  const int64_t nsb = k / 256, bs = bytesk(type);
  for (int64_t p = 0; p < (n + 7) / 8; p++)
    for (int64_t sb = 0; sb < nsb; sb++) {
      uint8_t* R = hearth_panel_record(dst, p, nsb, sb, 8 * bs);
      for (int r = 0; r < 8; r++) {
        const uint8_t* blk = hearth_panel_row_block(w, n, nsb, bs, 8, p, r, sb);
        switch (type) {
          case HEARTH_DTYPE_Q2_K: pack_row_q2k(R, blk, r); break;
          case HEARTH_DTYPE_Q3_K: pack_row_q3k(R, blk, r); break;
          case HEARTH_DTYPE_Q6_K: pack_row_q6k(R, blk, r); break;
          default: pack_row_q4k(R, blk, r, type); break; /* Q4_K, Q5_K */
        }
      }
    }
}

static void panel_pack(void* dst, const void* w, int32_t type, int64_t n, int64_t k) {
  switch (type) {
    case HEARTH_DTYPE_Q2_K:
    case HEARTH_DTYPE_Q3_K:
    case HEARTH_DTYPE_Q4_K:
    case HEARTH_DTYPE_Q5_K:
    case HEARTH_DTYPE_Q6_K: panel_pack_k(dst, w, n, k, type); break;
    case HEARTH_DTYPE_Q8_0: panel_pack_typed(dst, w, n, k, HEARTH_DTYPE_Q8_0); break;
    case HEARTH_DTYPE_Q4_0: panel_pack_typed(dst, w, n, k, HEARTH_DTYPE_Q4_0); break;
    case HEARTH_DTYPE_Q4_1: panel_pack_typed(dst, w, n, k, HEARTH_DTYPE_Q4_1); break;
    case HEARTH_DTYPE_Q5_0: panel_pack_typed(dst, w, n, k, HEARTH_DTYPE_Q5_0); break;
    default: panel_pack_typed(dst, w, n, k, HEARTH_DTYPE_Q5_1); break;
  }
}

/* 4 bytes of x (codes 4g .. 4g + 3 of block b) in every lane. */
QI __m256i x4(const uint8_t* xb, int g) {
  int32_t v;
  memcpy(&v, xb + 2 + 4 * g, 4);
  return _mm256_set1_epi32(v);
}

/* Asks for the n bytes from p (a panel's record ahead, for the tile that streams the panel from memory). */
QI void prefetch_bytes(const uint8_t* p, int64_t n) {
  for (int64_t o = 0; o < n; o += 64) _mm_prefetch((const char*)p + o, _MM_HINT_T0);
}

/* y[t * ldy + r] = lane r of acc[t] for the panel's rows r < rows (the last panel may be short). */
QI void panel_store(float* y, int64_t ldy, const int rows, const __m256* acc, const int TT) {
  for (int t = 0; t < TT; t++) {
    if (rows == 8) {
      _mm256_storeu_ps(y + t * ldy, acc[t]);
    } else {
      float out[8];
      _mm256_storeu_ps(out, acc[t]);
      memcpy(y + t * ldy, out, sizeof(float) * (size_t)rows);
    }
  }
}

/* y[t * ldy + r] for the panel's rows r < rows and TT tokens, over all nb blocks. px: the tokens' prepared
   data (token t at px + t * nb). */
QI void panel_tile(float* y, int64_t ldy, const int rows, const uint8_t* wp, const uint8_t* xa, int64_t xrow,
                   const hearth_panel_x* px, int64_t nb, const int TT, const int type, const int prefetch) {
  const int64_t rec = rec_bytes(type);
  const __m256i ones = _mm256_set1_epi16(1), m4 = _mm256_set1_epi8(0x0f);
  __m256 acc[PANEL_TT];
  for (int t = 0; t < TT; t++) acc[t] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; b++) {
    const uint8_t* R = wp + b * rec;
    if (prefetch) prefetch_bytes(R + 8 * rec, rec); /* the panel's first tile streams it: 8 records ahead */
    const uint8_t* codes = R + code_off(type);
    __m256i p[PANEL_TT];
    for (int t = 0; t < TT; t++) p[t] = _mm256_setzero_si256();
    if (type == HEARTH_DTYPE_Q8_0) {
      /* Unrolled by 2, not the 8 GCC picks on its own: fully unrolled it keeps every group's products
         on the stack and sums them after (a store and a load each), 1.4x slower at 4 tokens. */
#pragma GCC unroll 2
      for (int g = 0; g < 8; g++) {
        const __m256i w = ld256(codes + 32 * g), aw = _mm256_abs_epi8(w);
        for (int t = 0; t < TT; t++) {
          const __m256i xs = _mm256_sign_epi8(x4(xa + t * xrow + b * 34, g), w);
          p[t] = _mm256_add_epi32(p[t], _mm256_madd_epi16(_mm256_maddubs_epi16(aw, xs), ones));
        }
      }
    } else {
      __m256i p16[PANEL_TT];
      for (int t = 0; t < TT; t++) p16[t] = _mm256_setzero_si256();
#pragma GCC unroll 2 /* as Q8_0's groups above */
      for (int j = 0; j < 4; j++) {
        const __m256i v = ld256(codes + 32 * j);
        __m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
        if (is_q5(type)) {
          uint32_t h0, h1;
          memcpy(&h0, codes + 128 + 8 * j, 4);
          memcpy(&h1, codes + 132 + 8 * j, 4);
          lo = _mm256_or_si256(lo, bits_to_bytes(h0, 16));
          hi = _mm256_or_si256(hi, bits_to_bytes(h1, 16));
        }
        for (int t = 0; t < TT; t++) {
          const uint8_t* xb = xa + t * xrow + b * 34;
          p16[t] = _mm256_add_epi16(p16[t], _mm256_maddubs_epi16(lo, x4(xb, 2 * j)));
          p16[t] = _mm256_add_epi16(p16[t], _mm256_maddubs_epi16(hi, x4(xb, 2 * j + 1)));
        }
        if (is_q5(type) && j % 2 == 1) /* 4 groups of 5-bit products fill int16: widen now */
          for (int t = 0; t < TT; t++) {
            p[t] = _mm256_add_epi32(p[t], _mm256_madd_epi16(p16[t], ones));
            p16[t] = _mm256_setzero_si256();
          }
      }
      if (!is_q5(type))
        for (int t = 0; t < TT; t++) p[t] = _mm256_madd_epi16(p16[t], ones);
    }
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)R));
    const __m256 mw = has_min32(type) ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(R + 16))) : _mm256_setzero_ps();
    for (int t = 0; t < TT; t++) {
      const hearth_panel_x* o = &px[t * nb + b];
      if (offset32(type)) p[t] = _mm256_add_epi32(p[t], _mm256_set1_epi32(o->off));
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p[t]), _mm256_mul_ps(dw, _mm256_set1_ps(o->dx)), acc[t]);
      if (has_min32(type)) acc[t] = _mm256_fmadd_ps(mw, _mm256_set1_ps(o->mx), acc[t]);
    }
  }
  panel_store(y, ldy, rows, acc, TT);
}

QI void panel_matmul_typed(float* y, int64_t ldy, const uint8_t* wp, const uint8_t* xa, int64_t T, int64_t n,
                           int64_t k, const int type) {
  const int64_t nb = k / 32, xrow = nb * 34, prec = nb * rec_bytes(type);
  hearth_panel_x px[HEARTH_PANEL_XSIDE];
  const int64_t tb = hearth_panel_xtokens(nb);
  for (int64_t t0 = 0; t0 < T; t0 += tb) {
    const int64_t tn = T - t0 < tb ? T - t0 : tb;
    hearth_panel_prep_x(px, xa + t0 * xrow, xrow, tn, nb, offset32(type), has_min32(type));
    for (int64_t r0 = 0; r0 < n; r0 += 8) {
      const int rows = n - r0 < 8 ? (int)(n - r0) : 8;
      const uint8_t* p = wp + (r0 / 8) * prec;
      /* The first tile over a panel reads it from memory (the later ones find it in L1), so it prefetches
         ahead as a decode does: without, a 2- to 8-token product of a matrix in DRAM ran at neither the
         compute nor the bandwidth limit (one Zen 3 core, 49152 x 576 Q8_0: 26 GMAC/s at 4 tokens). */
      int64_t t = 0;
      for (; t + PANEL_TT <= tn; t += PANEL_TT)
        panel_tile(y + (t0 + t) * ldy + r0, ldy, rows, p, xa + (t0 + t) * xrow, xrow, px + t * nb, nb, PANEL_TT, type, t == 0);
      for (; t < tn; t++)
        panel_tile(y + (t0 + t) * ldy + r0, ldy, rows, p, xa + (t0 + t) * xrow, xrow, px + t * nb, nb, 1, type, t == 0);
    }
  }
}

/* ---------------------------------------------------------------------------------------------------- */
/* Q4_K and Q5_K in panels of 8 rows.                                                                     */
/*                                                                                                        */
/* A sub-block of Q4_K (32 codes, a 6-bit scale and min per row) is Q4_0's block without the offset, so    */
/* its products are Q4_0's panel code: 8 VPMADDUBSW per token summed in int16, then one VPMADDWD against  */
/* the 8 rows' scales instead of ones, summed in int32 over the super-block (at most 8 * 2 * 30480 * 63). */
/* Floats only once per super-block: acc = fma(cvt(sum q x sc), d_w d_x, acc), then the mins,             */
/* acc = fma(cvt(sum m xsum), -dmin_w d_x, acc), in that order whatever T: the same bits for any T.       */
/* Q5_K's fifth bits are Q5_0's panel planes, and its int16 sums are widened every 4 groups as there.     */
/* Records of 8 rows x 1 super-block, the bytes of the 8 native blocks (1152; Q5_K 1408):                 */
/*   d[8] f16 | dmin[8] f16 | sm[8 sub-blocks][8 rows] u8 | mh[8 sub-blocks][4] u8 | codes[8][128]         */
/*   (Q5_K: | hb[8 sub-blocks][8] u32)                                                                    */
/* sm = scale | (min & 3) << 6; mh byte r/2, nibble r % 2 = min >> 2; codes of a sub-block as Q4_0's,     */
/* hb[sub][g] bit 4r + i = the fifth bit of row r's code 4g + i of the sub-block, as Q5_0's.              */
/* The activations' sums per sub-block come from Q8_K's bsums (two per sub-block; |sum| <= 32 * 127).     */

/* Q4_K / Q5_K: row r's native block blk into its record R (panel_pack_k). */
static void pack_row_q4k(uint8_t* R, const uint8_t* blk, int r, const int type) {
  const int q5 = type == HEARTH_DTYPE_Q5_K;
  hearth_panel_pack_q4k_scales(R, blk, r, 8);
  for (int sub = 0; sub < 8; sub++) {
    uint8_t* codes = R + 128 + 128 * sub;
    for (int e = 0; e < 32; e++) {
      const int g = e / 4, lane_bit = 4 * r + e % 4, c = hearth_panel_code_q4k(blk, 32 * sub + e, q5);
      codes[(g / 2) * 32 + lane_bit] |= (uint8_t)((c & 15) << (g % 2 ? 4 : 0));
      if (c >> 4)
        R[1152 + 32 * sub + 4 * g + lane_bit / 8] |= (uint8_t)(1 << (lane_bit % 8));
    }
  }
}

/* Rows' scales (lanes) of sub-block `sub`, each in both int16 halves of its lane, and their mins (int32). */
QI void q4k_panel_scales(const uint8_t* R, int sub, __m256i* sc2, __m256i* mn) {
  int64_t b8;
  memcpy(&b8, R + 32 + 8 * sub, 8);
  const __m256i v = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(b8));
  const __m256i sc = _mm256_and_si256(v, _mm256_set1_epi32(63));
  int32_t b4;
  memcpy(&b4, R + 96 + 4 * sub, 4);
  const __m256i h = _mm256_cvtepu8_epi32(_mm_shuffle_epi8(_mm_cvtsi32_si128(b4), _mm_set_epi8(-1, -1, -1, -1, -1, -1, -1, -1, 3, 3, 2, 2, 1, 1, 0, 0)));
  const __m256i mh = _mm256_and_si256(_mm256_srlv_epi32(h, _mm256_set_epi32(4, 0, 4, 0, 4, 0, 4, 0)), _mm256_set1_epi32(15));
  *sc2 = _mm256_or_si256(sc, _mm256_slli_epi32(sc, 16));
  *mn = _mm256_or_si256(_mm256_srli_epi32(v, 6), _mm256_slli_epi32(mh, 2));
}

/* The float steps of one super-block of the K-quant panels, per token, in the same order whatever T:
   offset_shift >= 0 (Q3_K: 2, Q6_K: 5, codes stored value + 4 or + 32): acc = fma(cvt(isum - msum <<
   offset_shift), d_w d_x, acc); else (Q2_K, Q4_K, Q5_K: mins, dmin at R + 16): acc = fma(cvt(isum), d_w d_x,
   acc), then acc = fma(cvt(msum), -dmin_w d_x, acc). */
QI void ksb_finish(__m256* acc, const __m256i* isum, const __m256i* msum, const uint8_t* R, const uint8_t* xa,
                   int64_t xrow, int64_t sb, const int TT, const int offset_shift) {
  const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)R));
  const __m256 ndmw = offset_shift >= 0 ? _mm256_setzero_ps()
                                        : _mm256_sub_ps(_mm256_setzero_ps(), _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(R + 16))));
  for (int t = 0; t < TT; t++) {
    const __m256 dx = _mm256_set1_ps(((const hearth_block_q8_k*)(xa + t * xrow) + sb)->d);
    if (offset_shift >= 0) {
      const __m256i sum = _mm256_sub_epi32(isum[t], _mm256_sll_epi32(msum[t], _mm_cvtsi32_si128(offset_shift)));
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), _mm256_mul_ps(dw, dx), acc[t]);
    } else {
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t]), _mm256_mul_ps(dw, dx), acc[t]);
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(msum[t]), _mm256_mul_ps(ndmw, dx), acc[t]);
    }
  }
}

/* y[t * ldy + r] for the panel's rows r < rows and TT tokens over all nsb super-blocks (x: Q8_K rows). */
QI void panel_tile_q4k(float* y, int64_t ldy, const int rows, const uint8_t* wp, const uint8_t* xa, int64_t xrow,
                       int64_t nsb, const int TT, const int prefetch, const int type) {
  const int q5 = type == HEARTH_DTYPE_Q5_K;
  const int64_t rec = 8 * bytesk(type);
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  __m256 acc[PANEL_TT];
  for (int t = 0; t < TT; t++) acc[t] = _mm256_setzero_ps();
  for (int64_t sb = 0; sb < nsb; sb++) {
    const uint8_t* R = wp + sb * rec;
    if (prefetch) prefetch_bytes(R + rec, rec); /* the panel's first tile streams it: the next record */
    __m256i isum[PANEL_TT], msum[PANEL_TT];
    for (int t = 0; t < TT; t++) isum[t] = msum[t] = _mm256_setzero_si256();
#pragma GCC unroll 1
    for (int sub = 0; sub < 8; sub++) {
      __m256i sc2, mn;
      q4k_panel_scales(R, sub, &sc2, &mn);
      const uint8_t* codes = R + 128 + 128 * sub;
      __m256i p16[PANEL_TT];
      for (int t = 0; t < TT; t++) p16[t] = _mm256_setzero_si256();
      for (int j = 0; j < 4; j++) {
        const __m256i v = ld256(codes + 32 * j);
        __m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
        if (q5) {
          uint32_t h0, h1;
          memcpy(&h0, R + 1152 + 32 * sub + 8 * j, 4);
          memcpy(&h1, R + 1152 + 32 * sub + 8 * j + 4, 4);
          lo = _mm256_or_si256(lo, bits_to_bytes(h0, 16));
          hi = _mm256_or_si256(hi, bits_to_bytes(h1, 16));
        }
        for (int t = 0; t < TT; t++) {
          const hearth_block_q8_k* xb = (const hearth_block_q8_k*)(xa + t * xrow) + sb;
          int32_t x0, x1;
          memcpy(&x0, xb->qs + 32 * sub + 8 * j, 4);
          memcpy(&x1, xb->qs + 32 * sub + 8 * j + 4, 4);
          p16[t] = _mm256_add_epi16(p16[t], _mm256_maddubs_epi16(lo, _mm256_set1_epi32(x0)));
          p16[t] = _mm256_add_epi16(p16[t], _mm256_maddubs_epi16(hi, _mm256_set1_epi32(x1)));
        }
        if (q5 && j == 1) /* 4 groups of 5-bit products fill int16: widen now */
          for (int t = 0; t < TT; t++) {
            isum[t] = _mm256_add_epi32(isum[t], _mm256_madd_epi16(p16[t], sc2));
            p16[t] = _mm256_setzero_si256();
          }
      }
      for (int t = 0; t < TT; t++) {
        const hearth_block_q8_k* xb = (const hearth_block_q8_k*)(xa + t * xrow) + sb;
        isum[t] = _mm256_add_epi32(isum[t], _mm256_madd_epi16(p16[t], sc2));
        const int32_t xs = xb->bsums[2 * sub] + xb->bsums[2 * sub + 1];
        msum[t] = _mm256_add_epi32(msum[t], _mm256_mullo_epi32(mn, _mm256_set1_epi32(xs)));
      }
    }
    ksb_finish(acc, isum, msum, R, xa, xrow, sb, TT, -1);
  }
  panel_store(y, ldy, rows, acc, TT);
}

/* ---------------------------------------------------------------------------------------------------- */
/* Q6_K in panels of 8 rows.                                                                              */
/*                                                                                                        */
/* Codes q (0..63, value d * sc * (q - 32)) as Q4_0's panel nibbles plus their top 2 bits in planes; the  */
/* scales are signed bytes per 16 codes. Per sub-block of 16: 4 VPMADDUBSW per token, widened every 2      */
/* (4 products of 63 * 127 fit int16, 8 do not) by VPMADDWD against the rows' scales, summed in int32; the */
/* offset is sum(sc * xsum) * 32, taken off in int32 before the one conversion per super-block:           */
/* acc = fma(cvt(sum q x sc - 32 sum sc xsum), d_w d_x, acc), whatever T.                                 */
/* Records of 8 rows x 1 super-block, the bytes of the 8 native blocks (1680):                            */
/*   d[8] f16 | sc[16 sub-blocks][8 rows] i8 | nibbles[8][128] | top bits[8][64]                           */
/* per 32 codes G: nibbles as Q4_0's block; top bits two vectors v = 0, 1, byte 4r + i bits 2u, 2u + 1 =  */
/* the top bits of row r's code 32G + 4 (4v + u) + i.                                                     */

/* Q6_K: row r's native block blk into its record R (panel_pack_k). */
static void pack_row_q6k(uint8_t* R, const uint8_t* blk, int r) {
  memcpy(R + 2 * r, blk + 208, 2);
  for (int sub = 0; sub < 16; sub++) R[16 + 8 * sub + r] = blk[192 + sub];
  for (int i = 0; i < 256; i++) {
    const int q = hearth_panel_code_q6k(blk, i);
    const int G = i / 32, e = i % 32, g = e / 4;
    R[144 + 128 * G + (g / 2) * 32 + 4 * r + e % 4] |= (uint8_t)((q & 15) << (g % 2 ? 4 : 0));
    R[1168 + 64 * G + 32 * (g / 4) + 4 * r + e % 4] |= (uint8_t)((q >> 4) << (2 * (g % 4)));
  }
}

/* y[t * ldy + r] for the panel's rows r < rows and TT tokens over all nsb super-blocks (x: Q8_K rows). */
QI void panel_tile_q6k(float* y, int64_t ldy, const int rows, const uint8_t* wp, const uint8_t* xa, int64_t xrow,
                       int64_t nsb, const int TT, const int prefetch) {
  const int64_t rec = 8 * bytesk(HEARTH_DTYPE_Q6_K);
  const __m256i m4 = _mm256_set1_epi8(0x0f), m3 = _mm256_set1_epi8(3);
  __m256 acc[PANEL_TT];
  for (int t = 0; t < TT; t++) acc[t] = _mm256_setzero_ps();
  for (int64_t sb = 0; sb < nsb; sb++) {
    const uint8_t* R = wp + sb * rec;
    if (prefetch) prefetch_bytes(R + rec, rec); /* the panel's first tile streams it: the next record */
    __m256i isum[PANEL_TT], msum[PANEL_TT];
    for (int t = 0; t < TT; t++) isum[t] = msum[t] = _mm256_setzero_si256();
#pragma GCC unroll 1
    for (int G = 0; G < 8; G++) {
      const uint8_t* nib = R + 144 + 128 * G;
      const __m256i top0 = ld256(R + 1168 + 64 * G), top1 = ld256(R + 1168 + 64 * G + 32);
      for (int half = 0; half < 2; half++) { /* sub-block 2G + half: groups 4 half .. 4 half + 3 */
        int64_t b8;
        memcpy(&b8, R + 16 + 8 * (2 * G + half), 8);
        const __m256i sc = _mm256_cvtepi8_epi32(_mm_cvtsi64_si128(b8));
        const __m256i sc2 = _mm256_or_si256(_mm256_and_si256(sc, _mm256_set1_epi32(0xffff)), _mm256_slli_epi32(sc, 16));
        const __m256i top = half ? top1 : top0;
        for (int jj = 0; jj < 2; jj++) { /* nibble vector j = 2 half + jj: groups 2j, 2j + 1 */
          const int j = 2 * half + jj;
          const __m256i v = ld256(nib + 32 * j);
          const __m256i q0 = _mm256_or_si256(_mm256_and_si256(v, m4),
                                             _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(top, 4 * jj), m3), 4));
          const __m256i q1 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(v, 4), m4),
                                             _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(top, 4 * jj + 2), m3), 4));
          for (int t = 0; t < TT; t++) {
            const hearth_block_q8_k* xb = (const hearth_block_q8_k*)(xa + t * xrow) + sb;
            int32_t x0, x1;
            memcpy(&x0, xb->qs + 32 * G + 8 * j, 4);
            memcpy(&x1, xb->qs + 32 * G + 8 * j + 4, 4);
            const __m256i p16 = _mm256_add_epi16(_mm256_maddubs_epi16(q0, _mm256_set1_epi32(x0)),
                                                 _mm256_maddubs_epi16(q1, _mm256_set1_epi32(x1)));
            isum[t] = _mm256_add_epi32(isum[t], _mm256_madd_epi16(p16, sc2));
          }
        }
        for (int t = 0; t < TT; t++) {
          const hearth_block_q8_k* xb = (const hearth_block_q8_k*)(xa + t * xrow) + sb;
          msum[t] = _mm256_add_epi32(msum[t], _mm256_mullo_epi32(sc, _mm256_set1_epi32(xb->bsums[2 * G + half])));
        }
      }
    }
    ksb_finish(acc, isum, msum, R, xa, xrow, sb, TT, 5);
  }
  panel_store(y, ldy, rows, acc, TT);
}

/* ---------------------------------------------------------------------------------------------------- */
/* Q2_K and Q3_K in panels of 8 rows.                                                                     */
/*                                                                                                        */
/* Both have sub-blocks of 16 codes with a small integer scale each, so a sub-block is one vector of 2-bit */
/* codes: 4 groups of 4 codes per row, in the 4 bit pairs of its row's 32-bit lane. Per sub-block and     */
/* token: 4 VPMADDUBSW (codes 0..3, or Q3_K's 0..7 with its third bit ORed in), summed in int16 (8         */
/* products of 7 * 127 fit), one VPMADDWD against the rows' scales, summed in int32 over the super-block.  */
/* Q2_K: value d * sc * q - dmin * m, so acc = fma(cvt(sum q x sc), d_w d_x, acc), then                    */
/* acc = fma(cvt(sum m xsum), -dmin_w d_x, acc), as Q4_K's mins. Q3_K: value d * sc * (q - 4) with signed   */
/* sc, so the offset is 4 sum(sc xsum), taken off in int32 before the one conversion, as Q6_K's.           */
/* xsum: the Q8_K activations' bsums (one per 16). Records of 8 rows x 1 super-block, the bytes of the 8   */
/* native blocks:                                                                                          */
/*   Q2_K (672): d[8] f16 | dmin[8] f16 | sm[16 sub-blocks][8 rows] u8 (the native scale | min << 4)      */
/*               | codes[16 sub-blocks][32]                                                               */
/*   Q3_K (880): d[8] f16 | sc low nibbles[8 pairs][8 rows] (sub-block 2j + h in nibble h) | sc top bits  */
/*               [4 quads][8 rows] (sub-block 4j + h in bits 2h, 2h + 1; sc: the 6-bit native scale, its  */
/*               value + 32) | codes[16][32] | third bits[8][32]                                          */
/* codes of sub-block s: byte 4r + i bits 2u, 2u + 1 = the low 2 bits of row r's code 16s + 4u + i;        */
/* third bits, plane P: byte 4r + i bit b = the third bit of row r's code 32P + 4b + i (a shift and an AND */
/* put it at bit 2 of the code's byte).                                                                   */

/* Q2_K: row r's native block blk into its record R (panel_pack_k). */
static void pack_row_q2k(uint8_t* R, const uint8_t* blk, int r) {
  memcpy(R + 2 * r, blk + 80, 2);      /* d */
  memcpy(R + 16 + 2 * r, blk + 82, 2); /* dmin */
  for (int sub = 0; sub < 16; sub++) R[32 + 8 * sub + r] = blk[sub];
  for (int i = 0; i < 256; i++)
    R[160 + 32 * (i / 16) + 4 * r + i % 4] |= (uint8_t)(hearth_panel_code_q2k(blk, i) << (2 * ((i % 16) / 4)));
}

/* Q3_K: row r's native block blk into its record R (panel_pack_k). */
static void pack_row_q3k(uint8_t* R, const uint8_t* blk, int r) {
  memcpy(R + 2 * r, blk + 108, 2);
  for (int sub = 0; sub < 16; sub++) {
    const int sc = hearth_q3k_scale(blk + 96, sub) + 32; /* 0..63 */
    R[16 + 8 * (sub / 2) + r] |= (uint8_t)((sc & 15) << (4 * (sub % 2)));
    R[80 + 8 * (sub / 4) + r] |= (uint8_t)((sc >> 4) << (2 * (sub % 4)));
  }
  for (int i = 0; i < 256; i++) {
    const int q = hearth_panel_code_q3k(blk, i);
    R[112 + 32 * (i / 16) + 4 * r + i % 4] |= (uint8_t)((q & 3) << (2 * ((i % 16) / 4)));
    R[624 + 32 * (i / 32) + 4 * r + i % 4] |= (uint8_t)((q >> 2) << ((i % 32) / 4));
  }
}

/* Bit b of each byte of v moved to bit 2, the other bits cleared (the 16-bit shift's spill across bytes is
   masked off). */
QI __m256i bit_to_2(__m256i v, int b) {
  const __m256i at = b > 2 ? _mm256_srli_epi16(v, b - 2) : b < 2 ? _mm256_slli_epi16(v, 2 - b) : v;
  return _mm256_and_si256(at, _mm256_set1_epi8(4));
}

/* 8 bytes from p, byte r in both int16 halves of lane r. */
QI __m256i bytes_to_pairs(const uint8_t* p) {
  const __m128i b = _mm_loadl_epi64((const __m128i*)p);
  return _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(b, b));
}

/* The rows' signed scales of Q3_K sub-block `sub` of record R, each in both int16 halves of its lane. */
QI __m256i q3k_panel_scales(const uint8_t* R, int sub) {
  const __m256i lo = _mm256_and_si256(_mm256_srli_epi16(bytes_to_pairs(R + 16 + 8 * (sub / 2)), 4 * (sub % 2)),
                                      _mm256_set1_epi16(15));
  const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(bytes_to_pairs(R + 80 + 8 * (sub / 4)), 2 * (sub % 4)),
                                      _mm256_set1_epi16(3));
  return _mm256_sub_epi16(_mm256_or_si256(lo, _mm256_slli_epi16(hi, 4)), _mm256_set1_epi16(32));
}

/* y[t * ldy + r] for the panel's rows r < rows and TT tokens over all nsb super-blocks (x: Q8_K rows). */
QI void panel_tile_q23k(float* y, int64_t ldy, const int rows, const uint8_t* wp, const uint8_t* xa, int64_t xrow,
                        int64_t nsb, const int TT, const int prefetch, const int type) {
  const int q3 = type == HEARTH_DTYPE_Q3_K;
  const int64_t rec = 8 * bytesk(type), codes_at = q3 ? 112 : 160;
  const __m256i m3 = _mm256_set1_epi8(3);
  __m256 acc[PANEL_TT];
  for (int t = 0; t < TT; t++) acc[t] = _mm256_setzero_ps();
  for (int64_t sb = 0; sb < nsb; sb++) {
    const uint8_t* R = wp + sb * rec;
    if (prefetch) prefetch_bytes(R + rec, rec); /* the panel's first tile streams it: the next record */
    __m256i isum[PANEL_TT], msum[PANEL_TT];
    for (int t = 0; t < TT; t++) isum[t] = msum[t] = _mm256_setzero_si256();
#pragma GCC unroll 2
    for (int sub = 0; sub < 16; sub++) {
      /* the rows' scales (and Q2_K's mins), each in both int16 halves of its row's lane */
      __m256i sc2, mn2 = _mm256_setzero_si256();
      if (q3) {
        sc2 = q3k_panel_scales(R, sub);
      } else {
        const __m256i v = bytes_to_pairs(R + 32 + 8 * sub);
        sc2 = _mm256_and_si256(v, _mm256_set1_epi16(15));
        mn2 = _mm256_srli_epi16(v, 4);
      }
      const __m256i c = ld256(R + codes_at + 32 * sub);
      __m256i q[4];
      q[0] = _mm256_and_si256(c, m3);
      q[1] = _mm256_and_si256(_mm256_srli_epi16(c, 2), m3);
      q[2] = _mm256_and_si256(_mm256_srli_epi16(c, 4), m3);
      q[3] = _mm256_and_si256(_mm256_srli_epi16(c, 6), m3);
      if (q3) {
        const __m256i plane = ld256(R + 624 + 32 * (sub / 2));
        for (int u = 0; u < 4; u++) q[u] = _mm256_or_si256(q[u], bit_to_2(plane, 4 * (sub % 2) + u));
      }
      for (int t = 0; t < TT; t++) {
        const hearth_block_q8_k* xb = (const hearth_block_q8_k*)(xa + t * xrow) + sb;
        __m256i p16 = _mm256_setzero_si256();
        for (int u = 0; u < 4; u++) {
          int32_t xv;
          memcpy(&xv, xb->qs + 16 * sub + 4 * u, 4);
          p16 = _mm256_add_epi16(p16, _mm256_maddubs_epi16(q[u], _mm256_set1_epi32(xv)));
        }
        isum[t] = _mm256_add_epi32(isum[t], _mm256_madd_epi16(p16, sc2));
        /* scale (or min) x xsum as VPMADDWD: one int16 half against xsum, the other against 0 */
        msum[t] = _mm256_add_epi32(msum[t], _mm256_madd_epi16(q3 ? sc2 : mn2, _mm256_set1_epi32((uint16_t)xb->bsums[sub])));
      }
    }
    ksb_finish(acc, isum, msum, R, xa, xrow, sb, TT, q3 ? 2 : -1);
  }
  panel_store(y, ldy, rows, acc, TT);
}

/* The K-quant panels' product: records of 8 rows x 1 super-block (8 native blocks' bytes), tiles of
   PANEL_TT tokens, single tokens for the tail; the first tile over a panel prefetches (see panel_matmul_typed). */
QI void panel_tile_k(float* y, int64_t ldy, const int rows, const uint8_t* wp, const uint8_t* xa, int64_t xrow,
                     int64_t nsb, const int TT, const int prefetch, const int type) {
  if (type == HEARTH_DTYPE_Q6_K) panel_tile_q6k(y, ldy, rows, wp, xa, xrow, nsb, TT, prefetch);
  else if (type == HEARTH_DTYPE_Q2_K || type == HEARTH_DTYPE_Q3_K) panel_tile_q23k(y, ldy, rows, wp, xa, xrow, nsb, TT, prefetch, type);
  else panel_tile_q4k(y, ldy, rows, wp, xa, xrow, nsb, TT, prefetch, type);
}

QI void panel_matmul_k(float* y, int64_t ldy, const uint8_t* wp, const uint8_t* xa, int64_t T, int64_t n, int64_t k,
                       const int type) {
  const int64_t nsb = k / 256, xrow = nsb * (int64_t)sizeof(hearth_block_q8_k), prec = nsb * 8 * bytesk(type);
  for (int64_t r0 = 0; r0 < n; r0 += 8) {
    const int rows = n - r0 < 8 ? (int)(n - r0) : 8;
    const uint8_t* p = wp + (r0 / 8) * prec;
    int64_t t = 0;
    for (; t + PANEL_TT <= T; t += PANEL_TT)
      panel_tile_k(y + t * ldy + r0, ldy, rows, p, xa + t * xrow, xrow, nsb, PANEL_TT, t == 0, type);
    for (; t < T; t++) panel_tile_k(y + t * ldy + r0, ldy, rows, p, xa + t * xrow, xrow, nsb, 1, t == 0, type);
  }
}

static void panel_matmul(float* y, int64_t ldy, const void* wp, int32_t type, const void* x_act, int64_t T, int64_t n,
                         int64_t k) {
  const uint8_t* w = (const uint8_t*)wp;
  const uint8_t* xa = (const uint8_t*)x_act;
  switch (type) {
    case HEARTH_DTYPE_Q2_K: panel_matmul_k(y, ldy, w, xa, T, n, k, HEARTH_DTYPE_Q2_K); break;
    case HEARTH_DTYPE_Q3_K: panel_matmul_k(y, ldy, w, xa, T, n, k, HEARTH_DTYPE_Q3_K); break;
    case HEARTH_DTYPE_Q4_K: panel_matmul_k(y, ldy, w, xa, T, n, k, HEARTH_DTYPE_Q4_K); break;
    case HEARTH_DTYPE_Q5_K: panel_matmul_k(y, ldy, w, xa, T, n, k, HEARTH_DTYPE_Q5_K); break;
    case HEARTH_DTYPE_Q6_K: panel_matmul_k(y, ldy, w, xa, T, n, k, HEARTH_DTYPE_Q6_K); break;
    case HEARTH_DTYPE_Q8_0: panel_matmul_typed(y, ldy, w, xa, T, n, k, HEARTH_DTYPE_Q8_0); break;
    case HEARTH_DTYPE_Q4_0: panel_matmul_typed(y, ldy, w, xa, T, n, k, HEARTH_DTYPE_Q4_0); break;
    case HEARTH_DTYPE_Q4_1: panel_matmul_typed(y, ldy, w, xa, T, n, k, HEARTH_DTYPE_Q4_1); break;
    case HEARTH_DTYPE_Q5_0: panel_matmul_typed(y, ldy, w, xa, T, n, k, HEARTH_DTYPE_Q5_0); break;
    default: panel_matmul_typed(y, ldy, w, xa, T, n, k, HEARTH_DTYPE_Q5_1); break;
  }
}
