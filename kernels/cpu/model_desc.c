/*
 * model_desc.c — the backend-independent half of building a model (../include/hearth_model_desc.h):
 * compiled into the CPU library and the CUDA one, so that a description either backend accepts, the
 * other accepts too, and a refused one gets the same message. Every failure names the tensor.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../include/hearth_fail.h"
#include "../include/hearth_half.h"
#include "../include/hearth_model_desc.h"
#include "quant.h"

const char* const hearth_role_names[HEARTH_T_ROLE_COUNT] = {
    "token_embd", "output_norm", "lm_head", "attn_norm", "wq",       "wk",     "wv",   "wo",     "bq",
    "bk",         "bv",          "q_norm",  "k_norm",    "ffn_norm", "w_gate", "w_up", "w_down",
};

const char* const hearth_dtype_names[HEARTH_DTYPE_COUNT] = {"f32",  "f16",  "bf16", "q8_0", "q4_0",
                                                            "q4_1", "q5_0", "q5_1", "q2_k", "q3_k",
                                                            "q4_k", "q5_k", "q6_k"};

/* Element sizes of the float dtypes; quantized ones are sized per row by hearth_quant_row_bytes. */
static const size_t DTYPE_SIZE[HEARTH_N_FLOAT_DTYPES] = {4, 2, 2};

uint64_t hearth_tensor_bytes(int32_t dtype, uint64_t rows, uint64_t cols) {
  if (dtype < HEARTH_N_FLOAT_DTYPES) return rows * cols * DTYPE_SIZE[dtype];
  return rows * (uint64_t)hearth_quant_row_bytes(dtype, (int64_t)cols);
}

size_t hearth_dtype_alignment(int32_t dtype) { return dtype == HEARTH_DTYPE_F32 ? 4 : 2; }

const void* hearth_realign_source(const void* src, int32_t dtype, size_t bytes, void** copy) {
  *copy = NULL;
  if ((uintptr_t)src % hearth_dtype_alignment(dtype) == 0) return src;
  if (!(*copy = malloc(bytes ? bytes : 1))) return NULL; /* malloc's alignment is enough for every dtype */
  memcpy(*copy, src, bytes);
  return *copy;
}

static int role_is_global(int32_t role) {
  return role == HEARTH_T_TOKEN_EMBD || role == HEARTH_T_OUTPUT_NORM || role == HEARTH_T_LM_HEAD;
}

/* Layer -1 (the global roles) is stored at index 0 of a role's n_layers + 1 slots. */
static size_t record_index(int32_t n_layers, int32_t role, int32_t layer) {
  int32_t slot = role_is_global(role) ? 0 : layer + 1;
  return (size_t)role * (size_t)(n_layers + 1) + (size_t)slot;
}

hearth_tensor_record* hearth_new_records(int32_t n_layers) {
  return calloc((size_t)HEARTH_T_ROLE_COUNT * (size_t)(n_layers + 1), sizeof(hearth_tensor_record));
}

/* The shape a role must have under this config: n_dims and dims; 0 if the role is not used. */
static int expected_shape(const hearth_model_config* c, int32_t role, int64_t dims[2]) {
  const int64_t q_dim = (int64_t)c->n_heads * c->head_dim, kv_dim = (int64_t)c->n_kv_heads * c->head_dim;
  const int bias = (c->flags & HEARTH_CFG_QKV_BIAS) != 0, qk_norm = (c->flags & HEARTH_CFG_QK_NORM) != 0;
  switch (role) {
    case HEARTH_T_TOKEN_EMBD: dims[0] = c->vocab_size, dims[1] = c->dim; return 2;
    case HEARTH_T_OUTPUT_NORM: dims[0] = c->dim; return 1;
    case HEARTH_T_LM_HEAD:
      if (c->flags & HEARTH_CFG_TIED_EMBED) return 0;
      dims[0] = c->vocab_size, dims[1] = c->dim;
      return 2;
    case HEARTH_T_ATTN_NORM: dims[0] = c->dim; return 1;
    case HEARTH_T_WQ: dims[0] = q_dim, dims[1] = c->dim; return 2;
    case HEARTH_T_WK: dims[0] = kv_dim, dims[1] = c->dim; return 2;
    case HEARTH_T_WV: dims[0] = kv_dim, dims[1] = c->dim; return 2;
    case HEARTH_T_WO: dims[0] = c->dim, dims[1] = q_dim; return 2;
    case HEARTH_T_BQ: dims[0] = q_dim; return bias ? 1 : 0;
    case HEARTH_T_BK: dims[0] = kv_dim; return bias ? 1 : 0;
    case HEARTH_T_BV: dims[0] = kv_dim; return bias ? 1 : 0;
    case HEARTH_T_Q_NORM: dims[0] = c->head_dim; return qk_norm ? 1 : 0;
    case HEARTH_T_K_NORM: dims[0] = c->head_dim; return qk_norm ? 1 : 0;
    case HEARTH_T_FFN_NORM: dims[0] = c->dim; return 1;
    case HEARTH_T_W_GATE: dims[0] = c->hidden_dim, dims[1] = c->dim; return 2;
    case HEARTH_T_W_UP: dims[0] = c->hidden_dim, dims[1] = c->dim; return 2;
    case HEARTH_T_W_DOWN: dims[0] = c->dim, dims[1] = c->hidden_dim; return 2;
    default: return 0;
  }
}

