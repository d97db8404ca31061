/*
 * threadpool.c — a persistent pool of worker threads for parallel loops.
 *
 * The caller of hearth_pool_run is thread 0 and works too. Each loop is a "generation": its number and
 * the next task to hand out share one 64-bit word, so a task is claimed (compare-and-swap) only while
 * its generation is the current one. The caller returns once every task of the loop is done; it does
 * not wait for workers that never woke up for it (a worker that slept through a short loop finds the
 * next one, or nothing, when it gets its core back), so a slow wake-up costs only that worker's share.
 *
 * A ranged loop (hearth_pool_run_ranged) splits its tasks into one contiguous range per thread instead:
 * each thread claims the tasks of its own range from the front, in order, then those of the other ranges
 * from their backs, so that the ranges' owners keep streaming in order while the others help at the ends.
 * A range is one word (generation, front, back) on a cache line of its own, claimed by compare-and-swap.
 *
 * A job (hearth_pool_submit) is a whole sequence of loops run by worker 1 as their caller, while the
 * thread that submitted it does other work and then joins those loops as thread 1 (hearth_pool_help):
 * the engine's JS thread hands a decode step over this way, writes the last step's tokens to their
 * clients while the step runs, then helps to finish it. No thread is added: while the JS thread is
 * away, the step has one thread fewer, never one more than the cores it was given.
 *
 * Workers wait for a new generation: they spin for a while (a decode step issues a parallel loop every
 * few microseconds, and between two steps the caller is away for tens of microseconds; waking a
 * sleeping thread costs more than that), then sleep on a condition variable.
 */
#if defined(__linux__)
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pthread_setname_np */
#endif
#endif
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "internal.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ __volatile__("yield")
#else
#define cpu_relax() ((void)0)
#endif

/* How long a worker with nothing to do spins before it sleeps, in nanoseconds. Measured by the clock,
   not by pauses: a pause takes 10 to 140 cycles depending on the CPU (27 ns on the Zen 3 VM this was
   tuned on). Longer than the gap between two decode steps (the step's sampling, then the caller's
   JavaScript: about 100 us), so a decoding worker does not sleep between steps. */
#define SPIN_NS 400000
/* Pauses the caller spins, waiting for the workers' last tasks, before it yields its core. */
#define CALLER_SPINS 2000

/* One thread's range of a ranged loop, in one word: generation (low RANGE_GEN_BITS bits) | first task not
   yet claimed | one past the last. Its owner claims from the front, the others from the back. */
#define RANGE_GEN_BITS 20
#define RANGE_TASK_BITS 22
#define RANGE_GEN_MASK ((1u << RANGE_GEN_BITS) - 1)
#define RANGE_TASK_MASK ((1u << RANGE_TASK_BITS) - 1)
typedef struct {
  _Alignas(64) atomic_ullong word;
} range_slot;

static unsigned long long range_pack(uint32_t gen, uint32_t front, uint32_t back) {
  return (unsigned long long)(gen & RANGE_GEN_MASK) << (2 * RANGE_TASK_BITS) |
         (unsigned long long)(front & RANGE_TASK_MASK) << RANGE_TASK_BITS | (back & RANGE_TASK_MASK);
}
static uint32_t range_gen(unsigned long long w) { return (uint32_t)(w >> (2 * RANGE_TASK_BITS)); }
static uint32_t range_front(unsigned long long w) { return (uint32_t)(w >> RANGE_TASK_BITS) & RANGE_TASK_MASK; }
static uint32_t range_back(unsigned long long w) { return (uint32_t)w & RANGE_TASK_MASK; }

struct hearth_pool {
  int32_t n_threads;
  pthread_t* threads; /* (n_threads - 1) workers */
  pthread_mutex_t mutex;
  pthread_cond_t wake;

  /* Loop g is described by loops[g % 2]: the caller fills the slot of the next generation while the
     current one may still be read, and reuses a slot only after the loop between has been published. */
  struct {
    _Atomic(hearth_task_fn) fn;
    _Atomic(void*) arg;
    atomic_int n_tasks;
    atomic_int ranged; /* tasks split into one range per thread (hearth_pool_run_ranged) */
  } loops[2];
  range_slot* ranges; /* (n_threads) each thread's range of a ranged loop */
  atomic_ullong next;    /* generation << 32 | next task to hand out */
  _Atomic(hearth_job_fn) job_fn; /* a submitted job worker 1 has not taken yet, or NULL */
  _Atomic(void*) job_arg;
  atomic_int job_running; /* from hearth_pool_submit until the job has returned */
  atomic_int done_tasks; /* tasks of the current generation finished */
  atomic_int stop;
};

