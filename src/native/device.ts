/**
 * `--device auto|cpu|cuda[:N]`: which backend a model runs on, and the defaults that follow from it.
 * `auto` takes cuda:0 when lib/libhearth_cuda.so loads and the driver shows a device, else the CPU;
 * $HEARTH_DEVICE, when set, is what `auto` means (`deno task test` sets cpu so that the CPU suite stays on
 * the CPU on a GPU machine too).
 *
 * @module
 */
import type { WeightDType } from "../model/description.ts";
import { type CudaDeviceInfo, cudaDevices, cudaUnavailableReason } from "./hearth.ts";

/** Where a model runs. */
export type Device = { kind: "cpu" } | { kind: "cuda"; index: number };

/** A `--device` value that is not auto, cpu, cuda or cuda:N, or names a device that is not there. */
export class DeviceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DeviceError";
  }
}

/** Parses a `--device` value (no probing): a device, or "auto". */
export function parseDevice(spec: string): Device | "auto" {
  const v = spec.trim().toLowerCase();
  if (v === "auto") return "auto";
  if (v === "cpu") return { kind: "cpu" };
  const m = /^cuda(?::(\d+))?$/.exec(v);
  if (m) return { kind: "cuda", index: m[1] === undefined ? 0 : Number(m[1]) };
  throw new DeviceError(`unknown device ${JSON.stringify(spec)}; expected auto, cpu, cuda or cuda:N`);
}

/** "cpu" or "cuda:N". */
export function deviceName(d: Device): string {
  return d.kind === "cpu" ? "cpu" : `cuda:${d.index}`;
}

/** A device ready to load on, with the CUDA device's facts when it is one. */
export interface ResolvedDevice {
  device: Device;
  cuda?: CudaDeviceInfo;
}

/**
 * Resolves a `--device` value (or a parsed device): `auto` probes for CUDA (which opens the CUDA
 * library, and only then); `cuda[:N]` fails with a {@link DeviceError} saying why when that device is
 * not usable.
 */
export async function resolveDevice(spec: string | Device): Promise<ResolvedDevice> {
  let want = typeof spec === "string" ? parseDevice(spec) : spec;
  const env = Deno.env.get("HEARTH_DEVICE");
  if (want === "auto" && env) want = parseDevice(env);
  if (want !== "auto" && want.kind === "cpu") return { device: want };
  const devices = await cudaDevices();
  if (want === "auto") {
    return devices.length > 0
      ? { device: { kind: "cuda", index: 0 }, cuda: devices[0] }
      : { device: { kind: "cpu" } };
  }
  const found = devices.find((d) => d.index === want.index);
  if (found) return { device: want, cuda: found };
  const why = devices.length > 0
    ? `there are ${devices.length} CUDA device(s), numbered from 0`
    : await cudaUnavailableReason();
  throw new DeviceError(`device ${deviceName(want)}: no such CUDA device (${why}); use --device cpu`);
}

/**
 * The weight dtype when none is asked for ("auto"): on the CPU, what the files store; on a GPU,
 * checkpoints stored in f32 / f16 / bf16 are served in bf16 where the GPU has bf16 tensor cores
 * (compute capability 8.0 and up) and f16 elsewhere; quantized checkpoints stay as stored.
 */
export function defaultDtype(r: ResolvedDevice, stored: WeightDType): WeightDType | "auto" {
  if (r.device.kind === "cpu") return "auto";
  if (stored !== "f32" && stored !== "f16" && stored !== "bf16") return "auto";
  return r.cuda?.bf16 === false ? "f16" : "bf16";
}

/** KV cache bytes when none are given, on a GPU: a quarter of its free memory, at most 8 GiB. */
export function defaultGpuKvCacheBytes(info: CudaDeviceInfo): number {
  return Math.max(64 * 2 ** 20, Math.min(8 * 2 ** 30, Math.floor(info.freeBytes / 4)));
}
