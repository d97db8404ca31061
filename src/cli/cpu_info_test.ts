import assert from "node:assert/strict";
import { join } from "node:path";
import { parseCpuList, physicalCoreCount } from "./cpu_info.ts";

/** A fake /sys/devices/system/cpu with the given (package, core) per logical CPU. */
async function fakeSysfs(topology: [number, number][]): Promise<string> {
  const dir = await Deno.makeTempDir();
  for (const [cpu, [pkg, core]] of topology.entries()) {
    const t = join(dir, `cpu${cpu}`, "topology");
    await Deno.mkdir(t, { recursive: true });
    await Deno.writeTextFile(join(t, "core_id"), `${core}\n`);
    await Deno.writeTextFile(join(t, "physical_package_id"), `${pkg}\n`);
  }
  // Entries that are not cpuN directories must be skipped.
  await Deno.mkdir(join(dir, "cpufreq"));
  await Deno.writeTextFile(join(dir, "online"), "0-7\n");
  return dir;
}

const nowhere = "/nonexistent/hearth-test";

Deno.test("parseCpuList reads ranges and singles", () => {
  assert.deepEqual([...parseCpuList("0-3,8-9,13\n")], [0, 1, 2, 3, 8, 9, 13]);
  assert.deepEqual([...parseCpuList("5")], [5]);
});

Deno.test("hyper-threads of one core count once", async () => {
  // 8 logical CPUs: cores 0..3 of package 0, each with two threads (Linux numbers siblings n, n+4).
  const sys = await fakeSysfs([0, 1, 2, 3, 0, 1, 2, 3].map((c) => [0, c]));
  assert.equal(physicalCoreCount({ sysCpuDir: sys, statusPath: nowhere, hardwareConcurrency: 8 }), 4);
});

Deno.test("the same core id on two packages is two cores", async () => {
  const sys = await fakeSysfs([[0, 0], [0, 1], [1, 0], [1, 1]]);
  assert.equal(physicalCoreCount({ sysCpuDir: sys, statusPath: nowhere, hardwareConcurrency: 4 }), 4);
});

Deno.test("only CPUs in the process's affinity count", async () => {
  const sys = await fakeSysfs([0, 1, 2, 3, 0, 1, 2, 3].map((c) => [0, c]));
  const status = join(await Deno.makeTempDir(), "status");
  await Deno.writeTextFile(status, "Name:\tdeno\nCpus_allowed:\t11\nCpus_allowed_list:\t0,4-5\n");
  // CPUs 0 and 4 are one core, 5 is another.
  assert.equal(physicalCoreCount({ sysCpuDir: sys, statusPath: status, hardwareConcurrency: 3 }), 2);
});

Deno.test("never more than hardwareConcurrency (container CPU limits)", async () => {
  const sys = await fakeSysfs([0, 1, 2, 3].map((c) => [0, c]));
  assert.equal(physicalCoreCount({ sysCpuDir: sys, statusPath: nowhere, hardwareConcurrency: 2 }), 2);
});

Deno.test("/proc/cpuinfo is used when sysfs has no topology", async () => {
  const cpuinfo = join(await Deno.makeTempDir(), "cpuinfo");
  const block = (p: number, core: number) =>
    `processor\t: ${p}\nvendor_id\t: GenuineIntel\nphysical id\t: 0\ncore id\t\t: ${core}\ncpu cores\t: 2\n`;
  await Deno.writeTextFile(cpuinfo, [block(0, 0), block(1, 1), block(2, 0), block(3, 1)].join("\n"));
  assert.equal(
    physicalCoreCount({
      sysCpuDir: nowhere,
      cpuinfoPath: cpuinfo,
      statusPath: nowhere,
      hardwareConcurrency: 4,
    }),
    2,
  );
});

Deno.test("falls back to hardwareConcurrency when nothing is readable", () => {
  const sources = { sysCpuDir: nowhere, cpuinfoPath: nowhere, statusPath: nowhere };
  assert.equal(physicalCoreCount({ ...sources, hardwareConcurrency: 6 }), 6);
  assert.equal(physicalCoreCount({ ...sources, hardwareConcurrency: 0 }), 1);
});

Deno.test("on this machine: between 1 and the logical CPU count", () => {
  const n = physicalCoreCount();
  assert.ok(Number.isInteger(n) && n >= 1 && n <= navigator.hardwareConcurrency, `${n}`);
});
