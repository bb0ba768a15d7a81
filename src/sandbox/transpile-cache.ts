/**
 * On-disk cache of what loading a component derives from its bytes alone: jco's transpiled
 * instantiation code, the core modules (before the per-manifest memory cap) and the decoded
 * imports and exports. Keyed by the component's SHA-256 and the jco version, so a cache entry
 * can only ever describe the exact binary being loaded. Each entry is a directory written
 * under a temporary name and renamed into place; every file's SHA-256 is recorded and checked
 * on read, so a torn or corrupted entry is recomputed, never used. The cache directory must be
 * as trusted as the code itself (anyone who can write it can change what runs).
 */
import { readFileSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { sha256, toHex } from '../util/index.ts';

export interface TranspiledComponent {
  readonly js: string;
  readonly modules: Readonly<Record<string, Uint8Array>>;
  readonly imports: readonly string[];
  readonly exports: readonly string[];
}

interface EntryIndex {
  readonly format: typeof FORMAT;
  readonly js: string;
  readonly modules: Record<string, string>;
  readonly imports: string[];
  readonly exports: string[];
}

const FORMAT = 'attex-transpiled-v1';
const MODULE_NAME = /^[A-Za-z0-9._-]{1,128}\.wasm$/;

/** Installed version of a package (found from its entry point, whatever its `exports` allow), or `absent`. */
export function packageVersion(name: string): string {
  try {
    let dir = path.dirname(fileURLToPath(import.meta.resolve(name)));
    for (;;) {
      try {
        const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
        if (pkg.name === name && typeof pkg.version === 'string') return pkg.version;
      } catch {
        // no package.json at this level
      }
      const parent = path.dirname(dir);
      if (parent === dir) return 'absent';
      dir = parent;
    }
  } catch {
    return 'absent';
  }
}

/** Default location, next to the build cache. */
export function defaultTranspileCacheDir(): string {
  return path.resolve('.attex/cache/transpiled');
}

/** Entry name for a component digest (hex) under the installed jco. */
export function transpileCacheKey(digestHex: string): string {
  return `${digestHex}-jco${packageVersion('@bytecodealliance/jco').replace(/[^0-9A-Za-z.-]/g, '_')}`;
}

const hashOf = (bytes: Uint8Array | string) => toHex(sha256(typeof bytes === 'string' ? new TextEncoder().encode(bytes) : bytes));

/** Read an entry; undefined when absent or when any file fails its recorded digest. */
export async function readTranspiled(cacheDir: string, key: string): Promise<TranspiledComponent | undefined> {
  const dir = path.join(cacheDir, key);
  try {
    const index = JSON.parse(await readFile(path.join(dir, 'index.json'), 'utf8')) as EntryIndex;
    if (index.format !== FORMAT || !Array.isArray(index.imports) || !Array.isArray(index.exports)) return undefined;
    const js = await readFile(path.join(dir, 'component.js'), 'utf8');
    if (hashOf(js) !== index.js) return undefined;
    const modules: Record<string, Uint8Array> = {};
    for (const [name, digest] of Object.entries(index.modules)) {
      if (!MODULE_NAME.test(name)) return undefined;
      const bytes = new Uint8Array(await readFile(path.join(dir, name)));
      if (hashOf(bytes) !== digest) return undefined;
      modules[name] = bytes;
    }
    return { js, modules, imports: index.imports.map(String), exports: index.exports.map(String) };
  } catch {
    return undefined;
  }
}

/** Write an entry (replacing a bad one). Failures are swallowed: the cache is an optimisation. */
export async function writeTranspiled(cacheDir: string, key: string, value: TranspiledComponent): Promise<void> {
  const dir = path.join(cacheDir, key);
  const tmp = `${dir}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await mkdir(tmp, { recursive: true });
    const modules: Record<string, string> = {};
    for (const [name, bytes] of Object.entries(value.modules)) {
      if (!MODULE_NAME.test(name)) return;
      await writeFile(path.join(tmp, name), bytes);
      modules[name] = hashOf(bytes);
    }
    await writeFile(path.join(tmp, 'component.js'), value.js);
    const index: EntryIndex = { format: FORMAT, js: hashOf(value.js), modules, imports: [...value.imports], exports: [...value.exports] };
    await writeFile(path.join(tmp, 'index.json'), JSON.stringify(index));
    await rm(dir, { recursive: true, force: true });
    await rename(tmp, dir);
  } catch {
    // Another process won the race, or the disk is read-only: load from memory this time.
  } finally {
    await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
  }
}
