/**
 * Dependency-free PNG bar charts for benchmark reports.
 *
 * Benchmarks run on machines where we cannot count on native image libraries (cairo, skia, a browser),
 * so everything here is plain TypeScript: a tiny PNG encoder (the only outside piece is `node:zlib`,
 * which every Deno ships), an RGB raster canvas with a built-in bitmap font, and a grouped bar chart
 * laid out on top of it.
 *
 * @module
 */

import { deflateSync } from "node:zlib";
import { dirname } from "node:path";

// ---------------------------------------------------------------------------------------------------------
// PNG encoding
// ---------------------------------------------------------------------------------------------------------

/** An 8-bit sRGB colour as `[red, green, blue]`. */
export type Rgb = readonly [number, number, number];

/** The 8 bytes every PNG file starts with (PNG spec §5.2). */
export const PNG_SIGNATURE: Uint8Array = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

// Table for the reflected CRC-32 (polynomial 0xEDB88320) that PNG uses for chunk checksums. Built once,
// byte-at-a-time: a chart is a few hundred kilobytes at most, so a slicing-by-N variant isn't worth it.
const CRC_TABLE: Uint32Array = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/**
 * CRC-32 as used by PNG chunks (and zlib's `crc32`).
 *
 * @param bytes data to checksum
 * @param crc a previous result, to continue a checksum across several buffers; 0 to start a new one
 * @returns the checksum as an unsigned 32-bit integer
 */
export function crc32(bytes: Uint8Array, crc = 0): number {
  let c = (crc ^ 0xffffffff) >>> 0;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** Builds one PNG chunk: big-endian length, 4-letter type, data, then the CRC of type + data. */
function pngChunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  // The CRC covers the type bytes too, not only the data (PNG spec §5.3).
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

/**
 * Encodes raw 8-bit pixels as a PNG file.
 *
 * @param width image width in pixels (≥ 1)
 * @param height image height in pixels (≥ 1)
 * @param pixels row-major samples, top row first, `channels` bytes per pixel
 * @param channels 3 for RGB (colour type 2) or 4 for RGBA (colour type 6)
 * @returns the complete PNG file
 */
export function encodePng(
  width: number,
  height: number,
  pixels: Uint8Array,
  channels: 3 | 4 = 4,
): Uint8Array {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`encodePng: bad size ${width}x${height}`);
  }
  if (channels !== 3 && channels !== 4) {
    throw new RangeError(`encodePng: channels must be 3 or 4, got ${channels}`);
  }
  const stride = width * channels;
  if (pixels.length !== stride * height) {
    throw new RangeError(
      `encodePng: expected ${stride * height} bytes for ${width}x${height}x${channels}, got ${pixels.length}`,
    );
  }

  const ihdr = new Uint8Array(13);
  const ihdrView = new DataView(ihdr.buffer);
  ihdrView.setUint32(0, width);
  ihdrView.setUint32(4, height);
  ihdr[8] = 8; // bit depth
  ihdr[9] = channels === 4 ? 6 : 2; // colour type: truecolour with / without alpha
  ihdr[10] = 0; // compression method: deflate (the only one defined)
  ihdr[11] = 0; // filter method: adaptive (the only one defined)
  ihdr[12] = 0; // no interlace

  // Each scanline is prefixed with its filter type. We always use type 0 (None): charts are large runs of
  // identical colour, which deflate already squeezes well, so smarter filtering buys little and costs code.
  const raw = new Uint8Array(height * (1 + stride));
  for (let y = 0; y < height; y++) {
    raw[y * (1 + stride)] = 0;
    raw.set(pixels.subarray(y * stride, (y + 1) * stride), y * (1 + stride) + 1);
  }
  // deflateSync emits a zlib stream (header + Adler-32), which is exactly what IDAT must contain.
  const idat = new Uint8Array(deflateSync(raw, { level: 9 }));

  const parts = [
    PNG_SIGNATURE,
    pngChunk("IHDR", ihdr),
    pngChunk("IDAT", idat),
    pngChunk("IEND", new Uint8Array(0)),
  ];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Bitmap font
