/**
 * Packed quantized weights live in one buffer advised to be backed by transparent huge pages (common.c):
 * a decode streams all of them every token, and with 4 KiB pages that is a TLB miss every 4 KiB. Seen
 * from outside: loading a model whose packed matrices are several MiB adds huge pages to this process
 * (/proc/self/smaps_rollup), where the system offers THP at all.
 */
import { assert } from "../assert.ts";
import { tinyGgufModel } from "../../src/model/gguf_test_util.ts";
import { chosenIsa, isaNames, packBytes, QTYPES } from "../../src/native/quant_testing.ts";

const ROOT = new URL("../../", import.meta.url).href;

function thpMode(): string | null {
  try {
    return /\[(\w+)\]/.exec(Deno.readTextFileSync("/sys/kernel/mm/transparent_hugepage/enabled"))?.[1] ??
      null;
  } catch {
    return null; // not Linux, or no THP
  }
}

/**
 * KiB of huge pages a fresh process gains loading the model at `path` (with `env`). A process of its own:
 * under `deno test --parallel` other test modules share this one, and their models coming and going
 * would move /proc/self/smaps_rollup's count while this test reads it.
 */
async function hugeGainKiB(path: string, env: Record<string, string>): Promise<number> {
  const code = `
    import { describeModelPath } from "${ROOT}src/model/describe.ts";
    import { NativeModel } from "${ROOT}src/native/hearth.ts";
    const huge = () => Number(/AnonHugePages:\\s+(\\d+) kB/.exec(Deno.readTextFileSync("/proc/self/smaps_rollup"))![1]);
    const { description } = await describeModelPath(${JSON.stringify(path)}, { tokenizer: false });
    const before = huge();
    const model = await NativeModel.load(description, "auto");
    console.log(huge() - before);
    model.free();`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--ext=ts", code],
    cwd: new URL(ROOT).pathname, // deno.json's imports
    env,
    stderr: "inherit",
  }).output();
  assert(out.success, "the probe process ran");
  return Number(new TextDecoder().decode(out.stdout).trim());
}

const mode = thpMode();
// The kernel table in use packs Q8_0 matrices (HEARTH_ISA=c, say, has no packed layout: nothing to back).
const packs = packBytes(isaNames().indexOf(chosenIsa()), QTYPES.q8_0, 16, 512) > 0;
Deno.test({
  name: "packed Q8_0 weights are backed by huge pages where the system offers THP",
  ignore: mode === null || mode === "never" || Deno.env.get("HEARTH_HUGEPAGES") === "0" || !packs,
  fn: async () => {
    // 4 layers of 512 x 1536 matrices: about 12 MiB packed.
    const path = await tinyGgufModel({
      weightType: "Q8_0",
      dim: 512,
      hidden: 1536,
      layers: 4,
      heads: 8,
      kvHeads: 8,
    });
    try {
      const gained = await hugeGainKiB(path, {});
      assert(
        gained >= 2048,
        `THP mode ${mode}: huge pages grew by ${gained} KiB loading ~12 MiB of packed weights`,
      );
      if (mode === "madvise") {
        // Only the library's advice gives huge pages in this mode: with it off, a load gains none.
        const off = await hugeGainKiB(path, { HEARTH_HUGEPAGES: "0" });
        assert(off === 0, `HEARTH_HUGEPAGES=0: huge pages still grew by ${off} KiB`);
      }
    } finally {
      await Deno.remove(path);
    }
  },
});
