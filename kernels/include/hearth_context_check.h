/*
 * hearth_context_check.h — the checks of what TypeScript hands a context: hearth_context_new's options
 * and every batch hearth_step is given (every id, position, block and sampling slice against its bounds,
 * before anything is computed, so a bad batch is an error message, never a wild read).
 * kernels/cpu/context_check.c implements them and is compiled into the CPU library and the CUDA one
 * alike: both backends refuse the same batches with the same messages. Plain C.
 */
#ifndef HEARTH_CONTEXT_CHECK_H
#define HEARTH_CONTEXT_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "hearth.h"

#ifdef __cplusplus
extern "C" {
#endif

/* hearth_context_new's arguments. Each backend's model is its own struct, so what the checks read of it
   comes as flags: have_model (not NULL) and finished. */
int32_t hearth_check_context_new(int32_t have_model, int32_t finished, const hearth_context_options* o, char* err,
                                 size_t err_len);

/* A batch for a context of options o over a model of config c. */
int32_t hearth_check_batch(const hearth_model_config* c, const hearth_context_options* o, const hearth_batch* b,
                           char* err, size_t err_len);

#ifdef __cplusplus
}
#endif

#endif
