import { type Command, EXIT_USAGE, writeLine } from '../command.ts';

// Placeholder until the 'executor' command lands; it says so instead of pretending to work.
export const command: Command = {
  name: 'executor',
  summary: 'executor',
  help: 'usage: attex executor\n\nThis command is not available in this build yet.',
  async run(_argv, io) {
    writeLine(io.stderr, 'attex executor: not available in this build yet');
    return EXIT_USAGE;
  },
};
