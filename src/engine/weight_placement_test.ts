import { assert, assertEquals, assertStringIncludes } from "../../test/assert.ts";
import { AUTO_COPY_SHARE, availableMemory, placeWeights } from "./weight_placement.ts";

const GiB = 2 ** 30;

Deno.test("weights: auto copies a model that takes at most half of the available memory", () => {
  assertEquals(placeWeights("auto", 1 * GiB, 8 * GiB, false).inMemory, true);
  assertEquals(placeWeights("auto", 4 * GiB, 8 * GiB, false).inMemory, true);
  assertEquals(AUTO_COPY_SHARE, 0.5);
});

Deno.test("weights: auto maps a model bigger than half of the available memory, and says why", () => {
  const p = placeWeights("auto", 4 * GiB + 1, 8 * GiB, false);
  assertEquals(p.inMemory, false);
  assertStringIncludes(p.reason, "mapped files");
  assertStringIncludes(p.reason, "--no-mmap");
});

Deno.test("weights: --mmap and --no-mmap win over the size", () => {
  assertEquals(placeWeights(false, 1, 8 * GiB, false).inMemory, false);
  assertEquals(placeWeights(true, 100 * GiB, 8 * GiB, false).inMemory, true);
});

Deno.test("weights: unknown available memory copies; a GPU copies nothing on the host", () => {
  assertEquals(placeWeights("auto", GiB, undefined, false).inMemory, true);
  assertEquals(placeWeights("auto", GiB, 8 * GiB, true).inMemory, false);
  assertEquals(placeWeights(true, GiB, 8 * GiB, true).inMemory, false);
});

Deno.test("weights: this system's available memory is a positive number when reported", () => {
  const a = availableMemory();
  assert(a === undefined || a > 0);
});
