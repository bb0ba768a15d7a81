/**
 * bench:e2e-layers — where the end-to-end cost goes. One executor (simulated TEE, the same pool
 * as bench:e2e), driven in-process with `--concurrency` requests in flight, layer by layer:
 *   1. sandbox pool only
 *   2. + receipt (execution statement, DSSE, Ed25519)
 *   3. + durable log append (group commit, fsync, checkpoint) and tlog-proof
 *   4. + request signature verification (RFC 9421, Ed25519, replay cache), i.e. everything
 *      bench:e2e does except HTTP
 * Each line gives actions/s, CPU per action (main thread, sandbox workers, whole process),
 * context switches per action, and receipts per fsync. The layers alternate for `--rounds`
 * rounds, so a change in the machine's speed weighs on all of them alike. Then two more figures:
 *   - the executor's HTTP path alone: its fastify app (routing, admission, metrics, JSON, socket
 *     writes) in front of a service that returns a real dispatch result at once, driven over
 *     loopback by a client process with a development bearer token (so no signature check);
 *   - the CPU cost of waking a thread on this machine: a message round trip to an echoing
 *     worker, back to back and with the threads idle in between (the executor's threads sleep
 *     between actions at low load).
 *
 *   npm run bench:e2e-layers [-- --seconds 3 --rounds 2 --concurrency 16 --pool 2]
 */
import { fork } from 'node:child_process';
import { randomBytes, randomFillSync } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { ReplayCache, type VerifiedRequestSignature, signRequest, verifyRequest } from '../src/httpsig/index.ts';
import { buildExecutionStatement, signStatement } from '../src/receipts/index.ts';
import { DispatchQueue } from '../src/server/admission.ts';
import { createExecutorApp } from '../src/server/app.ts';
import { EXECUTOR_VERSION } from '../src/server/executor.ts';
import { executionParams, uuidv7 } from '../src/server/receipt.ts';
import type { DispatchResult, ExecutorService } from '../src/server/service.ts';
import { BENCH_ACTION, BENCH_ACTION_PATH, BENCH_INPUT, Connection, type CpuSpent, NO_CPU, addCpu, cpuNow, cpuSince, rawPost, startBenchExecutor } from './support.ts';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '2' },
    concurrency: { type: 'string', default: '16' },
    pool: { type: 'string' },
    'http-client': { type: 'string' }, // internal: run as the HTTP client against this port
  },
});
const seconds = Number(values.seconds);
const rounds = Number(values.rounds);
const concurrency = Number(values.concurrency);
const poolSize = Number(values.pool ?? Math.max(1, availableParallelism()));

const body = BENCH_INPUT;
const text = new TextDecoder().decode(body);

const HTTP_REQUESTS = 20_000;
const DEV_TOKEN = 'bench-layers-development-token-0123456789';
if (values['http-client'] !== undefined) {
  await httpClient(Number(values['http-client']));
  process.exit(0);
}

/** `concurrency` keep-alive connections, one request in flight on each, HTTP_REQUESTS in all once told to go. */
async function httpClient(port: number): Promise<void> {
  // Header sizes as in a signed request (signature-input, signature, content-digest), unchecked here.
  const request = rawPost(new URL(`http://127.0.0.1:${port}`), BENCH_ACTION_PATH, {
    'content-type': 'application/json',
    authorization: `Bearer ${DEV_TOKEN}`,
    'content-digest': `sha-256=:${randomBytes(32).toString('base64')}:`,
    'signature-input': `attex=("@method" "@path" "@query" "content-digest");created=${Math.floor(Date.now() / 1000)};keyid="bench";alg="ed25519";nonce="${randomBytes(16).toString('base64url')}"`,
    'x-signature': `attex=:${randomBytes(64).toString('base64')}:`,
  }, body);
  const connections = await Promise.all(Array.from({ length: concurrency }, () => Connection.open(new URL(`http://127.0.0.1:${port}`))));
  await new Promise<void>((resolve) => {
    process.once('message', () => resolve());
    process.send!('ready');
  });
  let sent = 0;
  await Promise.all(connections.map(async (connection) => {
    while (sent < HTTP_REQUESTS) {
      sent++;
      const response = await connection.send(request);
      if (response.status !== 200) throw new Error(`status ${response.status}: ${response.body.slice(0, 300)}`);
    }
    connection.close();
  }));
}

