/*
 * model.cu — the CUDA backend's model: the same description checks as kernels/cpu/model.c (the same
 * messages, so TypeScript sees one behaviour), then hearth_model_finish uploads every weight to the
 * device once. Conversions run on the host with the CPU backend's own row converters
 * (kernels/cpu/quant.c, linked into this library), so a model quantized at load holds the same bytes
 * on either backend. Also here: the library's identity and the device probe exports.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../include/hearth_half.h"
#include "internal.cuh"

extern "C" {
#include "../cpu/quant.h"
}

/* ---------------------------------------------------------------------------------------------------- */
/* Errors, identity, devices                                                                              */

int32_t hc_fail(char* err, size_t err_len, int32_t status, const char* fmt, ...) {
  if (err && err_len > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
  }
  return status;
}

int32_t hc_cuda_fail(char* err, size_t err_len, cudaError_t e, const char* what) {
  const int32_t status = e == cudaErrorMemoryAllocation ? HEARTH_E_NOMEM : HEARTH_E_INVALID;
  return hc_fail(err, err_len, status, "%s: %s (%s)", what, cudaGetErrorName(e), cudaGetErrorString(e));
}

/* The device models are created on (hearth_cuda_use_device); 0 until set. */
static int32_t g_device = 0;

int32_t hc_use_device(int32_t device, char* err, size_t err_len) {
  HC_CHECK(cudaSetDevice(device), "cudaSetDevice");
  return HEARTH_OK;
}

extern "C" {

HEARTH_API int32_t hearth_abi_version(void) { return HEARTH_ABI_VERSION; }

/* The CUDA library's kernels are the device's: "cuda". */
HEARTH_API const char* hearth_cpu_isa(void) { return "cuda"; }

/* CUDA-only: how many devices the driver shows (0 with no driver or no device; never fails). */
HEARTH_API int32_t hearth_cuda_device_count(void) {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError(); /* clear it: no driver is an answer, not an error */
    return 0;
  }
  return n;
}

/*
 * CUDA-only: facts about device `dev`: its name into name (NUL-terminated), and into info (8 int64):
 * total memory, free memory (bytes), compute capability major, minor, multiprocessors, memory bus width
 * (bits), memory clock (kHz), L2 bytes. Returns 0 or a hearth_status with the message in err.
 */
HEARTH_API int32_t hearth_cuda_device_info(int32_t dev, char* name, size_t name_len, int64_t* info, char* err,
                                           size_t err_len) {
  cudaDeviceProp p;
  HC_CHECK(cudaGetDeviceProperties(&p, dev), "cudaGetDeviceProperties");
  if (name && name_len > 0) snprintf(name, name_len, "%s", p.name);
  size_t free_b = 0, total_b = 0;
  HC_CHECK(cudaSetDevice(dev), "cudaSetDevice");
  HC_CHECK(cudaMemGetInfo(&free_b, &total_b), "cudaMemGetInfo");
  int mem_clock = 0, bus = 0;
  cudaDeviceGetAttribute(&mem_clock, cudaDevAttrMemoryClockRate, dev);
  cudaDeviceGetAttribute(&bus, cudaDevAttrGlobalMemoryBusWidth, dev);
  if (info) {
    info[0] = (int64_t)total_b;
    info[1] = (int64_t)free_b;
    info[2] = p.major;
    info[3] = p.minor;
    info[4] = p.multiProcessorCount;
    info[5] = bus;
    info[6] = mem_clock;
    info[7] = p.l2CacheSize;
  }
  return HEARTH_OK;
}

/* CUDA-only: models created after this call live on device `dev`. */
HEARTH_API int32_t hearth_cuda_use_device(int32_t dev, char* err, size_t err_len) {
  const int32_t n = hearth_cuda_device_count();
  if (dev < 0 || dev >= n) return hc_fail(err, err_len, HEARTH_E_INVALID, "no CUDA device %d (%d present)", dev, n);
  int32_t rc = hc_use_device(dev, err, err_len);
  if (rc == HEARTH_OK) g_device = dev;
  return rc;
}

} /* extern "C" */

