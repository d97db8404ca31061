/*
 * hearth_fail.h — how every backend reports a failure (hearth.h's convention): the message into the
 * caller's buffer, the status as the return value. Header-only so that the CPU library (C) and the CUDA
 * one (nvcc's host C++) write their messages with the same function.
 */
#ifndef HEARTH_FAIL_H
#define HEARTH_FAIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Writes a formatted message into err (if any) and returns status. */
static inline int32_t hearth_fail(char* err, size_t err_len, int32_t status, const char* fmt, ...)
    __attribute__((format(printf, 4, 5)));

static inline int32_t hearth_fail(char* err, size_t err_len, int32_t status, const char* fmt, ...) {
  if (err && err_len > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
  }
  return status;
}

#endif
