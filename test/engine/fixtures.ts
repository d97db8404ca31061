/**
 * Test helpers for the committed fixture models and their golden outputs
 * (made by test/oracle/make_fixtures.py with transformers).
 *
 * @module
 */
import { describeModelPath } from "../../src/model/describe.ts";
import { type KvCacheDType, NativeContext, NativeModel } from "../../src/native/hearth.ts";
import type { WeightDType } from "../../src/model/description.ts";

export const ROOT = new URL("../../", import.meta.url).pathname;

/** A small deterministic generator (xorshift32) of values in [0, 1), for tests' random inputs. */
export function xorshift(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 32;
  };
}
export const FIXTURES = `${ROOT}test/fixtures`;

/** A fixture's golden file (test/fixtures/golden/<name>.json), the fields tests read. */
export interface Golden {
  model: string;
  model_dir: string;
  vocab_size: number;
  sequences: number[][];
  logits: LogitsFile;
  logits_native?: LogitsFile;
  native_vs_f32_max_abs_diff?: number;
  greedy: { sequence_index: number; prompt_len: number; new_tokens: number[]; top1_margins: number[] }[];
}

interface LogitsFile {
  file: string;
  entries: { sequence_index: number; offset: number; shape: [number, number] }[];
}

/** Every fixture model with a golden file. */
export function goldenNames(): string[] {
  return [...Deno.readDirSync(`${FIXTURES}/golden`)]
    .filter((e) => e.name.endsWith(".json"))
    .map((e) => e.name.slice(0, -5))
    .sort();
}

export function readGolden(name: string): Golden {
  return JSON.parse(Deno.readTextFileSync(`${FIXTURES}/golden/${name}.json`));
}

/** Golden logits of one sequence: (len, vocab) row-major. */
export function goldenLogits(g: Golden, seqIndex: number, native = false): Float32Array {
  const file = native ? g.logits_native! : g.logits;
  const entry = file.entries.find((e) => e.sequence_index === seqIndex)!;
  const bytes = Deno.readFileSync(`${FIXTURES}/golden/${file.file}`);
  const n = entry.shape[0] * entry.shape[1];
  return new Float32Array(bytes.buffer.slice(entry.offset, entry.offset + n * 4));
}

/** A native model + context on a fixture (a model directory or a GGUF file), sized for tests. */
export async function openFixture(
  dir: string,
  opts: {
    dtype?: WeightDType | "auto";
    threads?: number;
    maxBatchTokens?: number;
    maxBatchSeqs?: number;
    kvDtype?: KvCacheDType;
    inMemory?: boolean;
  } = {},
): Promise<{ model: NativeModel; ctx: NativeContext; close: () => void }> {
  const path = dir.startsWith("/") ? dir : `${ROOT}${dir}`;
  const { description } = await describeModelPath(path, { tokenizer: false }); // a directory or a GGUF
  const model = await NativeModel.load(description, opts.dtype ?? "auto", { kind: "cpu" }, {
    inMemory: opts.inMemory,
  });
  const maxSeq = description.config.maxSeqLen;
  const ctx = await NativeContext.create(model, {
    threads: opts.threads ?? 2,
    kvBlockSize: 16,
    kvNumBlocks: 64,
    maxBatchTokens: opts.maxBatchTokens ?? 128,
    maxBatchSeqs: opts.maxBatchSeqs ?? 8,
    maxBlocksPerSeq: Math.ceil(maxSeq / 16),
    kvDtype: opts.kvDtype,
  });
  return {
    model,
    ctx,
    close: () => {
      ctx.free();
      model.free();
    },
  };
}

/** Largest |a[i] - b[i]|. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
