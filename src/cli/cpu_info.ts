/**
 * How many physical CPU cores this process may use — the default thread count of the CPU backend,
 * since its matrix kernels gain nothing from a core's second hyper-thread.
 *
 * @module
 */

import { join } from "node:path";

/** Where {@link physicalCoreCount} looks; tests point these at fake files. */
export interface CpuInfoSources {
  /** Default `/sys/devices/system/cpu`, holding `cpuN/topology/{core_id,physical_package_id}`. */
  sysCpuDir?: string;
  /** Default `/proc/cpuinfo`, read when sysfs has no topology. */
  cpuinfoPath?: string;
  /** Default `/proc/self/status`, whose `Cpus_allowed_list` is this process's CPU affinity. */
  statusPath?: string;
  /** Default `navigator.hardwareConcurrency`: the logical CPUs the runtime thinks it may use. */
  hardwareConcurrency?: number;
}

/**
 * The number of distinct (package, core) pairs among the CPUs this process may run on, read from
 * sysfs, else /proc/cpuinfo, else `navigator.hardwareConcurrency`. Never more than
 * hardwareConcurrency (which also reflects container CPU limits) and never less than 1.
 */
export function physicalCoreCount(sources: CpuInfoSources = {}): number {
  const logical = sources.hardwareConcurrency ?? navigator.hardwareConcurrency ?? 1;
  const allowed = readAllowedCpus(sources.statusPath ?? "/proc/self/status");
  const cores = coresFromSysfs(sources.sysCpuDir ?? "/sys/devices/system/cpu", allowed) ??
    coresFromCpuinfo(sources.cpuinfoPath ?? "/proc/cpuinfo", allowed);
  return Math.max(1, Math.min(cores ?? logical, logical));
}

/** Parses a kernel CPU list such as `0-3,8-11,13`. */
export function parseCpuList(list: string): Set<number> {
  const cpus = new Set<number>();
  for (const part of list.trim().split(",")) {
    if (part === "") continue;
    const [a, b] = part.split("-").map((s) => Number.parseInt(s, 10));
    for (let cpu = a; cpu <= (b ?? a); cpu++) cpus.add(cpu);
  }
  return cpus;
}

function readAllowedCpus(statusPath: string): Set<number> | null {
  const text = tryRead(statusPath);
  const m = text?.match(/^Cpus_allowed_list:\s*(\S+)/m);
  return m ? parseCpuList(m[1]) : null;
}

function coresFromSysfs(dir: string, allowed: Set<number> | null): number | null {
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(dir)];
  } catch {
    return null;
  }
  const cores = new Set<string>();
  for (const entry of entries) {
    const m = entry.name.match(/^cpu(\d+)$/);
    if (!m || (allowed !== null && !allowed.has(Number(m[1])))) continue;
    // Offline CPUs have no topology directory; they are skipped like disallowed ones.
    const core = tryRead(join(dir, entry.name, "topology", "core_id"))?.trim();
    const pkg = tryRead(join(dir, entry.name, "topology", "physical_package_id"))?.trim();
    if (core !== undefined && pkg !== undefined) cores.add(`${pkg}:${core}`);
  }
  return cores.size > 0 ? cores.size : null;
}

function coresFromCpuinfo(path: string, allowed: Set<number> | null): number | null {
  const text = tryRead(path);
  if (text === undefined) return null;
  const cores = new Set<string>();
  for (const block of text.split(/\n\s*\n/)) {
    const field = (name: string) => block.match(new RegExp(`^${name}\\s*:\\s*(\\d+)`, "m"))?.[1];
    const processor = field("processor");
    const core = field("core id");
    if (processor === undefined || core === undefined) continue;
    if (allowed !== null && !allowed.has(Number(processor))) continue;
    cores.add(`${field("physical id") ?? 0}:${core}`);
  }
  return cores.size > 0 ? cores.size : null;
}

function tryRead(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return undefined;
  }
}
