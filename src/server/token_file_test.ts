import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { join } from "node:path";
import { readTokenFile, removeTokenFile, tokenDir, tokenFilePath, writeTokenFile } from "./token_file.ts";

Deno.test("tokenDir follows XDG_CONFIG_HOME, else ~/.config", () => {
  const env = (vars: Record<string, string>) => ({ get: (k: string) => vars[k] });
  assertEquals(tokenDir(env({ XDG_CONFIG_HOME: "/x", HOME: "/h" })), "/x/hearth/inference");
  assertEquals(tokenDir(env({ HOME: "/h" })), "/h/.config/hearth/inference");
});

Deno.test("the token file is 0600 in a 0700 directory and removable", async () => {
  const base = await Deno.makeTempDir();
  try {
    const dir = join(base, "hearth", "inference");
    const path = await writeTokenFile(8137, "t0k", dir);
    assertEquals(path, tokenFilePath(8137, dir));
    assertEquals((await Deno.stat(path)).mode! & 0o777, 0o600);
    assertEquals((await Deno.stat(dir)).mode! & 0o777, 0o700);
    assertEquals(await readTokenFile(8137, dir), "t0k");
    removeTokenFile(path);
    removeTokenFile(path); // already gone is fine
    assertEquals(await readTokenFile(8137, dir), null);
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});
