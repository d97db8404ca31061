/**
 * Builds the tokenizer of a GGUF file from its `tokenizer.ggml.*` metadata: a tokenizer.json-shaped
 * object that {@link Tokenizer} (`@huggingface/tokenizers`) runs, plus the tokenizer_config.json
 * fields (BOS/EOS/PAD/UNK, add_bos/add_eos, chat templates).
 *
 * Two vocabulary kinds are supported:
 *
 * - `gpt2`: byte-level BPE. `tokens` are already in the byte-to-unicode alphabet, `merges` are
 *   "left right" strings in rank order. The split regex is not stored; `tokenizer.ggml.pre` names it,
 *   and {@link GGUF_PRE_TOKENIZERS} gives the Hugging Face pre-tokenizer each name stands for.
 * - `llama`: SentencePiece BPE. Pieces have `scores`; the merge order is the score order of the
 *   merged piece (as SentencePiece and llama.cpp merge the adjacent pair whose concatenation scores
 *   highest), so merges are derived from the scores the way Hugging Face's Llama conversion does.
 *   Text gets "▁" for spaces and, with `add_space_prefix` (default true), one "▁" in front of every
 *   run of text between special tokens; characters outside the vocabulary fall back to `<0xNN>`
 *   byte pieces.
 *
 * Token types: 3 (control) and 2 (unknown) become special added tokens, 4 (user-defined) non-special
 * added tokens; both are matched in text before the model runs, as in transformers and llama.cpp.
 *
 * @module
 */

import type { GgufHeader } from "./gguf.ts";
import { GgufFields } from "./gguf_fields.ts";
import { type ChatTemplateSource, Tokenizer, type TokenizerConfig } from "./tokenizer.ts";

/** `tokenizer.ggml.token_type` values. */
export const GgufTokenType = {
  UNDEFINED: 0,
  NORMAL: 1,
  UNKNOWN: 2,
  CONTROL: 3,
  USER_DEFINED: 4,
  UNUSED: 5,
  BYTE: 6,
} as const;

/** How one `tokenizer.ggml.pre` value pre-tokenizes (byte-level BPE only). */
export interface PreTokenizerSpec {
  /** Hugging Face `pre_tokenizer` object. */
  preTokenizer: Record<string, unknown>;
  /** Hugging Face `normalizer` object, if the original tokenizer has one. */
  normalizer?: Record<string, unknown>;
  /** Whole pre-tokens found in the vocabulary skip the merges (Llama 3's `ignore_merges`). */
  ignoreMerges?: boolean;
  /** Whether BOS is added when the file has no `tokenizer.ggml.add_bos_token`. */
  addBos?: boolean;
}

/** GPT-2's split regex (what ByteLevel with use_regex applies). */
export const GPT2_SPLIT_REGEX =
  "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
/** Llama 3's split regex (numbers in groups of up to 3). */
export const LLAMA3_SPLIT_REGEX =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
/** Qwen2's split regex (single digits). */
export const QWEN2_SPLIT_REGEX =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
/** Mistral Tekken's split regex (case-aware words, single digits). */
export const TEKKEN_SPLIT_REGEX =
  "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+|" +
  "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*|" +
  "\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

const byteLevel = (useRegex: boolean) => ({
  type: "ByteLevel",
  add_prefix_space: false,
  trim_offsets: true,
  use_regex: useRegex,
});
const splitThenBytes = (regex: string) => ({
  type: "Sequence",
  pretokenizers: [
    { type: "Split", pattern: { Regex: regex }, behavior: "Isolated", invert: false },
    byteLevel(false),
  ],
});

