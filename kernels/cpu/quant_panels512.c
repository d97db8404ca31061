/*
 * quant_panels512.c — block-quantized weights in panels of 16 rows for the AVX-512 VNNI and AMX tables
 * (layout: quant_panels512.h), packed once at load (model.c), and their VNNI product for any T.
 * Compiled with AVX-512 and -mavx512vnni.
 *
 * A panel's record keeps one row per 32-bit lane, so a group of 4 codes of 16 rows is one 64-byte
 * vector and one VPDPBUSD against 4 bytes of a token broadcast to every lane (an embedded broadcast from
 * memory: no shuffle) takes its 64 products; nothing is summed across lanes, and the 16 results land in
 * y side by side. Decode (T = 1) streams each record once; T > 1 reuses each loaded vector for up to 8
 * tokens. Q8_0's codes are stored unsigned (+128), VPDPBUSD's operand order, with 128 * sum(x) taken off
 * once per block; the 4/5-bit codes as Q4_0's AVX2 panels, two groups per vector.
 *
 * The B operand of an AMX TDPBSUD is the same thing: K/4 rows of 64 bytes, 4 consecutive codes of each of
 * 16 columns. quant_amx.c loads Q8_0's records as tiles directly and unpacks the nibble types' groups
 * into such rows.
 */
#include "quant_panels512.h"

#define PT 8 /* tokens per tile of the products */

/* ---------------------------------------------------------------------------------------------------- */
/* Packing                                                                                                */

size_t hearth_p16_bytes(int32_t type, int64_t n, int64_t k) {
  const int64_t qk = hearth_quant_block_elems(type);
  switch (type) {
    case HEARTH_DTYPE_Q8_0:
    case HEARTH_DTYPE_Q4_0:
    case HEARTH_DTYPE_Q4_1:
    case HEARTH_DTYPE_Q5_0:
    case HEARTH_DTYPE_Q5_1:
    case HEARTH_DTYPE_Q4_K:
    case HEARTH_DTYPE_Q5_K:
    case HEARTH_DTYPE_Q6_K: break;
    default: return 0;
  }
  if (n <= 0 || k <= 0 || k % qk != 0 || k > HEARTH_PANEL_MAX_K) return 0;
  return (size_t)((n + P16 - 1) / P16) * (size_t)(k / qk) * (size_t)p16_rec(type);
}

/* Sets bit `bit` of the u64 at p. */
static void set_bit64(uint8_t* p, int bit) {
  uint64_t m;
  memcpy(&m, p, 8);
  m |= (uint64_t)1 << bit;
  memcpy(p, &m, 8);
}

/* Code e (0..31) of a nibble-packed group pair layout at codes (see the header), lane bit lb = 4r + i. */
static void put_nibble(uint8_t* codes, uint8_t* hb, int e, int r, int c) {
  const int g = e / 4, lb = 4 * r + e % 4;
  codes[64 * (g / 2) + lb] |= (uint8_t)((c & 15) << (g % 2 ? 4 : 0));
  if (hb && (c >> 4)) set_bit64(hb + 8 * g, lb);
}

static void pack32(uint8_t* dst, const uint8_t* w, int64_t n, int64_t k, int32_t type) {
  const int64_t nb = k / 32, bs = hearth_quant_block_bytes(type), rec = p16_rec(type);
  for (int64_t p = 0; p < (n + P16 - 1) / P16; p++)
    for (int64_t b = 0; b < nb; b++) {
      uint8_t* R = hearth_panel_record(dst, p, nb, b, rec);
      uint8_t* codes = R + p16_codes(type);
      for (int r = 0; r < P16; r++) {
        const uint8_t* blk = hearth_panel_row_block(w, n, nb, bs, P16, p, r, b);
        memcpy(R + 2 * r, blk, 2);
        if (p16_has_min(type)) memcpy(R + 32 + 2 * r, blk + 2, 2);
        for (int e = 0; e < 32; e++) {
          const int c = hearth_panel_code32(blk, e, type);
          if (type == HEARTH_DTYPE_Q8_0) codes[64 * (e / 4) + 4 * r + e % 4] = (uint8_t)(c + 128);
          else put_nibble(codes, p16_is_q5(type) ? codes + 256 : NULL, e, r, c);
        }
      }
    }
}

