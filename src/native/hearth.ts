/**
 * The Deno.dlopen binding of the native libraries: the one file that knows the C symbols and struct
 * layouts of kernels/include/hearth.h. Everything above it speaks {@link NativeModel},
 * {@link NativeContext} and {@link StepBatch}.
 *
 * Two libraries implement the same symbols: lib/libhearth.so (the CPU backend) and
 * lib/libhearth_cuda.so (the CUDA backend, which adds the `hearth_cuda_*` device probes). The CUDA one is
 * opened only when a CUDA device is asked for or probed ({@link cudaDevices}), so a CPU-only machine
 * never needs CUDA.
 *
 * @module
 */
import {
  DTYPE_CODE,
  type ModelConfig,
  type ModelDescription,
  TensorRole,
  type WeightDType,
} from "../model/description.ts";
import { CUDA_LIBRARY, libraryFileName } from "../../build.ts";
import type { Device } from "./device.ts";

const ERR_LEN = 2048;

const SYMBOLS = {
  hearth_abi_version: { parameters: [], result: "i32" },
  hearth_cpu_isa: { parameters: [], result: "pointer" },
  hearth_model_new: { parameters: ["buffer", "buffer", "buffer", "usize"], result: "pointer" },
  hearth_model_map_file: { parameters: ["pointer", "buffer", "buffer", "usize"], result: "i32" },
  hearth_model_set_tensor: {
    parameters: [
      "pointer",
      "buffer",
      "i32",
      "i32",
      "i32",
      "u64",
      "u64",
      "i32",
      "i32",
      "buffer",
      "buffer",
      "usize",
    ],
    result: "i32",
  },
  hearth_model_set_in_memory: { parameters: ["pointer", "i32", "buffer", "usize"], result: "i32" },
  // Converting dtypes touches every weight: off the event loop.
  hearth_model_finish: {
    parameters: ["pointer", "i32", "buffer", "usize"],
    result: "i32",
    nonblocking: true,
  },
  hearth_model_owned_bytes: { parameters: ["pointer"], result: "u64" },
  hearth_model_mapped_bytes: { parameters: ["pointer"], result: "u64" },
  hearth_model_free: { parameters: ["pointer"], result: "void" },
  hearth_context_new: { parameters: ["pointer", "buffer", "buffer", "usize"], result: "pointer" },
  hearth_context_kv_bytes: { parameters: ["pointer"], result: "u64" },
  hearth_step: { parameters: ["pointer", "buffer", "buffer", "usize"], result: "i32", nonblocking: true },
  // A step in two halves on the JS thread (NativeContext.stepBegin / stepJoin): the event loop turns between.
  hearth_step_begin: { parameters: ["pointer", "buffer", "buffer", "usize"], result: "i32" },
  hearth_step_join: { parameters: ["pointer"], result: "i32" },
  hearth_context_free: { parameters: ["pointer"], result: "void" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The CUDA library's own exports (kernels/cuda/model.cu), on top of {@link SYMBOLS}. */
const CUDA_SYMBOLS = {
  ...SYMBOLS,
  hearth_cuda_device_count: { parameters: [], result: "i32" },
  hearth_cuda_device_info: {
    parameters: ["i32", "buffer", "usize", "buffer", "buffer", "usize"],
    result: "i32",
  },
  hearth_cuda_use_device: { parameters: ["i32", "buffer", "usize"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

/** ABI version this binding was written for (HEARTH_ABI_VERSION). */
export const ABI_VERSION = 1;

/** Size of hearth_sampling and of hearth_batch in bytes. */
export const SAMPLING_BYTES = 80;
export const BATCH_BYTES = 144;
/** HEARTH_MAX_TOP_LOGPROBS */
export const MAX_TOP_LOGPROBS = 20;

/** An error reported by the native library. */
export class NativeError extends Error {
  constructor(message: string, readonly status: number) {
    super(message);
    this.name = "NativeError";
  }
}

type Lib = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];
type CudaLib = Deno.DynamicLibrary<typeof CUDA_SYMBOLS>["symbols"];
let lib: Lib | null = null;
let cudaLib: CudaLib | null = null;
let cudaLoadError: string | null = null;

/** The backends a library exists for. */
export type Backend = "cpu" | "cuda";

/**
 * Where a backend's library is: $HEARTH_LIB (CPU) or $HEARTH_CUDA_LIB (CUDA), else lib/ beside the
 * sources. Inside a `deno compile` binary the embedded copy is written out to a cache file first, since
 * dlopen needs a real file.
 */
async function libraryPath(backend: Backend): Promise<string> {
  const fromEnv = Deno.env.get(backend === "cpu" ? "HEARTH_LIB" : "HEARTH_CUDA_LIB");
  if (fromEnv) return fromEnv;
  const name = backend === "cpu" ? libraryFileName() : CUDA_LIBRARY;
  const path = new URL(`../../lib/${name}`, import.meta.url).pathname;
  if (!import.meta.url.includes("/deno-compile-")) return path;
  const bytes = await Deno.readFile(path);
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  const tag = Array.from(digest.slice(0, 8), (b) => b.toString(16).padStart(2, "0")).join("");
  const home = Deno.env.get("XDG_CACHE_HOME") ?? `${Deno.env.get("HOME") ?? "/tmp"}/.cache`;
  const dir = `${home}/hearth/lib`;
  const out = `${dir}/${tag}-${name}`;
  try {
    await Deno.stat(out);
  } catch {
    await Deno.mkdir(dir, { recursive: true });
    await Deno.writeFile(`${out}.tmp`, bytes);
    await Deno.rename(`${out}.tmp`, out);
  }
  return out;
}

function openChecked<S extends Deno.ForeignLibraryInterface>(
  path: string,
  symbols: S,
  hint: string,
): Deno.DynamicLibrary<S> {
  let opened: Deno.DynamicLibrary<S>;
  try {
    opened = Deno.dlopen(path, symbols);
  } catch (e) {
    throw new Error(`cannot load the native library ${path}: ${(e as Error).message}. ${hint}`);
  }
  const abi = (opened.symbols as unknown as Lib).hearth_abi_version();
  if (abi !== ABI_VERSION) {
    opened.close();
    throw new Error(`native library ${path} has ABI ${abi}, this program needs ${ABI_VERSION}: rebuild it`);
  }
  return opened;
}

/** Opens the CPU library once. Fails with a message that says how to build it. */
export async function openLibrary(): Promise<Lib> {
  if (lib) return lib;
  const path = await libraryPath("cpu");
  lib = openChecked(path, SYMBOLS, "Build it with `deno task build`.").symbols;
  return lib;
}

/** Opens the CUDA library once (its failure is remembered: {@link cudaUnavailableReason}). */
export async function openCudaLibrary(): Promise<CudaLib> {
  if (cudaLib) return cudaLib;
  if (cudaLoadError) throw new Error(cudaLoadError);
  try {
    const path = await libraryPath("cuda");
    cudaLib = openChecked(
      path,
      CUDA_SYMBOLS,
      "Build it with `deno task build` on a machine with nvcc (bash scripts/fetch_nvcc.sh installs one).",
    ).symbols;
  } catch (e) {
    cudaLoadError = (e as Error).message;
    throw e;
  }
  return cudaLib;
}

/** The library of a backend. */
export function openBackend(backend: Backend): Promise<Lib> {
  return backend === "cpu" ? openLibrary() : openCudaLibrary();
}

/** The instruction set the CPU kernels use ("avx512", "avx2" or "c"). */
export async function cpuIsa(): Promise<string> {
  const l = await openLibrary();
  return Deno.UnsafePointerView.getCString(l.hearth_cpu_isa()!);
}

/** What the CUDA library reports about one device. */
export interface CudaDeviceInfo {
  index: number;
  name: string;
  totalBytes: number;
  freeBytes: number;
  /** Compute capability, e.g. 9.0 as [9, 0]. */
  capability: [number, number];
  multiprocessors: number;
  memoryBusBits: number;
  memoryClockKhz: number;
  l2Bytes: number;
  /** bf16 tensor cores: compute capability 8.0 and up. */
  bf16: boolean;
}

/**
 * The CUDA devices the driver shows, through lib/libhearth_cuda.so; [] when the library is not built or
 * cannot load, or there is no driver or device ({@link cudaUnavailableReason} says which).
 */
export async function cudaDevices(): Promise<CudaDeviceInfo[]> {
  let l: CudaLib;
  try {
    l = await openCudaLibrary();
  } catch {
    return [];
  }
  const n = l.hearth_cuda_device_count();
  const out: CudaDeviceInfo[] = [];
  for (let i = 0; i < n; i++) {
    const name = new Uint8Array(256), info = new BigInt64Array(8), err = new Uint8Array(ERR_LEN);
    const rc = l.hearth_cuda_device_info(i, name, 256n, new Uint8Array(info.buffer), err, BigInt(ERR_LEN));
    if (rc < 0) continue;
    const v = Array.from(info, Number);
    out.push({
      index: i,
      name: errorText(name),
      totalBytes: v[0],
      freeBytes: v[1],
      capability: [v[2], v[3]],
      multiprocessors: v[4],
      memoryBusBits: v[5],
      memoryClockKhz: v[6],
      l2Bytes: v[7],
      bf16: v[2] >= 8,
    });
  }
  return out;
}

/** Why no CUDA device is usable: the library's load error, or "no CUDA device"; null when one is. */
export async function cudaUnavailableReason(): Promise<string | null> {
  if ((await cudaDevices()).length > 0) return null;
  if (cudaLoadError) return cudaLoadError;
  return "the CUDA library loaded, but the driver shows no CUDA device";
}

const encoder = new TextEncoder();
function cString(s: string): Uint8Array<ArrayBuffer> {
  const bytes = encoder.encode(s + "\0");
  return bytes as Uint8Array<ArrayBuffer>;
}

function errorText(buf: Uint8Array): string {
  const end = buf.indexOf(0);
  return new TextDecoder().decode(buf.subarray(0, end < 0 ? buf.length : end));
}

/** Encodes hearth_model_config (64 bytes). */
export function encodeModelConfig(c: ModelConfig): Uint8Array<ArrayBuffer> {
  const buf = new ArrayBuffer(64);
  const v = new DataView(buf);
  const ints = [
    c.dim,
    c.hiddenDim,
    c.nLayers,
    c.nHeads,
    c.nKvHeads,
    c.headDim,
    c.vocabSize,
    c.maxSeqLen,
    c.slidingWindow,
  ];
  ints.forEach((x, i) => v.setInt32(i * 4, x, true));
  const flags = (c.qkvBias ? 1 : 0) | (c.qkNorm ? 2 : 0) | (c.tiedEmbeddings ? 4 : 0);
  v.setInt32(36, flags, true);
  v.setInt32(40, c.ropeStyle === "interleaved" ? 1 : 0, true);
  v.setFloat32(44, c.normEps, true);
  v.setFloat32(48, c.attnScale, true);
  v.setFloat32(52, c.ropeAttnFactor, true);
  return new Uint8Array(buf);
}

/** A model living in native memory (host or device). Free it with {@link NativeModel.free}. */
export class NativeModel {
  #ptr: Deno.PointerValue;
  readonly #lib: Lib;
  private constructor(
    ptr: Deno.PointerValue,
    lib: Lib,
    readonly config: ModelConfig,
    readonly dtype: WeightDType,
    readonly device: Device,
  ) {
    this.#ptr = ptr;
    this.#lib = lib;
  }

  /** The library this model lives in, for {@link NativeContext}. */
  get library(): Lib {
    return this.#lib;
  }

  /** The raw pointer, for {@link NativeContext}. */
  get pointer(): Deno.PointerValue {
    if (!this.#ptr) throw new Error("model was freed");
    return this.#ptr;
  }

  /**
   * Builds the native model from a description: maps the files, records every tensor, converts to
   * `dtype` (or keeps the stored dtypes for "auto"), on `device` (default the CPU; a CUDA device gets
   * the weights uploaded once). With `inMemory`, weights used as stored are copied into the model's own
   * memory (huge pages) instead of read from the mapped files. On failure nothing stays allocated.
   */
  static async load(
    desc: ModelDescription,
    dtype: WeightDType | "auto",
    device: Device = { kind: "cpu" },
    options: { inMemory?: boolean } = {},
  ): Promise<NativeModel> {
    const l = await openBackend(device.kind);
    const err = new Uint8Array(ERR_LEN);
    if (device.kind === "cuda") {
      const rc = (l as CudaLib).hearth_cuda_use_device(device.index, err, BigInt(ERR_LEN));
      if (rc < 0) throw new NativeError(errorText(err), rc);
    }
    const invFreq = new Float32Array(desc.config.ropeInvFreq);
    const ptr = l.hearth_model_new(
      encodeModelConfig(desc.config),
      new Uint8Array(invFreq.buffer),
      err,
      BigInt(ERR_LEN),
    );
    if (!ptr) throw new NativeError(errorText(err), -1);
    try {
      for (const file of desc.files) {
        const rc = l.hearth_model_map_file(ptr, cString(file), err, BigInt(ERR_LEN));
        if (rc < 0) throw new NativeError(errorText(err), rc);
      }
      for (const t of desc.tensors) {
        const dims = new BigInt64Array(t.shape.map(BigInt));
        const rc = l.hearth_model_set_tensor(
          ptr,
          cString(t.name),
          TensorRole[t.role],
          t.layer,
          t.file,
          BigInt(t.offset),
          BigInt(t.nbytes),
          DTYPE_CODE[t.dtype],
          t.shape.length,
          new Uint8Array(dims.buffer),
          err,
          BigInt(ERR_LEN),
        );
        if (rc < 0) throw new NativeError(`${desc.files[t.file]}: ${errorText(err)}`, rc);
      }
      if (options.inMemory) {
        const rc = l.hearth_model_set_in_memory(ptr, 1, err, BigInt(ERR_LEN));
        if (rc < 0) throw new NativeError(errorText(err), rc);
      }
      const rc = await l.hearth_model_finish(
        ptr,
        dtype === "auto" ? -1 : DTYPE_CODE[dtype],
        err,
        BigInt(ERR_LEN),
      );
      if (rc < 0) throw new NativeError(errorText(err), rc);
    } catch (e) {
      l.hearth_model_free(ptr);
      throw e;
    }
    return new NativeModel(ptr, l, desc.config, dtype === "auto" ? desc.storedDtype : dtype, device);
  }

  /** Bytes of weights converted into the model's own memory (on a CUDA device: all of them, there). */
  ownedBytes(): number {
    return Number(this.#lib.hearth_model_owned_bytes(this.pointer));
  }

  /** Bytes of the mapped files. */
  mappedBytes(): number {
    return Number(this.#lib.hearth_model_mapped_bytes(this.pointer));
  }

  free(): void {
    if (this.#ptr) this.#lib.hearth_model_free(this.#ptr);
    this.#ptr = null;
  }
}

/** Options of a native context (hearth_context_options). */
/** Element type of the KV cache: float32, or float16 (half the memory and half the bytes a decode reads). */
export type KvCacheDType = "float32" | "float16";

/** Bytes per KV cache element of each type. */
export const KV_CACHE_ELEMENT_BYTES: Readonly<Record<KvCacheDType, number>> = { float32: 4, float16: 2 };

export interface ContextOptions {
  threads: number;
  kvBlockSize: number;
  kvNumBlocks: number;
  maxBatchTokens: number;
  maxBatchSeqs: number;
  maxBlocksPerSeq: number;
  /** KV cache element type (default float32). */
  kvDtype?: KvCacheDType;
}

/** A KV cache plus scratch plus threads on a model; runs {@link StepBatch}es. */
export class NativeContext {
  #ptr: Deno.PointerValue;
  #busy = false;
  /** The batch of a step begun and not yet joined (kept alive: the native side reads its arrays). */
  #inFlight: StepBatch | null = null;
  private constructor(ptr: Deno.PointerValue, readonly model: NativeModel, readonly options: ContextOptions) {
    this.#ptr = ptr;
  }

  static create(model: NativeModel, o: ContextOptions): Promise<NativeContext> {
    const l = model.library;
    const buf = new Int32Array(8);
    // An unknown name goes to the library as -1, which refuses it with the accepted values.
    const kvDtype = o.kvDtype === undefined || o.kvDtype === "float32"
      ? DTYPE_CODE.f32
      : o.kvDtype === "float16"
      ? DTYPE_CODE.f16
      : -1;
    buf.set([
      o.threads,
      o.kvBlockSize,
      o.kvNumBlocks,
      o.maxBatchTokens,
      o.maxBatchSeqs,
      o.maxBlocksPerSeq,
      kvDtype,
    ]);
    const err = new Uint8Array(ERR_LEN);
    const ptr = l.hearth_context_new(model.pointer, new Uint8Array(buf.buffer), err, BigInt(ERR_LEN));
    if (!ptr) return Promise.reject(new NativeError(errorText(err), -1));
    return Promise.resolve(new NativeContext(ptr, model, o));
  }

  /** Bytes of the KV cache. */
  kvBytes(): number {
    return Number(this.model.library.hearth_context_kv_bytes(this.#ptr));
  }

  /** Runs one forward step on a worker thread; outputs land in the batch's out arrays. */
  async step(batch: StepBatch): Promise<void> {
    const ptr = this.#begin();
    try {
      const err = batch.errorBuffer;
      this.#check(await this.model.library.hearth_step(ptr, batch.encode(), err, BigInt(err.length)), err);
    } finally {
      this.#busy = false;
    }
  }

  /**
   * Runs one forward step, blocking this thread until it ends ({@link stepBegin} then {@link stepJoin},
   * with nothing in between): faster than {@link step} for a short step (no hand-over to a worker thread
   * and back; why: src/engine/step_placement.ts).
   */
  stepSync(batch: StepBatch): void {
    this.stepBegin(batch);
    this.stepJoin();
  }

  /**
   * Starts one forward step on the context's threads and returns at once, so that this thread can do
   * other work (the engine lets the event loop turn) while it runs; {@link stepJoin} then helps finish it
   * and returns when it is done. The batch must not change in between. On the CPU this thread is one of
   * the step's threads: until the join, the step has one fewer (never more threads than it was given).
   */
  stepBegin(batch: StepBatch): void {
    const ptr = this.#begin();
    const err = batch.errorBuffer;
    const rc = this.model.library.hearth_step_begin(ptr, batch.encode(), err, BigInt(err.length));
    if (rc < 0) {
      this.#busy = false;
      throw new NativeError(errorText(err), rc);
    }
    this.#inFlight = batch;
  }

  /** Works on the step {@link stepBegin} started until it is done; throws its error, as step would. */
  stepJoin(): void {
    const batch = this.#inFlight;
    if (!batch || !this.#ptr) throw new Error("no step is in flight on this context");
    this.#inFlight = null;
    try {
      this.#check(this.model.library.hearth_step_join(this.#ptr), batch.errorBuffer);
    } finally {
      this.#busy = false;
    }
  }

  #begin(): Deno.PointerValue {
    if (!this.#ptr) throw new Error("context was freed");
    if (this.#busy) throw new Error("a step is already running on this context");
    this.#busy = true;
    return this.#ptr;
  }

  #check(rc: number, err: Uint8Array): void {
    if (rc < 0) throw new NativeError(errorText(err), rc);
  }

  free(): void {
    if (this.#inFlight) this.stepJoin(); // its threads must be done with the batch first
    if (this.#busy) throw new Error("cannot free a context while a step runs");
    if (this.#ptr) this.model.library.hearth_context_free(this.#ptr);
    this.#ptr = null;
  }
}

/** Per-sequence sampling fields of hearth_sampling, in TypeScript names. */
export interface SequenceSampling {
  seed: bigint;
  temperature: number;
  topP: number;
  topK: number;
  minP: number;
  repetitionPenalty: number;
  presencePenalty: number;
  frequencyPenalty: number;
  noRepeatNgramSize: number;
  minTokens: number;
  nTopLogprobs: number;
  /** Report the sampled token's log-probability. */
  wantLogprob: boolean;
  /** The sequence's tokens so far (prompt then output), for penalties; only read when it samples. */
  history: ArrayLike<number>;
  promptLen: number;
  biasIds: ArrayLike<number>;
  biasValues: ArrayLike<number>;
  stopIds: ArrayLike<number>;
}

/** A sequence's sampling with every processor off and greedy picks (temperature 0), then `overrides`. */
export function sequenceSampling(overrides: Partial<SequenceSampling> = {}): SequenceSampling {
  return {
    seed: 0n,
    temperature: 0,
    topP: 1,
    topK: 0,
    minP: 0,
    repetitionPenalty: 1,
    presencePenalty: 0,
    frequencyPenalty: 0,
    noRepeatNgramSize: 0,
    minTokens: 0,
    nTopLogprobs: 0,
    wantLogprob: false,
    history: [],
    promptLen: 0,
    biasIds: [],
    biasValues: [],
    stopIds: [],
    ...overrides,
  };
}

/** hearth_batch.logits_mode */
export const LogitsMode = { none: 0, last: 1, all: 2 } as const;

function ptr(a: ArrayBufferView): bigint {
  return BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(a as Uint8Array<ArrayBuffer>)));
}

/**
 * A reusable batch: typed arrays sized for the context's limits, filled by {@link StepBatch.addSequence}
 * and read back after {@link NativeContext.step}.
 */
export class StepBatch {
  readonly tokens: Int32Array<ArrayBuffer>;
  readonly positions: Int32Array<ArrayBuffer>;
  readonly seqStart: Int32Array<ArrayBuffer>;
  readonly blockTables: Int32Array<ArrayBuffer>;
  readonly sample: Int32Array<ArrayBuffer>;
  readonly sampling: DataView<ArrayBuffer>;
  readonly outTokens: Int32Array<ArrayBuffer>;
  readonly outLogprobs: Float32Array<ArrayBuffer>;
  readonly outTopIds: Int32Array<ArrayBuffer>;
  readonly outTopLogprobs: Float32Array<ArrayBuffer>;
  readonly errorBuffer = new Uint8Array(ERR_LEN);
  /** Raw logits (rows, vocab) as logitsMode says, after a step. */
  outLogits: Float32Array<ArrayBuffer> | null = null;
  logitsMode: number = LogitsMode.none;
  nTokens = 0;
  nSeqs = 0;
  #history: Int32Array<ArrayBuffer> = new Int32Array(4096);
  #nHistory = 0;
  #biasIds: Int32Array<ArrayBuffer> = new Int32Array(64);
  #biasValues: Float32Array<ArrayBuffer> = new Float32Array(64);
  #nBias = 0;
  #stopIds: Int32Array<ArrayBuffer> = new Int32Array(64);
  #nStop = 0;
  #struct = new DataView(new ArrayBuffer(BATCH_BYTES));
  readonly #structBytes = new Uint8Array(this.#struct.buffer);
  /** The array whose pointer each pointer slot of #struct holds (null: 0 is written there). */
  readonly #encoded: (ArrayBufferView | null | undefined)[] = new Array(15).fill(undefined);

  constructor(readonly options: ContextOptions, readonly vocabSize: number) {
    this.tokens = new Int32Array(options.maxBatchTokens);
    this.positions = new Int32Array(options.maxBatchTokens);
    this.seqStart = new Int32Array(options.maxBatchSeqs + 1);
    this.blockTables = new Int32Array(options.maxBatchSeqs * options.maxBlocksPerSeq);
    this.sample = new Int32Array(options.maxBatchSeqs);
    this.sampling = new DataView(new ArrayBuffer(options.maxBatchSeqs * SAMPLING_BYTES));
    this.outTokens = new Int32Array(options.maxBatchSeqs);
    this.outLogprobs = new Float32Array(options.maxBatchSeqs);
    this.outTopIds = new Int32Array(options.maxBatchSeqs * MAX_TOP_LOGPROBS);
    this.outTopLogprobs = new Float32Array(options.maxBatchSeqs * MAX_TOP_LOGPROBS);
  }

  /** Empties the batch for the next step. */
  clear(logitsMode: number = LogitsMode.none): void {
    this.nTokens = 0;
    this.nSeqs = 0;
    this.#nHistory = 0;
    this.#nBias = 0;
    this.#nStop = 0;
    this.logitsMode = logitsMode;
  }

  /** Room left for tokens and sequences. */
  get freeTokens(): number {
    return this.options.maxBatchTokens - this.nTokens;
  }
  get freeSeqs(): number {
    return this.options.maxBatchSeqs - this.nSeqs;
  }

  /**
   * Adds a sequence's new tokens at consecutive positions from `firstPosition`, its KV block table, and,
   * when `sampling` is given, asks for a token after its last position. Returns the sequence's index.
   */
  addSequence(
    tokens: ArrayLike<number>,
    firstPosition: number,
    blockTable: ArrayLike<number>,
    sampling: SequenceSampling | null,
  ): number {
    const s = this.nSeqs;
    if (s >= this.options.maxBatchSeqs) throw new Error("batch is full (sequences)");
    if (this.nTokens + tokens.length > this.options.maxBatchTokens) throw new Error("batch is full (tokens)");
    if (blockTable.length > this.options.maxBlocksPerSeq) {
      throw new Error("block table longer than maxBlocksPerSeq");
    }
    this.seqStart[s] = this.nTokens;
    for (let i = 0; i < tokens.length; i++) {
      this.tokens[this.nTokens + i] = tokens[i];
      this.positions[this.nTokens + i] = firstPosition + i;
    }
    this.nTokens += tokens.length;
    this.seqStart[s + 1] = this.nTokens;
    const stride = this.options.maxBlocksPerSeq;
    for (let i = 0; i < blockTable.length; i++) this.blockTables[s * stride + i] = blockTable[i];
    this.sample[s] = sampling ? 1 : 0;
    if (sampling) this.#writeSampling(s, sampling);
    this.nSeqs++;
    return s;
  }

  #writeSampling(s: number, p: SequenceSampling): void {
    const v = this.sampling, o = s * SAMPLING_BYTES;
    v.setBigUint64(o, BigInt.asUintN(64, p.seed), true);
    v.setFloat32(o + 8, p.temperature, true);
    v.setFloat32(o + 12, p.topP, true);
    v.setInt32(o + 16, p.topK, true);
    v.setFloat32(o + 20, p.minP, true);
    v.setFloat32(o + 24, p.repetitionPenalty, true);
    v.setFloat32(o + 28, p.presencePenalty, true);
    v.setFloat32(o + 32, p.frequencyPenalty, true);
    v.setInt32(o + 36, p.noRepeatNgramSize, true);
    v.setInt32(o + 40, p.minTokens, true);
    const needsHistory = p.repetitionPenalty !== 1 || p.presencePenalty !== 0 || p.frequencyPenalty !== 0 ||
      p.noRepeatNgramSize > 0 || p.minTokens > 0;
    const hist = needsHistory ? p.history : [];
    v.setInt32(o + 44, this.#nHistory, true);
    v.setInt32(o + 48, hist.length, true);
    v.setInt32(o + 52, needsHistory ? p.promptLen : 0, true);
    this.#history = grow(this.#history, this.#nHistory + hist.length) as Int32Array<ArrayBuffer>;
    for (let i = 0; i < hist.length; i++) this.#history[this.#nHistory + i] = hist[i];
    this.#nHistory += hist.length;
    v.setInt32(o + 56, this.#nBias, true);
    v.setInt32(o + 60, p.biasIds.length, true);
    this.#biasIds = grow(this.#biasIds, this.#nBias + p.biasIds.length) as Int32Array<ArrayBuffer>;
    this.#biasValues = grow(this.#biasValues, this.#nBias + p.biasIds.length) as Float32Array<ArrayBuffer>;
    for (let i = 0; i < p.biasIds.length; i++) {
      this.#biasIds[this.#nBias + i] = p.biasIds[i];
      this.#biasValues[this.#nBias + i] = p.biasValues[i];
    }
    this.#nBias += p.biasIds.length;
    v.setInt32(o + 64, this.#nStop, true);
    v.setInt32(o + 68, p.stopIds.length, true);
    this.#stopIds = grow(this.#stopIds, this.#nStop + p.stopIds.length) as Int32Array<ArrayBuffer>;
    for (let i = 0; i < p.stopIds.length; i++) this.#stopIds[this.#nStop + i] = p.stopIds[i];
    this.#nStop += p.stopIds.length;
    v.setInt32(o + 72, p.nTopLogprobs, true);
    v.setInt32(o + 76, p.wantLogprob ? 1 : 0, true);
  }

  /** Lays out hearth_batch with pointers to this batch's arrays (valid while the batch lives). */
  encode(): Uint8Array<ArrayBuffer> {
    const v = this.#struct;
    v.setInt32(0, this.nTokens, true);
    v.setInt32(4, this.nSeqs, true);
    v.setInt32(8, this.logitsMode, true);
    v.setInt32(12, this.#nHistory, true);
    v.setInt32(16, this.#nBias, true);
    v.setInt32(20, this.#nStop, true);
    if (this.logitsMode !== LogitsMode.none) {
      const rows = this.logitsMode === LogitsMode.all ? this.nTokens : this.nSeqs;
      const need = rows * this.vocabSize;
      if (!this.outLogits || this.outLogits.length < need) this.outLogits = new Float32Array(need);
    }
    const pointers: (ArrayBufferView | null)[] = [
      this.tokens,
      this.positions,
      this.seqStart,
      this.blockTables,
      this.sample,
      this.sampling,
      this.#history,
      this.#biasIds,
      this.#biasValues,
      this.#stopIds,
      this.outTokens,
      this.outLogprobs,
      this.outTopIds,
      this.outTopLogprobs,
    ];
    pointers.push(this.logitsMode !== LogitsMode.none ? this.outLogits! : null);
    // A pointer is looked up only when its array is new (a grown one, the logits'): each lookup is a call
    // into Deno and a BigInt, and the 15 of them took ~55 us of every decode step's JS on the 2-core VM
    // (an array's memory does not move while it lives).
    for (let i = 0; i < pointers.length; i++) {
      const a = pointers[i];
      if (this.#encoded[i] === a) continue;
      v.setBigUint64(24 + i * 8, a ? ptr(a) : 0n, true);
      this.#encoded[i] = a;
    }
    return this.#structBytes;
  }

  /** Logits row `row` of the last step (a view; copy it to keep it). */
  logitsRow(row: number): Float32Array {
    if (!this.outLogits) throw new Error("no logits were requested");
    return this.outLogits.subarray(row * this.vocabSize, (row + 1) * this.vocabSize);
  }
}

function grow<T extends Int32Array<ArrayBuffer> | Float32Array<ArrayBuffer>>(a: T, need: number): T {
  if (need <= a.length) return a;
  const bigger = new (a.constructor as new (n: number) => T)(Math.max(need, a.length * 2));
  bigger.set(a);
  return bigger;
}
