/*
 * kernels_common.cuh — device helpers the kernel files share: warp reductions, element access to the
 * device weight layouts (internal.cuh, hc_weight), and the tensor-core instructions as inline PTX.
 */
#ifndef HEARTH_CUDA_KERNELS_COMMON_CUH
#define HEARTH_CUDA_KERNELS_COMMON_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <math.h>

#include "internal.cuh"

__device__ __forceinline__ float hc_warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ double hc_warp_sum_double(double v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ int32_t hc_warp_sum_int(int32_t v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float hc_warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

__device__ __forceinline__ float hc_f16(uint16_t h) { return __half2float(__ushort_as_half(h)); }
__device__ __forceinline__ float hc_bf16(uint16_t h) { return __uint_as_float((uint32_t)h << 16); }

/* Element (r, c) of a device weight, dequantized exactly as kernels/cpu/quant.c's hearth_dequantize_row
   computes it (same operations, no contraction). */
__device__ __forceinline__ float hc_weight_at(const hc_weight& w, int64_t r, int64_t c) {
  const int64_t i = r * w.cols + c;
  switch (w.dtype) {
    case HEARTH_DTYPE_F32: return ((const float*)w.data)[i];
    case HEARTH_DTYPE_F16: return hc_f16(((const uint16_t*)w.data)[i]);
    case HEARTH_DTYPE_BF16: return hc_bf16(((const uint16_t*)w.data)[i]);
    case HEARTH_DTYPE_Q8_0: return __fmul_rn((float)((const int8_t*)w.data)[i], hc_f16(w.scales[i / 32]));
    case HEARTH_DTYPE_Q4_0: {
      const int64_t b = i / 32;
      const int32_t j = (int32_t)(i % 32);
      const uint8_t byte = ((const uint8_t*)w.data)[b * 16 + (j % 16)];
      const int32_t q = j < 16 ? byte & 15 : byte >> 4;
      return __fmul_rn(hc_f16(w.scales[b]), (float)(q - 8));
    }
    case HEARTH_DTYPE_Q4_K: {
      const hearth_block_q4_k* blk = (const hearth_block_q4_k*)w.data + i / 256;
      const int32_t j = (int32_t)(i % 256);
      uint8_t sc, m;
      hearth_q4k_scale_min(blk->scales, j / 32, &sc, &m);
      const int32_t q = (blk->qs[32 * (j / 64) + j % 32] >> (4 * ((j / 32) % 2))) & 15;
      const float dl = __fmul_rn(hc_f16(blk->d), (float)sc), ml = __fmul_rn(hc_f16(blk->dmin), (float)m);
      return __fsub_rn(__fmul_rn(dl, (float)q), ml);
    }
    default: return __int_as_float(0x7fc00000); /* not a device dtype: NaN makes it visible */
  }
}

/* D = A B + C on the tensor cores, one warp: A 16x16 (row), B 16x8 (col), f32 accumulators. Fragment
   layouts are PTX's for mma.m16n8k16 (g = lane / 4, t = lane % 4): a0 (row g, k 2t..2t+1), a1 (row g+8),
   a2 (row g, k + 8), a3 (row g+8, k + 8); b0 (k 2t..2t+1, col g), b1 (k + 8); c0,c1 (row g, col 2t, 2t+1),
   c2,c3 (row g+8). */
__device__ __forceinline__ void hc_mma_bf16(float c[4], const uint32_t a[4], const uint32_t b[2]) {
#if __CUDA_ARCH__ >= 800
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#endif
}
__device__ __forceinline__ void hc_mma_f16(float c[4], const uint32_t a[4], const uint32_t b[2]) {
#if __CUDA_ARCH__ >= 800
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#endif
}
/* int8: A 16x32, B 32x8, int32 accumulators; a0 (row g, k 4t..4t+3), a1 (row g+8), a2 (row g, k + 16),
   a3 (row g+8, k + 16); b0 (k 4t..4t+3, col g), b1 (k + 16); c as above. */
__device__ __forceinline__ void hc_mma_s8(int32_t c[4], const uint32_t a[4], const uint32_t b[2]) {
#if __CUDA_ARCH__ >= 800
  asm volatile(
      "mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#endif
}

/* Sum of the 4 byte products of a and b (signed), plus c. */
__device__ __forceinline__ int32_t hc_dp4a(int32_t a, int32_t b, int32_t c) { return __dp4a(a, b, c); }

#endif
