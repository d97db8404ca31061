import { join } from "node:path";
import { assertEquals, assertRejects } from "../../../test/assert.ts";
import { writeTokenFile } from "../../server/token_file.ts";
import { isLoopbackHost, resolveToken, urlPort } from "./auth.ts";
import { ClientError } from "./errors.ts";

Deno.test("loopback hosts: 127.0.0.0/8, ::1, localhost", () => {
  for (
    const url of [
      "http://127.0.0.1:1",
      "http://127.1.2.3",
      "http://[::1]:8137",
      "http://localhost",
      "http://LOCALHOST:5",
      "http://a.localhost",
    ]
  ) {
    assertEquals(isLoopbackHost(new URL(url).hostname), true, url);
  }
  for (
    const url of [
      "http://10.0.0.1",
      "http://example.com",
      "http://[::2]",
      "http://localhost.example.com",
      "http://128.0.0.1",
    ]
  ) {
    assertEquals(isLoopbackHost(new URL(url).hostname), false, url);
  }
});

Deno.test("the port of a URL, or its scheme's default", () => {
  assertEquals(urlPort(new URL("http://localhost:8137/v1")), 8137);
  assertEquals(urlPort(new URL("http://localhost/v1")), 80);
  assertEquals(urlPort(new URL("https://localhost/v1")), 443);
});

Deno.test("token: flag, then file, then the loopback server's token file", async () => {
  const base = await Deno.makeTempDir();
  try {
    const dir = join(base, "hearth", "inference");
    await writeTokenFile(8137, "published", dir);
    const file = join(base, "token.txt");
    await Deno.writeTextFile(file, "from-file\n");

    const flag = await resolveToken({ url: "http://127.0.0.1:8137/v1", authToken: " given ", tokenDir: dir });
    assertEquals(flag.token, "given");
    const fromFile = await resolveToken({
      url: "http://127.0.0.1:8137/v1",
      authTokenFile: file,
      tokenDir: dir,
    });
    assertEquals(fromFile.token, "from-file");
    for (const host of ["127.0.0.1", "localhost", "[::1]"]) {
      const found = await resolveToken({ url: `http://${host}:8137/v1`, tokenDir: dir });
      assertEquals(found.token, "published", host);
      assertEquals(found.source, `token file ${join(dir, "8137.token")}`);
    }
    const otherPort = await resolveToken({ url: "http://localhost:9000/v1", tokenDir: dir });
    assertEquals(otherPort.token, null);
    assertEquals(otherPort.source.includes("9000.token"), true);
    // A remote server never gets a local server's token.
    assertEquals(await resolveToken({ url: "http://example.com:8137/v1", tokenDir: dir }), {
      token: null,
      source: "no token given (token files are read only for a loopback --url)",
    });
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("an unreadable or empty token file is an error", async () => {
  const base = await Deno.makeTempDir();
  try {
    const empty = join(base, "empty");
    await Deno.writeTextFile(empty, "\n");
    await assertRejects(
      () => resolveToken({ url: "http://x/v1", authTokenFile: empty }),
      ClientError,
      "is empty",
    );
    await assertRejects(
      () => resolveToken({ url: "http://x/v1", authTokenFile: join(base, "missing") }),
      ClientError,
      "cannot read --auth-token-file",
    );
    await assertRejects(() => resolveToken({ url: "http://x/v1", authToken: "  " }), ClientError, "empty");
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});
