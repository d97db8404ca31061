/*
 * quant_amx.c — block-quantized matrix x many-tokens products on Intel AMX (AMX-TILE + AMX-INT8), for
 * prefill, on the AVX-512 panels of 16 rows (quant_panels512.h). Compiled with -mamx-tile -mamx-int8
 * and the AVX-512 VNNI flags; quant_dispatch.c offers this table only after CPUID says AMX-INT8 is there
 * and Linux granted this process the tile data state.
 *
 * What one TDPBSSD does: C[M x N int32] += A[M x K int8] . B[K x N int8], with B stored "VNNI style":
 * row kk of the B tile holds, for each of the N columns, the 4 consecutive K values 4kk .. 4kk + 3 of
 * that column (64 bytes = 16 columns x 4 bytes) — a panel's group of 4 codes of 16 rows.
 *
 * The mapping (one tile product = 16 weight rows x 16 tokens x one block or sub-block of S codes):
 *   A = activations: 16 tokens x S int8 codes (S = 32: a Q8_0 block or a 32-code sub-block of a Q8_K
 *       block; S = 16 for Q6_K's sub-blocks), loaded straight from the quantized activation rows with
 *       the row stride as the tile stride: no copy.
 *   B = weights: the panel's groups unpacked per chunk of k (4 row tiles x KC codes) into signed bytes
 *       holding the codes' values (Q8_0 less its +128, Q4_0 less 8, Q5_0 less 16, Q6_K less 32), so
 *       no offset * sum(x) term is left for the float work.
 *   C = 16 tokens x 16 rows of exact int32 sums, stored to a small buffer; row t of C is one token's 16
 *       outputs, in the lanes the VNNI panel product has them.
 * From there a token's outputs go through quant_panels512.h's p16_block / p16_superblock, block after
 * block from zero, as in the VNNI product: C is the VNNI sum with the offset already taken off, the same
 * integer, so a token in a tile gets the same bits as alone, and T % 16 tail tokens (and products of
 * fewer than 16 tokens) simply take the VNNI product.
 *
 * Loop order: groups of up to 4 row tiles (64 rows); chunks of k, unpacked once; token tiles of 16;
 * blocks. One A tile load feeds 4 tile products (C tiles 0..3), and the float work of a block runs after
 * the tile products of the next one are issued (C stored to a double buffer), so its loads do not sit
 * right behind the tile stores. Accumulators carry over k
 * chunks in y (stored and reloaded: exact). Buffers on the stack, bounded (~170 KiB).
 */
#include "quant_panels512.h"

#define AMX_TOKENS 16 /* tokens per tile (rows of A and C) */
#define AMX_GROUP 4   /* row tiles per activation tile load */
#define KC 1024       /* k values per unpacked chunk: 16 KiB of codes per row tile */

/* Tile numbers: C tile i for row tile i (0..3), A tiles 4, 5 and B tiles 6, 7 (alternating). */
typedef struct {
  uint8_t palette;
  uint8_t start_row;
  uint8_t reserved[14];
  uint16_t colsb[16]; /* bytes per row of tile i */
  uint8_t rows[16];   /* rows of tile i */
} tile_config;

/* Palette 1 with S-code sub-blocks: C 16 x 64 B, A 16 x S B, B S/4 x 64 B. */
static void configure_tiles(int S) {
  tile_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.palette = 1;
  for (int i = 0; i < 4; i++) {
    cfg.rows[i] = AMX_TOKENS;
    cfg.colsb[i] = P16 * 4;
  }
  for (int i = 4; i < 6; i++) {
    cfg.rows[i] = AMX_TOKENS;
    cfg.colsb[i] = (uint16_t)S;
  }
  for (int i = 6; i < 8; i++) {
    cfg.rows[i] = (uint8_t)(S / 4);
    cfg.colsb[i] = P16 * 4;
  }
  _tile_loadconfig(&cfg);
}

/* One chunk of k of AMX_GROUP row tiles, unpacked: row tile i, group g at codes[i] + 64 g. */
typedef struct {
  uint8_t codes[AMX_GROUP][P16 * KC];
} unpacked_tiles;

