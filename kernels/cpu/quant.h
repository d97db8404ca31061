/*
 * quant.h — the CPU backend's block-quantized kernels (formats: ../include/hearth_quant.h).
 *
 * A matrix product with quantized weights W (n rows of k values, of dtype w_dtype) first quantizes the
 * activations per token (hearth_quant_act: Q8_0 blocks for the 32-element types, Q8_K blocks for the
 * K-quants), then takes integer dot products block by block (hearth_quant_matmul).
 *
 * k must be a multiple of the weight type's block (32, or 256 for the K-quants): hearth_quant_act_bytes
 * and hearth_quant_row_bytes return 0 otherwise, and hearth_quant_act / hearth_quant_matmul /
 * hearth_dequantize_row then write nothing. Any n >= 0 and T >= 0 work.
 *
 * The dot products are compiled per instruction set (plain C; AVX2; AVX-512BW; AVX-512 with VNNI) and
 * one table is picked at run time like hearth_cpu_ops_get (HEARTH_ISA=c|avx2|avx512 asks for one);
 * where the CPU has AMX, the AMX table takes each 16-token tile of a product on matrices packed at load
 * (quant_amx.c) and leaves the rest to the VNNI products on the same panels (quant_panels512.c), with the
 * same bits per token either way.
 * None of these functions allocates; all are thread-safe (the forward pass splits rows over threads
 * and calls hearth_quant_matmul on each part).
 */
#ifndef HEARTH_CPU_QUANT_H
#define HEARTH_CPU_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "../include/hearth_quant.h"

/* Bytes of the quantized activations for T rows of k values, for weights of w_dtype; 0 when w_dtype is
   not quantized or k is not a multiple of its block. Row t starts at t * hearth_quant_act_bytes(w, 1, k). */
size_t hearth_quant_act_bytes(int32_t w_dtype, int64_t T, int64_t k);
/* Quantizes T rows of k floats (row t at x + t * k) for dot products with weights of w_dtype. */
void hearth_quant_act(int32_t w_dtype, const float* x, int64_t T, int64_t k, void* out);
/* Y[t * ldy + r] = dot(W[r, :], X[t]) for r in [0, n), t in [0, T): W rows of w_dtype (row r at
   w + r * hearth_quant_row_bytes(w_dtype, k)), X as hearth_quant_act made it. */
void hearth_quant_matmul(float* y, int64_t ldy, const void* w, int32_t w_dtype, const void* x_act, int64_t T,
                         int64_t n, int64_t k);
/* dst[i] = value of element i of a row of n elements of dtype (any dtype, F32/F16/BF16 included). */
void hearth_dequantize_row(int32_t dtype, const void* src, float* dst, int64_t n);
/* Quantize-on-load: n floats (a multiple of the block) into dst of hearth_quant_row_bytes(dtype, n)
   bytes; dtype in {Q8_0, Q4_0, Q4_K}. Q8_0 and Q4_0 round exactly as GGML's reference quantizer (and
   the gguf Python package) do. Returns 0, or -1 for an unsupported dtype or a bad n. */
int32_t hearth_quantize_row(int32_t dtype, const float* src, void* dst, int64_t n);

/* One table of dot-product kernels. */
typedef struct {
  const char* isa; /* "c", "avx2", "avx512", "avx512vnni", "amx" */
  /* Same contract as hearth_quant_matmul; w_dtype quantized, k a multiple of its block. */
  void (*matmul)(float* y, int64_t ldy, const void* w, int32_t w_dtype, const void* x_act, int64_t T,
                 int64_t n, int64_t k);
  /* Same contract as hearth_quant_act; every table writes the same bytes as the C one. */
  void (*quant_act)(int32_t w_dtype, const float* x, int64_t T, int64_t k, void* out);
  /* Optional (NULL, or 0 for a dtype: the matrix stays as stored). A table's own layout of a weight matrix,
     made once at load: bytes for n rows of k (rows padded up to the table's panel of HEARTH_QUANT_PANEL);
     pack writes it; matmul_packed is matmul on it, wp pointing at the panel of the first row wanted (rows
     r0 = a multiple of the panel start at byte r0 * hearth_quant_row_bytes(dtype, k)). */
  size_t (*pack_bytes)(int32_t w_dtype, int64_t n, int64_t k);
  void (*pack)(void* dst, const void* w, int32_t w_dtype, int64_t n, int64_t k);
  void (*matmul_packed)(float* y, int64_t ldy, const void* wp, int32_t w_dtype, const void* x_act, int64_t T,
                        int64_t n, int64_t k);
} hearth_quant_ops;

/* Rows per panel of a packed layout, a multiple of every table's (AVX2: 8, AVX-512 VNNI and AMX: 16): a
   slice of a packed matrix given to matmul_packed starts at a multiple of it. */
#define HEARTH_QUANT_PANEL 16

/* The chosen table's packed layout (0 / nothing where it has none for w_dtype), and its product. */
size_t hearth_quant_pack_bytes(int32_t w_dtype, int64_t n, int64_t k);
void hearth_quant_pack(void* dst, const void* w, int32_t w_dtype, int64_t n, int64_t k);
void hearth_quant_matmul_packed(float* y, int64_t ldy, const void* wp, int32_t w_dtype, const void* x_act,
                                int64_t T, int64_t n, int64_t k);

extern const hearth_quant_ops hearth_quant_ops_c;
#if defined(__x86_64__) || defined(_M_X64)
extern const hearth_quant_ops hearth_quant_ops_avx2;
extern const hearth_quant_ops hearth_quant_ops_avx512;
extern const hearth_quant_ops hearth_quant_ops_avx512vnni;
/* AMX-INT8 tiles for T >= 16 tokens (quant_amx.c), the VNNI table otherwise; offered only where the
   CPU has AMX-INT8 and the OS grants the tile state. */
extern const hearth_quant_ops hearth_quant_ops_amx;
#endif

/* The table for this CPU (HEARTH_ISA=c|avx2|avx512|amx is respected as by hearth_cpu_ops_get; "avx512"
   takes the VNNI table when the CPU has VNNI, never AMX; unset or "amx": AMX where available). */
const hearth_quant_ops* hearth_quant_ops_get(void);

/* Every table this CPU can run, best last: tables[0] is the C one. Returns how many (<= HEARTH_QUANT_MAX_TABLES). */
#define HEARTH_QUANT_MAX_TABLES 5
int32_t hearth_quant_ops_available(const hearth_quant_ops** tables, int32_t cap);


#endif
