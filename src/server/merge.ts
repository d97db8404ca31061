/**
 * Interleaves several async iterables into one, in arrival order: the choices of a multi-prompt
 * completion run side by side (so a batching engine can batch them) while one stream carries them.
 *
 * @module
 */

/**
 * Yields items of all `sources` as they come. If one throws, the others are ended and the error is
 * rethrown; ending the merged iterator early ends every source.
 */
export async function* mergeAsync<T>(sources: AsyncIterable<T>[]): AsyncGenerator<T, void, undefined> {
  const iterators = sources.map((s) => s[Symbol.asyncIterator]());
  type Step = { index: number; result: IteratorResult<T> };
  const pending = new Map<number, Promise<Step>>();
  const pull = (index: number) =>
    pending.set(index, iterators[index].next().then((result) => ({ index, result })));
  iterators.forEach((_, i) => pull(i));
  try {
    while (pending.size > 0) {
      const { index, result } = await Promise.race(pending.values());
      if (result.done) {
        pending.delete(index);
        continue;
      }
      pull(index);
      yield result.value;
    }
  } finally {
    // Early exit or error: end the sources still running. Their in-flight next() settles on its own.
    const open = [...pending.keys()];
    for (const promise of pending.values()) promise.catch(() => {});
    await Promise.all(open.map((i) => iterators[i].return?.(undefined).catch(() => {})));
  }
}
