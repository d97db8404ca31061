/* quant_avx2.c — AVX2 dot products of the quantized types (-mavx2 -mfma -mf16c). */
#include <immintrin.h>
#include <string.h>

#include "quant.h"

#define IV __m256i
#define FV __m256
#define QCHUNK 32
#define T32_R 4
#define T32_DR 4
#define T32_T 2
#define TK_R 2
#define TK_T 2

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
#define QOPS_MATMUL32 matmul32_pairs
#define QOPS_PACK_BYTES panel_bytes
#define QOPS_PACK panel_pack
#define QOPS_MATMUL_PACKED panel_matmul

#include "quant_simd.inc"

/* ---------------------------------------------------------------------------------------------------- */
/* The 32-element types (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1) on AVX2: rows in pairs.                            */
/*                                                                                                        */
/* On AVX2 a block's product is VPMADDUBSW (byte pairs to int16), VPMADDWD (to int32), VCVTDQ2PS and an   */
/* FMA with the block's scale. Measured on Zen 3, those four share two pipes, and the whole loop runs at  */
/* about two vector operations a cycle, so what counts is operations per block product. Two rows a, b     */
/* therefore share the widening, the conversion and the FMA: their byte-pair sums are folded into one     */
/* vector whose 32-bit lanes alternate a, b, each lane summing 8 codes of its row:                        */
/*   lanes 0 1 2 3 | 4 5 6 7  =  a[0..7] b[0..7] a[8..15] b[8..15] | a[16..23] b[16..23] a[24..31] b[24..31] */
/* For the 4- and 5-bit codes (<= 31) two int16 pair sums still fit in int16, so the fold happens before  */
/* VPMADDWD (one per two rows); Q8_0's pair sums fill int16, so it folds after (one conversion and FMA    */
/* per two rows). The scale is the vector (d_a d_x, d_b d_x, ...); an offset (Q4_0's 8, Q5_0's 16) is     */
/* -offset * sum(x) per lane in the same layout, a min (Q4_1, Q5_1) its m * sum(x) d_x in f32 lanes.       */
/*                                                                                                        */
/* Decode (T = 1) streams the rows straight from the weights, four at a time, prefetching the next four.  */
/* Larger T runs a packed GEMM: per block of tokens each token's scales and offset lanes are prepared     */
/* once, per 4 rows their codes are unpacked once, and a 2-pair x P_TT-token micro-tile only multiplies,  */
/* with the scales of a chunk of blocks multiplied ahead (4 blocks per multiply). Both do each (row pair, */
/* token) in the same float operations in the same order, so a token's result is the same bits whatever  */
/* T it comes with (test/quant/quant_test.ts checks it on every table). Against the 4 x 2 tiles of        */
/* quant_simd.inc this is 1.4-2x the prefill speed of these types on Zen 3, and 1.1-1.2x the decode.       */

#define P_MAX_K 16384       /* longest row the packed GEMM takes on the stack; longer ones go through T = 1 */
#define P_XSIDE (64 * 1024) /* bytes of prepared token data per block of tokens */
#define P_CHUNK 64          /* blocks whose scales a micro-tile multiplies ahead */
#define P_TT 4              /* tokens per micro-tile */

QI int small_codes(const int type) { return type != HEARTH_DTYPE_Q8_0; }

/* codes32's bytes with one shuffle-free nibble split: the 16 payload bytes broadcast to both halves (a load),
   the high half shifted down 4 (VPSRLVQ), masked; VINSERTI128 ran one per cycle. */
QI __m256i codes32_avx2(const uint8_t* b, const int type) {
  if (type == HEARTH_DTYPE_Q8_0) return ld256(b + 2);
  const int qo = type == HEARTH_DTYPE_Q4_0 ? 2 : type == HEARTH_DTYPE_Q4_1 ? 4 : type == HEARTH_DTYPE_Q5_0 ? 6 : 8;
  const __m256i both = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i*)(b + qo)));
  const __m256i lo = _mm256_and_si256(_mm256_srlv_epi64(both, _mm256_set_epi64x(4, 4, 0, 0)), _mm256_set1_epi8(0x0f));
  if (type == HEARTH_DTYPE_Q4_0 || type == HEARTH_DTYPE_Q4_1) return lo;
  uint32_t qh;
  memcpy(&qh, b + qo - 4, 4);
  return _mm256_or_si256(lo, bits_to_bytes(qh, 16));
}

