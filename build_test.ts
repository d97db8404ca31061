import { assert, assertEquals, assertRejects } from "./test/assert.ts";
import {
  buildCpuLibrary,
  compileArgs,
  compileBinary,
  cpuUnits,
  CUDA_ARCHS,
  CUDA_C_UNITS,
  CUDA_LIBRARY,
  CUDA_UNITS,
  cudaCommands,
  fetchedNvccPath,
  libraryFileName,
} from "./build.ts";

const ROOT = new URL(".", import.meta.url).pathname;

/** The C symbols the Deno binding opens: the keys of SYMBOLS in src/native/hearth.ts, or the `name` a
    key binds under (one function bound twice, blocking and not). */
function boundSymbols(): string[] {
  const text = Deno.readTextFileSync(`${ROOT}src/native/hearth.ts`);
  const table = text.slice(text.indexOf("const SYMBOLS = {"), text.indexOf("} as const satisfies"));
  const names = [...table.matchAll(/^ {2}(hearth_\w+): \{\s*(?:name: "(hearth_\w+)",)?/gm)].map((m) =>
    m[2] ?? m[1]
  );
  return [...new Set(names)];
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

Deno.test("build: the CUDA library's command lines (every unit, sm_80/86/89/90 + PTX, static cudart)", () => {
  const c = cudaCommands({ nvcc: "/x/nvcc", cc: "cc", outDir: "/o" });
  assertEquals(CUDA_ARCHS, ["80", "86", "89", "90"]);
  assertEquals(c.library, `/o/${CUDA_LIBRARY}`);
  assertEquals(c.compile.length, CUDA_UNITS.length + CUDA_C_UNITS.length);
  for (const [i, u] of CUDA_UNITS.entries()) {
    const a = c.compile[i].args;
    assertEquals(c.compile[i].cmd, "/x/nvcc");
    assertEquals(a.slice(-3), [`${ROOT}kernels/cuda/${u}`, "-o", `/o/obj-cuda/${u}.o`]);
    for (const arch of CUDA_ARCHS) {
      const k = a.indexOf(`arch=compute_${arch},code=sm_${arch}`);
      assert(k > 0 && a[k - 1] === "-gencode", `${u}: sm_${arch}`);
    }
    assert(a.includes("arch=compute_90,code=compute_90"), "PTX of the newest target for later GPUs");
    assert(a.includes("-O3") && a.includes("-std=c++17"));
    assert(a.includes("-fPIC,-fvisibility=hidden"), "only HEARTH_API symbols are exported");
  }
  // The CPU backend's row converters and description checks come along, compiled by the C compiler.
  assertEquals(CUDA_C_UNITS, ["quant.c", "model_desc.c", "context_check.c"]);
  for (const [i, u] of CUDA_C_UNITS.entries()) {
    const q = c.compile[CUDA_UNITS.length + i];
    assertEquals(q.cmd, "cc");
    assertEquals(q.args.slice(-3), [`${ROOT}kernels/cpu/${u}`, "-o", `/o/obj-cuda/${u}.o`]);
    assert(q.args.includes("-fvisibility=hidden"), `${u}: only HEARTH_API symbols are exported`);
  }
  const l = c.link.args;
  assertEquals(c.link.cmd, "/x/nvcc");
  assert(l.includes("-shared"));
  assertEquals(l[l.indexOf("-cudart") + 1], "static", "cudart linked statically: only the driver is needed");
  assertEquals(l[l.indexOf("-o") + 1], `/o/${CUDA_LIBRARY}.tmp`, "linked then renamed, as the CPU library");
  for (const u of [...CUDA_UNITS, ...CUDA_C_UNITS]) assert(l.includes(`/o/obj-cuda/${u}.o`));
  // A smaller target list (CI compile-checks one) changes only the -gencode pairs.
  const one = cudaCommands({ nvcc: "nvcc", cc: "cc", outDir: "/o", archs: ["80"] }).compile[0].args;
  assert(one.includes("arch=compute_80,code=sm_80") && !one.some((x) => x.includes("sm_90")));
  assert(one.includes("arch=compute_80,code=compute_80"));
});

Deno.test("build: scripts/fetch_nvcc.sh installs where build.ts looks", () => {
  const env = (n: string) => ({ HOME: "/h" } as Record<string, string>)[n];
  assertEquals(fetchedNvccPath(env), "/h/.cache/hearth/cuda-13.0.88/nvidia/cu13/bin/nvcc");
  const script = Deno.readTextFileSync(`${ROOT}scripts/fetch_nvcc.sh`);
  assert(script.includes('VERSION="${HEARTH_CUDA_WHEELS:-13.0.88}"'), "the same pinned version");
  assert(script.includes('NVCC="$DEST/nvidia/cu13/bin/nvcc"'));
});

Deno.test({
  name:
    "build: lib/libhearth_cuda.so (when built) exports every symbol the binding opens, and the CUDA probes",
  ignore: (() => {
    try {
      return !Deno.statSync(`${ROOT}lib/${CUDA_LIBRARY}`).isFile || !onPath("nm");
    } catch {
      return true;
    }
  })(),
  fn: async () => {
    const nm = await new Deno.Command("nm", {
      args: ["-D", "--defined-only", `${ROOT}lib/${CUDA_LIBRARY}`],
      stdout: "piped",
    }).output();
    assert(nm.success);
    const lines = new TextDecoder().decode(nm.stdout).split("\n").map((l) => l.trim().split(/\s+/));
    const text = new Set(lines.filter((l) => l[1] === "T").map((l) => l[2]));
    for (
      const s of [
        ...boundSymbols(),
        "hearth_cuda_device_count",
        "hearth_cuda_device_info",
        "hearth_cuda_use_device",
      ]
    ) {
      assert(text.has(s), `${s} is not exported by the CUDA library`);
    }
    for (const s of text) assert(s.startsWith("hearth_"), `${s}: only hearth_* symbols are exported`);
    // It loads without a GPU or driver, and says there is no device rather than failing.
    const lib = Deno.dlopen(`${ROOT}lib/${CUDA_LIBRARY}`, {
      hearth_cuda_device_count: { parameters: [], result: "i32" },
      hearth_abi_version: { parameters: [], result: "i32" },
    });
    assertEquals(lib.symbols.hearth_abi_version(), 1);
    assert(lib.symbols.hearth_cuda_device_count() >= 0);
    lib.close();
  },
});
