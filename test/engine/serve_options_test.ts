/**
 * The engine options `serve` derives from its flags, seen in the real process's log: `--threads`
 * defaults to the number of physical cores, a float64 `--dtype` spelling is served as float32 with a
 * warning, the KV cache's element type follows `--kv-cache-dtype` (auto: f16 for quantized weights), and
 * its block size `--block-size` (64 tokens on the CPU by default).
 */
import { join } from "node:path";
import { assert, assertEquals } from "../assert.ts";
import { physicalCoreCount } from "../../src/cli/cpu_info.ts";
import { FIXTURES, ROOT } from "./fixtures.ts";
import { runServeOnce } from "../server/process.ts";

/** Starts `main.ts serve` with `args`, collects stderr until the model-loading line (or `until`), then stops it. */
async function loadingLog(
  args: string[],
  until = /loading \S+ \(dtype (\w+), (\d+) threads\)/,
): Promise<{ lines: string[]; dtype: string; threads: number; found: RegExpExecArray }> {
  const configHome = await Deno.makeTempDir({ prefix: "hearth-test-xdg-" });
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", join(ROOT, "main.ts"), "serve", "--model", `${FIXTURES}/models/llama-f32`, ...args],
    cwd: ROOT,
    env: { XDG_CONFIG_HOME: configHome, NO_COLOR: "1" },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  let found: RegExpExecArray | null = null;
  const timeout = setTimeout(() => child.kill("SIGKILL"), 60_000);
  try {
    let buffer = "";
    const decoder = new TextDecoder();
    for await (const bytes of child.stderr) {
      buffer += decoder.decode(bytes, { stream: true });
      const parts = buffer.split("\n");
      buffer = parts.pop()!;
      lines.push(...parts);
      found = parts.map((l) => until.exec(l)).find((m) => m) ?? null;
      if (found) {
        child.kill("SIGTERM");
        break;
      }
    }
    assert(found, `no loading line in:\n${lines.join("\n")}`);
    return { lines, dtype: found[1], threads: Number(found[2]), found };
  } finally {
    await child.stderr.cancel().catch(() => {});
    if (!found) {
      try {
        child.kill("SIGTERM");
      } catch { /* already exited */ }
    }
    await child.status; // a process that ignores SIGTERM is killed by the timer
    clearTimeout(timeout);
    await Deno.remove(configHome, { recursive: true }).catch(() => {});
  }
}

Deno.test("serve: --threads defaults to the physical cores; --dtype float64 is served as float32, with a warning", async () => {
  const base = ["--port", "0", "--no-auth", "--log-level", "INFO"];
  const dflt = await loadingLog([...base, "--dtype", "float64"]);
  assertEquals(dflt.threads, physicalCoreCount(), dflt.lines.join("\n"));
  assertEquals(dflt.dtype, "f32");
  assert(dflt.lines.some((l) => l.includes("float64 is served as float32")), dflt.lines.join("\n"));

  const given = await loadingLog([...base, "--dtype", "bf16", "--threads", "3"]);
  assertEquals([given.dtype, given.threads], ["bf16", 3]);
  assert(!given.lines.some((l) => l.includes("float64")), given.lines.join("\n"));
});

Deno.test("serve: --quantize gets an f16 KV cache by default; --kv-cache-dtype float32 keeps float32", async () => {
  const base = ["--port", "0", "--no-auth", "--threads", "1", "--kv-cache-tokens", "1024"];
  const serving = /serving on cpu in (\w+); KV cache ([\d.]+) MiB of (\w+)/;
  const q = (await loadingLog([...base, "--quantize", "q8_0"], serving)).found;
  const q32 =
    (await loadingLog([...base, "--quantize", "q8_0", "--kv-cache-dtype", "float32"], serving)).found;
  const plain = (await loadingLog(base, serving)).found;
  assertEquals([q[1], q[3]], ["q8_0", "float16"]);
  assertEquals([q32[1], q32[3]], ["q8_0", "float32"]);
  assertEquals([plain[1], plain[3]], ["f32", "float32"]);
  const [mib16, mib32] = [Number(q[2]), Number(q32[2])]; // printed to 0.1 MiB
  assert(
    mib16 > 0 && Math.abs(mib32 - 2 * mib16) <= 0.15,
    `float32 elements take twice the bytes: ${mib32} vs ${mib16}`,
  );
});

Deno.test("serve: KV blocks of 64 tokens on the CPU by default; --block-size sets them, 0 is refused", async () => {
  const base = ["--port", "0", "--no-auth", "--threads", "1", "--kv-cache-tokens", "1024"];
  const serving = /KV cache ([\d.]+) MiB of \w+ in blocks of (\d+) tokens/;
  assertEquals((await loadingLog(base, serving)).found[2], "64");
  assertEquals((await loadingLog([...base, "--block-size", "16"], serving)).found[2], "16");
  const refused = await runServeOnce(["--model", `${FIXTURES}/models/llama-f32`, "--block-size", "0"]);
  assert(refused.code !== 0 && refused.stderr.includes("--block-size"), refused.stderr);
});
