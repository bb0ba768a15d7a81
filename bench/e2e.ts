/**
 * bench:e2e — actions per second and latency through the whole executor: signed HTTP request
 * (RFC 9421, signed per request with a fresh nonce) → authentication → sandbox → receipt
 * (DSSE, Ed25519) → durable log append (fsync, group commit, checkpoint signed in the same
 * commit) → tlog-proof in the response. The client runs in a child process (its own event loop;
 * it still shares the machine's cores; requests are signed before each phase, see Connection):
 *   1. fixed offered load (open loop, default 300/s): achieved rate, latency from each request's
 *      scheduled send time (so a stall is not hidden by the client slowing down), after
 *      `--warmup` seconds at the same rate that are not counted (their p99 is printed);
 *   2. maximum throughput (closed loop, `--concurrency` requests in flight), in 2-second slices
 *      that alternate with slices of the same action through the same sandbox pool in-process
 *      (no HTTP, signatures, receipts or log), so that the ratio of the two is not skewed by the
 *      machine's speed changing during the run.
 * For each phase it prints the executor's CPU per action, split into the main thread, the
 * sandbox workers and the rest (V8's GC and compiler threads, libuv's file-system threads), and
 * the process's context switches per action, and for the fixed load how long the executor's
 * event loop was held up (its delay p99 and max). Last, the in-process CPU per action over the
 * end-to-end one: with both cores busy the throughput ratio stays near it, and the machine's
 * speed moves it less. bench:e2e-layers breaks the cost down further.
 *
 *   npm run bench:e2e [-- --seconds 8 --rate 300 --warmup 3 --concurrency 32 --pool 2 --scheduling batch|inherit]
 *
 * The executor runs with its default `scheduling` ("batch": SCHED_BATCH on Linux, inherited by the
 * in-process slices, which run in the same process); `--scheduling inherit` compares without it.
 * The client puts itself back under SCHED_OTHER, as an agent on another machine would be.
 *
 * Targets: ≥ 300 actions/s end to end, p99 ≤ 50 ms at that rate, e2e ≥ 0.6× in-process.
 */
import { fork } from 'node:child_process';
import { createPrivateKey } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { signRequest } from '../src/httpsig/index.ts';
import { setSchedulingPolicy, threadPolicies } from '../src/util/index.ts';
import { BENCH_ACTION, BENCH_ACTION_PATH, BENCH_INPUT, Connection, type CpuSpent, NO_CPU, addCpu, cpuNow, cpuSince, describeCpu, rawPost, startBenchExecutor } from './support.ts';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '8' },
    rate: { type: 'string', default: '300' },
    warmup: { type: 'string', default: '3' },
    // Enough requests in flight to keep the workers busy while receipts wait for their group
    // commit: with 16, both workers sat idle ~12% of the time and one ~9% (docs/executor.md).
    concurrency: { type: 'string', default: '32' },
    pool: { type: 'string' },
    scheduling: { type: 'string', default: 'batch' },
    client: { type: 'string' }, // internal: run as the client process against this URL
  },
});
const seconds = Number(values.seconds);
const rate = Number(values.rate);
const warmup = Number(values.warmup);
const concurrency = Number(values.concurrency);
const poolSize = Number(values.pool ?? Math.max(1, availableParallelism()));
if (values.scheduling !== 'batch' && values.scheduling !== 'inherit') throw new Error('--scheduling is batch or inherit');
const scheduling = values.scheduling;

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

// The load generator: keep-alive connections (Connection), one request in flight on each,
// requests signed ahead of each phase (a fresh nonce and the same 300 s freshness window as any
// client; the server still verifies every signature, digest and nonce).