int32_t hearth_check_model_config(const hearth_model_config* cfg, char* err, size_t err_len) {
  if (!cfg) return hearth_fail(err, err_len, HEARTH_E_INVALID, "model config is NULL");
  const hearth_model_config* c = cfg;
  if (c->dim <= 0 || c->hidden_dim <= 0 || c->n_layers <= 0 || c->n_heads <= 0 || c->n_kv_heads <= 0 ||
      c->head_dim <= 0 || c->vocab_size <= 0 || c->max_seq_len <= 0)
    return hearth_fail(err, err_len, HEARTH_E_INVALID,
                       "model config: dimensions must be positive (dim %d, hidden_dim %d, n_layers %d, n_heads %d, "
                       "n_kv_heads %d, head_dim %d, vocab_size %d, max_seq_len %d)",
                       c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim, c->vocab_size,
                       c->max_seq_len);
  if (c->n_heads % c->n_kv_heads != 0)
    return hearth_fail(err, err_len, HEARTH_E_INVALID,
                       "model config: n_heads %d is not a multiple of n_kv_heads %d", c->n_heads, c->n_kv_heads);
  if (c->head_dim % 2 != 0 || c->n_layers > 4096 || c->head_dim > 1024 || c->sliding_window < 0 ||
      (c->rope_style != HEARTH_ROPE_HALF && c->rope_style != HEARTH_ROPE_INTERLEAVED))
    return hearth_fail(err, err_len, HEARTH_E_INVALID,
                       "model config: unsupported head_dim %d / n_layers %d / sliding_window %d / rope_style %d",
                       c->head_dim, c->n_layers, c->sliding_window, c->rope_style);
  return HEARTH_OK;
}

int32_t hearth_map_weight_file(hearth_mapped_file* files, int32_t* n_files, const char* path, char* err,
                               size_t err_len) {
  if (*n_files >= HEARTH_MAX_FILES)
    return hearth_fail(err, err_len, HEARTH_E_INVALID, "%s: more than %d weight files", path, HEARTH_MAX_FILES);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return hearth_fail(err, err_len, HEARTH_E_IO, "%s: cannot open: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    return hearth_fail(err, err_len, HEARTH_E_IO, "%s: cannot stat: %s", path, strerror(e));
  }
  void* addr = NULL;
  if (st.st_size > 0) {
    addr = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (addr == MAP_FAILED) {
      int e = errno;
      close(fd);
      return hearth_fail(err, err_len, HEARTH_E_IO, "%s: cannot map: %s", path, strerror(e));
    }
  }
  close(fd); /* the mapping stays valid */
  files[*n_files].addr = addr;
  files[*n_files].size = (size_t)st.st_size;
  return (*n_files)++;
}

void hearth_unmap_weight_files(hearth_mapped_file* files, int32_t n_files) {
  for (int32_t i = 0; i < n_files; i++)
    if (files[i].addr) munmap(files[i].addr, files[i].size), files[i].addr = NULL;
}

