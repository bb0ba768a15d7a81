/**
 * bench:e2e — actions per second and latency through the whole executor: signed HTTP request
 * (RFC 9421, signed per request with a fresh nonce) → authentication → sandbox → receipt
 * (DSSE, Ed25519) → durable log append (fsync, group commit) → signed checkpoint → tlog-proof
 * in the response. Then the same action through the sandbox pool in-process, without HTTP or
 * receipts, and the ratio of the two. Client and executor share this process (and its cores).
 *
 *   npm run bench:e2e [-- --seconds 10 --concurrency 16 --pool 2]
 *
 * Targets: ≥ 300 actions/s end to end, p99 ≤ 50 ms at that rate, e2e ≥ 0.6× in-process.
 */
import { generateKeyPairSync } from 'node:crypto';
import { availableParallelism, tmpdir } from 'node:os';
import { mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { signRequest } from '../src/httpsig/index.ts';
import { parseExecutorConfig, runExecutor } from '../src/server/index.ts';

const repoRoot = path.resolve(fileURLToPath(new URL('.', import.meta.url)), '..');
const { values } = parseArgs({
  options: { seconds: { type: 'string', default: '8' }, concurrency: { type: 'string', default: '16' }, pool: { type: 'string' } },
});
const seconds = Number(values.seconds);
const concurrency = Number(values.concurrency);
const poolSize = Number(values.pool ?? Math.max(1, availableParallelism()));

const input = new TextEncoder().encode(JSON.stringify({ items: Array.from({ length: 8 }, (_, i) => ({ category: `c${i % 3}`, amount: i * 1.5 })) }));

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

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
  console.log(`starting executor (pool ${poolSize}, simulated TEE)…`);
  const running = await runExecutor({ config });
  const client = new Pool(running.url, { connections: concurrency, pipelining: 1 });
  try {
    // Warm-up: instances, JIT, first checkpoints.
    const one = async () => {
      const headers = await signRequest({ method: 'POST', url: '/v1/actions/transform', headers: { 'content-type': 'application/json' }, body: input }, { keyId: 'bench', privateKey });
      const res = await client.request({ method: 'POST', path: '/v1/actions/transform', headers, body: input });
      const body = await res.body.text();
      if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}: ${body.slice(0, 300)}`);
    };
    for (let i = 0; i < 50; i++) await one();

    const latencies: number[] = [];
    const sizeBefore = running.executor.ledgerSize();
    const commitsBefore = running.executor.ledger.commitStats;
    const end = performance.now() + seconds * 1000;
    const start = performance.now();
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const t = performance.now();
        await one();
        latencies.push(performance.now() - t);
      }
    }));
    const elapsed = (performance.now() - start) / 1000;
    latencies.sort((a, b) => a - b);
    const e2eRate = latencies.length / elapsed;
    const commits = running.executor.ledger.commitStats;
    console.log(`e2e (HTTP + signature + sandbox + receipt + durable log + proof), concurrency ${concurrency}:`);
    console.log(`  ${latencies.length} actions in ${elapsed.toFixed(1)} s = ${e2eRate.toFixed(0)} actions/s`);
    console.log(`  latency p50 ${percentile(latencies, 50).toFixed(1)} ms, p99 ${percentile(latencies, 99).toFixed(1)} ms, max ${latencies.at(-1)!.toFixed(1)} ms`);
    console.log(`  log: ${running.executor.ledgerSize() - sizeBefore} entries in ${commits.batches - commitsBefore.batches} fsync batches`);

    // The same action through the same pool, in-process: no HTTP, no signature, no receipt, no log.
    const pool = running.executor.pool;
    const text = new TextDecoder().decode(input);
    let count = 0;
    const end2 = performance.now() + seconds * 1000;
    const start2 = performance.now();
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (performance.now() < end2) {
        const r = await pool.run('transform', text);
        if (!r.ok) throw new Error(`in-process run failed: ${r.error?.code}`);
        count++;
      }
    }));
    const inRate = count / ((performance.now() - start2) / 1000);
    console.log(`in-process sandbox pool only: ${inRate.toFixed(0)} actions/s`);
    console.log(`ratio e2e / in-process: ${(e2eRate / inRate).toFixed(2)}`);
  } finally {
    await client.close();
    await running.close();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
