import { type Command, EXIT_USAGE, writeLine } from '../command.ts';

// Placeholder until the 'evidence' command lands; it says so instead of pretending to work.
export const command: Command = {
  name: 'evidence',
  summary: 'evidence',
  help: 'usage: attex evidence\n\nThis command is not available in this build yet.',
  async run(_argv, io) {
    writeLine(io.stderr, 'attex evidence: not available in this build yet');
    return EXIT_USAGE;
  },
};
