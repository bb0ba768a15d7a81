import { type Command, EXIT_USAGE, writeLine } from '../command.ts';

// Placeholder until the 'broker' command lands; it says so instead of pretending to work.
export const command: Command = {
  name: 'broker',
  summary: 'broker',
  help: 'usage: attex broker\n\nThis command is not available in this build yet.',
  async run(_argv, io) {
    writeLine(io.stderr, 'attex broker: not available in this build yet');
    return EXIT_USAGE;
  },
};
