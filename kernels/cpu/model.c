/*
 * model.c — building a model from TypeScript's description on the CPU. Mapping the files, checking and
 * recording the tensors are model_desc.c's (the CUDA backend makes the same checks with the same code);
 * here hearth_model_finish resolves each record in place in its mapped file (copied when the file has it
 * at an offset the kernels cannot read) or converts it where another dtype is asked, then packs the
 * matrices for the quantized kernels. Every failure names the tensor and
 * leaves nothing allocated beyond the model, which the caller frees.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"
#include "quant.h"

hearth_model* hearth_model_new(const hearth_model_config* cfg, const float* rope_inv_freq, char* err,
                               size_t err_len) {
  if (hearth_check_model_config(cfg, err, err_len) != HEARTH_OK) return NULL;
  const hearth_model_config* c = cfg;
  if (!rope_inv_freq) {
    hearth_fail(err, err_len, HEARTH_E_INVALID, "model config: rope_inv_freq is NULL");
    return NULL;
  }
  hearth_model* m = calloc(1, sizeof(hearth_model));
  if (!m) goto nomem;
  m->cfg = *c;
  m->rope_inv_freq = hearth_alloc((size_t)c->head_dim / 2, sizeof(float));
  m->records = hearth_new_records(c->n_layers);
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
  return hearth_map_weight_file(m->files, &m->n_files, path, err, err_len);
}

int32_t hearth_model_set_tensor(hearth_model* m, const char* name, int32_t role, int32_t layer, int32_t file,
                                uint64_t offset, uint64_t nbytes, int32_t dtype, int32_t n_dims,
                                const int64_t* dims, char* err, size_t err_len) {
  if (!m || !name) return hearth_fail(err, err_len, HEARTH_E_INVALID, "set_tensor: model or name is NULL");
  if (m->finished) return hearth_fail(err, err_len, HEARTH_E_INVALID, "%s: model already finished", name);
  return hearth_record_tensor(&m->cfg, m->files, m->n_files, m->records, name, role, layer, file, offset, nbytes,
                              dtype, n_dims, dims, err, err_len);
}

static void* own_buffer(hearth_model* m, size_t count, size_t size, int zero) {
  if (m->n_owned == m->cap_owned) {
    int32_t cap = m->cap_owned ? m->cap_owned * 2 : 64;
    void** grown = realloc(m->owned, sizeof(void*) * (size_t)cap);
    if (!grown) return NULL;
    m->owned = grown;
    m->cap_owned = cap;
  }
  void* p = zero ? hearth_alloc(count, size) : hearth_alloc_uninit(count, size);
  if (!p) return NULL;
  m->owned[m->n_owned++] = p;
  m->owned_bytes += count * size;
  return p;
}

static void* own(hearth_model* m, size_t count, size_t size) { return own_buffer(m, count, size, 1); }

/* Converts a (rows, cols) tensor into dtype `to` (hearth_convert_rows: any dtype through float, then
   float narrowing or quantize-on-load). Returns -1 if a row buffer cannot be allocated. */
static int32_t convert(void* dst, int32_t to, const void* src, int32_t from, int64_t rows, int64_t cols) {
  if (from < HEARTH_N_FLOAT_DTYPES && to == HEARTH_DTYPE_F32) { /* the common case, vectorised */
    hearth_cpu_ops_get()->to_f32((float*)dst, src, from, rows * cols);
    return 0;
  }
  float* row = hearth_alloc((size_t)cols, sizeof(float));
  if (!row) return -1;
  const int32_t rc = hearth_convert_rows(dst, to, src, from, 0, rows, cols, row);
  hearth_free_aligned(row);
  return rc;
}

