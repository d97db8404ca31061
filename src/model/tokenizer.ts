/**
 * The model's tokenizer: `tokenizer.json` run by `@huggingface/tokenizers` (pure JS, the tokenizer of
 * transformers.js), plus what `tokenizer_config.json` adds on top: the BOS/EOS tokens, `add_bos_token`
 * / `add_eos_token`, and the chat templates. It reproduces the ids of Hugging Face's Rust `tokenizers`
 * on the committed corpus (see tokenizer_golden_test.ts).
 *
 * @module
 */

import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import { join } from "node:path";
import { type BytePieces, bytePieces } from "./byte_pieces.ts";
import { ModelConfigError } from "./errors.ts";

/** A chat template as `tokenizer_config.json` stores it: one string, or named ones. */
export type ChatTemplateSource = string | { name: string; template: string }[];

/** The fill-in-the-middle special tokens of a code model, as ids. */
export interface FimTokens {
  prefix: number;
  suffix: number;
  middle: number;
}

/** Options of {@link Tokenizer.encode}. */
export interface EncodeOptions {
  /** Add the special tokens the tokenizer adds around a text (BOS for Llama). Default true. */
  addSpecialTokens?: boolean;
}

/** Options of {@link Tokenizer.decode}. */
export interface DecodeOptions {
  /** Leave out special tokens (EOS, ChatML markers). Default false. */
  skipSpecialTokens?: boolean;
}

/** Parsed `tokenizer_config.json` fields this module reads (all optional; unknown ones kept). */
export interface TokenizerConfig {
  bos_token?: unknown;
  eos_token?: unknown;
  pad_token?: unknown;
  unk_token?: unknown;
  add_bos_token?: boolean;
  add_eos_token?: boolean;
  chat_template?: ChatTemplateSource;
  [key: string]: unknown;
}

/** FIM token spellings of the model families that have them: [prefix, suffix, middle]. */
const FIM_SPELLINGS: [string, string, string][] = [
  ["<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"], // Qwen2.5-Coder, SmolLM
  ["<fim_prefix>", "<fim_suffix>", "<fim_middle>"], // StarCoder
  ["<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"], // DeepSeek-Coder
  ["▁<PRE>", "▁<SUF>", "▁<MID>"], // CodeLlama
];

/**
 * Adjusts `tokenizer.json` where tokenizers.js 0.2 departs from the Rust library, found with the
 * goldens. Its Digits pre-tokenizer splits on JavaScript's ASCII-only `\d`; Rust's splits on
 * `char::is_numeric` (Unicode N*: Arabic-Indic and fullwidth digits, superscripts), so it is replaced
 * by the equivalent Split on `\p{N}`. Returns a copy; the input is not changed.
 */
export function compatTokenizerJson(json: Record<string, unknown>): Record<string, unknown> {
  const fix = (node: unknown): unknown => {
    if (Array.isArray(node)) return node.map(fix);
    if (!node || typeof node !== "object") return node;
    const obj = node as Record<string, unknown>;
    if (obj.type === "Digits") {
      const digits = obj.individual_digits ? "\\p{N}" : "\\p{N}+";
      return {
        type: "Split",
        pattern: { Regex: `[^\\p{N}]+|${digits}` },
        behavior: "Isolated",
        invert: true,
      };
    }
    return Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, fix(v)]));
  };
  return { ...json, pre_tokenizer: fix(json.pre_tokenizer ?? null) };
}

/** The tokenizer models tokenizer.json may name, and the form of each one's `vocab`. */
const MODEL_VOCAB: Readonly<Record<string, "object" | "array">> = {
  BPE: "object",
  WordPiece: "object",
  WordLevel: "object",
  Unigram: "array",
};

/**
 * The checks of tokenizer.json's `model` the tokenizer library leaves out: it builds a tokenizer from a
 * vocabulary that is not one (a number, a string) or from an unknown model type, and that tokenizer then
 * gives wrong ids instead of an error.
 */
