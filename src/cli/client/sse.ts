/**
 * A small server-sent events reader: the `data:` payloads of a `text/event-stream` body, one per
 * event, as they arrive (multi-line data joined with "\n"; comments, `event:`, `id:` and `retry:`
 * lines skipped), as the SSE spec frames them.
 *
 * @module
 */

/** Lines end with \n, \r\n or \r; a \r at the end of the buffer may still be the start of a \r\n. */
const LINE_END = /\r\n|\n|\r(?=[^\n])/g;

/**
 * Yields each event's data from an SSE byte stream; ends with the stream. Stopping early (a `break`
 * in the consumer's loop) cancels the body, which closes the connection.
 */
export async function* readSseData(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  const reader = body.getReader();
  let buffer = "";
  let data: string[] | null = null;
  let finished = false;
  try {
    while (!finished) {
      const { value, done } = await reader.read();
      if (done) {
        // A last event without its blank line (a server that closes right after it) still counts.
        buffer += decoder.decode() + "\n\n";
        finished = true;
      } else {
        buffer += decoder.decode(value, { stream: true });
      }
      let start = 0;
      LINE_END.lastIndex = 0;
      for (let m = LINE_END.exec(buffer); m !== null; m = LINE_END.exec(buffer)) {
        const line = buffer.slice(start, m.index);
        start = m.index + m[0].length;
        if (line === "") {
          if (data !== null) yield data.join("\n");
          data = null;
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        if ((colon < 0 ? line : line.slice(0, colon)) !== "data") continue;
        const field = colon < 0 ? "" : line.slice(colon + 1);
        (data ??= []).push(field.startsWith(" ") ? field.slice(1) : field);
      }
      buffer = buffer.slice(start);
    }
  } finally {
    if (!finished) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}