typedef struct {
  hearth_pool* pool;
  int32_t index;
} worker_arg;

static uint32_t generation_of(unsigned long long next) { return (uint32_t)(next >> 32); }

/* Claims one task of range r for generation gen: from the front (the owner) or the back (a helper).
   Returns the task, -1 when the range is empty or belongs to another generation. */
static int32_t claim_in_range(hearth_pool* pool, int32_t r, uint32_t gen, int from_front) {
  range_slot* slot = &pool->ranges[r];
  unsigned long long w = atomic_load_explicit(&slot->word, memory_order_acquire);
  for (;;) {
    if (range_gen(w) != (gen & RANGE_GEN_MASK)) return -1;
    const uint32_t f = range_front(w), b = range_back(w);
    if (f >= b) return -1;
    const unsigned long long nw = from_front ? range_pack(gen, f + 1, b) : range_pack(gen, f, b - 1);
    if (atomic_compare_exchange_weak_explicit(&slot->word, &w, nw, memory_order_acquire, memory_order_acquire))
      return (int32_t)(from_front ? f : b - 1);
  }
}

/* A ranged loop: this thread's own range front to back, then the other ranges from their backs. The loop's
   function is read after a claim succeeded: the claim proves the loop is still current. */
static void run_ranged(hearth_pool* pool, uint32_t gen, int32_t thread) {
  hearth_task_fn fn = NULL;
  void* arg = NULL;
  int32_t done = 0;
  for (int32_t k = 0; k < pool->n_threads; k++) {
    const int32_t r = (thread + k) % pool->n_threads;
    int32_t task;
    while ((task = claim_in_range(pool, r, gen, k == 0)) >= 0) {
      if (!fn) {
        fn = atomic_load_explicit(&pool->loops[gen % 2].fn, memory_order_relaxed);
        arg = atomic_load_explicit(&pool->loops[gen % 2].arg, memory_order_relaxed);
      }
      fn(arg, task, thread);
      done++;
    }
  }
  if (done) atomic_fetch_add_explicit(&pool->done_tasks, done, memory_order_release);
}

/* Claims and runs tasks of generation gen until none is left (or a newer loop has begun). */
static void run_tasks(hearth_pool* pool, uint32_t gen, int32_t thread) {
  unsigned long long cur = atomic_load_explicit(&pool->next, memory_order_acquire);
  if (generation_of(cur) == gen && atomic_load_explicit(&pool->loops[gen % 2].ranged, memory_order_relaxed)) {
    run_ranged(pool, gen, thread);
    return;
  }
  for (;;) {
    if (generation_of(cur) != gen) return;
    /* Read before the claim: a successful claim proves that gen was still current, so its slot held
       its loop (a slot is refilled only two generations later). */
    const int slot = gen % 2;
    const int32_t task = (int32_t)(uint32_t)cur;
    if (task >= atomic_load_explicit(&pool->loops[slot].n_tasks, memory_order_relaxed)) return;
    const hearth_task_fn fn = atomic_load_explicit(&pool->loops[slot].fn, memory_order_relaxed);
    void* const arg = atomic_load_explicit(&pool->loops[slot].arg, memory_order_relaxed);
    if (!atomic_compare_exchange_weak_explicit(&pool->next, &cur, cur + 1, memory_order_acquire,
                                               memory_order_acquire))
      continue; /* cur now holds the newer value */
    fn(arg, task, thread);
    atomic_fetch_add_explicit(&pool->done_tasks, 1, memory_order_release);
    cur = atomic_load_explicit(&pool->next, memory_order_acquire);
  }
}

