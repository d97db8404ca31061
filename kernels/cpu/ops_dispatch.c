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
