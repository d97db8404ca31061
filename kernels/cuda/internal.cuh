/*
 * internal.cuh — what the CUDA backend's files share: the device-side model and context, the weight
 * layouts on the device, error helpers and the launchers each kernel file exports. Not part of the
 * public interface (that is ../include/hearth.h, which this backend implements symbol for symbol).
 *
 * Shapes follow forward_llama.c: T = tokens in the batch, D = dim, H = n_heads, KVH = n_kv_heads,
 * hd = head_dim, F = hidden_dim, V = vocab.
 */
#ifndef HEARTH_CUDA_INTERNAL_CUH
#define HEARTH_CUDA_INTERNAL_CUH

#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

#include "../include/hearth.h"
#include "../include/hearth_fail.h"
#include "../include/hearth_model_desc.h"
#include "../include/hearth_quant.h"

/* ---------------------------------------------------------------------------------------------------- */
/* Errors                                                                                                 */

/* Messages are written with hearth_fail (../include/hearth_fail.h), the CPU backend's own. */

/* A CUDA call that failed: "what: cudaErrorName (message)"; out-of-memory is HEARTH_E_NOMEM, the rest
   HEARTH_E_INVALID. */
int32_t hc_cuda_fail(char* err, size_t err_len, cudaError_t e, const char* what);

/* Returns from the enclosing function with hc_cuda_fail when the call fails. */
#define HC_CHECK(call, what)                                        \
  do {                                                              \
    cudaError_t hc_e_ = (call);                                     \
    if (hc_e_ != cudaSuccess) return hc_cuda_fail(err, err_len, hc_e_, what); \
  } while (0)

/* ---------------------------------------------------------------------------------------------------- */
/* Weights on the device                                                                                  */

/*
 * A matrix (rows, cols) or vector (1, cols) in device memory. Dtypes the kernels read directly:
 *   F32, F16, BF16   data: (rows, cols) row-major
 *   Q8_0             data: int8 codes (rows, cols); scales: f16 d (rows, cols / 32)
 *   Q4_0             data: (rows, cols / 2) bytes, each 32-block's 16 bytes as GGUF packs them (element i
 *                    < 16 in the low nibble of byte i, element 16 + i in its high nibble); scales as Q8_0
 *   Q4_K             data: (rows, cols / 256) hearth_block_q4_k, as stored (144 bytes: 16-byte aligned)
 * Q8_0 and Q4_0 are split out of GGUF's 34- and 18-byte blocks at upload so that rows of codes are
 * 16-byte aligned for vector loads; the values are the same. Every other quantized type is converted to
 * Q8_0 at load (model.cu).
 */
typedef struct {
  void* data;
  uint16_t* scales; /* Q8_0 / Q4_0 only, else NULL */
  int32_t dtype;
  int64_t rows;
  int64_t cols;
} hc_weight;

typedef struct {
  hc_weight attn_norm; /* (D) f32 */
  hc_weight wq;        /* (H * hd, D) */
  hc_weight wk;        /* (KVH * hd, D) */
  hc_weight wv;        /* (KVH * hd, D) */
  hc_weight wo;        /* (D, H * hd) */
  hc_weight bq;        /* (H * hd) f32, or data NULL */
  hc_weight bk;        /* (KVH * hd) f32, or data NULL */
  hc_weight bv;        /* (KVH * hd) f32, or data NULL */
  hc_weight q_norm;    /* (hd) f32, or data NULL */
  hc_weight k_norm;    /* (hd) f32, or data NULL */
  hc_weight ffn_norm;  /* (D) f32 */
  hc_weight w_gate;    /* (F, D) */
  hc_weight w_up;      /* (F, D) */
  hc_weight w_down;    /* (D, F) */
} hc_layer;

struct hearth_model {
  hearth_model_config cfg;
  int32_t device;         /* CUDA device index, fixed at hearth_model_new */
  int32_t cc_major;       /* its compute capability */
  int32_t cc_minor;
  float* rope_inv_freq;   /* device (hd / 2) */
  int32_t finished;

  int32_t n_files;
  hearth_mapped_file files[HEARTH_MAX_FILES]; /* ../include/hearth_model_desc.h */
  uint64_t mapped_bytes;  /* sum of the file sizes (the maps are dropped after the upload) */

  hearth_tensor_record* records; /* (HEARTH_T_ROLE_COUNT, n_layers + 1): layer -1 at index 0 */

  hc_weight tok_embd;     /* (V, D) */
  hc_weight output_norm;  /* (D) f32 */
  hc_weight lm_head;      /* (V, D); the embedding when tied */
  hc_layer* layers;       /* host array (n_layers) of device weights */

  void** owned;           /* device buffers, freed with the model */
  int32_t n_owned;
  int32_t cap_owned;
  uint64_t owned_bytes;
};

/* ---------------------------------------------------------------------------------------------------- */
/* Kernel parameters shared between forward.cu and the kernel files                                       */

/* Activations quantized for the integer dot products: per 32 values, int8 codes q, a float scale d and
   the integer sum of the codes (for the min / offset terms of Q4_0 and Q4_K). */
