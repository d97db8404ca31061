/*
 * quant_amx.c — block-quantized matrix x many-tokens products on Intel AMX (AMX-TILE + AMX-INT8), for
 * prefill. Compiled with -mamx-tile -mamx-int8 and the AVX-512 flags; quant_dispatch.c offers this
 * table only after CPUID says AMX-INT8 is there and Linux granted this process the tile data state.
 *
 * What one TDPBSSD does: C[M x N int32] += A[M x K int8] . B[K x N int8], with B stored "VNNI style":
 * row kk of the B tile holds, for each of the N columns, the 4 consecutive K values 4kk .. 4kk + 3 of
 * that column (64 bytes = 16 columns x 4 bytes).
 *
 * The mapping (one "tile pair" = 16 weight rows x 16 tokens):
 *   A = activations: 16 tokens x S int8 codes of one sub-block (S = 32: a Q8_0 block, or a 32-code
 *       sub-block of a Q8_K block; S = 16 for the 16-code sub-blocks of Q6_K). Loaded straight from the
 *       quantized activation rows with the row stride as the tile stride: no copy.
 *   B = weights: the same sub-block of 16 weight rows, repacked once per call into the VNNI layout as
 *       signed int8 codes with the type's offset applied (Q4_0: q - 8, Q5_0: q - 16, Q6_K: q - 32,
 *       unsigned codes as they are); repacking uses 16-lane gathers (lane r = weight row r).
 *   C = 16 tokens x 16 rows of exact int32 sums for one sub-block; stored to a small buffer, converted
 *       to float and multiplied by the scales there: row t of C is one token's 16 outputs.
 *
 * Float epilogue (matches quant.c to float rounding):
 *   32-element types: acc[t] += C[t] * (d_w[16 rows] * d_x[t]) (+ m_w[16 rows] * d_x[t] * sum(x_t)
 *   for Q4_1 / Q5_1, sum(x_t) itself from one more TDPBSSD of the activations with a B tile of ones);
 *   K-quants: per super-block, s[t] = sum over sub-blocks j of C_j[t] * (d * sc_j)[16 rows]
 *   - sum over j of (dmin * m_j)[16 rows] * xsum_j[t] (xsum from Q8_K's bsums); acc[t] += s[t] * d_x[t].
 *
 * Loop order: groups of up to 4 row tiles (64 rows) are repacked together; then for each token tile
 * and sub-block one A tile load feeds 4 TDPBSSDs (one per row tile: C tiles 0..3), which keeps the
 * activations from being streamed again per 16 rows. The float work of a sub-block runs after the
 * tile products of the next one are issued (C stored to a double buffer), so its loads do not sit
 * right behind the tile stores.
 *
 * Buffers (all on the stack, bounded, ~130 KiB): the repacked weights of 4 row tiles for a chunk of at
 * most KC values of k (4 x 16 x KC bytes + per-sub-block scales), so any k works (longer rows in
 * chunks, their partial sums added into y). Token tails: the last token tile is moved back to end at
 * T (overlapping the previous one, whose tokens it does not store again); row tails: missing rows
 * repeat the last row (gather index clamped) and are not stored. Fewer than 16 tokens (where the VNNI
 * kernels were measured as fast), Q2_K / Q3_K, and rows too long for 32-bit gather offsets go to the
 * AVX-512 VNNI table.
 */
#include <immintrin.h>
#include <string.h>

#include "quant.h"

#define AMX_ROWS 16     /* weight rows per tile (columns of C) */
#define AMX_TOKENS 16   /* tokens per tile (rows of A and C) */
#define AMX_MIN_T 16    /* fewer tokens: the VNNI kernels */
#define AMX_GROUP 4     /* row tiles per activation tile load */
#define KC 1024         /* k values per repacked chunk: 16 KiB of codes per 16 rows */
#define MAX_SUB (KC / 16) /* sub-blocks per chunk at most (16-code sub-blocks) */

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
    cfg.colsb[i] = AMX_ROWS * 4;
  }
  for (int i = 4; i < 6; i++) {
    cfg.rows[i] = AMX_TOKENS;
    cfg.colsb[i] = (uint16_t)S;
  }
  for (int i = 6; i < 8; i++) {
    cfg.rows[i] = (uint8_t)(S / 4);
    cfg.colsb[i] = AMX_ROWS * 4;
  }
  _tile_loadconfig(&cfg);
}

