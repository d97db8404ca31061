/**
 * Where the client writes: generated text to stdout as it arrives (unbuffered, so tokens show as
 * they stream and pipelines get only the text), usage and diagnostics to stderr.
 *
 * @module
 */

/** The client's two channels. */
export interface Output {
  /** Text for stdout, written at once (no newline added). */
  out(text: string): void;
  /** One diagnostic line for stderr. */
  err(line: string): void;
}

const encoder = new TextEncoder();

function writeAllSync(file: { writeSync(p: Uint8Array): number }, bytes: Uint8Array): void {
  let written = 0;
  while (written < bytes.length) written += file.writeSync(bytes.subarray(written));
}

/** The process's stdout and stderr. A closed stdout (`| head`) throws `Deno.errors.BrokenPipe`. */
export function stdio(): Output {
  return {
    out: (text) => writeAllSync(Deno.stdout, encoder.encode(text)),
    err: (line) => writeAllSync(Deno.stderr, encoder.encode(line + "\n")),
  };
}

/** An {@link Output} that keeps everything, for tests. */
export function memoryOutput(): Output & { stdout: string; stderr: string[] } {
  const o = {
    stdout: "",
    stderr: [] as string[],
    out: (text: string) => void (o.stdout += text),
    err: (line: string) => void o.stderr.push(line),
  };
  return o;
}
