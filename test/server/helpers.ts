/**
 * Test harness: a real executor (sandbox pool with real components, simulated TEE, ledger on
 * disk) behind real HTTP on loopback, and callers that sign requests per RFC 9421.
 */
import { type KeyObject, generateKeyPairSync } from 'node:crypto';
import { cp, mkdir } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { signRequest } from '../../src/httpsig/index.ts';
import { type ExecutorConfig, parseExecutorConfig, runExecutor, type RunningExecutor } from '../../src/server/index.ts';
import type { SchedulingOptions } from '../../src/util/index.ts';
import type { Logger } from 'pino';

export const repoRoot = path.resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
export const cacheDir = path.join(repoRoot, '.attex/cache/components');
const FIXTURES = path.join(repoRoot, 'test/server/fixtures/components');
const EXAMPLES = path.join(repoRoot, 'components');

export interface TestCaller {
  readonly id: string;
  readonly keyId: string;
  readonly privateKey: KeyObject;
  readonly publicKey: string;
  readonly actions: readonly string[];
}

export function newCaller(id: string, actions: readonly string[] = ['*']): TestCaller {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url');
  return { id, keyId: `${id}-key`, privateKey, publicKey: raw.toString('base64'), actions };
}

/** A components directory holding copies of the named example or fixture components. */
export async function componentsDir(dir: string, names: readonly string[]): Promise<string> {
  const out = path.join(dir, 'components');
  await mkdir(out, { recursive: true });
  for (const name of names) {
    const fixture = ['crash-worker', 'slow'].includes(name);
    await cp(path.join(fixture ? FIXTURES : EXAMPLES, name), path.join(out, name), { recursive: true });
  }
  return out;
}

export interface StartOptions {
  readonly dir: string;
  readonly actions: readonly string[];
  readonly callers: readonly TestCaller[];
  readonly limits?: Partial<ExecutorConfig['limits']>;
  readonly extra?: Record<string, unknown>;
  /** How long to wait for the state directory's lock (default: the executor's own). */
  readonly lockWaitMs?: number;
  readonly clock?: () => Date;
  readonly logger?: Logger;
  readonly scheduling?: SchedulingOptions;
}

export async function startTestExecutor(o: StartOptions): Promise<RunningExecutor & { config: ExecutorConfig }> {
  const config = parseExecutorConfig(
    {
      executorId: 'test-executor',
      mode: 'simulated',
      listen: { host: '127.0.0.1', port: 0 },
      stateDir: path.join(o.dir, 'state'),
      componentsDir: await componentsDir(o.dir, o.actions),
      componentsCacheDir: cacheDir,
      evidence: { provider: 'sim' },
      log: { origin: 'test.attex.invalid/log' },
      callers: o.callers.map((c) => ({ id: c.id, keyId: c.keyId, publicKey: c.publicKey, actions: c.actions })),
      ...(o.limits ? { limits: o.limits } : {}),
      // Tests keep their process's scheduling; test/util/scheduling.test.ts covers "batch".
      scheduling: 'inherit',
      ...o.extra,
    },
    o.dir,
  );
  const running = await runExecutor({
    config,
    ...(o.lockWaitMs === undefined ? {} : { lockWaitMs: o.lockWaitMs }),
    ...(o.clock ? { clock: o.clock } : {}),
    ...(o.logger ? { logger: o.logger } : {}),
    ...(o.scheduling ? { scheduling: o.scheduling } : {}),
  });
  return Object.assign(running, { config });
}

export interface Reply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Record<string, unknown>;
}

export async function send(url: string, method: string, pathAndQuery: string, body: Uint8Array | undefined, headers: Record<string, string>): Promise<Reply> {
  const res = await request(new URL(pathAndQuery, url), { method: method as 'POST', headers, ...(body ? { body } : {}) });
  const text = await res.body.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    json = { text };
  }
  return { status: res.statusCode, headers: res.headers, body: json };
}

/** Signed headers for POST /v1/actions/<action>. */
export async function signedHeaders(action: string, body: Uint8Array, caller: TestCaller, extra: Record<string, string> = {}, now?: Date): Promise<Record<string, string>> {
  return signRequest(
    { method: 'POST', url: `/v1/actions/${action}`, headers: { 'content-type': 'application/json', ...extra }, body },
    { keyId: caller.keyId, privateKey: caller.privateKey },
    now,
  );
}

export async function dispatch(url: string, action: string, input: unknown, caller: TestCaller, extra: Record<string, string> = {}): Promise<Reply> {
  const body = new TextEncoder().encode(typeof input === 'string' ? input : JSON.stringify(input));
  return send(url, 'POST', `/v1/actions/${action}`, body, await signedHeaders(action, body, caller, extra));
}

/** A plain TCP connection to a server on loopback, and everything it sends until it closes. */
export async function rawConnection(url: string): Promise<{ socket: net.Socket; closed: Promise<string> }> {
  const socket = net.connect(Number(new URL(url).port), '127.0.0.1');
  const closed = new Promise<string>((resolve) => {
    let data = '';
    socket.on('data', (d: Buffer) => (data += d.toString()));
    socket.on('close', () => resolve(data));
    socket.on('error', () => undefined);
  });
  await new Promise((r) => socket.once('connect', r));
  return { socket, closed };
}
