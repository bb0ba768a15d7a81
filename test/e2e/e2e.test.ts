/**
 * End to end with real processes on loopback, simulated TEE: `attex broker serve` and
 * `attex executor` as child processes; every example action dispatched with a signed request
 * (`attex dispatch` as a child process); every receipt verified offline by `attex verify`; then
 * the executor stops gracefully, its log is exported and checked by the independent interop
 * checker (Go x/mod + securesystemslib).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSimulatedTee } from '../../src/attestation/sim/index.ts';
import { toHex } from '../../src/util/index.ts';

const repoRoot = path.resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
const MAIN = path.join(repoRoot, 'src/cli/main.ts');
const RUN_SH = path.resolve(repoRoot, '../shared/interop/run.sh');
const OPERATOR_KEY = 'ab'.repeat(32);

let dir: string;
const children: ChildProcess[] = [];

function cli(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [MAIN, ...args], { cwd: dir, env: { ...process.env, ...env }, encoding: 'utf8', timeout: 120_000 });
}

/** Start a long-running CLI child and resolve with the first complete JSON value on its stdout. */
function serve(args: string[], env: Record<string, string> = {}): Promise<{ child: ChildProcess; info: Record<string, unknown>; stderr: () => string }> {
  const child = spawn(process.execPath, [MAIN, ...args], { cwd: dir, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      try {
        resolve({ child, info: JSON.parse(out) as Record<string, unknown>, stderr: () => err });
      } catch {
        // not complete yet
      }
    });
    child.once('exit', (code) => reject(new Error(`${args[0]} exited with ${code}: ${err.slice(-2000)}`)));
  });
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.once('exit', (code) => resolve(code))));
}

const ACTIONS: Array<{ action: string; input: unknown; exit: number }> = [
  { action: 'transform', input: { items: [{ category: 'a', amount: 1 }, { category: 'b', amount: 2 }] }, exit: 0 },
  { action: 'wat-echo', input: { echo: 'hello' }, exit: 0 },
  { action: 'sign-payload', input: { payload: { order: 42 } }, exit: 0 },
  { action: 'kv-counter', input: { name: 'visits' }, exit: 0 },
  // No network here: the action fails (typed), and its failure receipt must verify all the same.
  { action: 'fetch-quote', input: { symbol: 'ABC' }, exit: 1 },
];