/* ---------------------------------------------------------------------------------------------------- */
/* Description checks (as kernels/cpu/model.c)                                                            */

static const char* ROLE_NAMES[HEARTH_T_ROLE_COUNT] = {
    "token_embd", "output_norm", "lm_head", "attn_norm", "wq",       "wk",     "wv",   "wo",     "bq",
    "bk",         "bv",          "q_norm",  "k_norm",    "ffn_norm", "w_gate", "w_up", "w_down",
};

#define N_FLOAT_DTYPES 3
static const size_t DTYPE_SIZE[N_FLOAT_DTYPES] = {4, 2, 2};
static const char* DTYPE_NAMES[HEARTH_DTYPE_COUNT] = {"f32",  "f16",  "bf16", "q8_0", "q4_0", "q4_1", "q5_0",
                                                      "q5_1", "q2_k", "q3_k", "q4_k", "q5_k", "q6_k"};

static uint64_t tensor_bytes(int32_t dtype, uint64_t rows, uint64_t cols) {
  if (dtype < N_FLOAT_DTYPES) return rows * cols * DTYPE_SIZE[dtype];
  return rows * (uint64_t)hearth_quant_row_bytes(dtype, (int64_t)cols);
}

static int role_is_global(int32_t role) {
  return role == HEARTH_T_TOKEN_EMBD || role == HEARTH_T_OUTPUT_NORM || role == HEARTH_T_LM_HEAD;
}

static hc_record* record_at(hearth_model* m, int32_t role, int32_t layer) {
  int32_t slot = role_is_global(role) ? 0 : layer + 1;
  return &m->records[(size_t)role * (size_t)(m->cfg.n_layers + 1) + (size_t)slot];
}

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

extern "C" HEARTH_API hearth_model* hearth_model_new(const hearth_model_config* cfg, const float* rope_inv_freq,
                                                     char* err, size_t err_len) {
  if (!cfg) {
    hc_fail(err, err_len, HEARTH_E_INVALID, "model config is NULL");
    return NULL;
  }
  const hearth_model_config* c = cfg;
  if (c->dim <= 0 || c->hidden_dim <= 0 || c->n_layers <= 0 || c->n_heads <= 0 || c->n_kv_heads <= 0 ||
      c->head_dim <= 0 || c->vocab_size <= 0 || c->max_seq_len <= 0) {
    hc_fail(err, err_len, HEARTH_E_INVALID,
            "model config: dimensions must be positive (dim %d, hidden_dim %d, n_layers %d, n_heads %d, "
            "n_kv_heads %d, head_dim %d, vocab_size %d, max_seq_len %d)",
            c->dim, c->hidden_dim, c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim, c->vocab_size,
            c->max_seq_len);
    return NULL;
  }
  if (c->n_heads % c->n_kv_heads != 0) {
    hc_fail(err, err_len, HEARTH_E_INVALID, "model config: n_heads %d is not a multiple of n_kv_heads %d",
            c->n_heads, c->n_kv_heads);
    return NULL;
  }
  if (c->head_dim % 2 != 0 || c->n_layers > 4096 || c->head_dim > 1024 || c->sliding_window < 0 ||
      (c->rope_style != HEARTH_ROPE_HALF && c->rope_style != HEARTH_ROPE_INTERLEAVED)) {
    hc_fail(err, err_len, HEARTH_E_INVALID,
            "model config: unsupported head_dim %d / n_layers %d / sliding_window %d / rope_style %d", c->head_dim,
            c->n_layers, c->sliding_window, c->rope_style);
    return NULL;
  }
  if (c->head_dim > 256) { /* the attention kernels keep a row in registers: 8 values per lane at most */
    hc_fail(err, err_len, HEARTH_E_INVALID, "model config: head_dim %d is over the CUDA backend's 256", c->head_dim);
    return NULL;
  }
  if (!rope_inv_freq) {
    hc_fail(err, err_len, HEARTH_E_INVALID, "model config: rope_inv_freq is NULL");
    return NULL;
  }
  if (hc_use_device(g_device, err, err_len) != HEARTH_OK) return NULL;
  hearth_model* m = (hearth_model*)calloc(1, sizeof(hearth_model));
  if (!m) {
    hc_fail(err, err_len, HEARTH_E_NOMEM, "out of memory creating the model");
    return NULL;
  }
  m->cfg = *c;
  m->device = g_device;
  cudaDeviceProp p;
  if (cudaGetDeviceProperties(&p, g_device) == cudaSuccess) m->cc_major = p.major, m->cc_minor = p.minor;
  m->records = (hc_record*)calloc((size_t)HEARTH_T_ROLE_COUNT * (size_t)(c->n_layers + 1), sizeof(hc_record));
  m->layers = (hc_layer*)calloc((size_t)c->n_layers, sizeof(hc_layer));
  cudaError_t e = cudaMalloc((void**)&m->rope_inv_freq, sizeof(float) * (size_t)(c->head_dim / 2));
  if (e == cudaSuccess)
    e = cudaMemcpy(m->rope_inv_freq, rope_inv_freq, sizeof(float) * (size_t)(c->head_dim / 2), cudaMemcpyHostToDevice);
  if (!m->records || !m->layers || e != cudaSuccess) {
    if (e != cudaSuccess) hc_cuda_fail(err, err_len, e, "creating the model on the device");
    else hc_fail(err, err_len, HEARTH_E_NOMEM, "out of memory creating the model");
    hearth_model_free(m);
    return NULL;
  }
  return m;
}

