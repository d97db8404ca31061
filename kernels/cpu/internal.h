/*
 * internal.h — what the CPU backend's files share: the model and context structs, the per-ISA kernel
 * table, the thread pool and small helpers. Not part of the public interface (that is hearth.h).
 */
#ifndef HEARTH_CPU_INTERNAL_H
#define HEARTH_CPU_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "../include/hearth.h"
#include "../include/hearth_fail.h"
#include "../include/hearth_model_desc.h"

/* ---------------------------------------------------------------------------------------------------- */
/* Errors and allocation                                                                                  */

/* Errors are written with hearth_fail (../include/hearth_fail.h, shared with the CUDA backend). */

/* Allocation that is 64-byte aligned (for vector loads), zero-filled, NULL on failure or overflow. */
void* hearth_alloc(size_t count, size_t size);
/* The same without zero-filling: for big buffers every byte of which is written before it is read
   (the KV cache), so the OS maps pages only as the cache fills. */
void* hearth_alloc_uninit(size_t count, size_t size);
void hearth_free_aligned(void* p);
/* A monotonic clock, in nanoseconds. */
uint64_t hearth_now_ns(void);

/* ---------------------------------------------------------------------------------------------------- */
/* Weights                                                                                                */

/* A matrix (rows, cols) or vector (1, cols) as the forward pass reads it. */
typedef struct {
  const void* data;   /* points into a mapped file or into an owned buffer */
  const void* packed; /* the kernels' own layout (hearth_quant_pack, or ops->pack for floats), or NULL */
  int32_t dtype;      /* hearth_dtype */
  int64_t rows;
  int64_t cols;
} hearth_weight;

typedef struct {
  hearth_weight attn_norm; /* (dim) f32 */
  hearth_weight wq;        /* (n_heads * head_dim, dim) */
  hearth_weight wk;        /* (n_kv_heads * head_dim, dim) */
  hearth_weight wv;        /* (n_kv_heads * head_dim, dim) */
  hearth_weight wo;        /* (dim, n_heads * head_dim) */
  hearth_weight bq;        /* (n_heads * head_dim) f32, or data NULL */
  hearth_weight bk;        /* (n_kv_heads * head_dim) f32, or data NULL */
  hearth_weight bv;        /* (n_kv_heads * head_dim) f32, or data NULL */
  hearth_weight q_norm;    /* (head_dim) f32, or data NULL */
  hearth_weight k_norm;    /* (head_dim) f32, or data NULL */
  hearth_weight ffn_norm;  /* (dim) f32 */
  hearth_weight w_gate;    /* (hidden_dim, dim) */
  hearth_weight w_up;      /* (hidden_dim, dim) */
  hearth_weight w_down;    /* (dim, hidden_dim) */
} hearth_layer_weights;

struct hearth_model {
  hearth_model_config cfg;
  float* rope_inv_freq; /* (head_dim / 2) */
  int32_t finished;
  int32_t in_memory; /* hearth_model_set_in_memory */

  int32_t n_files;
  hearth_mapped_file files[HEARTH_MAX_FILES];

  hearth_tensor_record* records; /* (HEARTH_T_ROLE_COUNT, n_layers + 1): layer -1 is stored at index 0 */

  /* Resolved by hearth_model_finish. */
  hearth_weight tok_embd;      /* (vocab, dim) */
  hearth_weight output_norm;   /* (dim) f32 */
  hearth_weight lm_head;       /* (vocab, dim); the embedding when tied */
  hearth_layer_weights* layers; /* (n_layers) */

  void** owned;    /* buffers made by conversions, freed with the model */
  int32_t n_owned;
  int32_t cap_owned;
  uint64_t owned_bytes;
};

/* ---------------------------------------------------------------------------------------------------- */
/* Kernels chosen per instruction set at load time                                                       */

