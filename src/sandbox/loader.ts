/**
 * Loading a component: validate the binary, read its real imports, refuse any import the
 * manifest does not grant, transpile with jco (instantiation mode: the host supplies every
 * import, no WASI shim), cap each core module's memory, merge its data segments where that
 * changes nothing (wasm-data.ts), turn its memory into an import the worker fills from its pool
 * of zeroed memories (memory-lease.ts), and compile it once per digest. The
 * decoding and transpiling (~0.6 s for a QuickJS component) are cached on disk by digest and
 * jco version (transpile-cache.ts); the grant check and the module rewrites run on every load.
 */
import { componentWit, transpile } from '@bytecodealliance/jco';
import { AttexError } from '../errors/index.ts';
import { sha256, toHex } from '../util/index.ts';
import { SandboxCodes } from './errors.ts';
import { ACTION_EXPORT, excessImports, parseWorldItems } from './imports-policy.ts';
import type { Manifest } from './manifest.ts';
import type { ComponentPayload } from './protocol.ts';
import { type TranspiledComponent, defaultTranspileCacheDir, readTranspiled, transpileCacheKey, writeTranspiled } from './transpile-cache.ts';
import { coalesceDataSegments } from './wasm-data.ts';
import { type MemoryType, WASM_PAGE, capModuleMemory, importDefinedMemory } from './wasm-memory.ts';

export interface LoadedComponent {
  readonly name: string;
  /** `sha256:<hex>` of the component binary. */
  readonly digest: string;
  readonly manifest: Manifest;
  readonly imports: readonly string[];
  readonly payload: ComponentPayload;
}

const MAX_COMPONENT_BYTES = 64 << 20;

function isComponent(bytes: Uint8Array): boolean {
  // Component binaries use the core magic with version 0x0d and layer 1.
  return bytes.length >= 8 && bytes[0] === 0 && bytes[1] === 0x61 && bytes[2] === 0x73 && bytes[3] === 0x6d && bytes[6] === 1 && bytes[7] === 0;
}

/** Read a component's imports and exports (throws `sandbox.invalid-component`). */
export async function inspectComponent(bytes: Uint8Array): Promise<{ imports: string[]; exports: string[] }> {
  assertComponentShape(bytes);
  let wit: string;
  try {
    wit = await componentWit(bytes);
  } catch (err) {
    throw new AttexError(SandboxCodes.invalidComponent, `component does not decode: ${firstLine(err)}`);
  }
  return parseWorldItems(wit);
}

function assertComponentShape(bytes: Uint8Array): void {
  if (bytes.length > MAX_COMPONENT_BYTES) throw new AttexError(SandboxCodes.invalidComponent, `component is larger than ${MAX_COMPONENT_BYTES} bytes`);
  if (!isComponent(bytes)) throw new AttexError(SandboxCodes.invalidComponent, 'not a WebAssembly component binary');
}

/** Refuse a component whose imports exceed its manifest (`sandbox.imports-exceed-grant`). */
export function assertImportsGranted(imports: readonly string[], manifest: Manifest): void {
  const excess = excessImports(imports, manifest);
  if (excess.length > 0) {
    throw new AttexError(
      SandboxCodes.importsExceedGrant,
      `component '${manifest.name}' imports ${excess.join(', ')} which its manifest does not grant`,
      { details: { excess } },
    );
  }
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!.slice(0, 300);
}

/**
 * Core import and export names are arbitrary strings chosen by whoever built the component, and
 * jco copies them into the instantiation code it generates without escaping them (as
 * `exports0['<name>']`). A name holding a quote could therefore turn into code that runs in the
 * worker with Node's APIs. Names are held to printable ASCII without quotes, backslashes, braces
 * or `*` (the toolchains' own names, like `cm32p2|local:init/module-loader|load` or
 * `utf8-to-utf8 (mem0 => mem1)`, fit), so no name can end a string, a comment or a template.
 */