int32_t hearth_record_tensor(const hearth_model_config* c, const hearth_mapped_file* files, int32_t n_files,
                             hearth_tensor_record* records, const char* name, int32_t role, int32_t layer,
                             int32_t file, uint64_t offset, uint64_t nbytes, int32_t dtype, int32_t n_dims,
                             const int64_t* dims, char* err, size_t err_len) {
  if (role < 0 || role >= HEARTH_T_ROLE_COUNT)
    return hearth_fail(err, err_len, HEARTH_E_INVALID, "%s: unknown tensor role %d", name, role);
  if (role_is_global(role) ? layer != -1 : (layer < 0 || layer >= c->n_layers))
    return hearth_fail(err, err_len, HEARTH_E_INVALID, "%s: layer %d out of range for %s (model has %d layers)",
                       name, layer, hearth_role_names[role], c->n_layers);
  if (file < 0 || file >= n_files)
    return hearth_fail(err, err_len, HEARTH_E_INVALID, "%s: file index %d was not mapped", name, file);
  if (dtype < 0 || dtype >= HEARTH_DTYPE_COUNT)
    return hearth_fail(err, err_len, HEARTH_E_INVALID, "%s: unknown dtype code %d", name, dtype);
  if (n_dims < 1 || n_dims > 4 || !dims)
    return hearth_fail(err, err_len, HEARTH_E_INVALID, "%s: %d dimensions", name, n_dims);
  uint64_t count = 1;
  for (int32_t i = 0; i < n_dims; i++) {
    if (dims[i] <= 0 || count > ((uint64_t)1 << 48) / (uint64_t)dims[i])
      return hearth_fail(err, err_len, HEARTH_E_BOUNDS, "%s: dimension %d (%lld) is invalid", name, i,
                         (long long)dims[i]);
    count *= (uint64_t)dims[i];
  }
  /* Rows are the leading dimensions, a row the last one (quantized blocks run along it). */
  const uint64_t cols = (uint64_t)dims[n_dims - 1], rows = count / cols;
  const uint64_t want_bytes = hearth_tensor_bytes(dtype, rows, cols);
  if (want_bytes == 0)
    return hearth_fail(err, err_len, HEARTH_E_INVALID, "%s: rows of %llu values do not fill whole %s blocks", name,
                       (unsigned long long)cols, hearth_dtype_names[dtype]);
  if (want_bytes != nbytes)
    return hearth_fail(err, err_len, HEARTH_E_BOUNDS, "%s: %llu bytes do not hold %llu %s elements", name,
                       (unsigned long long)nbytes, (unsigned long long)count, hearth_dtype_names[dtype]);
  size_t fsize = files[file].size;
  if (offset > fsize || nbytes > fsize - offset)
    return hearth_fail(err, err_len, HEARTH_E_BOUNDS,
                       "%s: bytes %llu..%llu run past the end of its file (%llu bytes)", name,
                       (unsigned long long)offset, (unsigned long long)(offset + nbytes), (unsigned long long)fsize);
  /* Any offset: one the kernels cannot read in place is copied at finish (hearth_realign_source). */
  int64_t want[2];
  int want_dims = expected_shape(c, role, want);
  if (want_dims == 0)
    return hearth_fail(err, err_len, HEARTH_E_INVALID, "%s: %s is not used by this model's config", name,
                       hearth_role_names[role]);
  int shape_ok = n_dims == want_dims;
  for (int i = 0; shape_ok && i < want_dims; i++) shape_ok = dims[i] == want[i];
  if (!shape_ok) {
    char got[96] = "", expect[64];
    size_t at = 0;
    for (int32_t i = 0; i < n_dims && at < sizeof got; i++)
      at += (size_t)snprintf(got + at, sizeof got - at, "%s%lld", i ? ", " : "", (long long)dims[i]);
    if (want_dims == 2) snprintf(expect, sizeof expect, "%lld, %lld", (long long)want[0], (long long)want[1]);
    else snprintf(expect, sizeof expect, "%lld", (long long)want[0]);
    return hearth_fail(err, err_len, HEARTH_E_BOUNDS, "%s: shape [%s] does not match the config, expected [%s]",
                       name, got, expect);
  }
  hearth_tensor_record* r = &records[record_index(c->n_layers, role, layer)];
  if (r->present) return hearth_fail(err, err_len, HEARTH_E_INVALID, "%s: given twice (also as %s)", name, r->name);
  r->present = 1;
  r->file = file;
  r->offset = offset;
  r->nbytes = nbytes;
  r->dtype = dtype;
  r->n_dims = n_dims;
  for (int32_t i = 0; i < n_dims; i++) r->dims[i] = dims[i];
  snprintf(r->name, sizeof r->name, "%s", name);
  return HEARTH_OK;
}