typedef struct {
  const char* isa; /* "avx512", "avx2", "c" */
  /* y[r] = dot(W[r, :], x) for r in [0, n); W is (n, k) of dtype, rows contiguous. */
  void (*matvec)(float* y, const void* w, int32_t dtype, const float* x, int64_t n, int64_t k);
  /* Y[t * ldy + r] = dot(W[r, :], X[t * k ..]) for r in [0, n), t in [0, T). */
  void (*matmul)(float* y, int64_t ldy, const void* w, int32_t dtype, const float* x, int64_t T, int64_t n,
                 int64_t k);
  float (*dot)(const float* a, const float* b, int64_t n);
  /* y += a * x */
  void (*axpy)(float* y, float a, const float* x, int64_t n);
  /* dst[i] = float(src[i]) */
  void (*to_f32)(float* dst, const void* src, int32_t dtype, int64_t n);
  /* dst[i] = src[i] as IEEE f16, rounded to nearest even (hearth_f32_to_f16's bits in every table) */
  void (*to_f16)(uint16_t* dst, const float* src, int64_t n);
  /* gate[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + exp(-g)): SwiGLU's elementwise step */
  void (*silu_mul)(float* gate, const float* up, int64_t n);
  /* w[i] = exp((w[i] - shift) * scale); returns the sum of the new w (the sampler's softmax weights) */
  double (*exp_sum)(float* w, int64_t n, float shift, float scale);
  /* The first i in [0, n) with the largest w[i], as `best = 0; if (w[i] > w[best]) best = i` finds it
     (a NaN never wins, so w[0] NaN gives 0): the greedy pick over a vocabulary of logits. n >= 1. */
  int32_t (*argmax)(const float* w, int32_t n);
  /* One chunk of blocked ("flash") attention with an online softmax. nq query rows q (nq, hd) meet
     nk <= HEARTH_ATT_KC keys k[j] and values v[j] (hd elements each, finite: float32, or IEEE f16 when
     kv_f16 is set, as the KV cache holds them); row r sees only keys j in
     [lo[r], hi[r]) (its causal mask and sliding window). Per row, the running max m (nq), the running sum
     of exp(score - m) l (nq) and the unnormalised output acc (nq, hd) are updated in place; a row that sees
     no key of the chunk is left exactly as it was. score = dot(q, k) * scale.
     scratch: HEARTH_ATT_SCRATCH(nq, hd) floats, 64-byte aligned. */
  void (*attend_chunk)(float* acc, float* m, float* l, const float* q, int32_t nq, int32_t hd,
                       const void* const* k, const void* const* v, int32_t kv_f16, int32_t nk, const int32_t* lo,
                       const int32_t* hi, float scale, float* scratch);
  /* Optional (NULL, or 0 for a shape: the matrix stays as stored). A float (F32/F16/BF16) matrix's panel
     layout, made once at load: its bytes for n rows of k (rows padded to a multiple of 4), the packing, and
     matmul on it (wp at the panel of the first row wanted: rows r0 = a multiple of 4 start at byte
     r0 * k * element size). Same results as matmul on the rows, bit for bit. */
  size_t (*pack_bytes)(int32_t dtype, int64_t n, int64_t k);
  void (*pack)(void* dst, const void* w, int32_t dtype, int64_t n, int64_t k);
  void (*matmul_packed)(float* y, int64_t ldy, const void* wp, int32_t dtype, const float* x, int64_t T,
                        int64_t n, int64_t k);
  /* dst (k) = row `row` of such a packed matrix as floats (a tied embedding's lookup). */
  void (*unpack_row)(float* dst, const void* wp, int32_t dtype, int64_t row, int64_t k);
} hearth_cpu_ops;

/* Keys per attend_chunk call: a multiple of 16 (one AVX-512 vector of scores); 64 keys of head size 64
   transposed are 16 KiB, so keys, scores and the outputs of a tile stay in L1. */
#define HEARTH_ATT_KC 64
/* Segments per sequence at most (context.c), and decode tokens split into parallel segment tasks per
   step at most (the rest run their segments in one task each, with the same bits). */
#define HEARTH_ATT_MAX_SEGS 256
#define HEARTH_ATT_MAX_SPLIT 16
/* Scratch floats attend_chunk needs: the chunk's keys transposed (hd, KC), scores (nq, KC), then the
   per-row rescaling factors (nq, rounded up to 16). */
