import { assertEquals, assertThrows } from "../../test/assert.ts";
import { PACER_MIN_CHUNK, PrefillPacer } from "./prefill_pacer.ts";

Deno.test("the prompt chunk beside decoding sequences takes the target at the measured time per token", () => {
  const p = new PrefillPacer(250);
  assertEquals(p.prefillLimit(16), Infinity, "nothing measured yet: the budget is the only limit");
  p.record(8, 40); // small steps are bound by memory, not by tokens: not measured
  assertEquals(p.prefillLimit(16), Infinity);
  p.record(512, 1024); // 2 ms a token
  assertEquals(p.msPerToken, 2);
  assertEquals(p.prefillLimit(16), 125, "250 ms of prompt tokens beside the decodes");
  assertEquals(p.prefillLimit(200), 125);
  assertEquals(p.prefillLimit(0), Infinity, "no sequence decoding: a prompt alone takes the whole budget");
  p.record(128, 128); // 1 ms a token, averaged in
  assertEquals(p.msPerToken, 0.8 * 2 + 0.2 * 1);
  const slow = new PrefillPacer(250);
  slow.record(64, 64 * 100); // 100 ms a token: 2 tokens would fill the target
  assertEquals(slow.prefillLimit(1), PACER_MIN_CHUNK, "a prompt always advances");
});

Deno.test("a zero target turns the pacing off; a negative one is refused", () => {
  const p = new PrefillPacer(0);
  p.record(512, 1024);
  assertEquals(p.prefillLimit(16), Infinity);
  assertThrows(() => new PrefillPacer(-1), RangeError, "prefill chunk target");
});
