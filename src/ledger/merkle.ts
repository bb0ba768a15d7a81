/**
 * RFC 6962 / RFC 9162 Merkle tree hashing, proof generation and proof verification.
 * Pure functions over 32-byte SHA-256 hashes. Sizes and indices are JavaScript numbers
 * (exact up to 2^53); all halving is done with arithmetic, never 32-bit shifts.
 */
import { createHash } from 'node:crypto';
import { AttexError } from '../errors/index.ts';
import { bytesEqual } from '../util/index.ts';

export const HASH_SIZE = 32;

/** MTH({}) = SHA-256 of the empty string. */
export const EMPTY_ROOT: Uint8Array = new Uint8Array(createHash('sha256').digest());

/** RFC 6962 leaf hash: SHA-256(0x00 || entry). */
export function leafHash(entry: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(LEAF_PREFIX).update(entry).digest());
}

/** RFC 6962 interior node hash: SHA-256(0x01 || left || right). */
export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(NODE_PREFIX).update(left).update(right).digest());
}

const LEAF_PREFIX = new Uint8Array([0x00]);
const NODE_PREFIX = new Uint8Array([0x01]);

/** Returns the hash of any sub-range [start, end) of the leaves (end > start). */
export type SubtreeHashFn = (start: number, end: number) => Uint8Array;

/** Largest power of two strictly less than n (n >= 2). */
export function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

function checkSize(value: number, what: string): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new AttexError('ledger.invalid-argument', `${what} must be a non-negative safe integer`);
}

/** MTH over a list of leaf hashes, computed with a stack of perfect subtrees (O(n) hashes, O(log n) memory). */
export function rootHash(leafHashes: readonly Uint8Array[]): Uint8Array {
  if (leafHashes.length === 0) return EMPTY_ROOT;
  const stack: { hash: Uint8Array; size: number }[] = [];
  for (const leaf of leafHashes) {
    let node = { hash: leaf, size: 1 };
    while (stack.length > 0 && stack[stack.length - 1]!.size === node.size) {
      const left = stack.pop()!;
      node = { hash: nodeHash(left.hash, node.hash), size: node.size * 2 };
    }
    stack.push(node);
  }
  let hash = stack.pop()!.hash;
  while (stack.length > 0) hash = nodeHash(stack.pop()!.hash, hash);
  return hash;
}

/** A SubtreeHashFn over an in-memory list of leaf hashes (recursive; fine for tests and small trees). */
export function subtreeHashOf(leafHashes: readonly Uint8Array[]): SubtreeHashFn {
  const memo = new Map<string, Uint8Array>();
  const mth = (start: number, end: number): Uint8Array => {
    if (end - start === 1) return leafHashes[start]!;
    const key = `${start}:${end}`;
    let hash = memo.get(key);
    if (!hash) {
      const k = splitPoint(end - start);
      hash = nodeHash(mth(start, start + k), mth(start + k, end));
      memo.set(key, hash);
    }
    return hash;
  };
  return mth;
}

/**
 * RFC 6962 section 2.1.1 PATH(index, D[0:size]), the leaf's sibling first.
 * `source` is either the leaf hashes themselves or a function giving subtree hashes.
 */
export function inclusionProof(source: readonly Uint8Array[] | SubtreeHashFn, index: number, size: number): Uint8Array[] {
  checkSize(index, 'index');
  checkSize(size, 'size');
  if (index >= size) throw new AttexError('ledger.invalid-argument', `index ${index} is not below tree size ${size}`);
  const mth = typeof source === 'function' ? source : subtreeHashOf(source);
  const path: Uint8Array[] = [];
  let start = 0;
  let end = size;
  let m = index;
  // Walk down from the root, collecting siblings; reverse at the end so the leaf's sibling is first.
  while (end - start > 1) {
    const k = splitPoint(end - start);
    if (m < k) {
      path.push(mth(start + k, end));
      end = start + k;
    } else {
      path.push(mth(start, start + k));
      start += k;
      m -= k;
    }
  }
  return path.reverse();
}