#define HEARTH_ATT_SCRATCH(nq, hd) \
  ((size_t)(hd) * HEARTH_ATT_KC + (size_t)(nq) * HEARTH_ATT_KC + ((size_t)(nq) + 15) / 16 * 16)

extern const hearth_cpu_ops hearth_ops_c;
#if defined(__x86_64__) || defined(_M_X64)
extern const hearth_cpu_ops hearth_ops_avx2;
extern const hearth_cpu_ops hearth_ops_avx512;
#endif

/* The table for this CPU (or the one HEARTH_ISA=c|avx2|avx512 asks for, when the CPU has it). */
const hearth_cpu_ops* hearth_cpu_ops_get(void);

/* ---------------------------------------------------------------------------------------------------- */
/* Thread pool                                                                                            */

typedef struct hearth_pool hearth_pool;
/* One task of a parallel loop: task in [0, n_tasks), thread in [0, n_threads). */
typedef void (*hearth_task_fn)(void* arg, int32_t task, int32_t thread);

hearth_pool* hearth_pool_new(int32_t n_threads);
int32_t hearth_pool_threads(const hearth_pool* pool);
/* Runs fn for every task on all threads (the caller is thread 0) and returns when all are done. */
void hearth_pool_run(hearth_pool* pool, hearth_task_fn fn, void* arg, int32_t n_tasks);
/* As hearth_pool_run, but tasks [0, n_tasks) are split into one contiguous range per thread (thread t the
   t-th): each thread runs its own range in order, then takes tasks from the ends of the others. */
void hearth_pool_run_ranged(hearth_pool* pool, hearth_task_fn fn, void* arg, int32_t n_tasks);
/* Hands fn(arg) to worker 1, which runs it as the pool's caller (thread 0 of the loops fn runs), and
   returns at once; the submitting thread then takes worker 1's place in those loops with
   hearth_pool_help. Returns 0 (nothing submitted) on a pool of one thread. One job at a time per pool,
   and nothing else may run loops on the pool until hearth_pool_help has returned. */
typedef void (*hearth_job_fn)(void* arg);
int hearth_pool_submit(hearth_pool* pool, hearth_job_fn fn, void* arg);
/* Works as thread 1 in the loops of the submitted job until the job has returned (what it wrote is then
   visible to this thread). */
void hearth_pool_help(hearth_pool* pool);
void hearth_pool_free(hearth_pool* pool);

/* ---------------------------------------------------------------------------------------------------- */
/* Context                                                                                                */

/* Per-thread attention scratch, in floats, for tiles of `rows` query rows of head size hd: the tile's
   queries, the segment's and the folded outputs (rows, hd) each, four per-row arrays (rows), then
   attend_chunk's scratch; every piece rounded up to 16 floats (64 bytes). forward_llama.c lays it out. */
static inline size_t hearth_round16(size_t n) { return (n + 15) / 16 * 16; }
static inline size_t hearth_att_thread_floats(int32_t rows, int32_t hd) {
  return 3 * hearth_round16((size_t)rows * hd) + 4 * hearth_round16((size_t)rows) +
         hearth_round16(HEARTH_ATT_SCRATCH(rows, hd));
}

/* One attention work item: query tokens [t0, t0 + nt) of sequence seq with the query heads of kv head
   kvh, over the keys of segments [seg0, seg1). part >= 0: a single token whose segments run as separate
   items, writing partial results to slot part of att_part; -1: the item writes att_out itself. */
typedef struct {
  int32_t seq, kvh, t0, nt, seg0, seg1, part;
  int64_t cost; /* about query rows times keys: items run costliest first */
} hearth_att_task;

/* Per-thread scratch of the sampler. */
typedef struct {
  float* work;      /* (vocab) processed logits, then probabilities */
  int32_t* ids;     /* (vocab) candidate ids */
  uint32_t* stamp;  /* (vocab) "seen in this sequence's history" marks */
  int32_t* counts;  /* (vocab) occurrences in the output */
  double* cum;      /* (vocab) running sums of the weights, for a draw over the whole vocabulary */
  uint32_t epoch;   /* stamp value of the current sequence */
} hearth_sampler_scratch;

