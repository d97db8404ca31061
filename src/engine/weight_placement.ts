/**
 * Where the CPU reads the weights it uses as stored (float matrices, and whatever the kernels do not
 * repack): from the mapped model files, or from a copy in the process's own memory. A decode streams
 * every weight each token, and the copy sits in one buffer backed by transparent huge pages, whose
 * sequential reads the hardware prefetcher follows across what would be 4 KiB page boundaries in the
 * file's page cache: in paired runs on a 2-core Zen 3 VM, F16 decode +10 % (1.10× and 1.11× medians).
 * The mapped files cost nothing to load, share the page cache with other processes and let the kernel
 * page them out, which matters when the model hardly fits. So by default ("auto") the weights are
 * copied when they take at most half of the memory available at load, and read from the files
 * otherwise; `--mmap` / `--no-mmap` decide it either way.
 *
 * @module
 */

/** What was asked: copy (true), map (false), or decide by size ("auto"). */
export type WeightsInMemory = boolean | "auto";

/** The largest share of the memory available at load that "auto" lets the copy take. */
export const AUTO_COPY_SHARE = 0.5;

/** The decision and why, for the load log. */
export interface WeightPlacement {
  inMemory: boolean;
  reason: string;
}

const mib = (n: number) => `${(n / 2 ** 20).toFixed(0)} MiB`;

/**
 * Decides where weights are read from. `weightBytes`: the model's tensors as stored; `available`: memory
 * available at load (undefined when the system does not say: then the copy is made). A CUDA device gets
 * its weights uploaded, so nothing is copied on the host for it.
 */
export function placeWeights(
  asked: WeightsInMemory,
  weightBytes: number,
  available: number | undefined,
  cuda: boolean,
): WeightPlacement {
  if (cuda) return { inMemory: false, reason: "uploaded to the GPU" };
  if (asked === true) return { inMemory: true, reason: "copied into memory (--no-mmap)" };
  if (asked === false) return { inMemory: false, reason: "read from the mapped files (--mmap)" };
  if (available === undefined) {
    return { inMemory: true, reason: "copied into memory (the system does not report available memory)" };
  }
  if (weightBytes <= AUTO_COPY_SHARE * available) {
    return {
      inMemory: true,
      reason: `copied into memory (${mib(weightBytes)} of ${mib(available)} available)`,
    };
  }
  return {
    inMemory: false,
    reason: `read from the mapped files: ${mib(weightBytes)} is more than half of the ${
      mib(available)
    } available (--no-mmap copies them anyway)`,
  };
}

/** Memory available now, or undefined when the system does not report it. */
export function availableMemory(): number | undefined {
  try {
    return Deno.systemMemoryInfo().available;
  } catch {
    return undefined;
  }
}