/* The f16 at byte o of four rows' blocks, times d_x, as the patterns of pairs (b0, b1) and (b2, b3): the
   halves gathered in an integer register, one conversion, one multiply, two permutes. */
QI void pair_scales4(const uint8_t* b0, const uint8_t* b1, const uint8_t* b2, const uint8_t* b3, int o, float dx,
                     __m256* s01, __m256* s23) {
  uint16_t h0, h1, h2, h3;
  memcpy(&h0, b0 + o, 2);
  memcpy(&h1, b1 + o, 2);
  memcpy(&h2, b2 + o, 2);
  memcpy(&h3, b3 + o, 2);
  const uint64_t h = (uint64_t)h0 | (uint64_t)h1 << 16 | (uint64_t)h2 << 32 | (uint64_t)h3 << 48;
  const __m128 f = _mm_mul_ps(_mm_cvtph_ps(_mm_cvtsi64_si128((long long)h)), _mm_set1_ps(dx));
  const __m256 f8 = _mm256_castps128_ps256(f);
  *s01 = _mm256_permutevar8x32_ps(f8, _mm256_set_epi32(1, 0, 1, 0, 1, 0, 1, 0));
  *s23 = _mm256_permutevar8x32_ps(f8, _mm256_set_epi32(3, 2, 3, 2, 3, 2, 3, 2));
}

/* Folds two vectors of 32-bit words into one whose even words hold a's words 2j and 2j + 1 added, its odd
   words b's (added as two int16 halves, wide = 0, or as int32, wide = 1): two blends, a word swap, an add.
   Every sum stays within its type: int16 halves of 4- and 5-bit codes reach 2 * 2 * 31 * 127. */
QI __m256i pair_fold(__m256i a, __m256i b, const int wide) {
  const __m256i keep = _mm256_blend_epi32(a, b, 0xAA);                        /* a0 b1 a2 b3 ... */
  const __m256i swap = _mm256_shuffle_epi32(_mm256_blend_epi32(b, a, 0xAA), 0xB1); /* a1 b0 a3 b2 ... */
  return wide ? _mm256_add_epi32(keep, swap) : _mm256_add_epi16(keep, swap);
}

/* Lanes of rows a, b in the layout above: the 32 byte products of each with its token x. For Q8_0, ua/ub
   are the signed weights (their signs move onto x); else unsigned codes. */
QI __m256i pair_dot(__m256i ua, __m256i ub, __m256i x, const int type) {
  const __m256i ones = _mm256_set1_epi16(1);
  if (small_codes(type)) {
    const __m256i pa = _mm256_maddubs_epi16(ua, x), pb = _mm256_maddubs_epi16(ub, x);
    return _mm256_madd_epi16(pair_fold(pa, pb, 0), ones);
  }
  const __m256i pa = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_abs_epi8(ua), _mm256_sign_epi8(x, ua)), ones);
  const __m256i pb = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_abs_epi8(ub), _mm256_sign_epi8(x, ub)), ones);
  return pair_fold(pa, pb, 1);
}

/* sum(x) * c over each lane's 8 codes, in the pair layout (both rows' lanes the same). */
QI __m256i pair_xsum(__m256i x, char c) {
  const __m256i s = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(c), x), _mm256_set1_epi16(1));
  return pair_fold(s, s, 1);
}

/* The token-side term of a block: -offset * sum(x) as int32 lanes (offset types), or sum(x) * d_x as f32
   lanes (min types); zero otherwise. */
QI __m256i x_term(__m256i x, float dx, const int type) {
  const int off = offset32(type);
  if (off) return _mm256_sub_epi32(_mm256_setzero_si256(), pair_xsum(x, (char)off));
  if (has_min32(type)) return _mm256_castps_si256(_mm256_mul_ps(_mm256_cvtepi32_ps(pair_xsum(x, 1)), _mm256_set1_ps(dx)));
  return _mm256_setzero_si256();
}

/* (a, b, a, b, a, b, a, b) */
QI __m256 pair_pattern(float a, float b) { return _mm256_unpacklo_ps(_mm256_set1_ps(a), _mm256_set1_ps(b)); }

/* acc += a block of a row pair with one token: p the pair's int32 lanes, s the scale pattern times d_x,
   e the token's x_term, m the min pattern (min types). */