struct hearth_context {
  const hearth_model* model;
  hearth_context_options opts;
  const hearth_cpu_ops* ops;
  hearth_pool* pool;

  /* Paged KV cache, per layer: (kv_num_blocks, n_kv_heads, kv_block_size, head_dim) elements each, of
     opts.kv_dtype: float32, or f16 (half the memory and the bytes a decode reads; q, the scores and the
     outputs stay float32). */
  void* key_cache;
  void* value_cache;
  uint64_t kv_bytes;

  /* Activations of one step, T = max_batch_tokens. */
  float* x;        /* (T, dim) residual stream */
  float* xb;       /* (T, dim) normed input of a sublayer */
  float* q;        /* (T, n_heads * head_dim) */
  float* k;        /* (T, n_kv_heads * head_dim) */
  float* v;        /* (T, n_kv_heads * head_dim) */
  float* att_out;  /* (T, n_heads * head_dim) */
  float* hb;       /* (T, hidden_dim) gate, then silu(gate) * up */
  float* hb2;      /* (T, hidden_dim) up */
  float* rope_cos; /* (T, head_dim / 2) */
  float* rope_sin; /* (T, head_dim / 2) */
  /* Attention (forward_llama.c): work items planned once per step, per-thread tile scratch. */
  hearth_att_task* att_tasks; /* (att_max_tasks) this step's attention work, costliest first */
  int32_t att_max_tasks;
  int32_t att_rows;           /* query rows per tile: tokens per tile * (n_heads / n_kv_heads) */
  int32_t att_seg;            /* keys per segment (a multiple of HEARTH_ATT_KC), see forward_llama.c */
  int32_t att_max_segs;       /* ceil(max_seq_len / att_seg) */
  int32_t att_max_split;      /* most decode tokens whose segments run as separate tasks in one step */
  int32_t att_thread_floats;  /* floats of att_scratch per thread */
  float* att_scratch;         /* (n_threads, att_thread_floats) tile state and attend_chunk scratch */
  const void** att_kv;        /* (n_threads, 2 * HEARTH_ATT_KC) key, then value row pointers of a chunk */
  int32_t* att_range;         /* (n_threads, 2 * att_rows) per row visible keys [lo, hi) of a chunk */
  float* att_zero;            /* (head_dim) zeros: the key and value of chunk slots no row sees */
  int32_t* att_split;         /* (att_max_split) tokens whose segments ran as separate tasks */
  float* att_part;            /* (att_max_split, n_heads, att_max_segs, head_dim + 2) their partial
                                 results: max, sum, unnormalised output */
  int32_t* token_seq; /* (T) sequence index of each token */
  float* logits;   /* (max_batch_seqs, vocab) */
  void* act_q8_0;  /* (T, k_max) activations as Q8_0 blocks, for 32-element quantized weights */
  void* act_q8_k;  /* (T, k_max) activations as Q8_K blocks, for K-quant weights */
  hearth_sampler_scratch* samplers; /* (n_threads) */

  /* A step begun with hearth_step_begin and not yet joined: its arguments, and its result once done. */
  struct {
    const hearth_batch* batch;
    char* err;
    size_t err_len;
    int32_t rc;
    int pending;
  } async_step;
};

/* Bytes of one KV cache element: 2 for f16, 4 for float32. */
static inline size_t hearth_kv_elem(const hearth_context* ctx) {
  return ctx->opts.kv_dtype == HEARTH_DTYPE_F16 ? 2 : 4;
}

/* The forward pass of the Llama family (Llama, Mistral, Qwen2, Qwen3): fills ctx->logits or out_logits. */
int32_t hearth_forward_llama(hearth_context* ctx, const hearth_batch* b, float* logits_out,
                             const int32_t* logit_rows, int32_t n_logit_rows);

/* Picks one token for each sequence that asked for one, from rows of raw logits. */
void hearth_sample_batch(hearth_context* ctx, const hearth_batch* b, const float* const* seq_logits);

/* Uniform in [0, 1) from a counter-based RNG keyed by (seed, position): the same on every backend. */
double hearth_uniform(uint64_t seed, uint64_t position);

#endif
