/*
 * kernels_matmul.cu — y = x @ W^T for every weight layout of internal.cuh, two families:
 *
 *  Decode (T <= HC_MATVEC_MAX_T tokens): matvec_kernel, one warp per weight row, written for memory
 *  bandwidth: each lane issues 16-byte loads of the row, several before it uses the first, and the dot
 *  products are fused with dequantization: f32 FMAs for F32/F16/BF16 rows, __dp4a integer products
 *  against the activations quantized to 8 bits for Q8_0 / Q4_0 / Q4_K (the CPU backend's scheme: integer
 *  sums per 32 values, scaled in float). All T tokens share each load of the weights. gate and up can run
 *  as one pair whose epilogue writes silu(gate) * up (SwiGLU fused).
 *
 *  Prefill and large batches: 64 x 64 output tiles on the tensor cores with mma.sync. BF16 / F16 weights
 *  meet the activations split into two 16-bit halves (x = hi + lo, two products), which keeps float32
 *  accuracy of the activations; Q8_0 / Q4_0 / Q4_K weights take int8 mma (m16n8k32) per 32-value chunk
 *  against the quantized activations, scaled per chunk in float. F32 weights (and rows whose length is
 *  no multiple of 8) take a plain float32 tile kernel.
 */
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "internal.cuh"
#include "kernels_common.cuh"

/* Everything a matmul launch reads: the targets, the input and its quantized form. */
typedef struct {
  hc_weight w[3];
  float* y[3];
  int32_t first_block[4]; /* matvec: blocks of target i are [first_block[i], first_block[i + 1]) */
  int32_t n;
  const float* x; /* (T, k) */
  hc_qact act;
  int32_t T;
  int64_t k;
} mm_job;

#define MV_WARPS 8 /* rows per matvec block */

/* ---------------------------------------------------------------------------------------------------- */
/* Decode: one row's dot products with NT tokens                                                          */

/* 8 values of a 16-byte load of a F16 / BF16 row, or the first 8 of a F32 row's 32-byte pair. */
template <int DT>
__device__ __forceinline__ void unpack8(const uint4& v, const uint4& v2, float f[8]) {
  if (DT == HEARTH_DTYPE_BF16) {
    const uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int i = 0; i < 4; i++) f[2 * i] = __uint_as_float(w[i] << 16), f[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
  } else if (DT == HEARTH_DTYPE_F16) {
    const uint32_t w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int i = 0; i < 4; i++) {
      const float2 p = __half22float2(*reinterpret_cast<const __half2*>(&w[i]));
      f[2 * i] = p.x, f[2 * i + 1] = p.y;
    }
  } else {
    f[0] = __uint_as_float(v.x), f[1] = __uint_as_float(v.y), f[2] = __uint_as_float(v.z), f[3] = __uint_as_float(v.w);
    f[4] = __uint_as_float(v2.x), f[5] = __uint_as_float(v2.y), f[6] = __uint_as_float(v2.z), f[7] = __uint_as_float(v2.w);
  }
}

/* F32 / F16 / BF16 row (k a multiple of 8): lane covers 8 columns per step, 4 steps of loads in flight. */
template <int DT, int NT>
__device__ __forceinline__ void dot_row_float(const hc_weight& w, int64_t row, const mm_job& j, float acc[NT]) {
  const int32_t lane = threadIdx.x % 32;
  const int64_t k = j.k;
  const int esz = DT == HEARTH_DTYPE_F32 ? 4 : 2;
  const uint8_t* wr = (const uint8_t*)w.data + (size_t)row * k * esz;
  constexpr int U = 4;
  int64_t c = (int64_t)lane * 8;
  for (; c + (U - 1) * 256 < k; c += U * 256) {
    uint4 wv[U], wv2[U];
#pragma unroll
    for (int u = 0; u < U; u++) {
      const uint4* p = (const uint4*)(wr + (size_t)(c + u * 256) * esz);
      wv[u] = __ldg(p);
      wv2[u] = DT == HEARTH_DTYPE_F32 ? __ldg(p + 1) : wv[u];
    }
#pragma unroll
    for (int u = 0; u < U; u++) {
      float f[8];
      unpack8<DT>(wv[u], wv2[u], f);
#pragma unroll
      for (int t = 0; t < NT; t++) {
        if (t >= j.T) break;
        const float4* xp = (const float4*)(j.x + (size_t)t * k + c + u * 256);
        const float4 x0 = __ldg(xp), x1 = __ldg(xp + 1);
        acc[t] += f[0] * x0.x + f[1] * x0.y + f[2] * x0.z + f[3] * x0.w + f[4] * x1.x + f[5] * x1.y + f[6] * x1.z +
                  f[7] * x1.w;
      }
    }
  }
  for (; c < k; c += 256) {
    const uint4* p = (const uint4*)(wr + (size_t)c * esz);
    const uint4 v = __ldg(p), v2 = DT == HEARTH_DTYPE_F32 ? __ldg(p + 1) : v;
    float f[8];
    unpack8<DT>(v, v2, f);
#pragma unroll
    for (int t = 0; t < NT; t++) {
      if (t >= j.T) break;
      const float4* xp = (const float4*)(j.x + (size_t)t * k + c);
      const float4 x0 = __ldg(xp), x1 = __ldg(xp + 1);
      acc[t] += f[0] * x0.x + f[1] * x0.y + f[2] * x0.z + f[3] * x0.w + f[4] * x1.x + f[5] * x1.y + f[6] * x1.z + f[7] * x1.w;
    }
  }
}

