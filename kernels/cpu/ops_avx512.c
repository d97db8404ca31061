/* ops_avx512.c — AVX-512 kernels (compiled with -mavx512f -mavx512bw -mavx512vl -mfma -mf16c). */
#include <immintrin.h>

#include "internal.h"

#define VEC __m512
#define VLEN 16
#define VZERO() _mm512_setzero_ps()
#define VLOAD(p) _mm512_loadu_ps(p)
#define VLOAD_F16(p) _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)(p)))
#define VLOAD_BF16(p) \
  _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i*)(p))), 16))
#define VFMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define VREDUCE(v) _mm512_reduce_add_ps(v)
#define VSTORE(p, v) _mm512_storeu_ps(p, v)
#define VSET1(x) _mm512_set1_ps(x)
#define TILE_T 4
#define OPS_NAME hearth_ops_avx512
#define OPS_ISA "avx512"

#include "ops_simd.inc"
