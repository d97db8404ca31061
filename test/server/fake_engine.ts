/**
 * A deterministic stand-in for the engine, for in-process tests of the HTTP layer. By default it
 * "echoes": the generated ids are the prompt's ids again, in a loop, so a test knows exactly which
 * text comes out. It honours maxTokens, EOS/stop ids, ignoreEos, the context length and cancellation,
 * and records what it was asked, like the real engine's contract in src/engine/types.ts.
 *
 * @module
 */

import {
  DEFAULT_GENERATE_PARAMS,
  EngineError,
  type EngineInfo,
  type GeneratedToken,
  type GenerateParams,
  type TextGenerator,
} from "../../src/engine/types.ts";

/** Options of {@link FakeEngine}. */
export interface FakeEngineOptions {
  vocabSize?: number;
  maxContext?: number;
  eosTokenIds?: number[];
  /** Ids to produce for a prompt (looped if shorter than maxTokens). Default: the prompt itself. */
  script?: (prompt: number[]) => number[];
  /** Delay before each token, to make streams observable and cancellable. */
  delayMs?: number;
  /** Throw an internal EngineError after this many tokens (tests mid-stream errors). */
  failAfter?: number;
  defaults?: Partial<GenerateParams>;
}

/** One call to generate. */
export interface FakeCall {
  prompt: number[];
  params: Partial<GenerateParams>;
  /** Tokens produced so far. */
  produced: number;
  /** True once the sequence was cancelled (abort or early return). */
  cancelled: boolean;
  finished: boolean;
}

/** See the module doc. */
export class FakeEngine implements TextGenerator {
  readonly info: EngineInfo;
  readonly calls: FakeCall[] = [];
  #options: FakeEngineOptions;
  #closed = false;

  constructor(options: FakeEngineOptions = {}) {
    this.#options = options;
    this.info = {
      modelPath: "/fake/model",
      architecture: "FakeForCausalLM",
      maxContext: options.maxContext ?? 256,
      vocabSize: options.vocabSize ?? 512,
      eosTokenIds: options.eosTokenIds ?? [],
      bosTokenId: null,
      defaults: options.defaults ?? {},
      dtype: "f32",
    };
  }

  /** Sequences that are neither finished nor cancelled. */
  get active(): number {
    return this.calls.filter((c) => !c.finished && !c.cancelled).length;
  }

  async *generate(
    prompt: number[],
    params: Partial<GenerateParams>,
    signal?: AbortSignal,
  ): AsyncGenerator<GeneratedToken> {
    const p = { ...DEFAULT_GENERATE_PARAMS, ...params };
    const call: FakeCall = { prompt: [...prompt], params, produced: 0, cancelled: false, finished: false };
    this.calls.push(call);
    if (this.#closed) throw new EngineError("engine is closed", "internal");
    if (prompt.length === 0) throw new EngineError("prompt is empty", "invalid_request", "prompt");
    if (prompt.length >= this.info.maxContext) {
      throw new EngineError("prompt too long", "context_length_exceeded", "messages");
    }
    for (const id of prompt) {
      if (id < 0 || id >= this.info.vocabSize) {
        throw new EngineError(`bad id ${id}`, "invalid_request", "prompt");
      }
    }
    const script = this.#options.script?.(prompt) ?? prompt;
    const limit = Math.min(p.maxTokens, this.info.maxContext - prompt.length);
    const stops = new Set([...p.stopTokenIds, ...(p.ignoreEos ? [] : this.info.eosTokenIds)]);
    try {
      for (let i = 0; i < limit; i++) {
        if (this.#options.delayMs) await new Promise((r) => setTimeout(r, this.#options.delayMs));
        if (signal?.aborted) {
          call.cancelled = true;
          return;
        }
        if (this.#options.failAfter !== undefined && i >= this.#options.failAfter) {
          throw new EngineError("simulated engine failure", "internal");
        }
        const id = script[i % script.length];
        const isStop = stops.has(id);
        const last = isStop || i === limit - 1;
        call.produced++;
        if (last) call.finished = true;
        yield { id, isStop, finishReason: isStop ? "stop" : last ? "length" : null };
        if (last) return;
      }
      call.finished = true;
    } finally {
      if (!call.finished) call.cancelled = true;
    }
  }

  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }
}
