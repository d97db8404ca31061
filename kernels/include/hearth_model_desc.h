/*
 * hearth_model_desc.h — the part of building a model from TypeScript's description that does not depend
 * on where the weights end up: the config check, mapping the weight files, checking and recording each
 * tensor, finding the records again in hearth_model_finish, and the dtype (and row conversion) a weight
 * is loaded as. kernels/cpu/model_desc.c implements it and is compiled into the CPU library and the CUDA
 * one alike, so both backends accept and refuse the same descriptions with the same messages.
 *
 * Each backend's struct hearth_model is its own (host or device weights); these functions take the
 * pieces of it they read (config, files, records). Plain C.
 */
#ifndef HEARTH_MODEL_DESC_H
#define HEARTH_MODEL_DESC_H

#include <stddef.h>
#include <stdint.h>

#include "hearth.h"

#ifdef __cplusplus
extern "C" {
#endif

#define HEARTH_MAX_FILES 256

/* Dtype codes below this are the float types (F32, F16, BF16); the others are block-quantized. */
#define HEARTH_N_FLOAT_DTYPES 3

/* Names in error messages, indexed by hearth_tensor_role and by hearth_dtype. */
extern const char* const hearth_role_names[HEARTH_T_ROLE_COUNT];
extern const char* const hearth_dtype_names[HEARTH_DTYPE_COUNT];

typedef struct {
  void* addr;  /* mmap'd bytes (NULL for an empty file, or once the backend dropped the map) */
  size_t size; /* file size in bytes */
} hearth_mapped_file;

/* A tensor as TypeScript described it, before hearth_model_finish resolves it into a weight. */
typedef struct {
  int32_t present;
  int32_t file;
  uint64_t offset;
  uint64_t nbytes;
  int32_t dtype;
  int32_t n_dims;
  int64_t dims[4];
  char name[160];
} hearth_tensor_record;

/* The per-layer weights in the order hearth_model_finish resolves them: X(role, field, vector) with the
   field both backends' layer structs name the weight by; a vector (norm, bias) is loaded as f32, a
   matrix as the weight dtype asked. */
#define HEARTH_LAYER_TENSORS(X)       \
  X(HEARTH_T_ATTN_NORM, attn_norm, 1) \
  X(HEARTH_T_WQ, wq, 0)               \
  X(HEARTH_T_WK, wk, 0)               \
  X(HEARTH_T_WV, wv, 0)               \
  X(HEARTH_T_WO, wo, 0)               \
  X(HEARTH_T_BQ, bq, 1)               \
  X(HEARTH_T_BK, bk, 1)               \
  X(HEARTH_T_BV, bv, 1)               \
  X(HEARTH_T_Q_NORM, q_norm, 1)       \
  X(HEARTH_T_K_NORM, k_norm, 1)       \
  X(HEARTH_T_FFN_NORM, ffn_norm, 1)   \
  X(HEARTH_T_W_GATE, w_gate, 0)       \
  X(HEARTH_T_W_UP, w_up, 0)           \
  X(HEARTH_T_W_DOWN, w_down, 0)

/* Bytes of a (rows, cols) tensor of dtype; 0 when cols does not fit the dtype's blocks. */
uint64_t hearth_tensor_bytes(int32_t dtype, uint64_t rows, uint64_t cols);

/* The alignment the kernels read a tensor of dtype at: its element's for the float types, 2 for the
   quantized ones (their blocks' scales are f16). */
size_t hearth_dtype_alignment(int32_t dtype);

/* src when it sits at dtype's alignment; else a malloc'd copy of its bytes, also put in *copy for the
   caller to free (NULL: out of memory). A file may place tensors anywhere: a safetensors header is not
   always padded to a multiple of 8 bytes (some published checkpoints' data starts at an odd offset), and
   a GGUF may ask for an alignment of 1. */
const void* hearth_realign_source(const void* src, int32_t dtype, size_t bytes, void** copy);

/* hearth_model_new's checks of the config (NULL included); HEARTH_OK or the status with its message. */
int32_t hearth_check_model_config(const hearth_model_config* cfg, char* err, size_t err_len);

/* The records of a model (HEARTH_T_ROLE_COUNT, n_layers + 1), zeroed: calloc'd, the caller frees them. */
hearth_tensor_record* hearth_new_records(int32_t n_layers);

/* Maps path read-only as files[*n_files] (at most HEARTH_MAX_FILES) and returns its index, or a status. */
int32_t hearth_map_weight_file(hearth_mapped_file* files, int32_t* n_files, const char* path, char* err,
                               size_t err_len);
/* Unmaps the files that are still mapped (addr becomes NULL; sizes stay). */
void hearth_unmap_weight_files(hearth_mapped_file* files, int32_t n_files);

/* hearth_model_set_tensor once the model is known to be there and unfinished: checks the tensor against
   the config (role, layer, dtype, dims, bytes, bounds in its file, expected shape) and records it. */
int32_t hearth_record_tensor(const hearth_model_config* c, const hearth_mapped_file* files, int32_t n_files,
                             hearth_tensor_record* records, const char* name, int32_t role, int32_t layer,
                             int32_t file, uint64_t offset, uint64_t nbytes, int32_t dtype, int32_t n_dims,
                             const int64_t* dims, char* err, size_t err_len);

/* hearth_model_finish's check of weight_dtype: -1 (as stored), a float type, or Q8_0, Q4_0, Q4_K. */
int32_t hearth_check_weight_dtype(int32_t weight_dtype, char* err, size_t err_len);

/* The record of role (layer -1 for the global ones) and its (rows, cols) under the config; *r NULL when
   the config does not use the role, HEARTH_E_MISSING when it does and none was given. */
int32_t hearth_find_record(const hearth_model_config* c, const hearth_tensor_record* records, int32_t role,
                           int32_t layer, const hearth_tensor_record** r, int64_t* rows, int64_t* cols,
                           char* err, size_t err_len);

/* The dtype a matrix of `cols` columns stored as `stored` is converted to when `want` is asked. */
int32_t hearth_convertible_dtype(int32_t want, int32_t stored, int64_t cols);

/* Rows [r0, r1) of a (rows, cols) tensor from dtype `from` to `to`: each dequantized into `row` (cols
   floats), then narrowed or quantized. Returns -1 if the quantizer refused a row, else 0. */
int32_t hearth_convert_rows(void* dst, int32_t to, const void* src, int32_t from, int64_t r0, int64_t r1,
                            int64_t cols, float* row);

#ifdef __cplusplus
}
#endif

#endif