int32_t hearth_check_weight_dtype(int32_t weight_dtype, char* err, size_t err_len) {
  if (weight_dtype < -1 || weight_dtype >= HEARTH_DTYPE_COUNT)
    return hearth_fail(err, err_len, HEARTH_E_INVALID, "finish: unknown weight dtype code %d", weight_dtype);
  if (weight_dtype >= HEARTH_N_FLOAT_DTYPES && weight_dtype != HEARTH_DTYPE_Q8_0 &&
      weight_dtype != HEARTH_DTYPE_Q4_0 && weight_dtype != HEARTH_DTYPE_Q4_K)
    return hearth_fail(err, err_len, HEARTH_E_INVALID,
                       "finish: quantizing at load supports q8_0, q4_0 and q4_k, not %s",
                       hearth_dtype_names[weight_dtype]);
  return HEARTH_OK;
}

int32_t hearth_find_record(const hearth_model_config* c, const hearth_tensor_record* records, int32_t role,
                           int32_t layer, const hearth_tensor_record** r, int64_t* rows, int64_t* cols,
                           char* err, size_t err_len) {
  int64_t dims[2];
  int n = expected_shape(c, role, dims);
  *r = NULL;
  if (n == 0) return HEARTH_OK;
  const hearth_tensor_record* found = &records[record_index(c->n_layers, role, layer)];
  if (!found->present) {
    if (layer >= 0)
      return hearth_fail(err, err_len, HEARTH_E_MISSING, "missing tensor: %s of layer %d", hearth_role_names[role],
                         layer);
    return hearth_fail(err, err_len, HEARTH_E_MISSING, "missing tensor: %s", hearth_role_names[role]);
  }
  *r = found;
  *rows = n == 2 ? dims[0] : 1;
  *cols = n == 2 ? dims[1] : dims[0];
  return HEARTH_OK;
}

/* Quantized types need rows that fill whole blocks (SmolLM2's 576 is no multiple of 256), so Q4_K falls
   back to Q4_0, and a matrix no 32-block type fits keeps its stored dtype. */
int32_t hearth_convertible_dtype(int32_t want, int32_t stored, int64_t cols) {
  if (want < HEARTH_N_FLOAT_DTYPES || hearth_quant_row_bytes(want, cols) > 0) return want;
  if (want == HEARTH_DTYPE_Q4_K && hearth_quant_row_bytes(HEARTH_DTYPE_Q4_0, cols) > 0) return HEARTH_DTYPE_Q4_0;
  return stored;
}

/* Every dtype goes through float, so a conversion gives the same bytes on every backend (the CUDA one
   converts on the host with these same rows before its upload). */
int32_t hearth_convert_rows(void* dst, int32_t to, const void* src, int32_t from, int64_t r0, int64_t r1,
                            int64_t cols, float* row) {
  const uint64_t src_row = hearth_tensor_bytes(from, 1, (uint64_t)cols);
  const uint64_t dst_row = hearth_tensor_bytes(to, 1, (uint64_t)cols);
  int32_t rc = 0;
  for (int64_t r = r0; r < r1; r++) {
    hearth_dequantize_row(from, (const uint8_t*)src + (uint64_t)r * src_row, row, cols);
    uint8_t* out = (uint8_t*)dst + (uint64_t)r * dst_row;
    if (to == HEARTH_DTYPE_F32) memcpy(out, row, sizeof(float) * (size_t)cols);
    else if (to == HEARTH_DTYPE_BF16)
      for (int64_t j = 0; j < cols; j++) ((uint16_t*)out)[j] = hearth_f32_to_bf16(row[j]);
    else if (to == HEARTH_DTYPE_F16)
      for (int64_t j = 0; j < cols; j++) ((uint16_t*)out)[j] = hearth_f32_to_f16(row[j]);
    else if (hearth_quantize_row(to, row, out, cols) != 0)
      rc = -1;
  }
  return rc;
}
