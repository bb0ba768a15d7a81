import { type Command, EXIT_USAGE, writeLine } from '../command.ts';

// Placeholder until the 'dev' command lands; it says so instead of pretending to work.
export const command: Command = {
  name: 'dev',
  summary: 'dev',
  help: 'usage: attex dev\n\nThis command is not available in this build yet.',
  async run(_argv, io) {
    writeLine(io.stderr, 'attex dev: not available in this build yet');
    return EXIT_USAGE;
  },
};
