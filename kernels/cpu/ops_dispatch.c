/*
 * ops_dispatch.c — picks the kernel table for this CPU once. HEARTH_ISA=c|avx2|avx512 asks for a
 * particular path (tests use it to check every path against the goldens); a path the CPU lacks is
 * never taken.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static const hearth_cpu_ops* chosen;

static const hearth_cpu_ops* best_for_cpu(void) {
#if defined(__x86_64__) || defined(_M_X64)
  __builtin_cpu_init();
  int has_avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                   __builtin_cpu_supports("avx512vl");
  int has_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
  const char* want = getenv("HEARTH_ISA");
  if (want && strcmp(want, "c") == 0) return &hearth_ops_c;
  if (want && strcmp(want, "avx2") == 0 && has_avx2) return &hearth_ops_avx2;
  if (has_avx512) return &hearth_ops_avx512;
  if (has_avx2) return &hearth_ops_avx2;
#endif
  return &hearth_ops_c;
}

const hearth_cpu_ops* hearth_cpu_ops_get(void) {
  /* Racing first calls compute the same answer, so a plain store is enough. */
  if (!chosen) chosen = best_for_cpu();
  return chosen;
}

/* ---------------------------------------------------------------------------------------------------- */
/* Test-only exports (test/engine/attention_op_test.ts): each table's kernels, called directly.            */

/* Table i of those this CPU runs (0: "c", then "avx2", "avx512" where present), or NULL. */
static const hearth_cpu_ops* table_at(int32_t i) {
  if (i == 0) return &hearth_ops_c;
#if defined(__x86_64__) || defined(_M_X64)
  __builtin_cpu_init();
  const int has_avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                         __builtin_cpu_supports("avx512vl");
  const int has_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                       __builtin_cpu_supports("f16c");
  if (i == 1 && has_avx2) return &hearth_ops_avx2;
  if (i == 2 && has_avx512) return &hearth_ops_avx512;
#endif
  return NULL;
}

HEARTH_API const char* hearth_test_ops_isa_name(int32_t i) {
  const hearth_cpu_ops* t = table_at(i);
  return t ? t->isa : NULL;
}

/* to_f16 of table isa: dst (n) = src (n) as f16 bits; -1 when the table is absent. */
HEARTH_API int32_t hearth_test_to_f16(int32_t isa, uint16_t* dst, const float* src, int64_t n) {
  const hearth_cpu_ops* t = table_at(isa);
  if (!t || n < 0) return -1;
  t->to_f16(dst, src, n);
  return 0;
}

/* argmax of table isa over w (n); -1 when the table is absent or n < 1. */
HEARTH_API int32_t hearth_test_argmax(int32_t isa, const float* w, int32_t n) {
  const hearth_cpu_ops* t = table_at(isa);
  if (!t || n < 1) return -1;
  return t->argmax(w, n);
}

/* attend_chunk of table isa over keys and values given as (nk, hd) arrays of kv_dtype (HEARTH_DTYPE_F32
   or HEARTH_DTYPE_F16, as a KV cache holds them); -1 when the table is absent or the sizes or the type
   are out of range. */
HEARTH_API int32_t hearth_test_attend_chunk(int32_t isa, float* acc, float* m, float* l, const float* q,
                                            int32_t nq, int32_t hd, const void* keys, const void* values,
                                            int32_t kv_dtype, int32_t nk, const int32_t* lo, const int32_t* hi,
                                            float scale) {
  const hearth_cpu_ops* t = table_at(isa);
  if (!t || nq < 1 || hd < 1 || hd > 1024 || nk < 1 || nk > HEARTH_ATT_KC ||
      (kv_dtype != HEARTH_DTYPE_F32 && kv_dtype != HEARTH_DTYPE_F16))
    return -1;
  const size_t row = (size_t)hd * (kv_dtype == HEARTH_DTYPE_F16 ? 2 : 4);
  const void* k[HEARTH_ATT_KC];
  const void* v[HEARTH_ATT_KC];
  for (int32_t j = 0; j < nk; j++) {
    k[j] = (const uint8_t*)keys + (size_t)j * row;
    v[j] = (const uint8_t*)values + (size_t)j * row;
  }
  float* scratch = hearth_alloc(HEARTH_ATT_SCRATCH(nq, hd), sizeof(float));
  if (!scratch) return -1;
  t->attend_chunk(acc, m, l, q, nq, hd, k, v, kv_dtype == HEARTH_DTYPE_F16, nk, lo, hi, scale, scratch);
  hearth_free_aligned(scratch);
  return 0;
}

/* The float panels of table isa (ops->pack, matmul_packed, unpack_row) against its matmul on the rows:
   y_packed and y_rows (T, n), rows_out (n, k) the rows unpacked as floats. 0 when done, 1 when the table
   has no panel layout for this dtype and shape, -1 when the table is absent, the arguments are out of
   range or the panels cannot be allocated. */
HEARTH_API int32_t hearth_test_float_panels(int32_t isa, float* y_packed, float* y_rows, float* rows_out,
                                            const void* w, int32_t dtype, const float* x, int64_t T, int64_t n,
                                            int64_t k) {
  const hearth_cpu_ops* t = table_at(isa);
  if (!t || T < 1 || n < 1 || k < 1 || n > 1 << 20 || k > 1 << 20 || dtype < 0 || dtype >= HEARTH_N_FLOAT_DTYPES)
    return -1;
  const size_t bytes = t->pack_bytes ? t->pack_bytes(dtype, n, k) : 0;
  if (bytes == 0) return 1;
  void* panels = hearth_alloc(bytes, 1);
  if (!panels) return -1;
  t->pack(panels, w, dtype, n, k);
  t->matmul_packed(y_packed, n, panels, dtype, x, T, n, k);
  t->matmul(y_rows, n, w, dtype, x, T, n, k);
  for (int64_t r = 0; r < n; r++) t->unpack_row(rows_out + r * k, panels, dtype, r, k);
  hearth_free_aligned(panels);
  return 0;
}
