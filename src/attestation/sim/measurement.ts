/**
 * The simulated launch measurement, derived from what actually runs: SHA-384 over a manifest of
 * the executor's source tree (every `src/**\/*.ts`, sorted by path) and the caller's
 * `measurementInput` (for example the executor's configuration). Change a source file or the
 * configuration and the measurement changes, as it would for a rebuilt guest image.
 *
 *   manifest    = for each file, in byte order of its posix path relative to src/:
 *                 "<path>\0<sha384 hex of contents>\n"
 *   measurement = SHA-384("attex-sim-measurement/1\0" || SHA-384(manifest) || SHA-384(measurementInput))
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { concatBytes, sha384, toHex } from '../../util/index.ts';

/** The repository's `src/` directory (this file lives at src/attestation/sim/). */
export const SOURCE_ROOT = path.resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');

async function listTs(dir: string, rel: string, out: string[]): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const childRel = rel === '' ? entry.name : `${rel}/${entry.name}`;
    if (entry.isDirectory()) await listTs(path.join(dir, entry.name), childRel, out);
    else if (entry.isFile() && entry.name.endsWith('.ts')) out.push(childRel);
  }
}

/** SHA-384 of the source manifest of `root` (default: this checkout's src/). */
export async function sourceTreeDigest(root: string = SOURCE_ROOT): Promise<Uint8Array> {
  const files: string[] = [];
  await listTs(root, '', files);
  files.sort((a, b) => (Buffer.compare(Buffer.from(a), Buffer.from(b))));
  const lines: string[] = [];
  for (const rel of files) lines.push(`${rel}\0${toHex(sha384(await readFile(path.join(root, rel))))}\n`);
  return sha384(lines.join(''));
}

export function combineMeasurement(treeDigest: Uint8Array, measurementInput: Uint8Array = new Uint8Array(0)): Uint8Array {
  return sha384(concatBytes(new TextEncoder().encode('attex-sim-measurement/1\0'), treeDigest, sha384(measurementInput)));
}
