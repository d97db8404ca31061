/**
 * The paged KV cache's block allocator: the native cache is `numBlocks` blocks of `blockSize` token
 * slots; a sequence holds a list of block ids (its block table) that grows as it does and goes back to
 * the pool the moment it finishes, is cancelled or is preempted.
 *
 * @module
 */

/** Hands out KV block ids from a fixed pool. */
export class KvBlockAllocator {
  #free: number[];

  constructor(readonly numBlocks: number, readonly blockSize: number) {
    if (!Number.isInteger(numBlocks) || numBlocks < 1) {
      throw new RangeError(`numBlocks must be >= 1, got ${numBlocks}`);
    }
    if (!Number.isInteger(blockSize) || blockSize < 1) {
      throw new RangeError(`blockSize must be >= 1, got ${blockSize}`);
    }
    // Low ids first, so a fresh cache fills from the start (kinder to the memory the OS has paged in).
    this.#free = Array.from({ length: numBlocks }, (_, i) => numBlocks - 1 - i);
  }

  /** Blocks not held by any sequence. */
  get freeBlocks(): number {
    return this.#free.length;
  }

  /** Blocks needed to hold `tokens` token slots. */
  blocksFor(tokens: number): number {
    return Math.ceil(tokens / this.blockSize);
  }

  /** Grows `table` so it holds `tokens` slots; false (and no change) if the pool cannot cover it. */
  ensure(table: number[], tokens: number): boolean {
    const need = this.blocksFor(tokens) - table.length;
    if (need <= 0) return true;
    if (need > this.#free.length) return false;
    for (let i = 0; i < need; i++) table.push(this.#free.pop()!);
    return true;
  }

  /** Returns every block of `table` to the pool and empties it. */
  release(table: number[]): void {
    for (const b of table) this.#free.push(b);
    table.length = 0;
  }
}
