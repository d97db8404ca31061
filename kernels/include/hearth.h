/*
 * hearth.h — the one C interface between the Deno program and the compute backends.
 *
 * TypeScript parses file formats and hands C a model description: the dimensions (hearth_model_config),
 * the files to map, and for each tensor its role, layer, file, byte offset, dtype and shape. C maps the
 * bytes, checks every bound, and runs batched forward steps over a paged KV cache.
 *
 * Conventions
 *  - Every function that can fail takes (char* err, size_t err_len) and writes a NUL-terminated message
 *    there; it returns NULL or a negative hearth_status. Nothing here aborts the process.
 *  - A failed call leaves nothing allocated.
 *  - Matrices follow Hugging Face's nn.Linear layout: weight (out_features, in_features), row-major.
 *  - All structs below are laid out with 4- and 8-byte fields only, so TypeScript can fill them with a
 *    DataView at the offsets written next to each field.
 */
#ifndef HEARTH_H
#define HEARTH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define HEARTH_API __declspec(dllexport)
#else
#define HEARTH_API __attribute__((visibility("default")))
#endif

#define HEARTH_ABI_VERSION 1

typedef enum {
  HEARTH_OK = 0,
  HEARTH_E_INVALID = -1,  /* bad argument or description */
  HEARTH_E_IO = -2,       /* a file could not be opened or mapped */
  HEARTH_E_NOMEM = -3,    /* an allocation failed */
  HEARTH_E_BOUNDS = -4,   /* an offset, shape or id runs past what it refers to */
  HEARTH_E_MISSING = -5,  /* a required tensor was not given */
} hearth_status;

/* Storage types of weights. Numbers are stable: TypeScript and the CUDA backend use them too. */
typedef enum {
  HEARTH_DTYPE_F32 = 0,
  HEARTH_DTYPE_F16 = 1,
  HEARTH_DTYPE_BF16 = 2,
  /* Block-quantized types, laid out as GGUF stores them (kernels/include/hearth_quant.h). */
  HEARTH_DTYPE_Q8_0 = 3,
  HEARTH_DTYPE_Q4_0 = 4,
  HEARTH_DTYPE_Q4_1 = 5,
  HEARTH_DTYPE_Q5_0 = 6,
  HEARTH_DTYPE_Q5_1 = 7,
  HEARTH_DTYPE_Q2_K = 8,
  HEARTH_DTYPE_Q3_K = 9,
  HEARTH_DTYPE_Q4_K = 10,
  HEARTH_DTYPE_Q5_K = 11,
  HEARTH_DTYPE_Q6_K = 12,
  HEARTH_DTYPE_COUNT
} hearth_dtype;

/* What a tensor is for. Per-layer roles carry a layer index; the others take layer = -1. */
typedef enum {
  HEARTH_T_TOKEN_EMBD = 0,  /* (vocab, dim) */
  HEARTH_T_OUTPUT_NORM = 1, /* (dim) */
  HEARTH_T_LM_HEAD = 2,     /* (vocab, dim); absent when embeddings are tied */
  HEARTH_T_ATTN_NORM = 3,   /* (dim) */
  HEARTH_T_WQ = 4,          /* (n_heads * head_dim, dim) */
  HEARTH_T_WK = 5,          /* (n_kv_heads * head_dim, dim) */
  HEARTH_T_WV = 6,          /* (n_kv_heads * head_dim, dim) */
  HEARTH_T_WO = 7,          /* (dim, n_heads * head_dim) */
  HEARTH_T_BQ = 8,          /* (n_heads * head_dim)     only with HEARTH_CFG_QKV_BIAS */
  HEARTH_T_BK = 9,          /* (n_kv_heads * head_dim)  only with HEARTH_CFG_QKV_BIAS */
  HEARTH_T_BV = 10,         /* (n_kv_heads * head_dim)  only with HEARTH_CFG_QKV_BIAS */
  HEARTH_T_Q_NORM = 11,     /* (head_dim)               only with HEARTH_CFG_QK_NORM */
  HEARTH_T_K_NORM = 12,     /* (head_dim)               only with HEARTH_CFG_QK_NORM */
  HEARTH_T_FFN_NORM = 13,   /* (dim) */
  HEARTH_T_W_GATE = 14,     /* (hidden_dim, dim) */
  HEARTH_T_W_UP = 15,       /* (hidden_dim, dim) */
  HEARTH_T_W_DOWN = 16,     /* (dim, hidden_dim) */
  HEARTH_T_ROLE_COUNT
} hearth_tensor_role;

/* Feature flags of hearth_model_config.flags. */
#define HEARTH_CFG_QKV_BIAS (1 << 0)   /* Qwen2: q/k/v projections have biases */
#define HEARTH_CFG_QK_NORM (1 << 1)    /* Qwen3: RMSNorm over each head of q and k before RoPE */
#define HEARTH_CFG_TIED_EMBED (1 << 2) /* lm_head is the token embedding */

