/**
 * The paged KV cache's block allocator: the native cache is `numBlocks` blocks of `blockSize` token
 * slots; a sequence holds a list of block ids (its block table) that grows as it does and goes back to
 * the pool the moment it finishes, is cancelled or is preempted.
 *
 * Prefix reuse: a full block is named by a hash of its tokens and of every token before it, so two
 * sequences whose prompts start the same (one system prompt for many users) can share its keys and
 * values. Blocks are reference-counted; a named block nobody holds keeps its contents and stays
 * findable until its slot is needed for something else (least recently released first).
 *
 * @module
 */

/** Hash of a full block given the hash of the blocks before it: 2×32-bit lanes, as a string key. */
export function blockHash(parent: string, tokens: ArrayLike<number>, start: number, end: number): string {
  let h1 = 0x9e3779b9, h2 = 0x85ebca6b;
  for (let i = 0; i < parent.length; i++) {
    const c = parent.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x85ebca77);
    h2 = Math.imul(h2 ^ c, 0xc2b2ae3d);
  }
  for (let i = start; i < end; i++) {
    const t = tokens[i];
    h1 = Math.imul(h1 ^ t, 0x85ebca77);
    h1 ^= h1 >>> 15;
    h2 = Math.imul(h2 ^ t, 0xc2b2ae3d);
    h2 ^= h2 >>> 13;
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 0x27d4eb2f);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 0x165667b1);
  return `${(h1 >>> 0).toString(36)}.${(h2 >>> 0).toString(36)}.${end - start}`;
}

/** Hands out KV block ids from a fixed pool, with reference counts and prefix reuse. */
export class KvBlockAllocator {
  #free: number[];
  readonly #refs: Int32Array;
  readonly #hashOf: (string | null)[];
  readonly #byHash = new Map<string, number>();
  /** Named blocks held by nobody, oldest release first: reusable by hash, or taken when the pool is dry. */
  readonly #idle = new Set<number>();

  constructor(readonly numBlocks: number, readonly blockSize: number) {
    if (!Number.isInteger(numBlocks) || numBlocks < 1) {
      throw new RangeError(`numBlocks must be >= 1, got ${numBlocks}`);
    }
    if (!Number.isInteger(blockSize) || blockSize < 1) {
      throw new RangeError(`blockSize must be >= 1, got ${blockSize}`);
    }
    // Low ids first, so a fresh cache fills from the start (kinder to the memory the OS has paged in).
    this.#free = Array.from({ length: numBlocks }, (_, i) => numBlocks - 1 - i);
    this.#refs = new Int32Array(numBlocks);
    this.#hashOf = new Array(numBlocks).fill(null);
  }

  /** Blocks that can be handed out now (never used, or kept only for a possible prefix hit). */
  get freeBlocks(): number {
    return this.#free.length + this.#idle.size;
  }

  /** Blocks needed to hold `tokens` token slots. */
  blocksFor(tokens: number): number {
    return Math.ceil(tokens / this.blockSize);
  }

  #take(): number {
    const fresh = this.#free.pop();
    if (fresh !== undefined) return fresh;
    const oldest = this.#idle.values().next().value!;
    this.#idle.delete(oldest);
    this.#byHash.delete(this.#hashOf[oldest]!);
    this.#hashOf[oldest] = null;
    return oldest;
  }

  /** Grows `table` so it holds `tokens` slots; false (and no change) if the pool cannot cover it. */
  ensure(table: number[], tokens: number): boolean {
    const need = this.blocksFor(tokens) - table.length;
    if (need <= 0) return true;
    if (need > this.freeBlocks) return false;
    for (let i = 0; i < need; i++) {
      const b = this.#take();
      this.#refs[b] = 1;
      table.push(b);
    }
    return true;
  }

  /** Drops the table's hold on each of its blocks and empties it. */
  release(table: number[]): void {
    for (const b of table) {
      if (--this.#refs[b] > 0) continue;
      if (this.#hashOf[b] !== null) this.#idle.add(b);
      else this.#free.push(b);
    }
    table.length = 0;
  }

  /** The block holding the full block named `hash`, now also held by the caller; undefined if none. */
  share(hash: string): number | undefined {
    const b = this.#byHash.get(hash);
    if (b === undefined) return undefined;
    if (this.#refs[b]++ === 0) this.#idle.delete(b);
    return b;
  }

  /** Names a full, computed block so later prompts can share it (first writer of a content wins). */
  publish(block: number, hash: string): void {
    if (this.#hashOf[block] !== null || this.#byHash.has(hash)) return;
    this.#hashOf[block] = hash;
    this.#byHash.set(hash, block);
  }
}
