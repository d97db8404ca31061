import assert from "node:assert/strict";
import { ModelConfigError, ModelFormatError } from "./errors.ts";

Deno.test("model errors are Error subclasses with their own names", () => {
  const format = new ModelFormatError("bad file");
  const config = new ModelConfigError("bad key", { cause: 1 });
  assert.ok(format instanceof Error);
  assert.ok(config instanceof Error);
  assert.ok(!(format instanceof ModelConfigError));
  assert.equal(format.name, "ModelFormatError");
  assert.equal(config.name, "ModelConfigError");
  assert.equal(config.message, "bad key");
  assert.equal(config.cause, 1);
});