extern "C" HEARTH_API int32_t hearth_model_map_file(hearth_model* m, const char* path, char* err, size_t err_len) {
  if (!m || !path) return hc_fail(err, err_len, HEARTH_E_INVALID, "map_file: model or path is NULL");
  if (m->finished) return hc_fail(err, err_len, HEARTH_E_INVALID, "map_file: model already finished");
  if (m->n_files >= HEARTH_CUDA_MAX_FILES)
    return hc_fail(err, err_len, HEARTH_E_INVALID, "%s: more than %d weight files", path, HEARTH_CUDA_MAX_FILES);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return hc_fail(err, err_len, HEARTH_E_IO, "%s: cannot open: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    return hc_fail(err, err_len, HEARTH_E_IO, "%s: cannot stat: %s", path, strerror(e));
  }
  void* addr = NULL;
  if (st.st_size > 0) {
    addr = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (addr == MAP_FAILED) {
      int e = errno;
      close(fd);
      return hc_fail(err, err_len, HEARTH_E_IO, "%s: cannot map: %s", path, strerror(e));
    }
  }
  close(fd);
  m->files[m->n_files].addr = addr;
  m->files[m->n_files].size = (size_t)st.st_size;
  m->mapped_bytes += (uint64_t)st.st_size;
  return m->n_files++;
}

