/**
 * From a validated OpenAI request to engine parameters: request fields (top-level, which is where the
 * SDKs' `extra_body` puts them) over `generation_config.json` defaults over the API's defaults, plus
 * the checks that need the model (ids in range, prompt within the context).
 *
 * @module
 */

import {
  ACCEPTED_NO_OP,
  type ChatCompletionRequest,
  type CompletionRequest,
  NOT_IMPLEMENTED,
} from "../api/openai.ts";
import { ApiError } from "../api/errors.ts";
import { DEFAULT_GENERATE_PARAMS, type EngineInfo, type GenerateParams } from "../engine/types.ts";

/** Server-wide settings that shape every request. */
export interface ParamDefaults {
  /** The tokenizer's EOS id (tokenizer_config.json), which ends generations like the engine's EOS ids. */
  tokenizerEos?: number | null;
  /** `--stop-sequences`: added to every request's `stop`. */
  stopSequences: readonly string[];
  /** `--ignore-eos`: the default of the request's `ignore_eos`. */
  ignoreEos: boolean;
}

/** The engine parameters and text stops of one request. */
export interface RequestParams {
  params: GenerateParams;
  stop: string[];
  skipSpecialTokens: boolean;
}

/** OpenAI's default temperature, used when generation_config.json gives none. */
const API_DEFAULT_TEMPERATURE = 1;

/** Throws a 400 for the first known-but-unimplemented field set to something other than "off". */
export function rejectNotImplemented(body: Record<string, unknown>): void {
  for (const [field, isOff] of Object.entries(NOT_IMPLEMENTED)) {
    const value = body[field];
    if (value === undefined || value === null) continue;
    if (!isOff(value)) throw ApiError.notImplemented(field);
  }
}

/** Fields of `body` that neither the schema nor the lists of known fields name (for a DEBUG log). */
export function unknownFields(body: Record<string, unknown>, schemaKeys: readonly string[]): string[] {
  const known = new Set<string>([...schemaKeys, ...Object.keys(NOT_IMPLEMENTED), ...ACCEPTED_NO_OP]);
  return Object.keys(body).filter((key) => !known.has(key));
}

/** Refuses a prompt that leaves no room in the context, naming both numbers. */
export function checkContext(promptTokens: number, maxContext: number, param: string): void {
  if (promptTokens >= maxContext) {
    throw ApiError.invalid(
      `This model's maximum context length is ${maxContext} tokens, but the prompt has ${promptTokens} ` +
        `tokens, which leaves no room for the completion. Please shorten the prompt.`,
      param,
      "context_length_exceeded",
    );
  }
}

/** Checks ids against the vocabulary. */
export function checkIds(ids: readonly number[], vocabSize: number, param: string): void {
  const bad = ids.find((id) => !Number.isInteger(id) || id < 0 || id >= vocabSize);
  if (bad !== undefined) {
    throw ApiError.invalid(
      `Invalid value for '${param}': token id ${bad} is out of range (vocabulary size ${vocabSize})`,
      param,
      "invalid_value",
    );
  }
}

/** The request's `stop` as a list. */
function stopList(stop: string | string[] | null | undefined): string[] {
  if (stop === null || stop === undefined) return [];
  return typeof stop === "string" ? [stop] : stop;
}

/**
 * Builds the engine parameters of one choice.
 * @param req The validated request.
 * @param promptTokens Prompt length (for the context bound of max_tokens).
 * @param defaultMaxTokens max_tokens when the request gives none (16 for completions, the rest of the
 *   context for chat); undefined = the rest of the context.
 */
export function buildParams(
  req: ChatCompletionRequest | CompletionRequest,
  info: EngineInfo,
  server: ParamDefaults,
  promptTokens: number,
  defaultMaxTokens: number | undefined,
): RequestParams {
  const d = info.defaults;
  const room = info.maxContext - promptTokens;
  const maxCompletion = "max_completion_tokens" in req
    ? req.max_completion_tokens as number | null | undefined
    : null;
  const askedInRequest = maxCompletion ?? req.max_tokens;
  if (req.min_tokens != null && askedInRequest != null && req.min_tokens > askedInRequest) {
    // Not silently cut to the maximum: the two limits the client sent contradict each other.
    const name = maxCompletion != null ? "max_completion_tokens" : "max_tokens";
    throw ApiError.invalid(
      `Invalid value for 'min_tokens': ${req.min_tokens} is more than ${name} (${askedInRequest})`,
      "min_tokens",
      "invalid_value",
    );
  }
  const asked: number = askedInRequest ?? defaultMaxTokens ?? d.maxTokens ?? room;
  // The context bounds the completion; finish_reason "length" tells the client it was cut.
  const maxTokens = Math.min(asked, room);

  let logitBias: Map<number, number> | undefined;
  if (req.logit_bias) {
    logitBias = new Map();
    for (const [key, bias] of Object.entries(req.logit_bias)) {
      const id = Number(key);
      checkIds([id], info.vocabSize, "logit_bias");
      logitBias.set(id, bias);
    }
  }
  checkIds(req.stop_token_ids ?? [], info.vocabSize, "stop_token_ids");
  const ignoreEos = req.ignore_eos ?? server.ignoreEos;
  // The engine stops on config.json/generation_config.json EOS ids; the tokenizer's own EOS may
  // differ (chat models ending turns with <|im_end|>), so it is added unless EOS is ignored.
  const tokenizerEos =
    !ignoreEos && server.tokenizerEos != null && !info.eosTokenIds.includes(server.tokenizerEos)
      ? [server.tokenizerEos]
      : [];
  const stopTokenIds = [
    ...new Set([...(d.stopTokenIds ?? []), ...(req.stop_token_ids ?? []), ...tokenizerEos]),
  ];
  const topK = req.top_k ?? d.topK ?? DEFAULT_GENERATE_PARAMS.topK;

  const params: GenerateParams = {
    ...DEFAULT_GENERATE_PARAMS,
    ...d,
    temperature: req.temperature ?? d.temperature ?? API_DEFAULT_TEMPERATURE,
    topP: req.top_p ?? d.topP ?? DEFAULT_GENERATE_PARAMS.topP,
    topK: topK < 0 ? 0 : topK,
    minP: req.min_p ?? d.minP ?? DEFAULT_GENERATE_PARAMS.minP,
    repetitionPenalty: req.repetition_penalty ?? d.repetitionPenalty ??
      DEFAULT_GENERATE_PARAMS.repetitionPenalty,
    presencePenalty: req.presence_penalty ?? d.presencePenalty ?? DEFAULT_GENERATE_PARAMS.presencePenalty,
    frequencyPenalty: req.frequency_penalty ?? d.frequencyPenalty ?? DEFAULT_GENERATE_PARAMS.frequencyPenalty,
    noRepeatNgramSize: req.no_repeat_ngram_size ?? d.noRepeatNgramSize ??
      DEFAULT_GENERATE_PARAMS.noRepeatNgramSize,
    minTokens: req.min_tokens ??
      (req.min_length != null ? Math.max(0, req.min_length - promptTokens) : undefined) ??
      d.minTokens ?? DEFAULT_GENERATE_PARAMS.minTokens,
    maxTokens,
    stopTokenIds,
    ignoreEos,
  };
  if (req.seed !== null && req.seed !== undefined) params.seed = req.seed;
  if (logitBias) params.logitBias = logitBias;
  return {
    params,
    stop: [...server.stopSequences, ...stopList(req.stop)],
    skipSpecialTokens: req.skip_special_tokens ?? true,
  };
}