const GPT2: PreTokenizerSpec = { preTokenizer: byteLevel(true) };
const DIGITS_GPT2: PreTokenizerSpec = {
  preTokenizer: {
    type: "Sequence",
    pretokenizers: [{ type: "Digits", individual_digits: true }, byteLevel(true)],
  },
};
const LLAMA3: PreTokenizerSpec = {
  preTokenizer: splitThenBytes(LLAMA3_SPLIT_REGEX),
  ignoreMerges: true,
  addBos: true,
};
const QWEN2: PreTokenizerSpec = {
  preTokenizer: splitThenBytes(QWEN2_SPLIT_REGEX),
  normalizer: { type: "NFC" },
};
const TEKKEN: PreTokenizerSpec = {
  preTokenizer: splitThenBytes(TEKKEN_SPLIT_REGEX),
  ignoreMerges: true,
  addBos: true,
};

/**
 * The `tokenizer.ggml.pre` values hearth knows, each mapped to the pre-tokenizer of the Hugging Face
 * tokenizer.json the GGUF converter recognised. "default" (and an absent key) is taken as plain GPT-2
 * byte-level splitting.
 */
export const GGUF_PRE_TOKENIZERS: Readonly<Record<string, PreTokenizerSpec>> = {
  "default": GPT2,
  "gpt2": GPT2,
  "gpt-2": GPT2,
  "phi-2": GPT2,
  "mpt": GPT2,
  "olmo": GPT2,
  "smollm": DIGITS_GPT2,
  "starcoder": DIGITS_GPT2,
  "refact": DIGITS_GPT2,
  "codeshell": DIGITS_GPT2,
  "command-r": DIGITS_GPT2,
  "llama3": LLAMA3,
  "llama-v3": LLAMA3,
  "llama-bpe": LLAMA3,
  "falcon3": LLAMA3,
  "pixtral": LLAMA3,
  "dbrx": { ...LLAMA3, ignoreMerges: false, addBos: false },
  "smaug-bpe": { ...LLAMA3, ignoreMerges: false, addBos: false },
  "qwen2": QWEN2,
  "deepseek-r1-qwen": QWEN2,
  "megrez": QWEN2,
  "tekken": TEKKEN,
};

/** tokenizer.json and tokenizer_config.json contents equivalent to a GGUF's tokenizer. */
export interface GgufTokenizerFiles {
  tokenizerJson: Record<string, unknown>;
  tokenizerConfig: TokenizerConfig;
  /** The default chat template, or null. */
  chatTemplate: string | null;
}

/** What {@link loadGgufTokenizer} returns. */
export interface LoadedGgufTokenizer {
  tokenizer: Tokenizer;
  /** `tokenizer.chat_template`, or null when the file has none. */
  chatTemplate: string | null;
}

/**
 * Builds hearth's {@link Tokenizer} and the chat template from a GGUF header.
 *
 * @throws {ModelConfigError} naming the file and key when the tokenizer metadata is missing,
 *   mistyped or inconsistent, or the vocabulary or pre-tokenizer kind is not supported.
 */
export function loadGgufTokenizer(header: GgufHeader): LoadedGgufTokenizer {
  const files = ggufTokenizerFiles(header);
  return {
    tokenizer: new Tokenizer(files.tokenizerJson, files.tokenizerConfig),
    chatTemplate: files.chatTemplate,
  };
}

/**
 * The tokenizer.json / tokenizer_config.json equivalent of a GGUF's tokenizer (see the module doc).
 *
 * @throws {ModelConfigError} as {@link loadGgufTokenizer}.
 */
