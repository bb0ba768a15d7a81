/**
 * The attested executor: the real ExecutorService behind the HTTP app.
 *
 * Start-up (AttestedExecutor.start), in order; any failure stops start-up with a typed error:
 *   1. receipt key: a fresh Ed25519 key in memory (never written; see keys.ts for why)
 *   2. log: the ledger in `<stateDir>/log`, signed by the persisted log key
 *   3. components: built or taken from the cache, loaded, compiled into the sandbox pool
 *   4. attestation: evidence binding the receipt key, via the broker (which releases the
 *      components' secrets) or directly from the provider; verified by the executor itself
 *   5. attestation record: a DSSE statement signed by the receipt key, appended to the log;
 *      every receipt of this boot names its index
 * Ready only when all five are done (and, with a broker, while its token is valid).
 */
import { randomFillSync } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import pkg from '../../package.json' with { type: 'json' };
import { type EvidenceProvider, detectProvider } from '../attestation/providers/index.ts';
import type { AmdRootSet, IntelRoot } from '../attestation/types.ts';
import { AttexError } from '../errors/index.ts';
import { DEFAULT_MAX_FUTURE_SECONDS } from '../httpsig/index.ts';
import { Ledger } from '../ledger/index.ts';
import {
  type ReceiptSigner,
  buildAttestationRecordStatement,
  buildExecutionStatement,
  createReceiptSigner,
  encodeBase64,
  parseDsse,
  MAX_ENVELOPE_BYTES,
  signStatement,
} from '../receipts/index.ts';
import type { BuildEvent } from '../sandbox/build.ts';
import { FileKvStore, type LoadedComponent, SandboxPool, workerHeapLimits } from '../sandbox/index.ts';
import { LOCK_TAKEOVER_WAIT_MS, type SchedulingOptions, type StateDirLock, lockStateDirectory, setSchedulingPolicy, sha256, toHex } from '../util/index.ts';
import { encodeBundle } from '../verify/index.ts';
import { type ExecutorAttestation, attestExecutor } from './attest.ts';
import { loadDeployedComponents, secretsNeeded } from './components.ts';
import type { ExecutorConfig } from './config.ts';
import { IdempotencyTable, idempotentInvocationId } from './idempotency.ts';
import { loadOrCreateLogKey, writeReceiptPublicKey } from './keys.ts';
import { executionParams, uuidv7 } from './receipt.ts';
import { HORIZON_FILE, STOP_MARKER_FILE, keepHorizon, readKeptHorizon, replayNotBefore, takeStopMarker, writeStopMarker } from './replay-horizon.ts';
import type { DispatchRequest, DispatchResult, ExecutorService, Readiness } from './service.ts';

export const EXECUTOR_VERSION: string = (pkg as { version: string }).version;
const RECORD_KEY_PREFIX = 'attestation-record:';

export interface ExecutorOptions {
  readonly config: ExecutorConfig;
  readonly logger?: Logger;
  readonly clock?: () => Date;
  /** Evidence provider override; default: the one `config.evidence` selects. */
  readonly provider?: EvidenceProvider;
  readonly onBuildProgress?: (event: BuildEvent) => void;
  readonly signal?: AbortSignal;
  /** How long to wait for the state directory's lock if another process holds it (default ~12 s). */
  readonly lockWaitMs?: number;
  /** Called if start-up waits for that lock (a previous process that did not stop cleanly). */
  readonly onLockWait?: () => void;
  /** Where `chrt` is and how long it may take, for `config.scheduling` "batch" (default: util/scheduling.ts). */
  readonly scheduling?: SchedulingOptions;
}

interface ProviderChoice {
  readonly provider: EvidenceProvider;
  readonly simulatedRoots?: { readonly amd: readonly AmdRootSet[]; readonly intel: readonly IntelRoot[] };
}

