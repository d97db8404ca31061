/* ops_avx512.c — AVX-512 kernels (compiled with -mavx512f -mavx512bw -mavx512vl -mfma -mf16c). */
#include <immintrin.h>

#include "internal.h"

/* exp(x) = 2^n * exp(r), n = round(x / ln 2), r = x - n ln 2 in [-ln2/2, ln2/2] (ln 2 in two parts so r
   is exact), exp(r) by a degree-7 polynomial (Cephes' expf coefficients, about 1 ulp); scalef applies
   2^n. Inputs below -87.3 (and -inf) give 0 rather than a denormal: denormal operands are slow, and
   their weight next to the row's largest term (1) is below float precision anyway. */
static inline __m512 exp512(__m512 x) {
  const __mmask16 keep = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.33f), _CMP_GE_OQ);
  x = _mm512_max_ps(x, _mm512_set1_ps(-87.33f));
  x = _mm512_min_ps(x, _mm512_set1_ps(88.7f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_maskz_scalef_ps(keep, p, n);
}

/* 16 x 16 transpose: 4 x 4 transposes inside each 128-bit lane (unpack, shuffle), then a 4 x 4
   transpose of the lanes across groups of 4 rows (shuffle_f32x4 twice). */
static inline void transpose16(__m512 r[16]) {
  __m512 t[16], u[16];
  for (int g = 0; g < 4; g++) {
    t[4 * g + 0] = _mm512_unpacklo_ps(r[4 * g], r[4 * g + 1]);
    t[4 * g + 1] = _mm512_unpackhi_ps(r[4 * g], r[4 * g + 1]);
    t[4 * g + 2] = _mm512_unpacklo_ps(r[4 * g + 2], r[4 * g + 3]);
    t[4 * g + 3] = _mm512_unpackhi_ps(r[4 * g + 2], r[4 * g + 3]);
    /* u[4g + c], lane L: column 4L + c of rows 4g .. 4g + 3 */
    u[4 * g + 0] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], 0x44);
    u[4 * g + 1] = _mm512_shuffle_ps(t[4 * g], t[4 * g + 2], 0xEE);
    u[4 * g + 2] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0x44);
    u[4 * g + 3] = _mm512_shuffle_ps(t[4 * g + 1], t[4 * g + 3], 0xEE);
  }
  for (int c = 0; c < 4; c++) {
    const __m512 x0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x44);      /* g0L0 g0L1 g1L0 g1L1 */
    const __m512 x1 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xEE);      /* g0L2 g0L3 g1L2 g1L3 */
    const __m512 x2 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x44); /* g2L0 g2L1 g3L0 g3L1 */
    const __m512 x3 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xEE); /* g2L2 g2L3 g3L2 g3L3 */
    r[c] = _mm512_shuffle_f32x4(x0, x2, 0x88);                         /* column c:      lane 0 of g0..g3 */
    r[4 + c] = _mm512_shuffle_f32x4(x0, x2, 0xDD);                     /* column 4 + c:  lane 1 */
    r[8 + c] = _mm512_shuffle_f32x4(x1, x3, 0x88);                     /* column 8 + c:  lane 2 */
    r[12 + c] = _mm512_shuffle_f32x4(x1, x3, 0xDD);                    /* column 12 + c: lane 3 */
  }
}

#define VEC __m512
#define VLEN 16
#define VZERO() _mm512_setzero_ps()
#define VLOAD(p) _mm512_loadu_ps(p)
#define VLOAD_F16(p) _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)(p)))
#define VSTORE_F16(p, v) _mm256_storeu_si256((__m256i*)(p), _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT))
#define VLOAD_BF16(p) \
  _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i*)(p))), 16))
#define VFMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define VREDUCE(v) _mm512_reduce_add_ps(v)
#define VSTORE(p, v) _mm512_storeu_ps(p, v)
#define VSET1(x) _mm512_set1_ps(x)
#define TILE_T 4
#define VMAX(a, b) _mm512_max_ps(a, b)
#define VEQ_MASK(a, b) ((uint32_t)_mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ))
#define VSUB(a, b) _mm512_sub_ps(a, b)
#define VMUL(a, b) _mm512_mul_ps(a, b)
#define VADD(a, b) _mm512_add_ps(a, b)
#define VDIV(a, b) _mm512_div_ps(a, b)
#define VREDUCE_MAX(v) _mm512_reduce_max_ps(v)
#define VEXP(x) exp512(x)
#define VTRANSPOSE(r) transpose16(r)
#define ATT_R 4
#define OPS_NAME hearth_ops_avx512
#define OPS_ISA "avx512"

#include "ops_simd.inc"
