/*
 * hearth_half.h — scalar conversions between float32 and the 16-bit float formats (IEEE f16, bfloat16).
 * Plain C, header-only, shared by every backend's reference paths.
 */
#ifndef HEARTH_HALF_H
#define HEARTH_HALF_H

#include <stdint.h>
#include <string.h>

static inline float hearth_bits_to_f32(uint32_t bits) {
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

static inline uint32_t hearth_f32_to_bits(float f) {
  uint32_t bits;
  memcpy(&bits, &f, 4);
  return bits;
}

/* bfloat16 is the top half of a float32. */
static inline float hearth_bf16_to_f32(uint16_t h) { return hearth_bits_to_f32((uint32_t)h << 16); }

/* Round to nearest even; NaN stays NaN (quiet). */
static inline uint16_t hearth_f32_to_bf16(float f) {
  uint32_t bits = hearth_f32_to_bits(f);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((bits >> 16) | 0x40);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return (uint16_t)(bits >> 16);
}

static inline float hearth_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  if (exp == 0) {
    if (mant == 0) return hearth_bits_to_f32(sign);
    /* subnormal: value = mant * 2^-24 */
    float v = (float)mant * (1.0f / 16777216.0f);
    return sign ? -v : v;
  }
  if (exp == 31) return hearth_bits_to_f32(sign | 0x7f800000u | (mant << 13));
  return hearth_bits_to_f32(sign | ((exp + 112u) << 23) | (mant << 13));
}

/* Round to nearest even, overflow to infinity, subnormals kept. */
static inline uint16_t hearth_f32_to_f16(float f) {
  uint32_t bits = hearth_f32_to_bits(f);
  uint16_t sign = (uint16_t)((bits >> 16) & 0x8000u);
  uint32_t abs = bits & 0x7fffffffu;
  if (abs > 0x7f800000u) return sign | 0x7e00u; /* NaN */
  if (abs >= 0x477ff000u) return sign | 0x7c00u; /* rounds to >= 65520: infinity */
  if (abs < 0x38800000u) {                        /* below the smallest normal f16 (2^-14) */
    if (abs < 0x33000000u) return sign;           /* below half the smallest subnormal */
    uint32_t exp = abs >> 23;
    uint32_t mant = (abs & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126u - exp; /* 14..24: value = mant * 2^(exp-150), unit 2^-24 */
    uint32_t q = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1u);
    uint32_t half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (q & 1u))) q++;
    return sign | (uint16_t)q;
  }
  uint32_t r = abs + 0xfffu + ((abs >> 13) & 1u);
  return sign | (uint16_t)((r - 0x38000000u) >> 13);
}

#endif
