/**
 * The local development environment behind `attex dev` (= `npm start`): a key broker and an
 * executor in simulated mode, in this process, with everything generated on first run under one
 * state directory:
 *
 *   caller-key.pem         the dev caller's Ed25519 key (0600) for `attex dispatch`
 *   broker-operator.key    the broker's operator key (0600), encrypting its secret store
 *   broker/                broker state (keys, encrypted secrets incl. the example signing key)
 *   sim/                   the simulated TEE's PKI (shared by broker and executor)
 *   executor/              executor state (log key, log, kv)
 *   executor.json          the generated executor config (rewritten on every start)
 *   resource-policy.json   broker release policy for this executor's measurement (rewritten)
 *   trust.json             trust file for `attex verify`
 *
 * The simulated measurement hashes the source tree, so the resource policy is regenerated on
 * every start: an edited executor gets a new measurement, exactly as a rebuilt image would.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pino, { type Logger } from 'pino';
import { openSimulatedTee } from '../attestation/sim/index.ts';
import { openBroker, type OpenedBroker } from '../broker/open.ts';
import { loadResourcePolicy } from '../broker/policy/index.ts';
import { LOG_REDACT_PATHS as BROKER_REDACT } from '../broker/server.ts';
import { openSecretStore, parseOperatorKey } from '../broker/store/index.ts';
import { brokerPaths } from '../broker/open.ts';
import { loadBrokerVerifier } from '../broker/wiring.ts';
import type { BuildEvent } from '../sandbox/build.ts';
import { toHex } from '../util/index.ts';
import { parseExecutorConfig } from './config.ts';
import { writeNewFile } from './keys.ts';
import { createExecutorLogger } from './logger.ts';
import { runExecutor, type RunningExecutor } from './run.ts';

export const REPO_ROOT = path.resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
export const DEV_CALLER_ID = 'dev';
export const DEV_LOG_ORIGIN = 'dev.attex.local/executor-log';
const SIGNING_KEY_RESOURCE = 'default/key/signing-key';

export interface DevOptions {
  readonly stateDir: string;
  readonly port: number;
  readonly brokerPort: number;
  readonly host?: string;
  readonly logLevel?: string;
  readonly logDestination?: NodeJS.WritableStream;
  readonly onStep?: (message: string) => void;
  readonly onBuildProgress?: (event: BuildEvent) => void;
}

export interface DevEnvironment {
  readonly executorUrl: string;
  readonly brokerUrl: string;
  readonly stateDir: string;
  readonly trustFile: string;
  readonly callerKeyFile: string;
  readonly configFile: string;
  readonly executor: RunningExecutor;
  readonly broker: OpenedBroker;
  readonly firstRun: boolean;
  close(): Promise<void>;
}

async function readOrCreate(file: string, create: () => string): Promise<{ text: string; created: boolean }> {
  try {
    return { text: await readFile(file, 'utf8'), created: false };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const text = create();
  await writeNewFile(file, text, 0o600);
  return { text, created: true };
}

export async function startDevEnvironment(o: DevOptions): Promise<DevEnvironment> {
  const step = o.onStep ?? (() => undefined);
  const state = path.resolve(o.stateDir);
  const host = o.host ?? '127.0.0.1';
  await mkdir(state, { recursive: true, mode: 0o700 });

  const callerKeyFile = path.join(state, 'caller-key.pem');
  const caller = await readOrCreate(callerKeyFile, () => generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }) as string);
  const { createPrivateKey, createPublicKey } = await import('node:crypto');
  const callerPublic = Buffer.from(createPublicKey(createPrivateKey(caller.text)).export({ format: 'jwk' }).x!, 'base64url').toString('base64');
  const operator = await readOrCreate(path.join(state, 'broker-operator.key'), () => `${randomBytes(32).toString('hex')}\n`);
  const operatorKey = parseOperatorKey(operator.text);
  if (caller.created) step('generated the dev caller key and the broker operator key');

  step('opening the simulated TEE (first run generates its PKI)');
  const simDir = path.join(state, 'sim');
  const tee = await openSimulatedTee(simDir);
  const measurement = toHex(tee.measurement);

  const brokerState = path.join(state, 'broker');
  const store = await openSecretStore(brokerPaths(brokerState).secrets, operatorKey);
  if (!(await store.has(SIGNING_KEY_RESOURCE))) {
    const value = randomBytes(32);
    await store.put(SIGNING_KEY_RESOURCE, value);
    value.fill(0);
    step(`stored an example secret in the broker: ${SIGNING_KEY_RESOURCE} (used by sign-payload)`);
  }

  const resourcePolicy = {
    version: 1,
    id: 'attex-dev',
    description: 'attex dev: release the example keys to this checkout\'s simulated executor only. Regenerated on every start.',
    rules: [{ description: 'the dev executor', resources: ['default/key/*'], tees: ['sim-snp', 'sim-tdx'], measurements: [measurement], minStatus: 'warning', allowSimulated: true }],
  };
  await writeFile(path.join(state, 'resource-policy.json'), `${JSON.stringify(resourcePolicy, null, 2)}\n`);

  const logger: Logger = createExecutorLogger({ level: o.logLevel ?? 'warn', ...(o.logDestination ? { destination: o.logDestination } : {}) });
  const brokerLogger = pino({ name: 'attex-broker', level: o.logLevel ?? 'warn', redact: { paths: [...BROKER_REDACT], censor: '[redacted]' } }, (o.logDestination ?? process.stderr) as pino.DestinationStream);
  const { verifier } = await loadBrokerVerifier({
    policy: undefined,
    policyFile: path.join(REPO_ROOT, 'attestation/policies/dev-simulated.json'),
    allowSimulated: true,
    extraAmd: tee.amdRoots,
    extraIntel: tee.intelRoots,
  });
  const lockWait = (what: string) => () => o.onStep?.(`waiting up to 12 s for the ${what}'s state directory: the last run did not stop cleanly`);
  const broker = await openBroker({ stateDir: brokerState, operatorKey, verifier, resourcePolicy: loadResourcePolicy(resourcePolicy), logger: brokerLogger, onLockWait: lockWait('broker') });
  let brokerUrl: string;
  try {
    brokerUrl = await broker.listen({ port: o.brokerPort, host });
  } catch (err) {
    await broker.close();
    throw err;
  }
  step(`broker listening on ${brokerUrl}`);

  const configFile = path.join(state, 'executor.json');
  const configJson = {
    $comment: 'Generated by attex dev on every start; edit the command, not this file.',
    executorId: 'attex-dev',
    mode: 'simulated',
    listen: { host, port: o.port },
    stateDir: 'executor',
    componentsDir: path.join(REPO_ROOT, 'components'),
    componentsCacheDir: path.join(REPO_ROOT, '.attex/cache/components'),
    evidence: { provider: 'sim', simStateDir: 'sim' },
    broker: {
      url: brokerUrl,
      secrets: { 'signing-key': SIGNING_KEY_RESOURCE },
      tokenKey: { kty: 'EC', crv: 'P-256', x: broker.tokenKey.publicJwk.x, y: broker.tokenKey.publicJwk.y },
    },
    log: { origin: DEV_LOG_ORIGIN },
    callers: [{ id: DEV_CALLER_ID, keyId: DEV_CALLER_ID, publicKey: callerPublic, actions: ['*'] }],
    limits: { poolSize: 2, maxQueued: 256, bodyLimitBytes: 1048576, ratePerSecond: 1000, burst: 2000 },
  };
  const { $comment: _comment, ...configValue } = configJson;
  await writeFile(configFile, `${JSON.stringify(configJson, null, 2)}\n`);
  const config = parseExecutorConfig(configValue, state);

  step('building components and attesting the executor');
  let executor: RunningExecutor;
  try {
    executor = await runExecutor({ config, logger, onLockWait: lockWait('executor'), ...(o.onBuildProgress ? { onBuildProgress: o.onBuildProgress } : {}) });
  } catch (err) {
    await broker.close();
    throw err;
  }
  const trustFile = path.join(state, 'trust.json');
  const trust = {
    $comment: 'Trust file for `attex verify` of receipts from `attex dev`. It trusts the SIMULATED TEE: development only.',
    logVerifierKey: executor.executor.ledger.verifierKey,
    simulatedStateDir: 'sim',
    allowSimulated: true,
  };
  await writeFile(trustFile, `${JSON.stringify(trust, null, 2)}\n`);

  let closing: Promise<void> | undefined;
  return {
    executorUrl: executor.url,
    brokerUrl,
    stateDir: state,
    trustFile,
    callerKeyFile,
    configFile,
    executor,
    broker,
    firstRun: caller.created,
    close() {
      closing ??= (async () => {
        await executor.close();
        await broker.close();
      })();
      return closing;
    },
  };
}
