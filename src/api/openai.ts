/**
 * The OpenAI wire protocol as hearth speaks it: request schemas (zod, validated on every request),
 * response and chunk shapes, and the error body. One module, like vLLM's protocol.py, so that what
 * the server accepts and sends can be read in one place.
 *
 * Request objects are "loose": fields the server does not know pass validation (SDKs add fields over
 * time) and are logged at DEBUG by the handlers. Fields it knows but does not implement yet are listed
 * in {@link NOT_IMPLEMENTED} and refused with a 400 naming them.
 *
 * @module
 */

import { z } from "zod";

// ---------------------------------------------------------------------------------------------
// Shared request fields
// ---------------------------------------------------------------------------------------------

const stopField = z.union([z.string(), z.array(z.string())], {
  error: "expected a string or an array of strings",
}).nullish();

/**
 * The rule both generation requests share across their fields: options of a stream on a request that does
 * not stream are an error naming them, as OpenAI and vLLM answer, not a no-op (a client expecting a usage
 * chunk would wait for one).
 */
function streamOptionsNeedStream(
  r: { stream?: boolean | null; stream_options?: unknown },
  ctx: z.RefinementCtx,
) {
  if (r.stream_options != null && r.stream !== true) {
    ctx.addIssue({
      code: "custom",
      path: ["stream_options"],
      message: "only allowed when 'stream' is enabled",
    });
  }
}

/** Sampling and stopping fields common to chat and completions (incl. `extra_body` extras). */
const samplingFields = {
  /** Accepted whatever it says: one model per server (the seed server's behaviour). */
  model: z.string().nullish(),
  max_tokens: z.int().min(1).nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().gt(0).max(1).nullish(),
  /** vLLM/Hugging Face extra: 0 or -1 disables. */
  top_k: z.int().min(-1).nullish(),
  min_p: z.number().min(0).max(1).nullish(),
  seed: z.int().nullish(),
  presence_penalty: z.number().min(-2).max(2).nullish(),
  frequency_penalty: z.number().min(-2).max(2).nullish(),
  repetition_penalty: z.number().gt(0).nullish(),
  no_repeat_ngram_size: z.int().min(0).nullish(),
  min_tokens: z.int().min(0).nullish(),
  /** Hugging Face / seed server spelling: a minimum *total* length, prompt included. */
  min_length: z.int().min(0).nullish(),
  /** Token id (as a string key, as OpenAI sends it) to a bias in [-100, 100]. */
  logit_bias: z.record(z.string().regex(/^\d+$/, "keys must be token ids"), z.number().min(-100).max(100))
    .nullish(),
  stop: stopField,
  /** vLLM extra: ids that end the generation besides EOS. */
  stop_token_ids: z.array(z.int().min(0)).nullish(),
  ignore_eos: z.boolean().nullish(),
  /** vLLM extra: keep special tokens in the output text when false. */
  skip_special_tokens: z.boolean().nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.looseObject({ include_usage: z.boolean().nullish() }).nullish(),
  n: z.int().min(1).max(128).nullish(),
  user: z.string().nullish(),
};

// ---------------------------------------------------------------------------------------------
// Chat completions
// ---------------------------------------------------------------------------------------------

/** One part of a multi-part message content; only text parts are supported. */
export const ContentPartSchema = z.looseObject({ type: z.string(), text: z.string().optional() });

/** A chat message. Extra fields (name, tool_call_id, refusal, ...) pass through to the template. */
export const ChatMessageSchema = z.looseObject({
  role: z.enum(["system", "developer", "user", "assistant", "tool", "function"]),
  content: z.union([z.string(), z.array(ContentPartSchema)], {
    error: "expected a string or an array of content parts",
  }).nullish(),
  name: z.string().nullish(),
}).superRefine((m, ctx) => {
  // Only an assistant message may come without content (it then carries tool calls).
  if (m.role !== "assistant" && (m.content === undefined || m.content === null)) {
    ctx.addIssue({ code: "custom", path: ["content"], message: `a ${m.role} message needs content` });
  }
});

/** `POST /v1/chat/completions` body. */
export const ChatCompletionRequestSchema = z.looseObject({
  ...samplingFields,
  messages: z.array(ChatMessageSchema).min(1, "at least one message is required"),
  max_completion_tokens: z.int().min(1).nullish(),
  /** vLLM extra: end the prompt with the assistant header (default true). */
  add_generation_prompt: z.boolean().nullish(),
  /** vLLM extra: variables for the chat template, e.g. `{"enable_thinking": false}`. */
  chat_template_kwargs: z.record(z.string(), z.unknown()).nullish(),
  logprobs: z.boolean().nullish(),
  top_logprobs: z.int().min(0).max(20).nullish(),
}).superRefine(streamOptionsNeedStream);

/** A parsed chat request. */
export type ChatCompletionRequest = z.infer<typeof ChatCompletionRequestSchema>;
/** A parsed chat message. */
export type ChatMessage = z.infer<typeof ChatMessageSchema>;

// ---------------------------------------------------------------------------------------------
// Completions
// ---------------------------------------------------------------------------------------------

/** A prompt: text, texts, token ids, or lists of token ids. */
export const PromptSchema = z.union([
  z.string(),
  z.array(z.string()).min(1),
  z.array(z.int().min(0)).min(1),
  z.array(z.array(z.int().min(0)).min(1)).min(1),
], { error: "expected a string, an array of strings, an array of token ids or an array of those" });

