/**
 * `attex evidence <sub-command>`: dispatches to verify | simulate | collect | appraise, each in
 * its own module under ./evidence, loaded only when used.
 */
import { type Command, EXIT_OK, EXIT_USAGE, UsageError, writeLine } from '../command.ts';

interface SubcommandEntry {
  readonly summary: string;
  readonly load: () => Promise<Command>;
}

const subcommands: Record<string, SubcommandEntry> = {
  verify: { summary: 'verify SEV-SNP, Azure HCL or TDX evidence offline against vendor roots', load: async () => (await import('./evidence/verify.ts')).subcommand },
  simulate: { summary: 'produce evidence from the software-emulated TEE', load: async () => (await import('./evidence/simulate.ts')).subcommand },
  collect: { summary: 'collect evidence from this machine\'s TEE', load: async () => (await import('./evidence/collect.ts')).subcommand },
  appraise: { summary: 'verify evidence and appraise it against a reference-value policy', load: async () => (await import('./evidence/appraise.ts')).subcommand },
};

function helpText(): string {
  const width = Math.max(...Object.keys(subcommands).map((n) => n.length));
  return [
    'usage: attex evidence <sub-command> [options]',
    '',
    'sub-commands:',
    ...Object.entries(subcommands).map(([name, s]) => `  ${name.padEnd(width)}  ${s.summary}`),
    '',
    'Run `attex evidence <sub-command> --help` for its options.',
    'Exit codes: 0 success or accepted, 1 rejected, 2 usage or I/O error.',
  ].join('\n');
}

export const command: Command = {
  name: 'evidence',
  summary: 'verify, appraise, simulate or collect TEE evidence',
  help: helpText(),
  subcommands: Object.keys(subcommands),
  async run(argv, io) {
    const [name, ...rest] = argv;
    if (name === undefined) {
      writeLine(io.stderr, helpText());
      return EXIT_USAGE;
    }
    if (name === 'help' || name === '--help' || name === '-h') {
      const target = name === 'help' && rest[0] !== undefined ? subcommands[rest[0]] : undefined;
      writeLine(io.stdout, target ? (await target.load()).help : helpText());
      return EXIT_OK;
    }
    const entry = Object.hasOwn(subcommands, name) ? subcommands[name] : undefined;
    if (entry === undefined) throw new UsageError(`unknown sub-command '${name}' (expected one of ${Object.keys(subcommands).join(', ')})`);
    const sub = await entry.load();
    if (rest.includes('--help') || rest.includes('-h')) {
      writeLine(io.stdout, sub.help);
      return EXIT_OK;
    }
    return sub.run(rest, io);
  },
};
