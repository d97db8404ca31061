import { assert, assertEquals, assertRejects } from "./test/assert.ts";
import { buildCpuLibrary, compileArgs, compileBinary, cpuUnits, libraryFileName } from "./build.ts";

const ROOT = new URL(".", import.meta.url).pathname;

/** The C symbols the Deno binding opens: the keys of SYMBOLS in src/native/hearth.ts. */
function boundSymbols(): string[] {
  const text = Deno.readTextFileSync(`${ROOT}src/native/hearth.ts`);
  const table = text.slice(text.indexOf("const SYMBOLS = {"), text.indexOf("} as const satisfies"));
  return [...table.matchAll(/^ {2}(hearth_\w+): \{/gm)].map((m) => m[1]);
}

function onPath(command: string): boolean {
  try {
    return new Deno.Command("sh", { args: ["-c", `command -v ${command}`], stdout: "null" }).outputSync()
      .success;
  } catch {
    return false;
  }
}

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

// The plain-C path is what an arm64 machine builds: no AVX source is compiled, nothing x86 is needed.
// Shown with a cross compiler where one is installed (apt-get install gcc-aarch64-linux-gnu).
const CROSS_CC = "aarch64-linux-gnu-gcc";
Deno.test({
  name: "build: the plain-C library cross-compiles for arm64 and exports every symbol the binding opens",
  ignore: !onPath(CROSS_CC),
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "hearth-build-arm64-" });
    try {
      const lib = await buildCpuLibrary({ outDir: dir, arch: "aarch64", cc: CROSS_CC });
      const objects = [...Deno.readDirSync(`${dir}/obj`)].map((e) => e.name).sort();
      assertEquals(objects, cpuUnits("aarch64").map((u) => `${u.source}.o`).sort());
      const elf = await Deno.readFile(lib);
      assertEquals([...elf.subarray(0, 4)], [0x7f, 0x45, 0x4c, 0x46], "an ELF file");
      const machine = new DataView(elf.buffer).getUint16(18, true);
      assertEquals(machine, 183, "e_machine EM_AARCH64");
      const nm = await new Deno.Command("aarch64-linux-gnu-nm", {
        args: ["-D", "--defined-only", lib],
        stdout: "piped",
      }).output();
      assert(nm.success);
      const exported = new Set(
        new TextDecoder().decode(nm.stdout).split("\n").map((l) => l.trim().split(/\s+/).at(-1)),
      );
      const wanted = boundSymbols();
      assert(wanted.length >= 10 && wanted.includes("hearth_step"), `read ${wanted}`);
      for (const s of wanted) assert(exported.has(s), `${s} is not exported by the arm64 build`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "build: --compile takes deno's runtime from DENORT_BIN and embeds lib/",
  // Needs the library built in lib/ (deno task test builds it first).
  ignore: (() => {
    try {
      return !Deno.statSync(`${ROOT}lib/${libraryFileName()}`).isFile;
    } catch {
      return true;
    }
  })(),
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "hearth-compile-" });
    try {
      const missing = `${dir}/no-such-denort`;
      const e = await assertRejects(
        () => compileBinary(`${dir}/a`, { env: { DENORT_BIN: missing }, quiet: true }),
        Error,
        missing,
      );
      assert(/could not find denort/i.test(e.message), e.message);
      // Any executable named there is the base the program is appended to; this deno will do.
      await compileBinary(`${dir}/b`, { env: { DENORT_BIN: Deno.execPath() }, quiet: true });
      const size = (await Deno.stat(`${dir}/b`)).size;
      const base = (await Deno.stat(Deno.execPath())).size;
      const lib = (await Deno.stat(`${ROOT}lib/${libraryFileName()}`)).size;
      assert(size > base + lib, `${size} bytes: the runtime (${base}) plus the embedded library (${lib})`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