__device__ __forceinline__ int32_t dot16(const uint4& w, const int4& x) {
  int32_t s = hc_dp4a((int32_t)w.x, x.x, 0);
  s = hc_dp4a((int32_t)w.y, x.y, s);
  s = hc_dp4a((int32_t)w.z, x.z, s);
  return hc_dp4a((int32_t)w.w, x.w, s);
}

/* Q8_0 row: lane covers 16 codes (half a block) per step, 4 steps in flight. */
template <int NT>
__device__ __forceinline__ void dot_row_q8_0(const hc_weight& w, int64_t row, const mm_job& j, float acc[NT]) {
  const int32_t lane = threadIdx.x % 32;
  const int64_t k = j.k, nb = k / 32;
  const int8_t* wq = (const int8_t*)w.data + (size_t)row * k;
  const uint16_t* ws = w.scales + (size_t)row * nb;
  constexpr int U = 4;
  int64_t c = (int64_t)lane * 16;
  for (; c < k; c += U * 512) {
    uint4 wv[U];
    float dw[U];
#pragma unroll
    for (int u = 0; u < U; u++) {
      const int64_t cc = c + u * 512;
      if (cc < k) wv[u] = __ldg((const uint4*)(wq + cc)), dw[u] = hc_f16(__ldg(ws + cc / 32));
    }
#pragma unroll
    for (int u = 0; u < U; u++) {
      const int64_t cc = c + u * 512;
      if (cc >= k) break;
#pragma unroll
      for (int t = 0; t < NT; t++) {
        if (t >= j.T) break;
        const int4 xv = __ldg((const int4*)(j.act.q + (size_t)t * k + cc));
        acc[t] += dw[u] * __ldg(j.act.d + (size_t)t * nb + cc / 32) * (float)dot16(wv[u], xv);
      }
    }
  }
}

/* Q4_0 row: lane covers one block (16 bytes, 32 codes) per step, 2 steps in flight. */
template <int NT>
__device__ __forceinline__ void dot_row_q4_0(const hc_weight& w, int64_t row, const mm_job& j, float acc[NT]) {
  const int32_t lane = threadIdx.x % 32;
  const int64_t k = j.k, nb = k / 32;
  const uint8_t* wq = (const uint8_t*)w.data + (size_t)row * nb * 16;
  const uint16_t* ws = w.scales + (size_t)row * nb;
  constexpr int U = 2;
  for (int64_t b = lane; b < nb; b += U * 32) {
    uint4 wv[U];
    float dw[U];
#pragma unroll
    for (int u = 0; u < U; u++) {
      const int64_t bb = b + u * 32;
      if (bb < nb) wv[u] = __ldg((const uint4*)(wq + bb * 16)), dw[u] = hc_f16(__ldg(ws + bb));
    }
#pragma unroll
    for (int u = 0; u < U; u++) {
      const int64_t bb = b + u * 32;
      if (bb >= nb) break;
      const uint4 lo = make_uint4(wv[u].x & 0x0f0f0f0fu, wv[u].y & 0x0f0f0f0fu, wv[u].z & 0x0f0f0f0fu, wv[u].w & 0x0f0f0f0fu);
      const uint4 hi = make_uint4((wv[u].x >> 4) & 0x0f0f0f0fu, (wv[u].y >> 4) & 0x0f0f0f0fu, (wv[u].z >> 4) & 0x0f0f0f0fu,
                                  (wv[u].w >> 4) & 0x0f0f0f0fu);
#pragma unroll
      for (int t = 0; t < NT; t++) {
        if (t >= j.T) break;
        const int4* xp = (const int4*)(j.act.q + (size_t)t * k + bb * 32);
        const int32_t s = dot16(lo, __ldg(xp)) + dot16(hi, __ldg(xp + 1));
        const size_t ai = (size_t)t * nb + bb;
        acc[t] += dw[u] * __ldg(j.act.d + ai) * (float)(s - 8 * __ldg(j.act.s + ai));
      }
    }
  }
}

