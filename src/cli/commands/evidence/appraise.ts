import { type Command, EXIT_USAGE, writeLine } from '../../command.ts';

// Placeholder until 'attex evidence appraise' lands; it says so instead of pretending to work.
export const subcommand: Command = {
  name: 'appraise',
  summary: 'appraise',
  help: 'usage: attex evidence appraise\n\nThis sub-command is not available in this build yet.',
  async run(_argv, io) {
    writeLine(io.stderr, 'attex evidence appraise: not available in this build yet');
    return EXIT_USAGE;
  },
};