/* AMX_GROUP row tiles (64 rows) repacked for a chunk of k: each activation tile load serves all of them. */
typedef struct {
  int8_t codes[AMX_GROUP][AMX_ROWS * KC];    /* row tile i, sub-block j: (S/4) x 64 bytes at j * 16 * S */
  float scale[AMX_GROUP][MAX_SUB][AMX_ROWS]; /* per sub-block: d (32-element types) or d * sc_j (K-quants) */
  float minv[AMX_GROUP][MAX_SUB][AMX_ROWS];  /* per sub-block: m (Q4_1, Q5_1) or dmin * m_j (Q4_K, Q5_K) */
} weight_tiles;

/* Per token tile, for a chunk: activation scales and sums. */
typedef struct {
  float dx[MAX_SUB][AMX_TOKENS];  /* Q8_0: d per block; Q8_K: d per super-block */
  float xs[MAX_SUB][AMX_TOKENS];  /* Q8_0: d * sum of codes per block; Q8_K: sum per 32-code sub-block */
} token_tile;

#define QA static inline __attribute__((always_inline))

/* 32 bits at base + idx[r] for the 16 lanes r. */
QA __m512i gather32(const uint8_t* base, __m512i idx) { return _mm512_i32gather_epi32(idx, base, 1); }

/* Low / high f16 halves of 16 dwords as floats. */
QA __m512 f16_lo(__m512i v) { return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(v)); }
QA __m512 f16_hi(__m512i v) { return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(v, 16))); }

/* Byte i of each dword = 16 if bit i of the dword's low byte is set (i < 4), else 0: Q5 high bits. */
QA __m512i bits4_to_16(__m512i v) {
  const __m512i spread = _mm512_shuffle_epi8(
      v, _mm512_set_epi8(12, 12, 12, 12, 8, 8, 8, 8, 4, 4, 4, 4, 0, 0, 0, 0, 12, 12, 12, 12, 8, 8, 8, 8, 4, 4, 4, 4,
                         0, 0, 0, 0, 12, 12, 12, 12, 8, 8, 8, 8, 4, 4, 4, 4, 0, 0, 0, 0, 12, 12, 12, 12, 8, 8, 8, 8,
                         4, 4, 4, 4, 0, 0, 0, 0));
  const __mmask64 m = _mm512_test_epi8_mask(spread, _mm512_set1_epi32(0x08040201));
  return _mm512_maskz_mov_epi8(m, _mm512_set1_epi8(16));
}

/* Offsets of the first byte of 16 rows (clamped: rows past nrows repeat the last one). */
QA __m512i row_index(int64_t wrow, int nrows) {
  const __m512i r = _mm512_min_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                     _mm512_set1_epi32(nrows - 1));
  return _mm512_mullo_epi32(r, _mm512_set1_epi32((int)wrow));
}

/* ---------------------------------------------------------------------------------------------------- */
/* Repacking                                                                                              */

QA int64_t block_bytes(int type) { return hearth_quant_block_bytes(type); }

