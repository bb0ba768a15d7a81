/**
 * What bench:e2e and bench:e2e-layers share: the executor they start, the action input, a lean
 * HTTP/1.1 client connection, and the CPU accounting of the executor process.
 */
import { type KeyObject, generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SandboxPool } from '../src/sandbox/index.ts';
import { parseExecutorConfig, runExecutor, type RunningExecutor } from '../src/server/index.ts';

const repoRoot = path.resolve(fileURLToPath(new URL('.', import.meta.url)), '..');

/** The pure-transform action both benchmarks drive, and its input. */
export const BENCH_ACTION = 'transform';
export const BENCH_ACTION_PATH = `/v1/actions/${BENCH_ACTION}`;
export const BENCH_INPUT: Uint8Array = new TextEncoder().encode(
  JSON.stringify({ items: Array.from({ length: 8 }, (_, i) => ({ category: `c${i % 3}`, amount: i * 1.5 })) }),
);

export interface BenchExecutor {
  readonly running: RunningExecutor;
  /** The one caller ('bench', every action), with its request-signing key. */
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  close(): Promise<void>;
}

/** An executor in simulated mode in a temporary state directory, with no rate limit to speak of. */
export async function startBenchExecutor(poolSize: number, scheduling: 'batch' | 'inherit' = 'batch'): Promise<BenchExecutor> {
  const dir = await mkdtemp(path.join(tmpdir(), 'attex-bench-'));
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const config = parseExecutorConfig(
    {
      executorId: 'bench',
      mode: 'simulated',
      listen: { host: '127.0.0.1', port: 0 },
      stateDir: 'state',
      componentsDir: path.join(repoRoot, 'components'),
      componentsCacheDir: path.join(repoRoot, '.attex/cache/components'),
      actions: [BENCH_ACTION],
      evidence: { provider: 'sim' },
      log: { origin: 'bench.attex.invalid/log' },
      callers: [{ id: 'bench', publicKey: Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url').toString('base64'), actions: ['*'] }],
      limits: { poolSize, maxQueued: 10_000, ratePerSecond: 1e6, burst: 1e6 },
      scheduling,
    },
    dir,
  );
  console.log(`starting executor (pool ${poolSize}, simulated TEE, ${availableParallelism()} cores, scheduling ${scheduling})…`);
  let running: RunningExecutor;
  try {
    running = await runExecutor({ config });
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  // Interrupted (Ctrl-C): stop the executor and remove its state directory before exiting.
  const interrupted = (): void => {
    void running.close().catch(() => undefined).finally(() => rm(dir, { recursive: true, force: true }).finally(() => process.exit(130)));
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  return {
    running,
    privateKey,
    publicKey,
    async close() {
      process.off('SIGINT', interrupted);
      process.off('SIGTERM', interrupted);
      await running.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Keep-alive HTTP/1.1 over a plain socket, one request in flight: ~0.1 ms of CPU per request
 * instead of ~0.5 ms for an HTTP client library, which matters when the load generator shares
 * the executor's two cores. Requests are pre-built bytes; responses need a content-length.
 */
export class Connection {
  readonly #socket: Socket;
  #buffered: Buffer = Buffer.alloc(0);
  #waiting: { resolve: (r: { status: number; body: string }) => void; reject: (e: Error) => void } | undefined;

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', (err) => this.#fail(err));
    socket.on('close', () => this.#fail(new Error('connection closed')));
  }

  static open(url: URL): Promise<Connection> {
    return new Promise((resolve, reject) => {
      const socket = connect(Number(url.port), url.hostname, () => resolve(new Connection(socket)));
      socket.once('error', reject);
    });
  }

  /** False once the socket closed (the server closes keep-alive connections idle for 10 s). */
  get isOpen(): boolean {
    return !this.#socket.destroyed;
  }

  send(request: Buffer): Promise<{ status: number; body: string }> {
    if (!this.isOpen) return Promise.reject(new Error('connection closed'));
    return new Promise((resolve, reject) => {
      this.#waiting = { resolve, reject };
      this.#socket.write(request);
    });
  }

  close(): void {
    this.#socket.destroy();
  }

  #fail(err: Error): void {
    const w = this.#waiting;
    this.#waiting = undefined;
    w?.reject(err);
  }

  #onData(chunk: Buffer): void {
    this.#buffered = this.#buffered.length === 0 ? chunk : Buffer.concat([this.#buffered, chunk]);
    const headEnd = this.#buffered.indexOf('\r\n\r\n');
    if (headEnd < 0) return;
    const head = this.#buffered.toString('latin1', 0, headEnd);
    const length = /\r\ncontent-length: *(\d+)/i.exec(head);
    if (!length) return this.#fail(new Error(`response without content-length: ${head.slice(0, 200)}`));
    const total = headEnd + 4 + Number(length[1]);
    if (this.#buffered.length < total) return;
    const body = this.#buffered.toString('utf8', headEnd + 4, total);
    this.#buffered = this.#buffered.subarray(total);
    const w = this.#waiting;
    this.#waiting = undefined;
    w?.resolve({ status: Number(head.slice(9, 12)), body });
  }
}

/** A raw HTTP/1.1 POST of `body` to `target` with `headers` (lowercase names). */
export function rawPost(target: URL, requestPath: string, headers: Readonly<Record<string, string>>, body: Uint8Array): Buffer {
  const lines = [`POST ${requestPath} HTTP/1.1`, `host: ${target.host}`, `content-length: ${body.length}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
  return Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), body]);
}

/** CPU time (µs) of the executor process, and its context switches. */
export interface CpuSpent {
  readonly total: number;
  /** The main thread: HTTP, signatures, receipts, the log. */
  readonly main: number;
  /** The sandbox worker threads. */
  readonly workers: number;
  readonly system: number;
  /** Context switches of every thread of the process (each is a sleep or a preemption). */
  readonly switches: number;
}

export const NO_CPU: CpuSpent = { total: 0, main: 0, workers: 0, system: 0, switches: 0 };

/** The executor process's CPU use so far; what is neither main nor workers is V8's GC and compiler threads and libuv's. */
export async function cpuNow(pool: SandboxPool): Promise<CpuSpent> {
  const proc = process.cpuUsage();
  const main = process.threadCpuUsage();
  const r = process.resourceUsage();
  const workers = await pool.workerCpuMicros();
  return { total: proc.user + proc.system, main: main.user + main.system, workers, system: proc.system, switches: r.voluntaryContextSwitches + r.involuntaryContextSwitches };
}

/** `a + sign * b`, field by field. */
export function addCpu(a: CpuSpent, b: CpuSpent, sign = 1): CpuSpent {
  return { total: a.total + sign * b.total, main: a.main + sign * b.main, workers: a.workers + sign * b.workers, system: a.system + sign * b.system, switches: a.switches + sign * b.switches };
}

/** CPU since `start` (a cpuNow result). */
export async function cpuSince(start: CpuSpent | Promise<CpuSpent>, pool: SandboxPool): Promise<CpuSpent> {
  const end = await cpuNow(pool);
  return addCpu(end, await start, -1);
}

export function describeCpu(c: CpuSpent, actions: number): string {
  const ms = (us: number) => (us / 1000 / Math.max(1, actions)).toFixed(2);
  return `executor process ${ms(c.total)} ms = main thread ${ms(c.main)} + sandbox workers ${ms(c.workers)} + other threads ${ms(c.total - c.main - c.workers)} (system ${ms(c.system)}); ${(c.switches / Math.max(1, actions)).toFixed(1)} context switches`;
}
