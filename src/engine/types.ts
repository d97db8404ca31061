/**
 * The engine's public shapes: what a caller (the HTTP server, the benchmarks, tests) passes to
 * `Engine.generate` and what comes back.
 *
 * @module
 */

/** How the next token is picked. Defaults give greedy decoding with no penalties. */
export interface SamplingParams {
  /** <= 0 is greedy. */
  temperature: number;
  /** 1 = off. */
  topP: number;
  /** <= 0 = off. */
  topK: number;
  /** 0 = off. */
  minP: number;
  /** Seed of the counter-based RNG; a seeded request repeats exactly. Random when absent. */
  seed?: number | bigint;
  /** Hugging Face style, over prompt and output; 1 = off. */
  repetitionPenalty: number;
  /** OpenAI style, over the output; 0 = off. */
  presencePenalty: number;
  /** OpenAI style, over the output; 0 = off. */
  frequencyPenalty: number;
  /** Ban tokens that would repeat an n-gram of this size; 0 = off. */
  noRepeatNgramSize: number;
  /** Stop and EOS ids are banned until this many tokens were generated. */
  minTokens: number;
  /** Added to the logits of these token ids (-Infinity bans). */
  logitBias?: Map<number, number>;
  /** Report the log-probability of each sampled token. */
  logprobs?: boolean;
  /** How many top alternatives to report with each token (0..20). */
  topLogprobs?: number;
}

/** A whole generation request. */
export interface GenerateParams extends SamplingParams {
  /** Most tokens to generate (the context length also bounds it). */
  maxTokens: number;
  /** Extra ids that end the generation (the model's EOS ids always do unless ignoreEos). */
  stopTokenIds: number[];
  /** Keep going past EOS (stop ids in stopTokenIds still stop). */
  ignoreEos: boolean;
}

/** Why a generation ended, as OpenAI spells it. */
export type FinishReason = "stop" | "length";

/** One alternative token with its log-probability. */
export interface TokenLogprob {
  id: number;
  logprob: number;
}

/** One generated token. The last item of a generation carries its finish reason. */
export interface GeneratedToken {
  id: number;
  /** Set on the last token: "stop" when it is a stop/EOS id, "length" when the limit was reached. */
  finishReason: FinishReason | null;
  /** True when the id is an EOS/stop id (its text should not be shown). */
  isStop: boolean;
  /** Log-probability of this token under the model (when requested). */
  logprob?: number;
  /** Top alternatives at this position (when requested). */
  topLogprobs?: TokenLogprob[];
}

/** Greedy decoding with no penalties, 16 tokens. */
export const DEFAULT_GENERATE_PARAMS: GenerateParams = {
  temperature: 0,
  topP: 1,
  topK: 0,
  minP: 0,
  repetitionPenalty: 1,
  presencePenalty: 0,
  frequencyPenalty: 0,
  noRepeatNgramSize: 0,
  minTokens: 0,
  maxTokens: 16,
  stopTokenIds: [],
  ignoreEos: false,
};

/** What the engine tells its users about the loaded model. */
export interface EngineInfo {
  /** The model directory or file it was loaded from. */
  modelPath: string;
  /** `architectures[0]` (or the GGUF architecture). */
  architecture: string;
  /** Longest context (prompt + output) a sequence may have. */
  maxContext: number;
  vocabSize: number;
  /** Ids that end a generation unless ignoreEos (config.json + generation_config.json). */
  eosTokenIds: number[];
  bosTokenId: number | null;
  /** Sampling defaults from generation_config.json, already in SamplingParams names. */
  defaults: Partial<GenerateParams>;
  /** Weight dtype actually computed with, e.g. "bf16". */
  dtype: string;
  /** Element type of the KV cache. */
  kvCacheDtype?: "float32" | "float16";
  /** Tokens per KV block. */
  kvBlockSize?: number;
  /** Where the model runs: "cpu", or "cuda:N (its name)". */
  device?: string;
  /** Where the CPU reads the weights used as stored, and why, e.g. "copied into memory (…)". */
  weights?: string;
}

/** Counters and gauges of the engine's scheduler and KV cache, for logs and /metrics. */
export interface EngineStats {
  /** Sequences waiting for a place in the batch, and running in it. */
  waiting: number;
  running: number;
  /** KV cache blocks in all, and free (never used, or kept only for prefix reuse). */
  kvBlocksTotal: number;
  kvBlocksFree: number;
  /** Sequences preempted (freed and recomputed later) for lack of KV blocks. */
  preemptions: number;
  /** Prompt tokens admitted, and those whose KV came from shared prefix blocks. */
  promptTokens: number;
  prefixHitTokens: number;
  /** Forward steps run, and tokens generated. */
  steps: number;
  generatedTokens: number;
  /** Seconds spent in forward steps. */
  stepSeconds: number;
  /**
   * Seconds from the end of a step to the start of the next one, counted while the loop went straight
   * on (not while it waited for work): the compute threads are idle then (scheduling, building the batch).
   */
  betweenStepsSeconds: number;
  /**
   * Seconds the JS thread spent on the event loop's turn during steps it began and then joined
   * (NativeContext.stepBegin): on a server, the HTTP and SSE work of the tokens just made, which runs
   * beside the step while the step has one thread fewer. Part of stepSeconds.
   */
  turnSeconds: number;
  /**
   * The JS thread's own CPU seconds in those turns (NaN where the thread clock cannot be read): the
   * turns' wall time less what other processes (a client reading the stream on this host) took of its
   * core meanwhile.
   */
  turnCpuSeconds: number;
  /** The time per token of recent big steps (ms) that paces prompt chunks beside decodes (NaN: none yet). */
  prefillMsPerToken: number;
  /** Steps whose prompt part that pacing cut short. */
  pacedSteps: number;
}

/** The fraction of the KV cache's blocks that sequences hold (0 for an empty pool). */
export function kvCacheUsage(s: EngineStats): number {
  return s.kvBlocksTotal > 0 ? 1 - s.kvBlocksFree / s.kvBlocksTotal : 0;
}

/**
 * The engine as the server sees it. `generate` yields tokens as they are decoded; breaking out of the
 * loop (or aborting `signal`) cancels the sequence and frees its KV blocks at the next step.
 * Errors (bad params, prompt too long) are thrown from the first iteration as {@link EngineError}.
 */
export interface TextGenerator {
  readonly info: EngineInfo;
  generate(
    prompt: number[],
    params: Partial<GenerateParams>,
    signal?: AbortSignal,
  ): AsyncIterable<GeneratedToken>;
  /** Scheduler and cache counters (engines that have none may leave it out). */
  stats?(): EngineStats;
  /** Stops the scheduler and frees native memory; pending generations end with an error. */
  close(): Promise<void>;
}

/** An error the engine reports to callers; `code` lets the server map it to an HTTP status. */
export class EngineError extends Error {
  constructor(
    message: string,
    /** "invalid_request" (400), "context_length_exceeded" (400), "overloaded" (429), "internal" (500). */
    readonly code: "invalid_request" | "context_length_exceeded" | "overloaded" | "internal",
    /** The request field at fault, when there is one. */
    readonly param?: string,
  ) {
    super(message);
    this.name = "EngineError";
  }
}