/* hearth_q4k_scale_min on the 12 scale bytes held in hdr.y, hdr.z, hdr.w (no local array). */
__device__ __forceinline__ uint32_t scale_byte(const uint4& hdr, int32_t i) {
  const uint32_t word = i < 4 ? hdr.y : i < 8 ? hdr.z : hdr.w;
  return (word >> (8 * (i & 3))) & 255u;
}
__device__ __forceinline__ void q4k_scale_min_regs(const uint4& hdr, int32_t j, uint32_t* sc, uint32_t* m) {
  if (j < 4) {
    *sc = scale_byte(hdr, j) & 63;
    *m = scale_byte(hdr, j + 4) & 63;
  } else {
    *sc = (scale_byte(hdr, j + 4) & 15) | ((scale_byte(hdr, j - 4) >> 6) << 4);
    *m = (scale_byte(hdr, j + 4) >> 4) | ((scale_byte(hdr, j) >> 6) << 4);
  }
}

/* Q4_K row: lane covers a pair of 32-value sub-blocks (32 bytes of nibbles) per step. */
template <int NT>
__device__ __forceinline__ void dot_row_q4_k(const hc_weight& w, int64_t row, const mm_job& j, float acc[NT]) {
  const int32_t lane = threadIdx.x % 32;
  const int64_t k = j.k, nsb = k / 256, nb = k / 32, units = nsb * 4;
  const hearth_block_q4_k* wb = (const hearth_block_q4_k*)w.data + (size_t)row * nsb;
  for (int64_t u = lane; u < units; u += 32) {
    const int64_t sb = u / 4;
    const int32_t p = (int32_t)(u % 4);
    const hearth_block_q4_k* blk = wb + sb;
    const uint4 hdr = __ldg((const uint4*)blk);
    const uint4 q0 = __ldg((const uint4*)(blk->qs + 32 * p)), q1 = __ldg((const uint4*)(blk->qs + 32 * p + 16));
    uint32_t sc0, m0, sc1, m1;
    q4k_scale_min_regs(hdr, 2 * p, &sc0, &m0);
    q4k_scale_min_regs(hdr, 2 * p + 1, &sc1, &m1);
    const float d = hc_f16((uint16_t)(hdr.x & 0xffff)), dmin = hc_f16((uint16_t)(hdr.x >> 16));
    const float a0 = d * (float)sc0, b0 = dmin * (float)m0, a1 = d * (float)sc1, b1 = dmin * (float)m1;
    const uint4 lo0 = make_uint4(q0.x & 0x0f0f0f0fu, q0.y & 0x0f0f0f0fu, q0.z & 0x0f0f0f0fu, q0.w & 0x0f0f0f0fu);
    const uint4 lo1 = make_uint4(q1.x & 0x0f0f0f0fu, q1.y & 0x0f0f0f0fu, q1.z & 0x0f0f0f0fu, q1.w & 0x0f0f0f0fu);
    const uint4 hi0 = make_uint4((q0.x >> 4) & 0x0f0f0f0fu, (q0.y >> 4) & 0x0f0f0f0fu, (q0.z >> 4) & 0x0f0f0f0fu,
                                 (q0.w >> 4) & 0x0f0f0f0fu);
    const uint4 hi1 = make_uint4((q1.x >> 4) & 0x0f0f0f0fu, (q1.y >> 4) & 0x0f0f0f0fu, (q1.z >> 4) & 0x0f0f0f0fu,
                                 (q1.w >> 4) & 0x0f0f0f0fu);
#pragma unroll
    for (int t = 0; t < NT; t++) {
      if (t >= j.T) break;
      const int4* xp = (const int4*)(j.act.q + (size_t)t * k + sb * 256 + 64 * p);
      const int32_t s0 = dot16(lo0, __ldg(xp)) + dot16(lo1, __ldg(xp + 1));
      const int32_t s1 = dot16(hi0, __ldg(xp + 2)) + dot16(hi1, __ldg(xp + 3));
      const size_t ai = (size_t)t * nb + sb * 8 + 2 * p;
      const float xd0 = __ldg(j.act.d + ai), xd1 = __ldg(j.act.d + ai + 1);
      acc[t] += xd0 * (a0 * (float)s0 - b0 * (float)__ldg(j.act.s + ai)) +
                xd1 * (a1 * (float)s1 - b1 * (float)__ldg(j.act.s + ai + 1));
    }
  }
}

