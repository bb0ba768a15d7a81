/**
 * The executor's pino logger. Redaction is by path, so a secret that reaches a log call by
 * mistake (a header, a token, a released value) is censored before it is written.
 */
import pino, { type Logger } from 'pino';

export const LOG_REDACT_PATHS: readonly string[] = [
  'req.headers.authorization',
  'req.headers.signature',
  'req.headers.cookie',
  'headers.authorization',
  'authorization',
  'token',
  'brokerToken',
  'secret',
  'secrets.*',
  'value',
  'privateKey',
  '*.token',
  '*.brokerToken',
  '*.secret',
  '*.value',
  '*.privateKey',
];

export function createExecutorLogger(opts: { level?: string; destination?: NodeJS.WritableStream } = {}): Logger {
  return pino(
    {
      name: 'attex-executor',
      level: opts.level ?? 'info',
      redact: { paths: [...LOG_REDACT_PATHS], censor: '[redacted]' },
      serializers: { err: pino.stdSerializers.err },
    },
    (opts.destination ?? process.stderr) as pino.DestinationStream,
  );
}
