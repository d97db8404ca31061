/*
 * quant_dispatch.c — picks the quantized dot-product table for this CPU once (HEARTH_ISA=c|avx2|avx512
 * as in ops_dispatch.c, and amx), the public entry points that go through it, and the test-only exports
 * (hearth_test_*) that test/quant/ reaches through FFI.
 */
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#endif
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "internal.h"
#include "quant.h"

static const hearth_quant_ops* chosen;

#if defined(__x86_64__) || defined(_M_X64)
static int cpu_has_avx2(void) {
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
}
static int cpu_has_avx512(void) {
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") && cpu_has_avx2();
}
static int cpu_has_avx512vnni(void) { return cpu_has_avx512() && __builtin_cpu_supports("avx512vnni"); }

/*
 * AMX-INT8: CPUID leaf 7 EDX bits 24 (AMX-TILE) and 25 (AMX-INT8), the OS saving the tile state (XCR0
 * bits 17, 18), and on Linux a one-time request for permission to use the tile data (arch_prctl
 * ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA); without it the first tile instruction would fault. Any
 * failure: no AMX table. Racing first calls compute the same answer.
 */
static int cpu_has_amx(void) {
  static int state = -1;
  if (state >= 0) return state;
  int ok = 0;
#if defined(__linux__)
  unsigned a, b, c, d;
  if (cpu_has_avx512vnni() && __get_cpuid_count(7, 0, &a, &b, &c, &d) && (d >> 24 & 3) == 3 &&
      __get_cpuid(1, &a, &b, &c, &d) && (c >> 27 & 1) /* OSXSAVE */) {
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo >> 17 & 3) == 3) ok = syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XTILEDATA */) == 0;
  }
#endif
  state = ok;
  return ok;
}
#endif

int32_t hearth_quant_ops_available(const hearth_quant_ops** tables, int32_t cap) {
  const hearth_quant_ops* all[HEARTH_QUANT_MAX_TABLES];
  int32_t n = 0;
  all[n++] = &hearth_quant_ops_c;
#if defined(__x86_64__) || defined(_M_X64)
  __builtin_cpu_init();
  if (cpu_has_avx2()) all[n++] = &hearth_quant_ops_avx2;
  if (cpu_has_avx512()) all[n++] = &hearth_quant_ops_avx512;
  if (cpu_has_avx512vnni()) all[n++] = &hearth_quant_ops_avx512vnni;
  if (cpu_has_amx()) all[n++] = &hearth_quant_ops_amx;
#endif
  for (int32_t i = 0; i < n && i < cap; i++) tables[i] = all[i];
  return n;
}

static const hearth_quant_ops* best_for_cpu(void) {
#if defined(__x86_64__) || defined(_M_X64)
  __builtin_cpu_init();
  const char* want = getenv("HEARTH_ISA");
  if (want && strcmp(want, "c") == 0) return &hearth_quant_ops_c;
  if (want && strcmp(want, "avx2") == 0 && cpu_has_avx2()) return &hearth_quant_ops_avx2;
  const int plain_avx512 = want && strcmp(want, "avx512") == 0; /* the AVX-512 kernels without AMX */
  if (!plain_avx512 && cpu_has_amx()) return &hearth_quant_ops_amx;
  if (cpu_has_avx512vnni()) return &hearth_quant_ops_avx512vnni;
  if (cpu_has_avx512()) return &hearth_quant_ops_avx512;
  if (cpu_has_avx2()) return &hearth_quant_ops_avx2;
#endif
  return &hearth_quant_ops_c;
}

const hearth_quant_ops* hearth_quant_ops_get(void) {
  /* Racing first calls compute the same answer, so a plain store is enough. */
  if (!chosen) chosen = best_for_cpu();
  return chosen;
}

void hearth_quant_matmul(float* y, int64_t ldy, const void* w, int32_t w_dtype, const void* x_act, int64_t T,
                         int64_t n, int64_t k) {
  if (!hearth_dtype_is_quantized(w_dtype) || hearth_quant_row_bytes(w_dtype, k) <= 0 || n <= 0 || T <= 0) return;
  hearth_quant_ops_get()->matmul(y, ldy, w, w_dtype, x_act, T, n, k);
}

size_t hearth_quant_pack_bytes(int32_t w_dtype, int64_t n, int64_t k) {
  const hearth_quant_ops* t = hearth_quant_ops_get();
  if (!t->pack_bytes || n <= 0 || hearth_quant_row_bytes(w_dtype, k) <= 0) return 0;
  return t->pack_bytes(w_dtype, n, k);
}

void hearth_quant_pack(void* dst, const void* w, int32_t w_dtype, int64_t n, int64_t k) {
  if (hearth_quant_pack_bytes(w_dtype, n, k) > 0) hearth_quant_ops_get()->pack(dst, w, w_dtype, n, k);
}

void hearth_quant_matmul_packed(float* y, int64_t ldy, const void* wp, int32_t w_dtype, const void* x_act,
                                int64_t T, int64_t n, int64_t k) {
  if (T <= 0 || hearth_quant_pack_bytes(w_dtype, n, k) == 0) return;
  hearth_quant_ops_get()->matmul_packed(y, ldy, wp, w_dtype, x_act, T, n, k);
}