template <int DT, int NT>
__device__ __forceinline__ void dot_row(const hc_weight& w, int64_t row, const mm_job& j, float acc[NT]) {
  if (DT == HEARTH_DTYPE_Q8_0) dot_row_q8_0<NT>(w, row, j, acc);
  else if (DT == HEARTH_DTYPE_Q4_0) dot_row_q4_0<NT>(w, row, j, acc);
  else if (DT == HEARTH_DTYPE_Q4_K) dot_row_q4_k<NT>(w, row, j, acc);
  else dot_row_float<DT, NT>(w, row, j, acc);
}

/* One warp per row of one target; PAIR: targets 0 and 1 (gate, up) share the row and y[0] gets
   silu(gate) * up. */
template <int DT, int NT, bool PAIR>
__global__ void __launch_bounds__(MV_WARPS * 32) matvec_kernel(mm_job j) {
  int32_t target = 0;
  if (!PAIR)
    while (target + 1 < j.n && (int32_t)blockIdx.x >= j.first_block[target + 1]) target++;
  const hc_weight& w = j.w[target];
  const int64_t row = (int64_t)(blockIdx.x - j.first_block[target]) * MV_WARPS + threadIdx.x / 32;
  if (row >= w.rows) return;
  float acc[NT], acc2[NT];
#pragma unroll
  for (int t = 0; t < NT; t++) acc[t] = 0, acc2[t] = 0;
  dot_row<DT, NT>(w, row, j, acc);
  if (PAIR) dot_row<DT, NT>(j.w[1], row, j, acc2);
#pragma unroll
  for (int t = 0; t < NT; t++) {
    acc[t] = hc_warp_sum(acc[t]);
    if (PAIR) acc2[t] = hc_warp_sum(acc2[t]);
  }
  if (threadIdx.x % 32 == 0) {
    float* y = j.y[target];
#pragma unroll
    for (int t = 0; t < NT; t++) {
      if (t >= j.T) break;
      float v = acc[t];
      if (PAIR) v = __fmul_rn(__fdiv_rn(v, __fadd_rn(1.0f, expf(-v))), acc2[t]);
      y[(size_t)t * w.rows + row] = v;
    }
  }
}

/* ---------------------------------------------------------------------------------------------------- */
/* Prefill: tensor-core tiles                                                                             */

#define GM 64 /* weight rows per tile */
#define GN 64 /* tokens per tile */


/* A warp's 16 rows x 64 tokens of an mma tile into y (T, rows): accumulator nt holds rows r0, r0 + 8 and
   tokens tok0 + 8 nt + 2 t4 (+ 1), as mma.sync lays out C; rows and tokens past the ends are skipped. */
__device__ __forceinline__ void store_warp_tile(float* y, const float (*acc)[4], int64_t rows, int32_t T, int64_t r0,
                                                int32_t tok0, int32_t t4) {
  const int64_t r1 = r0 + 8;
#pragma unroll
  for (int nt = 0; nt < 8; nt++) {
    const int32_t t0 = tok0 + nt * 8 + 2 * t4, t1 = t0 + 1;
    if (r0 < rows && t0 < T) y[(size_t)t0 * rows + r0] = acc[nt][0];
    if (r0 < rows && t1 < T) y[(size_t)t1 * rows + r0] = acc[nt][1];
    if (r1 < rows && t0 < T) y[(size_t)t0 * rows + r1] = acc[nt][2];
    if (r1 < rows && t1 < T) y[(size_t)t1 * rows + r1] = acc[nt][3];
  }
}

/* BF16 / F16 weights, 32 columns per step; activations as hi + lo 16-bit halves. 4 warps, each 16 rows
   x 64 tokens. */