const PLAIN_CORE_NAME = /^[\x20-\x7e]{0,512}$/;
const CODE_CHARACTERS = /['"`\\{}*]/;

function assertPlainCoreNames(moduleName: string, module: WebAssembly.Module): void {
  const names = [
    ...WebAssembly.Module.imports(module).flatMap((i) => [i.module, i.name]),
    ...WebAssembly.Module.exports(module).map((e) => e.name),
  ];
  for (const n of names) {
    if (!PLAIN_CORE_NAME.test(n) || CODE_CHARACTERS.test(n)) {
      throw new AttexError(
        SandboxCodes.invalidComponent,
        `core module ${moduleName} has an import or export name with characters the sandbox refuses (quotes, backslashes, braces, '*', non-printable or non-ASCII, or over 512 characters): ${JSON.stringify(n.slice(0, 80))}`,
      );
    }
  }
}

/** Turn jco's ES module into a script expression whose every call yields a fresh `instantiate`. */
function toFactorySource(js: string): string {
  const body = js.replace(/^export (function|const|let|class) /gm, '$1 ');
  if (/^\s*(import|export)\s/m.test(body)) throw new AttexError(SandboxCodes.invalidComponent, 'unexpected module syntax in transpiled component');
  return `(function componentFactory() {\n${body}\nreturn instantiate;\n})`;
}

/**
 * A transpiled core module as the sandbox compiles it: memory and tables capped, data segments
 * merged where that changes nothing, its one defined memory turned into an import. Pure.
 * `memories`: the memories it defines; `memory`: the type of the one now imported, if any;
 * `dataSegments`: the counts before and after a merge, if there was one.
 */
export function rewriteCoreModule(data: Uint8Array, maxPages: number): {
  readonly bytes: Uint8Array; readonly memories: number; readonly memory?: MemoryType; readonly dataSegments?: { readonly before: number; readonly after: number };
} {
  const capped = capModuleMemory(data, maxPages);
  // Before the memory becomes an import: the merge relies on the module owning a new memory.
  const merged = coalesceDataSegments(capped.bytes);
  const hoisted = importDefinedMemory(merged?.bytes ?? capped.bytes);
  return {
    bytes: hoisted?.bytes ?? merged?.bytes ?? capped.bytes,
    memories: capped.memories,
    ...(hoisted ? { memory: hoisted.memory } : {}),
    ...(merged ? { dataSegments: { before: merged.before, after: merged.after } } : {}),
  };
}

export interface LoadOptions {
  /** Transpile cache directory (default `.attex/cache/transpiled` under cwd); `false` disables it. */
  readonly cacheDir?: string | false;
}

async function transpileComponent(bytes: Uint8Array): Promise<TranspiledComponent> {
  const { imports, exports } = await inspectComponent(bytes);
  let files: Record<string, Uint8Array>;
  try {
    ({ files } = await transpile(bytes, {
      name: 'component',
      instantiation: 'sync',
      noTypescript: true,
      wasiShim: false,
      quiet: true,
    }));
  } catch (err) {
    throw new AttexError(SandboxCodes.invalidComponent, `component does not transpile: ${firstLine(err)}`);
  }
  const js = files['component.js'];
  if (!js) throw new AttexError(SandboxCodes.invalidComponent, 'transpiler produced no instantiation code');
  const modules: Record<string, Uint8Array> = {};
  for (const [name, data] of Object.entries(files)) if (name.endsWith('.wasm')) modules[name] = data;
  return { js: new TextDecoder().decode(js), modules, imports, exports };
}

export async function loadComponent(bytes: Uint8Array, manifest: Manifest, options: LoadOptions = {}): Promise<LoadedComponent> {
  assertComponentShape(bytes);
  const digestHex = toHex(sha256(bytes));
  const cacheDir = options.cacheDir === undefined ? defaultTranspileCacheDir() : options.cacheDir;
  const key = transpileCacheKey(digestHex);
  let transpiled = cacheDir ? await readTranspiled(cacheDir, key) : undefined;
  // The export and grant checks come before the (slow) transpile so a refused component costs little.
  const { imports, exports } = transpiled ?? (await inspectComponent(bytes));
  if (!exports.includes(ACTION_EXPORT)) {
    throw new AttexError(SandboxCodes.invalidComponent, `component does not export ${ACTION_EXPORT}`);
  }
  assertImportsGranted(imports, manifest);
  if (!transpiled) {
    transpiled = await transpileComponent(bytes);
    if (cacheDir) await writeTranspiled(cacheDir, key, transpiled);
  }
  const maxPages = Math.floor((manifest.limits.memory_mb * 1048576) / WASM_PAGE);
  const modules: Record<string, WebAssembly.Module> = {};
  const memoryImports: Record<string, MemoryType> = {};
  const definedMemories: Record<string, number> = {};
  for (const [name, data] of Object.entries(transpiled.modules)) {
    const rewritten = rewriteCoreModule(data, maxPages);
    if (rewritten.memory) memoryImports[name] = rewritten.memory;
    if (rewritten.memories > 0) definedMemories[name] = rewritten.memories;
    try {
      modules[name] = await WebAssembly.compile(rewritten.bytes);
    } catch (err) {
      throw new AttexError(SandboxCodes.invalidComponent, `core module ${name} does not compile: ${firstLine(err)}`);
    }
    assertPlainCoreNames(name, modules[name]);
  }
  const digest = `sha256:${digestHex}`;
  const payload: ComponentPayload = {
    key: `${manifest.name}@${digest}`,
    digest,
    name: manifest.name,
    factorySource: toFactorySource(transpiled.js),
    modules,
    memoryImports,
    definedMemories,
    imports: transpiled.imports,
    memoryCapBytes: maxPages * WASM_PAGE,
    limits: manifest.limits,
  };
  return { name: manifest.name, digest, manifest, imports: transpiled.imports, payload };
}