static void pack_q4k(uint8_t* dst, const uint8_t* w, int64_t n, int64_t k, int32_t type) {
  const int q5 = type == HEARTH_DTYPE_Q5_K;
  const int64_t nsb = k / 256, bs = hearth_quant_block_bytes(type), rec = p16_rec(type);
  for (int64_t p = 0; p < (n + P16 - 1) / P16; p++)
    for (int64_t sb = 0; sb < nsb; sb++) {
      uint8_t* R = hearth_panel_record(dst, p, nsb, sb, rec);
      for (int r = 0; r < P16; r++) {
        const uint8_t* blk = hearth_panel_row_block(w, n, nsb, bs, P16, p, r, sb);
        hearth_panel_pack_q4k_scales(R, blk, r, P16);
        for (int sub = 0; sub < 8; sub++)
          for (int e = 0; e < 32; e++) {
            const int c = hearth_panel_code_q4k(blk, 32 * sub + e, q5);
            put_nibble(R + 256 + 256 * sub, q5 ? R + 2304 + 64 * sub : NULL, e, r, c);
          }
      }
    }
}

static void pack_q6k(uint8_t* dst, const uint8_t* w, int64_t n, int64_t k) {
  const int64_t nsb = k / 256, bs = (int64_t)sizeof(hearth_block_q6_k), rec = p16_rec(HEARTH_DTYPE_Q6_K);
  for (int64_t p = 0; p < (n + P16 - 1) / P16; p++)
    for (int64_t sb = 0; sb < nsb; sb++) {
      uint8_t* R = hearth_panel_record(dst, p, nsb, sb, rec);
      for (int r = 0; r < P16; r++) {
        const uint8_t* blk = hearth_panel_row_block(w, n, nsb, bs, P16, p, r, sb);
        memcpy(R + 2 * r, blk + 208, 2);
        for (int sub = 0; sub < 16; sub++) R[32 + 16 * sub + r] = blk[192 + sub];
        for (int i = 0; i < 256; i++) {
          const int q = hearth_panel_code_q6k(blk, i);
          const int G = i / 32, e = i % 32, g = e / 4;
          put_nibble(R + 288 + 256 * G, NULL, e, r, q & 15);
          R[2336 + 128 * G + 64 * (g / 4) + 4 * r + e % 4] |= (uint8_t)((q >> 4) << (2 * (g % 4)));
        }
      }
    }
}

void hearth_p16_pack(void* dst, const void* w, int32_t type, int64_t n, int64_t k) {
  if (hearth_p16_bytes(type, n, k) == 0) return;
  if (type == HEARTH_DTYPE_Q6_K) pack_q6k((uint8_t*)dst, (const uint8_t*)w, n, k);
  else if (p16_is_k(type)) pack_q4k((uint8_t*)dst, (const uint8_t*)w, n, k, type);
  else pack32((uint8_t*)dst, (const uint8_t*)w, n, k, type);
}

/* ---------------------------------------------------------------------------------------------------- */
/* VNNI products                                                                                          */

/* 4 bytes of x at p in every lane. */
PI __m512i x4(const uint8_t* p) {
  int32_t v;
  memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

/* y[t * ldy + r] for the panel's rows r < rows and TT tokens of a 32-element type over nb blocks. */
PI void tile32(float* y, int64_t ldy, int rows, const uint8_t* wp, const uint8_t* xa, int64_t xrow,
               const hearth_panel_x* px, int64_t nb, const int TT, const int32_t type) {
  const int64_t rec = p16_rec(type);
  const int mins = p16_has_min(type);
  __m512 acc[PT];
  for (int t = 0; t < TT; t++) acc[t] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; b++) {
    const uint8_t* R = wp + b * rec;
    const uint8_t* codes = R + p16_codes(type);
    __m512i p[PT];
    for (int t = 0; t < TT; t++) p[t] = _mm512_setzero_si512();
    if (type == HEARTH_DTYPE_Q8_0) {
      for (int g = 0; g < 8; g++) {
        const __m512i u = _mm512_loadu_si512(codes + 64 * g);
        for (int t = 0; t < TT; t++) p[t] = _mm512_dpbusd_epi32(p[t], u, x4(xa + t * xrow + b * 34 + 2 + 4 * g));
      }
    } else {
      for (int j = 0; j < 4; j++) {
        __m512i lo, hi;
        p16_nibbles(codes, p16_is_q5(type) ? codes + 256 : NULL, j, &lo, &hi);
        for (int t = 0; t < TT; t++) {
          const uint8_t* xb = xa + t * xrow + b * 34 + 2 + 8 * j;
          p[t] = _mm512_dpbusd_epi32(p[t], lo, x4(xb));
          p[t] = _mm512_dpbusd_epi32(p[t], hi, x4(xb + 4));
        }
      }
    }
    const __m512 dw = p16_h16(R), mw = mins ? p16_h16(R + 32) : _mm512_setzero_ps();
    for (int t = 0; t < TT; t++) acc[t] = p16_block(acc[t], p[t], dw, mw, &px[t * nb + b], mins, 1);
  }
  p16_store(y, ldy, rows, acc, TT);
}

