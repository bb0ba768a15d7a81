/**
 * `attex dev` (= `npm start`): a local broker and executor in simulated mode, ready to dispatch
 * to and verify against, until Ctrl-C.
 */
import path from 'node:path';
import { type Command, type CommandIO, EXIT_OK, UsageError, parseCommandArgs, writeLine } from '../command.ts';

const DEFAULT_STATE = '.attex/dev';
const DEFAULT_PORT = 8787;
const DEFAULT_BROKER_PORT = 8788;

const HELP = `usage: attex dev [--state DIR] [--port N] [--broker-port N] [--log-level LEVEL] [--json]

Start a key broker and an attested executor locally, both using the SIMULATED TEE (development
only), and keep them running until Ctrl-C. The first run generates a caller key, the broker's
operator key, an example secret (the key sign-payload MACs with), an executor config and a trust
file for \`attex verify\`, all under the state directory; components are built once and cached.

options:
  --state DIR        state directory (default ${DEFAULT_STATE})
  --port N           executor port (default ${DEFAULT_PORT}; 0 picks a free one)
  --broker-port N    broker port (default ${DEFAULT_BROKER_PORT}; 0 picks a free one)
  --log-level LEVEL  service log level (default warn)
  --json             print one JSON line with URLs and file paths once ready

Exit codes: 0 stopped cleanly (Ctrl-C), 2 start-up or usage error.`;

const OPTIONS = {
  state: { type: 'string' },
  port: { type: 'string' },
  'broker-port': { type: 'string' },
  'log-level': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

function port(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!/^\d{1,5}$/.test(value) || Number(value) > 65535) throw new UsageError(`${name} must be 0..65535`);
  return Number(value);
}

function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./:=@-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

async function run(argv: string[], io: CommandIO): Promise<number> {
  const { values, positionals } = parseCommandArgs(argv, OPTIONS);
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]}`);
  const stateArg = values.state ?? DEFAULT_STATE;
  const executorPort = port(values.port, DEFAULT_PORT, '--port');
  const brokerPort = port(values['broker-port'], DEFAULT_BROKER_PORT, '--broker-port');
  const { startDevEnvironment } = await import('../../server/dev.ts');
  const quiet = values.json === true;
  const say = (m: string) => (quiet ? undefined : writeLine(io.stderr, m));

  const env = await startDevEnvironment({
    stateDir: path.resolve(io.cwd, stateArg),
    port: executorPort,
    brokerPort,
    logLevel: values['log-level'] ?? 'warn',
    logDestination: io.stderr,
    onStep: (m) => say(`• ${m}`),
    onBuildProgress: (e) => {
      if (e.kind === 'start') say(`  building ${e.name} (${e.backend})…`);
      else if (e.kind === 'done') say(`  ${e.name}: ${e.cached ? 'cached' : `built in ${(e.ms / 1000).toFixed(1)} s`}`);
      else say(`  ${e.name}: FAILED ${e.code}: ${e.message}`);
    },
  });

  // Restarted soon after the last run (or after a crash), the executor waits out its replay
  // horizon before it accepts signed requests: wait here, so the printed command works at once.
  const horizonWait = env.executor.executor.replayNotBefore * 1000 - Date.now();
  if (horizonWait > 0) {
    say(`• accepting signed requests in ${Math.ceil(horizonWait / 1000)} s (replay protection after a restart, see docs/executor.md)`);
    await new Promise((resolve) => setTimeout(resolve, horizonWait));
  }

  const rel = (p: string) => {
    const r = path.relative(io.cwd, p);
    return r.startsWith('..') ? p : r;
  };
  const extra = [
    ...(executorPort !== DEFAULT_PORT ? ['--url', env.executorUrl] : []),
    ...(stateArg !== DEFAULT_STATE ? ['--key', rel(env.callerKeyFile)] : []),
  ];
  const example = '{"items":[{"category":"books","amount":12.5},{"category":"games","amount":30},{"category":"books","amount":7.5}]}';
  const dispatchCmd = ['npm', 'run', 'attex', '--', 'dispatch', 'transform', ...extra, '--input', example, '--save', 'receipt.json'].map(shellQuote).join(' ');
  const verifyCmd = ['npm', 'run', 'attex', '--', 'verify', 'receipt.json', '--trust', rel(env.trustFile)].map(shellQuote).join(' ');
  if (values.json) {
    io.stdout.write(`${JSON.stringify({
      executorUrl: env.executorUrl,
      brokerUrl: env.brokerUrl,
      stateDir: env.stateDir,
      trustFile: env.trustFile,
      callerKeyFile: env.callerKeyFile,
      configFile: env.configFile,
      actions: [...env.executor.executor.pool.components.keys()],
    })}\n`);
  } else {
    writeLine(io.stdout, [
      '',
      'attex dev is ready (SIMULATED TEE: for development only)',
      `  executor   ${env.executorUrl}   (actions: ${[...env.executor.executor.pool.components.keys()].join(', ')})`,
      `  broker     ${env.brokerUrl}`,
      `  state      ${rel(env.stateDir)}`,
      '',
      'Try it in another terminal:',
      `  ${dispatchCmd}`,
      `  ${verifyCmd}`,
      '',
      'Press Ctrl-C to stop.',
    ].join('\n'));
  }

  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  say('stopping: finishing in-flight actions and flushing the log…');
  await env.close();
  say('stopped.');
  return EXIT_OK;
}

export const command: Command = {
  name: 'dev',
  summary: 'start a local broker and executor in simulated mode',
  help: HELP,
  run,
};
