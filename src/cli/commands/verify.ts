import { type Command, EXIT_USAGE, writeLine } from '../command.ts';

// Placeholder until the 'verify' command lands; it says so instead of pretending to work.
export const command: Command = {
  name: 'verify',
  summary: 'verify',
  help: 'usage: attex verify\n\nThis command is not available in this build yet.',
  async run(_argv, io) {
    writeLine(io.stderr, 'attex verify: not available in this build yet');
    return EXIT_USAGE;
  },
};
