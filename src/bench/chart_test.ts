import assert from "node:assert/strict";
import { inflateSync } from "node:zlib";
import {
  barChartPng,
  type BarChartSpec,
  Canvas,
  crc32,
  encodePng,
  GLYPH_ADVANCE,
  GLYPH_HEIGHT,
  PNG_SIGNATURE,
  seriesColor,
  textWidth,
  writeBarChart,
} from "./chart.ts";

interface Chunk {
  type: string;
  data: Uint8Array;
}

interface Decoded {
  width: number;
  height: number;
  bitDepth: number;
  colorType: number;
  channels: number;
  chunks: Chunk[];
  /** Inflated IDAT stream, still filtered (one filter byte per scanline). */
  filtered: Uint8Array;
  /** Unfiltered samples, row-major. */
  pixels: Uint8Array;
}

/**
 * Independent minimal PNG reader for the tests: checks the signature and every chunk CRC, then inflates
 * and unfilters the image. It handles all five filter types so the tests don't depend on which filter the
 * encoder happens to choose.
 */
function decodePng(png: Uint8Array): Decoded {
  assert.deepEqual([...png.subarray(0, 8)], [137, 80, 78, 71, 13, 10, 26, 10], "PNG signature");
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  const chunks: Chunk[] = [];
  let off = 8;
  while (off < png.length) {
    assert.ok(off + 12 <= png.length, "truncated chunk header");
    const len = view.getUint32(off);
    const type = new TextDecoder().decode(png.subarray(off + 4, off + 8));
    const data = png.subarray(off + 8, off + 8 + len);
    const crc = view.getUint32(off + 8 + len);
    assert.equal(crc, crc32(png.subarray(off + 4, off + 8 + len)), `CRC of ${type} chunk`);
    chunks.push({ type, data });
    off += 12 + len;
  }
  assert.equal(off, png.length, "no trailing bytes after IEND");
  assert.equal(chunks[0].type, "IHDR", "IHDR first");
  assert.equal(chunks.at(-1)!.type, "IEND", "IEND last");
  assert.equal(chunks.at(-1)!.data.length, 0, "IEND is empty");

  const ihdr = new DataView(chunks[0].data.buffer, chunks[0].data.byteOffset, 13);
  assert.equal(chunks[0].data.length, 13);
  const width = ihdr.getUint32(0), height = ihdr.getUint32(4);
  const bitDepth = chunks[0].data[8], colorType = chunks[0].data[9];
  assert.deepEqual([...chunks[0].data.subarray(10, 13)], [0, 0, 0], "compression/filter/interlace");
  const channels = colorType === 6 ? 4 : colorType === 2 ? 3 : NaN;
  assert.ok(
    bitDepth === 8 && !Number.isNaN(channels),
    `unexpected bit depth ${bitDepth} / colour type ${colorType}`,
  );

  const idatParts = chunks.filter((c) => c.type === "IDAT").map((c) => c.data);
  assert.ok(idatParts.length > 0, "has IDAT");
  const joined = new Uint8Array(idatParts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of idatParts) {
    joined.set(p, o);
    o += p.length;
  }
  const filtered = new Uint8Array(inflateSync(joined));
  const stride = width * channels;
  assert.equal(filtered.length, height * (1 + stride), "filtered scanline length");

  const pixels = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = filtered[y * (1 + stride)];
    const line = filtered.subarray(y * (1 + stride) + 1, (y + 1) * (1 + stride));
    for (let i = 0; i < stride; i++) {
      const a = i >= channels ? pixels[y * stride + i - channels] : 0;
      const b = y > 0 ? pixels[(y - 1) * stride + i] : 0;
      const c = i >= channels && y > 0 ? pixels[(y - 1) * stride + i - channels] : 0;
      let pred: number;
      switch (filter) {
        case 0:
          pred = 0;
          break;
        case 1:
          pred = a;
          break;
        case 2:
          pred = b;
          break;
        case 3:
          pred = (a + b) >> 1;
          break;
        case 4: {
          const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
          pred = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
          break;
        }
        default:
          throw new Error(`bad filter type ${filter} on row ${y}`);
      }
      pixels[y * stride + i] = (line[i] + pred) & 0xff;
    }
  }
  return { width, height, bitDepth, colorType, channels, chunks, filtered, pixels };
}