/* Blocks [b0, b0 + nb) of a 32-element type: codes of block j at codes + 512 j, d (and m) per row. */
static void repack32(int8_t* codes, float (*scale)[AMX_ROWS], float (*minv)[AMX_ROWS], const uint8_t* w, __m512i idx,
                     int64_t b0, int nb, int type) {
  const int64_t bs = block_bytes(type);
  const int qo = type == HEARTH_DTYPE_Q8_0 ? 2 : type == HEARTH_DTYPE_Q4_0 ? 2 : type == HEARTH_DTYPE_Q4_1 ? 4
                 : type == HEARTH_DTYPE_Q5_0 ? 6 : 8;
  const int off = type == HEARTH_DTYPE_Q4_0 ? 8 : type == HEARTH_DTYPE_Q5_0 ? 16 : 0;
  const int q5 = type == HEARTH_DTYPE_Q5_0 || type == HEARTH_DTYPE_Q5_1;
  const __m512i m4 = _mm512_set1_epi8(0x0f), vo = _mm512_set1_epi8((char)off);
  for (int j = 0; j < nb; j++) {
    const uint8_t* b = w + (b0 + j) * bs;
    __m512i* dst = (__m512i*)(codes + 512 * j);
    const __m512i dm = gather32(b, idx); /* d | m << 16 */
    _mm512_storeu_ps(scale[j], f16_lo(dm));
    _mm512_storeu_ps(minv[j], f16_hi(dm));
    if (type == HEARTH_DTYPE_Q8_0) {
      for (int kk = 0; kk < 8; kk++) _mm512_storeu_si512(dst + kk, gather32(b + 2 + 4 * kk, idx));
      continue;
    }
    const __m512i qh = q5 ? gather32(b + qo - 4, idx) : _mm512_setzero_si512();
    for (int kk = 0; kk < 4; kk++) {
      /* qs dword kk: codes 4kk.. (low nibbles) and 16 + 4kk.. (high nibbles) */
      const __m512i v = gather32(b + qo + 4 * kk, idx);
      __m512i lo = _mm512_and_si512(v, m4), hi = _mm512_and_si512(_mm512_srli_epi32(v, 4), m4);
      if (q5) {
        lo = _mm512_or_si512(lo, bits4_to_16(_mm512_srli_epi32(qh, 4 * kk)));
        hi = _mm512_or_si512(hi, bits4_to_16(_mm512_srli_epi32(qh, 16 + 4 * kk)));
      }
      _mm512_storeu_si512(dst + kk, _mm512_sub_epi8(lo, vo));
      _mm512_storeu_si512(dst + kk + 4, _mm512_sub_epi8(hi, vo));
    }
  }
}

/* Byte i (0..3) of each dword, zero-extended / sign-extended. */
QA __m512i byte_u(__m512i v, int i) { return _mm512_and_si512(_mm512_srli_epi32(v, 8 * i), _mm512_set1_epi32(255)); }
QA __m512i byte_s(__m512i v, int i) { return _mm512_srai_epi32(_mm512_slli_epi32(v, 24 - 8 * i), 24); }

