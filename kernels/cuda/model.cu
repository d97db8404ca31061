/*
 * model.cu — the CUDA backend's model: the description is mapped, checked and recorded by the CPU
 * backend's own code (kernels/cpu/model_desc.c, linked into this library: the same checks and messages,
 * so TypeScript sees one behaviour), then hearth_model_finish uploads every weight to the device once.
 * Conversions run on the host with the CPU backend's row converters (model_desc.c over
 * kernels/cpu/quant.c, linked in too), so a model quantized at load holds the same bytes on either
 * backend. Also here: the library's identity and the device probe exports.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.cuh"

/* ---------------------------------------------------------------------------------------------------- */
/* Errors, identity, devices                                                                              */

int32_t hc_cuda_fail(char* err, size_t err_len, cudaError_t e, const char* what) {
  const int32_t status = e == cudaErrorMemoryAllocation ? HEARTH_E_NOMEM : HEARTH_E_INVALID;
  return hearth_fail(err, err_len, status, "%s: %s (%s)", what, cudaGetErrorName(e), cudaGetErrorString(e));
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
  if (dev < 0 || dev >= n) return hearth_fail(err, err_len, HEARTH_E_INVALID, "no CUDA device %d (%d present)", dev, n);
  int32_t rc = hc_use_device(dev, err, err_len);
  if (rc == HEARTH_OK) g_device = dev;
  return rc;
}

} /* extern "C" */

/* ---------------------------------------------------------------------------------------------------- */
/* The description (kernels/cpu/model_desc.c)                                                             */

extern "C" HEARTH_API hearth_model* hearth_model_new(const hearth_model_config* cfg, const float* rope_inv_freq,
                                                     char* err, size_t err_len) {
  if (hearth_check_model_config(cfg, err, err_len) != HEARTH_OK) return NULL;
  const hearth_model_config* c = cfg;
  if (c->head_dim > 256) { /* the attention kernels keep a row in registers: 8 values per lane at most */
    hearth_fail(err, err_len, HEARTH_E_INVALID, "model config: head_dim %d is over the CUDA backend's 256", c->head_dim);
    return NULL;
  }
  if (!rope_inv_freq) {
    hearth_fail(err, err_len, HEARTH_E_INVALID, "model config: rope_inv_freq is NULL");
    return NULL;
  }
  if (hc_use_device(g_device, err, err_len) != HEARTH_OK) return NULL;
  hearth_model* m = (hearth_model*)calloc(1, sizeof(hearth_model));
  if (!m) {
    hearth_fail(err, err_len, HEARTH_E_NOMEM, "out of memory creating the model");
    return NULL;
  }
  m->cfg = *c;
  m->device = g_device;
  cudaDeviceProp p;
  if (cudaGetDeviceProperties(&p, g_device) == cudaSuccess) m->cc_major = p.major, m->cc_minor = p.minor;
  m->records = hearth_new_records(c->n_layers);
  m->layers = (hc_layer*)calloc((size_t)c->n_layers, sizeof(hc_layer));
  cudaError_t e = cudaMalloc((void**)&m->rope_inv_freq, sizeof(float) * (size_t)(c->head_dim / 2));
  if (e == cudaSuccess)
    e = cudaMemcpy(m->rope_inv_freq, rope_inv_freq, sizeof(float) * (size_t)(c->head_dim / 2), cudaMemcpyHostToDevice);
  if (!m->records || !m->layers || e != cudaSuccess) {
    if (e != cudaSuccess) hc_cuda_fail(err, err_len, e, "creating the model on the device");
    else hearth_fail(err, err_len, HEARTH_E_NOMEM, "out of memory creating the model");
    hearth_model_free(m);
    return NULL;
  }
  return m;
}

extern "C" HEARTH_API int32_t hearth_model_map_file(hearth_model* m, const char* path, char* err, size_t err_len) {
  if (!m || !path) return hearth_fail(err, err_len, HEARTH_E_INVALID, "map_file: model or path is NULL");
  if (m->finished) return hearth_fail(err, err_len, HEARTH_E_INVALID, "map_file: model already finished");
  const int32_t i = hearth_map_weight_file(m->files, &m->n_files, path, err, err_len);
  if (i >= 0) m->mapped_bytes += (uint64_t)m->files[i].size;
  return i;
}

