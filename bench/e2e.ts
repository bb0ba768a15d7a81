/**
 * bench:e2e — actions per second and latency through the whole executor: signed HTTP request
 * (RFC 9421, signed per request with a fresh nonce) → authentication → sandbox → receipt
 * (DSSE, Ed25519) → durable log append (fsync, group commit, checkpoint signed in the same
 * commit) → tlog-proof in the response. The client runs in a child process (its own event loop;
 * it still shares the machine's cores), in two phases:
 *   1. fixed offered load (open loop, default 300/s): achieved rate, latency from each request's
 *      scheduled send time (so a stall is not hidden by the client slowing down);
 *   2. maximum throughput (closed loop, `--concurrency` requests in flight).
 * Then the same action through the sandbox pool in-process (no HTTP, signatures, receipts or
 * log) and the ratio of the maximum e2e throughput to it.
 *
 *   npm run bench:e2e [-- --seconds 8 --rate 300 --concurrency 16 --pool 2]
 *
 * Targets: ≥ 300 actions/s end to end, p99 ≤ 50 ms at that rate, e2e ≥ 0.6× in-process.
 */
import { fork } from 'node:child_process';
import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { signRequest } from '../src/httpsig/index.ts';
import { parseExecutorConfig, runExecutor } from '../src/server/index.ts';

const repoRoot = path.resolve(fileURLToPath(new URL('.', import.meta.url)), '..');
const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '8' },
    rate: { type: 'string', default: '300' },
    concurrency: { type: 'string', default: '16' },
    pool: { type: 'string' },
    client: { type: 'string' }, // internal: run as the client process against this URL
  },
});
const seconds = Number(values.seconds);
const rate = Number(values.rate);
const concurrency = Number(values.concurrency);
const poolSize = Number(values.pool ?? Math.max(1, availableParallelism()));

const input = new TextEncoder().encode(JSON.stringify({ items: Array.from({ length: 8 }, (_, i) => ({ category: `c${i % 3}`, amount: i * 1.5 })) }));

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

interface PhaseResult {
  readonly count: number;
  readonly errors: number;
  readonly elapsed: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

function summarize(latencies: number[], errors: number, elapsed: number): PhaseResult {
  latencies.sort((a, b) => a - b);
  return { count: latencies.length, errors, elapsed, p50: percentile(latencies, 50), p99: percentile(latencies, 99), max: latencies.at(-1) ?? NaN };
}

// ---- client process ----

async function runClient(url: string, keyPem: string): Promise<void> {
  const privateKey = createPrivateKey(keyPem);
  const client = new Pool(url, { connections: Math.max(concurrency, 64), pipelining: 1 });
  const one = async (): Promise<boolean> => {
    const headers = await signRequest({ method: 'POST', url: '/v1/actions/transform', headers: { 'content-type': 'application/json' }, body: input }, { keyId: 'bench', privateKey });
    const res = await client.request({ method: 'POST', path: '/v1/actions/transform', headers, body: input });
    const body = await res.body.text();
    if (res.statusCode !== 200) {
      console.error(`status ${res.statusCode}: ${body.slice(0, 300)}`);
      return false;
    }
    return body.includes('"proof"');
  };
  for (let i = 0; i < 100; i++) await one(); // warm-up: connections, JIT, sandbox instances

  // 1. Open loop at a fixed rate; latency counts from the scheduled send time.
  const fixed: number[] = [];
  let fixedErrors = 0;
  const total = Math.round(rate * seconds);
  const t0 = performance.now() + 10;
  const inflight: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = t0 + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    inflight.push(one().then((ok) => (ok ? void fixed.push(performance.now() - due) : void fixedErrors++), () => void fixedErrors++));
  }
  await Promise.all(inflight);
  const fixedResult = summarize(fixed, fixedErrors, (performance.now() - t0) / 1000);

  // 2. Closed loop: maximum throughput with `concurrency` requests in flight.
  process.send!({ phase: 'max' });
  const cpuStart = process.cpuUsage();
  const closed: number[] = [];
  let closedErrors = 0;
  const end = performance.now() + seconds * 1000;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const t = performance.now();
        if (await one().catch(() => false)) closed.push(performance.now() - t);
        else closedErrors++;
      }
    }),
  );
  const maxResult = summarize(closed, closedErrors, (performance.now() - start) / 1000);
  const cpu = process.cpuUsage(cpuStart);
  process.send!({ phase: 'done' });
  await client.close();
  process.send!({ fixed: fixedResult, max: maxResult, clientCpuMs: (cpu.user + cpu.system) / 1000 }, () => process.exit(0));
}