function checkModelSection(json: Record<string, unknown>): void {
  const model = json.model;
  if (!model || typeof model !== "object" || Array.isArray(model)) {
    throw new Error(`"model" must be an object, got ${JSON.stringify(model)?.slice(0, 40)}`);
  }
  const { type, vocab, merges } = model as Record<string, unknown>;
  const form = typeof type === "string" ? MODEL_VOCAB[type] : undefined;
  if (type !== undefined && form === undefined) {
    throw new Error(
      `unknown model type ${JSON.stringify(type)} (known: ${Object.keys(MODEL_VOCAB).join(", ")})`,
    );
  }
  // Without a type the library tells the model by its fields: either form of vocab then.
  const isList = Array.isArray(vocab), isObject = !!vocab && typeof vocab === "object" && !isList;
  const ok = form === "array" ? isList : form === "object" ? isObject : isList || isObject;
  if (!ok) throw new Error(`model.vocab must be ${form === "array" ? "a list" : "an object"} of tokens`);
  if (merges !== undefined && !Array.isArray(merges)) throw new Error("model.merges must be a list");
  if (json.added_tokens !== undefined && !Array.isArray(json.added_tokens)) {
    throw new Error("added_tokens must be a list");
  }
}

/** tokenizer_config.json spells tokens as a string or as `{ "content": ..., "__type": "AddedToken" }`. */
function tokenText(value: unknown): string | null {
  if (typeof value === "string") return value;
  if (value && typeof value === "object" && typeof (value as { content?: unknown }).content === "string") {
    return (value as { content: string }).content;
  }
  return null;
}

