/**
 * Which bearer token the client sends: `--auth-token`, else `--auth-token-file`, else, for a server on
 * this machine (a loopback `--url`), the token the server published in its per-port token file
 * (`$XDG_CONFIG_HOME/hearth/inference/<port>.token`), so `serve` and `client` work with no flags.
 *
 * @module
 */

import { readTokenFile, tokenDir, tokenFilePath } from "../../server/token_file.ts";
import { ClientError } from "./errors.ts";

/** The token to send and where it came from (for diagnostics), or a null token. */
export interface ResolvedToken {
  token: string | null;
  /** "flag", "file PATH", "token file PATH", or why there is none. */
  source: string;
}

/** Whether `hostname` (as `URL.hostname` spells it) is this machine's loopback. */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/^\[|\]$/g, "");
  return host === "localhost" || host.endsWith(".localhost") || host === "::1" ||
    /^127(\.\d{1,3}){3}$/.test(host);
}

/** The port of a URL, its scheme's default when it names none. */
export function urlPort(url: URL): number {
  if (url.port !== "") return Number(url.port);
  return url.protocol === "https:" ? 443 : 80;
}

/** Options of {@link resolveToken}. */
export interface TokenOptions {
  url: string;
  authToken?: string;
  authTokenFile?: string;
  /** Where published token files live (default: {@link tokenDir} from the environment). */
  tokenDir?: string;
}

/** Finds the token to send; throws a {@link ClientError} for an unreadable or empty `--auth-token-file`. */
export async function resolveToken(options: TokenOptions): Promise<ResolvedToken> {
  if (options.authToken !== undefined) {
    const token = options.authToken.trim();
    if (token === "") throw new ClientError("--auth-token is empty");
    return { token, source: "--auth-token" };
  }
  if (options.authTokenFile !== undefined) {
    let text: string;
    try {
      text = await Deno.readTextFile(options.authTokenFile);
    } catch (err) {
      throw new ClientError(
        `cannot read --auth-token-file ${options.authTokenFile}: ${(err as Error).message}`,
      );
    }
    const token = text.trim();
    if (token === "") throw new ClientError(`--auth-token-file ${options.authTokenFile} is empty`);
    return { token, source: `--auth-token-file ${options.authTokenFile}` };
  }
  const url = new URL(options.url);
  if (!isLoopbackHost(url.hostname)) {
    return { token: null, source: "no token given (token files are read only for a loopback --url)" };
  }
  const port = urlPort(url);
  const dir = options.tokenDir ?? tokenDir();
  const path = tokenFilePath(port, dir);
  const token = await readTokenFile(port, dir);
  return token === null
    ? { token: null, source: `no token given and no token file at ${path}` }
    : { token, source: `token file ${path}` };
}
