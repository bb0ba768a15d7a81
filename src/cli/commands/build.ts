import { type Command, EXIT_USAGE, writeLine } from '../command.ts';

// Placeholder until the 'build' command lands; it says so instead of pretending to work.
export const command: Command = {
  name: 'build',
  summary: 'build',
  help: 'usage: attex build\n\nThis command is not available in this build yet.',
  async run(_argv, io) {
    writeLine(io.stderr, 'attex build: not available in this build yet');
    return EXIT_USAGE;
  },
};
