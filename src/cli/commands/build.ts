/** `attex build [components-dir]`: build every component (cached by content hash). */
import path from 'node:path';
import { type Command, EXIT_NEGATIVE, EXIT_OK, parseCommandArgs, writeJson, writeLine } from '../command.ts';

const help = `usage: attex build [components-dir] [--json] [--force] [--cache-dir DIR]

Builds every <components-dir>/<name>/ that has an attex.json manifest into a WebAssembly
component (default components-dir: components). Builds are cached under
.attex/cache/components by a hash of source, manifest, WIT and toolchain versions.
A component whose imports exceed its manifest's grant is refused.

options:
  --json           print the build report as JSON on stdout
  --force          rebuild even when a cached build exists
  --cache-dir DIR  cache directory (default .attex/cache/components)

Progress goes to stderr. Exit code 1 when any component failed to build.`;

export const command: Command = {
  name: 'build',
  summary: 'build WebAssembly components from components/',
  help,
  async run(argv, io) {
    const { values, positionals } = parseCommandArgs(argv, {
      json: { type: 'boolean' },
      force: { type: 'boolean' },
      'cache-dir': { type: 'string' },
    });
    const { buildComponents } = await import('../../sandbox/build.ts');
    const dir = path.resolve(io.cwd, positionals[0] ?? 'components');
    const cacheDir = path.resolve(io.cwd, values['cache-dir'] ?? '.attex/cache/components');
    const report = await buildComponents(dir, {
      cacheDir,
      force: values.force ?? false,
      onProgress: (e) => {
        if (e.kind === 'start') writeLine(io.stderr, `building ${e.name} (${e.backend})…`);
        else if (e.kind === 'done') writeLine(io.stderr, `  ${e.name}: ${e.cached ? 'cached' : 'built'} in ${e.ms} ms, ${e.bytes} bytes`);
        else writeLine(io.stderr, `  ${e.name}: FAILED after ${e.ms} ms: ${e.message} [${e.code}]`);
      },
    });
    if (values.json) {
      writeJson(io.stdout, {
        built: report.built.map((b) => ({ name: b.name, digest: b.digest, wasm: path.relative(io.cwd, b.wasmPath), cached: b.cached, ms: b.ms, bytes: b.bytes, imports: b.imports })),
        failed: report.failed,
      });
    } else {
      for (const b of report.built) writeLine(io.stdout, `${b.name}\t${b.digest}\t${path.relative(io.cwd, b.wasmPath)}`);
    }
    return report.failed.length > 0 ? EXIT_NEGATIVE : EXIT_OK;
  },
};