function pixelAt(img: Decoded, x: number, y: number): number[] {
  const i = (y * img.width + x) * img.channels;
  return [...img.pixels.subarray(i, i + 3)];
}

function countColor(img: Decoded, rgb: readonly number[]): number {
  let n = 0;
  for (let i = 0; i < img.pixels.length; i += img.channels) {
    if (img.pixels[i] === rgb[0] && img.pixels[i + 1] === rgb[1] && img.pixels[i + 2] === rgb[2]) n++;
  }
  return n;
}

const SAMPLE: BarChartSpec = {
  title: "engine throughput",
  yLabel: "tokens/s",
  groups: ["prefill 128", "prefill 512", "decode"],
  series: [
    { name: "hearth", values: [12000, 30000, 180] },
    { name: "baseline", values: [10000, 25000, 160] },
  ],
  annotations: [["1.20x", "1.20x", "1.13x"], [null, null, null]],
};

Deno.test("crc32 matches the standard check value", () => {
  assert.equal(crc32(new TextEncoder().encode("123456789")), 0xcbf43926);
  assert.equal(crc32(new Uint8Array(0)), 0);
  // Incremental use gives the same result as one pass.
  const bytes = new TextEncoder().encode("hello, png world");
  assert.equal(crc32(bytes.subarray(5), crc32(bytes.subarray(0, 5))), crc32(bytes));
});

Deno.test("encodePng round-trips RGBA and RGB pixels", () => {
  const w = 3, h = 2;
  const rgba = new Uint8Array(w * h * 4).map((_, i) => (i * 37) & 0xff);
  const a = decodePng(encodePng(w, h, rgba, 4));
  assert.deepEqual([a.width, a.height, a.bitDepth, a.colorType], [3, 2, 8, 6]);
  assert.deepEqual(a.pixels, rgba);

  const rgb = new Uint8Array(w * h * 3).map((_, i) => (i * 91) & 0xff);
  const b = decodePng(encodePng(w, h, rgb, 3));
  assert.deepEqual([b.width, b.height, b.colorType], [3, 2, 2]);
  assert.deepEqual(b.pixels, rgb);

  assert.throws(() => encodePng(w, h, rgb, 4), RangeError);
  assert.throws(() => encodePng(0, h, new Uint8Array(0), 3), RangeError);
});

Deno.test("the bitmap font has a distinct glyph for every printable ASCII character", () => {
  const render = (ch: string, scale = 1) => {
    const c = new Canvas(GLYPH_ADVANCE * scale, GLYPH_HEIGHT * scale);
    c.text(0, 0, ch, [0, 0, 0], scale);
    return [...c.pixels].join(",");
  };
  const fallback = render("\u0001");
  const seen = new Map<string, string>();
  for (let code = 33; code <= 126; code++) {
    const ch = String.fromCharCode(code);
    const bitmap = render(ch);
    assert.notEqual(bitmap, render(" "), `glyph for ${ch} is blank`);
    assert.notEqual(bitmap, fallback, `glyph for ${ch} is the fallback box`);
    assert.equal(seen.get(bitmap), undefined, `glyphs for ${seen.get(bitmap)} and ${ch} are identical`);
    seen.set(bitmap, ch);
  }
  assert.equal(textWidth("ab"), 2 * GLYPH_ADVANCE - 1);
  assert.equal(textWidth("a×b", 2), (3 * GLYPH_ADVANCE - 1) * 2); // code points, not UTF-16 units
  // Scaling draws each font pixel as a scale x scale block: 4x the ink at scale 2.
  const ink = (s: string) => s.split(",").filter((v) => v === "0").length;
  assert.equal(ink(render("A", 2)), 4 * ink(render("A")));
});

Deno.test("barChartPng produces a valid 900x500 PNG by default", () => {
  const png = barChartPng(SAMPLE);
  assert.deepEqual(png.subarray(0, 8), PNG_SIGNATURE);
  const img = decodePng(png);
  assert.deepEqual([img.width, img.height, img.bitDepth, img.channels], [900, 500, 8, 3]);
  assert.equal(img.filtered.length, 500 * (1 + 900 * 3));
  // Background is white and something (text, bars, axes) was drawn.
  assert.deepEqual(pixelAt(img, 0, 0), [255, 255, 255]);
  assert.ok(countColor(img, [255, 255, 255]) < 900 * 500 * 0.95);
});

