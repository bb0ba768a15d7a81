/**
 * Integration of the durable sequence into the C2SP tlog-tiles files of the ledger directory
 * (hash tiles and entry bundles), and the check on open that the tiles on disk are exactly what
 * the sequence implies.
 */
import { rm, rmdir } from 'node:fs/promises';
import path from 'node:path';
import { AttexError } from '../errors/index.ts';
import { bytesEqual } from '../util/index.ts';
import { readFileIfExists, writeFileAtomic } from './files.ts';
import type { HashTree } from './hash-tree.ts';
import { leafHash } from './merkle.ts';
import { TILE_WIDTH, decodeEntryBundle, encodeEntryBundle, entryBundlePath, hashTilePath } from './tiles.ts';

/** Entries `start..start+count` in order (from the sequence file). */
export type EntryReader = (start: number, count: number) => Promise<Uint8Array[]>;

interface TileChange {
  readonly level: number; // tlog-tiles level (tree level 8*level), or -1 for an entry bundle
  readonly index: number;
  readonly oldWidth: number; // 0 when the tile did not exist
  readonly newWidth: number;
}

/** Tiles (and bundles) whose content differs between tree sizes `oldSize` and `newSize`. */
function changedTiles(oldSize: number, newSize: number): TileChange[] {
  const changes: TileChange[] = [];
  const widthAt = (count: number, index: number) => Math.max(0, Math.min(TILE_WIDTH, count - index * TILE_WIDTH));
  const addLevel = (level: number, oldCount: number, newCount: number) => {
    for (let index = Math.floor(oldCount / TILE_WIDTH); index * TILE_WIDTH < newCount; index++) {
      const oldWidth = widthAt(oldCount, index);
      const newWidth = widthAt(newCount, index);
      if (newWidth !== oldWidth) changes.push({ level, index, oldWidth, newWidth });
    }
  };
  addLevel(-1, oldSize, newSize);
  for (let level = 0, span = 1; Math.floor(newSize / span) > 0; level++, span *= TILE_WIDTH) {
    addLevel(level, Math.floor(oldSize / span), Math.floor(newSize / span));
  }
  return changes;
}

function tilePath(change: { level: number; index: number }, width: number): string {
  return change.level < 0 ? entryBundlePath(change.index, width) : hashTilePath(change.level, change.index, width);
}

async function tileContent(tree: HashTree, readEntries: EntryReader, level: number, index: number, width: number): Promise<Uint8Array> {
  if (level < 0) return encodeEntryBundle(await readEntries(index * TILE_WIDTH, width));
  return tree.nodes(8 * level, index * TILE_WIDTH, width);
}

/**
 * Write the tiles that change from `oldSize` to `newSize` (each fsynced, then renamed into place)
 * and return a function that removes the partial tiles they supersede.
 */
export async function integrateTiles(dir: string, tmpDir: string, tree: HashTree, readEntries: EntryReader, oldSize: number, newSize: number): Promise<() => Promise<void>> {
  const changes = changedTiles(oldSize, newSize);
  for (const change of changes) {
    const data = await tileContent(tree, readEntries, change.level, change.index, change.newWidth);
    await writeFileAtomic(path.join(dir, tilePath(change, change.newWidth)), data, tmpDir, false);
  }
  return async () => {
    for (const change of changes) {
      if (change.oldWidth === 0 || change.oldWidth === TILE_WIDTH) continue;
      const stale = path.join(dir, tilePath(change, change.oldWidth));
      await rm(stale, { force: true });
      if (change.newWidth === TILE_WIDTH) await rmdir(path.dirname(stale)).catch(() => undefined);
    }
  };
}

/**
 * Check every tile and entry bundle that a tree of `size` needs against the sequence. A missing
 * file is rewritten (its rename may not have reached the disk before a crash); a file with
 * different content is `ledger.tampered`.
 */
export async function verifyTiles(dir: string, tmpDir: string, tree: HashTree, readEntries: EntryReader, size: number): Promise<{ rewritten: number }> {
  let rewritten = 0;
  for (const change of changedTiles(0, size)) {
    const rel = tilePath(change, change.newWidth);
    const onDisk = await readFileIfExists(path.join(dir, rel));
    if (onDisk === null) {
      const data = await tileContent(tree, readEntries, change.level, change.index, change.newWidth);
      await writeFileAtomic(path.join(dir, rel), data, tmpDir, false);
      rewritten++;
      continue;
    }
    let matches: boolean;
    if (change.level < 0) {
      // Compare entry by entry through leaf hashes, so a bundle costs one read and no second copy of the entries.
      let entries: Uint8Array[] = [];
      try {
        entries = decodeEntryBundle(onDisk);
      } catch {
        entries = [];
      }
      const first = change.index * TILE_WIDTH;
      matches = entries.length === change.newWidth && entries.every((e, i) => bytesEqual(leafHash(e), tree.node(0, first + i)));
    } else {
      matches = bytesEqual(onDisk, tree.nodes(8 * change.level, change.index * TILE_WIDTH, change.newWidth));
    }
    if (!matches) throw new AttexError('ledger.tampered', `${rel} does not match the entries in the sequence file`, { details: { file: rel } });
  }
  return { rewritten };
}