// ---------------------------------------------------------------------------------------------------------

/** Width of a glyph in font pixels (before scaling). */
export const GLYPH_WIDTH = 5;
/** Height of a glyph cell in font pixels: 7 rows for capitals/digits plus 2 rows of descender. */
export const GLYPH_HEIGHT = 9;
/** Height of capitals and digits in font pixels; the baseline sits just under this row. */
export const CAP_HEIGHT = 7;
/** Horizontal advance per character in font pixels (glyph + 1 pixel of spacing). */
export const GLYPH_ADVANCE = 6;

// 5x9 glyphs for ASCII 32..126, in code order, 8 per line, separated by spaces (one string per line keeps
// the formatter from putting every glyph on its own line). Each glyph is one base-32 digit per row from the
// top; bit 4 of a digit is the leftmost pixel. Trailing empty rows are left out, which keeps the table small
// enough to read. Rows 0-6 hold capitals and digits; rows 7-8 are only used by descenders (g j p q y , _).
// Drawn by hand for this file.
const FONT_ASCII: readonly string[] = [
  "0 4444404 aaa aavavaa 4fke5u4 op248j3 cik8lid 448", // (space)!"#$%&'
  "2488842 8422248 04lel4 044v44 00000c48 000v 00000cc 01248g", // ()*+,-./
  "ehjlphe 4c4444e eh1248v v2421he 26aiv22 vgu11he 68guhhe v124888", // 01234567
  "ehhehhe ehhf12c 0cc0cc 0cc0c48 248g842 00v0v 8421248 eh12404", // 89:;<=>?
  "eh1dlle ehhvhhh uhhuhhu ehggghe sihhhis vgguggv vgguggg ehgnhhf", // @ABCDEFG
  "hhhvhhh e44444e 72222ic hikokih ggggggv hrllhhh hhpljhh ehhhhhe", // HIJKLMNO
  "uhhuggg ehhhlid uhhukih fgge11u v444444 hhhhhhe hhhhha4 hhhllla", // PQRSTUVW
  "hha4ahh hha4444 v1248gv e88888e 0g8421 e22222e 4ah 0000000v", // XYZ[\]^_
  "842 00e1fhf ggmphhu 00egghe 11djhhf 00ehvge 698s888 00fhhhf1e", // `abcdefg
  "ggmphhh 40c444e 2062222ic ggikoki c44444e 00qllll 00mphhh 00ehhhe", // hijklmno
  "00uhhhugg 00fhhhf11 00mpggg 00fge1u 88s8896 00hhhjd 00hhha4 00hhlla", // pqrstuvw
  "00ha4ah 00hhhhf1e 00v248v 2448442 4444444 8442448 008l2", // xyz{|}~
].join(" ").split(" ");
// A few non-ASCII characters that benchmark labels commonly use.
const FONT_EXTRA: Readonly<Record<string, string>> = {
  "×": "0ha4ah",
  "µ": "00hhhjtgg",
  "…": "000000l",
};
// Drawn for anything we have no glyph for, so a missing glyph is visible instead of silently dropped.
const FONT_FALLBACK = "vhhhhhv";

function decodeGlyph(code: string): Uint8Array {
  const rows = new Uint8Array(GLYPH_HEIGHT);
  for (let i = 0; i < code.length && i < GLYPH_HEIGHT; i++) rows[i] = parseInt(code[i], 32);
  return rows;
}

// Decoded once at load: row bitmasks per character.
const GLYPHS: ReadonlyMap<string, Uint8Array> = new Map([
  ...FONT_ASCII.map((code, i) => [String.fromCharCode(32 + i), decodeGlyph(code)] as const),
  ...Object.entries(FONT_EXTRA).map(([ch, code]) => [ch, decodeGlyph(code)] as const),
]);
const FALLBACK_GLYPH = decodeGlyph(FONT_FALLBACK);

