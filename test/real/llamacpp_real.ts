/**
 * The real-model tier against llama.cpp (node-llama-cpp's prebuilt CPU build, run by
 * bench/llamacpp/peer.mjs, installed by scripts/fetch_llamacpp.sh) on SmolLM2-135M-Instruct Q4_1:
 *
 * - tokenization: hearth's tokenizer built from the GGUF's own tokenizer.ggml.* metadata gives the same
 *   ids as llama.cpp's tokenizer on every text of the multilingual corpus;
 * - teacher-forced top-1 agreement: the same token sequences (813 positions of varied text) fed to both,
 *   the argmax of the next-token logits compared at every position:
 *   - on the file's weights dequantized to F32 (the same weights, float arithmetic in both): ≥ 99 %;
 *   - on the Q4_1 file itself, where both engines quantize activations to 8 bits for integer dot
 *     products, each its own way: this rounding alone moves the top-1 of a few percent of positions of
 *     this small model (hearth's own quantized and float paths differ as much), so the agreement is
 *     printed next to that floor — llama.cpp's agreement with float arithmetic on its own weights — and
 *     must come within 2 points of it, its median logit gap within 1.25x the floor's; with the f16 KV
 *     cache the engine uses for quantized weights and with a float32 one. (The 99 % cannot be
 *     reached this way: float arithmetic itself agrees with llama.cpp's integer kernels on ~96.7 %.)
 */
import { assert } from "../assert.ts";
import { describeModelPath } from "../../src/model/describe.ts";
import type { Tokenizer } from "../../src/model/tokenizer.ts";
import {
  type KvCacheDType,
  LogitsMode,
  NativeContext,
  NativeModel,
  StepBatch,
} from "../../src/native/hearth.ts";
import { physicalCoreCount } from "../../src/cli/cpu_info.ts";
import { LlamaCppPeer } from "../../bench/llamacpp/peer.ts";
import { ensureDequantizedCopy } from "./gguf_dequant.ts";
import type { WeightDType } from "../../src/model/description.ts";
import { smollm2Path } from "./smollm2_model.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

const show = (s: string) => JSON.stringify(s.length > 60 ? s.slice(0, 57) + "..." : s);

Deno.test({
  name: "SmolLM2 GGUF tokenizer: hearth's ids equal llama.cpp's on the multilingual corpus",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const path = await smollm2Path();
    const corpus: string[] = JSON.parse(
      await Deno.readTextFile(`${ROOT}test/fixtures/tokenizer/corpus.json`),
    );
    const { tokenizer } = await describeModelPath(path);
    assert(tokenizer !== null, "the GGUF describes its tokenizer");
    const peer = await LlamaCppPeer.start();
    try {
      await peer.load(path, { threads: 1, contextSize: 512 });
      // Like with like: llama.cpp parses special-token text (`<|im_start|>`) as special tokens, as
      // hearth's encode does (transformers' behaviour), and node-llama-cpp's tokenize never adds BOS;
      // it is put first here exactly when llama.cpp would (the vocabulary's add_bos flag: false for
      // SmolLM2), as hearth's encode(text) does when the GGUF's add_bos_token says so.
      const llama = await peer.tokenize(corpus, true);
      const mismatches: string[] = [];
      for (let i = 0; i < corpus.length; i++) {
        const want = (llama.prependBos && llama.bos !== null ? [llama.bos] : []).concat(llama.ids[i]);
        const got = tokenizer.encode(corpus[i]);
        if (JSON.stringify(got) !== JSON.stringify(want)) {
          mismatches.push(
            `${show(corpus[i])}: hearth ${JSON.stringify(got)} llama.cpp ${JSON.stringify(want)}`,
          );
        }
      }
      const total = llama.ids.reduce((a, ids) => a + ids.length, 0);
      console.log(
        `tokenizer: ${
          corpus.length - mismatches.length
        }/${corpus.length} texts (${total} llama.cpp tokens) ` +
          `identical; add BOS: hearth ${tokenizer.addsBos}, llama.cpp ${llama.prependBos}`,
      );
      assert(tokenizer.addsBos === (llama.prependBos ?? false), "both add BOS alike");
      assert(mismatches.length === 0, `token ids differ:\n${mismatches.join("\n")}`);
    } finally {
      await peer.close();
    }
  },
});