describe('end to end: broker + executor processes, dispatch, verify, export, interop', () => {
  let executor: Awaited<ReturnType<typeof serve>>;
  let executorInfo: Record<string, unknown>;
  const stateDir = () => path.join(dir, 'executor-state');

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'attex-e2e-'));
    const simDir = path.join(dir, 'sim');
    const tee = await openSimulatedTee(simDir); // the PKI both processes share; its measurement is this checkout's
    const env = { ATTEX_BROKER_KEY: OPERATOR_KEY };

    await writeFile(path.join(dir, 'signing-key.bin'), Buffer.alloc(32, 7));
    const put = cli(['broker', 'secret', 'put', 'default/key/signing-key', '--state', 'broker', '--from-file', 'signing-key.bin'], env);
    expect(put.status, put.stderr).toBe(0);
    await writeFile(path.join(dir, 'resources.json'), JSON.stringify({
      version: 1, id: 'e2e',
      rules: [{ resources: ['default/key/*'], tees: ['sim-snp'], measurements: [toHex(tee.measurement)], minStatus: 'warning', allowSimulated: true }],
    }));
    const broker = await serve([
      'broker', 'serve', '--policy', path.join(repoRoot, 'attestation/policies/dev-simulated.json'), '--resource-policy', 'resources.json',
      '--port', '0', '--state', 'broker', '--allow-simulated', '--sim-state', 'sim', '--json',
    ], env);

    const jwks = (await (await fetch(`${String(broker.info['url'])}/.well-known/attex-broker-jwks.json`)).json()) as { keys: Array<{ x: string; y: string }> };
    const tokenKey = jwks.keys[0]!;
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    await writeFile(path.join(dir, 'caller.pem'), privateKey.export({ format: 'pem', type: 'pkcs8' }) as string, { mode: 0o600 });
    await writeFile(path.join(dir, 'executor.json'), JSON.stringify({
      executorId: 'e2e-executor',
      mode: 'simulated',
      listen: { host: '127.0.0.1', port: 0 },
      stateDir: 'executor-state',
      componentsDir: path.join(repoRoot, 'components'),
      componentsCacheDir: path.join(repoRoot, '.attex/cache/components'),
      evidence: { provider: 'sim', simStateDir: 'sim' },
      // The broker's token key, pinned: the executor verifies the token it records.
      broker: { url: broker.info['url'], secrets: { 'signing-key': 'default/key/signing-key' }, tokenKey: { kty: 'EC', crv: 'P-256', x: tokenKey.x, y: tokenKey.y } },
      log: { origin: 'e2e.attex.invalid/log' },
      callers: [{ id: 'agent-1', keyId: 'agent-1', publicKey: Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url').toString('base64'), actions: ['*'] }],
    }));
    executor = await serve(['executor', '--config', 'executor.json', '--json']);
    executorInfo = executor.info;
    await writeFile(path.join(dir, 'trust.json'), JSON.stringify({ logVerifierKey: executorInfo['logVerifierKey'], simulatedStateDir: 'sim', allowSimulated: true }));
  }, 240_000);

  afterAll(async () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  it('the executor attested through the broker and deployed every example', () => {
    expect(executorInfo['tee']).toBe('sim-snp');
    expect(executorInfo['recordIndex']).toBe(0);
    expect([...(executorInfo['actions'] as string[])].sort()).toEqual(ACTIONS.map((a) => a.action).sort());
  });

  it.each(ACTIONS)('dispatch $action with a signed request; its receipt verifies offline', ({ action, input, exit }) => {
    const saved = `${action}.bundle.json`;
    const d = cli(['dispatch', action, '--url', String(executorInfo['url']), '--key', 'caller.pem', '--key-id', 'agent-1', '--input', JSON.stringify(input), '--save', saved, '--json']);
    expect(d.status, d.stderr).toBe(exit);
    const result = JSON.parse(d.stdout) as { outcome: string; output?: Record<string, unknown>; error?: { code: string } };
    if (exit === 0) expect(result.outcome).toBe('ok');
    else expect(result.error?.code).toBe('action.failed');
    if (action === 'sign-payload') expect(result.output).toMatchObject({ alg: 'HS256', key: 'signing-key' });
    const v = cli(['verify', saved, '--trust', 'trust.json', '--json']);
    expect(v.status, v.stdout + v.stderr).toBe(0);
    const verdict = JSON.parse(v.stdout) as { verified: boolean; receipt: { component: { name: string }; caller: { id: string } } };
    expect(verdict.verified).toBe(true);
    expect(verdict.receipt.component.name).toBe(action);
    expect(verdict.receipt.caller.id).toBe('agent-1');
  });

  it('a tampered bundle does not verify (exit 1)', async () => {
    const bundle = JSON.parse(await readFile(path.join(dir, 'transform.bundle.json'), 'utf8')) as { receipt: string };
    const bytes = Buffer.from(bundle.receipt, 'base64');
    bytes[bytes.length - 5]! ^= 1;
    await writeFile(path.join(dir, 'tampered.json'), JSON.stringify({ ...bundle, receipt: bytes.toString('base64') }));
    expect(cli(['verify', 'tampered.json', '--trust', 'trust.json']).status).toBe(1);
  });

  it('SIGTERM stops the executor cleanly; the exported log passes the independent interop check', async () => {
    executor.child.kill('SIGTERM');
    expect(await exited(executor.child)).toBe(0);
    const exp = cli([
      'ledger', 'export', 'export', '--ledger', path.join(stateDir(), 'log'), '--key', path.join(stateDir(), 'log-key.pem'),
      '--executor-pub', path.join(stateDir(), 'receipt-key.pub'), '--json',
    ]);
    expect(exp.status, exp.stderr).toBe(0);
    expect((JSON.parse(exp.stdout) as { size: number }).size).toBe(1 + ACTIONS.length);
    const run = spawnSync('bash', [RUN_SH, path.join(dir, 'export')], { encoding: 'utf8', timeout: 240_000 });
    if (run.status !== 0) console.error(run.stdout.split('\n').filter((l) => l.startsWith('FAIL')).join('\n'), run.stderr);
    expect(run.status).toBe(0);
    expect(run.stdout.trim().split('\n').at(-1)).toMatch(/^\d+ passed, 0 failed$/);
  }, 300_000);
});
