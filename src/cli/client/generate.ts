/**
 * One streamed generation written to the output as it arrives, and the `--show-usage` line.
 *
 * @module
 */

import type { ApiClient, GenerationKind, Usage } from "./api.ts";
import type { Output } from "./output.ts";

/** What a streamed generation produced. */
export interface GenerationResult {
  text: string;
  finishReason?: string;
  usage?: Usage;
  model?: string;
  seconds: number;
}

/** Options of {@link streamGeneration}. */
export interface StreamOptions {
  signal?: AbortSignal;
  /** Written once the server has answered (the echoed prompt), so a refused request prints nothing. */
  prefix?: string;
}

/** Streams `body` to `output.out` and returns the whole text with its finish reason and usage. */
export async function streamGeneration(
  api: ApiClient,
  kind: GenerationKind,
  body: Record<string, unknown>,
  output: Output,
  options: StreamOptions = {},
): Promise<GenerationResult> {
  const started = performance.now();
  const result: GenerationResult = { text: "", seconds: 0 };
  let prefix = options.prefix ?? "";
  const writePrefix = () => {
    if (prefix !== "") output.out(prefix);
    prefix = "";
  };
  for await (const delta of api.stream(kind, body, options.signal)) {
    writePrefix();
    if (delta.text) {
      output.out(delta.text);
      result.text += delta.text;
    }
    if (delta.finishReason) result.finishReason = delta.finishReason;
    if (delta.usage) result.usage = delta.usage;
    if (delta.model) result.model ??= delta.model;
  }
  writePrefix();
  result.seconds = (performance.now() - started) / 1000;
  return result;
}

/** The `--show-usage` line of a result. */
export function usageLine(result: GenerationResult): string {
  const parts: string[] = [];
  if (result.usage) {
    const u = result.usage;
    parts.push(
      `prompt_tokens=${u.prompt_tokens}`,
      `completion_tokens=${u.completion_tokens}`,
      `total_tokens=${u.total_tokens}`,
    );
  } else {
    parts.push("(the server sent no usage)");
  }
  if (result.finishReason) parts.push(`finish_reason=${result.finishReason}`);
  parts.push(`${result.seconds.toFixed(2)}s`);
  if (result.usage && result.seconds > 0) {
    parts.push(`${(result.usage.completion_tokens / result.seconds).toFixed(1)} tok/s`);
  }
  return `usage: ${parts.join(", ")}`;
}
