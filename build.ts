/**
 * build.ts — compiles `kernels/` into the native library in `lib/`, and with `--compile` also makes the
 * single-file `hearth` binary with `deno compile` (the library embedded).
 *
 *   deno run -A build.ts                 # lib/libhearth.so (or .dylib) for this host, and
 *                                        #   lib/libhearth_cuda.so when nvcc is found (see below)
 *   deno run -A build.ts --compile       # + dist/hearth; needs denort: set DENORT_BIN where the download
 *                                        #   server is unreachable
 *   deno run -A build.ts --debug         # -O0 -g with AddressSanitizer/UBSan off (use valgrind)
 *   deno run -A build.ts --cuda-only     # only the CUDA library (fails when nvcc is missing)
 *   deno run -A build.ts --if-possible   # never fails: builds what this machine's compilers can and
 *                                        #   keeps the libraries already in lib/ (the GPU machine's test
 *                                        #   and bench run this over the libraries carried there)
 *
 * One library serves every x86-64 CPU: the hot loops are compiled three times (plain C, AVX2, AVX-512)
 * and `ops_dispatch.c` picks one at run time. On arm64 only the plain path is built.
 *
 * The CUDA backend (kernels/cuda/, the same hearth.h symbols) is a second library, built with nvcc for
 * sm_80, sm_86, sm_89 and sm_90 (plus compute_90 PTX) with the CUDA runtime linked statically, so it
 * needs only the NVIDIA driver where it runs; the program opens it only when a CUDA device is asked for
 * or probed. nvcc is looked for in $HEARTH_NVCC, on PATH, in /usr/local/cuda/bin, and where
 * scripts/fetch_nvcc.sh installs it from PyPI; none found is not an error (a note on stderr).
 * HEARTH_CUDA=0 skips it; HEARTH_CUDA_ARCHS=80,90 picks the targets (CI compile-checks one). It is
 * rebuilt only when a source or the command line changed.
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
    "model_desc.c",
    "model.c",
    "context_check.c",
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
    // Panels of 16 rows for the VNNI and AMX tables (quant_panels512.h).
    units.push({ source: "quant_panels512.c", flags: [...avx512, "-mavx512vnni"] });
    // AMX-INT8 tiles for prefill (quant_amx.c); run only after quant_dispatch.c's runtime check.
    units.push({ source: "quant_amx.c", flags: [...avx512, "-mavx512vnni", "-mamx-tile", "-mamx-int8"] });
  }
  return units;
}

/** File name of the CUDA library. */
export const CUDA_LIBRARY = "libhearth_cuda.so";

/** The CUDA backend's translation units (kernels/cuda/). */
export const CUDA_UNITS = [
  "model.cu",
  "context.cu",
  "forward.cu",
  "kernels_misc.cu",
  "kernels_matmul.cu",
  "kernels_attention.cu",
  "sampler.cu",
  "test_ops.cu",
];

/**
 * The CPU backend's C files the CUDA library is built with too (kernels/cpu/): the row converters
 * (quantize-on-load gives the CPU's bytes), and the checks of model descriptions, context options and
 * batches (the same refusals with the same messages on either backend).
 */
export const CUDA_C_UNITS = ["quant.c", "model_desc.c", "context_check.c"];

/** GPU targets built by default: Ampere (A100, A10/RTX 30), Ada (L4/L40, RTX 40), Hopper (H100/H200). */
export const CUDA_ARCHS = ["80", "86", "89", "90"];

/** The directory scripts/fetch_nvcc.sh installs the PyPI toolkit into (keep in step with the script). */
export function fetchedNvccPath(env: (name: string) => string | undefined = (n) => Deno.env.get(n)): string {
  const cache = env("HEARTH_CACHE") ?? `${env("HOME") ?? "/tmp"}/.cache/hearth`;
  return `${cache}/cuda-${env("HEARTH_CUDA_WHEELS") ?? "13.0.88"}/nvidia/cu13/bin/nvcc`;
}

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** The nvcc to build with, or null: $HEARTH_NVCC, PATH, /usr/local/cuda/bin, the fetch_nvcc.sh cache. */
export function findNvcc(): string | null {
  const fromEnv = Deno.env.get("HEARTH_NVCC");
  if (fromEnv) return fromEnv;
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    if (dir && isFile(`${dir}/nvcc`)) return `${dir}/nvcc`;
  }
  for (const p of ["/usr/local/cuda/bin/nvcc", fetchedNvccPath()]) if (isFile(p)) return p;
  return null;
}

/** One nvcc (or cc) command of the CUDA build. */
export interface CudaCommand {
  cmd: string;
  args: string[];
}

/**
 * The commands that build the CUDA library: each .cu to an object for every target in `archs`, the CPU
 * backend's {@link CUDA_C_UNITS} with the C compiler, and the link: `nvcc -shared -cudart static`.
 * Pure: build_test.ts checks the command lines.
 */