const bench = await startBenchExecutor(poolSize);
const { running, privateKey, publicKey } = bench;
const executor = running.executor;
const pool = executor.pool;
const component = pool.components.get(BENCH_ACTION)!;
const caller = { id: 'bench', actions: ['*'] };
// Admission as in the executor: as many as the pool holds, queued actions in its workers included.
const queue = new DispatchQueue({ concurrency: pool.capacity, maxQueued: 10_000 });
const replay = new ReplayCache();

// Requests for layer 4 are signed ahead (as a client would), so signing is not measured.
const signed: Array<Record<string, string>> = [];
const MAX_EXPECTED_RATE = 2000;
for (let i = 0; i < seconds * rounds * MAX_EXPECTED_RATE; i++) {
  signed.push(await signRequest({ method: 'POST', url: BENCH_ACTION_PATH, headers: { 'content-type': 'application/json' }, body }, { keyId: 'bench', privateKey }));
}

let nextSigned = 0;

/** The executor's own dispatch: sandbox, receipt, durable log, proof (no HTTP). */
function dispatch(signature?: VerifiedRequestSignature): Promise<DispatchResult> {
  return executor.dispatch({
    action: BENCH_ACTION, inputBytes: body, input: JSON.parse(text), caller,
    ...(signature ? { signature, authMethod: 'http-signature' as const } : { authMethod: 'bearer-dev' as const }),
    admit: (task) => queue.run(task),
  });
}

async function receiptOnly(): Promise<unknown> {
  const startedAt = new Date();
  const run = await queue.run(() => pool.run(BENCH_ACTION, text));
  if (!run.ok) throw new Error(`run failed: ${run.error?.code}`);
  const params = executionParams({
    invocationId: uuidv7(Date.now(), randomFillSync(new Uint8Array(16))),
    caller,
    component,
    input: body,
    output: new TextEncoder().encode(run.output!),
    run,
    executor: { id: executor.config.executorId, version: EXECUTOR_VERSION, signingKey: executor.signer.publicKeyRaw },
    attestation: executor.attestation,
    recordLogIndex: executor.record.index,
    startedAt,
    finishedAt: new Date(),
  });
  return signStatement(buildExecutionStatement(params), executor.signer);
}

const layers: Array<{ name: string; logs?: boolean; one: () => Promise<unknown> }> = [
  { name: 'sandbox pool', one: () => queue.run(() => pool.run(BENCH_ACTION, text)) },
  { name: '+ receipt', one: receiptOnly },
  { name: '+ durable log + proof', logs: true, one: () => dispatch() },
  {
    name: '+ signature verification',
    logs: true,
    one: async () => {
      const headers = signed[nextSigned++];
      if (!headers) throw new Error(`more than ${MAX_EXPECTED_RATE} actions/s: raise MAX_EXPECTED_RATE`);
      const signature = await verifyRequest(
        { method: 'POST', url: BENCH_ACTION_PATH, headers: { ...headers, host: '127.0.0.1', 'content-length': String(body.length) }, body },
        { lookupKey: () => publicKey, now: new Date(), replay },
      );
      return JSON.stringify(await dispatch(signature));
    },
  },
];

interface Totals {
  actions: number;
  elapsed: number;
  cpu: CpuSpent;
  records: number;
  batches: number;
}

async function measure(one: () => Promise<unknown>, into: Totals): Promise<void> {
  const commits = executor.ledger.commitStats;
  const cpu = cpuNow(pool);
  const start = performance.now();
  const end = start + seconds * 1000;
  let n = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        await one();
        n++;
      }
    }),
  );
  into.elapsed += (performance.now() - start) / 1000;
  into.cpu = addCpu(into.cpu, await cpuSince(cpu, pool));
  into.actions += n;
  const after = executor.ledger.commitStats;
  into.records += after.records - commits.records;
  into.batches += after.batches - commits.batches;
}

