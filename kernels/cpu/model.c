/*
 * model.c — building a model from TypeScript's description: map files, record tensors, check every
 * shape against the config, convert dtypes where asked. Every failure names the tensor and leaves
 * nothing allocated beyond the model, which the caller frees.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../include/hearth_half.h"
#include "internal.h"
#include "quant.h"

static const char* ROLE_NAMES[HEARTH_T_ROLE_COUNT] = {
    "token_embd", "output_norm", "lm_head", "attn_norm", "wq",       "wk",     "wv",    "wo",     "bq",
    "bk",         "bv",          "q_norm",  "k_norm",    "ffn_norm", "w_gate", "w_up",  "w_down",
};

/* Element sizes of the float dtypes; quantized ones are sized per row by hearth_quant_row_bytes. */
#define N_FLOAT_DTYPES 3
static const size_t DTYPE_SIZE[N_FLOAT_DTYPES] = {4, 2, 2};
static const char* DTYPE_NAMES[HEARTH_DTYPE_COUNT] = {"f32",  "f16",  "bf16", "q8_0", "q4_0", "q4_1", "q5_0",
                                                      "q5_1", "q2_k", "q3_k", "q4_k", "q5_k", "q6_k"};

/* Bytes of a (rows, cols) tensor of dtype; 0 when cols does not fit the dtype's blocks. */
static uint64_t tensor_bytes(int32_t dtype, uint64_t rows, uint64_t cols) {
  if (dtype < N_FLOAT_DTYPES) return rows * cols * DTYPE_SIZE[dtype];
  return rows * (uint64_t)hearth_quant_row_bytes(dtype, (int64_t)cols);
}

static int role_is_global(int32_t role) {
  return role == HEARTH_T_TOKEN_EMBD || role == HEARTH_T_OUTPUT_NORM || role == HEARTH_T_LM_HEAD;
}