#define GK_H 32
#define LDS_H 40 /* halves per shared row: 80 bytes, so fragment loads hit 32 distinct banks */
template <int DT>
__global__ void __launch_bounds__(128) gemm_half_kernel(hc_weight w, float* __restrict__ y, const float* __restrict__ x,
                                                        int32_t T, int64_t k) {
  __shared__ __align__(16) uint16_t Ws[GM][LDS_H];
  __shared__ __align__(16) uint16_t Xh[GN][LDS_H];
  __shared__ __align__(16) uint16_t Xl[GN][LDS_H];
  const int64_t row0 = (int64_t)blockIdx.x * GM;
  const int32_t tok0 = blockIdx.y * GN, warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t4 = lane % 4;
  float acc[8][4];
#pragma unroll
  for (int i = 0; i < 8; i++) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = 0;
  const uint16_t* wd = (const uint16_t*)w.data;
  for (int64_t k0 = 0; k0 < k; k0 += GK_H) {
#pragma unroll
    for (int it = 0; it < 2; it++) { /* weights: 64 rows x 4 loads of 8 halves */
      const int32_t idx = threadIdx.x + it * 128, r = idx / 4, seg = idx % 4;
      const int64_t gr = row0 + r, gc = k0 + seg * 8;
      uint4 v = make_uint4(0, 0, 0, 0);
      if (gr < w.rows && gc < k) v = __ldg((const uint4*)(wd + (size_t)gr * k + gc));
      *(uint4*)&Ws[r][seg * 8] = v;
    }
#pragma unroll
    for (int it = 0; it < 4; it++) { /* activations: 64 tokens x 8 loads of 4 floats, split hi / lo */
      const int32_t idx = threadIdx.x + it * 128, tt = idx / 8, seg = idx % 8, gt = tok0 + tt;
      const int64_t gc = k0 + seg * 4;
      float4 v = make_float4(0, 0, 0, 0);
      if (gt < T && gc < k) v = __ldg((const float4*)(x + (size_t)gt * k + gc));
      const float f[4] = {v.x, v.y, v.z, v.w};
      uint16_t hi[4], lo[4];
#pragma unroll
      for (int i = 0; i < 4; i++) {
        if (DT == HEARTH_DTYPE_BF16) {
          const __nv_bfloat16 h = __float2bfloat16_rn(f[i]);
          const __nv_bfloat16 l = __float2bfloat16_rn(f[i] - __bfloat162float(h));
          hi[i] = __bfloat16_as_ushort(h), lo[i] = __bfloat16_as_ushort(l);
        } else {
          const __half h = __float2half_rn(f[i]);
          const __half l = __float2half_rn(f[i] - __half2float(h));
          hi[i] = __half_as_ushort(h), lo[i] = __half_as_ushort(l);
        }
      }
      *(uint2*)&Xh[tt][seg * 4] = make_uint2(hi[0] | (uint32_t)hi[1] << 16, hi[2] | (uint32_t)hi[3] << 16);
      *(uint2*)&Xl[tt][seg * 4] = make_uint2(lo[0] | (uint32_t)lo[1] << 16, lo[2] | (uint32_t)lo[3] << 16);
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < GK_H; kk += 16) {
      const int32_t ar = warp * 16 + g;
      uint32_t a[4];
      a[0] = *(const uint32_t*)&Ws[ar][kk + 2 * t4];
      a[1] = *(const uint32_t*)&Ws[ar + 8][kk + 2 * t4];
      a[2] = *(const uint32_t*)&Ws[ar][kk + 8 + 2 * t4];
      a[3] = *(const uint32_t*)&Ws[ar + 8][kk + 8 + 2 * t4];
#pragma unroll
      for (int nt = 0; nt < 8; nt++) {
        const int32_t bn = nt * 8 + g;
        const uint32_t bh[2] = {*(const uint32_t*)&Xh[bn][kk + 2 * t4], *(const uint32_t*)&Xh[bn][kk + 8 + 2 * t4]};
        const uint32_t bl[2] = {*(const uint32_t*)&Xl[bn][kk + 2 * t4], *(const uint32_t*)&Xl[bn][kk + 8 + 2 * t4]};
        if (DT == HEARTH_DTYPE_BF16) hc_mma_bf16(acc[nt], a, bh), hc_mma_bf16(acc[nt], a, bl);
        else hc_mma_f16(acc[nt], a, bh), hc_mma_f16(acc[nt], a, bl);
      }
    }
    __syncthreads();
  }
  store_warp_tile(y, acc, w.rows, T, row0 + warp * 16 + g, tok0, t4);
}

/* Quantized weights: two 32-value chunks per step, int8 mma per chunk, scaled in float:
   y += (a_w * d_x) * sum(q_w q_x) + (b_w * d_x) * sum(q_x), with a_w, b_w the chunk's scale and min term. */