async function readJson(path: string): Promise<unknown | undefined> {
  try {
    return JSON.parse(await Deno.readTextFile(path));
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw new ModelConfigError(`cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/** The tokenizer the server uses for prompts, output text and chat templates. */
export class Tokenizer {
  /** Raw `tokenizer_config.json` (empty when the model has none). */
  readonly config: TokenizerConfig;
  /** Number of ids (largest id + 1, added tokens included). */
  readonly vocabSize: number;
  readonly bosToken: string | null;
  readonly bosTokenId: number | null;
  readonly eosToken: string | null;
  /** The tokenizer's own EOS id (the engine may know more from generation_config.json). */
  readonly eosTokenId: number | null;
  /** Ids of special added tokens, left out of output text. */
  readonly specialIds: ReadonlySet<number>;
  /** Fill-in-the-middle tokens, or null when the vocabulary has none. */
  readonly fim: FimTokens | null;
  /** Whether {@link encode} puts BOS first when adding special tokens. */
  readonly addsBos: boolean;
  readonly #hf: HfTokenizer;
  readonly #decoderType: unknown;
  #bytePieces: BytePieces | null | undefined;
  readonly #addEos: boolean;
  readonly #bosFromProcessor: boolean;

  /** Builds from parsed `tokenizer.json` and `tokenizer_config.json` contents. */
  constructor(tokenizerJson: unknown, config: TokenizerConfig = {}) {
    if (!tokenizerJson || typeof tokenizerJson !== "object") {
      throw new Error("tokenizer.json is not an object");
    }
    checkModelSection(tokenizerJson as Record<string, unknown>);
    this.config = config;
    this.#hf = new HfTokenizer(compatTokenizerJson(tokenizerJson as Record<string, unknown>), config);
    this.#decoderType = ((tokenizerJson as { decoder?: { type?: unknown } }).decoder ?? {}).type;
    const added = [...this.#hf.get_added_tokens_decoder().values()];
    const vocab = this.#hf.get_vocab(true);
    let maxId = -1;
    for (const id of vocab.values()) maxId = Math.max(maxId, id);
    this.vocabSize = maxId + 1;
    this.specialIds = new Set(added.filter((t) => t.special).map((t) => t.id));

    this.bosToken = tokenText(config.bos_token);
    this.eosToken = tokenText(config.eos_token);
    this.bosTokenId = this.bosToken === null ? null : this.tokenToId(this.bosToken);
    this.eosTokenId = this.eosToken === null ? null : this.tokenToId(this.eosToken);

    // Whether tokenizer.json's post-processor already adds BOS (Llama's TemplateProcessing does).
    const probe = this.#hf.encode("", { add_special_tokens: true }).ids;
    this.#bosFromProcessor = this.bosTokenId !== null && probe[0] === this.bosTokenId;
    // tokenizer_config.json's add_bos_token overrides the post-processor, as transformers does.
    this.addsBos = this.bosTokenId !== null && (config.add_bos_token ?? this.#bosFromProcessor);
    this.#addEos = this.eosTokenId !== null && config.add_eos_token === true;
    this.fim = this.#findFim();
  }

  /**
   * Loads `tokenizer.json` (required) and `tokenizer_config.json` (optional) from a model directory.
   *
   * @throws {ModelConfigError} naming the file when one is missing, not JSON, or not a tokenizer the
   *   library can build (a damaged download otherwise surfaced as the library's own TypeError).
   */
  static async load(modelDir: string): Promise<Tokenizer> {
    const path = join(modelDir, "tokenizer.json");
    const json = await readJson(path);
    if (json === undefined) throw new ModelConfigError(`${modelDir} has no tokenizer.json`);
    const config = (await readJson(join(modelDir, "tokenizer_config.json")) ?? {}) as TokenizerConfig;
    try {
      return new Tokenizer(json, config);
    } catch (e) {
      throw new ModelConfigError(`${path}: cannot build the tokenizer (${(e as Error).message})`, {
        cause: e,
      });
    }
  }

  /** Text to ids. Special-token text in `text` becomes the special token, as in transformers. */
  encode(text: string, options: EncodeOptions = {}): number[] {
    const addSpecial = options.addSpecialTokens ?? true;
    const ids = this.#hf.encode(text, { add_special_tokens: addSpecial }).ids;
    if (!addSpecial) return ids;
    if (this.addsBos && ids[0] !== this.bosTokenId) ids.unshift(this.bosTokenId!);
    if (!this.addsBos && this.#bosFromProcessor && ids[0] === this.bosTokenId) ids.shift();
    if (this.#addEos && ids[ids.length - 1] !== this.eosTokenId) ids.push(this.eosTokenId!);
    return ids;
  }

  /** Ids to text, without transformers' "clean up tokenization spaces" so text round-trips. */
  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    const kept = options.skipSpecialTokens ? ids.filter((id) => !this.specialIds.has(id)) : [...ids];
    if (kept.length === 0) return "";
    return this.#hf.decode(kept, { skip_special_tokens: false, clean_up_tokenization_spaces: false });
  }

  /**
   * Each id's bytes when this vocabulary decodes by concatenating bytes (byte-level BPE), else null;
   * built on first use. See byte_pieces.ts.
   */
  get bytePieces(): BytePieces | null {
    if (this.#bytePieces === undefined) {
      const added = new Set([...this.#hf.get_added_tokens_decoder().values()].map((t) => t.content));
      this.#bytePieces = bytePieces(
        this.#decoderType,
        this.vocabSize,
        (id) => this.#hf.id_to_token(id),
        added,
      );
    }
    return this.#bytePieces;
  }

  /** The id of a token string (vocabulary or added), or null. */
  tokenToId(token: string): number | null {
    return this.#hf.token_to_id(token) ?? null;
  }

  /** The token string of an id, or null when out of range. */
  idToToken(id: number): string | null {
    return this.#hf.id_to_token(id) ?? null;
  }

  /** The chat template(s) of tokenizer_config.json, if any. */
  get chatTemplate(): ChatTemplateSource | null {
    return this.config.chat_template ?? null;
  }

  /** Every special token's text by its tokenizer_config.json name (bos_token, eos_token, ...). */
  get specialTokenTexts(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const key of ["bos_token", "eos_token", "pad_token", "unk_token", "sep_token", "cls_token"]) {
      const text = tokenText(this.config[key]);
      if (text !== null) out[key] = text;
    }
    return out;
  }

  #findFim(): FimTokens | null {
    for (const [p, s, m] of FIM_SPELLINGS) {
      const prefix = this.tokenToId(p), suffix = this.tokenToId(s), middle = this.tokenToId(m);
      if (prefix !== null && suffix !== null && middle !== null) return { prefix, suffix, middle };
    }
    return null;
  }
}