/* C tiles 0..nr-1 of one (sub-)block: A tile ta (16 tokens from a, stride xrow) times the B tiles at b[i]
   (stride 64; B tiles 6 and 7 alternate), stored to cbuf[i]. One activation load serves every row tile. */
#define AMX_ROW_PRODUCT(i, ta, tb)    \
  do {                               \
    _tile_loadd(tb, b[i], 64);       \
    _tile_zero(i);                   \
    _tile_dpbssd(i, ta, tb);         \
    _tile_stored(i, cbuf[i], 64);    \
  } while (0)
#define AMX_PRODUCTS(ta)                       \
  do {                                         \
    _tile_loadd(ta, a, xrow);                  \
    AMX_ROW_PRODUCT(0, ta, 6);                 \
    if (nr > 1) AMX_ROW_PRODUCT(1, ta, 7);     \
    if (nr > 2) AMX_ROW_PRODUCT(2, ta, 6);     \
    if (nr > 3) AMX_ROW_PRODUCT(3, ta, 7);     \
  } while (0)

/* Sub-block number `parity` picks the A tile (4 or 5), so the next activation load need not wait for the
   products of the previous one. */
static inline __attribute__((always_inline)) void products(int32_t cbuf[AMX_GROUP][AMX_TOKENS][P16], int nr,
                                                           int parity, const uint8_t* a, int64_t xrow,
                                                           const uint8_t* const b[AMX_GROUP]) {
  if (parity) AMX_PRODUCTS(5);
  else AMX_PRODUCTS(4);
}

/* Rows of row tile i of the group at row g0 (the last may be short). */
static inline int tile_rows(int64_t n, int64_t g0, int i) {
  const int64_t r0 = g0 + P16 * i;
  return n - r0 < P16 ? (int)(n - r0) : P16;
}

/* acc[i][t] from y (a later chunk of k) or zero (the first). */
static void acc_load(float acc[AMX_GROUP][AMX_TOKENS][P16], const float* y, int64_t ldy, int64_t n, int64_t g0, int nr,
                     int first) {
  for (int i = 0; i < nr; i++) {
    const __mmask16 m = (__mmask16)((1u << tile_rows(n, g0, i)) - 1);
    for (int t = 0; t < AMX_TOKENS; t++)
      _mm512_storeu_ps(acc[i][t], first ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(m, y + t * ldy + g0 + P16 * i));
  }
}

static void acc_store(float acc[AMX_GROUP][AMX_TOKENS][P16], float* y, int64_t ldy, int64_t n, int64_t g0, int nr) {
  for (int i = 0; i < nr; i++) {
    const __mmask16 m = (__mmask16)((1u << tile_rows(n, g0, i)) - 1);
    for (int t = 0; t < AMX_TOKENS; t++) _mm512_mask_storeu_ps(y + t * ldy + g0 + P16 * i, m, _mm512_loadu_ps(acc[i][t]));
  }
}

/* ---------------------------------------------------------------------------------------------------- */
/* 32-element types                                                                                       */

/* The codes of one record (16 rows x 32) as 8 B rows of signed bytes at dst, their values: Q8_0's less
   the 128 they are stored with, Q4_0's less 8, Q5_0's less 16 (Q4_1's and Q5_1's as they are). */
static inline void unpack_record32(uint8_t* dst, const uint8_t* R, int32_t type) {
  const uint8_t* codes = R + p16_codes(type);
  if (type == HEARTH_DTYPE_Q8_0) {
    for (int g = 0; g < 8; g++)
      _mm512_storeu_si512(dst + 64 * g, _mm512_xor_si512(_mm512_loadu_si512(codes + 64 * g), _mm512_set1_epi8((char)0x80)));
    return;
  }
  const __m512i off = _mm512_set1_epi8((char)p16_offset(type));
  for (int j = 0; j < 4; j++) {
    __m512i lo, hi;
    p16_nibbles(codes, p16_is_q5(type) ? codes + 256 : NULL, j, &lo, &hi);
    _mm512_storeu_si512(dst + 128 * j, _mm512_sub_epi8(lo, off));
    _mm512_storeu_si512(dst + 128 * j + 64, _mm512_sub_epi8(hi, off));
  }
}