export function ggufTokenizerFiles(header: GgufHeader): GgufTokenizerFiles {
  const f = new GgufFields(header);
  const kind = f.string("tokenizer.ggml.model");
  const tokens = f.stringArray("tokenizer.ggml.tokens");
  const n = tokens.length;
  if (n === 0) throw f.error("tokenizer.ggml.tokens", "is empty");
  const types = f.has("tokenizer.ggml.token_type")
    ? f.numberArray("tokenizer.ggml.token_type")
    : new Uint8Array(n).fill(GgufTokenType.NORMAL);
  if (types.length !== n) {
    throw f.error(
      "tokenizer.ggml.token_type",
      `has ${types.length} entries, but tokenizer.ggml.tokens has ${n}`,
    );
  }
  const id = (key: string): number | null => {
    const v = f.tokenId(key);
    if (v !== null && v >= n) throw f.error(key, `is ${v}, beyond the ${n} tokens of tokenizer.ggml.tokens`);
    return v;
  };
  const bos = id("tokenizer.ggml.bos_token_id");
  const eos = id("tokenizer.ggml.eos_token_id");
  const unk = id("tokenizer.ggml.unknown_token_id");
  const pad = id("tokenizer.ggml.padding_token_id");

  const addedTokens = [];
  for (let i = 0; i < n; i++) {
    const t = types[i];
    if (t === GgufTokenType.CONTROL || t === GgufTokenType.UNKNOWN || t === GgufTokenType.USER_DEFINED) {
      addedTokens.push({
        id: i,
        content: tokens[i],
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: false,
        special: t !== GgufTokenType.USER_DEFINED,
      });
    }
  }
  const vocab = Object.fromEntries(tokens.map((t, i) => [t, i]));

  let body: Record<string, unknown>;
  let addBosDefault: boolean;
  if (kind === "gpt2") {
    const pre = f.string("tokenizer.ggml.pre", "default");
    const spec = GGUF_PRE_TOKENIZERS[pre];
    if (spec === undefined) {
      throw f.error(
        "tokenizer.ggml.pre",
        `is ${JSON.stringify(pre)}, a pre-tokenizer hearth does not know; known: ` +
          Object.keys(GGUF_PRE_TOKENIZERS).join(", "),
      );
    }
    if (!f.has("tokenizer.ggml.merges")) {
      throw f.error(
        "tokenizer.ggml.merges",
        "is missing; a gpt2 (byte-level BPE) vocabulary needs its merges",
      );
    }
    body = {
      normalizer: spec.normalizer ?? null,
      pre_tokenizer: spec.preTokenizer,
      decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
      model: {
        type: "BPE",
        dropout: null,
        unk_token: null,
        continuing_subword_prefix: null,
        end_of_word_suffix: null,
        fuse_unk: false,
        byte_fallback: false,
        ignore_merges: spec.ignoreMerges ?? false,
        vocab,
        merges: parseMerges(f, f.stringArray("tokenizer.ggml.merges")),
      },
    };
    addBosDefault = spec.addBos ?? false;
  } else if (kind === "llama") {
    const scores = f.numberArray("tokenizer.ggml.scores");
    if (scores.length !== n) {
      throw f.error(
        "tokenizer.ggml.scores",
        `has ${scores.length} entries, but tokenizer.ggml.tokens has ${n}`,
      );
    }
    const prefix = f.bool("tokenizer.ggml.add_space_prefix", true);
    const toMeta = { type: "Replace", pattern: { String: " " }, content: "\u2581" };
    body = {
      normalizer: prefix
        ? { type: "Sequence", normalizers: [{ type: "Prepend", prepend: "\u2581" }, toMeta] }
        : toMeta,
      pre_tokenizer: null,
      decoder: {
        type: "Sequence",
        decoders: [
          { type: "Replace", pattern: { String: "\u2581" }, content: " " },
          { type: "ByteFallback" },
          { type: "Fuse" },
          ...(prefix ? [{ type: "Strip", content: " ", start: 1, stop: 0 }] : []),
        ],
      },
      model: {
        type: "BPE",
        dropout: null,
        unk_token: tokens[unk ?? 0],
        continuing_subword_prefix: null,
        end_of_word_suffix: null,
        fuse_unk: true,
        byte_fallback: true,
        ignore_merges: false,
        vocab,
        merges: sentencePieceMerges(tokens, scores, types),
      },
    };
    addBosDefault = true;
  } else {
    throw f.error(
      "tokenizer.ggml.model",
      `is ${JSON.stringify(kind)}; hearth supports "gpt2" (byte-level BPE) and "llama" (SentencePiece BPE)`,
    );
  }

  const chatTemplate = f.optionalString("tokenizer.chat_template");
  const named: { name: string; template: string }[] = [];
  for (const key of header.metadata.keys()) {
    const m = /^tokenizer\.chat_template\.(.+)$/.exec(key);
    if (m) named.push({ name: m[1], template: f.string(key) });
  }
  let templates: ChatTemplateSource | undefined = chatTemplate ?? undefined;
  if (named.length > 0) {
    templates = [...(chatTemplate === null ? [] : [{ name: "default", template: chatTemplate }]), ...named];
  }

  const text = (v: number | null) => (v === null ? undefined : tokens[v]);
  const tokenizerConfig: TokenizerConfig = {
    add_bos_token: f.bool("tokenizer.ggml.add_bos_token", addBosDefault),
    add_eos_token: f.bool("tokenizer.ggml.add_eos_token", false),
    bos_token: text(bos),
    eos_token: text(eos),
    pad_token: text(pad),
    unk_token: text(unk),
    clean_up_tokenization_spaces: false,
    ...(templates === undefined ? {} : { chat_template: templates }),
  };
  for (const k of Object.keys(tokenizerConfig) as (keyof TokenizerConfig)[]) {
    if (tokenizerConfig[k] === undefined) delete tokenizerConfig[k];
  }
  return {
    tokenizerJson: {
      version: "1.0",
      truncation: null,
      padding: null,
      added_tokens: addedTokens,
      post_processor: null,
      ...body,
    },
    tokenizerConfig,
    chatTemplate,
  };
}