/** `POST /v1/completions` body. */
export const CompletionRequestSchema = z.looseObject({
  ...samplingFields,
  prompt: PromptSchema,
  echo: z.boolean().nullish(),
  suffix: z.string().nullish(),
  best_of: z.int().min(1).nullish(),
  logprobs: z.int().min(0).max(5).nullish(),
}).superRefine(streamOptionsNeedStream);

/** A parsed completions request. */
export type CompletionRequest = z.infer<typeof CompletionRequestSchema>;

/**
 * Fields the server knows but does not implement yet, with the value that means "not used". A
 * request that sets one to anything else gets a 400 naming it rather than a silently different
 * answer. Each entry is removed when its issue lands.
 */
export const NOT_IMPLEMENTED: Record<string, (value: unknown) => boolean> = {
  n: (v) => v === 1,
  best_of: (v) => v === 1,
  logprobs: (v) => v === false,
  top_logprobs: (v) => v === 0,
  response_format: (v) => typeof v === "object" && v !== null && (v as { type?: unknown }).type === "text",
  tools: (v) => Array.isArray(v) && v.length === 0,
  tool_choice: (v) => v === "none",
  functions: (v) => Array.isArray(v) && v.length === 0,
  function_call: (v) => v === "none",
  audio: () => false,
  modalities: (v) => Array.isArray(v) && v.every((m) => m === "text"),
  prediction: () => false,
  web_search_options: () => false,
  reasoning_effort: () => false,
  num_beams: (v) => v === 1,
  typical_p: (v) => v === 1,
  guided_json: () => false,
  guided_regex: () => false,
  guided_choice: () => false,
  guided_grammar: () => false,
};

/**
 * Fields that are part of the API but change nothing here (bookkeeping for hosted services), so
 * they are accepted without comment rather than logged as unknown.
 */
export const ACCEPTED_NO_OP = [
  "user",
  "metadata",
  "store",
  "service_tier",
  "parallel_tool_calls",
  "prompt_cache_key",
  "safety_identifier",
] as const;

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

/** Why a choice ended. */
export const FinishReasonSchema = z.enum(["stop", "length"]);

/** Token counts of a response. */
export const UsageSchema = z.object({
  prompt_tokens: z.int(),
  completion_tokens: z.int(),
  total_tokens: z.int(),
});

/** `usage` of a response. */
export type Usage = z.infer<typeof UsageSchema>;

/** `POST /v1/chat/completions` response. */
export const ChatCompletionSchema = z.object({
  id: z.string(),
  object: z.literal("chat.completion"),
  created: z.int(),
  model: z.string(),
  choices: z.array(z.object({
    index: z.int(),
    message: z.object({ role: z.literal("assistant"), content: z.string(), refusal: z.null() }),
    logprobs: z.null(),
    finish_reason: FinishReasonSchema,
  })),
  usage: UsageSchema,
  system_fingerprint: z.string().nullable(),
});

/** A chat completion. */
export type ChatCompletion = z.infer<typeof ChatCompletionSchema>;

/** One SSE chunk of a streamed chat completion. */
export const ChatCompletionChunkSchema = z.object({
  id: z.string(),
  object: z.literal("chat.completion.chunk"),
  created: z.int(),
  model: z.string(),
  choices: z.array(z.object({
    index: z.int(),
    delta: z.object({ role: z.literal("assistant").optional(), content: z.string().optional() }),
    logprobs: z.null(),
    finish_reason: FinishReasonSchema.nullable(),
  })),
  usage: UsageSchema.nullable().optional(),
  system_fingerprint: z.string().nullable(),
});

/** A streamed chat chunk. */
export type ChatCompletionChunk = z.infer<typeof ChatCompletionChunkSchema>;

/** `POST /v1/completions` response and, with `finish_reason` null, its stream chunks. */
export const CompletionSchema = z.object({
  id: z.string(),
  object: z.literal("text_completion"),
  created: z.int(),
  model: z.string(),
  choices: z.array(z.object({
    index: z.int(),
    text: z.string(),
    logprobs: z.null(),
    finish_reason: FinishReasonSchema.nullable(),
  })),
  usage: UsageSchema.nullable().optional(),
  system_fingerprint: z.string().nullable(),
});

/** A completion (or one of its stream chunks). */
export type Completion = z.infer<typeof CompletionSchema>;

/** An entry of `GET /v1/models`. */
export const ModelSchema = z.object({
  id: z.string(),
  object: z.literal("model"),
  created: z.int(),
  owned_by: z.string(),
  /** vLLM extra: the longest context the server accepts. */
  max_model_len: z.int(),
});

/** A model entry. */
export type Model = z.infer<typeof ModelSchema>;

/** `GET /v1/models`. */
export const ModelListSchema = z.object({ object: z.literal("list"), data: z.array(ModelSchema) });

/** The OpenAI error body: `{"error": {"message", "type", "param", "code"}}`. */
export const ErrorBodySchema = z.object({
  error: z.object({
    message: z.string(),
    type: z.string(),
    param: z.string().nullable(),
    code: z.string().nullable(),
  }),
});

/** An error body. */
export type ErrorBody = z.infer<typeof ErrorBodySchema>;