QI __m256 pair_update(__m256 acc, __m256i p, __m256 s, __m256i e, __m256 m, const int type) {
  if (offset32(type)) p = _mm256_add_epi32(p, e);
  acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), s, acc);
  if (has_min32(type)) acc = _mm256_fmadd_ps(m, _mm256_castsi256_ps(e), acc);
  return acc;
}

/* The two rows' results of a pair accumulator: a = (l0 + l4) + (l2 + l6), b = (l1 + l5) + (l3 + l7). */
QI void pair_store(float* ya, float* yb, __m256 acc) {
  const __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
  const __m128 r = _mm_add_ps(h, _mm_movehl_ps(h, h));
  *ya = _mm_cvtss_f32(r);
  if (yb) *yb = _mm_cvtss_f32(_mm_shuffle_ps(r, r, 1));
}

/* ---- decode: y (n) = W x, rows straight from the weights ---- */

/* Rows r0 .. r0 + 3 (a pair may have a missing b: nb_rows 3, or the last pair 1 row, its b reading row a). */
QI void decode_tile(float* y, const uint8_t* w, int64_t wrow, const uint8_t* x, int64_t nb, const int rows,
                    const uint8_t* pf, int64_t pf_bytes, const int type) {
  const int64_t bs = bytes32(type);
  const int64_t per = pf ? prefetch_per(pf_bytes, nb) : 0;
  const uint8_t* r[4];
  for (int i = 0; i < 4; i++) r[i] = w + (i < rows ? i : rows - 1) * wrow; /* a missing row repeats the last */
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; b++) {
    if (pf) prefetch_share(pf, pf_bytes, per, b);
    const uint8_t* xb = x + b * 34;
    const __m256i xv = ld256(xb + 2);
    const float dx = h2f(xb);
    const __m256i e = x_term(xv, dx, type);
    const uint8_t *b0 = r[0] + b * bs, *b1 = r[1] + b * bs, *b2 = r[2] + b * bs, *b3 = r[3] + b * bs;
    const __m256i p0 = pair_dot(codes32_avx2(b0, type), codes32_avx2(b1, type), xv, type);
    const __m256i p1 = pair_dot(codes32_avx2(b2, type), codes32_avx2(b3, type), xv, type);
    __m256 s0, s1, m0 = _mm256_setzero_ps(), m1 = _mm256_setzero_ps();
    pair_scales4(b0, b1, b2, b3, 0, dx, &s0, &s1);
    if (has_min32(type)) pair_scales4(b0, b1, b2, b3, 2, 1.0f, &m0, &m1);
    acc0 = pair_update(acc0, p0, s0, e, m0, type);
    acc1 = pair_update(acc1, p1, s1, e, m1, type);
  }
  pair_store(&y[0], rows > 1 ? &y[1] : NULL, acc0);
  if (rows > 2) pair_store(&y[2], rows > 3 ? &y[3] : NULL, acc1);
}

QI void decode32(float* y, const void* w, const uint8_t* x, int64_t n, int64_t k, const int type) {
  const int64_t nb = k / 32, wrow = nb * bytes32(type);
  const uint8_t* wb = (const uint8_t*)w;
  for (int64_t r0 = 0; r0 < n; r0 += 4) {
    const int rows = n - r0 < 4 ? (int)(n - r0) : 4;
    const uint8_t* pf = r0 + 8 <= n ? wb + (r0 + 4) * wrow : NULL;
    decode_tile(y + r0, wb + r0 * wrow, wrow, x, nb, rows, pf, 4 * wrow, type);
  }
}

/* ---- prefill / batches: the packed GEMM ---- */

/* Per (token, block) of a block of tokens: d_x twice (beside itself, as a pair's two scales are laid out),
   and the x_term lanes. */
typedef struct {
  float* d2;  /* (tokens, nb, 2) */
  __m256i* e; /* (tokens, nb) */
} gemm_xside;

QI void gemm_prep_x(gemm_xside* xs, const uint8_t* xa, int64_t xrow, int64_t tn, int64_t nb, const int type) {
  for (int64_t t = 0; t < tn; t++)
    for (int64_t b = 0; b < nb; b++) {
      const uint8_t* xb = xa + t * xrow + b * 34;
      const float d = h2f(xb);
      xs->d2[(t * nb + b) * 2] = xs->d2[(t * nb + b) * 2 + 1] = d;
      xs->e[t * nb + b] = x_term(ld256(xb + 2), d, type);
    }
}