/** "left right" merge strings as pairs; the split is the first space after the first character. */
function parseMerges(f: GgufFields, merges: string[]): [string, string][] {
  return merges.map((m, i) => {
    const cut = m.indexOf(" ", 1);
    if (cut < 0) {
      throw f.error("tokenizer.ggml.merges", `entry ${i} (${JSON.stringify(m)}) is not "left right"`);
    }
    return [m.slice(0, cut), m.slice(cut + 1)];
  });
}

/**
 * Merge rules equivalent to SentencePiece BPE: every way of writing a normal piece as two symbols
 * (a shorter normal piece or a single character each), ranked by the piece's score, highest first;
 * ties by piece id, then by the ids of the halves.
 */
export function sentencePieceMerges(
  tokens: readonly string[],
  scores: ArrayLike<number>,
  types: ArrayLike<number>,
): [string, string][] {
  const isPiece = (i: number) => types[i] === GgufTokenType.NORMAL || types[i] === GgufTokenType.UNDEFINED;
  const pieceId = new Map<string, number>();
  for (let i = 0; i < tokens.length; i++) {
    if (isPiece(i) && !pieceId.has(tokens[i])) pieceId.set(tokens[i], i);
  }
  const rank = (s: string) => pieceId.get(s) ?? Number.MAX_SAFE_INTEGER;
  const symbol = (chars: string[], from: number, to: number): string | null => {
    const s = chars.slice(from, to).join("");
    return to - from === 1 || pieceId.has(s) ? s : null;
  };
  const found: { left: string; right: string; score: number; id: number; l: number; r: number }[] = [];
  for (const [piece, id] of pieceId) {
    const chars = Array.from(piece);
    for (let k = 1; k < chars.length; k++) {
      const left = symbol(chars, 0, k);
      const right = left === null ? null : symbol(chars, k, chars.length);
      if (left !== null && right !== null) {
        found.push({ left, right, score: scores[id], id, l: rank(left), r: rank(right) });
      }
    }
  }
  found.sort((a, b) => b.score - a.score || a.id - b.id || a.l - b.l || a.r - b.r);
  return found.map((m) => [m.left, m.right]);
}
