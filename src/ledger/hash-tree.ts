/**
 * In-memory store of every complete subtree hash of an append-only RFC 6962 tree, level by
 * level (level k holds the hashes of the aligned 2^k-leaf subtrees). Appending costs one
 * amortised node hash per leaf; any subtree hash, root, inclusion or consistency proof takes
 * O(log n) lookups, plus O(log n) hashes along the right edge. Memory: about 64 bytes per leaf.
 */
import { AttexError } from '../errors/index.ts';
import { EMPTY_ROOT, HASH_SIZE, consistencyProof, inclusionProof, nodeHash } from './merkle.ts';

export class HashTree {
  #levels: Buffer[] = [Buffer.alloc(HASH_SIZE * 1024)];
  #counts: number[] = [0];

  get size(): number {
    return this.#counts[0]!;
  }

  /** Append leaf hashes (32 bytes each). */
  append(leafHashes: readonly Uint8Array[]): void {
    for (const leaf of leafHashes) {
      if (leaf.length !== HASH_SIZE) throw new AttexError('ledger.invalid-argument', 'leaf hashes are 32 bytes');
      let hash = leaf;
      for (let level = 0; ; level++) {
        const index = this.#push(level, hash);
        if (index % 2 === 0) break;
        hash = nodeHash(this.node(level, index - 1), hash);
      }
    }
  }

  #push(level: number, hash: Uint8Array): number {
    if (level === this.#levels.length) {
      this.#levels.push(Buffer.alloc(HASH_SIZE * 64));
      this.#counts.push(0);
    }
    const count = this.#counts[level]!;
    let buffer = this.#levels[level]!;
    if ((count + 1) * HASH_SIZE > buffer.length) {
      const grown = Buffer.alloc(buffer.length * 2);
      buffer.copy(grown, 0, 0, count * HASH_SIZE);
      this.#levels[level] = buffer = grown;
    }
    buffer.set(hash, count * HASH_SIZE);
    this.#counts[level] = count + 1;
    return count;
  }

  /** Hash of the complete subtree at `level`, `index` (covering leaves index*2^level .. +2^level). */
  node(level: number, index: number): Uint8Array {
    const count = this.#counts[level] ?? 0;
    if (index < 0 || index >= count) throw new AttexError('ledger.invalid-argument', `no complete node ${index} at level ${level}`);
    return new Uint8Array(this.#levels[level]!.buffer, this.#levels[level]!.byteOffset + index * HASH_SIZE, HASH_SIZE);
  }

  /** `count` consecutive node hashes at `level` from `start`, concatenated (a tile's bytes). */
  nodes(level: number, start: number, count: number): Uint8Array {
    if (start < 0 || start + count > (this.#counts[level] ?? 0)) throw new AttexError('ledger.invalid-argument', `nodes ${start}+${count} at level ${level} are not complete`);
    const buffer = this.#levels[level]!;
    return new Uint8Array(buffer.subarray(start * HASH_SIZE, (start + count) * HASH_SIZE));
  }

  /** MTH(D[start:end]) for any range inside the current tree. */
  readonly subtreeHash = (start: number, end: number): Uint8Array => {
    if (!(start >= 0 && end > start && end <= this.size)) throw new AttexError('ledger.invalid-argument', `range ${start}..${end} is outside the tree of size ${this.size}`);
    // Split into aligned perfect subtrees, largest first from the left, then fold them from the right.
    const parts: Uint8Array[] = [];
    let at = start;
    while (at < end) {
      let level = 0;
      while (at % 2 ** (level + 1) === 0 && at + 2 ** (level + 1) <= end) level++;
      parts.push(this.node(level, at / 2 ** level));
      at += 2 ** level;
    }
    let hash = parts.pop()!;
    while (parts.length > 0) hash = nodeHash(parts.pop()!, hash);
    return hash;
  };

  root(size: number = this.size): Uint8Array {
    if (!Number.isSafeInteger(size) || size < 0 || size > this.size) throw new AttexError('ledger.invalid-argument', `size ${size} is outside 0..${this.size}`);
    return size === 0 ? EMPTY_ROOT : this.subtreeHash(0, size);
  }

  /**
   * Root of this tree with `extra` leaf hashes appended, without appending them: O(log n + extra)
   * hashes over the right edge (the perfect subtrees of the current size, left to right).
   */
  rootWith(extra: readonly Uint8Array[]): Uint8Array {
    if (extra.length === 0) return this.root();
    const stack: { level: number; hash: Uint8Array }[] = [];
    let at = 0;
    for (let level = this.#counts.length - 1; level >= 0; level--) {
      if (Math.floor(this.size / 2 ** level) % 2 === 1) {
        stack.push({ level, hash: this.node(level, at / 2 ** level) });
        at += 2 ** level;
      }
    }
    for (const leaf of extra) {
      if (leaf.length !== HASH_SIZE) throw new AttexError('ledger.invalid-argument', 'leaf hashes are 32 bytes');
      let top = { level: 0, hash: leaf };
      while (stack.length > 0 && stack[stack.length - 1]!.level === top.level) {
        const left = stack.pop()!;
        top = { level: top.level + 1, hash: nodeHash(left.hash, top.hash) };
      }
      stack.push(top);
    }
    let hash = stack.pop()!.hash;
    while (stack.length > 0) hash = nodeHash(stack.pop()!.hash, hash);
    return hash;
  }

  inclusionProof(index: number, size: number = this.size): Uint8Array[] {
    if (size > this.size) throw new AttexError('ledger.invalid-argument', `size ${size} exceeds the tree size ${this.size}`);
    return inclusionProof(this.subtreeHash, index, size);
  }

  consistencyProof(oldSize: number, newSize: number = this.size): Uint8Array[] {
    if (newSize > this.size) throw new AttexError('ledger.invalid-argument', `size ${newSize} exceeds the tree size ${this.size}`);
    return consistencyProof(this.subtreeHash, oldSize, newSize);
  }
}
