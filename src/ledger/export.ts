/**
 * Export a ledger as a self-contained directory that offline verifiers (and the interop checker)
 * read: log/checkpoint, log/tile/..., log/consistency, receipts/<i>.dsse.json + <i>.tlog-proof,
 * trust/log.vkey, trust/executor.pub, trust/witness.vkey. Tiles and bundles are produced from the
 * ledger's verified in-memory state, not copied from its directory. The export is written to a
 * temporary sibling directory and renamed into place, so a failed export leaves nothing behind.
 */
import { type KeyObject, randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { AttexError } from '../errors/index.ts';
import { parseCheckpoint } from './checkpoint.ts';
import { toBase64 } from './encoding.ts';
import { rawPublicKey } from './note.ts';
import type { Ledger } from './store.ts';
import { bundlesForSize, encodeEntryBundle, entryBundlePath, hashTilePath, tilesForSize } from './tiles.ts';
import { formatConsistencyFile } from './tlog-proof.ts';

export interface ExportOptions {
  /** The executor's Ed25519 public key (raw 32 bytes or a KeyObject) that signs the DSSE envelopes. */
  readonly executorPublicKey: Uint8Array | KeyObject;
  /** Also write log/consistency from the published checkpoint of this size to the current one. */
  readonly sinceSize?: number;
  /**
   * Which checkpoint each receipt's tlog-proof uses: the latest one (default), or the first
   * published checkpoint that covers the entry (the one current when the receipt was issued).
   */
  readonly proofCheckpoint?: 'latest' | 'earliest';
}

export interface ExportResult {
  readonly size: number;
  readonly outDir: string;
  readonly consistencyFrom?: number;
}

export async function exportLedger(ledger: Ledger, outDir: string, opts: ExportOptions): Promise<ExportResult> {
  const target = path.resolve(outDir);
  if (await isNonEmptyDirectory(target)) throw new AttexError('ledger.export-exists', `${outDir} exists and is not empty`);
  const executorKey = opts.executorPublicKey instanceof Uint8Array ? opts.executorPublicKey : rawPublicKey(opts.executorPublicKey);
  if (executorKey.length !== 32) throw new AttexError('ledger.invalid-argument', 'executor public key must be 32 bytes (Ed25519)');

  const note = await ledger.publishCheckpoint();
  const { size } = parseCheckpoint(note.slice(0, note.lastIndexOf('\n\n') + 1));
  let consistency: string | undefined;
  if (opts.sinceSize !== undefined) {
    const old = opts.sinceSize >= 1 && opts.sinceSize <= size ? await ledger.checkpointAt(opts.sinceSize) : undefined;
    if (old === undefined) {
      const sizes = ledger.publishedSizes();
      const shown = sizes.length <= 12 ? sizes.join(', ') : `${sizes.slice(0, 6).join(', ')}, …, ${sizes.slice(-6).join(', ')}`;
      throw new AttexError('ledger.invalid-argument', `no published checkpoint of size ${opts.sinceSize} (published: ${shown})`);
    }
    consistency = formatConsistencyFile({ oldSize: opts.sinceSize, proof: ledger.consistencyProof(opts.sinceSize, size), checkpoint: old });
  }

  const staging = `${target}.partial-${randomBytes(6).toString('hex')}`;
  const write = async (rel: string, data: Uint8Array | string) => {
    const file = path.join(staging, rel);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, data, { flag: 'wx' });
  };
  try {
    await write('log/checkpoint', note);
    for (const tile of tilesForSize(size)) await write(`log/${hashTilePath(tile.level, tile.index, tile.width)}`, ledger.hashTile(tile.level, tile.index, tile.width));
    for (const bundle of bundlesForSize(size)) {
      const entries: Uint8Array[] = [];
      for (let i = 0; i < bundle.width; i++) entries.push(await ledger.get(bundle.index * 256 + i));
      await write(`log/${entryBundlePath(bundle.index, bundle.width)}`, encodeEntryBundle(entries));
    }
    if (consistency !== undefined) await write('log/consistency', consistency);
    const sizes = ledger.publishedSizes().filter((s) => s > 0 && s <= size);
    let earliest = 0; // sizes[earliest] is the first published size above i (i only grows)
    for (let i = 0; i < size; i++) {
      await write(`receipts/${i}.dsse.json`, await ledger.get(i));
      while (sizes[earliest]! <= i) earliest++;
      const proofSize = opts.proofCheckpoint === 'earliest' ? sizes[earliest]! : size;
      await write(`receipts/${i}.tlog-proof`, await ledger.tlogProof(i, proofSize));
    }
    await write('trust/log.vkey', `${ledger.verifierKey}\n`);
    await write('trust/executor.pub', `${toBase64(executorKey)}\n`);
    if (ledger.witnessVerifierKeys.length > 0) await write('trust/witness.vkey', ledger.witnessVerifierKeys.map((k) => `${k}\n`).join(''));
    // rename(2) replaces an empty directory and fails on one that is not (EEXIST or ENOTEMPTY):
    // files that appeared there during the export, or a concurrent export, are never removed.
    await rename(staging, target).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOTEMPTY' || err.code === 'EEXIST') throw new AttexError('ledger.export-exists', `${outDir} is no longer empty; the export was not written`);
      throw err;
    });
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    throw err;
  }
  return consistency === undefined ? { size, outDir: target } : { size, outDir: target, consistencyFrom: opts.sinceSize! };
}

async function isNonEmptyDirectory(dir: string): Promise<boolean> {
  try {
    return (await readdir(dir)).length > 0;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    if ((err as NodeJS.ErrnoException).code === 'ENOTDIR') return true;
    throw err;
  }
}
