/**
 * build.ts — compiles `kernels/` into the native library in `lib/`, and with `--compile` also makes the
 * single-file `hearth` binary with `deno compile` (the library embedded).
 *
 *   deno run -A build.ts                 # lib/libhearth.so (or .dylib) for this host
 *   deno run -A build.ts --compile       # + dist/hearth; needs denort: set DENORT_BIN where the download
 *                                        #   server is unreachable
 *   deno run -A build.ts --debug         # -O0 -g with AddressSanitizer/UBSan off (use valgrind)
 *
 * One library serves every x86-64 CPU: the hot loops are compiled three times (plain C, AVX2, AVX-512)
 * and `ops_dispatch.c` picks one at run time. On arm64 only the plain path is built.
 *
 * @module
 */
import { parseArgs } from "node:util";

const ROOT = new URL(".", import.meta.url).pathname;
const KERNELS = `${ROOT}kernels/cpu`;

/** File name of the CPU library on this OS. */
export function libraryFileName(os: string = Deno.build.os): string {
  return os === "darwin" ? "libhearth.dylib" : os === "windows" ? "hearth.dll" : "libhearth.so";
}

/** One compile step: source file and the extra flags its instruction set needs. */
export interface CompileUnit {
  source: string;
  flags: string[];
}

/** The translation units of the CPU library for an architecture. */
export function cpuUnits(arch: string = Deno.build.arch): CompileUnit[] {
  const common = [
    "common.c",
    "threadpool.c",
    "model.c",
    "context.c",
    "forward_llama.c",
    "sampler.c",
    "ops_c.c",
    "ops_dispatch.c",
    "quant.c",
    "quant_dispatch.c",
  ];
  const units: CompileUnit[] = common.map((source) => ({ source, flags: [] }));
  if (arch === "x86_64") {
    units.push({ source: "ops_avx2.c", flags: ["-mavx2", "-mfma", "-mf16c"] });
    units.push({
      source: "ops_avx512.c",
      flags: ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mfma", "-mf16c"],
    });
    // Quantized dot products (quant_simd.inc): AVX2, AVX-512BW, and AVX-512 with VNNI.
    const avx512 = ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mavx2", "-mfma", "-mf16c"];
    units.push({ source: "quant_avx2.c", flags: ["-mavx2", "-mfma", "-mf16c"] });
    units.push({ source: "quant_avx512.c", flags: avx512 });
    units.push({ source: "quant_avx512vnni.c", flags: [...avx512, "-mavx512vnni"] });
    // AMX-INT8 tiles for prefill (quant_amx.c); run only after quant_dispatch.c's runtime check.
    units.push({ source: "quant_amx.c", flags: [...avx512, "-mavx512vnni", "-mamx-tile", "-mamx-int8"] });
  }
  return units;
}

async function run(cmd: string, args: string[]): Promise<void> {
  const out = await new Deno.Command(cmd, { args, stdout: "inherit", stderr: "inherit" }).output();
  if (!out.success) throw new Error(`${cmd} ${args.join(" ")} failed with exit code ${out.code}`);
}

/** Options of {@link buildCpuLibrary}. */
export interface BuildOptions {
  /** -O0 -g instead of -O3. */
  debug?: boolean;
  /** Where the library (and obj/) go; default lib/ beside this file. */
  outDir?: string;
  /**
   * The CPU to build for, as Deno.build.arch spells it (default: this host's). With a cross compiler
   * in `cc`, `aarch64` builds the plain-C library an arm64 machine would (build_test.ts does this).
   */
  arch?: string;
  /** The C compiler; default $CC, else `cc`. */
  cc?: string;
}

/** Compiles and links the CPU library; returns its path. */
export async function buildCpuLibrary(opts: BuildOptions = {}): Promise<string> {
  const cc = opts.cc ?? Deno.env.get("CC") ?? "cc";
  const outDir = opts.outDir ?? `${ROOT}lib`;
  const objDir = `${outDir}/obj`;
  await Deno.mkdir(objDir, { recursive: true });
  const base = [
    "-std=c11",
    "-D_GNU_SOURCE",
    "-fPIC",
    "-fvisibility=hidden",
    "-pthread",
    "-Wall",
    "-Wextra",
    "-Wno-unused-parameter",
    ...(opts.debug ? ["-O0", "-g"] : ["-O3", "-g1"]),
  ];
  const units = cpuUnits(opts.arch);
  await Promise.all(
    units.map((u) =>
      run(cc, [...base, ...u.flags, "-c", `${KERNELS}/${u.source}`, "-o", `${objDir}/${u.source}.o`])
    ),
  );
  const lib = `${outDir}/${libraryFileName()}`;
  const tmp = `${lib}.tmp`; // link then rename: a running server keeps its mapping of the old file
  await run(cc, ["-shared", "-pthread", "-o", tmp, ...units.map((u) => `${objDir}/${u.source}.o`), "-lm"]);
  await Deno.rename(tmp, lib);
  return lib;
}

/** `deno compile` arguments for the single binary, with the native library embedded. */
export function compileArgs(outFile: string, target?: string): string[] {
  return [
    "compile",
    "-A",
    "--include",
    "lib/",
    ...(target ? ["--target", target] : []),
    "--output",
    outFile,
    "main.ts",
  ];
}

/**
 * Runs `deno compile` (see {@link compileArgs}) from the repository root. `deno compile` takes its
 * runtime from $DENORT_BIN when that is set (from this process's environment, or from `env`), which
 * is how a machine that cannot reach the download server builds the binary. Output is passed through
 * (unless `quiet`); on failure the error carries what deno printed.
 */
export async function compileBinary(
  outFile: string,
  opts: { target?: string; env?: Record<string, string>; quiet?: boolean } = {},
): Promise<void> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: compileArgs(outFile, opts.target),
    cwd: ROOT,
    env: { NO_COLOR: "1", ...opts.env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (!opts.quiet) await Deno.stderr.write(new TextEncoder().encode(text));
  if (!out.success) throw new Error(`deno compile failed with exit code ${out.code}:\n${text.trim()}`);
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      compile: { type: "boolean", default: false },
      debug: { type: "boolean", default: false },
      output: { type: "string", default: "dist/hearth" },
    },
  });
  const t0 = performance.now();
  const lib = await buildCpuLibrary({ debug: values.debug });
  console.error(`built ${lib} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  if (values.compile) {
    if (!Deno.env.get("DENORT_BIN")) {
      console.error("note: DENORT_BIN is not set; deno compile will try to download denort");
    }
    try {
      await compileBinary(values.output);
    } catch (e) {
      console.error((e as Error).message.split("\n")[0]);
      Deno.exit(1);
    }
    console.error(`wrote ${values.output}`);
  }
}
