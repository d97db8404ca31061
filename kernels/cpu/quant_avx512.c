/*
 * quant_avx512.c — AVX-512 dot products of the quantized types (-mavx512f -mavx512bw -mavx512vl
 * -mavx512dq -mfma -mf16c). quant_avx512vnni.c includes this file again with -mavx512vnni: then the
 * byte products use VPDPBUSD / VPDPWSSD instead of VPMADDUBSW + VPMADDWD.
 */
#include <immintrin.h>
#include <string.h>

#include "quant.h"

#define IV __m512i
#define FV __m512
#define QCHUNK 64
#define T32_R 4
#define T32_DR 8
#define T32_T 4
#define TK_R 4
#define TK_T 2

#define QI static inline __attribute__((always_inline))

QI IV iv_zero(void) { return _mm512_setzero_si512(); }
QI IV iv_set1_8(char c) { return _mm512_set1_epi8(c); }
QI IV iv_sub32(IV a, IV b) { return _mm512_sub_epi32(a, b); }
QI IV iv_join(__m256i lo, __m256i hi) { return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1); }
QI IV iv_zext(__m256i lo) { return _mm512_inserti64x4(_mm512_setzero_si512(), lo, 0); }

#ifdef __AVX512VNNI__
#define DOT_US_WIDE 1 /* dot_us takes any unsigned byte: no int16 intermediate */
QI IV dot_us(IV acc, IV u, IV x) { return _mm512_dpbusd_epi32(acc, u, x); }
QI IV dot_us_sc(IV acc, IV u, IV x, IV s) { return _mm512_dpwssd_epi32(acc, _mm512_maddubs_epi16(u, x), s); }
#else
QI IV dot_us(IV acc, IV u, IV x) {
  return _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(u, x), _mm512_set1_epi16(1)));
}
QI IV dot_us_sc(IV acc, IV u, IV x, IV s) {
  return _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(u, x), s));
}
#endif
/* |w| * (x with w's sign): u8 x s8 with no overflow (|w| <= 128, |x| <= 127). */
QI IV dot_ss(IV acc, IV w, IV x) {
  const IV sx = _mm512_mask_sub_epi8(x, _mm512_movepi8_mask(w), _mm512_setzero_si512(), x);
  return dot_us(acc, _mm512_abs_epi8(w), sx);
}

QI FV fv_zero(void) { return _mm512_setzero_ps(); }
QI FV fv_cvt(IV v) { return _mm512_cvtepi32_ps(v); }
QI FV fv_fma(FV a, FV b, FV c) { return _mm512_fmadd_ps(a, b, c); }
QI FV fv_mul(FV a, FV b) { return _mm512_mul_ps(a, b); }
QI FV fv_set1(float f) { return _mm512_set1_ps(f); }
QI float fv_reduce(FV v) { return _mm512_reduce_add_ps(v); }
QI FV fv_from_i32x8(__m256i m) { return _mm512_cvtepi32_ps(_mm512_inserti64x4(_mm512_setzero_si512(), m, 0)); }

#define QVL 16
QI FV fv_load(const float* p) { return _mm512_loadu_ps(p); }
QI FV fv_add(FV a, FV b) { return _mm512_add_ps(a, b); }
QI FV fv_abs(FV v) { return _mm512_abs_ps(v); }
QI FV fv_max(FV a, FV b) { return _mm512_max_ps(a, b); }
QI float fv_reduce_max(FV v) { return _mm512_reduce_max_ps(v); }
QI FV fv_round_away(FV v) {
  const FV t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC), f = _mm512_sub_ps(v, t);
  const FV one = _mm512_set1_ps(1.0f);
  const FV up = _mm512_mask_add_ps(t, _mm512_cmp_ps_mask(f, _mm512_set1_ps(0.5f), _CMP_GE_OQ), t, one);
  return _mm512_mask_sub_ps(up, _mm512_cmp_ps_mask(f, _mm512_set1_ps(-0.5f), _CMP_LE_OQ), up, one);
}
QI void store_i8(int8_t* p, FV v) { _mm_storeu_si128((__m128i*)p, _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(v))); }

/* Chunk c covers sub-blocks 4c .. 4c + 3: int16 lane i (codes 2i, 2i + 1) takes scale 4c + i / 8. */
QI IV sc_chunk(__m256i s16, int c) {
  const IV idx = _mm512_add_epi16(
      _mm512_set_epi16(3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0),
      _mm512_set1_epi16((short)(4 * c)));
  return _mm512_permutexvar_epi16(idx, _mm512_castsi256_si512(s16));
}

QI __m256i bits_to_bytes(uint32_t bits, char v) { return _mm256_maskz_mov_epi8((__mmask32)bits, _mm256_set1_epi8(v)); }
QI __m256i bitplane_to_bytes(__m256i p, int bit, char v) {
  return _mm256_maskz_mov_epi8(_mm256_test_epi8_mask(p, _mm256_set1_epi8((char)(1 << bit))), _mm256_set1_epi8(v));
}

#ifdef __AVX512VNNI__
#define QOPS_NAME hearth_quant_ops_avx512vnni
#define QOPS_ISA "avx512vnni"
/* Weight matrices in panels of 16 rows (quant_panels512.c), shared with the AMX table. */
#define QOPS_PACK_BYTES vnni_pack_bytes
#define QOPS_PACK vnni_pack
#define QOPS_MATMUL_PACKED vnni_matmul_packed
#else
#define QOPS_NAME hearth_quant_ops_avx512
#define QOPS_ISA "avx512"
#endif

#include "quant_simd.inc"

#ifdef __AVX512VNNI__
#include "quant_panels512.h"

static size_t vnni_pack_bytes(int32_t w_dtype, int64_t n, int64_t k) { return hearth_p16_bytes(w_dtype, n, k); }
static void vnni_pack(void* dst, const void* w, int32_t w_dtype, int64_t n, int64_t k) {
  hearth_p16_pack(dst, w, w_dtype, n, k);
}
static void vnni_matmul_packed(float* y, int64_t ldy, const void* wp, int32_t w_dtype, const void* x_act, int64_t T,
                               int64_t n, int64_t k) {
  hearth_p16_matmul(y, ldy, wp, w_dtype, x_act, T, n, k);
}
#endif