void hearth_quant_act(int32_t w_dtype, const float* x, int64_t T, int64_t k, void* out) {
  if (hearth_quant_act_bytes(w_dtype, 1, k) == 0 || T <= 0) return;
  hearth_quant_ops_get()->quant_act(w_dtype, x, T, k, out);
}

/* ---------------------------------------------------------------------------------------------------- */
/* Test-only exports                                                                                      */

/* Name of table i of hearth_quant_ops_available (-1: the one hearth_quant_ops_get picked), or NULL. */
HEARTH_API const char* hearth_test_quant_isa_name(int32_t i) {
  if (i < 0) return hearth_quant_ops_get()->isa;
  const hearth_quant_ops* t[HEARTH_QUANT_MAX_TABLES];
  return i < hearth_quant_ops_available(t, HEARTH_QUANT_MAX_TABLES) ? t[i]->isa : NULL;
}

HEARTH_API int32_t hearth_test_quant_isa_count(void) {
  const hearth_quant_ops* t[HEARTH_QUANT_MAX_TABLES];
  return hearth_quant_ops_available(t, HEARTH_QUANT_MAX_TABLES);
}

HEARTH_API int64_t hearth_test_quant_row_bytes(int32_t dtype, int64_t n) { return hearth_quant_row_bytes(dtype, n); }

HEARTH_API int64_t hearth_test_quant_act_bytes(int32_t dtype, int64_t T, int64_t k) {
  return (int64_t)hearth_quant_act_bytes(dtype, T, k);
}

HEARTH_API int32_t hearth_test_dequantize_row(int32_t dtype, const void* src, float* dst, int64_t n) {
  if (hearth_quant_row_bytes(dtype, n) <= 0) return -1;
  hearth_dequantize_row(dtype, src, dst, n);
  return 0;
}

HEARTH_API int32_t hearth_test_quantize_row(int32_t dtype, const float* src, void* dst, int64_t n) {
  return hearth_quantize_row(dtype, src, dst, n);
}

/* hearth_quant_act (isa -1) or table isa's quant_act. Returns 0, or -1 for a bad dtype / k / isa. */
HEARTH_API int32_t hearth_test_quant_act(int32_t isa, int32_t dtype, const float* x, int64_t T, int64_t k,
                                         void* out) {
  const hearth_quant_ops* t[HEARTH_QUANT_MAX_TABLES];
  if (hearth_quant_act_bytes(dtype, 1, k) == 0 || T <= 0 || isa >= hearth_quant_ops_available(t, HEARTH_QUANT_MAX_TABLES)) return -1;
  if (isa < 0) hearth_quant_act(dtype, x, T, k, out);
  else t[isa]->quant_act(dtype, x, T, k, out);
  return 0;
}

/*
 * Quantizes the activations x (T rows of k) for dtype, then y = W x with table `isa` (an index of
 * hearth_quant_ops_available, or -1 for the public hearth_quant_matmul). Returns 0, or -1 for a bad
 * dtype / k / isa or a failed allocation.
 */
HEARTH_API int32_t hearth_test_quant_matmul(int32_t isa, float* y, int64_t ldy, const void* w, int32_t dtype,
                                            const float* x, int64_t T, int64_t n, int64_t k) {
  const size_t bytes = hearth_quant_act_bytes(dtype, T, k);
  if (bytes == 0 || T <= 0 || n < 0) return -1;
  const hearth_quant_ops* t[HEARTH_QUANT_MAX_TABLES];
  const int32_t count = hearth_quant_ops_available(t, HEARTH_QUANT_MAX_TABLES);
  if (isa >= count) return -1;
  void* xa = malloc(bytes);
  if (!xa) return -1;
  if (isa < 0) hearth_quant_act(dtype, x, T, k, xa);
  else t[isa]->quant_act(dtype, x, T, k, xa);
  if (isa < 0) hearth_quant_matmul(y, ldy, w, dtype, xa, T, n, k);
  else t[isa]->matmul(y, ldy, w, dtype, xa, T, n, k);
  free(xa);
  return 0;
}

/* Bytes of table isa's packed layout of an (n, k) matrix of dtype (0: it has none). */
HEARTH_API int64_t hearth_test_quant_pack_bytes(int32_t isa, int32_t dtype, int64_t n, int64_t k) {
  const hearth_quant_ops* t[HEARTH_QUANT_MAX_TABLES];
  if (isa < 0 || isa >= hearth_quant_ops_available(t, HEARTH_QUANT_MAX_TABLES) || !t[isa]->pack_bytes) return 0;
  if (n <= 0 || hearth_quant_row_bytes(dtype, k) <= 0) return 0;
  return (int64_t)t[isa]->pack_bytes(dtype, n, k);
}

/*
 * Table isa's packed product: packs w (n, k) into its layout, quantizes x (T, k), and multiplies rows
 * [r0, n) (r0 a multiple of HEARTH_QUANT_PANEL) into y. Returns 0, or -1 where the table has no packed
 * layout for dtype, a bad argument, or a failed allocation.
 */