async function providerFor(config: ExecutorConfig): Promise<ProviderChoice> {
  const e = config.evidence;
  if (e.provider === 'sim') {
    if (config.mode !== 'simulated') throw new AttexError('config.invalid', 'the simulated TEE needs mode "simulated"');
    const { openSimulatedTee } = await import('../attestation/sim/index.ts');
    const tee = await openSimulatedTee(e.simStateDir!); // creates the simulated PKI on first use
    const provider = await detectProvider({ prefer: 'sim', simStateDir: e.simStateDir!, ...(e.simKind ? { simKind: e.simKind } : {}) });
    return { provider, simulatedRoots: { amd: tee.amdRoots, intel: tee.intelRoots } };
  }
  const provider = await detectProvider({
    prefer: e.provider,
    ...(e.tpmDevice ? { tpmDevice: e.tpmDevice } : {}),
    ...(config.mode === 'simulated' && e.simStateDir ? { simStateDir: e.simStateDir } : {}),
  });
  return { provider };
}

interface LoggedRecord {
  readonly envelope: Uint8Array;
  readonly index: number;
}

export class AttestedExecutor implements ExecutorService {
  readonly config: ExecutorConfig;
  readonly ledger: Ledger;
  readonly pool: SandboxPool;
  readonly signer: ReceiptSigner;
  readonly attestation: ExecutorAttestation;
  readonly record: LoggedRecord;
  readonly receiptPublicKeyFile: string;
  readonly #clock: () => Date;
  readonly #logger: Logger | undefined;
  readonly #kv: FileKvStore;
  readonly #idempotency = new IdempotencyTable();
  /** Actions inside the sandbox right now. */
  #running = 0;
  /** Dispatches between admission and their receipt's proof. */
  #inflight = 0;
  #closed = false;
  /**
   * Signatures created earlier (seconds since the epoch) are refused: the process before this one
   * may have accepted them (see replay-horizon.ts). Until then the executor is not ready.
   */
  readonly replayNotBefore: number;
  /** Cleared if the state directory's lock is lost: another process may be writing the log. */
  #lockHeld = true;
  readonly #lock: StateDirLock;
  /** CSPRNG bytes for invocation ids, drawn in blocks (one syscall per 256 ids, not per id). */
  readonly #random = new Uint8Array(4096);
  #randomAt = 4096;

  private constructor(p: {
    config: ExecutorConfig; ledger: Ledger; pool: SandboxPool; signer: ReceiptSigner; attestation: ExecutorAttestation;
    record: LoggedRecord; receiptPublicKeyFile: string; clock: () => Date; logger: Logger | undefined; lock: StateDirLock; replayNotBefore: number;
  }) {
    this.replayNotBefore = p.replayNotBefore;
    this.config = p.config;
    this.ledger = p.ledger;
    this.pool = p.pool;
    this.signer = p.signer;
    this.attestation = p.attestation;
    this.record = p.record;
    this.receiptPublicKeyFile = p.receiptPublicKeyFile;
    this.#clock = p.clock;
    this.#logger = p.logger;
    this.#lock = p.lock;
    this.#kv = new FileKvStore(path.join(p.config.stateDir, 'kv'));
  }

