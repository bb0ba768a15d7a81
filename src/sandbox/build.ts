/**
 * Building components from `components/<name>/` (source + attex.json). Builds are slow, so each
 * result is cached by a content hash of everything that shapes it: source files, manifest, WIT
 * and toolchain versions. A built component whose real imports exceed its manifest is refused
 * and never cached. Built .wasm files live only in the cache (never committed).
 */
import { mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { writeFileAtomic } from '../util/files.ts';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AttexError, toAttexError } from '../errors/index.ts';
import { sha256, toHex } from '../util/index.ts';
import { SandboxCodes } from './errors.ts';
import { assertImportsGranted, inspectComponent } from './loader.ts';
import { type Manifest, loadManifest } from './manifest.ts';
import { packageVersion } from './transpile-cache.ts';

export const DEFAULT_WIT_DIR = fileURLToPath(new URL('../../wit', import.meta.url));

export interface BuildOptions {
  /** Where built components are cached (default `.attex/cache/components` under cwd). */
  readonly cacheDir?: string;
  readonly witDir?: string;
  /** Rebuild even when the cache has the same content hash. */
  readonly force?: boolean;
  readonly onProgress?: (event: BuildEvent) => void;
}

export type BuildEvent =
  | { readonly kind: 'start'; readonly name: string; readonly backend: string }
  | { readonly kind: 'done'; readonly name: string; readonly cached: boolean; readonly ms: number; readonly bytes: number }
  | { readonly kind: 'failed'; readonly name: string; readonly ms: number; readonly code: string; readonly message: string };

export interface BuiltComponent {
  readonly name: string;
  readonly dir: string;
  readonly manifest: Manifest;
  readonly wasmPath: string;
  /** `sha256:<hex>` of the component binary. */
  readonly digest: string;
  readonly imports: readonly string[];
  readonly cached: boolean;
  readonly ms: number;
  readonly bytes: number;
}

export interface BuildReport {
  readonly built: BuiltComponent[];
  readonly failed: Array<{ readonly name: string; readonly code: string; readonly message: string }>;
}


async function listFiles(dir: string, base = dir): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.name.startsWith('.') || entry.name === 'node_modules') continue;
    const full = path.join(dir, entry.name);
    // A link could point outside the folder, and what it points to would escape the build key.
    if (entry.isSymbolicLink()) throw new AttexError(SandboxCodes.buildFailed, `${path.relative(base, full)} is a symbolic link; a component folder must hold its files`);
    if (entry.isDirectory()) out.push(...(await listFiles(full, base)));
    else if (entry.isFile()) out.push(path.relative(base, full));
  }
  return out.sort();
}

async function hashTree(dir: string, label: string, parts: string[]): Promise<void> {
  for (const rel of await listFiles(dir)) {
    parts.push(`${label}/${rel.split(path.sep).join('/')}`, toHex(sha256(await readFile(path.join(dir, rel)))));
  }
}

/** The cache key: every input that can change the built bytes. */
export async function buildKey(dir: string, manifest: Manifest, witDir: string): Promise<string> {
  const parts = [
    'attex-build-v1',
    `componentize-qjs@${packageVersion('componentize-qjs')}`,
    `componentize-js@${packageVersion('@bytecodealliance/componentize-js')}`,
    `jco@${packageVersion('@bytecodealliance/jco')}`,
    JSON.stringify(manifest),
  ];
  await hashTree(dir, 'src', parts);
  await hashTree(witDir, 'wit', parts);
  return toHex(sha256(parts.join('\n')));
}

const exposed = new Set<string>();
/**
 * componentize-js reads the WIT folder from inside its own WebAssembly toolchain through
 * preview2-shim, which (since 0.26) preopens nothing; give it exactly the WIT folder.
 */
async function exposeToToolchain(dir: string): Promise<void> {
  const abs = path.resolve(dir);
  if (exposed.has(abs)) return;
  // Typed loosely: the package's published types describe its browser build.
  const shim = (await import('@bytecodealliance/preview2-shim/filesystem')) as unknown as { _addPreopen(virtual: string, host: string): void };
  shim._addPreopen(abs, abs);
  exposed.add(abs);
}

