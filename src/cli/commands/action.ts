/** `attex action run`: run one action locally in the sandbox pool. */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { type Command, EXIT_NEGATIVE, EXIT_OK, UsageError, parseCommandArgs, writeJson, writeLine } from '../command.ts';

const help = `usage: attex action run <component-dir | component.wasm> --input JSON [options]

Runs one action in a fresh sandbox instance and prints its output, resource usage and the
limit outcome. A component directory is built first (cached); a .wasm file needs --manifest.

options:
  --input JSON           action input (JSON text; default {})
  --manifest FILE        manifest for a .wasm file (attex.json)
  --grant-override JSON  merge into the manifest, e.g. '{"grants":{"http":["https://x.example"]}}'
  --secrets-env          serve secrets from ATTEX_SECRET_<NAME> environment variables
  --json                 print the whole result as JSON

Exit code 1 when the action fails or hits a limit.`;

export const command: Command = {
  name: 'action',
  summary: 'run one action locally in the sandbox',
  help,
  async run(argv, io) {
    const [sub, ...rest] = argv;
    if (sub !== 'run') throw new UsageError(sub === undefined ? 'missing sub-command (run)' : `unknown sub-command '${sub}'`);
    const { values, positionals } = parseCommandArgs(rest, {
      input: { type: 'string' },
      manifest: { type: 'string' },
      'grant-override': { type: 'string' },
      'secrets-env': { type: 'boolean' },
      json: { type: 'boolean' },
    });
    const target = positionals[0];
    if (!target) throw new UsageError('missing <component-dir | component.wasm>');
    let override: unknown;
    if (values['grant-override'] !== undefined) {
      try {
        override = JSON.parse(values['grant-override']);
      } catch {
        throw new UsageError('--grant-override is not valid JSON');
      }
    }
    const sandbox = await import('../../sandbox/index.ts');
    const { buildComponent } = await import('../../sandbox/build.ts');
    const abs = path.resolve(io.cwd, target);
    let bytes: Uint8Array;
    let manifest;
    if ((await stat(abs)).isDirectory()) {
      const built = await buildComponent(abs, { cacheDir: path.resolve(io.cwd, '.attex/cache/components') });
      bytes = new Uint8Array(await readFile(built.wasmPath));
      manifest = built.manifest;
    } else {
      if (!values.manifest) throw new UsageError('a .wasm file needs --manifest');
      bytes = new Uint8Array(await readFile(abs));
      manifest = await sandbox.loadManifest(path.resolve(io.cwd, values.manifest));
    }
    if (override !== undefined) manifest = sandbox.overrideManifest(manifest, override);
    const component = await sandbox.loadComponent(bytes, manifest, { cacheDir: path.resolve(io.cwd, '.attex/cache/transpiled') });
    const env = io.env;
    const secrets = values['secrets-env']
      ? {
          has: (n: string) => env[`ATTEX_SECRET_${n.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`] !== undefined,
          get: (n: string) => {
            const v = env[`ATTEX_SECRET_${n.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`];
            return v === undefined ? undefined : new TextEncoder().encode(v);
          },
        }
      : undefined;
    const pool = await sandbox.SandboxPool.create({ size: 1, components: [component] });
    try {
      const result = await pool.run(component.name, values.input ?? '{}', { kv: new sandbox.MemoryKvStore(), ...(secrets ? { secrets } : {}) });
      if (values.json) {
        writeJson(io.stdout, result);
      } else {
        if (result.ok) writeLine(io.stdout, result.output);
        else writeLine(io.stderr, `action failed: ${result.error?.message} [${result.error?.code}]`);
        const u = result.usage;
        writeLine(io.stderr, `component ${result.component.name} ${result.component.digest}`);
        writeLine(io.stderr, `duration ${result.durationMs} ms, cpu ${u.cpuMs} ms, memory ${Math.round(u.memoryBytes / 1024)} KiB, host calls ${u.hostCalls}`);
        if (u.hostsContacted.length) writeLine(io.stderr, `hosts contacted: ${u.hostsContacted.join(', ')}`);
        if (u.secretsUsed.length || u.secretsRevealed.length) writeLine(io.stderr, `secrets used: ${u.secretsUsed.join(', ') || '-'}; revealed: ${u.secretsRevealed.join(', ') || '-'}`);
        if (u.denied.length) writeLine(io.stderr, `denied: ${u.denied.join(', ')}`);
      }
      return result.ok ? EXIT_OK : EXIT_NEGATIVE;
    } finally {
      await pool.close();
    }
  },
};
