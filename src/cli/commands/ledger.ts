import { type Command, EXIT_USAGE, writeLine } from '../command.ts';

// Placeholder until the 'ledger' command lands; it says so instead of pretending to work.
export const command: Command = {
  name: 'ledger',
  summary: 'ledger',
  help: 'usage: attex ledger\n\nThis command is not available in this build yet.',
  async run(_argv, io) {
    writeLine(io.stderr, 'attex ledger: not available in this build yet');
    return EXIT_USAGE;
  },
};