/* A 4-row tile, as the micro-tile reads it: codes (4, nb, 32) as codes32 gives them (not for Q8_0, read in
   place); each pair's scales side by side, dw2 (2, nb, 2), and mins mw2 (2, nb, 2). Rows past the matrix
   repeat its last (their results are not stored). */
QI void gemm_pack_w(uint8_t* codes, float* dw2, float* mw2, const uint8_t* const* r, int64_t nb, const int type) {
  const int64_t bs = bytes32(type);
  for (int i = 0; i < 4; i++)
    for (int64_t b = 0; b < nb; b++) {
      const uint8_t* wb = r[i] + b * bs;
      dw2[((i / 2) * nb + b) * 2 + i % 2] = h2f(wb);
      if (has_min32(type)) mw2[((i / 2) * nb + b) * 2 + i % 2] = h2f(wb + 2);
      if (small_codes(type)) _mm256_storeu_si256((__m256i*)(codes + (i * nb + b) * 32), codes32_avx2(wb, type));
    }
}

/* Y for the 4-row tile x TT (1 or 2) tokens from token t (its x rows xa, its prepared data at index tx). The
   scales d_w * d_x of a chunk of blocks are multiplied ahead, 4 blocks of a (pair, token) per multiply, and
   enter the FMA as one 64-bit broadcast: the products' pipes keep only the byte products, VPMADDWD, the
   conversion and the FMA. */
QI void gemm_tile(float* y, int64_t ldy, const int rows, const uint8_t* codes, const float* dw2, const float* mw2,
                  const uint8_t* const* r, const uint8_t* xa, int64_t xrow, const gemm_xside* xs, int64_t tx,
                  int64_t nb, const int TT, const int type) {
  const int64_t bs = bytes32(type);
  __m256 acc[2][P_TT];
  for (int pr = 0; pr < 2; pr++)
    for (int t = 0; t < TT; t++) acc[pr][t] = _mm256_setzero_ps();
  _Alignas(32) float sc[2][P_TT][P_CHUNK * 2]; /* (pair, token, block, 2): the chunk's scales */
  for (int64_t c0 = 0; c0 < nb; c0 += P_CHUNK) {
    const int64_t cn = nb - c0 < P_CHUNK ? nb - c0 : P_CHUNK;
    for (int pr = 0; pr < 2; pr++)
      for (int t = 0; t < TT; t++) {
        const float* a = dw2 + (pr * nb + c0) * 2;
        const float* d = xs->d2 + ((tx + t) * nb + c0) * 2;
        int64_t i = 0;
        for (; i + 8 <= 2 * cn; i += 8)
          _mm256_store_ps(sc[pr][t] + i, _mm256_mul_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(d + i)));
        for (; i < 2 * cn; i++) sc[pr][t][i] = a[i] * d[i];
      }
    for (int64_t j = 0; j < cn; j++) {
      const int64_t b = c0 + j;
      __m256i u[4];
      for (int i = 0; i < 4; i++)
        u[i] = small_codes(type) ? ld256(codes + (i * nb + b) * 32) : ld256(r[i] + b * bs + 2);
      for (int t = 0; t < TT; t++) {
        const __m256i xv = ld256(xa + t * xrow + b * 34 + 2), e = xs->e[(tx + t) * nb + b];
        for (int pr = 0; pr < 2; pr++) {
          const __m256 m = has_min32(type) ? _mm256_castpd_ps(_mm256_broadcast_sd((const double*)(mw2 + (pr * nb + b) * 2)))
                                           : _mm256_setzero_ps();
          const __m256 sv = _mm256_castpd_ps(_mm256_broadcast_sd((const double*)(sc[pr][t] + 2 * j)));
          acc[pr][t] = pair_update(acc[pr][t], pair_dot(u[2 * pr], u[2 * pr + 1], xv, type), sv, e, m, type);
        }
      }
    }
  }
  for (int t = 0; t < TT; t++) {
    pair_store(&y[t * ldy + 0], rows > 1 ? &y[t * ldy + 1] : NULL, acc[0][t]);
    if (rows > 2) pair_store(&y[t * ldy + 2], rows > 3 ? &y[t * ldy + 3] : NULL, acc[1][t]);
  }
}

