/**
 * Requests pipelined on one keep-alive connection: every admitted request gets its answer, in
 * order, whatever comes behind it (a malformed request, shutdown), and the connection ends once
 * nothing more is owed on it. The service answers after a delay the request asks for, so that
 * handlers finish out of order.
 */
import { generateKeyPairSync } from 'node:crypto';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { signRequest } from '../../src/httpsig/index.ts';
import { createExecutorApp, type ExecutorApp } from '../../src/server/app.ts';
import type { DispatchRequest, DispatchResult, ExecutorService } from '../../src/server/service.ts';

const keys = generateKeyPairSync('ed25519');
const caller = { id: 'alice', actions: ['*'] };
let running: (ExecutorApp & { port: number; ran: string[] }) | undefined;

afterEach(async () => {
  await running?.app.close();
  running = undefined;
});

async function start(): Promise<ExecutorApp & { port: number; ran: string[] }> {
  const ran: string[] = [];
  const service: ExecutorService = {
    readiness: () => ({ ready: true, checks: {} }),
    hasAction: (name: string) => name === 'echo',
    async dispatch(req: DispatchRequest): Promise<DispatchResult> {
      const input = req.input as { n: string; delay: number };
      ran.push(input.n);
      await new Promise((r) => setTimeout(r, input.delay));
      return { invocationId: `inv-${input.n}`, outcome: 'ok', output: input, receipt: 'AA==', logIndex: ran.length, proof: 'p', replayed: false };
    },
    receiptBundle: async () => undefined,
    attestationRecord: async () => ({}),
    logCheckpoint: () => '',
    logTile: async () => undefined,
    poolStats: () => ({ running: 0, queued: 0 }),
    ledgerSize: () => 0,
  } as unknown as ExecutorService;
  const app = await createExecutorApp({ service, concurrency: 4, callers: [{ caller, keyId: 'alice', publicKey: keys.publicKey }] });
  await app.app.listen({ host: '127.0.0.1', port: 0 });
  running = { ...app, port: (app.app.server.address() as net.AddressInfo).port, ran };
  return running;
}

async function dispatchBytes(n: string, delay: number): Promise<string> {
  const body = JSON.stringify({ n, delay });
  const headers = await signRequest({ method: 'POST', url: '/v1/actions/echo', headers: { 'content-type': 'application/json' }, body: new TextEncoder().encode(body) }, { keyId: 'alice', privateKey: keys.privateKey });
  return `POST /v1/actions/echo HTTP/1.1\r\nHost: x\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}Content-Length: ${body.length}\r\n\r\n${body}`;
}

/** A raw connection; `closed` resolves with everything received, or with null if still open after `ms`. */
async function connection(port: number, ms: number): Promise<{ socket: net.Socket; closed: Promise<string | null> }> {
  const socket = net.connect(port, '127.0.0.1');
  let data = '';
  socket.on('data', (d: Buffer) => (data += d.toString()));
  socket.on('error', () => undefined);
  const closed = new Promise<string | null>((resolve) => {
    const timer = setTimeout(() => resolve(null), ms);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(data);
    });
  });
  await new Promise((r) => socket.once('connect', r));
  return { socket, closed };
}

const answers = (text: string) => [...text.matchAll(/HTTP\/1\.1 (\d{3})[^]*?\r\n\r\n(\{[^]*?\})(?=HTTP\/1\.1 |$)/g)].map((m) => `${m[1]} ${String((JSON.parse(m[2]!) as { output?: { n?: string }; code?: string }).output?.n ?? (JSON.parse(m[2]!) as { code?: string }).code)}`);

describe('pipelined requests', () => {
  it('a malformed request behind two admitted ones: both are answered, in order, then the connection ends', async () => {
    const x = await start();
    const { socket, closed } = await connection(x.port, 5_000);
    socket.write((await dispatchBytes('A', 300)) + (await dispatchBytes('B', 10)));
    await new Promise((r) => setTimeout(r, 100));
    socket.write('GARBAGE\r\n\r\n');
    const text = await closed;
    expect(text).not.toBeNull(); // ended by the server, not left to the keep-alive timeout
    expect(x.ran).toEqual(['A', 'B']);
    expect(answers(text!)).toEqual(['200 A', '200 B']);
  });

  it('shutdown with two admitted requests whose handlers finish out of order: both answered, then the connection ends', async () => {
    const x = await start();
    const { socket, closed } = await connection(x.port, 5_000);
    socket.write((await dispatchBytes('A', 400)) + (await dispatchBytes('B', 10)));
    await new Promise((r) => setTimeout(r, 150));
    x.connections.beginClose();
    x.connections.closeIdle();
    const text = await closed;
    expect(text).not.toBeNull();
    expect(answers(text!)).toEqual(['200 A', '200 B']);
  });

  it('a request refused for its missing Host does not hide the next request on the connection from shutdown', async () => {
    const x = await start();
    const { socket, closed } = await connection(x.port, 5_000);
    socket.write('GET /healthz HTTP/1.1\r\n\r\n');
    await new Promise((r) => setTimeout(r, 50));
    socket.write(await dispatchBytes('C', 300));
    await new Promise((r) => setTimeout(r, 100));
    x.connections.beginClose();
    x.connections.closeIdle();
    const text = await closed;
    expect(text).not.toBeNull();
    expect(answers(text!)).toEqual(['400 request.missing-host', '200 C']);
  });
});
