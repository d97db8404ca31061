/**
 * One generation request as the scheduler tracks it: its tokens (prompt, then output), how many of
 * them are in the KV cache, its block table, and the channel its tokens flow out through.
 *
 * @module
 */
import type { SequenceSampling } from "../native/hearth.ts";
import type { GeneratedToken, GenerateParams } from "./types.ts";

let nextId = 1;

/** A request in the engine: waiting, running, or finished. */
export class Sequence {
  readonly id = nextId++;
  /** Prompt then generated tokens. */
  readonly tokens: number[];
  readonly promptLen: number;
  /** Tokens whose keys and values are in the cache (the first `computed` of `tokens`). */
  computed = 0;
  /** KV block ids, in position order. */
  readonly blocks: number[] = [];
  /** Prefix hashes of the leading full, computed blocks (see kv_allocator.ts's blockHash). */
  readonly hashes: string[] = [];
  /** Set once the sequence has produced its last token, failed or was cancelled. */
  done = false;
  cancelled = false;
  /** Native sampling fields; `history` is `tokens` itself. */
  readonly sampling: SequenceSampling;
  /** Stop ids (EOS unless ignoreEos, plus the request's). */
  readonly stopIds: Set<number>;
  readonly maxTokens: number;
  readonly wantLogprobs: boolean;
  readonly topLogprobs: number;

  #queue: (GeneratedToken | Error)[] = [];
  #wake: (() => void) | null = null;

  constructor(prompt: number[], params: GenerateParams, seed: bigint, stopIds: number[], maxTokens: number) {
    this.tokens = [...prompt];
    this.promptLen = prompt.length;
    this.stopIds = new Set(stopIds);
    this.maxTokens = maxTokens;
    this.wantLogprobs = params.logprobs === true || (params.topLogprobs ?? 0) > 0;
    this.topLogprobs = params.topLogprobs ?? 0;
    const bias = params.logitBias ?? new Map<number, number>();
    this.sampling = {
      seed,
      temperature: params.temperature,
      topP: params.topP,
      topK: params.topK,
      minP: params.minP,
      repetitionPenalty: params.repetitionPenalty,
      presencePenalty: params.presencePenalty,
      frequencyPenalty: params.frequencyPenalty,
      noRepeatNgramSize: params.noRepeatNgramSize,
      minTokens: params.minTokens,
      nTopLogprobs: this.topLogprobs,
      wantLogprob: this.wantLogprobs,
      history: this.tokens,
      promptLen: prompt.length,
      biasIds: [...bias.keys()],
      biasValues: [...bias.values()],
      stopIds: [...this.stopIds],
    };
  }

  /** Tokens generated so far. */
  get generated(): number {
    return this.tokens.length - this.promptLen;
  }

  /** Hands a token (or an error) to the consumer. */
  push(item: GeneratedToken | Error): void {
    this.#queue.push(item);
    this.#wake?.();
    this.#wake = null;
  }

  /**
   * The next token or error, waiting for it if none is queued. Resolved by `push` itself rather than
   * by an async function's loop: every token passes here between two decode steps.
   */
  next(): Promise<GeneratedToken | Error> {
    if (this.#queue.length > 0) return Promise.resolve(this.#queue.shift()!);
    return new Promise((resolve) => (this.#wake = () => resolve(this.#queue.shift()!)));
  }
}