/** RFC 6962 section 2.1.2 PROOF(oldSize, D[0:newSize]); empty when oldSize is 0 or equals newSize. */
export function consistencyProof(source: readonly Uint8Array[] | SubtreeHashFn, oldSize: number, newSize: number): Uint8Array[] {
  checkSize(oldSize, 'old size');
  checkSize(newSize, 'new size');
  if (oldSize > newSize) throw new AttexError('ledger.invalid-argument', `old size ${oldSize} exceeds new size ${newSize}`);
  if (oldSize === 0 || oldSize === newSize) return [];
  const mth = typeof source === 'function' ? source : subtreeHashOf(source);
  const proof: Uint8Array[] = [];
  let start = 0;
  let end = newSize;
  let m = oldSize;
  let complete = true;
  // Iterative SUBPROOF(m, D[start:end], complete): each step adds one node, collected root-first.
  while (m !== end - start) {
    const k = splitPoint(end - start);
    if (m <= k) {
      proof.push(mth(start + k, end));
      end = start + k;
    } else {
      proof.push(mth(start, start + k));
      start += k;
      m -= k;
      complete = false;
    }
  }
  if (!complete) proof.push(mth(start, end));
  return proof.reverse();
}

/** Root implied by an inclusion proof (RFC 9162 section 2.1.3.2), or null when the proof has the wrong shape. */
export function rootFromInclusionProof(leaf: Uint8Array, index: number, size: number, proof: readonly Uint8Array[]): Uint8Array | null {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) return null;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (p.length !== HASH_SIZE || sn === 0) return null;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 ? r : null;
}

/** Throws AttexError `ledger.proof-invalid` unless `proof` proves `leaf` at `index` in the tree of `size` with `root`. */
export function verifyInclusion(leaf: Uint8Array, index: number, size: number, proof: readonly Uint8Array[], root: Uint8Array): void {
  if (leaf.length !== HASH_SIZE || root.length !== HASH_SIZE) throw new AttexError('ledger.proof-invalid', 'leaf and root must be 32-byte hashes');
  const computed = rootFromInclusionProof(leaf, index, size, proof);
  if (computed === null) throw new AttexError('ledger.proof-invalid', `inclusion proof has the wrong shape for index ${index} in a tree of size ${size}`);
  if (!bytesEqual(computed, root)) throw new AttexError('ledger.proof-invalid', `inclusion proof for index ${index} does not lead to the root of the size-${size} tree`);
}

/**
 * Throws AttexError `ledger.proof-invalid` unless `proof` shows the tree of `oldSize` with `oldRoot`
 * is a prefix of the tree of `newSize` with `newRoot` (RFC 9162 section 2.1.4.2).
 */
export function verifyConsistency(oldSize: number, newSize: number, oldRoot: Uint8Array, newRoot: Uint8Array, proof: readonly Uint8Array[]): void {
  const fail = (why: string): never => {
    throw new AttexError('ledger.proof-invalid', `consistency proof ${oldSize} -> ${newSize}: ${why}`);
  };
  if (!Number.isSafeInteger(oldSize) || !Number.isSafeInteger(newSize) || oldSize < 0 || oldSize > newSize) fail('sizes out of order');
  if (oldRoot.length !== HASH_SIZE || newRoot.length !== HASH_SIZE) fail('roots must be 32-byte hashes');
  if (proof.some((p) => p.length !== HASH_SIZE)) fail('proof hashes must be 32 bytes');
  if (oldSize === 0) {
    if (proof.length !== 0) fail('a proof from the empty tree must be empty');
    if (!bytesEqual(oldRoot, EMPTY_ROOT)) fail('the empty tree has root SHA-256("")');
    return;
  }
  if (oldSize === newSize) {
    if (proof.length !== 0) fail('a proof between equal sizes must be empty');
    if (!bytesEqual(oldRoot, newRoot)) fail('equal sizes with different roots');
    return;
  }
  if (proof.length === 0) fail('empty proof');
  const path = isPowerOfTwo(oldSize) ? [oldRoot, ...proof] : [...proof];
  let fn = oldSize - 1;
  let sn = newSize - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr = path[0]!;
  let sr = path[0]!;
  for (const c of path.slice(1)) {
    if (sn === 0) fail('proof too long');
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) fail('proof too short');
  if (!bytesEqual(fr, oldRoot)) fail('does not reproduce the old root');
  if (!bytesEqual(sr, newRoot)) fail('does not reproduce the new root');
}

function isPowerOfTwo(n: number): boolean {
  let k = 1;
  while (k < n) k *= 2;
  return k === n;
}