// ---- server process ----

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'attex-bench-e2e-'));
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const config = parseExecutorConfig(
    {
      executorId: 'bench',
      mode: 'simulated',
      listen: { host: '127.0.0.1', port: 0 },
      stateDir: 'state',
      componentsDir: path.join(repoRoot, 'components'),
      componentsCacheDir: path.join(repoRoot, '.attex/cache/components'),
      actions: ['transform'],
      evidence: { provider: 'sim' },
      log: { origin: 'bench.attex.invalid/log' },
      callers: [{ id: 'bench', publicKey: Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url').toString('base64'), actions: ['*'] }],
      limits: { poolSize, maxQueued: 10_000, ratePerSecond: 1e6, burst: 1e6 },
    },
    dir,
  );
  console.log(`starting executor (pool ${poolSize}, simulated TEE, ${availableParallelism()} cores)…`);
  const running = await runExecutor({ config });
  try {
    const sizeBefore = running.executor.ledgerSize();
    const commitsBefore = running.executor.ledger.commitStats;
    const child = fork(fileURLToPath(import.meta.url), ['--client', running.url, '--seconds', String(seconds), '--rate', String(rate), '--concurrency', String(concurrency)], {
      env: { ...process.env, ATTEX_BENCH_KEY: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString() },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    let serverCpu: NodeJS.CpuUsage | undefined;
    let serverCpuStart: NodeJS.CpuUsage | undefined;
    const result = await new Promise<{ fixed: PhaseResult; max: PhaseResult; clientCpuMs: number }>((resolve, reject) => {
      child.on('message', (m: { phase?: string }) => {
        if (m.phase === 'max') serverCpuStart = process.cpuUsage();
        else if (m.phase === 'done') serverCpu = process.cpuUsage(serverCpuStart);
        else resolve(m as { fixed: PhaseResult; max: PhaseResult; clientCpuMs: number });
      });
      child.once('exit', (code) => reject(new Error(`client exited (${code}) without a result`)));
    });
    const commits = running.executor.ledger.commitStats;
    const f = result.fixed;
    const m = result.max;
    console.log('e2e (signed HTTP + auth + sandbox + receipt + durable log + checkpoint + proof), client in its own process:');
    console.log(`  fixed load ${rate}/s for ${seconds} s: achieved ${(f.count / f.elapsed).toFixed(0)} actions/s, p50 ${f.p50.toFixed(1)} ms, p99 ${f.p99.toFixed(1)} ms, max ${f.max.toFixed(1)} ms, errors ${f.errors}`);
    const e2eRate = m.count / m.elapsed;
    console.log(`  max throughput, concurrency ${concurrency}: ${e2eRate.toFixed(0)} actions/s, p50 ${m.p50.toFixed(1)} ms, p99 ${m.p99.toFixed(1)} ms, errors ${m.errors}`);
    const perAction = (ms: number) => (ms / Math.max(1, m.count)).toFixed(2);
    if (serverCpu) {
      console.log(
        `  CPU per action at max: executor process ${perAction((serverCpu.user + serverCpu.system) / 1000)} ms (${perAction(serverCpu.system / 1000)} ms system), client process ${perAction(result.clientCpuMs)} ms`,
      );
    }
    const entries = running.executor.ledgerSize() - sizeBefore;
    const batches = commits.batches - commitsBefore.batches;
    console.log(`  log: ${entries} entries in ${batches} fsync batches (${(entries / Math.max(1, batches)).toFixed(1)} per fsync, each with its checkpoint)`);

    // The same action through the same pool, in-process: no HTTP, no signature, no receipt, no log.
    const pool = running.executor.pool;
    const text = new TextDecoder().decode(input);
    let count = 0;
    const inCpuStart = process.cpuUsage();
    const end2 = performance.now() + seconds * 1000;
    const start2 = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (performance.now() < end2) {
          const r = await pool.run('transform', text);
          if (!r.ok) throw new Error(`in-process run failed: ${r.error?.code}`);
          count++;
        }
      }),
    );
    const inRate = count / ((performance.now() - start2) / 1000);
    const inCpu = process.cpuUsage(inCpuStart);
    console.log(`in-process sandbox pool only: ${inRate.toFixed(0)} actions/s (CPU per action ${((inCpu.user + inCpu.system) / 1000 / count).toFixed(2)} ms)`);
    console.log(`ratio e2e max / in-process: ${(e2eRate / inRate).toFixed(2)}`);
  } finally {
    await running.close();
    await rm(dir, { recursive: true, force: true });
  }
}

if (values.client !== undefined) await runClient(values.client, process.env.ATTEX_BENCH_KEY ?? '');
else await main();
