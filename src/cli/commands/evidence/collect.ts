import { type Command, EXIT_USAGE, writeLine } from '../../command.ts';

// Placeholder until 'attex evidence collect' lands; it says so instead of pretending to work.
export const subcommand: Command = {
  name: 'collect',
  summary: 'collect',
  help: 'usage: attex evidence collect\n\nThis sub-command is not available in this build yet.',
  async run(_argv, io) {
    writeLine(io.stderr, 'attex evidence collect: not available in this build yet');
    return EXIT_USAGE;
  },
};