QI void gemm32(float* y, int64_t ldy, const void* w, const uint8_t* xa, int64_t T, int64_t n, int64_t k,
               const int type) {
  const int64_t nb = k / 32, wrow = nb * bytes32(type), xrow = nb * 34;
  /* Token data: as many tokens as P_XSIDE holds, a multiple of 2 (at least 2). */
  _Alignas(32) uint8_t xbuf[P_XSIDE];
  int64_t tb = (int64_t)sizeof(xbuf) / (nb * 40);
  tb -= tb % 2;
  gemm_xside xs = {.e = (__m256i*)xbuf, .d2 = (float*)(xbuf + (size_t)tb * nb * 32)};
  _Alignas(32) uint8_t codes[4 * P_MAX_K];
  float dw2[4 * (P_MAX_K / 32)], mw2[4 * (P_MAX_K / 32)];
  for (int64_t t0 = 0; t0 < T; t0 += tb) {
    const int64_t tn = T - t0 < tb ? T - t0 : tb;
    gemm_prep_x(&xs, xa + t0 * xrow, xrow, tn, nb, type);
    for (int64_t r0 = 0; r0 < n; r0 += 4) {
      const int rows = n - r0 < 4 ? (int)(n - r0) : 4;
      const uint8_t* r[4];
      for (int i = 0; i < 4; i++) r[i] = (const uint8_t*)w + (r0 + (i < rows ? i : rows - 1)) * wrow;
      gemm_pack_w(codes, dw2, mw2, r, nb, type);
      int64_t t = 0;
      for (; t + P_TT <= tn; t += P_TT)
        gemm_tile(y + (t0 + t) * ldy + r0, ldy, rows, codes, dw2, mw2, r, xa + (t0 + t) * xrow, xrow, &xs, t, nb, P_TT, type);
      for (; t < tn; t++)
        gemm_tile(y + (t0 + t) * ldy + r0, ldy, rows, codes, dw2, mw2, r, xa + (t0 + t) * xrow, xrow, &xs, t, nb, 1, type);
    }
  }
}

QI void matmul32_typed(float* y, int64_t ldy, const void* w, const uint8_t* xa, int64_t T, int64_t n, int64_t k,
                       const int type) {
  /* P_XSIDE must hold 2 tokens' data: 2 * nb * 40 bytes */
  if (T == 1 || k > P_MAX_K || 2 * (k / 32) * 40 > P_XSIDE) {
    for (int64_t t = 0; t < T; t++) decode32(y + t * ldy, w, xa + t * (k / 32) * 34, n, k, type);
    return;
  }
  gemm32(y, ldy, w, xa, T, n, k, type);
}

static void matmul32_pairs(float* y, int64_t ldy, const void* w, int type, const uint8_t* xa, int64_t T, int64_t n,
                           int64_t k) {
  switch (type) {
    case HEARTH_DTYPE_Q8_0: matmul32_typed(y, ldy, w, xa, T, n, k, HEARTH_DTYPE_Q8_0); break;
    case HEARTH_DTYPE_Q4_0: matmul32_typed(y, ldy, w, xa, T, n, k, HEARTH_DTYPE_Q4_0); break;
    case HEARTH_DTYPE_Q4_1: matmul32_typed(y, ldy, w, xa, T, n, k, HEARTH_DTYPE_Q4_1); break;
    case HEARTH_DTYPE_Q5_0: matmul32_typed(y, ldy, w, xa, T, n, k, HEARTH_DTYPE_Q5_0); break;
    default: matmul32_typed(y, ldy, w, xa, T, n, k, HEARTH_DTYPE_Q5_1); break;
  }
}

/* ---------------------------------------------------------------------------------------------------- */
/* Packed panels of 8 rows: one row per 32-bit lane.                                                       */
/*                                                                                                        */
/* The paired kernels above still sum a block's 32 products across lanes (and fold two rows to do it     */
/* once per pair). Laid out so that each 32-bit lane holds 4 consecutive codes of one of 8 rows, a block  */
/* is 8 VPMADDUBSW against 4 bytes of the token broadcast to every lane (a load, no shuffle), summed in    */
/* int16 and widened once: per row and block, one VPMADDUBSW, an add and an eighth of the widening,        */
/* conversion and FMA, with nothing to fold and the 8 results landing in y side by side.                  */
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

#define PANEL_XSIDE 4096             /* (token, block) entries of prepared data: 64 KiB on the stack */
#define PANEL_MAX_K (PANEL_XSIDE * 32) /* longest row packed: one token's blocks fit */