/** Varied text: prose, a dialogue in the chat template, code, data, numbers, several languages. */
export const DOCUMENTS: string[] = [
  `The history of the printing press begins in the fifteenth century, when Johannes Gutenberg combined ` +
  `movable metal type, oil-based ink and a wooden screw press into a system that could produce books ` +
  `far faster than scribes. Within fifty years, presses were running in more than two hundred cities ` +
  `across Europe, and millions of volumes had been printed. The spread of cheap books changed how ` +
  `people learned, argued and worshipped: scientific results could be copied exactly, maps and tables ` +
  `no longer drifted with each hand copy, and pamphlets carried new ideas to readers who had never ` +
  `owned a manuscript. Historians still debate how much of the Reformation, the scientific revolution ` +
  `and the rise of modern states can be traced to this one machine.`,

  `<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHow do plants make ` +
  `their food?<|im_end|>\n<|im_start|>assistant\nPlants make their food through photosynthesis. In ` +
  `their leaves, chlorophyll absorbs sunlight, and the plant uses that energy to turn carbon dioxide ` +
  `from the air and water from the soil into glucose. Oxygen is released as a by-product, which is why ` +
  `forests and oceans full of algae are so important for the air we breathe.<|im_end|>\n` +
  `<|im_start|>user\nWhy are leaves green?<|im_end|>\n<|im_start|>assistant\nLeaves look green because ` +
  `chlorophyll absorbs red and blue light strongly but reflects most of the green light.<|im_end|>\n`,

  `def merge_sorted(a, b):\n    """Merge two sorted lists into one sorted list."""\n    out = []\n` +
  `    i = j = 0\n    while i < len(a) and j < len(b):\n        if a[i] <= b[j]:\n            ` +
  `out.append(a[i])\n            i += 1\n        else:\n            out.append(b[j])\n            j += 1\n` +
  `    out.extend(a[i:])\n    out.extend(b[j:])\n    return out\n\n\nif __name__ == "__main__":\n` +
  `    print(merge_sorted([1, 4, 9], [2, 3, 10, 12]))\n`,

  `{"id": 1042, "name": "Ada Lovelace", "born": "1815-12-10", "fields": ["mathematics", "computing"], ` +
  `"notes": "Wrote the first published algorithm intended for Babbage's Analytical Engine."}\n` +
  `Quarterly revenue rose 12.5% to $4.3 billion, while operating costs fell from 2.1 to 1.9 billion; ` +
  `the board approved a dividend of 0.45 per share, payable on 15 March 2024.`,

  `La Tour Eiffel a été construite pour l'Exposition universelle de 1889 à Paris. ` +
  `Die Donau fließt durch zehn Länder, bevor sie ins Schwarze Meer mündet. ` +
  `El río Amazonas transporta más agua que cualquier otro río del mundo. ` +
  `Москва — столица России и крупнейший город страны. 東京は日本の首都です。 ` +
  `Water boils at 100 degrees Celsius at sea level, but at lower temperatures on high mountains, ` +
  `because the air pressure there is lower.`,

  `Once upon a time, in a small village at the edge of a great forest, there lived an old clockmaker ` +
  `named Elias. Every morning he opened his shop at seven, wound the forty clocks on his walls, and ` +
  `waited for customers who rarely came. One winter evening a girl knocked on his door carrying a ` +
  `broken pocket watch that had belonged to her grandmother. "Can you fix it?" she asked. Elias turned ` +
  `the watch over in his hands, opened its back, and smiled for the first time in years.`,
];

/** Per position: hearth's top-1, and its logits at llama.cpp's top-1 and top-2 ids. */
interface HearthPick {
  top: number;
  topLogit: number;
  atTheirs: [number, number];
}

/**
 * hearth on `path` (weights as `dtype` says), teacher-forced: every sequence from an empty KV cache,
 * fed in chunks of 128 tokens with the logits of every position kept.
 */