  static async start(o: ExecutorOptions): Promise<AttestedExecutor> {
    const { config } = o;
    const clock = o.clock ?? (() => new Date());
    const log = o.logger;
    // Taken first: the log has one writer, and every earlier owner of the directory had stopped
    // accepting requests by the time it is taken.
    let lostDuringStart: Error | undefined;
    let onLockLost = (err: Error): void => void (lostDuringStart = err);
    const lock = await lockStateDirectory(config.stateDir, {
      ...(o.lockWaitMs === undefined ? {} : { waitMs: o.lockWaitMs }),
      codes: { locked: 'executor.state-locked', io: 'executor.state-io', lockedHint: 'stop the other executor, or give this one its own stateDir' },
      onLost: (err) => onLockLost(err),
      now: () => clock().getTime(),
      onWait: () => {
        log?.warn({ stateDir: config.stateDir }, 'waiting for the state directory lock: another process holds it, or one that did not stop cleanly held it last (taken over once stale, within ~10 s)');
        o.onLockWait?.();
      },
    });
    const signer = createReceiptSigner();
    log?.info({ keyId: signer.keyId }, 'receipt key generated (in memory only)');

    let opened: Ledger | undefined;
    let notBefore: number;
    try {
      const { privateKey } = await loadOrCreateLogKey(config.stateDir);
      opened = await Ledger.open(path.join(config.stateDir, 'log'), { origin: config.log.origin, signer: { name: config.log.origin, privateKey }, lock: { waitMs: o.lockWaitMs ?? LOCK_TAKEOVER_WAIT_MS } });
      notBefore = Math.max(
        replayNotBefore({ lockTakenAt: lock.takenAt, logSizeAtOpen: opened.size, marker: await takeStopMarker(config.stateDir), maxFutureSeconds: DEFAULT_MAX_FUTURE_SECONDS }),
        await readKeptHorizon(config.stateDir),
      );
      await keepHorizon(config.stateDir, notBefore).catch((err: NodeJS.ErrnoException) => {
        throw new AttexError('executor.state-io', `cannot write ${HORIZON_FILE} in the state directory: ${err.code ?? 'error'}`);
      });
    } catch (err) {
      await opened?.close().catch(() => undefined);
      await lock.release();
      throw err;
    }
    const ledger = opened;
    if (notBefore * 1000 - lock.takenAt > 60_000) {
      log?.warn({ acceptsSignaturesFrom: new Date(notBefore * 1000).toISOString() }, `an earlier run's clock was ahead of this one: signed requests are refused until then (remove ${HORIZON_FILE} and ${STOP_MARKER_FILE} from the state directory only if that clock was wrong and nothing signed by a clock that far ahead was ever accepted)`);
    }
    const cleanup: Array<() => Promise<void> | void> = [() => lock.release(), () => ledger.close()];
    const fail = async (err: unknown): Promise<never> => {
      for (const f of cleanup.reverse()) await Promise.resolve(f()).catch(() => undefined);
      throw err;
    };
    try {
      log?.info({ origin: ledger.origin, size: ledger.size, vkey: ledger.verifierKey, acceptsSignaturesFrom: new Date(notBefore * 1000).toISOString() }, 'log opened');
      const components = await loadDeployedComponents({
        componentsDir: config.componentsDir,
        cacheDir: config.componentsCacheDir,
        ...(config.actions ? { only: config.actions } : {}),
        ...(o.onBuildProgress ? { onProgress: o.onBuildProgress } : {}),
      });
      const needed = secretsNeeded(components);
      const mapping: Record<string, string> = {};
      for (const name of needed) {
        const resource = config.broker?.secrets[name];
        if (resource === undefined) {
          throw new AttexError('config.invalid', `executor config /broker/secrets: component secret '${name}' has no broker resource${config.broker ? '' : ' (no broker is configured)'}`);
        }
        mapping[name] = resource;
      }
      // Before the pool starts its workers: threads inherit their creator's policy.
      if (config.scheduling === 'batch') {
        const scheduled = await setSchedulingPolicy('batch', process.pid, o.scheduling);
        if (scheduled.applied) log?.info({ scheduling: scheduled.policy, threads: scheduled.threads }, 'threads scheduled as batch work (config "scheduling")');
        else log?.warn({ reason: scheduled.reason, policies: scheduled.policies }, 'could not schedule every thread as batch work (config "scheduling"); "policies" counts what they run under now');
      }
      const pool = await SandboxPool.create({
        size: config.limits.poolSize,
        queueDepth: config.limits.workerQueueDepth,
        components,
        maxInputBytes: config.limits.bodyLimitBytes,
        workerResourceLimits: workerHeapLimits(config.limits.workerHeapMb),
      });
      cleanup.push(() => pool.close());
      log?.info({ actions: components.map((c) => `${c.name}@${c.digest}`) }, 'components compiled');

      const brokerCa = config.broker?.caFile === undefined ? undefined : await readFile(config.broker.caFile, 'utf8').catch((err: NodeJS.ErrnoException) => {
        throw new AttexError('config.unreadable', `cannot read the broker CA bundle ${config.broker!.caFile}: ${err.code ?? 'error'}`);
      });
      const { provider, simulatedRoots }: ProviderChoice = o.provider ? { provider: o.provider } : await providerFor(config);
      const attestation = await attestExecutor({
        provider,
        receiptKey: signer.publicKeyRaw,
        allowSimulated: config.mode === 'simulated',
        ...(simulatedRoots ? { simulatedRoots } : {}),
        ...(config.broker ? { broker: { url: config.broker.url, secrets: mapping, ...(config.broker.tokenKey ? { tokenKey: { ...config.broker.tokenKey } } : {}), ...(brokerCa === undefined ? {} : { ca: brokerCa }) } } : {}),
        ...(log ? { logger: log } : {}),
        clock,
        ...(o.signal ? { signal: o.signal } : {}),
      });
      cleanup.push(() => attestation.close());
      log?.info({ tee: attestation.tee, measurement: attestation.measurement, appraisal: attestation.appraisal?.status ?? 'none', secretNames: needed }, 'attested');

      const statement = buildAttestationRecordStatement({
        executor: { id: config.executorId, version: EXECUTOR_VERSION },
        receiptKey: signer.publicKeyRaw,
        teePublicKey: attestation.teePublicKey,
        nonce: attestation.nonce,
        evidence: attestation.evidence,
        ...(attestation.appraisal ? { appraisal: attestation.appraisal } : {}),
        ...(attestation.brokerToken ? { brokerToken: attestation.brokerToken } : {}),
        createdAt: clock(),
      });
      const envelope = signStatement(statement, signer);
      const { index } = await ledger.append(envelope, { key: `${RECORD_KEY_PREFIX}${signer.keyId}` });
      await ledger.publishCheckpoint();
      const receiptPublicKeyFile = await writeReceiptPublicKey(config.stateDir, signer.publicKeyRaw);
      log?.info({ index }, 'attestation record logged');
      const executor = new AttestedExecutor({ config, ledger, pool, signer, attestation, record: { envelope, index }, receiptPublicKeyFile, clock, logger: log, lock, replayNotBefore: notBefore });
      onLockLost = (err) => executor.#lockLost(err);
      if (lostDuringStart) executor.#lockLost(lostDuringStart);
      return executor;
    } catch (err) {
      return fail(err);
    }
  }

