/* common.c — aligned allocation and the library's identity (errors: ../include/hearth_fail.h). */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "internal.h"

/* Buffers of at least LARGE_ALLOC bytes (packed weights, the KV cache) are aligned to 2 MiB and advised
   to be backed by transparent huge pages: a decode streams every weight once per token, and with 4 KiB
   pages that is a TLB miss and a page walk every 4 KiB (measured: about 20 % more decode tokens/s on a
   Q8_0 model, Zen 3, THP in its common "madvise" mode). HEARTH_HUGEPAGES=0 turns it off. Pages are
   still committed only when first touched. */
#define HUGE_PAGE ((size_t)2 << 20)
#define LARGE_ALLOC (2 * HUGE_PAGE)

static int huge_pages_wanted(void) {
  static int wanted = -1;
  if (wanted < 0) {
    const char* e = getenv("HEARTH_HUGEPAGES");
    wanted = !(e && strcmp(e, "0") == 0);
  }
  return wanted;
}

static void* alloc_bytes(size_t bytes) {
  void* p = NULL;
#ifdef MADV_HUGEPAGE
  if (bytes >= LARGE_ALLOC && huge_pages_wanted()) {
    const size_t rounded = (bytes + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
    if (rounded < bytes || posix_memalign(&p, HUGE_PAGE, rounded) != 0) return NULL;
    madvise(p, rounded, MADV_HUGEPAGE); /* advice only: without THP the pages are just small */
    return p;
  }
#endif
  return posix_memalign(&p, 64, bytes) == 0 ? p : NULL;
}

void* hearth_alloc(size_t count, size_t size) {
  if (count == 0 || size == 0) count = 1, size = 1;
  if (count > SIZE_MAX / size) return NULL;
  size_t bytes = count * size;
  bytes = (bytes + 63) & ~(size_t)63;
  void* p = alloc_bytes(bytes);
  if (p) memset(p, 0, bytes);
  return p;
}

void* hearth_alloc_uninit(size_t count, size_t size) {
  if (count == 0 || size == 0) count = 1, size = 1;
  if (count > SIZE_MAX / size) return NULL;
  size_t bytes = (count * size + 63) & ~(size_t)63;
  return alloc_bytes(bytes);
}

void hearth_free_aligned(void* p) { free(p); }

uint64_t hearth_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int32_t hearth_abi_version(void) { return HEARTH_ABI_VERSION; }

const char* hearth_cpu_isa(void) { return hearth_cpu_ops_get()->isa; }