extern "C" HEARTH_API int32_t hearth_model_set_tensor(hearth_model* m, const char* name, int32_t role, int32_t layer,
                                                      int32_t file, uint64_t offset, uint64_t nbytes, int32_t dtype,
                                                      int32_t n_dims, const int64_t* dims, char* err,
                                                      size_t err_len) {
  if (!m || !name) return hc_fail(err, err_len, HEARTH_E_INVALID, "set_tensor: model or name is NULL");
  if (m->finished) return hc_fail(err, err_len, HEARTH_E_INVALID, "%s: model already finished", name);
  if (role < 0 || role >= HEARTH_T_ROLE_COUNT)
    return hc_fail(err, err_len, HEARTH_E_INVALID, "%s: unknown tensor role %d", name, role);
  if (role_is_global(role) ? layer != -1 : (layer < 0 || layer >= m->cfg.n_layers))
    return hc_fail(err, err_len, HEARTH_E_INVALID, "%s: layer %d out of range for %s (model has %d layers)", name,
                   layer, ROLE_NAMES[role], m->cfg.n_layers);
  if (file < 0 || file >= m->n_files)
    return hc_fail(err, err_len, HEARTH_E_INVALID, "%s: file index %d was not mapped", name, file);
  if (dtype < 0 || dtype >= HEARTH_DTYPE_COUNT)
    return hc_fail(err, err_len, HEARTH_E_INVALID, "%s: unknown dtype code %d", name, dtype);
  if (n_dims < 1 || n_dims > 4 || !dims) return hc_fail(err, err_len, HEARTH_E_INVALID, "%s: %d dimensions", name, n_dims);
  uint64_t count = 1;
  for (int32_t i = 0; i < n_dims; i++) {
    if (dims[i] <= 0 || count > ((uint64_t)1 << 48) / (uint64_t)dims[i])
      return hc_fail(err, err_len, HEARTH_E_BOUNDS, "%s: dimension %d (%lld) is invalid", name, i, (long long)dims[i]);
    count *= (uint64_t)dims[i];
  }
  const uint64_t cols = (uint64_t)dims[n_dims - 1], rows = count / cols;
  const uint64_t want_bytes = tensor_bytes(dtype, rows, cols);
  if (want_bytes == 0)
    return hc_fail(err, err_len, HEARTH_E_INVALID, "%s: rows of %llu values do not fill whole %s blocks", name,
                   (unsigned long long)cols, DTYPE_NAMES[dtype]);
  if (want_bytes != nbytes)
    return hc_fail(err, err_len, HEARTH_E_BOUNDS, "%s: %llu bytes do not hold %llu %s elements", name,
                   (unsigned long long)nbytes, (unsigned long long)count, DTYPE_NAMES[dtype]);
  size_t fsize = m->files[file].size;
  if (offset > fsize || nbytes > fsize - offset)
    return hc_fail(err, err_len, HEARTH_E_BOUNDS, "%s: bytes %llu..%llu run past the end of its file (%llu bytes)",
                   name, (unsigned long long)offset, (unsigned long long)(offset + nbytes),
                   (unsigned long long)fsize);
  if (dtype < N_FLOAT_DTYPES && offset % DTYPE_SIZE[dtype] != 0)
    return hc_fail(err, err_len, HEARTH_E_INVALID, "%s: offset %llu is not aligned to its dtype", name,
                   (unsigned long long)offset);
  int64_t want[2];
  int want_dims = expected_shape(&m->cfg, role, want);
  if (want_dims == 0)
    return hc_fail(err, err_len, HEARTH_E_INVALID, "%s: %s is not used by this model's config", name, ROLE_NAMES[role]);
  int shape_ok = n_dims == want_dims;
  for (int i = 0; shape_ok && i < want_dims; i++) shape_ok = dims[i] == want[i];
  if (!shape_ok) {
    char got[96] = "", expect[64];
    size_t at = 0;
    for (int32_t i = 0; i < n_dims && at < sizeof got; i++)
      at += (size_t)snprintf(got + at, sizeof got - at, "%s%lld", i ? ", " : "", (long long)dims[i]);
    if (want_dims == 2) snprintf(expect, sizeof expect, "%lld, %lld", (long long)want[0], (long long)want[1]);
    else snprintf(expect, sizeof expect, "%lld", (long long)want[0]);
    return hc_fail(err, err_len, HEARTH_E_BOUNDS, "%s: shape [%s] does not match the config, expected [%s]", name,
                   got, expect);
  }
  hc_record* r = record_at(m, role, layer);
  if (r->present) return hc_fail(err, err_len, HEARTH_E_INVALID, "%s: given twice (also as %s)", name, r->name);
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

/* ---------------------------------------------------------------------------------------------------- */
/* Upload                                                                                                 */

/* Device memory for a weight: recorded in the model (freed with it), or, with m NULL, the caller's. */
static void* own_device(hearth_model* m, size_t bytes, cudaError_t* e) {
  if (!m) {
    void* p = NULL;
    *e = cudaMalloc(&p, bytes ? bytes : 1);
    return *e == cudaSuccess ? p : NULL;
  }
  if (m->n_owned == m->cap_owned) {
    int32_t cap = m->cap_owned ? m->cap_owned * 2 : 64;
    void** grown = (void**)realloc(m->owned, sizeof(void*) * (size_t)cap);
    if (!grown) {
      *e = cudaErrorMemoryAllocation;
      return NULL;
    }
    m->owned = grown;
    m->cap_owned = cap;
  }
  void* p = NULL;
  *e = cudaMalloc(&p, bytes ? bytes : 1);
  if (*e != cudaSuccess) return NULL;
  m->owned[m->n_owned++] = p;
  m->owned_bytes += bytes;
  return p;
}

/* Rows [r0, r1) of a (rows, cols) tensor from dtype `from` to `to` on the host, as kernels/cpu/model.c's
   convert does it: dequantize to floats, then narrow or quantize. */
typedef struct {
  void* dst;
  int32_t to;
  const void* src;
  int32_t from;
  int64_t rows, cols;
  int32_t n_threads;
  int32_t thread;
  int32_t failed;
} convert_job;

static void* convert_worker(void* arg) {
  convert_job* j = (convert_job*)arg;
  const int64_t per = (j->rows + j->n_threads - 1) / j->n_threads;
  const int64_t r0 = per * j->thread, r1 = r0 + per < j->rows ? r0 + per : j->rows;
  float* row = (float*)malloc(sizeof(float) * (size_t)j->cols);
  if (!row) {
    j->failed = 1;
    return NULL;
  }
  const uint64_t src_row = tensor_bytes(j->from, 1, (uint64_t)j->cols), dst_row = tensor_bytes(j->to, 1, (uint64_t)j->cols);
  for (int64_t r = r0; r < r1; r++) {
    hearth_dequantize_row(j->from, (const uint8_t*)j->src + (uint64_t)r * src_row, row, j->cols);
    uint8_t* out = (uint8_t*)j->dst + (uint64_t)r * dst_row;
    if (j->to == HEARTH_DTYPE_F32) memcpy(out, row, sizeof(float) * (size_t)j->cols);
    else if (j->to == HEARTH_DTYPE_BF16)
      for (int64_t c = 0; c < j->cols; c++) ((uint16_t*)out)[c] = hearth_f32_to_bf16(row[c]);
    else if (j->to == HEARTH_DTYPE_F16)
      for (int64_t c = 0; c < j->cols; c++) ((uint16_t*)out)[c] = hearth_f32_to_f16(row[c]);
    else if (hearth_quantize_row(j->to, row, out, j->cols) != 0) j->failed = 1;
  }
  free(row);
  return NULL;
}

static int convert_host(void* dst, int32_t to, const void* src, int32_t from, int64_t rows, int64_t cols) {
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  int32_t n = cpus < 1 ? 1 : cpus > 16 ? 16 : (int32_t)cpus;
  if (rows < 64) n = 1;
  convert_job jobs[16];
  pthread_t th[16];
  int started[16] = {0};
  for (int32_t i = 0; i < n; i++) {
    jobs[i] = (convert_job){dst, to, src, from, rows, cols, n, i, 0};
    if (i > 0) started[i] = pthread_create(&th[i], NULL, convert_worker, &jobs[i]) == 0;
  }
  convert_worker(&jobs[0]);
  int failed = jobs[0].failed;
  for (int32_t i = 1; i < n; i++) {
    if (started[i]) pthread_join(th[i], NULL);
    else convert_worker(&jobs[i]);
    failed |= jobs[i].failed;
  }
  return failed ? -1 : 0;
}

/* The dtype a matrix of `cols` columns becomes when `want` is asked (as the CPU backend decides). */
static int32_t convertible_dtype(int32_t want, int32_t stored, int64_t cols) {
  if (want < N_FLOAT_DTYPES || hearth_quant_row_bytes(want, cols) > 0) return want;
  if (want == HEARTH_DTYPE_Q4_K && hearth_quant_row_bytes(HEARTH_DTYPE_Q4_0, cols) > 0) return HEARTH_DTYPE_Q4_0;
  return stored;
}

/* Quantized types the kernels read directly; the others are converted to Q8_0. */
static int device_native(int32_t dtype) {
  return dtype < N_FLOAT_DTYPES || dtype == HEARTH_DTYPE_Q8_0 || dtype == HEARTH_DTYPE_Q4_0 || dtype == HEARTH_DTYPE_Q4_K;
}

/* Uploads host bytes of w->dtype (GGUF layout) into the device layout of hc_weight (model.cu's header
   comment in internal.cuh). m NULL: the caller frees w->data and w->scales (test_ops.cu). */
int32_t hc_upload_weight(hearth_model* m, hc_weight* w, const void* host, const char* name, char* err, size_t err_len) {
  cudaError_t e = cudaSuccess;
  const uint64_t bytes = tensor_bytes(w->dtype, (uint64_t)w->rows, (uint64_t)w->cols);
  char what[224];
  snprintf(what, sizeof what, "%s: uploading %.1f MiB of %s weights", name, (double)bytes / 1048576.0, DTYPE_NAMES[w->dtype]);
  if (w->dtype != HEARTH_DTYPE_Q8_0 && w->dtype != HEARTH_DTYPE_Q4_0) {
    w->data = own_device(m, bytes, &e);
    if (!w->data) return hc_cuda_fail(err, err_len, e, what);
    HC_CHECK(cudaMemcpy(w->data, host, bytes, cudaMemcpyHostToDevice), what);
    return HEARTH_OK;
  }
  /* Split the blocks: codes (contiguous per row) and the f16 scales. */
  const int32_t q8 = w->dtype == HEARTH_DTYPE_Q8_0;
  const uint64_t nb = (uint64_t)w->rows * (uint64_t)(w->cols / 32), code_bytes = nb * (q8 ? 32 : 16);
  uint8_t* codes = (uint8_t*)malloc(code_bytes);
  uint16_t* scales = (uint16_t*)malloc(nb * 2);
  if (!codes || !scales) {
    free(codes);
    free(scales);
    return hc_fail(err, err_len, HEARTH_E_NOMEM, "%s: out of host memory repacking", name);
  }
  for (uint64_t b = 0; b < nb; b++) {
    if (q8) {
      const hearth_block_q8_0* blk = (const hearth_block_q8_0*)host + b;
      memcpy(codes + b * 32, blk->qs, 32);
      scales[b] = blk->d;
    } else {
      const hearth_block_q4_0* blk = (const hearth_block_q4_0*)host + b;
      memcpy(codes + b * 16, blk->qs, 16);
      scales[b] = blk->d;
    }
  }
  w->data = own_device(m, code_bytes, &e);
  if (w->data) w->scales = (uint16_t*)own_device(m, nb * 2, &e);
  if (e == cudaSuccess) e = cudaMemcpy(w->data, codes, code_bytes, cudaMemcpyHostToDevice);
  if (e == cudaSuccess) e = cudaMemcpy(w->scales, scales, nb * 2, cudaMemcpyHostToDevice);
  free(codes);
  free(scales);
  if (e != cudaSuccess) return hc_cuda_fail(err, err_len, e, what);
  return HEARTH_OK;
}

/* Resolves a record into a device weight of dtype `want` (-1: as stored). */
static int32_t resolve(hearth_model* m, int32_t role, int32_t layer, int32_t want, hc_weight* out, char* err,
                       size_t err_len) {
  int64_t dims[2];
  int n = expected_shape(&m->cfg, role, dims);
  memset(out, 0, sizeof *out);
  if (n == 0) return HEARTH_OK;
  hc_record* r = record_at(m, role, layer);
  if (!r->present) {
    if (layer >= 0) return hc_fail(err, err_len, HEARTH_E_MISSING, "missing tensor: %s of layer %d", ROLE_NAMES[role], layer);
    return hc_fail(err, err_len, HEARTH_E_MISSING, "missing tensor: %s", ROLE_NAMES[role]);
  }
  out->rows = n == 2 ? dims[0] : 1;
  out->cols = n == 2 ? dims[1] : dims[0];
  const void* src = (const uint8_t*)m->files[r->file].addr + r->offset;
  int32_t to = want < 0 ? r->dtype : convertible_dtype(want, r->dtype, out->cols);
  if (!device_native(to)) to = HEARTH_DTYPE_Q8_0; /* cols fill 32-blocks: `to` was a quantized type */
  out->dtype = to;
  if (to == r->dtype) return hc_upload_weight(m, out, src, r->name, err, err_len);
  const uint64_t bytes = tensor_bytes(to, (uint64_t)out->rows, (uint64_t)out->cols);
  void* host = malloc(bytes ? bytes : 1);
  if (!host || convert_host(host, to, src, r->dtype, out->rows, out->cols) != 0) {
    free(host);
    return hc_fail(err, err_len, HEARTH_E_NOMEM, "%s: out of memory converting to %s", r->name, DTYPE_NAMES[to]);
  }
  int32_t rc = hc_upload_weight(m, out, host, r->name, err, err_len);
  free(host);
  return rc;
}

static void free_device_weights(hearth_model* m) {
  for (int32_t i = 0; i < m->n_owned; i++) cudaFree(m->owned[i]);
  m->n_owned = 0;
  m->owned_bytes = 0;
}

extern "C" HEARTH_API int32_t hearth_model_finish(hearth_model* m, int32_t weight_dtype, char* err, size_t err_len) {
  if (!m) return hc_fail(err, err_len, HEARTH_E_INVALID, "finish: model is NULL");
  if (m->finished) return hc_fail(err, err_len, HEARTH_E_INVALID, "finish: model already finished");
  if (weight_dtype < -1 || weight_dtype >= HEARTH_DTYPE_COUNT)
    return hc_fail(err, err_len, HEARTH_E_INVALID, "finish: unknown weight dtype code %d", weight_dtype);
  if (weight_dtype >= N_FLOAT_DTYPES && weight_dtype != HEARTH_DTYPE_Q8_0 && weight_dtype != HEARTH_DTYPE_Q4_0 &&
      weight_dtype != HEARTH_DTYPE_Q4_K)
    return hc_fail(err, err_len, HEARTH_E_INVALID, "finish: quantizing at load supports q8_0, q4_0 and q4_k, not %s",
                   DTYPE_NAMES[weight_dtype]);
  int32_t rc = hc_use_device(m->device, err, err_len);
  if (rc != HEARTH_OK) return rc;
  const int32_t F32 = HEARTH_DTYPE_F32, W = weight_dtype;
#define RESOLVE(role, layer, want, dst) \
  if ((rc = resolve(m, role, layer, want, dst, err, err_len)) != HEARTH_OK) goto fail;
  RESOLVE(HEARTH_T_TOKEN_EMBD, -1, W, &m->tok_embd);
  RESOLVE(HEARTH_T_OUTPUT_NORM, -1, F32, &m->output_norm);
  if (m->cfg.flags & HEARTH_CFG_TIED_EMBED) m->lm_head = m->tok_embd;
  else RESOLVE(HEARTH_T_LM_HEAD, -1, W, &m->lm_head);
  for (int32_t l = 0; l < m->cfg.n_layers; l++) {
    hc_layer* L = &m->layers[l];
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
  /* The weights live on the device now: drop the host maps. */
  for (int32_t i = 0; i < m->n_files; i++)
    if (m->files[i].addr) munmap(m->files[i].addr, m->files[i].size), m->files[i].addr = NULL;
  m->finished = 1;
  return HEARTH_OK;
fail:
  free_device_weights(m); /* a failed call leaves nothing allocated on the device */
  memset(&m->tok_embd, 0, sizeof m->tok_embd);
  memset(&m->lm_head, 0, sizeof m->lm_head);
  memset(&m->output_norm, 0, sizeof m->output_norm);
  memset(m->layers, 0, sizeof(hc_layer) * (size_t)m->cfg.n_layers);
  cudaGetLastError();
  return rc;
}

extern "C" HEARTH_API uint64_t hearth_model_owned_bytes(const hearth_model* m) { return m ? m->owned_bytes : 0; }

extern "C" HEARTH_API uint64_t hearth_model_mapped_bytes(const hearth_model* m) { return m ? m->mapped_bytes : 0; }

extern "C" HEARTH_API void hearth_model_free(hearth_model* m) {
  if (!m) return;
  cudaSetDevice(m->device);
  for (int32_t i = 0; i < m->n_files; i++)
    if (m->files[i].addr) munmap(m->files[i].addr, m->files[i].size);
  free_device_weights(m);
  free(m->owned);
  free(m->records);
  free(m->layers);
  if (m->rope_inv_freq) cudaFree(m->rope_inv_freq);
  free(m);
}