/* Super-blocks [s0, s0 + ns) of Q4_K / Q5_K (8 sub-blocks of 32) or Q6_K (16 of 16). */
static void repackk(int8_t* codes_all, float (*scale)[AMX_ROWS], float (*minv)[AMX_ROWS], const uint8_t* w,
                    __m512i idx, int64_t s0, int ns, int type) {
  const int64_t bs = block_bytes(type);
  const __m512i m4 = _mm512_set1_epi8(0x0f), m2 = _mm512_set1_epi8(3);
  for (int s = 0; s < ns; s++) {
    const uint8_t* b = w + (s0 + s) * bs;
    if (type == HEARTH_DTYPE_Q6_K) {
      int8_t* codes = codes_all + 4096 * s; /* 16 sub-blocks x 4 x 64 bytes */
      const __m512 d = f16_hi(gather32(b + 206, idx));
      for (int q = 0; q < 4; q++) {
        const __m512i sc = gather32(b + 192 + 4 * q, idx);
        for (int i = 0; i < 4; i++)
          _mm512_storeu_ps(scale[16 * s + 4 * q + i], _mm512_mul_ps(d, _mm512_cvtepi32_ps(byte_s(sc, i))));
      }
      /* sub-block j = 8h + s8 (elements 16j..): ql bytes 64h + 16 (s8 % 4) + e, nibble s8 / 4; qh bytes
         128 + 32h + 16 (s8 % 2) + e, bits 2 (s8 / 2). */
      for (int h = 0; h < 2; h++)
        for (int q4 = 0; q4 < 4; q4++)
          for (int kk = 0; kk < 4; kk++) {
            const __m512i l = gather32(b + 64 * h + 16 * q4 + 4 * kk, idx);
            const __m512i qh = gather32(b + 128 + 32 * h + 16 * (q4 % 2) + 4 * kk, idx);
            for (int nib = 0; nib < 2; nib++) {
              const int s8 = q4 + 4 * nib;
              const __m512i lo = _mm512_and_si512(nib ? _mm512_srli_epi32(l, 4) : l, m4);
              const __m512i hi = _mm512_and_si512(_mm512_srli_epi32(qh, 2 * (s8 / 2)), m2);
              const __m512i c = _mm512_sub_epi8(_mm512_or_si512(lo, _mm512_slli_epi32(hi, 4)), _mm512_set1_epi8(32));
              _mm512_storeu_si512(codes + 256 * (8 * h + s8) + 64 * kk, c);
            }
          }
      continue;
    }
    /* Q4_K / Q5_K */
    int8_t* codes = codes_all + 4096 * s; /* 8 sub-blocks x 8 x 64 bytes */
    const __m512i dd = gather32(b, idx);
    const __m512 d = f16_lo(dd), dmin = f16_hi(dd);
    const __m512i w0 = gather32(b + 4, idx), w1 = gather32(b + 8, idx), w2 = gather32(b + 12, idx);
    const __m512i c6 = _mm512_set1_epi32(0x3f3f3f3f), c4 = _mm512_set1_epi32(0x0f0f0f0f);
    const __m512i c30 = _mm512_set1_epi32(0x30303030);
    const __m512i sc_lo = _mm512_and_si512(w0, c6), m_lo = _mm512_and_si512(w1, c6);
    const __m512i sc_hi = _mm512_or_si512(_mm512_and_si512(w2, c4), _mm512_and_si512(_mm512_srli_epi32(w0, 2), c30));
    const __m512i m_hi = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(w2, 4), c4),
                                         _mm512_and_si512(_mm512_srli_epi32(w1, 2), c30));
    for (int j = 0; j < 8; j++) {
      const __m512i sc = byte_u(j < 4 ? sc_lo : sc_hi, j % 4), m = byte_u(j < 4 ? m_lo : m_hi, j % 4);
      _mm512_storeu_ps(scale[8 * s + j], _mm512_mul_ps(d, _mm512_cvtepi32_ps(sc)));
      _mm512_storeu_ps(minv[8 * s + j], _mm512_mul_ps(dmin, _mm512_cvtepi32_ps(m)));
    }
    const int q5 = type == HEARTH_DTYPE_Q5_K;
    const uint8_t* qs = b + (q5 ? 48 : 16);
    for (int kk = 0; kk < 8; kk++) {
      const __m512i qh = q5 ? gather32(b + 16 + 4 * kk, idx) : _mm512_setzero_si512();
      for (int jj = 0; jj < 4; jj++) {
        /* qs bytes 32jj + 4kk ..: sub-block 2jj (low nibbles), 2jj + 1 (high nibbles) */
        const __m512i v = gather32(qs + 32 * jj + 4 * kk, idx);
        __m512i lo = _mm512_and_si512(v, m4), hi = _mm512_and_si512(_mm512_srli_epi32(v, 4), m4);
        if (q5) {
          lo = _mm512_mask_add_epi8(lo, _mm512_test_epi8_mask(qh, _mm512_set1_epi8((char)(1 << (2 * jj)))), lo,
                                    _mm512_set1_epi8(16));
          hi = _mm512_mask_add_epi8(hi, _mm512_test_epi8_mask(qh, _mm512_set1_epi8((char)(2 << (2 * jj)))), hi,
                                    _mm512_set1_epi8(16));
        }
        _mm512_storeu_si512(codes + 512 * (2 * jj) + 64 * kk, lo);
        _mm512_storeu_si512(codes + 512 * (2 * jj + 1) + 64 * kk, hi);
      }
    }
  }
}

/* ---------------------------------------------------------------------------------------------------- */
/* Token tiles                                                                                            */

/* Q8_0 activations of 16 tokens (x: token 0's block b0), blocks [0, nb): d and, with mins, d * sum. */
static void prep32(token_tile* tt, const uint8_t* x, int64_t xrow, int nb, int mins) {
  const __m512i idx = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                         _mm512_set1_epi32((int)xrow));
  int32_t sums[AMX_TOKENS][AMX_ROWS]; /* C tile of x . ones: every column is the token's code sum */
  static const int8_t ones[8 * 64] = {[0 ... 511] = 1};
  if (mins) _tile_loadd(6, ones, 64);
  for (int j = 0; j < nb; j++) {
    const __m512 d = f16_lo(gather32(x + 34 * j, idx));
    _mm512_storeu_ps(tt->dx[j], d);
    if (!mins) continue;
    _tile_loadd(4, x + 34 * j + 2, xrow);
    _tile_zero(0);
    _tile_dpbssd(0, 4, 6);
    _tile_stored(0, sums, 64);
    const __m512i s = _mm512_i32gather_epi32(_mm512_set_epi32(240, 224, 208, 192, 176, 160, 144, 128, 112, 96, 80, 64,
                                                              48, 32, 16, 0),
                                             sums, 4);
    _mm512_storeu_ps(tt->xs[j], _mm512_mul_ps(d, _mm512_cvtepi32_ps(s)));
  }
}