  readiness(): Readiness {
    const checks = {
      attested: true,
      componentsCompiled: this.pool.components.size > 0,
      secretsLoaded: this.attestation.secretsReady(),
      logOpen: !this.#closed,
      stateLocked: this.#lockHeld,
      replayWindowClosed: Math.floor(this.#clock().getTime() / 1000) >= this.replayNotBefore,
    };
    return { ready: Object.values(checks).every(Boolean), checks };
  }

  hasAction(name: string): boolean {
    return this.pool.components.has(name);
  }

  async dispatch(req: DispatchRequest): Promise<DispatchResult> {
    if (!this.#lockHeld) throw new AttexError('server.shutting-down', 'the executor lost its state directory to another process and runs no more actions');
    if (this.#closed) throw new AttexError('server.shutting-down', 'the executor is shutting down');
    const component = this.pool.components.get(req.action);
    if (!component) throw new AttexError('action.unknown', `no action named '${req.action}' is deployed`);
    if (req.idempotencyKey === undefined) return this.#run(uuidv7(this.#clock().getTime(), this.#idRandom()), component, req);

    const invocationId = idempotentInvocationId(this.config.executorId, req.caller.id, req.idempotencyKey);
    const inputDigest = toHex(sha256(req.inputBytes));
    const known = this.#idempotency.get(invocationId);
    if (known) {
      if (known.action !== req.action || known.inputDigest !== inputDigest) throw conflict();
      return { ...(await known.result), replayed: true };
    }
    const logged = this.ledger.findByKey(invocationId);
    if (logged !== undefined) return this.#replayFromLog(invocationId, logged, req.action, inputDigest);
    const result = this.#run(invocationId, component, req);
    this.#idempotency.begin(invocationId, req.action, inputDigest, result);
    return result;
  }

  #idRandom(): Uint8Array {
    if (this.#randomAt + 16 > this.#random.length) {
      randomFillSync(this.#random);
      this.#randomAt = 0;
    }
    const bytes = this.#random.slice(this.#randomAt, this.#randomAt + 16);
    this.#random.fill(0, this.#randomAt, this.#randomAt + 16); // each byte is handed out once
    this.#randomAt += 16;
    return bytes;
  }

  async #run(invocationId: string, component: LoadedComponent, req: DispatchRequest): Promise<DispatchResult> {
    this.#inflight++;
    try {
      const admit = req.admit ?? (<T>(task: () => Promise<T>) => task());
      const { run, startedAt, finishedAt } = await admit(async () => {
        const handedOver = this.#clock();
        const r = await this.pool.run(component.name, Buffer.from(req.inputBytes).toString('utf8'), { secrets: this.attestation.secrets, kv: this.#kv });
        const finishedAt = this.#clock();
        // The action may have waited in the pool for a worker; the receipt's start is when a
        // worker took it (never before it was handed to the pool).
        const startedAt = new Date(Math.max(handedOver.getTime(), finishedAt.getTime() - Math.ceil(r.durationMs)));
        return { run: r, startedAt, finishedAt };
      });
      const output = run.ok && run.output !== undefined ? new TextEncoder().encode(run.output) : new Uint8Array(0);
      if (!run.ok) this.#logger?.warn({ invocationId, action: component.name, code: run.error?.code }, 'action failed');
      const params = executionParams({
        invocationId,
        caller: req.caller,
        ...(req.signature
          ? { requestSignature: { keyId: req.signature.keyId, signatureInput: req.signature.signatureInput, signature: req.signature.signature, contentDigest: req.signature.contentDigest } }
          : {}),
        component,
        input: req.inputBytes,
        output,
        run,
        executor: { id: this.config.executorId, version: EXECUTOR_VERSION, signingKey: this.signer.publicKeyRaw },
        attestation: this.attestation,
        recordLogIndex: this.record.index,
        startedAt,
        finishedAt,
      });
      let envelope = signStatement(buildExecutionStatement(params, this.config.receipts), this.signer);
      // Inlined content can push a receipt past the log's entry limit: then digests only.
      if (envelope.length > MAX_ENVELOPE_BYTES) envelope = signStatement(buildExecutionStatement(params), this.signer);
      // One group commit makes the receipt durable and carries a checkpoint signed over it, so
      // the proof needs no further I/O (see docs/ledger.md, commit checkpoints).
      const { index } = await this.ledger.append(envelope, { key: invocationId, checkpoint: true });
      const proof = await this.ledger.tlogProof(index);
      return {
        invocationId,
        outcome: run.ok ? 'ok' : 'error',
        ...(run.ok && run.output !== undefined ? { output: JSON.parse(run.output) as unknown } : {}),
        ...(run.ok ? {} : { error: { code: run.error?.code ?? 'sandbox.trap', message: run.error?.message ?? 'the action failed' } }),
        receipt: Buffer.from(envelope.buffer, envelope.byteOffset, envelope.byteLength).toString('base64'), // = encodeBase64, natively
        logIndex: index,
        proof,
        replayed: false,
      };
    } finally {
      this.#inflight--;
    }
  }

  async #replayFromLog(invocationId: string, index: number, action: string, inputDigest: string): Promise<DispatchResult> {
    const envelope = await this.ledger.get(index);
    const p = receiptPredicate(envelope);
    if (p.component?.name !== action || p.input?.digest?.sha256 !== inputDigest) throw conflict();
    return {
      invocationId,
      outcome: p.outcome === 'ok' ? 'ok' : 'error',
      ...(p.outcome === 'ok' ? {} : { error: { code: p.errorCode ?? 'sandbox.trap', message: 'the earlier run of this request failed (output not retained across restarts)' } }),
      receipt: encodeBase64(envelope),
      logIndex: index,
      proof: await this.ledger.tlogProof(index),
      replayed: true,
    };
  }

  async receiptBundle(invocationId: string): Promise<unknown | undefined> {
    const index = this.ledger.findByKey(invocationId);
    if (index === undefined) return undefined;
    const receipt = await this.ledger.get(index);
    const recordIndex = receiptPredicate(receipt).attestation?.recordLogIndex;
    if (typeof recordIndex !== 'number') return undefined;
    const proof = await this.ledger.tlogProof(index);
    const record = await this.ledger.get(recordIndex);
    const recordProof = await this.ledger.tlogProof(recordIndex);
    return JSON.parse(encodeBundle({ receipt, proof, attestation: { record, proof: recordProof } })) as unknown;
  }

  async attestationRecord(): Promise<unknown> {
    return {
      logIndex: this.record.index,
      record: encodeBase64(this.record.envelope),
      proof: await this.ledger.tlogProof(this.record.index),
      receiptKey: encodeBase64(this.signer.publicKeyRaw),
      keyId: this.signer.keyId,
      evidenceKind: this.attestation.kind,
      tee: this.attestation.tee,
      simulated: this.attestation.simulated,
      measurement: this.attestation.measurement,
      appraisal: this.attestation.appraisal ?? null,
      logVerifierKey: this.ledger.verifierKey,
    };
  }

  logCheckpoint(): string {
    return this.ledger.checkpoint();
  }

  /** Tiles come from the ledger's verified in-memory tree and sequence file, not the directory. */
  async logTile(tilePath: string): Promise<Uint8Array | undefined> {
    return this.ledger.tile(tilePath);
  }

  poolStats(): { running: number; queued: number } {
    const { busy, queued } = this.pool.stats;
    return { running: busy, queued };
  }

  ledgerSize(): number {
    return this.ledger.size;
  }

  /** Stop accepting, let in-flight dispatches log their receipts (bounded), then close everything. */
  async close(graceMs = this.config.limits.shutdownGraceMs): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const deadline = Date.now() + graceMs;
    while (this.#inflight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    await this.pool.close();
    this.attestation.close();
    await this.ledger.close();
    // Everything this process accepted is behind it: the next start need not wait as long.
    if (this.#lockHeld) {
      await writeStopMarker(this.config.stateDir, { stoppedAt: this.#clock().getTime(), logSize: this.ledger.size }).catch((err: unknown) => {
        this.#logger?.warn({ err: (err as Error).message }, 'could not write the stop marker: the next start waits as after a crash');
      });
    }
    await this.#lock.release();
  }

  /**
   * Not refreshed in time (the process stalled for seconds) or taken over: another process may
   * now own the directory and append to the log, so this one runs no more actions; its readiness
   * fails so that it is restarted.
   */
  #lockLost(err: Error): void {
    if (!this.#lockHeld) return;
    this.#lockHeld = false;
    this.#logger?.error({ code: 'executor.state-lock-lost', err: err.message }, 'state directory lock lost: no more actions run; restart this executor');
  }
}

function conflict(): AttexError {
  return new AttexError('request.idempotency-conflict', 'this Idempotency-Key was used with a different action or request body');
}

interface LoggedPredicate {
  readonly outcome?: string;
  readonly errorCode?: string;
  readonly component?: { readonly name?: string };
  readonly input?: { readonly digest?: { readonly sha256?: string } };
  readonly attestation?: { readonly recordLogIndex?: number };
}

/** The predicate of a receipt this executor logged (its own entries: no signature check needed). */
function receiptPredicate(envelope: Uint8Array): LoggedPredicate {
  const { payload } = parseDsse(envelope);
  const statement = JSON.parse(new TextDecoder().decode(payload)) as { predicate?: LoggedPredicate };
  return statement.predicate ?? {};
}
