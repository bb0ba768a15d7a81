import { type Command, EXIT_USAGE, writeLine } from '../command.ts';

// Placeholder until the 'dispatch' command lands; it says so instead of pretending to work.
export const command: Command = {
  name: 'dispatch',
  summary: 'dispatch',
  help: 'usage: attex dispatch\n\nThis command is not available in this build yet.',
  async run(_argv, io) {
    writeLine(io.stderr, 'attex dispatch: not available in this build yet');
    return EXIT_USAGE;
  },
};