Deno.test("barChartPng honours custom width and height", () => {
  const img = decodePng(barChartPng({ ...SAMPLE, width: 640, height: 360 }));
  assert.deepEqual([img.width, img.height], [640, 360]);
  assert.equal(img.filtered.length, 360 * (1 + 640 * 3));
  const big = decodePng(barChartPng({ ...SAMPLE, width: 1800, height: 1000 }));
  assert.deepEqual([big.width, big.height], [1800, 1000]);
});

Deno.test("bars are drawn in their series colour", () => {
  const img = decodePng(barChartPng(SAMPLE));
  const c0 = seriesColor(0), c1 = seriesColor(1);
  assert.notDeepEqual(c0, c1, "series colours differ");
  // Far more pixels than the legend swatch alone (8x8) could account for.
  assert.ok(countColor(img, c0) > 5000, `series 0 pixels: ${countColor(img, c0)}`);
  assert.ok(countColor(img, c1) > 5000, `series 1 pixels: ${countColor(img, c1)}`);

  // One series, one group: the bar is centred in the plot, so the centre column, a bit above the x axis,
  // must be in the series colour.
  const one = decodePng(
    barChartPng({ title: "t", yLabel: "y", groups: ["g"], series: [{ name: "s", values: [100] }] }),
  );
  let hits = 0;
  for (let y = 0; y < one.height; y++) {
    if (pixelAt(one, Math.round(one.width / 2), y).every((v, i) => v === c0[i])) hits++;
  }
  assert.ok(hits > 200, `centre column in series colour for ${hits} rows`);
});

Deno.test("missing, empty and odd values don't crash", () => {
  const specs: BarChartSpec[] = [
    { title: "empty values", yLabel: "", groups: ["a", "b"], series: [{ name: "s", values: [] }] },
    { title: "all null", yLabel: "ms", groups: ["a", "b"], series: [{ name: "s", values: [null, null] }] },
    { title: "zeros", yLabel: "ms", groups: ["a"], series: [{ name: "s", values: [0] }] },
    {
      title: "odd",
      yLabel: "ms",
      groups: ["a", "b", "c", "d"],
      series: [{ name: "s", values: [NaN, Infinity, -5, 1e-9] }, { name: "t", values: [1e9, null] }],
      annotations: [["x", null, "a very long annotation that cannot fit", "y"], []],
    },
    { title: "", yLabel: "", groups: [""], series: [{ name: "", values: [1] }] },
    {
      title: "many",
      yLabel: "tokens/s",
      groups: Array.from({ length: 20 }, (_, i) => `group with a long label ${i}`),
      series: Array.from({ length: 15 }, (_, i) => ({ name: `series ${i}`, values: [i, null, i * 1000] })),
    },
  ];
  for (const spec of specs) {
    const img = decodePng(barChartPng(spec));
    assert.deepEqual([img.width, img.height], [900, 500], spec.title);
  }
  // A series with no values has its colour only in the legend swatch, not in a bar.
  const img = decodePng(barChartPng({
    title: "t",
    yLabel: "y",
    groups: ["a", "b"],
    series: [{ name: "present", values: [5, 7] }, { name: "absent", values: [null, null] }],
  }));
  assert.ok(countColor(img, seriesColor(1)) <= 64, "absent series draws no bars");
  assert.ok(countColor(img, seriesColor(0)) > 1000, "present series draws bars");
});

Deno.test("invalid specs throw clear errors", () => {
  assert.throws(
    () => barChartPng({ title: "t", yLabel: "y", groups: ["a"], series: [] }),
    /series is empty/,
  );
  assert.throws(
    () => barChartPng({ title: "t", yLabel: "y", groups: [], series: [{ name: "s", values: [] }] }),
    /groups is empty/,
  );
  assert.throws(
    () => barChartPng({ title: "t", yLabel: "y", groups: ["a"], series: [{ name: "s", values: [1, 2] }] }),
    /has 2 values but there are only 1 groups/,
  );
  assert.throws(() => barChartPng({ ...SAMPLE, width: 0 }), RangeError);
  assert.throws(() => barChartPng({ ...SAMPLE, width: 40, height: 30 }), /too small/);
});

Deno.test("writeBarChart writes the PNG, creating parent directories", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/nested/dir/chart.png`;
    await writeBarChart(path, SAMPLE);
    const bytes = await Deno.readFile(path);
    assert.deepEqual(bytes, barChartPng(SAMPLE));
    decodePng(bytes);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