/* Y for tokens [0, T16) (a multiple of 16) of a 32-element type. */
static void amx32(float* y, int64_t ldy, const uint8_t* wp, const uint8_t* xa, int64_t T16, int64_t n, int64_t k,
                  const int32_t type) {
  const int64_t nb = k / 32, rec = p16_rec(type), prec = nb * rec, xrow = nb * 34;
  const int mins = p16_has_min(type);
  const int64_t chunk = KC / 32; /* blocks per chunk */
  unpacked_tiles ut;
  int32_t cbuf[2][AMX_GROUP][AMX_TOKENS][P16];
  float acc[AMX_GROUP][AMX_TOKENS][P16];
  hearth_panel_x px[AMX_TOKENS]; /* one block of the tile's tokens: d_x (and sum(x) d_x) */
  for (int64_t g0 = 0; g0 < n; g0 += AMX_GROUP * P16) {
    const int nr = (int)((n - g0 < AMX_GROUP * P16 ? n - g0 : AMX_GROUP * P16) + P16 - 1) / P16;
    const uint8_t* panel[AMX_GROUP];
    for (int i = 0; i < nr; i++) panel[i] = wp + (g0 / P16 + i) * prec;
    for (int64_t c0 = 0; c0 < nb; c0 += chunk) {
      const int cn = (int)(nb - c0 < chunk ? nb - c0 : chunk);
      for (int i = 0; i < nr; i++)
        for (int j = 0; j < cn; j++) unpack_record32(ut.codes[i] + 512 * j, panel[i] + (c0 + j) * rec, type);
      for (int64_t t0 = 0; t0 < T16; t0 += AMX_TOKENS) {
        const uint8_t* x = xa + t0 * xrow + c0 * 34; /* token t0's first block of the chunk */
        float* yt = y + t0 * ldy;
        acc_load(acc, yt, ldy, n, g0, nr, c0 == 0);
        for (int j = 0; j <= cn; j++) {
          if (j < cn) {
            const uint8_t* b[AMX_GROUP];
            for (int i = 0; i < nr; i++) b[i] = ut.codes[i] + 512 * j;
            products(cbuf[j % 2], nr, j % 2, x + 34 * j + 2, xrow, b);
          }
          if (j == 0) continue;
          const int jb = j - 1;
          hearth_panel_prep_x(px, x + 34 * jb, xrow, AMX_TOKENS, 1, 0, mins); /* codes unpacked to their values */
          for (int i = 0; i < nr; i++) {
            const uint8_t* R = panel[i] + (c0 + jb) * rec;
            const __m512 dw = p16_h16(R), mw = mins ? p16_h16(R + 32) : _mm512_setzero_ps();
            for (int t = 0; t < AMX_TOKENS; t++) {
              const __m512i c = _mm512_loadu_si512(cbuf[jb % 2][i][t]);
              _mm512_storeu_ps(acc[i][t], p16_block(_mm512_loadu_ps(acc[i][t]), c, dw, mw, &px[t], mins, 0));
            }
          }
        }
        acc_store(acc, yt, ldy, n, g0, nr);
      }
    }
  }
}

/* ---------------------------------------------------------------------------------------------------- */
/* K-quants                                                                                               */

/* Sub-block `sub` of one record as B rows of signed bytes at dst: 8 rows (Q4_K, Q5_K: the codes) or 4
   (Q6_K: the codes less 32, their values, so no scale * sum(x) term is left). */
static inline void unpack_subk(uint8_t* dst, const uint8_t* R, int sub, int32_t type) {
  __m512i lo, hi;
  if (type == HEARTH_DTYPE_Q6_K) {
    const int G = sub / 2, half = sub % 2;
    const __m512i off = _mm512_set1_epi8(32);
    for (int jj = 0; jj < 2; jj++) {
      p16_q6k_codes(R, G, 2 * half + jj, &lo, &hi);
      _mm512_storeu_si512(dst + 128 * jj, _mm512_sub_epi8(lo, off));
      _mm512_storeu_si512(dst + 128 * jj + 64, _mm512_sub_epi8(hi, off));
    }
    return;
  }
  const uint8_t* codes = R + 256 + 256 * sub;
  for (int j = 0; j < 4; j++) {
    p16_nibbles(codes, type == HEARTH_DTYPE_Q5_K ? R + 2304 + 64 * sub : NULL, j, &lo, &hi);
    _mm512_storeu_si512(dst + 128 * j, lo);
    _mm512_storeu_si512(dst + 128 * j + 64, hi);
  }
}

