/**
 * The executor's components: build each `componentsDir/<name>/` (or take the content-addressed
 * cached build), then load it (imports checked against the manifest's grant, core modules
 * compiled once). A component that fails to build or load stops start-up: an executor never
 * serves a partial set of actions silently.
 */
import { readFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { AttexError, toAttexError } from '../errors/index.ts';
import { type BuildEvent, buildComponent } from '../sandbox/build.ts';
import { type LoadedComponent, loadComponent } from '../sandbox/index.ts';

export interface LoadComponentsOptions {
  readonly componentsDir: string;
  readonly cacheDir: string;
  /** Only these actions (default: every directory with an attex.json). */
  readonly only?: readonly string[];
  readonly onProgress?: (event: BuildEvent) => void;
}

async function componentDirs(root: string): Promise<Map<string, string>> {
  let entries;
  try {
    entries = await readdir(root, { withFileTypes: true });
  } catch (err) {
    throw new AttexError('executor.components', `cannot read the components directory: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  const dirs = new Map<string, string>();
  for (const e of entries.filter((x) => x.isDirectory()).sort((a, b) => a.name.localeCompare(b.name))) {
    const dir = path.join(root, e.name);
    try {
      await stat(path.join(dir, 'attex.json'));
    } catch {
      continue;
    }
    dirs.set(e.name, dir);
  }
  return dirs;
}

export async function loadDeployedComponents(o: LoadComponentsOptions): Promise<LoadedComponent[]> {
  const dirs = await componentDirs(o.componentsDir);
  const wanted = o.only ?? [...dirs.keys()];
  const loaded: LoadedComponent[] = [];
  for (const name of wanted) {
    const dir = dirs.get(name);
    if (dir === undefined) throw new AttexError('executor.components', `action '${name}' has no component directory with an attex.json`);
    try {
      const built = await buildComponent(dir, { cacheDir: o.cacheDir, ...(o.onProgress ? { onProgress: o.onProgress } : {}) });
      if (built.name !== name) throw new AttexError('executor.components', `components/${name}/attex.json names the action '${built.name}'; the directory and the name must agree`);
      loaded.push(await loadComponent(new Uint8Array(await readFile(built.wasmPath)), built.manifest));
    } catch (err) {
      const e = toAttexError(err, 'executor.components');
      throw new AttexError(e.code, `component ${name}: ${e.message}`, { cause: err });
    }
  }
  if (loaded.length === 0) throw new AttexError('executor.components', 'no components to deploy');
  return loaded;
}

/** Secret names the components' grants mention (sorted, unique). */
export function secretsNeeded(components: readonly LoadedComponent[]): string[] {
  return [...new Set(components.flatMap((c) => c.manifest.grants.secrets))].sort();
}