export function cudaCommands(
  opts: { nvcc: string; cc: string; outDir: string; archs?: string[]; debug?: boolean },
): { compile: CudaCommand[]; link: CudaCommand; library: string } {
  const archs = opts.archs ?? CUDA_ARCHS;
  const obj = `${opts.outDir}/obj-cuda`;
  const gencode = archs.flatMap((a) => ["-gencode", `arch=compute_${a},code=sm_${a}`]);
  const newest = archs[archs.length - 1];
  gencode.push("-gencode", `arch=compute_${newest},code=compute_${newest}`); // PTX for later GPUs
  const nvccFlags = [
    "-std=c++17",
    "-Xcompiler",
    "-fPIC,-fvisibility=hidden",
    ...(opts.debug ? ["-O0", "-g", "-lineinfo"] : ["-O3", "-lineinfo"]),
    ...gencode,
  ];
  const compile: CudaCommand[] = CUDA_UNITS.map((u) => ({
    cmd: opts.nvcc,
    args: [...nvccFlags, "-c", `${ROOT}kernels/cuda/${u}`, "-o", `${obj}/${u}.o`],
  }));
  for (const u of CUDA_C_UNITS) {
    compile.push({
      cmd: opts.cc,
      args: [
        "-std=c11",
        "-D_GNU_SOURCE",
        "-fPIC",
        "-fvisibility=hidden",
        "-O3",
        "-c",
        `${KERNELS}/${u}`,
        "-o",
        `${obj}/${u}.o`,
      ],
    });
  }
  const library = `${opts.outDir}/${CUDA_LIBRARY}`;
  const link: CudaCommand = {
    cmd: opts.nvcc,
    args: [
      "-shared",
      "-cudart",
      "static",
      ...gencode,
      "-o",
      `${library}.tmp`,
      ...[...CUDA_UNITS, ...CUDA_C_UNITS].map((u) => `${obj}/${u}.o`),
      "-lpthread",
      "-lm",
    ],
  };
  return { compile, link, library };
}

/** Sources the CUDA library depends on (a change to any rebuilds it). */
function cudaSources(): string[] {
  const dirs = [`${ROOT}kernels/cuda`, `${ROOT}kernels/include`];
  const files = dirs.flatMap((d) => [...Deno.readDirSync(d)].map((e) => `${d}/${e.name}`));
  return [
    ...files,
    ...CUDA_C_UNITS.map((u) => `${KERNELS}/${u}`),
    `${KERNELS}/quant.h`,
    `${KERNELS}/internal.h`,
  ];
}

/**
 * Builds lib/libhearth_cuda.so when an nvcc is found (or `nvcc` is given); returns its path, or null
 * when there is no nvcc or HEARTH_CUDA=0. Up to date (sources older than the library, same commands):
 * nothing runs.
 */
export async function buildCudaLibrary(
  opts: { nvcc?: string; cc?: string; outDir?: string; archs?: string[]; debug?: boolean; quiet?: boolean } =
    {},
): Promise<string | null> {
  if (Deno.env.get("HEARTH_CUDA") === "0" && !opts.nvcc) return null;
  const nvcc = opts.nvcc ?? findNvcc();
  if (!nvcc) return null;
  const outDir = opts.outDir ?? `${ROOT}lib`;
  const archs = opts.archs ??
    Deno.env.get("HEARTH_CUDA_ARCHS")?.split(",").map((a) => a.trim()).filter(Boolean);
  const cmds = cudaCommands({
    nvcc,
    cc: opts.cc ?? Deno.env.get("CC") ?? "cc",
    outDir,
    archs,
    debug: opts.debug,
  });
  await Deno.mkdir(`${outDir}/obj-cuda`, { recursive: true });
  const stampFile = `${outDir}/obj-cuda/commands.json`;
  const stamp = JSON.stringify([cmds.compile, cmds.link]);
  try {
    const built = Deno.statSync(cmds.library).mtime!.getTime();
    const newest = Math.max(...cudaSources().map((f) => Deno.statSync(f).mtime!.getTime()));
    if (newest < built && Deno.readTextFileSync(stampFile) === stamp) return cmds.library;
  } catch { /* not built yet */ }
  // A few nvcc processes at once: each is single-threaded and the big units take a while.
  const queue = [...cmds.compile];
  const workers = Math.max(1, Math.min(8, navigator.hardwareConcurrency ?? 2));
  await Promise.all(
    Array.from({ length: workers }, async () => {
      for (let c = queue.shift(); c; c = queue.shift()) await run(c.cmd, c.args);
    }),
  );
  await run(cmds.link.cmd, cmds.link.args);
  await Deno.rename(`${cmds.library}.tmp`, cmds.library);
  await Deno.writeTextFile(stampFile, stamp);
  return cmds.library;
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
      "cuda-only": { type: "boolean", default: false },
      "if-possible": { type: "boolean", default: false },
    },
  });
  const lenient = values["if-possible"];
  const t0 = performance.now();
  if (!values["cuda-only"]) {
    try {
      const lib = await buildCpuLibrary({ debug: values.debug });
      console.error(`built ${lib} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    } catch (e) {
      if (!lenient) throw e;
      console.error(
        `note: CPU library not rebuilt (${(e as Error).message}); keeping lib/${libraryFileName()}`,
      );
    }
  }
  const t1 = performance.now();
  try {
    const cuda = await buildCudaLibrary({ debug: values.debug });
    if (cuda) console.error(`CUDA library ${cuda} (${((performance.now() - t1) / 1000).toFixed(1)} s)`);
    else if (values["cuda-only"]) throw new Error("no nvcc found (bash scripts/fetch_nvcc.sh installs one)");
    else if (Deno.env.get("HEARTH_CUDA") !== "0") {
      console.error("note: no nvcc found, CUDA backend not built (bash scripts/fetch_nvcc.sh installs one)");
    }
  } catch (e) {
    console.error(`CUDA build failed: ${(e as Error).message}`);
    if (!lenient) Deno.exit(1);
    console.error(`note: keeping lib/${CUDA_LIBRARY} as it is`);
  }
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
