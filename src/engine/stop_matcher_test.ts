import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { StopMatcher } from "./stop_matcher.ts";

/** Feeds pieces and returns everything emitted plus the matched stop. */
function run(stops: string[], pieces: string[]): { text: string; stopped: string | null; emitted: string[] } {
  const m = new StopMatcher(stops);
  const emitted: string[] = [];
  for (const piece of pieces) {
    const r = m.push(piece);
    emitted.push(r.text);
    if (r.stopped) return { text: emitted.join(""), stopped: r.stopped, emitted };
  }
  emitted.push(m.flush());
  return { text: emitted.join(""), stopped: null, emitted };
}

Deno.test("no stop sequences passes text through", () => {
  assertEquals(run([], ["a", "b"]).text, "ab");
});

Deno.test("a stop sequence inside one piece cuts it", () => {
  const r = run(["END"], ["hello END world"]);
  assertEquals(r.text, "hello ");
  assertEquals(r.stopped, "END");
});

Deno.test("a stop sequence across pieces is never streamed", () => {
  const r = run(["\n\n"], ["one", "\n", "\nTwo"]);
  assertEquals(r.emitted, ["one", "", ""]);
  assertEquals(r.text, "one");
  assertEquals(r.stopped, "\n\n");
});

Deno.test("a false start is released once it cannot match", () => {
  const r = run(["STOP"], ["ST", "O", "ne"]);
  assertEquals(r.emitted, ["", "", "STOne", ""]);
  assertEquals(r.stopped, null);
});

Deno.test("held text is released by flush at the end", () => {
  const r = run(["abc"], ["xx", "ab"]);
  assertEquals(r.emitted, ["xx", "", "ab"]);
});

Deno.test("the earliest of several stops wins", () => {
  const r = run(["world", "lo w"], ["hello world"]);
  assertEquals(r.text, "hel");
  assertEquals(r.stopped, "lo w");
});

Deno.test("overlapping prefixes keep the longest possible start", () => {
  const r = run(["aab"], ["a", "a", "a", "b", "c"]);
  assertEquals(r.text, "a");
  assertEquals(r.stopped, "aab");
});

Deno.test("after a stop further pushes emit nothing", () => {
  const m = new StopMatcher(["x"]);
  assertEquals(m.push("ax").text, "a");
  assertEquals(m.push("bbb"), { text: "", stopped: "x" });
  assertEquals(m.flush(), "");
});

Deno.test("empty stop strings are ignored", () => {
  const m = new StopMatcher([""]);
  assertEquals(m.empty, true);
  assertEquals(m.push("abc").text, "abc");
});
