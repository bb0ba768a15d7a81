import { type Command, EXIT_USAGE, writeLine } from '../command.ts';

// Placeholder until the 'keygen' command lands; it says so instead of pretending to work.
export const command: Command = {
  name: 'keygen',
  summary: 'keygen',
  help: 'usage: attex keygen\n\nThis command is not available in this build yet.',
  async run(_argv, io) {
    writeLine(io.stderr, 'attex keygen: not available in this build yet');
    return EXIT_USAGE;
  },
};