async function hearthPicks(
  path: string,
  dtype: WeightDType | "auto",
  sequences: number[][],
  theirs: [number, number][][][],
  kvDtype: KvCacheDType = "float32",
): Promise<HearthPick[][]> {
  const { description } = await describeModelPath(path, { tokenizer: false });
  const vocab = description.config.vocabSize;
  const blockSize = 16, chunkTokens = 128;
  const blocksPerSeq = Math.ceil(Math.max(...sequences.map((s) => s.length)) / blockSize);
  const model = await NativeModel.load(description, dtype);
  const ctx = await NativeContext.create(model, {
    threads: physicalCoreCount(),
    kvBlockSize: blockSize,
    kvNumBlocks: blocksPerSeq,
    maxBatchTokens: chunkTokens,
    maxBatchSeqs: 1,
    maxBlocksPerSeq: blocksPerSeq,
    kvDtype,
  });
  try {
    const batch = new StepBatch(ctx.options, vocab);
    const blocks = Array.from({ length: blocksPerSeq }, (_, i) => i);
    const out: HearthPick[][] = sequences.map(() => []);
    for (let s = 0; s < sequences.length; s++) {
      const ids = sequences[s];
      for (let start = 0; start < ids.length; start += chunkTokens) {
        const chunk = ids.slice(start, start + chunkTokens);
        batch.clear(LogitsMode.all);
        batch.addSequence(chunk, start, blocks.slice(0, Math.ceil((start + chunk.length) / blockSize)), null);
        await ctx.step(batch);
        const logits = batch.outLogits!;
        for (let r = 0; r < chunk.length; r++) {
          const row = logits.subarray(r * vocab, (r + 1) * vocab);
          let top = 0;
          for (let v = 1; v < vocab; v++) if (row[v] > row[top]) top = v;
          const [[a], [b]] = theirs[s][start + r];
          out[s].push({ top, topLogit: row[top], atTheirs: [row[a], row[b]] });
        }
      }
    }
    return out;
  } finally {
    ctx.free();
    model.free();
  }
}

/** llama.cpp's two largest logits at every position of every sequence, teacher-forced. */
async function llamaTop2(path: string, sequences: number[][]): Promise<[number, number][][][]> {
  const peer = await LlamaCppPeer.start();
  try {
    await peer.load(path, { threads: physicalCoreCount(), contextSize: 2048 });
    const out: [number, number][][][] = [];
    for (const ids of sequences) out.push(await peer.top(ids, 2));
    return out;
  } finally {
    await peer.close();
  }
}

interface Agreement {
  agree: number;
  positions: number;
  rate: number;
  /** |hearth − llama.cpp| of the logit of llama.cpp's top-1 token: median and max. */
  logitDiff: { median: number; max: number };
  misses: string[];
}

function agreement(
  tokenizer: Tokenizer,
  sequences: number[][],
  theirs: [number, number][][][],
  mine: HearthPick[][],
): Agreement {
  let agree = 0, positions = 0;
  const diffs: number[] = [];
  const misses: string[] = [];
  for (let s = 0; s < sequences.length; s++) {
    const ids = sequences[s];
    for (let p = 0; p < ids.length; p++) {
      positions++;
      const [[top, topLogit], [second, secondLogit]] = theirs[s][p];
      const m = mine[s][p];
      diffs.push(Math.abs(m.atTheirs[0] - topLogit));
      if (m.top === top) {
        agree++;
        continue;
      }
      misses.push(
        `after ${show(tokenizer.decode(ids.slice(Math.max(0, p - 5), p + 1)))}: hearth ${
          show(tokenizer.decode([m.top]))
        }, llama.cpp ${show(tokenizer.decode([top]))} by ${(topLogit - secondLogit).toFixed(3)} over ` +
          `${
            second === m.top ? "hearth's pick" : show(tokenizer.decode([second]))
          }; hearth has llama.cpp's ` +
          `pick ${(m.topLogit - m.atTheirs[0]).toFixed(3)} below its own`,
      );
    }
  }
  diffs.sort((a, b) => a - b);
  return {
    agree,
    positions,
    rate: agree / positions,
    logitDiff: { median: diffs[diffs.length >> 1], max: diffs[diffs.length - 1] },
    misses,
  };
}