static hearth_tensor_record* record_at(hearth_model* m, int32_t role, int32_t layer) {
  int32_t slot = role_is_global(role) ? 0 : layer + 1;
  return &m->records[(size_t)role * (size_t)(m->cfg.n_layers + 1) + (size_t)slot];
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

hearth_model* hearth_model_new(const hearth_model_config* cfg, const float* rope_inv_freq, char* err,
                               size_t err_len) {
  if (!cfg) {
    hearth_fail(err, err_len, HEARTH_E_INVALID, "model config is NULL");
    return NULL;
  }
  const hearth_model_config* c = cfg;
  if (c->dim <= 0 || c->hidden_dim <= 0 || c->n_layers <= 0 || c->n_heads <= 0 || c->n_kv_heads <= 0 ||
      c->head_dim <= 0 || c->vocab_size <= 0 || c->max_seq_len <= 0) {
    hearth_fail(err, err_len, HEARTH_E_INVALID,
                "model config: dimensions must be positive (dim %d, hidden_dim %d, n_layers %d, n_heads %d, "
                "n_kv_heads %d, head_dim %d, vocab_size %d, max_seq_len %d)",
                c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim, c->vocab_size,
                c->max_seq_len);
    return NULL;
  }
  if (c->n_heads % c->n_kv_heads != 0) {
    hearth_fail(err, err_len, HEARTH_E_INVALID, "model config: n_heads %d is not a multiple of n_kv_heads %d",
                c->n_heads, c->n_kv_heads);
    return NULL;
  }
  if (c->head_dim % 2 != 0 || c->n_layers > 4096 || c->head_dim > 1024 || c->sliding_window < 0 ||
      (c->rope_style != HEARTH_ROPE_HALF && c->rope_style != HEARTH_ROPE_INTERLEAVED)) {
    hearth_fail(err, err_len, HEARTH_E_INVALID,
                "model config: unsupported head_dim %d / n_layers %d / sliding_window %d / rope_style %d",
                c->head_dim, c->n_layers, c->sliding_window, c->rope_style);
    return NULL;
  }
  if (!rope_inv_freq) {
    hearth_fail(err, err_len, HEARTH_E_INVALID, "model config: rope_inv_freq is NULL");
    return NULL;
  }
  hearth_model* m = calloc(1, sizeof(hearth_model));
  if (!m) goto nomem;
  m->cfg = *c;
  m->rope_inv_freq = hearth_alloc((size_t)c->head_dim / 2, sizeof(float));
  m->records = calloc((size_t)HEARTH_T_ROLE_COUNT * (size_t)(c->n_layers + 1), sizeof(hearth_tensor_record));
  m->layers = calloc((size_t)c->n_layers, sizeof(hearth_layer_weights));
  if (!m->rope_inv_freq || !m->records || !m->layers) goto nomem;
  memcpy(m->rope_inv_freq, rope_inv_freq, sizeof(float) * (size_t)(c->head_dim / 2));
  return m;
nomem:
  hearth_model_free(m);
  hearth_fail(err, err_len, HEARTH_E_NOMEM, "out of memory creating the model");
  return NULL;
}

int32_t hearth_model_map_file(hearth_model* m, const char* path, char* err, size_t err_len) {
  if (!m || !path) return hearth_fail(err, err_len, HEARTH_E_INVALID, "map_file: model or path is NULL");
  if (m->finished) return hearth_fail(err, err_len, HEARTH_E_INVALID, "map_file: model already finished");
  if (m->n_files >= HEARTH_MAX_FILES)
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
  m->files[m->n_files].addr = addr;
  m->files[m->n_files].size = (size_t)st.st_size;
  return m->n_files++;
}

int32_t hearth_model_set_tensor(hearth_model* m, const char* name, int32_t role, int32_t layer, int32_t file,
                                uint64_t offset, uint64_t nbytes, int32_t dtype, int32_t n_dims,
                                const int64_t* dims, char* err, size_t err_len) {
  if (!m || !name) return hearth_fail(err, err_len, HEARTH_E_INVALID, "set_tensor: model or name is NULL");
  if (m->finished) return hearth_fail(err, err_len, HEARTH_E_INVALID, "%s: model already finished", name);
  if (role < 0 || role >= HEARTH_T_ROLE_COUNT)
    return hearth_fail(err, err_len, HEARTH_E_INVALID, "%s: unknown tensor role %d", name, role);
  if (role_is_global(role) ? layer != -1 : (layer < 0 || layer >= m->cfg.n_layers))
    return hearth_fail(err, err_len, HEARTH_E_INVALID, "%s: layer %d out of range for %s (model has %d layers)",
                       name, layer, ROLE_NAMES[role], m->cfg.n_layers);
  if (file < 0 || file >= m->n_files)
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
  const uint64_t want_bytes = tensor_bytes(dtype, rows, cols);
  if (want_bytes == 0)
    return hearth_fail(err, err_len, HEARTH_E_INVALID, "%s: rows of %llu values do not fill whole %s blocks", name,
                       (unsigned long long)cols, DTYPE_NAMES[dtype]);
  if (want_bytes != nbytes)
    return hearth_fail(err, err_len, HEARTH_E_BOUNDS, "%s: %llu bytes do not hold %llu %s elements", name,
                       (unsigned long long)nbytes, (unsigned long long)count, DTYPE_NAMES[dtype]);
  size_t fsize = m->files[file].size;
  if (offset > fsize || nbytes > fsize - offset)
    return hearth_fail(err, err_len, HEARTH_E_BOUNDS,
                       "%s: bytes %llu..%llu run past the end of its file (%llu bytes)", name,
                       (unsigned long long)offset, (unsigned long long)(offset + nbytes), (unsigned long long)fsize);
  if (dtype < N_FLOAT_DTYPES && offset % DTYPE_SIZE[dtype] != 0)
    return hearth_fail(err, err_len, HEARTH_E_INVALID, "%s: offset %llu is not aligned to its dtype", name,
                       (unsigned long long)offset);
  int64_t want[2];
  int want_dims = expected_shape(&m->cfg, role, want);
  if (want_dims == 0)
    return hearth_fail(err, err_len, HEARTH_E_INVALID, "%s: %s is not used by this model's config", name,
                       ROLE_NAMES[role]);
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
  hearth_tensor_record* r = record_at(m, role, layer);
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

static void* own(hearth_model* m, size_t count, size_t size) {
  if (m->n_owned == m->cap_owned) {
    int32_t cap = m->cap_owned ? m->cap_owned * 2 : 64;
    void** grown = realloc(m->owned, sizeof(void*) * (size_t)cap);
    if (!grown) return NULL;
    m->owned = grown;
    m->cap_owned = cap;
  }
  void* p = hearth_alloc(count, size);
  if (!p) return NULL;
  m->owned[m->n_owned++] = p;
  m->owned_bytes += count * size;
  return p;
}

/* Converts a (rows, cols) tensor row by row: any dtype to float, then to the target (float narrowing
   or quantize-on-load). Returns -1 if a row buffer cannot be allocated. */
static int32_t convert(void* dst, int32_t to, const void* src, int32_t from, int64_t rows, int64_t cols) {
  if (from < N_FLOAT_DTYPES && to == HEARTH_DTYPE_F32) { /* the common case, vectorised */
    hearth_cpu_ops_get()->to_f32((float*)dst, src, from, rows * cols);
    return 0;
  }
  float* row = hearth_alloc((size_t)cols, sizeof(float));
  if (!row) return -1;
  const uint64_t src_row = tensor_bytes(from, 1, (uint64_t)cols), dst_row = tensor_bytes(to, 1, (uint64_t)cols);
  for (int64_t r = 0; r < rows; r++) {
    hearth_dequantize_row(from, (const uint8_t*)src + (uint64_t)r * src_row, row, cols);
    uint8_t* out = (uint8_t*)dst + (uint64_t)r * dst_row;
    if (to == HEARTH_DTYPE_F32) memcpy(out, row, sizeof(float) * (size_t)cols);
    else if (to == HEARTH_DTYPE_BF16)
      for (int64_t j = 0; j < cols; j++) ((uint16_t*)out)[j] = hearth_f32_to_bf16(row[j]);
    else if (to == HEARTH_DTYPE_F16)
      for (int64_t j = 0; j < cols; j++) ((uint16_t*)out)[j] = hearth_f32_to_f16(row[j]);
    else
      hearth_quantize_row(to, row, out, cols);
  }
  hearth_free_aligned(row);
  return 0;
}

/* The dtype a matrix of `cols` columns is converted to when `want` is asked: quantized types need rows
   that fill whole blocks (SmolLM2's 576 is no multiple of 256), so Q4_K falls back to Q4_0, and a
   matrix no 32-block type fits keeps its stored dtype. */
static int32_t convertible_dtype(int32_t want, int32_t stored, int64_t cols) {
  if (want < N_FLOAT_DTYPES || hearth_quant_row_bytes(want, cols) > 0) return want;
  if (want == HEARTH_DTYPE_Q4_K && hearth_quant_row_bytes(HEARTH_DTYPE_Q4_0, cols) > 0) return HEARTH_DTYPE_Q4_0;
  return stored;
}

/* Resolves a record into a weight of dtype `want` (-1: as stored), copying only when the dtype changes. */
static int32_t resolve(hearth_model* m, int32_t role, int32_t layer, int32_t want, hearth_weight* out, char* err,
                       size_t err_len) {
  int64_t dims[2];
  int n = expected_shape(&m->cfg, role, dims);
  if (n == 0) {
    memset(out, 0, sizeof *out);
    return HEARTH_OK;
  }
  hearth_tensor_record* r = record_at(m, role, layer);
  if (!r->present) {
    if (layer >= 0)
      return hearth_fail(err, err_len, HEARTH_E_MISSING, "missing tensor: %s of layer %d", ROLE_NAMES[role], layer);
    return hearth_fail(err, err_len, HEARTH_E_MISSING, "missing tensor: %s", ROLE_NAMES[role]);
  }
  out->rows = n == 2 ? dims[0] : 1;
  out->cols = n == 2 ? dims[1] : dims[0];
  const void* src = (const uint8_t*)m->files[r->file].addr + r->offset;
  int32_t to = want < 0 ? r->dtype : convertible_dtype(want, r->dtype, out->cols);
  if (to == r->dtype) {
    out->data = src;
    out->dtype = r->dtype;
    return HEARTH_OK;
  }
  uint64_t bytes = tensor_bytes(to, (uint64_t)out->rows, (uint64_t)out->cols);
  void* dst = own(m, (size_t)bytes, 1);
  if (!dst || convert(dst, to, src, r->dtype, out->rows, out->cols) != 0)
    return hearth_fail(err, err_len, HEARTH_E_NOMEM, "%s: out of memory converting to %s", r->name, DTYPE_NAMES[to]);
  out->data = dst;
  out->dtype = to;
  return HEARTH_OK;
}

/* Gives back an owned buffer before the model is freed (its slot is emptied). */
static void disown(hearth_model* m, const void* p, size_t bytes) {
  for (int32_t i = 0; i < m->n_owned; i++)
    if (m->owned[i] == p) {
      hearth_free_aligned(m->owned[i]);
      m->owned[i] = NULL;
      m->owned_bytes -= bytes;
      return;
    }
}

/* The mapped file pages of [p, p + bytes) are not needed again: give them back to the page cache (whole
   pages only; a mapping re-reads them from the file if they ever are). */
static void release_mapped(const hearth_model* m, const void* p, size_t bytes) {
  const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE), lo = ((uintptr_t)p + page - 1) / page * page,
                  hi = ((uintptr_t)p + bytes) / page * page;
  for (int32_t i = 0; i < m->n_files; i++) {
    const uintptr_t a = (uintptr_t)m->files[i].addr;
    if (a && (uintptr_t)p >= a && (uintptr_t)p + bytes <= a + m->files[i].size && hi > lo) {
      madvise((void*)lo, hi - lo, MADV_DONTNEED);
      return;
    }
  }
}

/* Packs w into the quantized kernels' own layout where they have one. The stored bytes are then not read
   again, unless `keep` (the tied embedding, whose rows are still looked up): an owned conversion is freed,
   mapped pages are released. */
static int32_t pack_weight(hearth_model* m, hearth_weight* w, int keep, char* err, size_t err_len) {
  const size_t bytes = hearth_quant_pack_bytes(w->dtype, w->rows, w->cols);
  if (bytes == 0 || !w->data) return HEARTH_OK;
  void* dst = own(m, bytes, 1);
  if (!dst) return hearth_fail(err, err_len, HEARTH_E_NOMEM, "out of memory packing a %lld x %lld %s matrix",
                               (long long)w->rows, (long long)w->cols, DTYPE_NAMES[w->dtype]);
  hearth_quant_pack(dst, w->data, w->dtype, w->rows, w->cols);
  w->packed = dst;
  if (keep) return HEARTH_OK;
  const size_t stored = (size_t)hearth_quant_row_bytes(w->dtype, w->cols) * (size_t)w->rows;
  disown(m, w->data, stored);
  release_mapped(m, w->data, stored);
  w->data = NULL;
  return HEARTH_OK;
}

int32_t hearth_model_finish(hearth_model* m, int32_t weight_dtype, char* err, size_t err_len) {
  if (!m) return hearth_fail(err, err_len, HEARTH_E_INVALID, "finish: model is NULL");
  if (m->finished) return hearth_fail(err, err_len, HEARTH_E_INVALID, "finish: model already finished");
  if (weight_dtype < -1 || weight_dtype >= HEARTH_DTYPE_COUNT)
    return hearth_fail(err, err_len, HEARTH_E_INVALID, "finish: unknown weight dtype code %d", weight_dtype);
  if (weight_dtype >= N_FLOAT_DTYPES && weight_dtype != HEARTH_DTYPE_Q8_0 && weight_dtype != HEARTH_DTYPE_Q4_0 &&
      weight_dtype != HEARTH_DTYPE_Q4_K)
    return hearth_fail(err, err_len, HEARTH_E_INVALID, "finish: quantizing at load supports q8_0, q4_0 and q4_k, not %s",
                       DTYPE_NAMES[weight_dtype]);
  const int32_t F32 = HEARTH_DTYPE_F32, W = weight_dtype;
  int32_t rc;
#define RESOLVE(role, layer, want, dst) \
  if ((rc = resolve(m, role, layer, want, dst, err, err_len)) != HEARTH_OK) return rc;
  RESOLVE(HEARTH_T_TOKEN_EMBD, -1, W, &m->tok_embd);
  RESOLVE(HEARTH_T_OUTPUT_NORM, -1, F32, &m->output_norm);
  if (m->cfg.flags & HEARTH_CFG_TIED_EMBED) m->lm_head = m->tok_embd;
  else RESOLVE(HEARTH_T_LM_HEAD, -1, W, &m->lm_head);
  for (int32_t l = 0; l < m->cfg.n_layers; l++) {
    hearth_layer_weights* L = &m->layers[l];
    RESOLVE(HEARTH_T_ATTN_NORM, l, F32, &L->attn_norm);
    RESOLVE(HEARTH_T_WQ, l, W, &L->wq);
    RESOLVE(HEARTH_T_WK, l, W, &L->wk);
    RESOLVE(HEARTH_T_WV, l, W, &L->wv);
    RESOLVE(HEARTH_T_WO, l, W, &L->wo);
    RESOLVE(HEARTH_T_BQ, l, F32, &L->bq);
    RESOLVE(HEARTH_T_BK, l, F32, &L->bk);
    RESOLVE(HEARTH_T_BV, l, F32, &L->bv);
    RESOLVE(HEARTH_T_Q_NORM, l, F32, &L->q_norm);
    RESOLVE(HEARTH_T_K_NORM, l, F32, &L->k_norm);
    RESOLVE(HEARTH_T_FFN_NORM, l, F32, &L->ffn_norm);
    RESOLVE(HEARTH_T_W_GATE, l, W, &L->w_gate);
    RESOLVE(HEARTH_T_W_UP, l, W, &L->w_up);
    RESOLVE(HEARTH_T_W_DOWN, l, W, &L->w_down);
  }
#undef RESOLVE
  /* The quantized kernels' own layout of every matrix they multiply (AVX2: panels of 8 rows), made once. */
  hearth_weight* mats[7];
  for (int32_t l = -1; l < m->cfg.n_layers; l++) {
    int32_t n = 0;
    if (l < 0) mats[n++] = &m->lm_head;
    else {
      hearth_layer_weights* L = &m->layers[l];
      hearth_weight* ws[7] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
      for (int32_t i = 0; i < 7; i++) mats[n++] = ws[i];
    }
    for (int32_t i = 0; i < n; i++)
      if ((rc = pack_weight(m, mats[i], l < 0 && (m->cfg.flags & HEARTH_CFG_TIED_EMBED), err, err_len)) != HEARTH_OK)
        return rc;
  }
  m->finished = 1;
  return HEARTH_OK;
}

uint64_t hearth_model_owned_bytes(const hearth_model* m) { return m ? m->owned_bytes : 0; }

uint64_t hearth_model_mapped_bytes(const hearth_model* m) {
  uint64_t total = 0;
  if (m)
    for (int32_t i = 0; i < m->n_files; i++) total += m->files[i].size;
  return total;
}

void hearth_model_free(hearth_model* m) {
  if (!m) return;
  for (int32_t i = 0; i < m->n_files; i++)
    if (m->files[i].addr) munmap(m->files[i].addr, m->files[i].size);
  for (int32_t i = 0; i < m->n_owned; i++) hearth_free_aligned(m->owned[i]);
  free(m->owned);
  free(m->records);
  free(m->layers);
  hearth_free_aligned(m->rope_inv_freq);
  free(m);
}
