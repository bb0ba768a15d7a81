/**
 * The state directory lock, with real processes: a second owner is refused while the first
 * lives, a lock whose owner was killed is taken over once stale, and an owner whose lock was
 * taken over learns it. Also: the executor refuses a state directory another executor holds.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { access, mkdir, mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AttexError } from '../../src/errors/index.ts';
import { Ledger } from '../../src/ledger/index.ts';
import { ed25519PrivateKeyFromSeed } from '../../src/receipts/index.ts';
import { LOCK_NAME, LOCK_STALE_MS, StateLockError, lockStateDirectory } from '../../src/util/index.ts';
import { newCaller, startTestExecutor } from '../server/helpers.ts';

const MODULE = fileURLToPath(new URL('../../src/util/state-lock.ts', import.meta.url));
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'attex-lock-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A separate Node process holding `stateDir`'s lock until it is killed. */
async function holder(stateDir: string): Promise<ChildProcess> {
  const script = `const { lockStateDirectory } = await import(${JSON.stringify(MODULE)});
await lockStateDirectory(${JSON.stringify(stateDir)}, { onLost: () => {} });
console.log('locked');
setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('locked') && resolve());
    child.once('exit', (code) => reject(new Error(`lock holder exited with ${code}`)));
  });
  return child;
}

async function refused(stateDir: string): Promise<StateLockError> {
  const err = await lockStateDirectory(stateDir, { waitMs: 0, onLost: () => undefined }).then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(StateLockError);
  return err as StateLockError;
}

describe.concurrent('state directory lock', () => {
  it('is refused to a second owner until released, then taken at once', async () => {
    const stateDir = path.join(dir, 'one');
    const first = await lockStateDirectory(stateDir, { onLost: () => undefined });
    await access(path.join(stateDir, LOCK_NAME));
    expect((await refused(stateDir)).failure).toEqual({ kind: 'locked' });
    // The wait is measured on the monotonic clock, not on an injected (here frozen) one.
    const started = performance.now();
    const frozen = await lockStateDirectory(stateDir, { waitMs: 300, now: () => 0, onLost: () => undefined }).then(() => undefined, (e: unknown) => e);
    expect((frozen as StateLockError).failure.kind).toBe('locked');
    expect(performance.now() - started).toBeLessThan(3_000);
    await first.release();
    await first.release(); // idempotent
    const second = await lockStateDirectory(stateDir, { waitMs: 0, onLost: () => undefined });
    await second.release();
  });

  it('held by another live process: refused; once that process is killed, taken over when stale', async () => {
    const stateDir = path.join(dir, 'killed');
    const child = await holder(stateDir);
    try {
      expect((await refused(stateDir)).failure.kind).toBe('locked');
      const killedAt = Date.now();
      child.kill('SIGKILL');
      let waits = 0;
      const lock = await lockStateDirectory(stateDir, { waitMs: LOCK_STALE_MS + 5_000, onLost: () => undefined, onWait: () => waits++ });
      expect(waits).toBe(1);
      // Not before the last refresh went stale: at least half the staleness after the kill.
      expect(Date.now() - killedAt).toBeGreaterThanOrEqual(LOCK_STALE_MS / 2 - 100);
      await lock.release();
    } finally {
      child.kill('SIGKILL');
    }
  }, 30_000);

  it('tells its owner when another process took it over', async () => {
    const stateDir = path.join(dir, 'lost');
    let lost: Error | undefined;
    const lock = await lockStateDirectory(stateDir, { onLost: (err) => (lost = err) });
    // Someone removes the lock and takes the directory: the owner's next refresh finds out.
    await rm(path.join(stateDir, LOCK_NAME), { recursive: true });
    const usurper = await lockStateDirectory(stateDir, { waitMs: 0, onLost: () => undefined });
    const deadline = Date.now() + LOCK_STALE_MS;
    while (!lost && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(lost).toBeInstanceOf(Error);
    await lock.release(); // a lost lock releases nothing: the usurper keeps it
    expect((await refused(stateDir)).failure.kind).toBe('locked');
    await usurper.release();
  }, 20_000);

  it('an executor refuses a state directory another executor holds, with its own code', async () => {
    const caller = newCaller('alice');
    const first = await startTestExecutor({ dir: path.join(dir, 'executor'), actions: ['transform'], callers: [caller] });
    try {
      expect(first.executor.readiness().checks['stateLocked']).toBe(true);
      const err = await startTestExecutor({ dir: path.join(dir, 'executor'), actions: ['transform'], callers: [caller], lockWaitMs: 0 }).then(
        async (second) => {
          await second.close();
          return undefined;
        },
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(AttexError);
      expect((err as AttexError).code).toBe('executor.state-locked');
    } finally {
      await first.close();
    }
    // Closed: the next executor takes the directory at once.
    const again = await startTestExecutor({ dir: path.join(dir, 'executor'), actions: ['transform'], callers: [caller], lockWaitMs: 0 });
    await again.close();
  }, 60_000);

  it('a ledger whose lock was taken over refuses appends (ledger.lock-lost); a second opener is refused (ledger.locked)', async () => {
    const ledgerDir = path.join(dir, 'ledger');
    const signer = { name: 'lock.test/log', privateKey: ed25519PrivateKeyFromSeed(new Uint8Array(32).fill(3)) };
    const ledger = await Ledger.open(ledgerDir, { signer, checkpointInterval: 0, lock: {} });
    try {
      await ledger.append(new TextEncoder().encode('{"a":1}'));
      const second = await Ledger.open(ledgerDir, { signer, checkpointInterval: 0, lock: {} }).then(() => undefined, (e: unknown) => e);
      expect((second as AttexError).code).toBe('ledger.locked');
      await rm(path.join(ledgerDir, 'ledger.lock'), { recursive: true });
      const usurper = await lockStateDirectory(ledgerDir, { name: 'ledger.lock', waitMs: 0, onLost: () => undefined });
      const deadline = Date.now() + LOCK_STALE_MS;
      let err: unknown;
      while (err === undefined && Date.now() < deadline) {
        err = await ledger.append(new TextEncoder().encode('{"a":2}')).then(() => undefined, (e: unknown) => e);
        if (err === undefined) await new Promise((r) => setTimeout(r, 200));
      }
      expect((err as AttexError).code).toBe('ledger.lock-lost');
      // Nothing more reaches the directory the new holder owns: no checkpoint, tiles or records.
      const files = async () => ({ seq: await readFile(path.join(ledgerDir, 'seq')), checkpoint: await readFile(path.join(ledgerDir, 'checkpoint')).catch(() => undefined) });
      const before = await files();
      await expect(ledger.publishCheckpoint()).rejects.toMatchObject({ code: 'ledger.lock-lost' });
      await ledger.close();
      expect(await files()).toEqual(before);
      await usurper.release();
    } finally {
      await ledger.close();
    }
  }, 20_000);

  it('a broker whose state directory is taken over while it opens refuses to start (broker.state-lock-lost)', async () => {
    const { openBroker } = await import('../../src/broker/open.ts');
    const { loadBrokerVerifier } = await import('../../src/broker/wiring.ts');
    const { loadResourcePolicy } = await import('../../src/broker/policy/index.ts');
    const pino = (await import('pino')).default;
    const { verifier } = await loadBrokerVerifier({ policyFile: path.resolve(fileURLToPath(new URL('.', import.meta.url)), '../../attestation/policies/default.json'), allowSimulated: false });
    const stateDir = path.join(dir, 'broker');
    // Its audit log is held elsewhere, so opening waits there while its state lock is taken.
    const audit = await lockStateDirectory(path.join(stateDir, 'audit'), { name: 'ledger.lock', onLost: () => undefined });
    const opening = openBroker({
      stateDir, operatorKey: new Uint8Array(32).fill(1), verifier, resourcePolicy: loadResourcePolicy({ version: 1, id: 'none', rules: [] }),
      logger: pino({ level: 'silent' }), checkpointInterval: 0, lockWaitMs: LOCK_STALE_MS + 5_000,
    }).then(async (broker) => {
      await broker.close();
      return undefined;
    }, (e: unknown) => e);
    while (!(await access(path.join(stateDir, LOCK_NAME)).then(() => true, () => false))) await new Promise((r) => setTimeout(r, 50));
    await rm(path.join(stateDir, LOCK_NAME), { recursive: true });
    const usurper = await lockStateDirectory(stateDir, { waitMs: 0, onLost: () => undefined });
    await new Promise((r) => setTimeout(r, LOCK_STALE_MS / 2 + 1_000)); // the broker's next refresh finds out
    await audit.release();
    const err = await opening;
    expect((err as AttexError).code).toBe('broker.state-lock-lost');
    expect((await refused(stateDir)).failure.kind).toBe('locked'); // the usurper keeps it
    await usurper.release();
  }, 30_000);

  it('a lock that is not a directory (left by hand, say) is reported as such once stale', async () => {
    const stateDir = path.join(dir, 'not-a-dir');
    await mkdir(stateDir, { recursive: true });
    const file = path.join(stateDir, LOCK_NAME);
    await writeFile(file, 'x');
    const old = new Date(Date.now() - 60_000);
    await utimes(file, old, old);
    const err = await refused(stateDir);
    expect(err.failure).toEqual({ kind: 'io', code: 'ENOTDIR' });
    expect(err.message).toContain('is not a directory: remove it');
  });
});