static void* worker_main(void* p) {
  worker_arg* wa = (worker_arg*)p;
  hearth_pool* pool = wa->pool;
  int32_t index = wa->index;
  free(wa);
  /* Generation 0 is the one before any loop: reading pool->next here instead would race with a first
     hearth_pool_run that starts before this thread does, and then sleep through it. */
  uint32_t seen = 0;
  for (;;) {
    uint32_t gen = seen;
    uint64_t spin_start = 0;
    for (int spins = 0;; spins++) {
      if (index == 1 && atomic_load_explicit(&pool->job_fn, memory_order_acquire)) break;
      gen = generation_of(atomic_load_explicit(&pool->next, memory_order_acquire));
      if (gen != seen || atomic_load_explicit(&pool->stop, memory_order_relaxed)) break;
      if (spins % 64 == 0) { /* the clock every 64 pauses: a few microseconds */
        const uint64_t t = hearth_now_ns();
        if (!spin_start) spin_start = t;
        else if (t - spin_start > SPIN_NS) {
          pthread_mutex_lock(&pool->mutex);
          while (generation_of(atomic_load(&pool->next)) == seen && !atomic_load(&pool->stop) &&
                 !(index == 1 && atomic_load(&pool->job_fn)))
            pthread_cond_wait(&pool->wake, &pool->mutex);
          pthread_mutex_unlock(&pool->mutex);
          continue;
        }
      }
      cpu_relax();
    }
    if (atomic_load(&pool->stop)) return NULL;
    hearth_job_fn job = index == 1 ? atomic_load_explicit(&pool->job_fn, memory_order_acquire) : NULL;
    if (job) {
      /* Read before the slot is cleared: a new job is submitted only after this one is done. */
      void* job_arg = atomic_load_explicit(&pool->job_arg, memory_order_relaxed);
      atomic_store_explicit(&pool->job_fn, NULL, memory_order_relaxed);
      job(job_arg); /* its loops' caller: thread 0 */
      seen = generation_of(atomic_load_explicit(&pool->next, memory_order_acquire)); /* all done */
      atomic_store_explicit(&pool->job_running, 0, memory_order_release); /* after what the job wrote */
      continue;
    }
    seen = gen;
    run_tasks(pool, gen, index);
  }
}

hearth_pool* hearth_pool_new(int32_t n_threads) {
  if (n_threads < 1) n_threads = 1;
  hearth_pool* pool = calloc(1, sizeof(hearth_pool));
  if (!pool) return NULL;
  pool->n_threads = n_threads;
  pool->ranges = hearth_alloc((size_t)n_threads, sizeof(range_slot)); /* zeroed: generation 0, empty */
  if (!pool->ranges) {
    free(pool);
    return NULL;
  }
  pthread_mutex_init(&pool->mutex, NULL);
  pthread_cond_init(&pool->wake, NULL);
  atomic_init(&pool->next, 0);
  atomic_init(&pool->done_tasks, 0);
  atomic_init(&pool->stop, 0);
  atomic_init(&pool->job_running, 0);
  if (n_threads > 1) {
    pool->threads = calloc((size_t)n_threads - 1, sizeof(pthread_t));
    if (!pool->threads) {
      hearth_pool_free(pool);
      return NULL;
    }
    for (int32_t i = 1; i < n_threads; i++) {
      worker_arg* wa = malloc(sizeof(worker_arg));
      if (wa) {
        wa->pool = pool;
        wa->index = i;
      }
      if (!wa || pthread_create(&pool->threads[i - 1], NULL, worker_main, wa) != 0) {
        free(wa);
        pool->n_threads = i; /* only the workers started so far are joined */
        hearth_pool_free(pool);
        return NULL;
      }
#if defined(__linux__)
      /* Named by the creator, so the name is there when this returns: `top -H` and
         /proc/<pid>/task/<tid>/comm tell the pool's workers from the runtime's threads. */
      pthread_setname_np(pool->threads[i - 1], "hearth-pool");
#endif
    }
  }
  return pool;
}

int32_t hearth_pool_threads(const hearth_pool* pool) { return pool->n_threads; }