HEARTH_API int32_t hearth_test_quant_matmul_packed(int32_t isa, float* y, int64_t ldy, const void* w, int32_t dtype,
                                                   const float* x, int64_t T, int64_t n, int64_t k, int64_t r0) {
  const size_t bytes = (size_t)hearth_test_quant_pack_bytes(isa, dtype, n, k);
  const size_t act = hearth_quant_act_bytes(dtype, T, k);
  if (bytes == 0 || act == 0 || T <= 0 || r0 < 0 || r0 >= n || r0 % HEARTH_QUANT_PANEL) return -1;
  const hearth_quant_ops* t[HEARTH_QUANT_MAX_TABLES];
  hearth_quant_ops_available(t, HEARTH_QUANT_MAX_TABLES);
  void* wp = malloc(bytes);
  void* xa = malloc(act);
  if (!wp || !xa) {
    free(wp);
    free(xa);
    return -1;
  }
  t[isa]->pack(wp, w, dtype, n, k);
  t[isa]->quant_act(dtype, x, T, k, xa);
  t[isa]->matmul_packed(y, ldy, (const uint8_t*)wp + r0 * hearth_quant_row_bytes(dtype, k), dtype, xa, T, n - r0, k);
  free(wp);
  free(xa);
  return 0;
}

/* hearth_quant_matmul (isa -1) or table isa's matmul on activations already quantized. Returns 0 or -1. */
HEARTH_API int32_t hearth_test_quant_matmul_act(int32_t isa, float* y, int64_t ldy, const void* w, int32_t dtype,
                                                const void* x_act, int64_t T, int64_t n, int64_t k) {
  const hearth_quant_ops* t[HEARTH_QUANT_MAX_TABLES];
  if (isa >= hearth_quant_ops_available(t, HEARTH_QUANT_MAX_TABLES)) return -1;
  if (isa < 0) hearth_quant_matmul(y, ldy, w, dtype, x_act, T, n, k);
  else if (hearth_quant_act_bytes(dtype, T, k) > 0 && n > 0) t[isa]->matmul(y, ldy, w, dtype, x_act, T, n, k);
  else return -1;
  return 0;
}

/*
 * For benchmarks: `iters` products Y (T, n) = W X of the (n, k) matrix W, one thread. Quantized dtypes
 * take X as floats and quantize it on every iteration (as the forward pass will), with table isa (-1:
 * the chosen one), on W packed once into the table's own layout where it has one (as the model loader
 * does: the product the forward pass runs); F32/F16/BF16 use hearth_cpu_ops_get()'s matvec (T = 1) or
 * matmul. act: scratch of hearth_quant_act_bytes(dtype, T, k) bytes. *seconds: the iterations' time
 * (the packing left out). Returns 0, 1 when it ran the packed layout, or -1 (bad arguments, or no memory
 * for the packed copy: nothing is left allocated).
 */
HEARTH_API int32_t hearth_test_matmul_repeat(int32_t isa, const void* w, int32_t dtype, const float* x, void* act,
                                             float* y, int64_t T, int64_t n, int64_t k, int32_t iters,
                                             double* seconds) {
  uint64_t t0;
  if (T <= 0 || n <= 0) return -1;
  if (!hearth_dtype_is_quantized(dtype)) {
    if (dtype < HEARTH_DTYPE_F32 || dtype > HEARTH_DTYPE_BF16) return -1;
    const hearth_cpu_ops* ops = hearth_cpu_ops_get();
    t0 = hearth_now_ns();
    for (int32_t i = 0; i < iters; i++) {
      if (T == 1) ops->matvec(y, w, dtype, x, n, k);
      else ops->matmul(y, n, w, dtype, x, T, n, k);
    }
    *seconds = 1e-9 * (double)(hearth_now_ns() - t0);
    return 0;
  }
  const hearth_quant_ops* t[HEARTH_QUANT_MAX_TABLES];
  const int32_t count = hearth_quant_ops_available(t, HEARTH_QUANT_MAX_TABLES);
  if (isa >= count || hearth_quant_act_bytes(dtype, 1, k) == 0) return -1;
  const hearth_quant_ops* ops = isa < 0 ? hearth_quant_ops_get() : t[isa];
  const size_t packed_bytes = ops->pack_bytes ? ops->pack_bytes(dtype, n, k) : 0;
  void* packed = NULL;
  if (packed_bytes > 0) {
    if (!(packed = hearth_alloc_uninit(packed_bytes, 1))) return -1;
    ops->pack(packed, w, dtype, n, k);
  }
  t0 = hearth_now_ns();
  for (int32_t i = 0; i < iters; i++) {
    ops->quant_act(dtype, x, T, k, act);
    if (packed) ops->matmul_packed(y, n, packed, dtype, act, T, n, k);
    else ops->matmul(y, n, w, dtype, act, T, n, k);
  }
  *seconds = 1e-9 * (double)(hearth_now_ns() - t0);
  hearth_free_aligned(packed);
  return packed ? 1 : 0;
}