/* Y for tokens [0, T16) of a K-quant. Per super-block and (row tile, token): isum = sum over sub-blocks
   of scale * C, msum = sum of min (Q6_K: scale) * sum(x), then p16_superblock. */
static void amxk(float* y, int64_t ldy, const uint8_t* wp, const uint8_t* xa, int64_t T16, int64_t n, int64_t k,
                 const int32_t type) {
  const int q6 = type == HEARTH_DTYPE_Q6_K, S = q6 ? 16 : 32, NS = 256 / S;
  const int64_t nsb = k / 256, rec = p16_rec(type), prec = nsb * rec, xrow = nsb * (int64_t)sizeof(hearth_block_q8_k);
  const int64_t chunk = KC / 256; /* super-blocks per chunk */
  unpacked_tiles ut;
  int32_t cbuf[2][AMX_GROUP][AMX_TOKENS][P16];
  float acc[AMX_GROUP][AMX_TOKENS][P16];
  int32_t isum[AMX_GROUP][AMX_TOKENS][P16];
  for (int64_t g0 = 0; g0 < n; g0 += AMX_GROUP * P16) {
    const int nr = (int)((n - g0 < AMX_GROUP * P16 ? n - g0 : AMX_GROUP * P16) + P16 - 1) / P16;
    const uint8_t* panel[AMX_GROUP];
    for (int i = 0; i < nr; i++) panel[i] = wp + (g0 / P16 + i) * prec;
    for (int64_t c0 = 0; c0 < nsb; c0 += chunk) {
      const int cn = (int)(nsb - c0 < chunk ? nsb - c0 : chunk), total = cn * NS;
      for (int i = 0; i < nr; i++)
        for (int g = 0; g < total; g++) unpack_subk(ut.codes[i] + 16 * S * g, panel[i] + (c0 + g / NS) * rec, g % NS, type);
      for (int64_t t0 = 0; t0 < T16; t0 += AMX_TOKENS) {
        const uint8_t* x = xa + t0 * xrow + c0 * (int64_t)sizeof(hearth_block_q8_k);
        float* yt = y + t0 * ldy;
        acc_load(acc, yt, ldy, n, g0, nr, c0 == 0);
        for (int g = 0; g <= total; g++) {
          if (g < total) {
            const uint8_t* b[AMX_GROUP];
            for (int i = 0; i < nr; i++) b[i] = ut.codes[i] + 16 * S * g;
            products(cbuf[g % 2], nr, g % 2, x + (g / NS) * (int64_t)sizeof(hearth_block_q8_k) + 4 + S * (g % NS), xrow, b);
          }
          if (g == 0) continue;
          const int gb = g - 1, s = gb / NS, sub = gb % NS;
          for (int i = 0; i < nr; i++) {
            const uint8_t* R = panel[i] + (c0 + s) * rec;
            __m512i sc, mn;
            if (q6) sc = p16_q6k_scales(R, sub);
            else p16_q4k_scales(R, sub, &sc, &mn);
            for (int t = 0; t < AMX_TOKENS; t++) {
              const __m512i prod = _mm512_mullo_epi32(_mm512_loadu_si512(cbuf[gb % 2][i][t]), sc);
              _mm512_storeu_si512(isum[i][t], sub == 0 ? prod : _mm512_add_epi32(prod, _mm512_loadu_si512(isum[i][t])));
            }
            if (sub < NS - 1) continue;
            const __m512 dw = p16_h16(R), dmw = q6 ? _mm512_setzero_ps() : p16_h16(R + 32);
            __m512i mn2[8]; /* Q4_K, Q5_K: min * sum(x) of sub-block m as one VPDPWSSD on the bsums pair */
            if (!q6)
              for (int m = 0; m < 8; m++) {
                p16_q4k_scales(R, m, &sc, &mn);
                mn2[m] = p16_twice16(mn);
              }
            for (int t = 0; t < AMX_TOKENS; t++) {
              const hearth_block_q8_k* xb = (const hearth_block_q8_k*)(x + t * xrow) + s;
              __m512i msum = _mm512_setzero_si512();
              if (!q6)
                for (int m = 0; m < 8; m++) msum = _mm512_dpwssd_epi32(msum, mn2[m], p16_bsum_pair(xb, 2 * m));
              _mm512_storeu_ps(acc[i][t], p16_superblock(_mm512_loadu_ps(acc[i][t]), _mm512_loadu_si512(isum[i][t]),
                                                         msum, dw, dmw, xb->d, type));
            }
          }
        }
        acc_store(acc, yt, ldy, n, g0, nr);
      }
    }
  }
}