static void pool_run(hearth_pool* pool, hearth_task_fn fn, void* arg, int32_t n_tasks, int ranged) {
  if (n_tasks <= 0) return;
  if (pool->n_threads == 1 || n_tasks == 1) {
    for (int32_t t = 0; t < n_tasks; t++) fn(arg, t, 0);
    return;
  }
  /* The new loop's slot is the one of the loop before the current: no claim on it can succeed. */
  const uint32_t gen = generation_of(atomic_load_explicit(&pool->next, memory_order_relaxed)) + 1;
  atomic_store_explicit(&pool->loops[gen % 2].fn, fn, memory_order_relaxed);
  atomic_store_explicit(&pool->loops[gen % 2].arg, arg, memory_order_relaxed);
  atomic_store_explicit(&pool->loops[gen % 2].n_tasks, n_tasks, memory_order_relaxed);
  atomic_store_explicit(&pool->loops[gen % 2].ranged, ranged, memory_order_relaxed);
  atomic_store_explicit(&pool->done_tasks, 0, memory_order_relaxed);
  unsigned long long next = (unsigned long long)gen << 32;
  if (ranged) {
    const int64_t P = pool->n_threads;
    for (int64_t t = 0; t < P; t++)
      atomic_store_explicit(&pool->ranges[t].word,
                            range_pack(gen, (uint32_t)(t * n_tasks / P), (uint32_t)((t + 1) * n_tasks / P)),
                            memory_order_relaxed);
    next |= 0x7fffffffu; /* nothing to claim from the shared counter */
  }
  pthread_mutex_lock(&pool->mutex);
  atomic_store_explicit(&pool->next, next, memory_order_release);
  pthread_cond_broadcast(&pool->wake);
  pthread_mutex_unlock(&pool->mutex);
  run_tasks(pool, gen, 0);
  /* Wait for the workers' last tasks. Spin first; then yield, so that on an oversubscribed machine
     (tests in parallel, other programs) a worker that lost its core gets it back from us. */
  for (int spins = 0; atomic_load_explicit(&pool->done_tasks, memory_order_acquire) < n_tasks; spins++) {
    if (spins < CALLER_SPINS) cpu_relax();
    else sched_yield();
  }
}

void hearth_pool_run(hearth_pool* pool, hearth_task_fn fn, void* arg, int32_t n_tasks) {
  pool_run(pool, fn, arg, n_tasks, 0);
}

void hearth_pool_run_ranged(hearth_pool* pool, hearth_task_fn fn, void* arg, int32_t n_tasks) {
  pool_run(pool, fn, arg, n_tasks, (uint32_t)n_tasks <= RANGE_TASK_MASK); /* more tasks: the shared counter */
}

int hearth_pool_submit(hearth_pool* pool, hearth_job_fn fn, void* arg) {
  if (pool->n_threads < 2) return 0;
  atomic_store_explicit(&pool->job_running, 1, memory_order_relaxed);
  atomic_store_explicit(&pool->job_arg, arg, memory_order_relaxed);
  pthread_mutex_lock(&pool->mutex);
  atomic_store_explicit(&pool->job_fn, fn, memory_order_release);
  pthread_cond_broadcast(&pool->wake);
  pthread_mutex_unlock(&pool->mutex);
  return 1;
}

void hearth_pool_help(hearth_pool* pool) {
  uint32_t seen = 0; /* the loop running now, if any, is joined at once */
  for (int spins = 0; atomic_load_explicit(&pool->job_running, memory_order_acquire);) {
    const uint32_t gen = generation_of(atomic_load_explicit(&pool->next, memory_order_acquire));
    if (gen != seen && !atomic_load_explicit(&pool->job_fn, memory_order_acquire)) { /* the job has begun */
      seen = gen;
      run_tasks(pool, gen, 1);
      spins = 0;
    } else if (++spins < CALLER_SPINS) {
      cpu_relax();
    } else {
      sched_yield(); /* no new loop for a while: on a busy machine worker 1 may be waiting for this core */
    }
  }
}

void hearth_pool_free(hearth_pool* pool) {
  if (!pool) return;
  if (pool->threads) {
    pthread_mutex_lock(&pool->mutex);
    atomic_store(&pool->stop, 1);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->mutex);
    for (int32_t i = 1; i < pool->n_threads; i++) pthread_join(pool->threads[i - 1], NULL);
    free(pool->threads);
  }
  pthread_mutex_destroy(&pool->mutex);
  pthread_cond_destroy(&pool->wake);
  hearth_free_aligned(pool->ranges);
  free(pool);
}

/* ---------------------------------------------------------------------------------------------------- */
/* Test hook: the pool's contract under stress.                                                           */

typedef struct {
  atomic_int* runs;    /* (n_tasks) times each task ran to its end */
  atomic_int* threads; /* (n_tasks) the thread that ran it */
  uint32_t seed;
} pool_test_job;

