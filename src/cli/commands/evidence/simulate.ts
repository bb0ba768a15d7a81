import { type Command, EXIT_USAGE, writeLine } from '../../command.ts';

// Placeholder until 'attex evidence simulate' lands; it says so instead of pretending to work.
export const subcommand: Command = {
  name: 'simulate',
  summary: 'simulate',
  help: 'usage: attex evidence simulate\n\nThis sub-command is not available in this build yet.',
  async run(_argv, io) {
    writeLine(io.stderr, 'attex evidence simulate: not available in this build yet');
    return EXIT_USAGE;
  },
};
