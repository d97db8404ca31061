/*
 * threadpool.c — a persistent pool of worker threads for parallel loops.
 *
 * The caller of hearth_pool_run is thread 0 and works too. Workers wait for a new "generation" of
 * work: they spin briefly (a decode step issues a parallel loop every few microseconds, and waking a
 * sleeping thread costs more than that), then sleep on a condition variable. Tasks are handed out with
 * an atomic counter, so uneven tasks balance themselves.
 */
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

/* Pauses before a waiting thread gives up its core. A pause is 10 to 140 cycles depending on the CPU,
   so this is tens of microseconds: longer than the gap between the parallel loops of one step, far
   shorter than the gap between steps. */
#define SPIN_ITERATIONS 2000

struct hearth_pool {
  int32_t n_threads;
  pthread_t* threads;  /* (n_threads - 1) workers */
  pthread_mutex_t mutex;
  pthread_cond_t wake;

  /* The current parallel loop. */
  hearth_task_fn fn;
  void* arg;
  int32_t n_tasks;
  atomic_int next_task;
  atomic_int busy_workers; /* workers still inside the current generation */
  atomic_uint generation;  /* bumped for each loop; workers run when it changes */
  atomic_int stop;
};

typedef struct {
  hearth_pool* pool;
  int32_t index;
} worker_arg;

static void run_tasks(hearth_pool* pool, int32_t thread) {
  for (;;) {
    int32_t task = atomic_fetch_add_explicit(&pool->next_task, 1, memory_order_relaxed);
    if (task >= pool->n_tasks) break;
    pool->fn(pool->arg, task, thread);
  }
}

static void* worker_main(void* p) {
  worker_arg* wa = (worker_arg*)p;
  hearth_pool* pool = wa->pool;
  int32_t index = wa->index;
  free(wa);
  /* Generation 0 is the one before any loop: reading pool->generation here instead would race with a
     first hearth_pool_run that starts before this thread does, and then sleep through it. */
  unsigned seen = 0;
  for (;;) {
    unsigned gen;
    int spins = 0;
    while ((gen = atomic_load_explicit(&pool->generation, memory_order_acquire)) == seen &&
           !atomic_load(&pool->stop)) {
      if (++spins < SPIN_ITERATIONS) {
        cpu_relax();
        continue;
      }
      pthread_mutex_lock(&pool->mutex);
      while (atomic_load(&pool->generation) == seen && !atomic_load(&pool->stop))
        pthread_cond_wait(&pool->wake, &pool->mutex);
      pthread_mutex_unlock(&pool->mutex);
    }
    if (atomic_load(&pool->stop)) return NULL;
    seen = gen;
    run_tasks(pool, index);
    atomic_fetch_sub_explicit(&pool->busy_workers, 1, memory_order_release);
  }
}

hearth_pool* hearth_pool_new(int32_t n_threads) {
  if (n_threads < 1) n_threads = 1;
  hearth_pool* pool = calloc(1, sizeof(hearth_pool));
  if (!pool) return NULL;
  pool->n_threads = n_threads;
  pthread_mutex_init(&pool->mutex, NULL);
  pthread_cond_init(&pool->wake, NULL);
  atomic_init(&pool->next_task, 0);
  atomic_init(&pool->busy_workers, 0);
  atomic_init(&pool->generation, 0);
  atomic_init(&pool->stop, 0);
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
    }
  }
  return pool;
}

int32_t hearth_pool_threads(const hearth_pool* pool) { return pool->n_threads; }

void hearth_pool_run(hearth_pool* pool, hearth_task_fn fn, void* arg, int32_t n_tasks) {
  if (n_tasks <= 0) return;
  if (pool->n_threads == 1 || n_tasks == 1) {
    for (int32_t t = 0; t < n_tasks; t++) fn(arg, t, 0);
    return;
  }
  pool->fn = fn;
  pool->arg = arg;
  pool->n_tasks = n_tasks;
  atomic_store_explicit(&pool->next_task, 0, memory_order_relaxed);
  atomic_store_explicit(&pool->busy_workers, pool->n_threads - 1, memory_order_relaxed);
  pthread_mutex_lock(&pool->mutex);
  atomic_fetch_add_explicit(&pool->generation, 1, memory_order_release);
  pthread_cond_broadcast(&pool->wake);
  pthread_mutex_unlock(&pool->mutex);
  run_tasks(pool, 0);
  /* Wait for the workers' last tasks. Spin first; then yield, so that on an oversubscribed machine
     (tests in parallel, other programs) a worker that lost its core gets it back from us. */
  for (int spins = 0; atomic_load_explicit(&pool->busy_workers, memory_order_acquire) > 0; spins++) {
    if (spins < SPIN_ITERATIONS) cpu_relax();
    else sched_yield();
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
  free(pool);
}
