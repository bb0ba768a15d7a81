/**
 * `attex executor --config FILE`: run the attested executor service until SIGTERM/SIGINT.
 * Logs are pino JSON lines on stderr (secrets redacted); with --json one line describing the
 * running executor goes to stdout once it is ready.
 */
import path from 'node:path';
import { type Command, type CommandIO, EXIT_OK, UsageError, parseCommandArgs, writeLine } from '../command.ts';

const HELP = `usage: attex executor --config FILE [--host ADDR] [--port N] [--log-level LEVEL] [--json]

Run the attested executor: build/load the components, attest (through the broker when one is
configured), log the attestation record, then serve signed action requests over HTTP until
SIGTERM or SIGINT (in-flight actions finish and the log is flushed before exit).

options:
  --config FILE      executor configuration (JSON; see docs/executor.md)
  --host ADDR        override listen.host
  --port N           override listen.port (0 picks a free port)
  --log-level LEVEL  pino level: fatal, error, warn, info (default), debug, trace, silent
  --json             print one JSON line to stdout when ready: url, log key, receipt key, record index

Exit codes: 0 stopped cleanly, 2 configuration, start-up or I/O error.`;

const OPTIONS = {
  config: { type: 'string' },
  host: { type: 'string' },
  port: { type: 'string' },
  'log-level': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

async function run(argv: string[], io: CommandIO): Promise<number> {
  const { values, positionals } = parseCommandArgs(argv, OPTIONS);
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${positionals[0]}`);
  if (!values.config) throw new UsageError('--config FILE is required');
  const level = values['log-level'] ?? 'info';
  if (!LEVELS.includes(level)) throw new UsageError(`--log-level must be one of ${LEVELS.join(', ')}`);
  let port: number | undefined;
  if (values.port !== undefined) {
    if (!/^\d{1,5}$/.test(values.port) || Number(values.port) > 65535) throw new UsageError('--port must be 0..65535');
    port = Number(values.port);
  }
  const { loadExecutorConfig, runExecutor, createExecutorLogger } = await import('../../server/index.ts');
  const config = await loadExecutorConfig(path.resolve(io.cwd, values.config));
  const logger = createExecutorLogger({ level, destination: io.stderr });
  const listen = { host: values.host ?? config.listen.host, port: port ?? config.listen.port };

  // Signals that arrive during start-up abort it; after start-up they begin a graceful stop.
  const abort = new AbortController();
  let stopRequested: (() => void) | undefined;
  const stopped = new Promise<void>((resolve) => (stopRequested = resolve));
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      logger.warn({ signal }, 'second signal: exiting without waiting');
      process.exit(1);
    }
    logger.info({ signal }, 'stopping: finishing in-flight actions');
    abort.abort();
    stopRequested!();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    const running = await runExecutor({
      config,
      logger,
      listen,
      signal: abort.signal,
      onBuildProgress: (e) => {
        if (e.kind === 'done') logger.info({ component: e.name, cached: e.cached, ms: e.ms }, 'component ready');
        else if (e.kind === 'start') logger.debug({ component: e.name }, 'component build');
      },
    });
    const e = running.executor;
    logger.info({ url: running.url, executorId: config.executorId, mode: config.mode }, 'executor ready');
    if (values.json) {
      io.stdout.write(`${JSON.stringify({
        url: running.url,
        executorId: config.executorId,
        mode: config.mode,
        logVerifierKey: e.ledger.verifierKey,
        receiptKey: Buffer.from(e.signer.publicKeyRaw).toString('base64'),
        receiptKeyFile: e.receiptPublicKeyFile,
        recordIndex: e.record.index,
        tee: e.attestation.tee,
        measurement: e.attestation.measurement,
        actions: [...e.pool.components.keys()],
      })}\n`);
    } else {
      writeLine(io.stderr, `attex executor listening on ${running.url}`);
    }
    if (signals === 0) await stopped;
    await running.close();
    logger.info('executor stopped; log flushed');
    return EXIT_OK;
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
}

export const command: Command = {
  name: 'executor',
  summary: 'run the attested executor service',
  help: HELP,
  run,
};