/** Event-loop CPU per request of the executor's HTTP app in front of a service that answers at once. */
async function httpPathCost(result: DispatchResult): Promise<void> {
  const service: ExecutorService = {
    readiness: () => ({ ready: true, checks: {} }),
    hasAction: () => true,
    dispatch: async (req) => (req.admit ? req.admit(async () => result) : result),
    receiptBundle: async () => undefined,
    attestationRecord: async () => ({}),
    logCheckpoint: () => '',
    logTile: async () => undefined,
    poolStats: () => ({ running: 0, queued: 0 }),
    ledgerSize: () => 0,
  };
  const { app } = await createExecutorApp({
    service, callers: [], bearerTokens: [{ token: DEV_TOKEN, caller }], allowBearer: true,
    concurrency: pool.capacity, maxQueued: 10_000, rateLimit: { ratePerSecond: 1e6, burst: 1e6 },
  });
  const url = new URL(await app.listen({ host: '127.0.0.1', port: 0 }));
  try {
    const child = fork(fileURLToPath(import.meta.url), ['--http-client', url.port, '--concurrency', String(concurrency)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    // Measured from the client's start signal: its start-up and connections are not counted.
    const ready = await Promise.race([exited.then(() => false), new Promise<boolean>((resolve) => child.once('message', () => resolve(true)))]);
    if (!ready) throw new Error('HTTP client exited before it was ready');
    const cpu = process.threadCpuUsage();
    const start = performance.now();
    child.send('go');
    const code = await exited;
    if (code !== 0) throw new Error(`HTTP client exited with ${code}`);
    const used = process.threadCpuUsage(cpu);
    const rate = HTTP_REQUESTS / ((performance.now() - start) / 1000);
    console.log(`HTTP path alone (fastify app, canned dispatch result, ${result.receipt.length + result.proof.length} bytes of receipt and proof): ${((used.user + used.system) / HTTP_REQUESTS).toFixed(0)} µs of event-loop CPU per request, ${rate.toFixed(0)} requests/s`);
  } finally {
    await app.close();
  }
}

/** CPU per message round trip main → worker → main, with `gapMs` of idleness before each. */
async function wakeUpCost(): Promise<void> {
  const echo = new Worker("require('node:worker_threads').parentPort.on('message', (m) => require('node:worker_threads').parentPort.postMessage(m));", { eval: true });
  const roundTrip = () => new Promise<void>((resolve) => {
    echo.once('message', () => resolve());
    echo.postMessage({ runId: 1, input: text });
  });
  try {
    for (let i = 0; i < 1000; i++) await roundTrip();
    const parts: string[] = [];
    for (const gapMs of [0, 1, 5]) {
      const n = gapMs === 0 ? 10_000 : 500;
      const cpu = process.cpuUsage();
      for (let i = 0; i < n; i++) {
        if (gapMs > 0) await new Promise((r) => setTimeout(r, gapMs));
        await roundTrip();
      }
      const used = process.cpuUsage(cpu);
      parts.push(`${gapMs === 0 ? 'back to back' : `${gapMs} ms apart`} ${((used.user + used.system) / n).toFixed(0)} µs`);
    }
    console.log(`thread wake-up cost, CPU per worker message round trip (both threads, incl. the timer when apart): ${parts.join(', ')}`);
  } finally {
    await echo.terminate();
  }
}

try {
  for (const layer of layers) for (let i = 0; i < 50; i++) await layer.one(); // warm-up
  const totals: Totals[] = layers.map(() => ({ actions: 0, elapsed: 0, cpu: NO_CPU, records: 0, batches: 0 }));
  for (let r = 0; r < rounds; r++) {
    for (const [i, layer] of layers.entries()) await measure(layer.one, totals[i]!);
  }
  console.log(`${concurrency} in flight, ${rounds} rounds of ${seconds} s per layer; CPU in ms per action`);
  console.log('layer                       actions/s    main  workers  process  switches  receipts/fsync');
  for (const [i, layer] of layers.entries()) {
    const t = totals[i]!;
    const per = (us: number) => (us / 1000 / Math.max(1, t.actions)).toFixed(2).padStart(7);
    const batch = layer.logs && t.batches > 0 ? (t.records / t.batches).toFixed(1) : '-';
    console.log(`${layer.name.padEnd(26)} ${(t.actions / t.elapsed).toFixed(0).padStart(9)} ${per(t.cpu.main)} ${per(t.cpu.workers)} ${per(t.cpu.total)} ${(t.cpu.switches / Math.max(1, t.actions)).toFixed(1).padStart(9)} ${batch.padStart(15)}`);
  }
  await httpPathCost(await dispatch());
  await wakeUpCost();
} finally {
  await bench.close();
}