static void pool_test_task(void* arg, int32_t task, int32_t thread) {
  pool_test_job* j = (pool_test_job*)arg;
  /* Uneven work, and now and then a task that gives its core away, so that workers fall behind. */
  const uint32_t h = (j->seed ^ (uint32_t)task) * 2654435761u;
  if (h % 61 == 0) sched_yield();
  for (volatile uint32_t i = 0; i < (h >> 24); i++) {
  }
  /* Counted at the end: the caller must not return before the last task is finished. */
  atomic_store_explicit(&j->threads[task], thread, memory_order_relaxed);
  atomic_fetch_add_explicit(&j->runs[task], 1, memory_order_relaxed);
}

/* Runs one test loop of n tasks (ranged or not) and checks it: every task ran exactly once, on a thread in
   range. Returns 1 when it broke that. */
static int32_t pool_test_loop(hearth_pool* pool, atomic_int* runs, atomic_int* threads, int32_t n, uint32_t s) {
  for (int32_t t = 0; t < n; t++) atomic_store(&runs[t], 0);
  pool_test_job j = {.runs = runs, .threads = threads, .seed = s};
  if ((s >> 20) & 1) hearth_pool_run_ranged(pool, pool_test_task, &j, n); /* both kinds, interleaved */
  else hearth_pool_run(pool, pool_test_task, &j, n);
  for (int32_t t = 0; t < n; t++) {
    const int th = atomic_load(&threads[t]);
    if (atomic_load(&runs[t]) != 1 || th < 0 || th >= pool->n_threads) return 1;
  }
  return 0;
}

/* A submitted job of a few loops (hearth_pool_submit), as a step begun with hearth_step_begin is. */
typedef struct {
  hearth_pool* pool;
  atomic_int* runs;
  atomic_int* threads;
  int32_t max_tasks, loops, bad;
  uint32_t seed;
} pool_test_submitted;

static void pool_test_submitted_job(void* arg) {
  pool_test_submitted* j = (pool_test_submitted*)arg;
  uint32_t s = j->seed;
  for (int32_t l = 0; l < j->loops; l++) {
    s = s * 1103515245u + 12345u;
    j->bad += pool_test_loop(j->pool, j->runs, j->threads, 1 + (int32_t)((s >> 8) % (uint32_t)j->max_tasks), s);
  }
}

/* Runs `loops` parallel loops of 1 to max_tasks tasks (pseudo-random from seed; about half of them
   ranged, and now and then a few of them as a submitted job that this thread helps with after a while) on
   a pool of n_threads, and checks each one on return: every task ran exactly once, on a thread in range.
   Returns the number of loops that broke that (0), or -1 when the arguments are out of range or memory
   runs out. */
HEARTH_API int32_t hearth_test_pool(int32_t n_threads, int32_t loops, int32_t max_tasks, uint32_t seed) {
  if (n_threads < 1 || n_threads > 256 || loops < 0 || max_tasks < 1 || max_tasks > 1 << 20) return -1;
  hearth_pool* pool = hearth_pool_new(n_threads);
  atomic_int* runs = calloc((size_t)max_tasks, sizeof(atomic_int));
  atomic_int* threads = calloc((size_t)max_tasks, sizeof(atomic_int));
  int32_t bad = 0;
  if (!pool || !runs || !threads) {
    bad = -1;
  } else {
    uint32_t s = seed;
    for (int32_t l = 0; l < loops; l++) {
      s = s * 1103515245u + 12345u;
      if ((s >> 12) % 16 == 0) {
        pool_test_submitted j = {.pool = pool, .runs = runs, .threads = threads, .max_tasks = max_tasks,
                                 .loops = 3, .seed = s};
        if (hearth_pool_submit(pool, pool_test_submitted_job, &j)) {
          for (volatile uint32_t i = 0; i < (s >> 16) % 20000; i++) { /* away for a while, as the JS thread is */
          }
          hearth_pool_help(pool);
        } else {
          pool_test_submitted_job(&j); /* one thread: nobody to hand it to */
        }
        bad += j.bad;
        continue;
      }
      bad += pool_test_loop(pool, runs, threads, 1 + (int32_t)((s >> 8) % (uint32_t)max_tasks), s);
    }
  }
  hearth_pool_free(pool);
  free(runs);
  free(threads);
  return bad;
}