function glyphFor(ch: string): Uint8Array {
  return GLYPHS.get(ch) ?? (ch === "\t" ? GLYPHS.get(" ")! : FALLBACK_GLYPH);
}

/**
 * Width in pixels of `text` drawn with {@link Canvas.text} at `scale` (no trailing spacing column).
 */
export function textWidth(text: string, scale = 1): number {
  const n = [...text].length; // count code points, like Canvas.text does, so "×" is one character
  return n === 0 ? 0 : (n * GLYPH_ADVANCE - 1) * scale;
}

// ---------------------------------------------------------------------------------------------------------
// Canvas
// ---------------------------------------------------------------------------------------------------------

/**
 * A minimal RGB raster. Coordinates are integer pixels with (0, 0) at the top left; everything is clipped
 * to the canvas, so callers can draw partly off-canvas without checks.
 */
export class Canvas {
  /** Pixel width. */
  readonly width: number;
  /** Pixel height. */
  readonly height: number;
  /** Row-major RGB samples, 3 bytes per pixel. */
  readonly pixels: Uint8Array;

  /**
   * @param width pixel width (positive integer)
   * @param height pixel height (positive integer)
   * @param background initial fill colour; white by default
   */
  constructor(width: number, height: number, background: Rgb = [255, 255, 255]) {
    if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
      throw new RangeError(`Canvas: bad size ${width}x${height}`);
    }
    this.width = width;
    this.height = height;
    this.pixels = new Uint8Array(width * height * 3);
    this.fillRect(0, 0, width, height, background);
  }

  /** Colour of pixel (x, y), or undefined outside the canvas. */
  getPixel(x: number, y: number): Rgb | undefined {
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return undefined;
    const i = (y * this.width + x) * 3;
    return [this.pixels[i], this.pixels[i + 1], this.pixels[i + 2]];
  }

  /** Fills the `w`×`h` rectangle whose top-left corner is (x, y). Fractional inputs are rounded. */
  fillRect(x: number, y: number, w: number, h: number, color: Rgb): void {
    const x0 = Math.max(0, Math.round(x)), y0 = Math.max(0, Math.round(y));
    const x1 = Math.min(this.width, Math.round(x + w)), y1 = Math.min(this.height, Math.round(y + h));
    if (x1 <= x0 || y1 <= y0) return;
    const [r, g, b] = color;
    for (let yy = y0; yy < y1; yy++) {
      let i = (yy * this.width + x0) * 3;
      for (let xx = x0; xx < x1; xx++) {
        this.pixels[i++] = r;
        this.pixels[i++] = g;
        this.pixels[i++] = b;
      }
    }
  }

  /** Outlines the `w`×`h` rectangle at (x, y) with a 1-pixel border inside it. */
  strokeRect(x: number, y: number, w: number, h: number, color: Rgb): void {
    this.fillRect(x, y, w, 1, color);
    this.fillRect(x, y + h - 1, w, 1, color);
    this.fillRect(x, y, 1, h, color);
    this.fillRect(x + w - 1, y, 1, h, color);
  }

  /** Draws a 1-pixel line from (x0, y0) to (x1, y1), both ends included (Bresenham). */
  line(x0: number, y0: number, x1: number, y1: number, color: Rgb): void {
    x0 = Math.round(x0), y0 = Math.round(y0), x1 = Math.round(x1), y1 = Math.round(y1);
    const dx = Math.abs(x1 - x0), dy = -Math.abs(y1 - y0);
    const sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
    let err = dx + dy;
    for (;;) {
      this.fillRect(x0, y0, 1, 1, color);
      if (x0 === x1 && y0 === y1) return;
      const e2 = 2 * err;
      if (e2 >= dy) {
        err += dy;
        x0 += sx;
      }
      if (e2 <= dx) {
        err += dx;
        y0 += sy;
      }
    }
  }

  /**
   * Draws `text` with the built-in 5x9 font, each font pixel drawn as a `scale`×`scale` block.
   *
   * Horizontal text occupies `textWidth(text, scale)` × `GLYPH_HEIGHT * scale` with (x, y) the top-left
   * corner. Vertical text is rotated 90° counter-clockwise (reads bottom to top, as y-axis titles do); it
   * occupies `GLYPH_HEIGHT * scale` × `textWidth(text, scale)`, again with (x, y) the top-left corner.
   */
  text(x: number, y: number, text: string, color: Rgb, scale = 1, vertical = false): void {
    x = Math.round(x), y = Math.round(y);
    const total = textWidth(text, scale);
    let penX = 0; // along the text direction, in canvas pixels
    for (const ch of text) {
      const rows = glyphFor(ch);
      for (let gy = 0; gy < GLYPH_HEIGHT; gy++) {
        const bits = rows[gy];
        if (bits === 0) continue;
        for (let gx = 0; gx < GLYPH_WIDTH; gx++) {
          if (!(bits & (1 << (GLYPH_WIDTH - 1 - gx)))) continue;
          const u = penX + gx * scale, v = gy * scale; // position in unrotated text space
          if (vertical) this.fillRect(x + v, y + total - u - scale, scale, scale, color);
          else this.fillRect(x + u, y + v, scale, scale, color);
        }
      }
      penX += GLYPH_ADVANCE * scale;
    }
  }

  /** Encodes the canvas as an RGB PNG file. */
  toPng(): Uint8Array {
    return encodePng(this.width, this.height, this.pixels, 3);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Bar chart
// ---------------------------------------------------------------------------------------------------------

/** Input for {@link barChartPng}. */
export interface BarChartSpec {
  /** Drawn centred at the top. */
  title: string;
  /** Unit of the y axis, drawn vertically at the left, e.g. "tokens/s". */
  yLabel: string;
  /** x-axis groups, e.g. `["prefill 128", "prefill 512", "decode"]`. */
  groups: string[];
  /**
   * One bar per series per group, in legend order. `values[g]` belongs to `groups[g]`; `null`, a missing
   * entry, or a non-finite number is drawn as "n/a". Negative values are clipped to 0 (the axis starts at 0).
   */
  series: { name: string; values: (number | null)[] }[];
  /** Image width in pixels; default 900. */
  width?: number;
  /** Image height in pixels; default 500. */
  height?: number;
  /** Optional text drawn above each bar, indexed `[series][group]`, e.g. "1.23x". `null` = none. */
  annotations?: (string | null)[][];
}

// Ten distinct, muted hues (the widely used Tableau 10 set). Beyond ten series we
// cycle through darker variants so bars still differ from their neighbours.
const PALETTE: readonly Rgb[] = [
  [78, 121, 167],
  [242, 142, 43],
  [225, 87, 89],
  [118, 183, 178],
  [89, 161, 79],
  [237, 201, 72],
  [176, 122, 161],
  [255, 157, 167],
  [156, 117, 95],
  [186, 176, 172],
];

/** The fill colour used for series number `index` (0-based) in {@link barChartPng}. */
export function seriesColor(index: number): Rgb {
  const base = PALETTE[index % PALETTE.length];
  const round = Math.floor(index / PALETTE.length) % 3;
  const k = [1, 0.7, 0.5][round];
  return [Math.round(base[0] * k), Math.round(base[1] * k), Math.round(base[2] * k)];
}

const INK: Rgb = [34, 34, 34];
const MUTED_INK: Rgb = [90, 90, 90];
const AXIS: Rgb = [60, 60, 60];
const GRID: Rgb = [228, 228, 228];

function darker(c: Rgb, k = 0.72): Rgb {
  return [Math.round(c[0] * k), Math.round(c[1] * k), Math.round(c[2] * k)];
}

/** y-axis ticks from 0 to a "nice" maximum (1, 2, 2.5 or 5 times a power of ten per step, ~5 steps). */
interface Ticks {
  step: number;
  max: number;
  values: number[];
}

function niceTicks(target: number): Ticks {
  // An all-zero or all-missing chart still gets a usable axis instead of dividing by zero.
  if (!(target > 0) || !Number.isFinite(target)) target = 1;
  // Try 1/2/2.5/5 x 10^k steps around target/5 and keep the one whose interval count is closest to 5,
  // breaking ties by the least wasted space. Rounding a single raw step up (the textbook approach) can
  // jump from 5 intervals straight to 3 when the target is just past a nice boundary.
  const e0 = Math.floor(Math.log10(target / 5));
  let best: { step: number; n: number; score: number } | undefined;
  for (let e = e0 - 1; e <= e0 + 1; e++) {
    for (const m of [1, 2, 2.5, 5]) {
      const step = m * 10 ** e;
      // The small epsilon stops floating-point noise (e.g. 0.30000000000000004 / 0.1) adding a tick.
      const n = Math.max(1, Math.ceil(target / step - 1e-9));
      const score = Math.abs(n - 5) + (n * step - target) / target;
      if (!best || score < best.score) best = { step, n, score };
    }
  }
  const { step, n } = best!;
  return { step, max: n * step, values: Array.from({ length: n + 1 }, (_, i) => i * step) };
}

/** Formats a tick value with as few decimals as its step needs, and k/M/G suffixes for big numbers. */
function formatTick(value: number, ticks: Ticks): string {
  if (value === 0) return "0";
  // "k" only from 10k on: "2500" reads fine as is, while "2.5k" ticks would need a decimal for no gain.
  const units: [number, string][] = [[1e9, "G"], [1e6, "M"], [1e4, "k"]];
  const [threshold, suffix] = units.find(([u]) => ticks.max >= u) ?? [1, ""];
  const unit = suffix === "k" ? 1e3 : threshold;
  const scaledStep = ticks.step / unit;
  let decimals = 0;
  while (
    decimals < 6 && Math.abs(scaledStep * 10 ** decimals - Math.round(scaledStep * 10 ** decimals)) > 1e-6
  ) {
    decimals++;
  }
  return (value / unit).toFixed(decimals) + suffix;
}

/** Shortens `text` with a trailing ".." until it fits in `maxWidth` pixels. */
function truncate(text: string, maxWidth: number, scale: number): string {
  if (textWidth(text, scale) <= maxWidth) return text;
  const chars = [...text];
  while (chars.length > 0 && textWidth(chars.join("") + "..", scale) > maxWidth) chars.pop();
  return chars.length > 0 ? chars.join("") + ".." : "";
}

/** Greedy word wrap into at most `maxLines` lines of at most `maxWidth` pixels each. */
function wrap(text: string, maxWidth: number, scale: number, maxLines: number): string[] {
  const lines: string[] = [];
  let current = "";
  for (const word of text.split(/\s+/).filter((w) => w.length > 0)) {
    const candidate = current ? `${current} ${word}` : word;
    if (textWidth(candidate, scale) <= maxWidth || !current) current = candidate;
    else {
      lines.push(current);
      current = word;
    }
  }
  if (current) lines.push(current);
  if (lines.length > maxLines) {
    const kept = lines.slice(0, maxLines);
    // Re-joining the next line guarantees an overflow, so truncate() ends the last kept line with ".."
    // and the reader can tell that text was dropped.
    kept[maxLines - 1] = truncate(kept[maxLines - 1] + " " + lines[maxLines], maxWidth, scale);
    return kept;
  }
  return lines.map((l) => truncate(l, maxWidth, scale));
}

/** Validates the spec and normalises values into a dense `[series][group]` grid of number | null. */
function normalise(spec: BarChartSpec): (number | null)[][] {
  if (!spec || !Array.isArray(spec.series) || spec.series.length === 0) {
    throw new Error("barChartPng: spec.series is empty; a bar chart needs at least one series");
  }
  if (!Array.isArray(spec.groups) || spec.groups.length === 0) {
    throw new Error("barChartPng: spec.groups is empty; a bar chart needs at least one group");
  }
  return spec.series.map((s, si) => {
    const values = s.values ?? [];
    if (values.length > spec.groups.length) {
      throw new Error(
        `barChartPng: series ${si} ("${s.name}") has ${values.length} values but there are only ` +
          `${spec.groups.length} groups`,
      );
    }
    return spec.groups.map((_, g) => {
      const v = values[g];
      return typeof v === "number" && Number.isFinite(v) ? Math.max(0, v) : null;
    });
  });
}

/**
 * Draws a grouped bar chart and returns it as an RGB PNG file.
 *
 * Layout, top to bottom: title, legend (wrapped into rows when needed), plot with a linear y axis from 0
 * to a nice maximum (about 5 ticks with grid lines), then group labels (wrapped, up to 3 lines). Each
 * series gets a distinct colour (see {@link seriesColor}); missing values are marked "n/a" on the axis.
 * Text scales up with the image size (integer factor, from 1 at the default 900×500).
 *
 * @throws {Error} when there are no series or no groups, when a series has more values than there are
 *   groups, or when the image is too small to fit the labels
 * @returns the PNG file bytes
 */
export function barChartPng(spec: BarChartSpec): Uint8Array {
  return renderBarChart(spec).toPng();
}

/**
 * Renders {@link barChartPng}'s chart and writes it to `path`, creating missing parent directories.
 */
export async function writeBarChart(path: string, spec: BarChartSpec): Promise<void> {
  const png = barChartPng(spec);
  await Deno.mkdir(dirname(path), { recursive: true });
  await Deno.writeFile(path, png);
}

function renderBarChart(spec: BarChartSpec): Canvas {
  const values = normalise(spec);
  const width = spec.width ?? 900;
  const height = spec.height ?? 500;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`barChartPng: width/height must be positive integers, got ${width}x${height}`);
  }
  const nGroups = spec.groups.length;
  const nSeries = spec.series.length;

  // Body text scale: 1 at the default size, growing with the image so big renders stay readable.
  const s = Math.max(1, Math.floor(Math.min(width / 800, height / 450)));
  const pad = 10 * s;
  const lineH = GLYPH_HEIGHT * s;
  const canvas = new Canvas(width, height);

  // --- Title: double size when it fits, otherwise body size, otherwise truncated.
  let titleScale = 2 * s;
  if (textWidth(spec.title, titleScale) > width - 2 * pad) titleScale = s;
  const title = truncate(spec.title, width - 2 * pad, titleScale);
  canvas.text((width - textWidth(title, titleScale)) / 2, pad, title, INK, titleScale);
  let top = pad + (spec.title ? GLYPH_HEIGHT * titleScale + pad : 0);

  // --- Legend: swatch + name per series, greedily packed into centred rows.
  const swatch = 8 * s, swatchGap = 4 * s, itemGap = 18 * s, rowH = lineH + 4 * s;
  const legendMax = width - 2 * pad;
  const items = spec.series.map((ser, i) => {
    const name = truncate(ser.name, legendMax - swatch - swatchGap, s);
    return { name, color: seriesColor(i), w: swatch + swatchGap + textWidth(name, s) };
  });
  const rows: (typeof items)[] = [[]];
  let rowW = 0;
  for (const item of items) {
    const row = rows[rows.length - 1];
    if (row.length > 0 && rowW + itemGap + item.w > legendMax) {
      rows.push([item]);
      rowW = item.w;
    } else {
      rowW += (row.length > 0 ? itemGap : 0) + item.w;
      row.push(item);
    }
  }
  for (const row of rows) {
    const w = row.reduce((n, it) => n + it.w, 0) + itemGap * (row.length - 1);
    let x = Math.round((width - w) / 2);
    for (const it of row) {
      // Swatch is aligned with the capitals (rows 0-6 of the font) so it sits level with the name.
      const sy = top + Math.round((CAP_HEIGHT * s - swatch) / 2);
      canvas.fillRect(x, sy, swatch, swatch, it.color);
      canvas.strokeRect(x, sy, swatch, swatch, darker(it.color));
      canvas.text(x + swatch + swatchGap, top, it.name, INK, s);
      x += it.w + itemGap;
    }
    top += rowH;
  }
  // Leave room above the plot so the top tick label (centred on the top grid line) isn't clipped.
  const plotTop = top + pad;

  // --- Plot geometry. Left margin depends on tick label widths, which depend on the y scale, which
  // depends on the annotation headroom, which depends on bar widths and the bottom margin (group label
  // wrapping) — a small cycle. Iterating a few times settles it; the layout is cheap to recompute.
  const yTitleW = spec.yLabel ? lineH + 6 * s : 0;
  const tickLen = 4 * s;
  const maxValue = values.flat().reduce<number>((m, v) => Math.max(m, v ?? 0), 0);
  const annotations = spec.series.map((_, si) =>
    spec.groups.map((_, g) => spec.annotations?.[si]?.[g] ?? null)
  );
  let ticks = niceTicks(maxValue);
  let plotLeft = 0, plotW = 0, plotH = 0, groupW = 0, slot = 0, groupLines: string[][] = [];
  for (let iter = 0; iter < 4; iter++) {
    const labelW = Math.max(...ticks.values.map((v) => textWidth(formatTick(v, ticks), s)));
    plotLeft = pad + yTitleW + labelW + tickLen + 4 * s;
    plotW = width - plotLeft - pad * 2;
    groupW = plotW / nGroups;
    slot = (groupW * 0.8) / nSeries;
    groupLines = spec.groups.map((g) => wrap(g, Math.max(groupW - 4 * s, 1), s, 3));
    const maxLines = Math.max(1, ...groupLines.map((l) => l.length));
    const plotBottom = height - pad - maxLines * (lineH + 2 * s) - 4 * s;
    plotH = plotBottom - plotTop;
    if (plotW < 20 || plotH < 20) {
      throw new RangeError(`barChartPng: ${width}x${height} is too small for this chart's labels`);
    }
    // Reserve headroom so every annotation fits above its bar, capped so labels can't squash the bars.
    const frac = maxValue > 0
      ? Math.min(0.5, annotationFraction(values, annotations, slot, s, plotH, maxValue))
      : 0;
    ticks = niceTicks(maxValue / (1 - frac));
  }
  const plotBottom = plotTop + plotH;
  const yOf = (v: number) => plotBottom - Math.round((v / ticks.max) * plotH);

  // --- Grid and y axis.
  for (const v of ticks.values) {
    const y = yOf(v);
    if (v > 0) canvas.fillRect(plotLeft + 1, y, plotW, 1, GRID);
    canvas.fillRect(plotLeft - tickLen, y, tickLen, 1, AXIS);
    const label = formatTick(v, ticks);
    canvas.text(
      plotLeft - tickLen - 4 * s - textWidth(label, s),
      y - Math.floor((CAP_HEIGHT * s) / 2),
      label,
      MUTED_INK,
      s,
    );
  }
  if (spec.yLabel) {
    const label = truncate(spec.yLabel, plotH, s);
    canvas.text(pad, plotTop + (plotH - textWidth(label, s)) / 2, label, INK, s, true);
  }

  // --- Bars, annotations, n/a markers.
  // A gap between neighbouring bars keeps same-ish colours apart; dropped when bars get very thin.
  const gap = slot >= 8 ? Math.max(1, Math.round(slot * 0.12)) : 0;
  const barW = Math.max(1, Math.floor(slot - gap));
  for (let g = 0; g < nGroups; g++) {
    const groupX = plotLeft + g * groupW + groupW * 0.1;
    for (let si = 0; si < nSeries; si++) {
      const x = Math.round(groupX + si * slot + gap / 2);
      const v = values[si][g];
      const color = seriesColor(si);
      if (v === null) {
        drawBarLabel(canvas, "n/a", x, barW, plotBottom - 3 * s, MUTED_INK, s, slot);
        continue;
      }
      // Tiny but non-zero values still get a 1-pixel bar, so "present but small" differs from "missing"
      // when values span orders of magnitude.
      const h = v > 0 ? Math.max(1, plotBottom - yOf(v)) : 0;
      if (h > 0) {
        canvas.fillRect(x, plotBottom - h, barW, h, color);
        if (barW >= 4 && h >= 3) canvas.strokeRect(x, plotBottom - h, barW, h, darker(color));
      }
      const note = annotations[si][g];
      if (note) drawBarLabel(canvas, note, x, barW, plotBottom - h - 3 * s, INK, s, slot);
    }
  }

  // Axes last so bars never paint over them.
  canvas.fillRect(plotLeft, plotTop - 2 * s, 1, plotH + 2 * s + 1, AXIS);
  canvas.fillRect(plotLeft, plotBottom, plotW + 1, 1, AXIS);

  // --- Group labels, centred under each group.
  for (let g = 0; g < nGroups; g++) {
    const cx = plotLeft + g * groupW + groupW / 2;
    groupLines[g].forEach((line, i) => {
      canvas.text(cx - textWidth(line, s) / 2, plotBottom + 6 * s + i * (lineH + 2 * s), line, INK, s);
    });
  }
  return canvas;
}