extern "C" HEARTH_API int32_t hearth_model_set_tensor(hearth_model* m, const char* name, int32_t role, int32_t layer,
                                                      int32_t file, uint64_t offset, uint64_t nbytes, int32_t dtype,
                                                      int32_t n_dims, const int64_t* dims, char* err,
                                                      size_t err_len) {
  if (!m || !name) return hearth_fail(err, err_len, HEARTH_E_INVALID, "set_tensor: model or name is NULL");
  if (m->finished) return hearth_fail(err, err_len, HEARTH_E_INVALID, "%s: model already finished", name);
  return hearth_record_tensor(&m->cfg, m->files, m->n_files, m->records, name, role, layer, file, offset, nbytes,
                              dtype, n_dims, dims, err, err_len);
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

/* Rows [r0, r1) of a (rows, cols) tensor from dtype `from` to `to` on the host, with the CPU backend's
   hearth_convert_rows: dequantize to floats, then narrow or quantize. */
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
  if (hearth_convert_rows(j->dst, j->to, j->src, j->from, r0, r1, j->cols, row) != 0) j->failed = 1;
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

/* Quantized types the kernels read directly; the others are converted to Q8_0. */
static int device_native(int32_t dtype) {
  return dtype < HEARTH_N_FLOAT_DTYPES || dtype == HEARTH_DTYPE_Q8_0 || dtype == HEARTH_DTYPE_Q4_0 || dtype == HEARTH_DTYPE_Q4_K;
}

/* Uploads host bytes of w->dtype (GGUF layout) into the device layout of hc_weight (model.cu's header
   comment in internal.cuh). m NULL: the caller frees w->data and w->scales (test_ops.cu). */
int32_t hc_upload_weight(hearth_model* m, hc_weight* w, const void* host, const char* name, char* err, size_t err_len) {
  cudaError_t e = cudaSuccess;
  const uint64_t bytes = hearth_tensor_bytes(w->dtype, (uint64_t)w->rows, (uint64_t)w->cols);
  char what[224];
  snprintf(what, sizeof what, "%s: uploading %.1f MiB of %s weights", name, (double)bytes / 1048576.0,
           hearth_dtype_names[w->dtype]);
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
    return hearth_fail(err, err_len, HEARTH_E_NOMEM, "%s: out of host memory repacking", name);
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
  memset(out, 0, sizeof *out);
  const hearth_tensor_record* r;
  int64_t rows, cols;
  int32_t rc = hearth_find_record(&m->cfg, m->records, role, layer, &r, &rows, &cols, err, err_len);
  if (rc != HEARTH_OK || !r) return rc; /* !r: not used by this config */
  out->rows = rows;
  out->cols = cols;
  void* realigned = NULL; /* a copy when the file has the tensor at an offset the host code cannot read */
  const void* src = hearth_realign_source((const uint8_t*)m->files[r->file].addr + r->offset, r->dtype,
                                          (size_t)r->nbytes, &realigned);
  if (!src) return hearth_fail(err, err_len, HEARTH_E_NOMEM, "%s: out of memory copying it to an aligned address", r->name);
  int32_t to = want < 0 ? r->dtype : hearth_convertible_dtype(want, r->dtype, out->cols);
  if (!device_native(to)) to = HEARTH_DTYPE_Q8_0; /* cols fill 32-blocks: `to` was a quantized type */
  out->dtype = to;
  if (to == r->dtype) {
    rc = hc_upload_weight(m, out, src, r->name, err, err_len);
    free(realigned);
    return rc;
  }
  const uint64_t bytes = hearth_tensor_bytes(to, (uint64_t)out->rows, (uint64_t)out->cols);
  void* host = malloc(bytes ? bytes : 1);
  if (!host || convert_host(host, to, src, r->dtype, out->rows, out->cols) != 0) {
    free(host);
    free(realigned);
    return hearth_fail(err, err_len, HEARTH_E_NOMEM, "%s: out of memory converting to %s", r->name,
                       hearth_dtype_names[to]);
  }
  free(realigned);
  rc = hc_upload_weight(m, out, host, r->name, err, err_len);
  free(host);
  return rc;
}

static void free_device_weights(hearth_model* m) {
  for (int32_t i = 0; i < m->n_owned; i++) cudaFree(m->owned[i]);
  m->n_owned = 0;
  m->owned_bytes = 0;
}

/* The weights are uploaded to the device at finish whatever this says: nothing is read from the files
   afterwards. Accepted so that both libraries have one interface. */
extern "C" HEARTH_API int32_t hearth_model_set_in_memory(hearth_model* m, int32_t on, char* err, size_t err_len) {
  (void)on;
  if (!m) return hearth_fail(err, err_len, HEARTH_E_INVALID, "set_in_memory: model is NULL");
  if (m->finished) return hearth_fail(err, err_len, HEARTH_E_INVALID, "set_in_memory: model already finished");
  return HEARTH_OK;
}

extern "C" HEARTH_API int32_t hearth_model_finish(hearth_model* m, int32_t weight_dtype, char* err, size_t err_len) {
  if (!m) return hearth_fail(err, err_len, HEARTH_E_INVALID, "finish: model is NULL");
  if (m->finished) return hearth_fail(err, err_len, HEARTH_E_INVALID, "finish: model already finished");
  int32_t rc = hearth_check_weight_dtype(weight_dtype, err, err_len);
  if (rc != HEARTH_OK) return rc;
  rc = hc_use_device(m->device, err, err_len);
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
#define RESOLVE_LAYER(role, field, vector) RESOLVE(role, l, vector ? F32 : W, &L->field)
    HEARTH_LAYER_TENSORS(RESOLVE_LAYER)
#undef RESOLVE_LAYER
  }
#undef RESOLVE
  /* The weights live on the device now: drop the host maps. */
  hearth_unmap_weight_files(m->files, m->n_files);
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
  hearth_unmap_weight_files(m->files, m->n_files);
  free_device_weights(m);
  free(m->owned);
  free(m->records);
  free(m->layers);
  if (m->rope_inv_freq) cudaFree(m->rope_inv_freq);
  free(m);
}
