/**
 * One running executor: the attested service, its HTTP app, and an orderly shutdown
 * (stop accepting, let admitted actions finish and their receipts reach the log, close the pool,
 * wipe secrets, publish a final checkpoint and close the log).
 */
import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { AttexError } from '../errors/index.ts';
import { ed25519PublicKey } from '../httpsig/index.ts';
import { type CallerCredential, createExecutorApp, type ExecutorApp } from './app.ts';
import type { ExecutorConfig } from './config.ts';
import { AttestedExecutor, type ExecutorOptions } from './executor.ts';
import type { Caller } from './service.ts';

export interface RunningExecutor {
  readonly url: string;
  readonly executor: AttestedExecutor;
  readonly http: ExecutorApp;
  /** Idempotent; resolves once everything is flushed and closed. */
  close(): Promise<void>;
}

export function callerCredentials(config: ExecutorConfig): CallerCredential[] {
  return config.callers.map((c, i) => {
    let publicKey;
    try {
      publicKey = ed25519PublicKey(c.publicKey);
    } catch (err) {
      throw new AttexError('config.invalid', `executor config /callers/${i}/publicKey: ${(err as Error).message.split('\n')[0]}`);
    }
    return { caller: { id: c.id, actions: c.actions }, keyId: c.keyId ?? c.id, publicKey };
  });
}

async function bearerTokens(config: ExecutorConfig): Promise<Array<{ token: string; caller: Caller }>> {
  const out: Array<{ token: string; caller: Caller }> = [];
  for (const [i, b] of (config.bearerTokens ?? []).entries()) {
    let token: string;
    try {
      token = (await readFile(b.tokenFile, 'utf8')).trim();
    } catch (err) {
      throw new AttexError('config.invalid', `executor config /bearerTokens/${i}/tokenFile: unreadable (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    if (!/^[\x21-\x7e]{32,512}$/.test(token)) throw new AttexError('config.invalid', `executor config /bearerTokens/${i}/tokenFile: a token is 32-512 printable characters`);
    const c = config.callers.find((x) => x.id === b.caller)!;
    out.push({ token, caller: { id: c.id, actions: c.actions } });
  }
  return out;
}

export interface RunExecutorOptions extends Omit<ExecutorOptions, 'logger'> {
  readonly logger?: Logger;
  /** Overrides config.listen (tests: port 0). */
  readonly listen?: { readonly host: string; readonly port: number };
}

export async function runExecutor(o: RunExecutorOptions): Promise<RunningExecutor> {
  const { config } = o;
  const callers = callerCredentials(config);
  const tokens = await bearerTokens(config);
  const executor = await AttestedExecutor.start(o);
  let http: ExecutorApp;
  let url: string;
  try {
    http = await createExecutorApp({
      service: executor,
      callers,
      bearerTokens: tokens,
      allowBearer: config.mode === 'simulated',
      bodyLimitBytes: config.limits.bodyLimitBytes,
      requestTimeoutMs: config.limits.requestTimeoutMs,
      maxConnections: config.limits.maxConnections,
      maxConnectionsPerAddress: config.limits.maxConnectionsPerAddress,
      // What the pool takes at once: each busy worker also has actions queued behind its run
      // (see SandboxPool), so it does not wait for the event loop between two actions.
      concurrency: executor.pool.capacity,
      maxQueued: config.limits.maxQueued,
      rateLimit: { ratePerSecond: config.limits.ratePerSecond, burst: config.limits.burst },
      ...(o.clock ? { clock: o.clock } : {}),
      logger: o.logger ?? false,
      replayNotBefore: executor.replayNotBefore,
    });
    const listen = o.listen ?? config.listen;
    url = await http.app.listen({ host: listen.host, port: listen.port });
  } catch (err) {
    await executor.close().catch(() => undefined);
    throw err;
  }
  let closing: Promise<void> | undefined;
  return {
    url,
    executor,
    http,
    close() {
      closing ??= (async () => {
        // fastify stops accepting, answers 503 to new requests and waits for in-flight ones
        // (up to the grace period); then the pool stops, secrets are wiped and the log flushed.
        // Connections with no request in progress end now; those still open after the grace
        // period are cut, so nothing keeps the process alive.
        let timer: NodeJS.Timeout | undefined;
        const grace = new Promise<void>((resolve) => (timer = setTimeout(resolve, config.limits.shutdownGraceMs)));
        http.connections.beginClose();
        http.connections.closeIdle();
        await Promise.race([Promise.all([http.app.close(), http.queue.drain()]), grace]);
        clearTimeout(timer);
        http.connections.destroyAll();
        await executor.close();
      })();
      return closing;
    },
  };
}