/* Q8_K activations of 16 tokens (x: token 0's super-block s0), super-blocks [0, ns): d, and per
   32-code sub-block the code sums (bsums pairs) for the types with mins. */
static void prepk(token_tile* tt, const uint8_t* x, int64_t xrow, int ns, int mins) {
  const __m512i idx = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                         _mm512_set1_epi32((int)xrow));
  for (int s = 0; s < ns; s++) {
    const uint8_t* b = x + s * (int64_t)sizeof(hearth_block_q8_k);
    _mm512_storeu_ps(tt->dx[s], _mm512_castsi512_ps(gather32(b, idx)));
    if (!mins) continue;
    for (int j = 0; j < 8; j++) {
      const __m512i v = gather32(b + 260 + 4 * j, idx); /* bsums 2j, 2j + 1 */
      const __m512i sum = _mm512_add_epi32(_mm512_srai_epi32(_mm512_slli_epi32(v, 16), 16), _mm512_srai_epi32(v, 16));
      _mm512_storeu_ps(tt->xs[8 * s + j], _mm512_cvtepi32_ps(sum));
    }
  }
}

/* ---------------------------------------------------------------------------------------------------- */
/* Products                                                                                               */

/* For one sub-block: A tile ta (16 tokens from a, stride xrow) times the B tiles of nr row tiles (b, bstep
   bytes apart; B tiles 6 and 7 alternate), C tile i into cbuf[i]. One activation load serves all the row
   tiles: reloading it per row tile made the kernel wait on the activations. */
#define AMX_ROW_PRODUCT(i, ta, tb)                   \
  do {                                              \
    _tile_loadd(tb, b + (i) * bstep, 64);           \
    _tile_zero(i);                                  \
    _tile_dpbssd(i, ta, tb);                        \
    _tile_stored(i, cbuf[i], 64);                   \
  } while (0)
#define AMX_PRODUCTS(ta)                                      \
  do {                                                        \
    _tile_loadd(ta, a, xrow);                                 \
    AMX_ROW_PRODUCT(0, ta, 6);                                \
    if (nr > 1) AMX_ROW_PRODUCT(1, ta, 7);                    \
    if (nr > 2) AMX_ROW_PRODUCT(2, ta, 6);                    \
    if (nr > 3) AMX_ROW_PRODUCT(3, ta, 7);                    \
  } while (0)

/* Sub-block number `parity` picks the A tile (4 or 5), so the next activation load need not wait for the
   products of the previous one. */
QA void products(int32_t cbuf[AMX_GROUP][AMX_TOKENS][AMX_ROWS], int nr, int parity, const uint8_t* a,
                 int64_t xrow, const int8_t* b, int64_t bstep) {
  if (parity) AMX_PRODUCTS(5);
  else AMX_PRODUCTS(4);
}

/* acc[i] (16 tokens x 16 rows of row tile i < nr) = this chunk of a 32-element type; x: token 0's first
   block of the chunk. The float work of block j runs after the tile products of block j + 1 are issued,
   so the loads of C do not wait right behind its tile stores. */
