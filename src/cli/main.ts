#!/usr/bin/env node
/**
 * attex command-line entry point. Each sub-command lives in its own module under ./commands and
 * is loaded only when used, so `attex verify` does not pay for the sandbox or the server.
 */
import { fileURLToPath } from 'node:url';
import { AttexError } from '../errors/index.ts';
import { type Command, type CommandIO, EXIT_USAGE, UsageError, defaultIO, writeLine } from './command.ts';

interface CommandEntry {
  readonly summary: string;
  readonly load: () => Promise<Command>;
}

const commands: Record<string, CommandEntry> = {
  dev: { summary: 'start a local broker and executor in simulated mode', load: async () => (await import('./commands/dev.ts')).command },
  executor: { summary: 'run the attested executor service', load: async () => (await import('./commands/executor.ts')).command },
  broker: { summary: 'run the key broker, or manage its secrets', load: async () => (await import('./commands/broker.ts')).command },
  build: { summary: 'build WebAssembly components from components/', load: async () => (await import('./commands/build.ts')).command },
  action: { summary: 'run one action locally in the sandbox', load: async () => (await import('./commands/action.ts')).command },
  dispatch: { summary: 'send a signed action request to an executor', load: async () => (await import('./commands/dispatch.ts')).command },
  verify: { summary: 'verify a receipt bundle offline', load: async () => (await import('./commands/verify.ts')).command },
  evidence: { summary: 'verify, appraise, simulate or collect TEE evidence', load: async () => (await import('./commands/evidence.ts')).command },
  ledger: { summary: 'inspect and export the transparency log', load: async () => (await import('./commands/ledger.ts')).command },
  keygen: { summary: 'generate an Ed25519 key pair for signing requests or logs', load: async () => (await import('./commands/keygen.ts')).command },
};

export function usage(): string {
  const width = Math.max(...Object.keys(commands).map((n) => n.length));
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return [
    'usage: attex <command> [options]',
    '',
    'commands:',
    ...lines,
    '',
    'Run `attex <command> --help` for a command\'s options.',
    'Exit codes: 0 success or verified, 1 negative verdict (rejected, not verified, action failed), 2 usage or I/O error.',
  ].join('\n');
}

export async function runCli(argv: string[], io: CommandIO = defaultIO()): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    writeLine(name === undefined ? io.stderr : io.stdout, usage());
    return name === undefined ? EXIT_USAGE : 0;
  }
  if (name === '--version') {
    writeLine(io.stdout, process.env.npm_package_version ?? '0.1.0');
    return 0;
  }
  const entry = commands[name];
  if (!entry) {
    writeLine(io.stderr, `attex: unknown command '${name}'\n\n${usage()}`);
    return EXIT_USAGE;
  }
  const command = await entry.load();
  const helpForSubcommand = rest[0] !== undefined && (command.subcommands ?? []).includes(rest[0]);
  if (!helpForSubcommand && (rest.includes('--help') || rest.includes('-h'))) {
    writeLine(io.stdout, command.help);
    return 0;
  }
  try {
    return await command.run(rest, io);
  } catch (err) {
    if (err instanceof UsageError) {
      writeLine(io.stderr, `attex ${name}: ${err.message}\nRun \`attex ${name} --help\` for usage.`);
      return EXIT_USAGE;
    }
    if (err instanceof AttexError) {
      writeLine(io.stderr, `attex ${name}: ${err.message} [${err.code}]`);
      return EXIT_USAGE;
    }
    writeLine(io.stderr, `attex ${name}: ${err instanceof Error ? err.message : String(err)}`);
    return EXIT_USAGE;
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  // A reader that stops early (`attex verify receipt.json | head -3`) closes the pipe: the rest
  // of the output is dropped and the command still ends with its own exit code, where an
  // unhandled EPIPE would crash it with a stack trace and exit code 1.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') throw err;
    });
  }
  process.exitCode = await runCli(process.argv.slice(2));
}
