import { assert, assertEquals } from "./test/assert.ts";
import { buildCpuLibrary, compileArgs, cpuUnits, libraryFileName } from "./build.ts";

Deno.test("build: one library per OS name; vector units only on x86-64", () => {
  assertEquals(libraryFileName("linux"), "libhearth.so");
  assertEquals(libraryFileName("darwin"), "libhearth.dylib");
  const x86 = cpuUnits("x86_64").map((u) => u.source);
  assert(x86.includes("ops_avx2.c") && x86.includes("ops_avx512.c") && x86.includes("ops_c.c"));
  const arm = cpuUnits("aarch64").map((u) => u.source);
  assert(!arm.some((s) => s.includes("avx")), "arm64 builds the plain path only");
  assert(arm.includes("ops_c.c"));
  for (const u of cpuUnits("x86_64")) {
    assert(u.source.endsWith(".c"));
    if (u.source === "ops_avx512.c") assert(u.flags.includes("-mavx512f"));
  }
});

Deno.test("build: deno compile embeds lib/ and honours a target", () => {
  const args = compileArgs("dist/hearth");
  assertEquals(args.slice(0, 2), ["compile", "-A"]);
  assert(args.includes("--include") && args[args.indexOf("--include") + 1] === "lib/");
  assertEquals(args.at(-1), "main.ts");
  assert(compileArgs("x", "aarch64-unknown-linux-gnu").includes("--target"));
});

Deno.test("build: the CPU library compiles into a fresh directory and exports the ABI", async () => {
  const dir = await Deno.makeTempDir({ prefix: "hearth-build-" });
  try {
    const lib = await buildCpuLibrary({ outDir: dir });
    const opened = Deno.dlopen(lib, { hearth_abi_version: { parameters: [], result: "i32" } });
    assertEquals(opened.symbols.hearth_abi_version(), 1);
    opened.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
