import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { prometheusText } from "./metrics.ts";

Deno.test("prometheusText: HELP, TYPE and value lines per metric; non-finite values as 0", () => {
  assertEquals(
    prometheusText([["a_total", "things", "counter", 3], ["b", "ratio", "gauge", NaN]]),
    "# HELP a_total things\n# TYPE a_total counter\na_total 3\n# HELP b ratio\n# TYPE b gauge\nb 0\n",
  );
});