async function runClient(url: string, keyPem: string): Promise<void> {
  // Forked from a batch-scheduled executor, the client would inherit SCHED_BATCH; an agent on
  // another machine is scheduled normally, so the client is too (where it can be).
  await setSchedulingPolicy('other');
  const privateKey = createPrivateKey(keyPem);
  const target = new URL(url);
  const presign = async (n: number): Promise<Buffer[]> => {
    const out: Buffer[] = [];
    for (let i = 0; i < n; i++) {
      const headers = await signRequest({ method: 'POST', url: BENCH_ACTION_PATH, headers: { 'content-type': 'application/json' }, body: BENCH_INPUT }, { keyId: 'bench', privateKey });
      out.push(rawPost(target, BENCH_ACTION_PATH, headers, BENCH_INPUT));
    }
    return out;
  };
  const idle: Connection[] = [];
  const all: Connection[] = [];
  const one = async (request: Buffer): Promise<boolean> => {
    let conn = idle.pop();
    while (conn && !conn.isOpen) conn = idle.pop(); // idle past the server's keep-alive timeout
    if (!conn) {
      conn = await Connection.open(target);
      all.push(conn);
    }
    const res = await conn.send(request);
    idle.push(conn);
    if (res.status !== 200) {
      console.error(`status ${res.status}: ${res.body.slice(0, 300)}`);
      return false;
    }
    return res.body.includes('"proof"');
  };
  for (const r of await presign(100)) await one(r); // warm-up: connections, JIT, sandbox instances

  // 1. Open loop at a fixed rate; latency counts from the scheduled send time. The first
  //    `warmup` seconds at that rate are not counted: V8 is still compiling the request path
  //    and sizing the workers' heaps, and the p99 of a freshly started executor's first second
  //    is 2-4x that of the following ones.
  const openLoop = async (requests: Buffer[]): Promise<PhaseResult> => {
    const latencies: number[] = [];
    let errors = 0;
    const t0 = performance.now() + 10;
    const inflight: Promise<void>[] = [];
    for (let i = 0; i < requests.length; i++) {
      const due = t0 + (i * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      inflight.push(one(requests[i]!).then((ok) => (ok ? void latencies.push(performance.now() - due) : void errors++), () => void errors++));
    }
    await Promise.all(inflight);
    return summarize(latencies, errors, (performance.now() - t0) / 1000);
  };
  const warmupRequests = await presign(Math.round(rate * warmup));
  const fixedRequests = await presign(Math.round(rate * seconds));
  const warmupResult = await openLoop(warmupRequests);
  process.send!({ phase: 'fixed' });
  const fixedResult = await openLoop(fixedRequests);
  process.send!({ phase: 'fixed', end: true });

  // 2. Closed loop: maximum throughput with `concurrency` requests in flight (and connections),
  //    in slices the server asks for (it runs the in-process baseline between them).
  const closedRequests = await presign(Math.ceil(seconds * MAX_EXPECTED_RATE));
  while (idle.length > concurrency) idle.pop()!.close();
  let next = 0;
  const closedSlice = async (ms: number): Promise<SliceResult> => {
    const latencies: number[] = [];
    let errors = 0;
    const cpuStart = process.cpuUsage();
    const start = performance.now();
    const end = start + ms;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (performance.now() < end) {
          const request = closedRequests[next++];
          if (!request) throw new Error(`more than ${MAX_EXPECTED_RATE} actions/s: raise MAX_EXPECTED_RATE`);
          const t = performance.now();
          if (await one(request).catch(() => false)) latencies.push(performance.now() - t);
          else errors++;
        }
      }),
    );
    const cpu = process.cpuUsage(cpuStart);
    return { latencies, errors, elapsed: (performance.now() - start) / 1000, cpuMs: (cpu.user + cpu.system) / 1000 };
  };
  process.send!({ fixed: fixedResult, warmup: warmupResult });
  process.on('message', (m: { slice?: number; done?: boolean }) => {
    if (m.done) {
      for (const c of all) c.close();
      process.exit(0);
    }
    void closedSlice(m.slice!).then((r) => process.send!({ slice: r }));
  });
}

interface SliceResult {
  readonly latencies: number[];
  readonly errors: number;
  readonly elapsed: number;
  readonly cpuMs: number;
}

/** Requests signed ahead for the closed loop, per second of it. */
const MAX_EXPECTED_RATE = 2000;

// ---- server process ----

