/**
 * The engine options `serve` derives from its flags, seen in the real process's log: `--threads`
 * defaults to the number of physical cores, and a float64 `--dtype` spelling is served as float32
 * with a warning.
 */
import { join } from "node:path";
import { assert, assertEquals } from "../assert.ts";
import { physicalCoreCount } from "../../src/cli/cpu_info.ts";
import { FIXTURES, ROOT } from "./fixtures.ts";

/** Starts `main.ts serve` with `args`, collects stderr until the model-loading line, then stops it. */
async function loadingLog(args: string[]): Promise<{ lines: string[]; dtype: string; threads: number }> {
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
      found = parts.map((l) => /loading \S+ \(dtype (\w+), (\d+) threads\)/.exec(l)).find((m) => m) ?? null;
      if (found) {
        child.kill("SIGTERM");
        break;
      }
    }
    assert(found, `no loading line in:\n${lines.join("\n")}`);
    return { lines, dtype: found[1], threads: Number(found[2]) };
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