static void tile32(float acc[AMX_GROUP][AMX_TOKENS][AMX_ROWS], int nr, const weight_tiles* wt,
                   const token_tile* tt, const uint8_t* x, int64_t xrow, int nb, int mins) {
  int32_t cbuf[2][AMX_GROUP][AMX_TOKENS][AMX_ROWS];
  const int64_t bstep = sizeof wt->codes[0];
  for (int j = 0; j <= nb; j++) {
    if (j < nb) products(cbuf[j % 2], nr, j % 2, x + 34 * j + 2, xrow, wt->codes[0] + 512 * j, bstep);
    if (j == 0) continue;
    const int jb = j - 1;
    for (int i = 0; i < nr; i++) {
      const __m512 dw = _mm512_loadu_ps(wt->scale[i][jb]), mw = _mm512_loadu_ps(wt->minv[i][jb]);
      for (int t = 0; t < AMX_TOKENS; t++) {
        const __m512 c = _mm512_cvtepi32_ps(_mm512_loadu_si512(cbuf[jb % 2][i][t]));
        const __m512 prev = jb == 0 ? _mm512_setzero_ps() : _mm512_loadu_ps(acc[i][t]);
        __m512 v = _mm512_fmadd_ps(c, _mm512_mul_ps(dw, _mm512_set1_ps(tt->dx[jb][t])), prev);
        if (mins) v = _mm512_fmadd_ps(mw, _mm512_set1_ps(tt->xs[jb][t]), v);
        _mm512_storeu_ps(acc[i][t], v);
      }
    }
  }
}

/* The same for a chunk of ns super-blocks of a K-quant (sub-blocks of S codes, NS per super-block): per
   super-block v = sum over sub-blocks of C_j * d sc_j, then acc += (v - sum of dmin m_j xsum_j) * d_x. */
static void tilek(float acc[AMX_GROUP][AMX_TOKENS][AMX_ROWS], int nr, const weight_tiles* wt, const token_tile* tt,
                  const uint8_t* x, int64_t xrow, int ns, int S, int mins) {
  const int NS = 256 / S, total = ns * NS;
  const int64_t bstep = sizeof wt->codes[0];
  int32_t cbuf[2][AMX_GROUP][AMX_TOKENS][AMX_ROWS];
  float v[AMX_GROUP][AMX_TOKENS][AMX_ROWS]; /* the super-block's sum so far, per row tile */
  for (int g = 0; g <= total; g++) {
    if (g < total) {
      const int s = g / NS, j = g % NS;
      products(cbuf[g % 2], nr, g % 2, x + s * (int64_t)sizeof(hearth_block_q8_k) + 4 + S * j, xrow,
               wt->codes[0] + 16 * S * g, bstep);
    }
    if (g == 0) continue;
    const int gb = g - 1, s = gb / NS, j = gb % NS;
    for (int i = 0; i < nr; i++) {
      const __m512 sc = _mm512_loadu_ps(wt->scale[i][gb]);
      for (int t = 0; t < AMX_TOKENS; t++) {
        const __m512 c = _mm512_cvtepi32_ps(_mm512_loadu_si512(cbuf[gb % 2][i][t]));
        _mm512_storeu_ps(v[i][t], j == 0 ? _mm512_mul_ps(c, sc) : _mm512_fmadd_ps(c, sc, _mm512_loadu_ps(v[i][t])));
      }
      if (j < NS - 1) continue;
      const float(*mn)[AMX_ROWS] = wt->minv[i] + 8 * s;
      for (int t = 0; t < AMX_TOKENS; t++) {
        __m512 vt = _mm512_loadu_ps(v[i][t]);
        if (mins)
          for (int m = 0; m < 8; m++)
            vt = _mm512_fnmadd_ps(_mm512_loadu_ps(mn[m]), _mm512_set1_ps(tt->xs[8 * s + m][t]), vt);
        const __m512 prev = s == 0 ? _mm512_setzero_ps() : _mm512_loadu_ps(acc[i][t]);
        _mm512_storeu_ps(acc[i][t], _mm512_fmadd_ps(vt, _mm512_set1_ps(tt->dx[s][t]), prev));
      }
    }
  }
}

/* Whether this table's AMX path takes the product (else the VNNI table does). */
static int amx_applies(int32_t type, int64_t T, int64_t k) {
  if (T < AMX_MIN_T) return 0;
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
  /* 32-bit gather offsets: 15 rows of weights (and 15 activation rows) must stay below 2^31 bytes */
  const int64_t wrow = hearth_quant_row_bytes(type, k), xrow = (int64_t)hearth_quant_act_bytes(type, 1, k);
  return wrow > 0 && xrow > 0 && wrow < (INT64_C(1) << 31) / 16 && xrow < (INT64_C(1) << 31) / 16;
}

