/**
 * A copy of a GGUF file with its quantized tensors dequantized to F32 — the same weights, so two
 * engines computing with them differ only by float rounding, not by how each quantizes activations
 * for integer dot products. Dequantized here in TypeScript from the ggml block layouts (independent of
 * hearth's C kernels). Written once into the cache. Not a test itself.
 *
 * @module
 */
import {
  GGUF_VALUE_TYPE_NAMES,
  type GgufHeader,
  GgufValueType,
  readGgufHeader,
  readGgufTensorBytes,
} from "../../src/model/gguf.ts";
import {
  type GgufScalarTypeName,
  type GgufTensorToWrite,
  type GgufTypedValue,
  gv,
  writeGguf,
} from "../../src/model/gguf_write.ts";

const HALF_AS_FLOAT = (() => {
  // All 65536 half values, decoded once.
  const table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1, exp = (h >>> 10) & 0x1f, mant = h & 0x3ff;
    table[h] = exp === 0
      ? sign * mant * 2 ** -24
      : exp === 31
      ? (mant ? NaN : sign * Infinity)
      : sign * (1 + mant / 1024) * 2 ** (exp - 15);
  }
  return table;
})();

/** ggml block layouts this copy understands: bytes per block of 32 and the decoder. */
const DECODERS: Record<
  string,
  { blockBytes: number; decode: (b: DataView, o: number, out: Float32Array, at: number) => void }
> = {
  // d (f16), 32 × int8
  Q8_0: {
    blockBytes: 34,
    decode: (b, o, out, at) => {
      const d = HALF_AS_FLOAT[b.getUint16(o, true)];
      for (let i = 0; i < 32; i++) out[at + i] = d * b.getInt8(o + 2 + i);
    },
  },
  // d (f16), m (f16), 16 bytes: element i in the low nibble of byte i, element 16 + i in its high nibble
  Q4_1: {
    blockBytes: 20,
    decode: (b, o, out, at) => {
      const d = HALF_AS_FLOAT[b.getUint16(o, true)], m = HALF_AS_FLOAT[b.getUint16(o + 2, true)];
      for (let i = 0; i < 16; i++) {
        const q = b.getUint8(o + 4 + i);
        out[at + i] = d * (q & 0xf) + m;
        out[at + 16 + i] = d * (q >>> 4) + m;
      }
    },
  },
  // d (f16), 16 bytes of nibbles as Q4_1, values q - 8
  Q4_0: {
    blockBytes: 18,
    decode: (b, o, out, at) => {
      const d = HALF_AS_FLOAT[b.getUint16(o, true)];
      for (let i = 0; i < 16; i++) {
        const q = b.getUint8(o + 2 + i);
        out[at + i] = d * ((q & 0xf) - 8);
        out[at + 16 + i] = d * ((q >>> 4) - 8);
      }
    },
  },
};

function typedValue(header: GgufHeader, key: string): GgufTypedValue {
  const kind = header.metadataTypes.get(key)!;
  const value = header.metadata.get(key)!;
  if (kind.type === GgufValueType.ARRAY) {
    return gv.array(
      GGUF_VALUE_TYPE_NAMES[kind.elementType!] as GgufScalarTypeName,
      value as ArrayLike<number | bigint | boolean | string>,
    );
  }
  return { type: GGUF_VALUE_TYPE_NAMES[kind.type] as GgufScalarTypeName, value: value as string };
}

async function* dequantized(path: string, header: GgufHeader, t: GgufHeader["tensors"][number]) {
  using file = await Deno.open(path);
  await file.seek(t.offset, Deno.SeekMode.Start);
  const dec = DECODERS[t.typeName];
  const rowBlocks = t.dims[0] / 32;
  const rows = t.nElements / t.dims[0];
  const rowsPerChunk = Math.max(1, Math.floor((1 << 20) / (rowBlocks * dec.blockBytes)));
  for (let r = 0; r < rows; r += rowsPerChunk) {
    const n = Math.min(rowsPerChunk, rows - r);
    const bytes = new Uint8Array(n * rowBlocks * dec.blockBytes);
    for (let got = 0; got < bytes.length;) {
      const k = await file.read(bytes.subarray(got));
      if (k === null) throw new Error(`${header.path}: ${t.name} ends early`);
      got += k;
    }
    const view = new DataView(bytes.buffer);
    const out = new Float32Array(n * t.dims[0]);
    for (let b = 0; b < n * rowBlocks; b++) dec.decode(view, b * dec.blockBytes, out, b * 32);
    yield out;
  }
}

/**
 * Writes (once) `dest`: `src` with every Q8_0/Q4_0/Q4_1 tensor dequantized to F32 (others copied),
 * the metadata kept but general.file_type set to all-F32. Returns `dest`.
 */
export async function ensureDequantizedCopy(src: string, dest: string): Promise<string> {
  const marker = `${dest}.complete`;
  try {
    await Deno.stat(marker);
    return dest;
  } catch { /* write it */ }
  const header = await readGgufHeader(src);
  const metadata: [string, GgufTypedValue][] = [...header.metadata.keys()].map((k) =>
    k === "general.file_type" ? [k, gv.u32(0)] : [k, typedValue(header, k)]
  );
  const tensors: GgufTensorToWrite[] = [];
  for (const t of header.tensors) {
    if (DECODERS[t.typeName]) {
      tensors.push({ name: t.name, dims: t.dims, type: "F32", data: dequantized(src, header, t) });
    } else {
      tensors.push({
        name: t.name,
        dims: t.dims,
        type: t.typeName,
        data: await readGgufTensorBytes(header, t),
      });
    }
  }
  await Deno.mkdir(dest.slice(0, dest.lastIndexOf("/")), { recursive: true });
  await writeGguf(dest, { metadata, tensors });
  await Deno.writeTextFile(marker, new Date().toISOString());
  return dest;
}
