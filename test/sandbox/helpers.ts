/** Shared setup for sandbox tests: build (cached) and load the example and fixture components. */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildComponent, type BuiltComponent } from '../../src/sandbox/build.ts';
import { type LoadedComponent, type Manifest, loadComponent, overrideManifest } from '../../src/sandbox/index.ts';

export const repoRoot = path.resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
export const cacheDir = path.join(repoRoot, '.attex/cache/components');
export const transpileCacheDir = path.join(repoRoot, '.attex/cache/transpiled');
export const examplesDir = path.join(repoRoot, 'components');
export const fixturesDir = path.join(repoRoot, 'test/sandbox/fixtures/components');

export async function build(dir: string): Promise<BuiltComponent> {
  return buildComponent(dir, { cacheDir });
}

export async function load(built: BuiltComponent, override?: unknown): Promise<LoadedComponent> {
  const manifest: Manifest = override === undefined ? built.manifest : overrideManifest(built.manifest, override);
  return loadComponent(new Uint8Array(await readFile(built.wasmPath)), manifest, { cacheDir: transpileCacheDir });
}

/** Build and load many components concurrently-by-chunk (builds are CPU heavy). */
export async function buildAndLoad(dirs: string[]): Promise<Map<string, { built: BuiltComponent; loaded: LoadedComponent }>> {
  const out = new Map<string, { built: BuiltComponent; loaded: LoadedComponent }>();
  for (const dir of dirs) {
    const built = await build(dir);
    out.set(built.name, { built, loaded: await load(built) });
  }
  return out;
}