typedef struct {
  int8_t* q;   /* (T, k) */
  float* d;    /* (T, k / 32) */
  int32_t* s;  /* (T, k / 32) */
} hc_qact;

/* Up to three weights over one input in one launch (q|k|v, gate|up). y_i (T, rows_i) row-major. */
typedef struct {
  int32_t n;            /* targets, 1..3 */
  hc_weight w[3];
  float* y[3];
  int32_t swiglu;       /* 1: n == 2 (gate, up) and y[0] gets silu(gate) * up; y[1] is unused */
} hc_targets;

/* One attention work item: query tokens [t0, t0 + nt) of sequence seq with query heads [h0, h0 + nh)
   (one kv head's group, or part of it), over key chunks [c0, c0 + n_chunks) (chunks of HC_ATT_KC keys at
   multiples of HC_ATT_KC) split into n_split parts of chunks_per_split chunks. */
typedef struct {
  int32_t seq, t0, nt, h0, nh, c0, n_chunks, n_split, chunks_per_split, part; /* part: slot in att_part */
  int32_t pad[2];
} hc_att_item;

#define HC_ATT_KC 32       /* keys per chunk: one per lane */
#define HC_ATT_MAX_SPLIT 8 /* parts a long item's keys run as (flash-decoding), folded in order */
#define HC_ATT_MIN_CHUNKS 4 /* fewest chunks per part */
#define HC_ATT_THREADS 128 /* 4 warps */

/* Query rows one attention block holds for a head size (registers: rows per warp * ceil(hd / 32) <= 16). */
static inline int32_t hc_att_rows(int32_t hd) {
  const int32_t ni = (hd + 31) / 32;
  const int32_t per_warp = ni >= 16 ? 1 : 16 / ni;
  return per_warp * (HC_ATT_THREADS / 32);
}

/* Everything a step's kernels read from the batch. It lives in device memory (at the start of the
   context's batch block) and is rewritten with the data behind it by one upload per step, so kernels and
   captured graphs hold one fixed pointer to it whatever the sizes of the step. */
typedef struct {
  int32_t n_tokens, n_seqs, n_rows, n_items;
  int32_t bt_stride;     /* row stride of block_tables: the most blocks a sequence of this step uses */
  uint32_t epoch;        /* stamp value of this step for the sampler */
  int32_t has_history;   /* hearth_batch.history was given */
  int32_t pad;
  int32_t* tokens;       /* (T) */
  int32_t* positions;    /* (T) */
  int32_t* token_seq;    /* (T) sequence of each token */
  int32_t* seq_start;    /* (S + 1) */
  int32_t* block_tables; /* (S, bt_stride) */
  int32_t* logit_rows;   /* (R) token index of each row that goes through lm_head */
  int32_t* sample_row;   /* (S) row of the logits a sequence samples from, -1: none */
  hc_att_item* att;      /* (n_items) */
  hearth_sampling* sampling; /* (S) */
  int32_t* history;      /* (n_history) */
  int32_t* bias_ids;     /* (n_bias) */
  float* bias_values;    /* (n_bias) */
  int32_t* stop_ids;     /* (n_stop) */
} hc_batch_dev;

/* Per-sequence sampler scratch on the device. */
typedef struct {
  float* work;      /* (S, V) processed logits, then probabilities */
  uint32_t* stamp;  /* (S, V) "penalised in this step" marks (stamp == epoch) */
  int32_t* counts;  /* (S, V) occurrences in the output (left all zero) */
  uint32_t* keys;   /* (S, sort_cap) candidate keys of the large-K sort */
  int32_t* ids;     /* (S, sort_cap) candidate ids (also the sorted result) */
  int32_t sort_cap; /* a power of two >= V */
} hc_sampler_scratch;

/* Sampler outputs, per sequence, gathered into one device block and copied back once. */
typedef struct {
  int32_t token;
  float logprob;
  int32_t wrote_logprobs; /* 1: logprob / top arrays hold values (the CPU's report_logprobs ran) */
  int32_t n_top;
  int32_t top_ids[HEARTH_MAX_TOP_LOGPROBS];
  float top_logprobs[HEARTH_MAX_TOP_LOGPROBS];
} hc_sample_out;

#define HC_GRAPH_SLOTS 64

/* A captured decode step (all sequences one token), replayed while the shape matches. */
typedef struct {
  int32_t n_tokens, n_rows;
  cudaGraphExec_t exec;
} hc_graph;

struct hearth_context {
  const hearth_model* model;
  hearth_context_options opts;
  cudaStream_t stream;

  /* Paged KV cache, per layer (kv_num_blocks, KVH, kv_block_size, hd) f32, as the CPU backend's. */
  float* key_cache;
  float* value_cache;
  uint64_t kv_bytes;

