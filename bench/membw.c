/*
 * Memory read bandwidth of this machine: THREADS threads sum their share of one SIZE_MIB array of
 * 64-bit integers (written first, each thread its own share, so its pages are where that thread runs),
 * REPS times; prints the best pass and the mean over all passes (the bytes of every pass over their total
 * time: what the memory sustained while it ran) as JSON: {"gbps": best, "mean_gbps": ..., "threads": ...,
 * "mib": ..., "reps": ...}. GB here is 1e9 bytes.
 *
 *   cc -O3 -march=native -pthread bench/membw.c -o membw && ./membw [THREADS] [SIZE_MIB] [REPS]
 *
 * bench/gguf_bench.ts compiles and runs it to put decode speeds against the bandwidth limit. The
 * array is far larger than any cache, so each pass reads DRAM; the sum is printed so the reads stay.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static uint64_t *data;
static size_t words_total;
static int nthreads;
static pthread_barrier_t barrier;
static double pass_seconds[64];
static uint64_t sink[64];
static int reps;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void *worker(void *arg) {
  int t = (int)(intptr_t)arg;
  size_t per = words_total / (size_t)nthreads;
  uint64_t *p = data + (size_t)t * per;
  for (size_t i = 0; i < per; i++) p[i] = i ^ (uint64_t)t;
  uint64_t total = 0;
  for (int r = 0; r < reps; r++) {
    pthread_barrier_wait(&barrier);
    double t0 = now();
    /* Eight independent sums: the compiler vectorises this into wide loads. */
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
    for (size_t i = 0; i + 8 <= per; i += 8) {
      s0 += p[i];
      s1 += p[i + 1];
      s2 += p[i + 2];
      s3 += p[i + 3];
      s4 += p[i + 4];
      s5 += p[i + 5];
      s6 += p[i + 6];
      s7 += p[i + 7];
    }
    total += s0 + s1 + s2 + s3 + s4 + s5 + s6 + s7;
    pthread_barrier_wait(&barrier);
    if (t == 0) pass_seconds[r] = now() - t0;
  }
  sink[t] = total;
  return NULL;
}

int main(int argc, char **argv) {
  nthreads = argc > 1 ? atoi(argv[1]) : 2;
  size_t mib = argc > 2 ? (size_t)atol(argv[2]) : 1024;
  reps = argc > 3 ? atoi(argv[3]) : 10;
  if (nthreads < 1 || nthreads > 64 || reps < 1 || reps > 64 || mib < 1) {
    fprintf(stderr, "usage: membw [THREADS 1..64] [SIZE_MIB] [REPS 1..64]\n");
    return 2;
  }
  words_total = mib * 1024 * 1024 / sizeof(uint64_t);
  words_total -= words_total % (size_t)(8 * nthreads);
  /* In transparent huge pages where the kernel offers them, as the engine keeps its weights: with 4 KiB
     pages the loop reads 10-20 % slower here (a TLB miss every page, prefetchers stopping at its end). */
  if (posix_memalign((void **)&data, 2u << 20, words_total * sizeof(uint64_t)) != 0) {
    fprintf(stderr, "membw: cannot allocate %zu MiB\n", mib);
    return 1;
  }
#ifdef MADV_HUGEPAGE
  madvise(data, words_total * sizeof(uint64_t), MADV_HUGEPAGE); /* advice: without THP the pages stay small */
#endif
  pthread_barrier_init(&barrier, NULL, (unsigned)nthreads);
  pthread_t threads[64];
  for (int t = 0; t < nthreads; t++) pthread_create(&threads[t], NULL, worker, (void *)(intptr_t)t);
  for (int t = 0; t < nthreads; t++) pthread_join(threads[t], NULL);
  double best = pass_seconds[0], sum = 0;
  for (int r = 0; r < reps; r++) {
    if (pass_seconds[r] < best) best = pass_seconds[r];
    sum += pass_seconds[r];
  }
  uint64_t check = 0;
  for (int t = 0; t < nthreads; t++) check ^= sink[t];
  double bytes = (double)words_total * sizeof(uint64_t);
  printf("{\"gbps\": %.3f, \"mean_gbps\": %.3f, \"threads\": %d, \"mib\": %zu, \"reps\": %d, \"check\": %llu}\n",
         bytes / best / 1e9, bytes * reps / sum / 1e9, nthreads, mib, reps, (unsigned long long)(check & 0xffff));
  free(data);
  return 0;
}