async function compile(dir: string, manifest: Manifest, witDir: string): Promise<Uint8Array> {
  const entry = path.join(dir, manifest.entry);
  const source = await readFile(entry, 'utf8');
  switch (manifest.backend) {
    case 'quickjs': {
      const { componentize } = await import('componentize-qjs');
      // Not `stubWasi`: it would stub the world's own WASI capability imports too. The engine's
      // baseline WASI imports are answered by inert host stubs instead (imports-policy.ts).
      const { component } = await componentize({ witPath: witDir, jsSource: source, jsPath: entry, world: manifest.world, sync: true });
      return new Uint8Array(component);
    }
    case 'starlingmonkey': {
      const { componentize } = await import('@bytecodealliance/componentize-js');
      await exposeToToolchain(witDir);
      const { component } = await componentize({
        sourcePath: entry,
        witPath: witDir,
        worldName: manifest.world,
        // None of our worlds import stdio, clocks, random or http: disable them all.
        disableFeatures: ['stdio', 'random', 'clocks', 'http', 'fetch-event'],
      });
      return component;
    }
    case 'wat': {
      const { parse, componentEmbed, componentNew } = await import('@bytecodealliance/jco');
      if (manifest.world !== 'pure-action') throw new Error('WAT components may only target pure-action');
      const core = await parse(source);
      // jco's wasm-tools cannot read our WIT folder; embed the one interface a pure action needs.
      const witText = await readFile(path.join(witDir, 'action.wit'), 'utf8');
      const iface = /^interface action \{[\s\S]*?^\}/m.exec(witText);
      if (!iface) throw new Error('wit/action.wit has no interface action');
      const witSource = `package attex:action@0.1.0;\n${iface[0]}\nworld pure-action { export action; }\n`;
      const embedded = await componentEmbed({ binary: core, witSource, world: manifest.world });
      return componentNew(embedded);
    }
  }
}


/** Build one component directory (or return its cached build). */
export async function buildComponent(dir: string, options: BuildOptions = {}): Promise<BuiltComponent> {
  const started = performance.now();
  const manifest = await loadManifest(dir);
  const witDir = options.witDir ?? DEFAULT_WIT_DIR;
  const cacheDir = options.cacheDir ?? path.resolve('.attex/cache/components');
  const key = await buildKey(dir, manifest, witDir);
  const wasmPath = path.join(cacheDir, `${manifest.name}-${key.slice(0, 24)}.wasm`);
  options.onProgress?.({ kind: 'start', name: manifest.name, backend: manifest.backend });
  let bytes: Uint8Array | undefined;
  let cached = false;
  if (!options.force) {
    try {
      if ((await stat(wasmPath)).isFile()) {
        bytes = new Uint8Array(await readFile(wasmPath));
        cached = true;
      }
    } catch {
      bytes = undefined;
    }
  }
  try {
    if (!bytes) {
      try {
        bytes = await compile(dir, manifest, witDir);
      } catch (err) {
        throw new AttexError(SandboxCodes.buildFailed, `${manifest.name}: ${(err instanceof Error ? err.message : String(err)).split('\n').slice(0, 3).join(' ').slice(0, 500)}`);
      }
    }
    const { imports } = await inspectComponent(bytes);
    assertImportsGranted(imports, manifest);
    if (!cached) {
      await mkdir(cacheDir, { recursive: true });
      await writeFileAtomic(wasmPath, bytes);
    }
    const ms = Math.round(performance.now() - started);
    options.onProgress?.({ kind: 'done', name: manifest.name, cached, ms, bytes: bytes.length });
    return { name: manifest.name, dir, manifest, wasmPath, digest: `sha256:${toHex(sha256(bytes))}`, imports, cached, ms, bytes: bytes.length };
  } catch (err) {
    const e = toAttexError(err, SandboxCodes.buildFailed);
    options.onProgress?.({ kind: 'failed', name: manifest.name, ms: Math.round(performance.now() - started), code: e.code, message: e.message });
    throw e;
  }
}

/** Build every `<componentsDir>/<name>/attex.json`; failures are reported, not thrown. */
export async function buildComponents(componentsDir: string, options: BuildOptions = {}): Promise<BuildReport> {
  const report: BuildReport = { built: [], failed: [] };
  let entries;
  try {
    entries = await readdir(componentsDir, { withFileTypes: true });
  } catch (err) {
    throw new AttexError(SandboxCodes.buildFailed, `cannot read ${componentsDir}: ${(err as Error).message}`);
  }
  for (const entry of entries.filter((e) => e.isDirectory()).sort((a, b) => a.name.localeCompare(b.name))) {
    const dir = path.join(componentsDir, entry.name);
    try {
      await stat(path.join(dir, 'attex.json'));
    } catch {
      continue;
    }
    try {
      report.built.push(await buildComponent(dir, options));
    } catch (err) {
      const e = toAttexError(err, SandboxCodes.buildFailed);
      report.failed.push({ name: entry.name, code: e.code, message: e.message });
    }
  }
  return report;
}