/* The same for a K-quant over nsb super-blocks (x: Q8_K rows). The int16 sums of VPMADDUBSW stay in
   range: 8 products of 4-bit (Q4_K), 4 of 5-bit (Q5_K, then widened), 2 x 2 of 6-bit (Q6_K) codes. */
PI void tilek(float* y, int64_t ldy, int rows, const uint8_t* wp, const uint8_t* xa, int64_t xrow, int64_t nsb,
              const int TT, const int32_t type) {
  const int64_t rec = p16_rec(type);
  const int q5 = type == HEARTH_DTYPE_Q5_K;
  __m512 acc[PT];
  for (int t = 0; t < TT; t++) acc[t] = _mm512_setzero_ps();
  for (int64_t sb = 0; sb < nsb; sb++) {
    const uint8_t* R = wp + sb * rec;
    __m512i isum[PT], msum[PT];
    for (int t = 0; t < TT; t++) isum[t] = msum[t] = _mm512_setzero_si512();
    if (type == HEARTH_DTYPE_Q6_K) {
#pragma GCC unroll 1
      for (int G = 0; G < 8; G++)
        for (int half = 0; half < 2; half++) { /* sub-block 2G + half: group pairs 2 half, 2 half + 1 */
          const int sub = 2 * G + half;
          const __m512i sc = p16_q6k_scales(R, sub);
          const __m512i sc2 = p16_pair16(sc, sc);
          for (int jj = 0; jj < 2; jj++) {
            const int j = 2 * half + jj;
            __m512i lo, hi;
            p16_q6k_codes(R, G, j, &lo, &hi);
            for (int t = 0; t < TT; t++) {
              const uint8_t* xq = (const uint8_t*)((const hearth_block_q8_k*)(xa + t * xrow) + sb)->qs + 32 * G + 8 * j;
              const __m512i p16 = _mm512_add_epi16(_mm512_maddubs_epi16(lo, x4(xq)), _mm512_maddubs_epi16(hi, x4(xq + 4)));
              isum[t] = _mm512_dpwssd_epi32(isum[t], p16, sc2);
            }
          }
          if (half) { /* scale * sum(x) of sub-blocks 2G, 2G + 1 in one VPDPWSSD */
            const __m512i pair = p16_pair16(p16_q6k_scales(R, sub - 1), sc);
            for (int t = 0; t < TT; t++)
              msum[t] = _mm512_dpwssd_epi32(msum[t], pair, p16_bsum_pair((const hearth_block_q8_k*)(xa + t * xrow) + sb, sub - 1));
          }
        }
    } else {
#pragma GCC unroll 1
      for (int sub = 0; sub < 8; sub++) {
        __m512i sc, mn;
        p16_q4k_scales(R, sub, &sc, &mn);
        const __m512i sc2 = p16_twice16(sc);
        const uint8_t* codes = R + 256 + 256 * sub;
        __m512i p16[PT];
        for (int t = 0; t < TT; t++) p16[t] = _mm512_setzero_si512();
        for (int j = 0; j < 4; j++) {
          __m512i lo, hi;
          p16_nibbles(codes, q5 ? R + 2304 + 64 * sub : NULL, j, &lo, &hi);
          for (int t = 0; t < TT; t++) {
            const uint8_t* xq = (const uint8_t*)((const hearth_block_q8_k*)(xa + t * xrow) + sb)->qs + 32 * sub + 8 * j;
            p16[t] = _mm512_add_epi16(p16[t], _mm512_maddubs_epi16(lo, x4(xq)));
            p16[t] = _mm512_add_epi16(p16[t], _mm512_maddubs_epi16(hi, x4(xq + 4)));
          }
          if (q5 && j == 1) /* 4 products of 5-bit codes fill int16: widen now */
            for (int t = 0; t < TT; t++) {
              isum[t] = _mm512_dpwssd_epi32(isum[t], p16[t], sc2);
              p16[t] = _mm512_setzero_si512();
            }
        }
        const __m512i mn2 = p16_twice16(mn); /* min * (bsums[2 sub] + bsums[2 sub + 1]) in one VPDPWSSD */
        for (int t = 0; t < TT; t++) {
          const hearth_block_q8_k* xb = (const hearth_block_q8_k*)(xa + t * xrow) + sb;
          isum[t] = _mm512_dpwssd_epi32(isum[t], p16[t], sc2);
          msum[t] = _mm512_dpwssd_epi32(msum[t], mn2, p16_bsum_pair(xb, 2 * sub));
        }
      }
    }
    const __m512 dw = p16_h16(R), dmw = type == HEARTH_DTYPE_Q6_K ? _mm512_setzero_ps() : p16_h16(R + 32);
    for (int t = 0; t < TT; t++) {
      const float dx = ((const hearth_block_q8_k*)(xa + t * xrow) + sb)->d;
      acc[t] = p16_superblock(acc[t], isum[t], msum[t], dw, dmw, dx, type);
    }
  }
  p16_store(y, ldy, rows, acc, TT);
}

