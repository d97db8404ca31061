/**
 * The calling thread's own CPU time (`clock_gettime(CLOCK_THREAD_CPUTIME_ID)` through libc), for
 * splitting the engine's event-loop turns into the JS thread's own work and the time other processes
 * held its core (on a 2-core host, a client reading the stream often runs there right when a token is
 * sent). Linux and macOS; elsewhere, or when libc cannot be opened, {@link threadCpuClock} is null.
 *
 * @module
 */

const CLOCKS: Partial<Record<typeof Deno.build.os, { lib: string; id: number }>> = {
  linux: { lib: "libc.so.6", id: 3 }, // CLOCK_THREAD_CPUTIME_ID
  darwin: { lib: "libSystem.B.dylib", id: 16 },
};

/** Milliseconds of CPU time the calling thread has used (NaN if a read fails). */
export type ThreadCpuClock = () => number;

function open(): ThreadCpuClock | null {
  const clock = CLOCKS[Deno.build.os];
  if (!clock) return null;
  try {
    const libc = Deno.dlopen(clock.lib, { clock_gettime: { parameters: ["i32", "buffer"], result: "i32" } });
    // struct timespec: two 64-bit fields on the 64-bit systems Deno runs on.
    const ts = new BigInt64Array(2);
    const read = (): number => {
      if (libc.symbols.clock_gettime(clock.id, ts) !== 0) return NaN;
      return Number(ts[0]) * 1e3 + Number(ts[1]) / 1e6;
    };
    return Number.isFinite(read()) ? read : null;
  } catch {
    return null;
  }
}

/** The thread CPU clock of this platform, opened once (null: not available). */
export const threadCpuClock: ThreadCpuClock | null = open();
