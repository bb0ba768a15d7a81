/**
 * `attex broker`: run the key broker, manage its encrypted secrets, read its audit log.
 * Secret values come from stdin or --from-file, never from argv (argv is visible to every user
 * of the machine and lands in shell history).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { type Command, type CommandIO, EXIT_OK, EXIT_USAGE, UsageError, parseCommandArgs, writeJson, writeLine } from '../command.ts';
import { MAX_SECRET_BYTES, loadOperatorKey, openSecretStore } from '../../broker/store/index.ts';
import { parseResourcePath } from '../../broker/paths.ts';
import { loadResourcePolicy } from '../../broker/policy/index.ts';
import { brokerPaths, lockStateDir, openAuditLedger, openBroker } from '../../broker/open.ts';
import { loadBrokerVerifier } from '../../broker/wiring.ts';
import { verifyDsse } from '../../receipts/index.ts';
import { loadOrCreateAuditSigner } from '../../broker/audit.ts';
import { createBrokerLogger } from '../../broker/server.ts';

const DEFAULT_STATE = '.attex/broker';
const DEFAULT_SIM_STATE = '.attex/sim';

const HELP = `usage: attex broker <serve|secret|audit> [options]

Key broker speaking the Trustee KBS protocol (RCAR 0.4.0): releases secrets, encrypted to the
TEE's key, only to executors whose hardware evidence verifies and satisfies policy.

  attex broker serve --policy FILE --resource-policy FILE [--port N] [--host ADDR]
                     [--state DIR] [--key-file FILE] [--allow-simulated] [--sim-state DIR]
                     [--roots DIR] [--tls-cert FILE --tls-key FILE] [--json]
      --policy           appraisal policy (JSON) evidence must satisfy to get a token
      --resource-policy  which attested TEEs may receive which resources (JSON; deny by default;
                         schema: attestation/policies/resources.schema.json)
      --port             TCP port (default 8080; 0 picks a free one); --host default 127.0.0.1
      --state            state directory: keys, encrypted secrets, audit log (default ${DEFAULT_STATE})
      --key-file         operator key file (32 bytes raw, hex or base64); else ATTEX_BROKER_KEY
      --allow-simulated  trust the simulated TEE's roots (from --sim-state, default ${DEFAULT_SIM_STATE})
      --roots            vendor roots directory (default: the repository's attestation/roots)
      --tls-cert         serve HTTPS with this certificate chain (PEM, leaf first) ...
      --tls-key          ... and its unencrypted private key (PEM); both or neither. Without
                         them the broker speaks plain HTTP: keep it on loopback or behind TLS

  attex broker secret put <repo/type/tag> [--from-file FILE] [--state DIR] [--key-file FILE]
      the value is read from stdin (or FILE), never from the command line
  attex broker secret rm <repo/type/tag> [--state DIR] [--key-file FILE]
  attex broker secret list [--state DIR] [--key-file FILE] [--json]

  attex broker audit [--state DIR] [--json]
      print the audit log: every token issued, release and denial, signature-checked
      (the broker must be stopped: one process owns the log at a time)

Exit codes: 0 ok, 1 negative result (e.g. removing a secret that does not exist), 2 usage or I/O error.`;

const common = {
  state: { type: 'string' },
  'key-file': { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

async function readStdin(stream: NodeJS.ReadableStream): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    size += b.length;
    if (size > MAX_SECRET_BYTES) throw new UsageError(`secret value larger than ${MAX_SECRET_BYTES} bytes`);
    chunks.push(b);
  }
  return new Uint8Array(Buffer.concat(chunks));
}

function stateDir(io: CommandIO, value: string | undefined): string {
  return path.resolve(io.cwd, value ?? DEFAULT_STATE);
}

async function secret(argv: string[], io: CommandIO): Promise<number> {
  const [action, ...rest] = argv;
  const { values, positionals } = parseCommandArgs(rest, { ...common, 'from-file': { type: 'string' } });
  const dir = stateDir(io, values.state);
  const keyFile = values['key-file'] === undefined ? undefined : path.resolve(io.cwd, values['key-file']);
  if (action === 'list') {
    if (positionals.length > 0) throw new UsageError('secret list takes no arguments');
    const store = await openSecretStore(brokerPaths(dir).secrets, await loadOperatorKey({ keyFile, env: io.env }));
    const paths = await store.list();
    if (values.json) writeJson(io.stdout, { resources: paths });
    else for (const p of paths) writeLine(io.stdout, p);
    return EXIT_OK;
  }
  if (action !== 'put' && action !== 'rm') throw new UsageError('secret needs put, rm or list');
  if (positionals.length !== 1) {
    throw new UsageError(`secret ${action} takes exactly one resource path${action === 'put' ? '; the value comes from stdin or --from-file' : ''}`);
  }
  const resource = positionals[0]!;
  try {
    parseResourcePath(resource);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const store = await openSecretStore(brokerPaths(dir).secrets, await loadOperatorKey({ keyFile, env: io.env }));
  if (action === 'rm') {
    if (values['from-file'] !== undefined) throw new UsageError('--from-file is for put');
    const removed = await store.remove(resource);
    if (values.json) writeJson(io.stdout, { resource, removed });
    else writeLine(io.stderr, removed ? `removed ${resource}` : `no secret ${resource}`);
    return removed ? EXIT_OK : 1;
  }
  const value = values['from-file'] !== undefined ? new Uint8Array(await readFile(path.resolve(io.cwd, values['from-file']))) : await readStdin(io.stdin);
  if (value.length > MAX_SECRET_BYTES) throw new UsageError(`secret value larger than ${MAX_SECRET_BYTES} bytes`);
  if (value.length === 0) throw new UsageError('refusing to store an empty secret (nothing on stdin?)');
  await store.put(resource, value);
  value.fill(0);
  if (values.json) writeJson(io.stdout, { resource, stored: true });
  else writeLine(io.stderr, `stored ${resource}`);
  return EXIT_OK;
}

async function audit(argv: string[], io: CommandIO): Promise<number> {
  const { values, positionals } = parseCommandArgs(argv, common);
  if (positionals.length > 0) throw new UsageError('audit takes no arguments');
  const dir = stateDir(io, values.state);
  const unlock = await lockStateDir(dir, undefined, 0); // a running broker owns it: say so at once
  const signer = await loadOrCreateAuditSigner(dir).catch(async (err: unknown) => {
    await unlock();
    throw err;
  });
  const ledger = await openAuditLedger(dir, { checkpointInterval: 0, lockWaitMs: 0 }).catch(async (err: unknown) => {
    await unlock();
    throw err;
  });
  try {
    const entries: unknown[] = [];
    for (let i = 0; i < ledger.size; i++) {
      const { payload } = verifyDsse(await ledger.get(i), signer.publicKeyRaw);
      entries.push({ index: i, ...(JSON.parse(new TextDecoder().decode(payload)) as object) });
    }
    if (values.json) {
      writeJson(io.stdout, { logVerifierKey: ledger.verifierKey, auditKeyId: signer.keyId, auditPublicKey: Buffer.from(signer.publicKeyRaw).toString('base64'), entries });
    } else {
      for (const e of entries as Record<string, unknown>[]) {
        writeLine(io.stdout, [e['index'], e['time'], e['event'], e['decision'], e['reason'], e['resource'] ?? '-'].join('\t'));
      }
    }
  } finally {
    await ledger.close();
    await unlock();
  }
  return EXIT_OK;
}

async function serve(argv: string[], io: CommandIO): Promise<number> {
  const { values, positionals } = parseCommandArgs(argv, {
    ...common,
    port: { type: 'string' },
    host: { type: 'string' },
    policy: { type: 'string' },
    'resource-policy': { type: 'string' },
    'allow-simulated': { type: 'boolean' },
    'sim-state': { type: 'string' },
    roots: { type: 'string' },
    'tls-cert': { type: 'string' },
    'tls-key': { type: 'string' },
  });
  if (positionals.length > 0) throw new UsageError('serve takes no positional arguments');
  if ((values['tls-cert'] === undefined) !== (values['tls-key'] === undefined)) throw new UsageError('--tls-cert and --tls-key go together');
  if (values.policy === undefined) throw new UsageError('--policy FILE (appraisal policy) is required');
  if (values['resource-policy'] === undefined) throw new UsageError('--resource-policy FILE is required');
  const port = values.port === undefined ? 8080 : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError('--port must be 0..65535');
  const dir = stateDir(io, values.state);
  const resourcePolicy = loadResourcePolicy(await readFile(path.resolve(io.cwd, values['resource-policy']), 'utf8'));
  const allowSimulated = values['allow-simulated'] === true;
  let extra = {};
  if (allowSimulated) {
    const { loadSimulatedRoots } = await import('../../attestation/sim/index.ts');
    const sim = await loadSimulatedRoots(path.resolve(io.cwd, values['sim-state'] ?? DEFAULT_SIM_STATE));
    extra = { extraAmd: sim.amd, extraIntel: sim.intel };
  }
  const { verifier } = await loadBrokerVerifier({
    policyFile: path.resolve(io.cwd, values.policy),
    allowSimulated,
    ...(values.roots === undefined ? {} : { rootsDir: path.resolve(io.cwd, values.roots) }),
    ...extra,
  });
  const keyFile = values['key-file'] === undefined ? undefined : path.resolve(io.cwd, values['key-file']);
  const readTlsFile = (flag: '--tls-cert' | '--tls-key', file: string) =>
    readFile(path.resolve(io.cwd, file), 'utf8').catch((err: NodeJS.ErrnoException) => {
      throw new UsageError(`${flag} ${file}: cannot read it (${err.code ?? 'error'})`);
    });
  const tls = values['tls-cert'] === undefined ? undefined : { cert: await readTlsFile('--tls-cert', values['tls-cert']), key: await readTlsFile('--tls-key', values['tls-key']!) };
  const broker = await openBroker({
    ...(tls ? { tls } : {}),
    stateDir: dir,
    operatorKey: await loadOperatorKey({ keyFile, env: io.env }),
    verifier,
    resourcePolicy,
    logger: createBrokerLogger(),
  });
  const url = await broker.listen({ port, host: values.host ?? '127.0.0.1' });
  if (values.json) writeJson(io.stdout, { url, state: dir, auditKeyId: broker.auditSigner.keyId, logVerifierKey: broker.ledger.verifierKey });
  else writeLine(io.stderr, `attex broker listening on ${url} (state ${dir}${allowSimulated ? ', simulated TEEs trusted' : ''})`);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await broker.close();
  return EXIT_OK;
}

export const command: Command = {
  name: 'broker',
  summary: 'run the key broker, or manage its secrets',
  help: HELP,
  async run(argv, io) {
    const [sub, ...rest] = argv;
    switch (sub) {
      case 'serve':
        return serve(rest, io);
      case 'secret':
        return secret(rest, io);
      case 'audit':
        return audit(rest, io);
      case undefined:
        writeLine(io.stderr, HELP);
        return EXIT_USAGE;
      default:
        throw new UsageError(`unknown sub-command '${sub}'`);
    }
  },
};
