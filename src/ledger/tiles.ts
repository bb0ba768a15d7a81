/** C2SP tlog-tiles paths and entry bundles (pure). */
import { AttexError } from '../errors/index.ts';

export const TILE_WIDTH = 256;
export const MAX_ENTRY_SIZE = 65_535;

/** Tile index in 3-digit groups, all but the last prefixed with `x`: 1234067 -> x001/x234/067. */
export function tileIndexPath(n: number): string {
  if (!Number.isSafeInteger(n) || n < 0) throw new AttexError('ledger.invalid-argument', 'tile index must be a non-negative integer');
  let path = String(n % 1000).padStart(3, '0');
  for (let rest = Math.floor(n / 1000); rest > 0; rest = Math.floor(rest / 1000)) {
    path = `x${String(rest % 1000).padStart(3, '0')}/${path}`;
  }
  return path;
}

function widthSuffix(width: number): string {
  if (!Number.isInteger(width) || width < 1 || width > TILE_WIDTH) throw new AttexError('ledger.invalid-argument', 'tile width must be 1..256');
  return width === TILE_WIDTH ? '' : `.p/${width}`;
}

/** `tile/<L>/<N>[.p/<W>]` */
export function hashTilePath(level: number, index: number, width: number): string {
  return `tile/${level}/${tileIndexPath(index)}${widthSuffix(width)}`;
}

/** `tile/entries/<N>[.p/<W>]` */
export function entryBundlePath(index: number, width: number): string {
  return `tile/entries/${tileIndexPath(index)}${widthSuffix(width)}`;
}

export interface TileRef {
  readonly level: number;
  readonly index: number;
  readonly width: number;
}

/**
 * Every hash tile a tree of `size` leaves needs: at level L the tree has ⌊size/256^L⌋ complete
 * 256^L-leaf subtrees, grouped 256 to a tile; the right-most tile of a level may be partial.
 */
export function tilesForSize(size: number): TileRef[] {
  const tiles: TileRef[] = [];
  for (let level = 0, span = 1; Math.floor(size / span) > 0; level++, span *= TILE_WIDTH) {
    const count = Math.floor(size / span);
    for (let index = 0; index * TILE_WIDTH < count; index++) {
      tiles.push({ level, index, width: Math.min(TILE_WIDTH, count - index * TILE_WIDTH) });
    }
  }
  return tiles;
}

/** Entry bundles for `size` entries: one per 256 entries, the last possibly partial. */
export function bundlesForSize(size: number): { index: number; width: number }[] {
  const out: { index: number; width: number }[] = [];
  for (let index = 0; index * TILE_WIDTH < size; index++) out.push({ index, width: Math.min(TILE_WIDTH, size - index * TILE_WIDTH) });
  return out;
}

export function encodeEntryBundle(entries: readonly Uint8Array[]): Uint8Array {
  const total = entries.reduce((n, e) => n + 2 + e.length, 0);
  const out = Buffer.alloc(total);
  let at = 0;
  for (const entry of entries) {
    if (entry.length > MAX_ENTRY_SIZE) throw new AttexError('ledger.entry-too-large', `entry of ${entry.length} bytes exceeds ${MAX_ENTRY_SIZE}`);
    out.writeUInt16BE(entry.length, at);
    out.set(entry, at + 2);
    at += 2 + entry.length;
  }
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/** Split an entry bundle; throws `ledger.bundle-malformed` when the lengths do not add up. */
export function decodeEntryBundle(bundle: Uint8Array): Uint8Array[] {
  const entries: Uint8Array[] = [];
  let at = 0;
  while (at < bundle.length) {
    if (at + 2 > bundle.length) throw new AttexError('ledger.bundle-malformed', `entry bundle ends inside a length prefix at offset ${at}`);
    const length = (bundle[at]! << 8) | bundle[at + 1]!;
    if (at + 2 + length > bundle.length) throw new AttexError('ledger.bundle-malformed', `entry at offset ${at} runs past the end of the bundle`);
    entries.push(bundle.subarray(at + 2, at + 2 + length));
    at += 2 + length;
  }
  return entries;
}

/**
 * Parse `tile/<L>/<N>[.p/<W>]` or `tile/entries/<N>[.p/<W>]` (level -1 for entries); undefined
 * for anything that is not a canonical tlog-tiles path (leading zeros, bad groups, W of 0 or 256+).
 */
export function parseTilePath(rel: string): TileRef | undefined {
  const m = /^tile\/(entries|0|[1-9]\d?)\/((?:x\d{3}\/)*\d{3})(?:\.p\/([1-9]\d{0,2}))?$/.exec(rel);
  if (!m) return undefined;
  const groups = m[2]!.split('/');
  if (groups.length > 1 && groups[0] === 'x000') return undefined; // not canonical
  let index = 0;
  for (const g of groups) index = index * 1000 + Number(g.replace('x', ''));
  if (!Number.isSafeInteger(index)) return undefined;
  const width = m[3] === undefined ? TILE_WIDTH : Number(m[3]);
  if (width >= TILE_WIDTH && m[3] !== undefined) return undefined;
  return { level: m[1] === 'entries' ? -1 : Number(m[1]), index, width };
}
