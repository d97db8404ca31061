/* common.c — aligned allocation and the library's identity (errors: ../include/hearth_fail.h). */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void* hearth_alloc(size_t count, size_t size) {
  if (count == 0 || size == 0) count = 1, size = 1;
  if (count > SIZE_MAX / size) return NULL;
  size_t bytes = count * size;
  bytes = (bytes + 63) & ~(size_t)63;
  void* p = NULL;
  if (posix_memalign(&p, 64, bytes) != 0) return NULL;
  memset(p, 0, bytes);
  return p;
}

void* hearth_alloc_uninit(size_t count, size_t size) {
  if (count == 0 || size == 0) count = 1, size = 1;
  if (count > SIZE_MAX / size) return NULL;
  size_t bytes = (count * size + 63) & ~(size_t)63;
  void* p = NULL;
  return posix_memalign(&p, 64, bytes) == 0 ? p : NULL;
}

void hearth_free_aligned(void* p) { free(p); }

int32_t hearth_abi_version(void) { return HEARTH_ABI_VERSION; }

const char* hearth_cpu_isa(void) { return hearth_cpu_ops_get()->isa; }