/* RoPE pairing. HALF: (i, i + head_dim/2), as Hugging Face's rotate_half. INTERLEAVED: (2i, 2i+1). */
#define HEARTH_ROPE_HALF 0
#define HEARTH_ROPE_INTERLEAVED 1

/* The dimensions of a decoder-only transformer of the Llama family. 64 bytes. */
typedef struct {
  int32_t dim;             /*  0: hidden size */
  int32_t hidden_dim;      /*  4: FFN intermediate size */
  int32_t n_layers;        /*  8 */
  int32_t n_heads;         /* 12: query heads */
  int32_t n_kv_heads;      /* 16: key/value heads (GQA when < n_heads) */
  int32_t head_dim;        /* 20 */
  int32_t vocab_size;      /* 24 */
  int32_t max_seq_len;     /* 28: longest context the model accepts */
  int32_t sliding_window;  /* 32: attend to at most this many positions; 0 = unlimited */
  int32_t flags;           /* 36: HEARTH_CFG_* */
  int32_t rope_style;      /* 40: HEARTH_ROPE_* */
  float norm_eps;          /* 44: RMSNorm epsilon */
  float attn_scale;        /* 48: multiplier of q·k, usually 1/sqrt(head_dim) */
  float rope_attn_factor;  /* 52: multiplier of cos/sin (1 except for YaRN-like scalings) */
  int32_t reserved[2];     /* 56 */
} hearth_model_config;

/* Options of a context: the paged KV cache, the scratch sizes and the thread pool. 32 bytes. */
typedef struct {
  int32_t n_threads;          /*  0: worker threads, >= 1 */
  int32_t kv_block_size;      /*  4: tokens per KV block */
  int32_t kv_num_blocks;      /*  8: blocks in the cache (shared by all sequences) */
  int32_t max_batch_tokens;   /* 12: most tokens one step may carry */
  int32_t max_batch_seqs;     /* 16: most sequences one step may carry */
  int32_t max_blocks_per_seq; /* 20: stride of hearth_batch.block_tables */
  int32_t kv_dtype;           /* 24: element type of the KV cache: HEARTH_DTYPE_F32 (0) or HEARTH_DTYPE_F16 */
  int32_t reserved;           /* 28 */
} hearth_context_options;

/*
 * How one sequence picks its next token. 80 bytes. Steps in order: logit bias and bans, minimum
 * length (stop ids banned), repetition / presence / frequency penalties, no-repeat n-grams,
 * temperature, top-k, top-p, min-p, then a draw with a counter-based RNG keyed by (seed, position).
 * temperature <= 0 means greedy (argmax after the penalties and biases).
 */
typedef struct {
  uint64_t seed;                /*  0 */
  float temperature;            /*  8: <= 0 is greedy */
  float top_p;                  /* 12: 1 = off */
  int32_t top_k;                /* 16: <= 0 = off */
  float min_p;                  /* 20: 0 = off */
  float repetition_penalty;     /* 24: 1 = off; Hugging Face style, over prompt and output */
  float presence_penalty;       /* 28: 0 = off; OpenAI style, over the output */
  float frequency_penalty;      /* 32: 0 = off; OpenAI style, over the output */
  int32_t no_repeat_ngram_size; /* 36: 0 = off; over prompt and output */
  int32_t min_tokens;           /* 40: stop ids are banned until this many tokens were generated */
  int32_t history_start;        /* 44: this sequence's tokens so far are history[history_start ..] */
  int32_t history_len;          /* 48:   of which the first prompt_len are the prompt */
  int32_t prompt_len;           /* 52 */
  int32_t bias_start;           /* 56: bias_ids/bias_values[bias_start .. bias_start + bias_len] */
  int32_t bias_len;             /* 60:   are added to the logits (-inf bans) */
  int32_t stop_ids_start;       /* 64: stop_ids[stop_ids_start .. + stop_ids_len] (for min_tokens) */
  int32_t stop_ids_len;         /* 68 */
  int32_t n_top_logprobs;       /* 72: how many top alternatives to report (<= HEARTH_MAX_TOP_LOGPROBS) */
  int32_t want_logprob;         /* 76: nonzero: report the sampled token's log-probability */
} hearth_sampling;

#define HEARTH_MAX_TOP_LOGPROBS 20

/* hearth_batch.logits_mode */
#define HEARTH_LOGITS_NONE 0
#define HEARTH_LOGITS_LAST 1 /* one row per sequence: its last token */
#define HEARTH_LOGITS_ALL 2  /* one row per token */

/*
 * One forward step over a batch of sequences. Tokens of sequence s are tokens[seq_start[s] ..
 * seq_start[s+1]) at positions positions[...]; positions of a sequence are consecutive and continue
 * its cache (the first new token's position equals the number of tokens already cached). 144 bytes.
 */
