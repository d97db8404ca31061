import { assert } from "../../test/assert.ts";
import { StepPlacement, SYNC_MAX_MS, SYNC_MAX_TOKENS } from "./step_placement.ts";

Deno.test("step placement: a size is measured on a worker thread first; quick small steps go to the JS thread", () => {
  const p = new StepPlacement();
  assert(!p.onJsThread(1), "never measured: a worker thread");
  p.record(1, 7);
  assert(p.onJsThread(1), "7 ms steps of 1 token run on the JS thread");
  assert(!p.onJsThread(2), "each size has its own measurement");
  p.record(SYNC_MAX_TOKENS + 1, 1);
  assert(!p.onJsThread(SYNC_MAX_TOKENS + 1), "more tokens than the cap: always a worker thread");
  assert(!p.onJsThread(0));
});

Deno.test("step placement: steps that become slow move back to a worker thread (running average)", () => {
  const p = new StepPlacement();
  p.record(4, SYNC_MAX_MS / 2);
  assert(p.onJsThread(4));
  p.record(4, SYNC_MAX_MS * 4); // one slow step: 0.8 * 20 + 0.2 * 160 = 48 > 40
  assert(!p.onJsThread(4), "the average passed the limit");
  p.record(3, SYNC_MAX_MS * 10);
  assert(!p.onJsThread(3), "a big model's decode stays off the event loop");
  p.record(4, Number.NaN); // ignored
  assert(!p.onJsThread(4));
});