#define GK_Q 64
#define LDS_Q 80 /* bytes per shared row */
template <int DT>
__global__ void __launch_bounds__(128) gemm_q_kernel(hc_weight w, float* __restrict__ y, hc_qact act, int32_t T, int64_t k) {
  __shared__ __align__(16) int8_t Wq[GM][LDS_Q];
  __shared__ __align__(16) int8_t Xq[GN][LDS_Q];
  __shared__ float wa[GM][2], wb[GM][2], xd[GN][2], xs[GN][2];
  const int64_t row0 = (int64_t)blockIdx.x * GM, nb = k / 32;
  const int32_t tok0 = blockIdx.y * GN, warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t4 = lane % 4;
  float acc[8][4];
#pragma unroll
  for (int i = 0; i < 8; i++) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = 0;
  for (int64_t k0 = 0; k0 < k; k0 += GK_Q) {
    { /* weights: thread -> (row, chunk); codes as signed bytes, scale a and min term b */
      const int32_t r = threadIdx.x / 2, c = threadIdx.x % 2;
      const int64_t gr = row0 + r, kc = k0 / 32 + c;
      uint32_t q[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      float A = 0, B = 0;
      if (gr < w.rows && kc < nb) {
        if (DT == HEARTH_DTYPE_Q8_0) {
          const uint4* p = (const uint4*)((const int8_t*)w.data + (size_t)gr * k + kc * 32);
          const uint4 v0 = __ldg(p), v1 = __ldg(p + 1);
          q[0] = v0.x, q[1] = v0.y, q[2] = v0.z, q[3] = v0.w, q[4] = v1.x, q[5] = v1.y, q[6] = v1.z, q[7] = v1.w;
          A = hc_f16(w.scales[(size_t)gr * nb + kc]);
        } else if (DT == HEARTH_DTYPE_Q4_0) {
          const uint4 v = __ldg((const uint4*)((const uint8_t*)w.data + ((size_t)gr * nb + kc) * 16));
          const uint32_t vv[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
          for (int i = 0; i < 4; i++) {
            q[i] = __vsub4(vv[i] & 0x0f0f0f0fu, 0x08080808u);
            q[4 + i] = __vsub4((vv[i] >> 4) & 0x0f0f0f0fu, 0x08080808u);
          }
          A = hc_f16(w.scales[(size_t)gr * nb + kc]);
        } else { /* Q4_K */
          const int64_t sb = kc / 8;
          const int32_t jj = (int32_t)(kc % 8);
          const hearth_block_q4_k* blk = (const hearth_block_q4_k*)w.data + (size_t)gr * (k / 256) + sb;
          const uint4* p = (const uint4*)(blk->qs + 32 * (jj / 2));
          const uint4 v0 = __ldg(p), v1 = __ldg(p + 1);
          const uint32_t vv[8] = {v0.x, v0.y, v0.z, v0.w, v1.x, v1.y, v1.z, v1.w};
          const int32_t sh = 4 * (jj % 2);
#pragma unroll
          for (int i = 0; i < 8; i++) q[i] = (vv[i] >> sh) & 0x0f0f0f0fu;
          uint8_t sc, m;
          hearth_q4k_scale_min(blk->scales, jj, &sc, &m);
          A = hc_f16(blk->d) * (float)sc;
          B = -hc_f16(blk->dmin) * (float)m;
        }
      }
      *(uint4*)&Wq[r][c * 32] = make_uint4(q[0], q[1], q[2], q[3]);
      *(uint4*)&Wq[r][c * 32 + 16] = make_uint4(q[4], q[5], q[6], q[7]);
      wa[r][c] = A;
      wb[r][c] = B;
    }
#pragma unroll
    for (int it = 0; it < 2; it++) { /* activations: 64 tokens x 4 loads of 16 codes */
      const int32_t idx = threadIdx.x + it * 128, tt = idx / 4, seg = idx % 4, gt = tok0 + tt;
      const int64_t gc = k0 + seg * 16;
      uint4 v = make_uint4(0, 0, 0, 0);
      if (gt < T && gc < k) v = __ldg((const uint4*)(act.q + (size_t)gt * k + gc));
      *(uint4*)&Xq[tt][seg * 16] = v;
    }
    {
      const int32_t tt = threadIdx.x / 2, c = threadIdx.x % 2, gt = tok0 + tt;
      const int64_t kc = k0 / 32 + c;
      const int ok = gt < T && kc < nb;
      xd[tt][c] = ok ? act.d[(size_t)gt * nb + kc] : 0.0f;
      xs[tt][c] = ok ? (float)act.s[(size_t)gt * nb + kc] : 0.0f;
    }
    __syncthreads();
#pragma unroll
    for (int c = 0; c < 2; c++) {
      const int32_t ar = warp * 16 + g;
      uint32_t a[4];
      a[0] = *(const uint32_t*)&Wq[ar][c * 32 + 4 * t4];
      a[1] = *(const uint32_t*)&Wq[ar + 8][c * 32 + 4 * t4];
      a[2] = *(const uint32_t*)&Wq[ar][c * 32 + 16 + 4 * t4];
      a[3] = *(const uint32_t*)&Wq[ar + 8][c * 32 + 16 + 4 * t4];
      const float wa0 = wa[ar][c], wb0 = wb[ar][c], wa1 = wa[ar + 8][c], wb1 = wb[ar + 8][c];
#pragma unroll
      for (int nt = 0; nt < 8; nt++) {
        const int32_t bn = nt * 8 + g;
        const uint32_t b[2] = {*(const uint32_t*)&Xq[bn][c * 32 + 4 * t4], *(const uint32_t*)&Xq[bn][c * 32 + 16 + 4 * t4]};
        int32_t ci[4] = {0, 0, 0, 0};
        hc_mma_s8(ci, a, b);
        const int32_t c0 = nt * 8 + 2 * t4;
        const float d0 = xd[c0][c], s0 = xs[c0][c], d1 = xd[c0 + 1][c], s1 = xs[c0 + 1][c];
        acc[nt][0] += d0 * (wa0 * (float)ci[0] + wb0 * s0);
        acc[nt][1] += d1 * (wa0 * (float)ci[1] + wb0 * s1);
        acc[nt][2] += d0 * (wa1 * (float)ci[2] + wb1 * s0);
        acc[nt][3] += d1 * (wa1 * (float)ci[3] + wb1 * s1);
      }
    }
    __syncthreads();
  }
  store_warp_tile(y, acc, w.rows, T, row0 + warp * 16 + g, tok0, t4);
}

/* Any float layout, any k: float32 tiles of 64 x 64, 16 columns per step, 4 x 4 outputs per thread. */
#define GK_S 16
__global__ void __launch_bounds__(256) gemm_simt_kernel(hc_weight w, float* __restrict__ y, const float* __restrict__ x,
                                                       int32_t T, int64_t k) {
  __shared__ float Ws[GK_S][GM + 4];
  __shared__ float Xs[GK_S][GN + 4];
  const int64_t row0 = (int64_t)blockIdx.x * GM;
  const int32_t tok0 = blockIdx.y * GN, tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  float acc[4][4] = {};
  for (int64_t k0 = 0; k0 < k; k0 += GK_S) {
#pragma unroll
    for (int it = 0; it < 4; it++) {
      const int32_t idx = threadIdx.x + it * 256, r = idx / GK_S, kk = idx % GK_S;
      const int64_t gr = row0 + r, gc = k0 + kk, gt = tok0 + r;
      Ws[kk][r] = gr < w.rows && gc < k ? hc_weight_at(w, gr, gc) : 0.0f;
      Xs[kk][r] = gt < T && gc < k ? x[(size_t)gt * k + gc] : 0.0f;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < GK_S; kk++) {
      float a[4], b[4];
#pragma unroll
      for (int i = 0; i < 4; i++) a[i] = Ws[kk][ty * 4 + i], b[i] = Xs[kk][tx * 4 + i];
#pragma unroll
      for (int i = 0; i < 4; i++)
#pragma unroll
        for (int jj = 0; jj < 4; jj++) acc[i][jj] += a[i] * b[jj];
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; i++)
#pragma unroll
    for (int jj = 0; jj < 4; jj++) {
      const int64_t r = row0 + ty * 4 + i;
      const int32_t t = tok0 + tx * 4 + jj;
      if (r < w.rows && t < T) y[(size_t)t * w.rows + r] = acc[i][jj];
    }
}

/* ---------------------------------------------------------------------------------------------------- */
/* Dispatch                                                                                               */

template <int DT, bool PAIR>
static void launch_matvec_nt(cudaStream_t st, const mm_job& j, int32_t blocks) {
  if (j.T <= 1) matvec_kernel<DT, 1, PAIR><<<blocks, MV_WARPS * 32, 0, st>>>(j);
  else if (j.T <= 2) matvec_kernel<DT, 2, PAIR><<<blocks, MV_WARPS * 32, 0, st>>>(j);
  else if (j.T <= 4) matvec_kernel<DT, 4, PAIR><<<blocks, MV_WARPS * 32, 0, st>>>(j);
  else matvec_kernel<DT, 8, PAIR><<<blocks, MV_WARPS * 32, 0, st>>>(j);
}

template <bool PAIR>
static void launch_matvec(cudaStream_t st, const mm_job& j, int32_t dtype, int32_t blocks) {
  switch (dtype) {
    case HEARTH_DTYPE_F32: launch_matvec_nt<HEARTH_DTYPE_F32, PAIR>(st, j, blocks); break;
    case HEARTH_DTYPE_F16: launch_matvec_nt<HEARTH_DTYPE_F16, PAIR>(st, j, blocks); break;
    case HEARTH_DTYPE_BF16: launch_matvec_nt<HEARTH_DTYPE_BF16, PAIR>(st, j, blocks); break;
    case HEARTH_DTYPE_Q8_0: launch_matvec_nt<HEARTH_DTYPE_Q8_0, PAIR>(st, j, blocks); break;
    case HEARTH_DTYPE_Q4_0: launch_matvec_nt<HEARTH_DTYPE_Q4_0, PAIR>(st, j, blocks); break;
    default: launch_matvec_nt<HEARTH_DTYPE_Q4_K, PAIR>(st, j, blocks); break;
  }
}

/* A target the decode kernel can run: quantized, or a float row of a multiple of 8 values. */
static int matvec_ok(const hc_weight* w, int64_t k) { return hearth_dtype_is_quantized(w->dtype) || k % 8 == 0; }

static void launch_tiles(cudaStream_t st, const hc_weight* w, float* y, const float* x, const hc_qact* act, int32_t T, int64_t k) {
  const dim3 grid((unsigned)((w->rows + GM - 1) / GM), (unsigned)((T + GN - 1) / GN));
  switch (w->dtype) {
    case HEARTH_DTYPE_BF16:
      if (k % 8 == 0) {
        gemm_half_kernel<HEARTH_DTYPE_BF16><<<grid, 128, 0, st>>>(*w, y, x, T, k);
        return;
      }
      break;
    case HEARTH_DTYPE_F16:
      if (k % 8 == 0) {
        gemm_half_kernel<HEARTH_DTYPE_F16><<<grid, 128, 0, st>>>(*w, y, x, T, k);
        return;
      }
      break;
    case HEARTH_DTYPE_Q8_0: gemm_q_kernel<HEARTH_DTYPE_Q8_0><<<grid, 128, 0, st>>>(*w, y, *act, T, k); return;
    case HEARTH_DTYPE_Q4_0: gemm_q_kernel<HEARTH_DTYPE_Q4_0><<<grid, 128, 0, st>>>(*w, y, *act, T, k); return;
    case HEARTH_DTYPE_Q4_K: gemm_q_kernel<HEARTH_DTYPE_Q4_K><<<grid, 128, 0, st>>>(*w, y, *act, T, k); return;
    default: break;
  }
  gemm_simt_kernel<<<grid, 256, 0, st>>>(*w, y, x, T, k);
}

void hc_matmul(cudaStream_t st, const hc_targets* tg, const float* x, const hc_qact* act, int32_t T, int64_t k) {
  const int small = T <= HC_MATVEC_MAX_T;
  if (tg->swiglu) {
    const hc_weight *g = &tg->w[0], *u = &tg->w[1];
    if (small && g->dtype == u->dtype && matvec_ok(g, k)) {
      mm_job j;
      memset(&j, 0, sizeof j);
      j.w[0] = *g, j.w[1] = *u, j.y[0] = tg->y[0], j.y[1] = tg->y[1], j.n = 2, j.x = x, j.act = *act, j.T = T, j.k = k;
      const int32_t blocks = (int32_t)((g->rows + MV_WARPS - 1) / MV_WARPS);
      j.first_block[0] = 0, j.first_block[1] = blocks, j.first_block[2] = blocks;
      launch_matvec<true>(st, j, g->dtype, blocks);
      return;
    }
    hc_targets plain = *tg;
    plain.swiglu = 0;
    hc_matmul(st, &plain, x, act, T, k);
    hc_swiglu(st, tg->y[0], tg->y[1], (int64_t)T * g->rows);
    return;
  }
  /* Decode: the targets of one dtype in one launch; tiles: one launch per target. */
  int32_t done[3] = {0, 0, 0};
  for (int32_t i = 0; i < tg->n; i++) {
    if (done[i]) continue;
    if (!small || !matvec_ok(&tg->w[i], k)) {
      launch_tiles(st, &tg->w[i], tg->y[i], x, act, T, k);
      done[i] = 1;
      continue;
    }
    mm_job j;
    memset(&j, 0, sizeof j);
    j.x = x, j.act = *act, j.T = T, j.k = k;
    int32_t blocks = 0;
    for (int32_t t = i; t < tg->n; t++) {
      if (done[t] || tg->w[t].dtype != tg->w[i].dtype || !matvec_ok(&tg->w[t], k)) continue;
      j.w[j.n] = tg->w[t];
      j.y[j.n] = tg->y[t];
      j.first_block[j.n] = blocks;
      blocks += (int32_t)((tg->w[t].rows + MV_WARPS - 1) / MV_WARPS);
      j.n++;
      done[t] = 1;
    }
    for (int32_t t = j.n; t < 4; t++) j.first_block[t] = blocks;
    launch_matvec<false>(st, j, tg->w[i].dtype, blocks);
  }
}
