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

#include "quant_simd.inc"