typedef struct {
  int32_t n_tokens;                /*   0 */
  int32_t n_seqs;                  /*   4 */
  int32_t logits_mode;             /*   8: HEARTH_LOGITS_* */
  int32_t n_history;               /*  12: length of history */
  int32_t n_bias;                  /*  16: length of bias_ids and bias_values */
  int32_t n_stop_ids;              /*  20: length of stop_ids */
  const int32_t* tokens;           /*  24: (n_tokens) */
  const int32_t* positions;        /*  32: (n_tokens) */
  const int32_t* seq_start;        /*  40: (n_seqs + 1) */
  const int32_t* block_tables;     /*  48: (n_seqs, max_blocks_per_seq) KV block ids */
  const int32_t* sample;           /*  56: (n_seqs) nonzero: sample a token after the last position */
  const hearth_sampling* sampling; /*  64: (n_seqs) */
  const int32_t* history;          /*  72: token ids referenced by hearth_sampling.history_* */
  const int32_t* bias_ids;         /*  80: referenced by hearth_sampling.bias_* */
  const float* bias_values;        /*  88 */
  const int32_t* stop_ids;         /*  96: referenced by hearth_sampling.stop_ids_* */
  int32_t* out_tokens;             /* 104: (n_seqs) sampled token, -1 where not sampled */
  float* out_logprobs;             /* 112: (n_seqs) log-probability of the sampled token, or NULL */
  int32_t* out_top_ids;            /* 120: (n_seqs, HEARTH_MAX_TOP_LOGPROBS) or NULL */
  float* out_top_logprobs;         /* 128: (n_seqs, HEARTH_MAX_TOP_LOGPROBS) or NULL */
  float* out_logits;               /* 136: (rows, vocab) as logits_mode says, raw, or NULL */
} hearth_batch;

typedef struct hearth_model hearth_model;
typedef struct hearth_context hearth_context;

/* Library identity: ABI version, and the instruction set the CPU kernels picked ("avx512", "avx2", "c"). */
HEARTH_API int32_t hearth_abi_version(void);
HEARTH_API const char* hearth_cpu_isa(void);

/* A model under construction: config, then files and tensors, then finish. rope_inv_freq: (head_dim/2). */
HEARTH_API hearth_model* hearth_model_new(const hearth_model_config* cfg, const float* rope_inv_freq,
                                          char* err, size_t err_len);
/* Maps a file read-only. Returns its index (>= 0) for hearth_model_set_tensor, or a hearth_status. */
HEARTH_API int32_t hearth_model_map_file(hearth_model* m, const char* path, char* err, size_t err_len);
/* Records one tensor: bytes [offset, offset + nbytes) of file `file`, with the given dtype and shape. */
HEARTH_API int32_t hearth_model_set_tensor(hearth_model* m, const char* name, int32_t role, int32_t layer,
                                           int32_t file, uint64_t offset, uint64_t nbytes, int32_t dtype,
                                           int32_t n_dims, const int64_t* dims, char* err, size_t err_len);
/* on = 1: hearth_model_finish copies the weights it would read from the mapped files (those used as
   stored) into the model's own memory, backed by huge pages where the system has them: a decode streams
   every weight each token, and huge pages make that faster; the memory is then not shared with the page
   cache. Before finish; the CUDA library accepts it and has nothing to do (its weights are on the device). */
HEARTH_API int32_t hearth_model_set_in_memory(hearth_model* m, int32_t on, char* err, size_t err_len);
/* Checks that every tensor is there and converts weights to weight_dtype (-1: keep as stored). */
HEARTH_API int32_t hearth_model_finish(hearth_model* m, int32_t weight_dtype, char* err, size_t err_len);
/* Bytes of weights the model holds in its own memory (converted copies), and mapped from files. */
HEARTH_API uint64_t hearth_model_owned_bytes(const hearth_model* m);
HEARTH_API uint64_t hearth_model_mapped_bytes(const hearth_model* m);
HEARTH_API void hearth_model_free(hearth_model* m);

HEARTH_API hearth_context* hearth_context_new(hearth_model* m, const hearth_context_options* opts, char* err,
                                              size_t err_len);
/* Bytes the context allocated for its KV cache. */
HEARTH_API uint64_t hearth_context_kv_bytes(const hearth_context* ctx);
/* Runs one forward step; see hearth_batch. Safe to call from a worker thread; one step at a time per ctx. */
HEARTH_API int32_t hearth_step(hearth_context* ctx, const hearth_batch* batch, char* err, size_t err_len);
/* hearth_step in two halves, for a caller with other work to do meanwhile: begin hands the step to the
   context's threads and returns at once (0, or an error when a step is already in flight); the batch, its
   arrays and err must stay untouched until hearth_step_join, which works on the step with the caller's
   thread until it is done and returns what hearth_step would have (the message in begin's err). On the
   CPU the step runs on one thread fewer until the join: the caller's thread is one of opts.n_threads. */
HEARTH_API int32_t hearth_step_begin(hearth_context* ctx, const hearth_batch* batch, char* err, size_t err_len);
HEARTH_API int32_t hearth_step_join(hearth_context* ctx);
HEARTH_API void hearth_context_free(hearth_context* ctx);

#ifdef __cplusplus
}
#endif
#endif
