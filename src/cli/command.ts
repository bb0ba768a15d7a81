/**
 * The contract every `attex` sub-command implements. Commands get their argv (after the
 * command name) and an IO object; they return the process exit code instead of exiting, so
 * tests can run them in-process.
 *
 * Exit codes (documented in docs/cli.md): 0 success / verified; 1 a negative verdict
 * (rejected evidence, unverified receipt, failed action); 2 usage or I/O error.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

export interface CommandIO {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  readonly stdin: NodeJS.ReadableStream;
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
}

export interface Command {
  readonly name: string;
  readonly summary: string;
  /** Full help text printed for `attex <name> --help`. */
  readonly help: string;
  /** Sub-command names this command dispatches to; main passes `--help` after one of them through to `run`. */
  readonly subcommands?: readonly string[];
  run(argv: string[], io: CommandIO): Promise<number>;
}

export const EXIT_OK = 0;
export const EXIT_NEGATIVE = 1;
export const EXIT_USAGE = 2;

/** Thrown by command code for a usage error; main prints it with a pointer to --help. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** parseArgs with strict checking that turns node's errors into UsageError. */
export function parseCommandArgs<T extends NonNullable<ParseArgsConfig['options']>>(
  argv: string[],
  options: T,
  allowPositionals = true,
) {
  try {
    return parseArgs({ args: argv, options, allowPositionals, strict: true });
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
}

export function writeLine(stream: NodeJS.WritableStream, text = ''): void {
  stream.write(`${text}\n`);
}

export function writeJson(stream: NodeJS.WritableStream, value: unknown): void {
  stream.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function defaultIO(): CommandIO {
  return { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env, cwd: process.cwd() };
}