static void amx_matmul(float* y, int64_t ldy, const void* w, int32_t type, const void* x_act, int64_t T, int64_t n,
                       int64_t k) {
  if (!amx_applies(type, T, k)) {
    hearth_quant_ops_avx512vnni.matmul(y, ldy, w, type, x_act, T, n, k);
    return;
  }
  const int kq = hearth_dtype_is_k_quant(type);
  const int S = type == HEARTH_DTYPE_Q6_K ? 16 : 32;
  const int mins = type == HEARTH_DTYPE_Q4_1 || type == HEARTH_DTYPE_Q5_1 || type == HEARTH_DTYPE_Q4_K ||
                   type == HEARTH_DTYPE_Q5_K;
  const int64_t wrow = hearth_quant_row_bytes(type, k), xrow = (int64_t)hearth_quant_act_bytes(type, 1, k);
  const int64_t qk = kq ? 256 : 32, nblocks = k / qk, chunk_blocks = KC / qk;
  const int64_t xblock = kq ? (int64_t)sizeof(hearth_block_q8_k) : 34;
  const uint8_t* xa = (const uint8_t*)x_act;
  weight_tiles wt; /* 96 KiB */
  token_tile tt;
  float acc[AMX_GROUP][AMX_TOKENS][AMX_ROWS];
  configure_tiles(S);
  for (int64_t g0 = 0; g0 < n; g0 += AMX_GROUP * AMX_ROWS) {
    const int64_t grows = n - g0 < AMX_GROUP * AMX_ROWS ? n - g0 : AMX_GROUP * AMX_ROWS;
    const int nr = (int)((grows + AMX_ROWS - 1) / AMX_ROWS); /* row tiles in this group */
    for (int64_t c0 = 0; c0 < nblocks; c0 += chunk_blocks) {
      const int nb = (int)(nblocks - c0 < chunk_blocks ? nblocks - c0 : chunk_blocks);
      for (int i = 0; i < nr; i++) {
        const int64_t r0 = g0 + AMX_ROWS * i;
        const int rows = n - r0 < AMX_ROWS ? (int)(n - r0) : AMX_ROWS;
        const uint8_t* wr = (const uint8_t*)w + r0 * wrow;
        if (kq) repackk(wt.codes[i], wt.scale[i], wt.minv[i], wr, row_index(wrow, rows), c0, nb, type);
        else repack32(wt.codes[i], wt.scale[i], wt.minv[i], wr, row_index(wrow, rows), c0, nb, type);
      }
      for (int64_t t0 = 0; t0 < T; t0 += AMX_TOKENS) {
        /* the last tile ends at T; tokens before t0 are already done */
        const int64_t ts = t0 + AMX_TOKENS <= T ? t0 : T - AMX_TOKENS;
        const uint8_t* x = xa + ts * xrow + c0 * xblock;
        /* tile32 / tilek write acc[i] (i < nr) before reading it */
        if (kq) {
          prepk(&tt, x, xrow, nb, mins);
          tilek(acc, nr, &wt, &tt, x, xrow, nb, S, mins);
        } else {
          prep32(&tt, x, xrow, nb, mins);
          tile32(acc, nr, &wt, &tt, x, xrow, nb, mins);
        }
        for (int i = 0; i < nr; i++) {
          const int64_t r0 = g0 + AMX_ROWS * i;
          const int rows = n - r0 < AMX_ROWS ? (int)(n - r0) : AMX_ROWS;
          const __mmask16 rmask = (__mmask16)((1u << rows) - 1);
          for (int t = (int)(t0 - ts); t < AMX_TOKENS; t++) {
            float* yt = y + (ts + t) * ldy + r0;
            __m512 v = _mm512_loadu_ps(acc[i][t]);
            if (c0 > 0) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(rmask, yt));
            _mm512_mask_storeu_ps(yt, rmask, v);
          }
        }
      }
    }
  }
  _tile_release();
}

/* The activations are VNNI's (the same bytes as every table's). */
static void amx_quant_act(int32_t w_dtype, const float* x, int64_t T, int64_t k, void* out) {
  hearth_quant_ops_avx512vnni.quant_act(w_dtype, x, T, k, out);
}

const hearth_quant_ops hearth_quant_ops_amx = {.isa = "amx", .matmul = amx_matmul, .quant_act = amx_quant_act};
