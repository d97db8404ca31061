/**
 * Lines of a byte stream (stdin in interactive chat), one at a time as they are typed.
 *
 * @module
 */

/** Yields the lines of `stream` without their line ends (`\n` or `\r\n`), the last one even unterminated. */
export async function* readLines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  const reader = stream.getReader();
  let buffer = "";
  try {
    while (true) {
      const { value, done } = await reader.read();
      buffer += done ? decoder.decode() : decoder.decode(value, { stream: true });
      let nl: number;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        yield buffer.slice(0, nl).replace(/\r$/, "");
        buffer = buffer.slice(nl + 1);
      }
      if (done) break;
    }
    if (buffer !== "") yield buffer;
  } finally {
    reader.releaseLock();
  }
}
