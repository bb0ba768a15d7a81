import { describe, expect, it } from 'vitest';
import { HashTree } from '../../src/ledger/hash-tree.ts';
import {
  EMPTY_ROOT,
  consistencyProof,
  inclusionProof,
  leafHash,
  rootFromInclusionProof,
  rootHash,
  verifyConsistency,
  verifyInclusion,
} from '../../src/ledger/index.ts';
import { fromHex, toHex } from '../../src/util/index.ts';

// The RFC 6962 reference leaves and roots (certificate-transparency / Go tlog test vectors).
const LEAVES = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'].map(fromHex);
const ROOTS = [
  'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];
const hashes = LEAVES.map(leafHash);

describe('RFC 6962 Merkle tree hash', () => {
  it('reproduces the reference roots for sizes 0..8', () => {
    expect(toHex(EMPTY_ROOT)).toBe(ROOTS[0]);
    for (let n = 0; n <= 8; n++) expect(toHex(rootHash(hashes.slice(0, n)))).toBe(ROOTS[n]);
  });

  it('reproduces the reference inclusion proof of leaf 5 in the size-8 tree', () => {
    const proof = inclusionProof(hashes, 5, 8);
    expect(proof.map(toHex)).toEqual([
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ]);
    verifyInclusion(hashes[5]!, 5, 8, proof, fromHex(ROOTS[8]!));
  });

  it('reproduces the reference consistency proof 3 -> 8', () => {
    const proof = consistencyProof(hashes, 3, 8);
    expect(proof.map(toHex)).toEqual([
      '0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7',
      '07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7',
      'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ]);
    verifyConsistency(3, 8, fromHex(ROOTS[3]!), fromHex(ROOTS[8]!), proof);
  });
});

describe('proofs for every index and size up to 64 leaves', () => {
  const leaves = Array.from({ length: 64 }, (_, i) => leafHash(new TextEncoder().encode(`leaf ${i}`)));
  const tree = new HashTree();
  tree.append(leaves);
  const roots = Array.from({ length: 65 }, (_, n) => rootHash(leaves.slice(0, n)));

  it('the tile-backed tree gives the same roots and proofs as the list form', () => {
    for (let n = 0; n <= 64; n++) {
      expect(toHex(tree.root(n))).toBe(toHex(roots[n]!));
      for (let i = 0; i < n; i++) expect(tree.inclusionProof(i, n).map(toHex)).toEqual(inclusionProof(leaves, i, n).map(toHex));
      for (let m = 0; m <= n; m++) expect(tree.consistencyProof(m, n).map(toHex)).toEqual(consistencyProof(leaves, m, n).map(toHex));
    }
  });

  it('rootWith gives the root of the tree with leaves not yet appended, without appending them', () => {
    for (let n = 0; n <= 40; n++) {
      const partial = new HashTree();
      partial.append(leaves.slice(0, n));
      for (let extra = 0; n + extra <= 64 && extra <= 24; extra++) {
        expect(toHex(partial.rootWith(leaves.slice(n, n + extra)))).toBe(toHex(roots[n + extra]!));
      }
      expect(partial.size).toBe(n);
    }
  });

  it('accepts every inclusion proof and rejects it for another index, size, leaf or a flipped bit', () => {
    for (let n = 1; n <= 64; n++) {
      for (let i = 0; i < n; i++) {
        const proof = tree.inclusionProof(i, n);
        verifyInclusion(leaves[i]!, i, n, proof, roots[n]!);
        expect(() => verifyInclusion(leaves[(i + 1) % 64]!, i, n, proof, roots[n]!)).toThrow(/does not lead/);
        if (n > 1) expect(rootFromInclusionProof(leaves[i]!, (i + 1) % n, n, proof)).not.toEqual(roots[n]);
        if (n < 64) expect(() => verifyInclusion(leaves[i]!, i, n + 1, proof, roots[n + 1]!)).toThrow();
        if (proof.length > 0) {
          const bad = proof.map((h) => new Uint8Array(h));
          bad[0]![0]! ^= 1;
          expect(() => verifyInclusion(leaves[i]!, i, n, bad, roots[n]!)).toThrow();
          expect(() => verifyInclusion(leaves[i]!, i, n, proof.slice(1), roots[n]!)).toThrow();
          expect(() => verifyInclusion(leaves[i]!, i, n, [...proof, proof[0]!], roots[n]!)).toThrow();
        }
      }
      expect(() => verifyInclusion(leaves[0]!, n, n, [], roots[n]!)).toThrow(/wrong shape/);
    }
  });

  it('accepts every consistency proof and rejects wrong roots, sizes and edited hashes', () => {
    for (let n = 1; n <= 64; n++) {
      for (let m = 0; m <= n; m++) {
        const proof = tree.consistencyProof(m, n);
        verifyConsistency(m, n, roots[m]!, roots[n]!, proof);
        if (m > 0 && m < n) {
          expect(() => verifyConsistency(m, n, roots[m - 1]!, roots[n]!, proof)).toThrow(/consistency/);
          expect(() => verifyConsistency(m, n, roots[m]!, roots[n - 1]!, proof)).toThrow(/consistency/);
          const bad = proof.map((h) => new Uint8Array(h));
          bad[bad.length - 1]![31]! ^= 0x80;
          expect(() => verifyConsistency(m, n, roots[m]!, roots[n]!, bad)).toThrow();
          expect(() => verifyConsistency(m, n, roots[m]!, roots[n]!, proof.slice(0, -1))).toThrow();
          if (n < 64) expect(() => verifyConsistency(m, n + 1, roots[m]!, roots[n + 1]!, proof)).toThrow();
        }
      }
    }
  });

  it('rejects out-of-range arguments with typed errors', () => {
    expect(() => inclusionProof(leaves, 5, 5)).toThrow(expect.objectContaining({ code: 'ledger.invalid-argument' }));
    expect(() => consistencyProof(leaves, 6, 5)).toThrow(expect.objectContaining({ code: 'ledger.invalid-argument' }));
    expect(() => verifyConsistency(5, 4, roots[5]!, roots[4]!, [])).toThrow(expect.objectContaining({ code: 'ledger.proof-invalid' }));
    expect(() => verifyConsistency(0, 4, roots[1]!, roots[4]!, [])).toThrow(/empty tree/);
    expect(() => verifyInclusion(leaves[0]!, -1, 4, [], roots[4]!)).toThrow(expect.objectContaining({ code: 'ledger.proof-invalid' }));
  });
});
