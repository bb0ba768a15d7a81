/**
 * The full (immutable) C2SP tlog-tiles files of the ledger directory: hash tiles and entry
 * bundles of 256, written once when they become complete, and checked on open against the
 * sequence. Partial tiles (`.p/<W>`) change with every checkpoint; they are derived on demand
 * from the in-memory tree and the sequence (`Ledger.tile`, exports) instead of being rewritten
 * on every publication.
 */
import path from 'node:path';
import { AttexError } from '../errors/index.ts';
import { bytesEqual } from '../util/index.ts';
import { readFileIfExists, writeFileAtomic } from './files.ts';
import type { HashTree } from './hash-tree.ts';
import { leafHash } from './merkle.ts';
import { MAX_ENTRY_SIZE, TILE_WIDTH, decodeEntryBundle, encodeEntryBundle, entryBundlePath, hashTilePath, parseTilePath } from './tiles.ts';

/** Entries `start..start+count` in order (from the sequence file). */
export type EntryReader = (start: number, count: number) => Promise<Uint8Array[]>;

interface FullTile {
  readonly level: number; // tlog-tiles level (tree level 8*level), or -1 for an entry bundle
  readonly index: number;
}

/** Full tiles (and bundles) that a tree of `newSize` has and a tree of `oldSize` did not. */
function newFullTiles(oldSize: number, newSize: number): FullTile[] {
  const tiles: FullTile[] = [];
  const addLevel = (level: number, oldCount: number, newCount: number) => {
    for (let index = Math.floor(oldCount / TILE_WIDTH); (index + 1) * TILE_WIDTH <= newCount; index++) tiles.push({ level, index });
  };
  addLevel(-1, oldSize, newSize);
  for (let level = 0, span = 1; Math.floor(newSize / span) >= TILE_WIDTH; level++, span *= TILE_WIDTH) {
    addLevel(level, Math.floor(oldSize / span), Math.floor(newSize / span));
  }
  return tiles;
}

function tilePath(tile: FullTile): string {
  return tile.level < 0 ? entryBundlePath(tile.index, TILE_WIDTH) : hashTilePath(tile.level, tile.index, TILE_WIDTH);
}

async function tileContent(tree: HashTree, readEntries: EntryReader, tile: FullTile): Promise<Uint8Array> {
  if (tile.level < 0) return encodeEntryBundle(await readEntries(tile.index * TILE_WIDTH, TILE_WIDTH));
  return tree.nodes(8 * tile.level, tile.index * TILE_WIDTH, TILE_WIDTH);
}

/** Write the full tiles that complete between `oldSize` and `newSize` (each fsynced, then renamed into place). */
export async function writeFullTiles(dir: string, tmpDir: string, tree: HashTree, readEntries: EntryReader, oldSize: number, newSize: number): Promise<void> {
  for (const tile of newFullTiles(oldSize, newSize)) {
    await writeFileAtomic(path.join(dir, tilePath(tile)), await tileContent(tree, readEntries, tile), tmpDir, false);
  }
}

/**
 * Check every full tile and entry bundle of a tree of `size` against the sequence. A missing
 * file is written (a crash may have come before it was); a file with different content is
 * `ledger.tampered`.
 */
export async function verifyFullTiles(dir: string, tmpDir: string, tree: HashTree, readEntries: EntryReader, size: number): Promise<{ rewritten: number }> {
  let rewritten = 0;
  for (const tile of newFullTiles(0, size)) {
    const rel = tilePath(tile);
    // A full hash tile is TILE_WIDTH hashes; a full entry bundle TILE_WIDTH entries with their 2-byte lengths.
    const onDisk = await readFileIfExists(path.join(dir, rel), tile.level < 0 ? TILE_WIDTH * (2 + MAX_ENTRY_SIZE) : TILE_WIDTH * 32);
    if (onDisk === null) {
      await writeFileAtomic(path.join(dir, rel), await tileContent(tree, readEntries, tile), tmpDir, false);
      rewritten++;
      continue;
    }
    let matches: boolean;
    if (tile.level < 0) {
      // Compare entry by entry through leaf hashes, so a bundle costs one read and no second copy of the entries.
      let entries: Uint8Array[] = [];
      try {
        entries = decodeEntryBundle(onDisk);
      } catch {
        entries = [];
      }
      const first = tile.index * TILE_WIDTH;
      matches = entries.length === TILE_WIDTH && entries.every((e, i) => bytesEqual(leafHash(e), tree.node(0, first + i)));
    } else {
      matches = bytesEqual(onDisk, tree.nodes(8 * tile.level, tile.index * TILE_WIDTH, TILE_WIDTH));
    }
    if (!matches) throw new AttexError('ledger.tampered', `${rel} does not match the entries in the sequence file`, { details: { file: rel } });
  }
  return { rewritten };
}

/**
 * Bytes of tlog-tiles resource `rel` for a tree of `size` (or of an earlier size, for a narrower
 * partial tile), from the verified tree and the sequence; undefined when the path is not
 * canonical or the tree of `size` does not have it.
 */
export async function deriveTile(tree: HashTree, readEntries: EntryReader, size: number, rel: string): Promise<Uint8Array | undefined> {
  const ref = parseTilePath(rel);
  if (!ref) return undefined;
  const available = ref.level < 0 ? size : Math.floor(size / TILE_WIDTH ** ref.level);
  if (ref.index * TILE_WIDTH + ref.width > available) return undefined;
  if (ref.level >= 0) return tree.nodes(8 * ref.level, ref.index * TILE_WIDTH, ref.width);
  return encodeEntryBundle(await readEntries(ref.index * TILE_WIDTH, ref.width));
}