/* Resolves a record into a weight of dtype `want` (-1: as stored), copying only when the dtype changes. */
static int32_t resolve(hearth_model* m, int32_t role, int32_t layer, int32_t want, hearth_weight* out, char* err,
                       size_t err_len) {
  const hearth_tensor_record* r;
  int64_t rows, cols;
  const int32_t rc = hearth_find_record(&m->cfg, m->records, role, layer, &r, &rows, &cols, err, err_len);
  if (rc != HEARTH_OK) return rc;
  if (!r) { /* not used by this config */
    memset(out, 0, sizeof *out);
    return HEARTH_OK;
  }
  out->rows = rows;
  out->cols = cols;
  const void* src = (const uint8_t*)m->files[r->file].addr + r->offset;
  int32_t to = want < 0 ? r->dtype : hearth_convertible_dtype(want, r->dtype, out->cols);
  const int in_place = (uintptr_t)src % hearth_dtype_alignment(r->dtype) == 0;
  out->dtype = to;
  if (to == r->dtype && in_place) {
    out->data = src;
    return HEARTH_OK;
  }
  if (to == r->dtype) { /* at an offset the kernels cannot read: the model's own copy, as a converted one */
    void* dst = own_buffer(m, (size_t)r->nbytes, 1, 0);
    if (!dst)
      return hearth_fail(err, err_len, HEARTH_E_NOMEM, "%s: out of memory copying it to an aligned address",
                         r->name);
    memcpy(dst, src, (size_t)r->nbytes);
    out->data = dst;
    return HEARTH_OK;
  }
  void* realigned = NULL;
  const void* from = hearth_realign_source(src, r->dtype, (size_t)r->nbytes, &realigned);
  uint64_t bytes = hearth_tensor_bytes(to, (uint64_t)out->rows, (uint64_t)out->cols);
  void* dst = from ? own(m, (size_t)bytes, 1) : NULL;
  const int converted = dst && convert(dst, to, from, r->dtype, out->rows, out->cols) == 0;
  free(realigned);
  if (!converted)
    return hearth_fail(err, err_len, HEARTH_E_NOMEM, "%s: out of memory converting to %s", r->name, hearth_dtype_names[to]);
  out->data = dst;
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

/* Weights made into one buffer of the model's own memory, in two passes over the model's weights (sizes,
   then the work): a decode streams them all each token, so they are one region the kernel can back with
   huge pages (common.c) instead of hundreds of separate allocations of small pages. The buffer is not
   zeroed: every byte in use is written, and pages are only committed as the work reaches them, while each
   matrix's stored bytes are given back behind it, so the peak stays one matrix above the model. */
typedef struct {
  uint8_t* base; /* NULL in the sizing pass */
  size_t used;
} weight_arena;

/* What a pass does to one weight: add its bytes to a->used, and unless sizing, put it at a->base + used. */
typedef void (*arena_fn)(hearth_model* m, hearth_weight* w, int matrix, weight_arena* a);

/* fn on the lm_head, every layer tensor (matrix: not a vector), the embedding and the output norm. */
static void for_each_weight(hearth_model* m, arena_fn fn, weight_arena* a) {
  fn(m, &m->lm_head, 1, a);
  for (int32_t l = 0; l < m->cfg.n_layers; l++) {
    hearth_layer_weights* L = &m->layers[l];
#define VISIT(role, field, vector) fn(m, &L->field, !(vector), a);
    HEARTH_LAYER_TENSORS(VISIT)
#undef VISIT
  }
  fn(m, &m->tok_embd, 1, a);
  fn(m, &m->output_norm, 0, a);
}

/* Sizes with fn, allocates one arena of that size, runs fn again into it. */
static int32_t arena_passes(hearth_model* m, arena_fn fn, const char* what, char* err, size_t err_len) {
  weight_arena a = {0};
  for_each_weight(m, fn, &a);
  if (a.used == 0) return HEARTH_OK;
  const size_t size = a.used;
  if (!(a.base = own_buffer(m, size, 1, 0)))
    return hearth_fail(err, err_len, HEARTH_E_NOMEM, "out of memory %s (%llu bytes)", what,
                       (unsigned long long)size);
  a.used = 0;
  for_each_weight(m, fn, &a);
  return HEARTH_OK;
}

static size_t round64(size_t n) { return (n + 63) & ~(size_t)63; }

/* True when p points into one of the mapped files. */
static int is_mapped(const hearth_model* m, const void* p) {
  for (int32_t i = 0; i < m->n_files; i++) {
    const uint8_t* a = (const uint8_t*)m->files[i].addr;
    if (a && (const uint8_t*)p >= a && (const uint8_t*)p < a + m->files[i].size) return 1;
  }
  return 0;
}

static size_t weight_bytes(const hearth_weight* w) {
  return (size_t)hearth_tensor_bytes(w->dtype, (uint64_t)w->rows, (uint64_t)w->cols);
}

/* Packs w into the kernels' own layout where they have one: the quantized kernels' (panels of 8 rows on
   AVX2 for the 32-element types and every K-quant, of 16 on AVX-512 VNNI and AMX for the 32-element types
   and Q4_K, Q5_K, Q6_K), and the float
   kernels' panels of 4 rows (AVX2, AVX-512) for a float matrix the model holds in its own memory
   (converted at load, or everything with set_in_memory): a mapped one stays as the file has it. The
   stored bytes are then not read again, unless w is the tied lm_head, whose rows the embedding still
   looks up: an owned conversion is freed, mapped pages are released. The embedding itself is never
   packed. */
static void pack_weight(hearth_model* m, hearth_weight* w, int matrix, weight_arena* a) {
  if (!matrix || !w->data || w == &m->tok_embd) return;
  const hearth_cpu_ops* ops = hearth_cpu_ops_get();
  const int quantized = hearth_dtype_is_quantized(w->dtype);
  const int float_packs = !quantized && ops->pack_bytes && (m->in_memory || !is_mapped(m, w->data));
  const size_t bytes = quantized     ? hearth_quant_pack_bytes(w->dtype, w->rows, w->cols)
                       : float_packs ? ops->pack_bytes(w->dtype, w->rows, w->cols)
                                     : 0;
  if (bytes == 0) return;
  void* dst = a->base + a->used;
  a->used += round64(bytes);
  if (!a->base) return;
  if (quantized) hearth_quant_pack(dst, w->data, w->dtype, w->rows, w->cols);
  else ops->pack(dst, w->data, w->dtype, w->rows, w->cols);
  w->packed = dst;
  const int tied_head = w == &m->lm_head && (m->cfg.flags & HEARTH_CFG_TIED_EMBED);
  if (tied_head && quantized) return; /* the embedding looks its rows up in the stored bytes */
  const size_t stored = weight_bytes(w);
  disown(m, w->data, stored);
  release_mapped(m, w->data, stored);
  w->data = NULL;
  if (tied_head) { /* float: the embedding's lookup reads the panels (ops->unpack_row) */
    m->tok_embd.packed = dst;
    m->tok_embd.data = NULL;
  }
}

int32_t hearth_model_set_in_memory(hearth_model* m, int32_t on, char* err, size_t err_len) {
  if (!m) return hearth_fail(err, err_len, HEARTH_E_INVALID, "set_in_memory: model is NULL");
  if (m->finished) return hearth_fail(err, err_len, HEARTH_E_INVALID, "set_in_memory: model already finished");
  m->in_memory = on != 0;
  return HEARTH_OK;
}

/* hearth_model_set_in_memory: every weight still read from a mapped file (used as stored, not packed) is
   copied into the arena, and the file's pages are given back. A tied lm_head is the embedding's bytes:
   copied once, with the embedding, and pointed at the copy. */
static void copy_mapped_weight(hearth_model* m, hearth_weight* w, int matrix, weight_arena* a) {
  (void)matrix;
  const int tied_head = w == &m->lm_head && (m->cfg.flags & HEARTH_CFG_TIED_EMBED);
  if (tied_head || !w->data || w->packed || !is_mapped(m, w->data)) return;
  const size_t n = weight_bytes(w);
  uint8_t* dst = a->base + a->used;
  a->used += round64(n);
  if (!a->base) return;
  memcpy(dst, w->data, n);
  release_mapped(m, w->data, n);
  if (w == &m->tok_embd && m->lm_head.data == w->data) m->lm_head.data = dst;
  w->data = dst;
}

int32_t hearth_model_finish(hearth_model* m, int32_t weight_dtype, char* err, size_t err_len) {
  if (!m) return hearth_fail(err, err_len, HEARTH_E_INVALID, "finish: model is NULL");
  if (m->finished) return hearth_fail(err, err_len, HEARTH_E_INVALID, "finish: model already finished");
  int32_t rc = hearth_check_weight_dtype(weight_dtype, err, err_len);
  if (rc != HEARTH_OK) return rc;
  const int32_t F32 = HEARTH_DTYPE_F32, W = weight_dtype;
#define RESOLVE(role, layer, want, dst) \
  if ((rc = resolve(m, role, layer, want, dst, err, err_len)) != HEARTH_OK) return rc;
  RESOLVE(HEARTH_T_TOKEN_EMBD, -1, W, &m->tok_embd);
  RESOLVE(HEARTH_T_OUTPUT_NORM, -1, F32, &m->output_norm);
  if (m->cfg.flags & HEARTH_CFG_TIED_EMBED) m->lm_head = m->tok_embd;
  else RESOLVE(HEARTH_T_LM_HEAD, -1, W, &m->lm_head);
  for (int32_t l = 0; l < m->cfg.n_layers; l++) {
    hearth_layer_weights* L = &m->layers[l];
#define RESOLVE_LAYER(role, field, vector) RESOLVE(role, l, vector ? F32 : W, &L->field)
    HEARTH_LAYER_TENSORS(RESOLVE_LAYER)
#undef RESOLVE_LAYER
  }
#undef RESOLVE
  /* The quantized kernels' own layout of every matrix they multiply, made once, in one arena; then, with
     set_in_memory, whatever is still read from the files, in another. */
  if ((rc = arena_passes(m, pack_weight, "packing the weight matrices", err, err_len)) != HEARTH_OK) return rc;
  if (m->in_memory &&
      (rc = arena_passes(m, copy_mapped_weight, "copying the weights into memory", err, err_len)) != HEARTH_OK)
    return rc;
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
  hearth_unmap_weight_files(m->files, m->n_files);
  for (int32_t i = 0; i < m->n_owned; i++) hearth_free_aligned(m->owned[i]);
  free(m->owned);
  free(m->records);
  free(m->layers);
  hearth_free_aligned(m->rope_inv_freq);
  free(m);
}