static size_t panel_bytes(int32_t type, int64_t n, int64_t k) {
  if (hearth_quant_block_elems(type) != 32 || k % 32 != 0 || k > PANEL_MAX_K || n <= 0) return 0;
  return (size_t)((n + 7) / 8) * (size_t)(k / 32) * (size_t)rec_bytes(type);
}

/* Code e (0..31) of a native block: unsigned for the 4/5-bit types, the signed byte for Q8_0. */
QI int native_code(const uint8_t* b, int e, const int type) {
  if (type == HEARTH_DTYPE_Q8_0) return (int8_t)b[2 + e];
  const int qo = type == HEARTH_DTYPE_Q4_0 ? 2 : type == HEARTH_DTYPE_Q4_1 ? 4 : type == HEARTH_DTYPE_Q5_0 ? 6 : 8;
  const int c = e < 16 ? b[qo + e] & 15 : b[qo + e - 16] >> 4;
  if (!is_q5(type)) return c;
  uint32_t qh;
  memcpy(&qh, b + qo - 4, 4);
  return c | (int)((qh >> e) & 1) << 4;
}

QI void panel_pack_typed(uint8_t* dst, const uint8_t* w, int64_t n, int64_t k, const int type) {
  const int64_t nb = k / 32, bs = bytes32(type), wrow = nb * bs, rec = rec_bytes(type);
  const uint8_t zero[34] = {0};
  for (int64_t p = 0; p < (n + 7) / 8; p++)
    for (int64_t b = 0; b < nb; b++) {
      uint8_t* R = dst + (p * nb + b) * rec;
      memset(R, 0, (size_t)rec);
      uint8_t* codes = R + code_off(type);
      for (int r = 0; r < 8; r++) {
        const int64_t row = p * 8 + r;
        const uint8_t* blk = row < n ? w + row * wrow + b * bs : zero; /* padding: zero scales, zero codes */
        memcpy(R + 2 * r, blk, 2);
        if (has_min32(type)) memcpy(R + 16 + 2 * r, blk + 2, 2);
        for (int e = 0; e < 32; e++) {
          const int c = native_code(blk, e, type), g = e / 4, i = e % 4;
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

static void panel_pack(void* dst, const void* w, int32_t type, int64_t n, int64_t k) {
  switch (type) {
    case HEARTH_DTYPE_Q8_0: panel_pack_typed(dst, w, n, k, HEARTH_DTYPE_Q8_0); break;
    case HEARTH_DTYPE_Q4_0: panel_pack_typed(dst, w, n, k, HEARTH_DTYPE_Q4_0); break;
    case HEARTH_DTYPE_Q4_1: panel_pack_typed(dst, w, n, k, HEARTH_DTYPE_Q4_1); break;
    case HEARTH_DTYPE_Q5_0: panel_pack_typed(dst, w, n, k, HEARTH_DTYPE_Q5_0); break;
    default: panel_pack_typed(dst, w, n, k, HEARTH_DTYPE_Q5_1); break;
  }
}

/* What a token's block contributes besides its codes: d_x, -offset * sum(x) (offset types) and
   sum(x) * d_x (min types). Prepared once per token and block. */
typedef struct {
  float dx;
  int32_t off;
  float mx;
  int32_t pad;
} panel_x;

QI void panel_prep_x(panel_x* px, const uint8_t* xa, int64_t xrow, int64_t tn, int64_t nb, const int type) {
  const int off = offset32(type);
  for (int64_t t = 0; t < tn; t++)
    for (int64_t b = 0; b < nb; b++) {
      const hearth_block_q8_0* xb = (const hearth_block_q8_0*)(xa + t * xrow + b * 34);
      int32_t sum = 0;
      if (off || has_min32(type))
        for (int i = 0; i < 32; i++) sum += xb->qs[i];
      panel_x* o = &px[t * nb + b];
      o->dx = h2f((const uint8_t*)xb);
      o->off = -off * sum;
      o->mx = (float)sum * o->dx;
      o->pad = 0;
    }
}

/* 4 bytes of x (codes 4g .. 4g + 3 of block b) in every lane. */
QI __m256i x4(const uint8_t* xb, int g) {
  int32_t v;
  memcpy(&v, xb + 2 + 4 * g, 4);
  return _mm256_set1_epi32(v);
}

/* y[t * ldy + r] for the panel's rows r < rows and TT tokens, over all nb blocks. px: the tokens' prepared
   data (token t at px + t * nb). */
QI void panel_tile(float* y, int64_t ldy, const int rows, const uint8_t* wp, const uint8_t* xa, int64_t xrow,
                   const panel_x* px, int64_t nb, const int TT, const int type, const int prefetch) {
  const int64_t rec = rec_bytes(type);
  const __m256i ones = _mm256_set1_epi16(1), m4 = _mm256_set1_epi8(0x0f);
  __m256 acc[PANEL_TT];
  for (int t = 0; t < TT; t++) acc[t] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; b++) {
    const uint8_t* R = wp + b * rec;
    if (prefetch) /* decode streams the panels: ask for the record 8 blocks ahead (into the next panel at the end) */
      for (int64_t o = 0; o < rec; o += 64) _mm_prefetch((const char*)R + 8 * rec + o, _MM_HINT_T0);
    const uint8_t* codes = R + code_off(type);
    __m256i p[PANEL_TT];
    for (int t = 0; t < TT; t++) p[t] = _mm256_setzero_si256();
    if (type == HEARTH_DTYPE_Q8_0) {
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
      const panel_x* o = &px[t * nb + b];
      if (offset32(type)) p[t] = _mm256_add_epi32(p[t], _mm256_set1_epi32(o->off));
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p[t]), _mm256_mul_ps(dw, _mm256_set1_ps(o->dx)), acc[t]);
      if (has_min32(type)) acc[t] = _mm256_fmadd_ps(mw, _mm256_set1_ps(o->mx), acc[t]);
    }
  }
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

#define PANEL_XTOKENS 64 /* most tokens prepared at a time */

QI void panel_matmul_typed(float* y, int64_t ldy, const uint8_t* wp, const uint8_t* xa, int64_t T, int64_t n,
                           int64_t k, const int type) {
  const int64_t nb = k / 32, xrow = nb * 34, prec = nb * rec_bytes(type);
  panel_x px[PANEL_XSIDE];
  int64_t tb = PANEL_XSIDE / nb; /* tokens prepared at a time: at least 1 (k <= PANEL_MAX_K) */
  if (tb > PANEL_XTOKENS) tb = PANEL_XTOKENS;
  for (int64_t t0 = 0; t0 < T; t0 += tb) {
    const int64_t tn = T - t0 < tb ? T - t0 : tb;
    panel_prep_x(px, xa + t0 * xrow, xrow, tn, nb, type);
    for (int64_t r0 = 0; r0 < n; r0 += 8) {
      const int rows = n - r0 < 8 ? (int)(n - r0) : 8;
      const uint8_t* p = wp + (r0 / 8) * prec;
      int64_t t = 0;
      for (; t + PANEL_TT <= tn; t += PANEL_TT)
        panel_tile(y + (t0 + t) * ldy + r0, ldy, rows, p, xa + (t0 + t) * xrow, xrow, px + t * nb, nb, PANEL_TT, type, 0);
      for (; t < tn; t++)
        panel_tile(y + (t0 + t) * ldy + r0, ldy, rows, p, xa + (t0 + t) * xrow, xrow, px + t * nb, nb, 1, type, tn == 1);
    }
  }
}

static void panel_matmul(float* y, int64_t ldy, const void* wp, int32_t type, const void* x_act, int64_t T, int64_t n,
                         int64_t k) {
  const uint8_t* w = (const uint8_t*)wp;
  const uint8_t* xa = (const uint8_t*)x_act;
  switch (type) {
    case HEARTH_DTYPE_Q8_0: panel_matmul_typed(y, ldy, w, xa, T, n, k, HEARTH_DTYPE_Q8_0); break;
    case HEARTH_DTYPE_Q4_0: panel_matmul_typed(y, ldy, w, xa, T, n, k, HEARTH_DTYPE_Q4_0); break;
    case HEARTH_DTYPE_Q4_1: panel_matmul_typed(y, ldy, w, xa, T, n, k, HEARTH_DTYPE_Q4_1); break;
    case HEARTH_DTYPE_Q5_0: panel_matmul_typed(y, ldy, w, xa, T, n, k, HEARTH_DTYPE_Q5_0); break;
    default: panel_matmul_typed(y, ldy, w, xa, T, n, k, HEARTH_DTYPE_Q5_1); break;
  }
}