/* Tiles of 8, 4, 2, 1 tokens over one panel: the first streams it from memory, the later ones find it in
   the caches. No software prefetch: the panels are one sequential stream per thread, which the hardware
   prefetchers follow. On the 2-core Zen 4 host (2026-12-06), prefetching each record's bytes 8 records
   ahead (the earlier build, T0 hint) against none, alternated processes: Q8_0 decode 172 / 193 and 196 /
   222 tok/s, Q4_0 299 / 337, Q4_K mix 292 / 296; prefill of 512 tokens 1338 / 1333. In a harness of two
   threads streaming one 140 MB Q8_0 matrix, none was as fast or faster at 1, 2, 4, 8 and 16 tokens (a
   distance of 16 records, or the T1 and NTA hints, no better than 8). */
PI void panel_tokens(float* y, int64_t ldy, int rows, const uint8_t* p, const uint8_t* xa, int64_t xrow,
                     const hearth_panel_x* px, int64_t nb, int64_t tn, const int32_t type) {
  int64_t t = 0;
#define P16_TILE(TT)                                                                                    \
  for (; t + (TT) <= tn; t += (TT)) {                                                                   \
    if (p16_is_k(type)) tilek(y + t * ldy, ldy, rows, p, xa + t * xrow, xrow, nb, (TT), type);          \
    else tile32(y + t * ldy, ldy, rows, p, xa + t * xrow, xrow, px + t * nb, nb, (TT), type);           \
  }
  if (!p16_is_k(type)) { /* 8 tokens' K-quant sums (3 vectors each) would not fit the registers */
    P16_TILE(PT)
  }
  P16_TILE(4)
  P16_TILE(2)
  P16_TILE(1)
#undef P16_TILE
}

PI void matmul_typed(float* y, int64_t ldy, const uint8_t* wp, const uint8_t* xa, int64_t T, int64_t n, int64_t k,
                     const int32_t type) {
  const int64_t qk = p16_is_k(type) ? 256 : 32, nb = k / qk, prec = nb * p16_rec(type);
  const int64_t xrow = (int64_t)hearth_quant_act_bytes(type, 1, k);
  hearth_panel_x px[HEARTH_PANEL_XSIDE]; /* 32-element types only */
  const int64_t tb = p16_is_k(type) ? T : hearth_panel_xtokens(nb);
  for (int64_t t0 = 0; t0 < T; t0 += tb) {
    const int64_t tn = T - t0 < tb ? T - t0 : tb;
    if (!p16_is_k(type)) hearth_panel_prep_x(px, xa + t0 * xrow, xrow, tn, nb, p16_offset(type), p16_has_min(type));
    for (int64_t r0 = 0; r0 < n; r0 += P16) {
      const int rows = n - r0 < P16 ? (int)(n - r0) : P16;
      panel_tokens(y + t0 * ldy + r0, ldy, rows, wp + (r0 / P16) * prec, xa + t0 * xrow, xrow, px, nb, tn, type);
    }
  }
}

void hearth_p16_matmul(float* y, int64_t ldy, const void* wp, int32_t type, const void* x_act, int64_t T, int64_t n,
                       int64_t k) {
  const uint8_t* w = (const uint8_t*)wp;
  const uint8_t* xa = (const uint8_t*)x_act;
  switch (type) {
    case HEARTH_DTYPE_Q8_0: matmul_typed(y, ldy, w, xa, T, n, k, HEARTH_DTYPE_Q8_0); break;
    case HEARTH_DTYPE_Q4_0: matmul_typed(y, ldy, w, xa, T, n, k, HEARTH_DTYPE_Q4_0); break;
    case HEARTH_DTYPE_Q4_1: matmul_typed(y, ldy, w, xa, T, n, k, HEARTH_DTYPE_Q4_1); break;
    case HEARTH_DTYPE_Q5_0: matmul_typed(y, ldy, w, xa, T, n, k, HEARTH_DTYPE_Q5_0); break;
    case HEARTH_DTYPE_Q5_1: matmul_typed(y, ldy, w, xa, T, n, k, HEARTH_DTYPE_Q5_1); break;
    case HEARTH_DTYPE_Q4_K: matmul_typed(y, ldy, w, xa, T, n, k, HEARTH_DTYPE_Q4_K); break;
    case HEARTH_DTYPE_Q5_K: matmul_typed(y, ldy, w, xa, T, n, k, HEARTH_DTYPE_Q5_K); break;
    case HEARTH_DTYPE_Q6_K: matmul_typed(y, ldy, w, xa, T, n, k, HEARTH_DTYPE_Q6_K); break;
    default: break;
  }
}
