/**
 * Which component imports a manifest allows. Capability interfaces need a non-empty grant; the
 * engine baseline (the WASI 0.2 interfaces the QuickJS runtime links against) is always answered
 * by inert host stubs that grant nothing: no environment, no preopened directories, empty stdin,
 * discarded stdout. Anything else is refused: a component's imports must be its grant.
 */
import type { Manifest, WorldName } from './manifest.ts';

export const CAPABILITY_INTERFACES = {
  logging: 'wasi:logging/logging@0.1.0-draft',
  config: 'wasi:config/store@0.2.0-draft',
  kv: 'wasi:keyvalue/store@0.2.0-draft2',
  http: 'attex:action/http@0.1.0',
  secrets: 'attex:action/secrets@0.1.0',
} as const;

export const ACTION_EXPORT = 'attex:action/action@0.1.0';

const ENGINE_BASELINE = new Set([
  'wasi:cli/environment', 'wasi:cli/exit', 'wasi:cli/stdin', 'wasi:cli/stdout', 'wasi:cli/stderr',
  'wasi:cli/terminal-input', 'wasi:cli/terminal-output', 'wasi:cli/terminal-stdin',
  'wasi:cli/terminal-stdout', 'wasi:cli/terminal-stderr', 'wasi:io/error', 'wasi:io/poll',
  'wasi:io/streams', 'wasi:clocks/monotonic-clock', 'wasi:clocks/wall-clock',
  'wasi:filesystem/types', 'wasi:filesystem/preopens', 'wasi:random/insecure-seed',
  'wasi:random/random', 'wasi:random/insecure',
]);

/** The imports each world of wit/action.wit declares. */
export const WORLD_IMPORTS: Record<WorldName, readonly string[]> = {
  'pure-action': [],
  'basic-action': [CAPABILITY_INTERFACES.logging, CAPABILITY_INTERFACES.config],
  'http-action': [CAPABILITY_INTERFACES.logging, CAPABILITY_INTERFACES.http],
  'secrets-action': [CAPABILITY_INTERFACES.logging, CAPABILITY_INTERFACES.secrets],
  'kv-action': [CAPABILITY_INTERFACES.logging, CAPABILITY_INTERFACES.kv],
  'http-secrets-action': [CAPABILITY_INTERFACES.logging, CAPABILITY_INTERFACES.http, CAPABILITY_INTERFACES.secrets],
  'full-action': Object.values(CAPABILITY_INTERFACES),
};

/** `wasi:io/streams@0.2.12` -> `wasi:io/streams` (engine baseline accepts any 0.2.x). */
function unversioned(name: string): { base: string; version: string | undefined } {
  const at = name.lastIndexOf('@');
  return at < 0 ? { base: name, version: undefined } : { base: name.slice(0, at), version: name.slice(at + 1) };
}

export function isEngineBaseline(name: string): boolean {
  const { base, version } = unversioned(name);
  return ENGINE_BASELINE.has(base) && version !== undefined && /^0\.2\.\d+$/.test(version);
}

/** The capability interfaces a manifest's grants allow. */
export function allowedCapabilities(manifest: Manifest): Set<string> {
  const allowed = new Set<string>([CAPABILITY_INTERFACES.logging]);
  if (manifest.grants.config.length > 0) allowed.add(CAPABILITY_INTERFACES.config);
  if (manifest.grants.kv.length > 0) allowed.add(CAPABILITY_INTERFACES.kv);
  if (manifest.grants.http.length > 0) allowed.add(CAPABILITY_INTERFACES.http);
  if (manifest.grants.secrets.length > 0) allowed.add(CAPABILITY_INTERFACES.secrets);
  return allowed;
}

/** Imports not covered by the manifest (empty when the component may load). */
export function excessImports(imports: readonly string[], manifest: Manifest): string[] {
  const allowed = allowedCapabilities(manifest);
  return imports.filter((name) => !allowed.has(name) && !isEngineBaseline(name));
}

/**
 * Import and export names from the WIT text jco prints for a component (`import x;` lines).
 * Function-level imports (`import f: func(...)`) are reported by their name so they are refused.
 */
export function parseWorldItems(witText: string): { imports: string[]; exports: string[] } {
  const imports: string[] = [];
  const exports: string[] = [];
  for (const line of witText.split('\n')) {
    // `import ns:pkg/iface@1.0.0;` names an interface; `import name: func(...)` a bare item.
    const m = /^\s*(import|export)\s+([^\s;]+?)(;|:\s)/.exec(line);
    if (!m) continue;
    (m[1] === 'import' ? imports : exports).push(m[2]!);
  }
  return { imports, exports };
}
