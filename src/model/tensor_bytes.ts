/**
 * Tensor bytes on their way into a file, for both writers (gguf_write.ts, safetensors_write.ts): one
 * buffer, or chunks in order from a (async) iterable, so a file of hundreds of MB is written without
 * ever holding all of it.
 *
 * @module
 */

/** Tensor bytes: one buffer, or chunks in order (for data too big to hold at once). */
export type TensorBytes =
  | ArrayBufferView
  | Iterable<ArrayBufferView>
  | AsyncIterable<ArrayBufferView>;

/** The bytes of `data` as Uint8Array chunks, in order. */
export async function* chunksOf(data: TensorBytes): AsyncIterable<Uint8Array> {
  if (ArrayBuffer.isView(data)) {
    yield asBytes(data);
    return;
  }
  for await (const chunk of data as AsyncIterable<ArrayBufferView>) yield asBytes(chunk);
}

function asBytes(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

/** Writes all of `bytes` (a write may take fewer than it is given). */
export async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  for (let done = 0; done < bytes.length;) done += await file.write(bytes.subarray(done));
}
