import { type Command, EXIT_USAGE, writeLine } from '../command.ts';

// Placeholder until the 'action' command lands; it says so instead of pretending to work.
export const command: Command = {
  name: 'action',
  summary: 'action',
  help: 'usage: attex action\n\nThis command is not available in this build yet.',
  async run(_argv, io) {
    writeLine(io.stderr, 'attex action: not available in this build yet');
    return EXIT_USAGE;
  },
};
