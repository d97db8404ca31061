/*
 * vector_ops.c — how many AVX2 integer vector operations one core of this machine retires per cycle, and
 * what that allows the Q8_0 products (quant_avx2.c's panels) at batch sizes where they compute rather
 * than wait on memory: the ceiling of batched decode and prefill on such weights. Used to explain
 * bench:serve's 16-stream figure (README, "Serving many streams").
 *
 *   cc -O3 -mavx2 bench/vector_ops.c -o /tmp/vector_ops && /tmp/vector_ops
 *
 * The clock: a chain of dependent scalar adds (one per cycle). Each op: 8 independent chains of it, so
 * latency does not limit it (VPMADD* take 3 cycles, 8 chains cover 2 per cycle). The Q8_0 step: per 32
 * multiply-adds and token VPABSB, VPSIGNB (x takes w's sign), VPMADDUBSW (|w| x, int16 pairs),
 * VPMADDWD (widen: two groups' pairs can overflow int16), VPADDD, as the kernel does it (which shares
 * the VPABSB among 4 tokens), 8 tokens' chains side by side; its rate x 32 x the clock is the ceiling.
 */
#include <immintrin.h>
#include <stdio.h>
#include <time.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Initial values the compiler cannot see, so the chains are not folded into one. */
static volatile int seed[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

#define N 50000000L
#define CHAINS(OP)                                                                                          \
  do {                                                                                                      \
    __m256i a0 = _mm256_set1_epi32(seed[0]), a1 = _mm256_set1_epi32(seed[1]), a2 = _mm256_set1_epi32(seed[2]); \
    __m256i a3 = _mm256_set1_epi32(seed[3]), a4 = _mm256_set1_epi32(seed[4]), a5 = _mm256_set1_epi32(seed[5]); \
    __m256i a6 = _mm256_set1_epi32(seed[6]), a7 = _mm256_set1_epi32(seed[7]), x = _mm256_set1_epi32(seed[8]);  \
    const double t0 = now();                                                                                \
    for (long i = 0; i < N; i++) {                                                                          \
      a0 = OP(a0, x); a1 = OP(a1, x); a2 = OP(a2, x); a3 = OP(a3, x);                                       \
      a4 = OP(a4, x); a5 = OP(a5, x); a6 = OP(a6, x); a7 = OP(a7, x);                                       \
      __asm__ volatile("" ::"x"(a0), "x"(a1), "x"(a2), "x"(a3), "x"(a4), "x"(a5), "x"(a6), "x"(a7));         \
    }                                                                                                       \
    per_cycle = (double)N * 8 * OPS_PER / (now() - t0) / 1e9 / ghz;                                         \
    sink += _mm256_extract_epi32(a0, 0) + _mm256_extract_epi32(a7, 1);                                      \
  } while (0)

#define ADD(v, x) _mm256_add_epi32(v, x)
#define SIGN(v, x) _mm256_sign_epi8(v, x)
#define MADDUBS(v, x) _mm256_maddubs_epi16(v, x)
#define MADDWD(v, x) _mm256_madd_epi16(v, x)
/* One token's Q8_0 step on one group; the chain runs through the accumulator (VPADDD), as in the kernel. */
#define Q8_STEP(acc, w) \
  _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(acc, w)), w))

int main(void) {
  int sink = 0;
  long s = seed[0];
  double t0 = now();
  for (long i = 0; i < 4 * N; i++) __asm__ volatile("add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0" : "+r"(s));
  const double ghz = 16.0 * N / (now() - t0) / 1e9;
  double per_cycle;
  printf("{\"ghz\": %.2f", ghz);
#define OPS_PER 1
  CHAINS(ADD);
  printf(", \"vpaddd\": %.2f", per_cycle);
  CHAINS(SIGN);
  printf(", \"vpsignb\": %.2f", per_cycle);
  CHAINS(MADDUBS);
  printf(", \"vpmaddubsw\": %.2f", per_cycle);
  CHAINS(MADDWD);
  printf(", \"vpmaddwd\": %.2f", per_cycle);
#undef OPS_PER
#define OPS_PER 1 /* counted in steps: abs, sign, maddubs, maddwd, add */
  CHAINS(Q8_STEP);
  printf(", \"q8_0_steps\": %.2f, \"q8_0_gmacs_per_core\": %.1f}\n", per_cycle, per_cycle * 32 * ghz);
  return (sink + (int)s) == 42;
}
