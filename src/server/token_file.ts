/**
 * The per-port token file of an auto-generated token, `$XDG_CONFIG_HOME/hearth/inference/<port>.token`
 * (default `~/.config/...`), so that local clients (`main.ts client`, scripts) find the token without
 * copying it from stderr. The file is 0600 in a 0700 directory and is removed when the server exits.
 * Operator-supplied tokens are never written: their owner already decides where they live.
 *
 * @module
 */

import { join } from "node:path";

/** `$XDG_CONFIG_HOME/hearth/inference`, or `~/.config/hearth/inference`. */
export function tokenDir(env: { get(name: string): string | undefined } = Deno.env): string {
  const xdg = env.get("XDG_CONFIG_HOME");
  const base = xdg && xdg.length > 0 ? xdg : join(env.get("HOME") ?? ".", ".config");
  return join(base, "hearth", "inference");
}

/** The token file of a server on `port`. */
export function tokenFilePath(port: number, dir = tokenDir()): string {
  return join(dir, `${port}.token`);
}

/** Writes the token atomically (temp file + rename) with mode 0600 in a 0700 directory. */
export async function writeTokenFile(port: number, token: string, dir = tokenDir()): Promise<string> {
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  // mkdir's mode is filtered by the umask and ignored for an existing directory.
  await Deno.chmod(dir, 0o700);
  const path = tokenFilePath(port, dir);
  const tmp = `${path}.${Deno.pid}.tmp`;
  try {
    await Deno.writeTextFile(tmp, token, { mode: 0o600 });
    await Deno.chmod(tmp, 0o600);
    await Deno.rename(tmp, path);
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw err;
  }
  return path;
}

/** Removes the token file; synchronous so it also works in an unload handler. Missing is fine. */
export function removeTokenFile(path: string): void {
  try {
    Deno.removeSync(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
}

/** Reads the token a local server published for `port`, or null. */
export async function readTokenFile(port: number, dir = tokenDir()): Promise<string | null> {
  try {
    const token = (await Deno.readTextFile(tokenFilePath(port, dir))).trim();
    return token.length > 0 ? token : null;
  } catch {
    return null;
  }
}