const pct = (a: Agreement) =>
  `${a.agree}/${a.positions} = ${(100 * a.rate).toFixed(2)} % (|Δ logit| of llama.cpp's top-1: median ` +
  `${a.logitDiff.median.toFixed(3)}, max ${a.logitDiff.max.toFixed(3)})`;

async function setup() {
  const path = await smollm2Path();
  const { tokenizer } = await describeModelPath(path);
  const sequences = DOCUMENTS.map((d) => tokenizer!.encode(d));
  const positions = sequences.reduce((a, s) => a + s.length, 0);
  assert(positions >= 512, `only ${positions} positions`);
  return { path, tokenizer: tokenizer!, sequences };
}

Deno.test({
  name: "SmolLM2 weights in F32: teacher-forced top-1 agreement with llama.cpp ≥ 99 % over ≥ 512 positions",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const { path, tokenizer, sequences } = await setup();
    const f32 = await ensureDequantizedCopy(path, path.replace(/\.gguf$/, "") + ".dequant-f32.gguf");
    const theirs = await llamaTop2(f32, sequences);
    const a = agreement(tokenizer, sequences, theirs, await hearthPicks(f32, "auto", sequences, theirs));
    console.log(`teacher-forced top-1 agreement, Q4_1 weights dequantized to F32: ${pct(a)}`);
    for (const m of a.misses) console.log(`  differs ${m}`);
    assert(a.rate >= 0.99, `agreement ${(100 * a.rate).toFixed(2)} % < 99 %`);
  },
});

Deno.test({
  name: "SmolLM2 Q4_1 GGUF: teacher-forced top-1 agreement with llama.cpp, against the 8-bit rounding floor",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const { path, tokenizer, sequences } = await setup();
    const theirs = await llamaTop2(path, sequences);
    // With the KV cache the engine gives quantized weights (f16, as llama.cpp's default), and in f32.
    const mine = await hearthPicks(path, "auto", sequences, theirs, "float16");
    const mine32 = await hearthPicks(path, "auto", sequences, theirs, "float32");
    // The floor: hearth with the same weights dequantized at load (float kernels, agreeing with
    // llama.cpp's float arithmetic ≥ 99 % above) against llama.cpp's integer kernels.
    const floats = await hearthPicks(path, "f32", sequences, theirs);
    const quant = agreement(tokenizer, sequences, theirs, mine);
    const quant32 = agreement(tokenizer, sequences, theirs, mine32);
    const float = agreement(tokenizer, sequences, theirs, floats);
    console.log(`teacher-forced top-1 agreement with llama.cpp on the Q4_1 file: ${pct(quant)}`);
    console.log(`  the same with a float32 KV cache: ${pct(quant32)}`);
    console.log(`  floor, float arithmetic on the same weights against llama.cpp: ${pct(float)}`);
    const own = mine.flat().filter((m, i) => m.top === floats.flat()[i].top).length;
    console.log(
      `  hearth's own integer vs float paths: ${own}/${quant.positions} = ` +
        `${(100 * own / quant.positions).toFixed(2)} % alike`,
    );
    for (const m of quant.misses.slice(0, 8)) console.log(`  differs ${m}`);
    if (quant.misses.length > 8) console.log(`  ... and ${quant.misses.length - 8} more`);
    // Each engine's 8-bit rounding moves its logits by about as much as they differ from float
    // arithmetic, and any other rounding upstream (an f16 cache) redraws which positions flip: the
    // count of flipped top-1s of two such draws varies by about a point over 813 positions, the median
    // logit gap far less. So: the gap at most 1.25x the floor's, and the agreement within 2 points of it.
    for (const [label, a] of [["f16 cache", quant], ["float32 cache", quant32]] as const) {
      assert(
        a.logitDiff.median <= 1.25 * float.logitDiff.median,
        `${label}: median |Δ logit| ${a.logitDiff.median.toFixed(3)} > 1.25 x the floor's ` +
          `${float.logitDiff.median.toFixed(3)}`,
      );
      assert(
        a.rate >= Math.min(0.99, float.rate - 0.02),
        `${label}: agreement ${(100 * a.rate).toFixed(2)} % is more than 2 points below the floor ` +
          `${(100 * float.rate).toFixed(2)} %`,
      );
    }
  },
});