/** Length of one slice of the interleaved maximum-throughput comparison. */
const SLICE_SECONDS = 2;

async function main(): Promise<void> {
  const bench = await startBenchExecutor(poolSize, scheduling);
  const { running, privateKey } = bench;
  try {
    const child = fork(fileURLToPath(import.meta.url), ['--client', running.url, '--seconds', String(seconds), '--rate', String(rate), '--warmup', String(warmup), '--concurrency', String(concurrency)], {
      env: { ...process.env, ATTEX_BENCH_KEY: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString() },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const pool = running.executor.pool;
    let onMessage: (m: { phase?: string; end?: boolean; fixed?: PhaseResult; warmup?: PhaseResult; slice?: SliceResult }) => void = () => undefined;
    child.on('message', (m) => onMessage(m as Parameters<typeof onMessage>[0]));
    const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`client exited (${code}) before the end`))));
    // How long the executor's event loop was held up while the fixed load ran: a stall there
    // delays every request in flight, so it shows in the p99.
    const loopDelay = monitorEventLoopDelay({ resolution: 1 });
    let fixedStart: Promise<CpuSpent> | undefined;
    let fixedCpu: Promise<CpuSpent> | undefined;
    const [f, w] = await Promise.race([
      exited,
      new Promise<[PhaseResult, PhaseResult]>((resolve) => {
        onMessage = (m) => {
          if (m.fixed && m.warmup) resolve([m.fixed, m.warmup]);
          else if (m.phase === 'fixed' && m.end) {
            fixedCpu = cpuSince(fixedStart!, pool);
            loopDelay.disable();
          } else if (m.phase === 'fixed') {
            fixedStart = cpuNow(pool);
            loopDelay.enable();
          }
        };
      }),
    ]);
    const executorPolicies = await threadPolicies(process.pid);
    const clientPolicies = await threadPolicies(child.pid!);
    const describePolicies = (m: Map<string, number>) => [...m].map(([p, n]) => `${p} x${n}`).join(', ') || 'unknown';
    console.log(`thread scheduling: executor ${describePolicies(executorPolicies)}; client ${describePolicies(clientPolicies)}`);
    if (process.platform === 'linux' && (clientPolicies.size !== 1 || !clientPolicies.has('SCHED_OTHER'))) {
      console.log('  warning: the client is not (only) under SCHED_OTHER, as an agent on another machine would be: this run favours the executor');
    }
    const expected = scheduling === 'batch' ? 'SCHED_BATCH' : undefined;
    if (process.platform === 'linux' && expected && (executorPolicies.size !== 1 || !executorPolicies.has(expected))) {
      console.log(`  warning: the executor asked for ${expected} and did not get it everywhere (see its log)`);
    } else if (scheduling === 'inherit' && executorPolicies.has('SCHED_BATCH')) {
      console.log('  note: this benchmark was started under SCHED_BATCH, which "inherit" keeps');
    }
    console.log('e2e (signed HTTP + auth + sandbox + receipt + durable log + checkpoint + proof), client in its own process:');
    console.log(`  fixed load ${rate}/s for ${seconds} s: achieved ${(f.count / f.elapsed).toFixed(0)} actions/s, p50 ${f.p50.toFixed(1)} ms, p99 ${f.p99.toFixed(1)} ms, max ${f.max.toFixed(1)} ms, errors ${f.errors}`);
    if (w.count > 0) console.log(`    after ${warmup} s at the same rate, not counted (p99 ${w.p99.toFixed(1)} ms, errors ${w.errors})`);
    console.log(`    CPU per action: ${describeCpu(await fixedCpu!, f.count + f.errors)}`);
    console.log(`    executor event-loop delay: p99 ${(loopDelay.percentile(99) / 1e6).toFixed(1)} ms, max ${(loopDelay.max / 1e6).toFixed(1)} ms`);

    // Maximum throughput, end to end and in-process (the same action through the same pool: no
    // HTTP, no signature, no receipt, no log), in alternating slices so that a change in the
    // machine's speed during the run weighs on both figures alike.
    const commitsBefore = running.executor.ledger.commitStats;
    const sizeBeforeMax = running.executor.ledgerSize();
    const text = new TextDecoder().decode(BENCH_INPUT);
    const slices = Math.max(1, Math.round(seconds / SLICE_SECONDS));
    const e2eLatencies: number[] = [];
    let e2eErrors = 0;
    let e2eElapsed = 0;
    let clientCpuMs = 0;
    let inCount = 0;
    let inElapsed = 0;
    let e2eCpu = NO_CPU;
    let inCpu = NO_CPU;
    for (let i = 0; i < slices; i++) {
      const e2eStart = cpuNow(pool);
      const r = await Promise.race([exited, new Promise<SliceResult>((resolve) => {
        onMessage = (m) => m.slice && resolve(m.slice);
        child.send({ slice: (seconds * 1000) / slices });
      })]);
      e2eCpu = addCpu(e2eCpu, await cpuSince(e2eStart, pool));
      for (const l of r.latencies) e2eLatencies.push(l);
      e2eErrors += r.errors;
      e2eElapsed += r.elapsed;
      clientCpuMs += r.cpuMs;

      const inStart = cpuNow(pool);
      const start = performance.now();
      const end = start + (seconds * 1000) / slices;
      let count = 0;
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (performance.now() < end) {
            const run = await pool.run(BENCH_ACTION, text);
            if (!run.ok) throw new Error(`in-process run failed: ${run.error?.code}`);
            count++;
          }
        }),
      );
      inElapsed += (performance.now() - start) / 1000;
      inCount += count;
      inCpu = addCpu(inCpu, await cpuSince(inStart, pool));
    }
    child.send({ done: true });
    const m = summarize(e2eLatencies, e2eErrors, e2eElapsed);
    const e2eRate = m.count / m.elapsed;
    const inRate = inCount / inElapsed;
    console.log(`  max throughput, concurrency ${concurrency}: ${e2eRate.toFixed(0)} actions/s, p50 ${m.p50.toFixed(1)} ms, p99 ${m.p99.toFixed(1)} ms, errors ${m.errors}`);
    console.log(`    CPU per action: ${describeCpu(e2eCpu, m.count + m.errors)}; client process ${(clientCpuMs / Math.max(1, m.count)).toFixed(2)} ms`);
    const commits = running.executor.ledger.commitStats;
    const entries = running.executor.ledgerSize() - sizeBeforeMax;
    const batches = commits.batches - commitsBefore.batches;
    console.log(`    log: ${entries} entries in ${batches} fsync batches (${(entries / Math.max(1, batches)).toFixed(1)} per fsync, each with its checkpoint)`);
    console.log(`in-process sandbox pool only (${slices} slices alternating with the e2e ones): ${inRate.toFixed(0)} actions/s`);
    console.log(`    CPU per action: ${describeCpu(inCpu, inCount)}`);
    console.log(`ratio e2e max / in-process: ${(e2eRate / inRate).toFixed(2)} (target >= 0.6)`);
    // The same comparison in CPU per action (client included), which the machine's speed moves
    // less than throughput: the ratio above cannot exceed it by much with both cores busy.
    const e2eCpuMs = e2eCpu.total / 1000 / Math.max(1, m.count + m.errors) + clientCpuMs / Math.max(1, m.count);
    const inCpuMs = inCpu.total / 1000 / Math.max(1, inCount);
    console.log(`CPU per action in-process / end to end (client included): ${(inCpuMs / e2eCpuMs).toFixed(2)}`);
  } finally {
    await bench.close();
  }
}

if (values.client !== undefined) {
  // Ctrl-C reaches the client too, and the server side may go first: leave quietly either way.
  process.once('SIGINT', () => process.exit(130));
  process.once('disconnect', () => process.exit(0));
  process.on('error', () => process.exit(0)); // a message to a parent that is already gone
  await runClient(values.client, process.env.ATTEX_BENCH_KEY ?? '').catch((err: unknown) => {
    console.error(`bench client stopped: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}
else await main();