  /* Activations of one step, T = max_batch_tokens. */
  float* x;        /* (T, D) residual stream */
  float* xb;       /* (T, D) normed input of a sublayer, then a sublayer's output */
  float* q;        /* (T, H * hd) */
  float* k;        /* (T, KVH * hd) */
  float* v;        /* (T, KVH * hd) */
  float* att_out;  /* (T, H * hd) */
  float* hb;       /* (T, F) gate, then silu(gate) * up */
  float* hb2;      /* (T, F) up */
  hc_qact act;     /* (T, k_max) quantized activations of the current matmul input */
  float* att_part; /* (att_max_items * HC_ATT_MAX_SPLIT, att_rows, hd + 2) split parts: max, sum, acc */
  int32_t att_rows;      /* query rows per attention block (hc_att_rows) */
  int32_t att_max_items;
  float* logits;   /* (logit_cap, V) */
  int32_t logit_cap; /* rows of logits one lm_head pass writes (>= max_batch_seqs) */
  hc_sampler_scratch smp;
  hc_sample_out* smp_out; /* device (S) */

  /* The step's batch: descriptor then data, packed in pinned host memory and uploaded with one copy. */
  hc_batch_dev* bd;  /* device: the descriptor at the start of dev_block */
  void* dev_block;   /* device bytes (block_cap) */
  void* host_block;  /* pinned bytes (block_cap), the same layout */
  size_t block_cap;
  hc_sample_out* host_out; /* pinned (S) */
  uint32_t epoch;

  /* CUDA Graphs of decode steps. */
  int32_t graphs_on;
  hc_graph graphs[HC_GRAPH_SLOTS];
  int32_t n_graphs;

  /* hearth_step_begin runs the step at once (the device works asynchronously on its own); the join
     returns its result. */
  int32_t async_rc;
  int async_pending;
};

/* ---------------------------------------------------------------------------------------------------- */
/* Launchers (each kernel file); all asynchronous on `stream`, none synchronises or allocates.           */

/* kernels_misc.cu */
/* x (T, D) = the embedding rows of the step's tokens */
void hc_embed(cudaStream_t st, float* x, const hc_weight* emb, const hc_batch_dev* bd, int32_t T, int32_t D);
/* x += add (when add); out = rmsnorm(x) * w, per row (n_rows rows). */
void hc_add_rmsnorm(cudaStream_t st, float* out, float* x, const float* add, const float* w, int32_t n_rows, int32_t D,
                    float eps);
/* out (R, D) = rows bd->logit_rows of x */
void hc_gather_rows(cudaStream_t st, float* out, const float* x, const hc_batch_dev* bd, int32_t n_rows, int32_t D);
/* Biases, q/k norms, RoPE, then k and v into the cache (layer `layer`). */
void hc_qkv_post(cudaStream_t st, const hearth_model* m, const hearth_context* ctx, int32_t layer, int32_t T);
/* a = silu(a) * b over (T, F) */
void hc_swiglu(cudaStream_t st, float* a, const float* b, int64_t n);
/* Quantizes x (T, k) into act (k a multiple of 32). */
void hc_quantize_act(cudaStream_t st, const hc_qact* act, const float* x, int32_t T, int32_t k);

/* kernels_matmul.cu: y_i = x @ w_i^T for the targets; x (T, k) f32, act its quantized form (filled by the
   caller when any target is quantized). Picks the decode matvec (T <= HC_MATVEC_MAX_T) or the tiled
   (tensor-core) kernels. */
#define HC_MATVEC_MAX_T 8
void hc_matmul(cudaStream_t st, const hc_targets* tg, const float* x, const hc_qact* act, int32_t T, int64_t k);

/* kernels_attention.cu */
void hc_attention(cudaStream_t st, const hearth_model* m, const hearth_context* ctx, int32_t layer, int32_t n_items);
/* Sets the shared-memory limits of the attention kernels (once per device). */
cudaError_t hc_attention_init(int32_t hd);

/* sampler.cu: one block per sequence; reads the logits rows bd->sample_row names. */
void hc_sample(cudaStream_t st, const hearth_context* ctx, int32_t n_seqs);

/* Device uniform in [0, 1), bit-identical to kernels/cpu/sampler.c's hearth_uniform. */
__host__ __device__ static inline uint64_t hc_mix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
__host__ __device__ static inline double hc_uniform(uint64_t seed, uint64_t position) {
  uint64_t r = hc_mix64(seed ^ hc_mix64(position));
  return (double)(r >> 11) * (1.0 / 9007199254740992.0); /* 53 bits */
}

/* forward.cu: embedding through the final norm (xb (T, D) holds the final hidden states), and logits
   (R, V) into ctx->logits from R rows of hidden states. */
void hc_forward(hearth_context* ctx, int32_t T, int32_t n_items);
void hc_lm_head(hearth_context* ctx, const float* rows, int32_t R);

/* Host helpers (model.cu) */
int32_t hc_use_device(int32_t device, char* err, size_t err_len);
/* Uploads host bytes of w->dtype (GGUF layout; w->rows, w->cols set) into w's device layout; with m NULL
   the caller owns (cudaFree) w->data and w->scales. */
int32_t hc_upload_weight(hearth_model* m, hc_weight* w, const void* host, const char* name, char* err, size_t err_len);

#endif