/* ---------------------------------------------------------------------------------------------------- */
/* The table                                                                                              */

static void amx_matmul_packed(float* y, int64_t ldy, const void* wp, int32_t type, const void* x_act, int64_t T,
                              int64_t n, int64_t k) {
  const uint8_t* w = (const uint8_t*)wp;
  const uint8_t* xa = (const uint8_t*)x_act;
  const int64_t T16 = T / AMX_TOKENS * AMX_TOKENS;
  if (T16 > 0) {
    configure_tiles(type == HEARTH_DTYPE_Q6_K ? 16 : 32);
    switch (type) {
      case HEARTH_DTYPE_Q8_0: amx32(y, ldy, w, xa, T16, n, k, HEARTH_DTYPE_Q8_0); break;
      case HEARTH_DTYPE_Q4_0: amx32(y, ldy, w, xa, T16, n, k, HEARTH_DTYPE_Q4_0); break;
      case HEARTH_DTYPE_Q4_1: amx32(y, ldy, w, xa, T16, n, k, HEARTH_DTYPE_Q4_1); break;
      case HEARTH_DTYPE_Q5_0: amx32(y, ldy, w, xa, T16, n, k, HEARTH_DTYPE_Q5_0); break;
      case HEARTH_DTYPE_Q5_1: amx32(y, ldy, w, xa, T16, n, k, HEARTH_DTYPE_Q5_1); break;
      case HEARTH_DTYPE_Q4_K: amxk(y, ldy, w, xa, T16, n, k, HEARTH_DTYPE_Q4_K); break;
      case HEARTH_DTYPE_Q5_K: amxk(y, ldy, w, xa, T16, n, k, HEARTH_DTYPE_Q5_K); break;
      default: amxk(y, ldy, w, xa, T16, n, k, HEARTH_DTYPE_Q6_K); break;
    }
    _tile_release();
  }
  if (T16 < T) {
    const int64_t xrow = (int64_t)hearth_quant_act_bytes(type, 1, k);
    hearth_p16_matmul(y + T16 * ldy, ldy, wp, type, xa + T16 * xrow, T - T16, n, k);
  }
}

/* Weights as stored (types without panels, or a table asked for directly) take the VNNI table's products
   for any T: one path per matrix, so a token's results do not depend on what shares its batch. */
static void amx_matmul(float* y, int64_t ldy, const void* w, int32_t type, const void* x_act, int64_t T, int64_t n,
                       int64_t k) {
  hearth_quant_ops_avx512vnni.matmul(y, ldy, w, type, x_act, T, n, k);
}

/* The activations are VNNI's (the same bytes as every table's). */
static void amx_quant_act(int32_t w_dtype, const float* x, int64_t T, int64_t k, void* out) {
  hearth_quant_ops_avx512vnni.quant_act(w_dtype, x, T, k, out);
}

const hearth_quant_ops hearth_quant_ops_amx = {.isa = "amx",
                                               .matmul = amx_matmul,
                                               .quant_act = amx_quant_act,
                                               .pack_bytes = hearth_p16_bytes,
                                               .pack = hearth_p16_pack,
                                               .matmul_packed = amx_matmul_packed};