/**
 * How a bar label fits in its bar slot: horizontally when it's narrow enough, else rotated (labels wider
 * than the slot would collide with their neighbours), else not at all when bars are thinner than a line
 * of text — overlapping labels are unreadable, so dropping them is the lesser evil.
 */
function labelMode(text: string, slot: number, s: number): "horizontal" | "vertical" | "none" {
  if (textWidth(text, s) <= slot - 2 * s) return "horizontal";
  return CAP_HEIGHT * s + s <= slot ? "vertical" : "none";
}

function annotationHeight(text: string, slot: number, s: number): number {
  const mode = labelMode(text, slot, s);
  return mode === "vertical" ? textWidth(text, s) : mode === "horizontal" ? CAP_HEIGHT * s : 0;
}

/**
 * Fraction of the plot height to keep free above the scaled data so every annotation fits above its bar:
 * the largest over bars of (label height + margin) / plotH, measured relative to that bar's share of the max.
 */
function annotationFraction(
  values: (number | null)[][],
  annotations: (string | null)[][],
  slot: number,
  s: number,
  plotH: number,
  maxValue: number,
): number {
  // For a bar of value v under axis max M: top of bar is at plotH*v/M; it needs plotH*(1 - v/M) >= need.
  // With M = maxValue / (1 - f) that is 1 - (v/maxValue)(1 - f) >= need/plotH, i.e.
  // f >= 1 - (1 - need/plotH) * maxValue / v. Take the largest f over annotated bars.
  let frac = 0;
  for (let si = 0; si < values.length; si++) {
    for (let g = 0; g < values[si].length; g++) {
      const v = values[si][g], text = annotations[si][g];
      if (!text || v === null || v <= 0 || labelMode(text, slot, s) === "none") continue;
      const need = (annotationHeight(text, slot, s) + 4 * s) / plotH;
      frac = Math.max(frac, 1 - (1 - need) * (maxValue / v));
    }
  }
  return frac;
}

/** Draws a short label centred over a bar whose top edge is at `bottomY`, bottom-aligned to it. */
function drawBarLabel(
  canvas: Canvas,
  text: string,
  barX: number,
  barW: number,
  bottomY: number,
  color: Rgb,
  s: number,
  slot: number,
): void {
  const cx = barX + barW / 2;
  const mode = labelMode(text, slot, s);
  if (mode === "vertical") {
    const w = textWidth(text, s);
    // Centre on the capitals (font rows 0-6), not the full 9-row cell, so the label sits over the bar.
    canvas.text(cx - (CAP_HEIGHT * s) / 2, bottomY - w, text, color, s, true);
  } else if (mode === "horizontal") {
    canvas.text(cx - textWidth(text, s) / 2, bottomY - CAP_HEIGHT * s, text, color, s);
  }
}
