/**
 * Executor configuration: one JSON file, validated against a schema at load (unknown keys and
 * wrong types are refused with the JSON path of the problem). Documented in docs/executor.md.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Ajv } from 'ajv';
import { AttexError } from '../errors/index.ts';

export interface ExecutorConfig {
  readonly executorId: string;
  /** "simulated" uses the software TEE and permits bearer tokens; "production" refuses both. */
  readonly mode: 'production' | 'simulated';
  readonly listen: { readonly host: string; readonly port: number };
  readonly stateDir: string;
  /** Component sources (`<name>/attex.json` + source), built or taken from the cache at start-up. */
  readonly componentsDir: string;
  /** Build cache (content-addressed .wasm files); default `<stateDir>/cache/components`. */
  readonly componentsCacheDir: string;
  /** Deploy only these components (default: every one in componentsDir). */
  readonly actions?: readonly string[];
  readonly evidence: {
    readonly provider: 'auto' | 'configfs-tsm' | 'azure-vtpm' | 'sim';
    /** Simulated TEE state (its PKI); default `<stateDir>/sim`. Only read with provider "sim". */
    readonly simStateDir?: string;
    readonly simKind?: 'snp' | 'tdx';
    readonly tpmDevice?: string;
  };
  readonly broker?: {
    readonly url: string;
    /** Manifest secret name → broker resource path (repo/type/tag). */
    readonly secrets: Readonly<Record<string, string>>;
    /** The broker's token-signing public key (its JWKS entry): tokens must verify with it. */
    readonly tokenKey?: { readonly kty: 'EC'; readonly crv: 'P-256'; readonly x: string; readonly y: string };
    /** PEM bundle of the only CAs trusted for an https:// broker (else the system's). */
    readonly caFile?: string;
  };
  readonly log: { readonly origin: string };
  readonly callers: ReadonlyArray<{ readonly id: string; readonly keyId?: string; readonly publicKey: string; readonly actions: readonly string[] }>;
  readonly bearerTokens?: ReadonlyArray<{ readonly caller: string; readonly tokenFile: string }>;
  readonly limits: {
    readonly poolSize: number;
    /** Actions queued in each busy worker behind its run, so it need not wait for the event loop (0-3). */
    readonly workerQueueDepth: number;
    /** Actions allowed to wait beyond what the workers hold (poolSize × (1 + workerQueueDepth)). */
    readonly maxQueued: number;
    readonly bodyLimitBytes: number;
    readonly ratePerSecond: number;
    readonly burst: number;
    /** JS heap cap of each sandbox worker thread (MiB); a worker that exceeds it dies and is replaced. */
    readonly workerHeapMb: number;
    /** Time a client has to send a whole request (headers and body) before the connection is closed. */
    readonly requestTimeoutMs: number;
    /** Open connections at once; more are closed as they arrive (bounds bodies buffered before authentication). */
    readonly maxConnections: number;
    /** Open connections one client address (an IPv6 /64) may hold; more are closed as they arrive. */
    readonly maxConnectionsPerAddress: number;
    /** In-flight actions get this long to finish on shutdown before the pool is stopped. */
    readonly shutdownGraceMs: number;
  };
  readonly receipts: { readonly includeInput: boolean; readonly includeOutput: boolean };
  /**
   * "batch" (default): on Linux, the executor's threads run under SCHED_BATCH, so the threads an
   * action passes through do not preempt one another at every hand-off (util/scheduling.ts).
   * "inherit": keep the policy the process was started with.
   */
  readonly scheduling: 'batch' | 'inherit';
}

const schema = {
  type: 'object',
  additionalProperties: false,
  required: ['executorId', 'mode', 'listen', 'stateDir', 'componentsDir', 'evidence', 'log', 'callers'],
  properties: {
    $schema: { type: 'string' },
    executorId: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,64}$' },
    mode: { enum: ['production', 'simulated'] },
    listen: {
      type: 'object', additionalProperties: false, required: ['host', 'port'],
      properties: { host: { type: 'string', minLength: 1 }, port: { type: 'integer', minimum: 0, maximum: 65535 } },
    },
    stateDir: { type: 'string', minLength: 1 },
    componentsDir: { type: 'string', minLength: 1 },
    componentsCacheDir: { type: 'string', minLength: 1 },
    actions: { type: 'array', maxItems: 1000, uniqueItems: true, items: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]{0,62}$' } },
    evidence: {
      type: 'object', additionalProperties: false, required: ['provider'],
      properties: {
        provider: { enum: ['auto', 'configfs-tsm', 'azure-vtpm', 'sim'] },
        simStateDir: { type: 'string', minLength: 1 },
        simKind: { enum: ['snp', 'tdx'] },
        tpmDevice: { type: 'string', minLength: 1 },
      },
    },
    broker: {
      type: 'object', additionalProperties: false, required: ['url', 'secrets'],
      properties: {
        url: { type: 'string', pattern: '^https?://' },
        secrets: { type: 'object', additionalProperties: { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}/[A-Za-z0-9][A-Za-z0-9._-]{0,127}/[A-Za-z0-9][A-Za-z0-9._-]{0,127}$' } },
        tokenKey: {
          type: 'object', required: ['kty', 'crv', 'x', 'y'],
          properties: { kty: { const: 'EC' }, crv: { const: 'P-256' }, x: { type: 'string', pattern: '^[A-Za-z0-9_-]{43}$' }, y: { type: 'string', pattern: '^[A-Za-z0-9_-]{43}$' } },
        },
        caFile: { type: 'string', minLength: 1 },
      },
    },
    log: {
      type: 'object', additionalProperties: false, required: ['origin'],
      properties: { origin: { type: 'string', pattern: '^[^\\s+]{1,200}$' } },
    },
    callers: {
      type: 'array', maxItems: 10000,
      items: {
        type: 'object', additionalProperties: false, required: ['id', 'publicKey', 'actions'],
        properties: {
          id: { type: 'string', pattern: '^[A-Za-z0-9._@-]{1,128}$' },
          keyId: { type: 'string', pattern: '^[A-Za-z0-9._:@-]{1,128}$' },
          publicKey: { type: 'string', minLength: 32, maxLength: 512 },
          actions: { type: 'array', items: { type: 'string', pattern: '^(\\*|[a-z0-9][a-z0-9-]{0,62})$' } },
        },
      },
    },
    bearerTokens: {
      type: 'array',
      items: {
        type: 'object', additionalProperties: false, required: ['caller', 'tokenFile'],
        properties: { caller: { type: 'string' }, tokenFile: { type: 'string' } },
      },
    },
    limits: {
      type: 'object', additionalProperties: false,
      properties: {
        poolSize: { type: 'integer', minimum: 1, maximum: 256 },
        workerQueueDepth: { type: 'integer', minimum: 0, maximum: 3 },
        maxQueued: { type: 'integer', minimum: 0, maximum: 100000 },
        bodyLimitBytes: { type: 'integer', minimum: 1024, maximum: 64 * 1024 * 1024 },
        ratePerSecond: { type: 'number', exclusiveMinimum: 0 },
        burst: { type: 'integer', minimum: 1 },
        workerHeapMb: { type: 'integer', minimum: 16, maximum: 16384 },
        requestTimeoutMs: { type: 'integer', minimum: 500, maximum: 600000 },
        maxConnections: { type: 'integer', minimum: 16, maximum: 1000000 },
        maxConnectionsPerAddress: { type: 'integer', minimum: 1, maximum: 1000000 },
        shutdownGraceMs: { type: 'integer', minimum: 0, maximum: 600000 },
      },
    },
    receipts: {
      type: 'object', additionalProperties: false,
      properties: { includeInput: { type: 'boolean' }, includeOutput: { type: 'boolean' } },
    },
    scheduling: { enum: ['batch', 'inherit'] },
  },
} as const;

const validate = new Ajv({ allErrors: false, strict: true }).compile(schema);

export const DEFAULT_LIMITS: ExecutorConfig['limits'] = {
  poolSize: 2,
  workerQueueDepth: 2,
  maxQueued: 256,
  bodyLimitBytes: 1024 * 1024,
  ratePerSecond: 500,
  burst: 1000,
  workerHeapMb: 2048,
  requestTimeoutMs: 30_000,
  maxConnections: 1024,
  maxConnectionsPerAddress: 64,
  shutdownGraceMs: 30_000,
};

/** Validates a parsed config object; relative paths resolve against `baseDir`. */
export function parseExecutorConfig(value: unknown, baseDir: string): ExecutorConfig {
  if (!validate(value)) {
    const e = validate.errors?.[0];
    const where = e ? `${e.instancePath || '/'}${e.keyword === 'additionalProperties' ? `/${String((e.params as { additionalProperty?: string }).additionalProperty)}` : ''}` : '/';
    throw new AttexError('config.invalid', `executor config ${where}: ${e?.message ?? 'invalid'}`, { details: { path: where } });
  }
  const v = value as Omit<ExecutorConfig, 'limits' | 'receipts' | 'componentsCacheDir' | 'scheduling'> & {
    componentsCacheDir?: string; limits?: Partial<ExecutorConfig['limits']>; receipts?: Partial<ExecutorConfig['receipts']>; scheduling?: ExecutorConfig['scheduling'];
  };
  if (v.mode === 'production' && (v.bearerTokens?.length ?? 0) > 0) {
    throw new AttexError('config.invalid', 'executor config /bearerTokens: bearer tokens are for simulated development mode only; sign requests in production');
  }
  if (v.mode === 'production' && v.evidence.provider === 'sim') {
    throw new AttexError('config.invalid', 'executor config /evidence/provider: the simulated TEE cannot be used in production mode');
  }
  if (v.mode === 'production' && v.evidence.simStateDir !== undefined) {
    throw new AttexError('config.invalid', 'executor config /evidence/simStateDir: the simulated TEE cannot be used in production mode');
  }
  const ids = new Set<string>();
  const keyIds = new Set<string>();
  for (const [i, c] of v.callers.entries()) {
    if (ids.has(c.id)) throw new AttexError('config.invalid', `executor config /callers/${i}/id: duplicate caller id '${c.id}'`, { details: { path: `/callers/${i}/id` } });
    const keyId = c.keyId ?? c.id;
    if (keyIds.has(keyId)) throw new AttexError('config.invalid', `executor config /callers/${i}/keyId: duplicate key id '${keyId}'`, { details: { path: `/callers/${i}/keyId` } });
    ids.add(c.id);
    keyIds.add(keyId);
  }
  for (const [i, b] of (v.bearerTokens ?? []).entries()) {
    if (!ids.has(b.caller)) throw new AttexError('config.invalid', `executor config /bearerTokens/${i}/caller: no caller '${b.caller}'`, { details: { path: `/bearerTokens/${i}/caller` } });
  }
  if (v.broker?.caFile !== undefined && !v.broker.url.startsWith('https://')) {
    throw new AttexError('config.invalid', 'executor config /broker/caFile: a CA bundle needs an https:// broker url', { details: { path: '/broker/caFile' } });
  }
  const resolve = (p: string) => path.resolve(baseDir, p);
  const stateDir = resolve(v.stateDir);
  return {
    ...v,
    stateDir,
    componentsDir: resolve(v.componentsDir),
    componentsCacheDir: v.componentsCacheDir === undefined ? path.join(stateDir, 'cache', 'components') : resolve(v.componentsCacheDir),
    evidence: {
      ...v.evidence,
      ...(v.evidence.provider === 'sim' || v.evidence.simStateDir !== undefined
        ? { simStateDir: v.evidence.simStateDir === undefined ? path.join(stateDir, 'sim') : resolve(v.evidence.simStateDir) }
        : {}),
    },
    ...(v.broker ? { broker: { ...v.broker, ...(v.broker.caFile === undefined ? {} : { caFile: resolve(v.broker.caFile) }) } } : {}),
    bearerTokens: v.bearerTokens?.map((b) => ({ caller: b.caller, tokenFile: resolve(b.tokenFile) })),
    limits: { ...DEFAULT_LIMITS, ...v.limits },
    receipts: { includeInput: false, includeOutput: false, ...v.receipts },
    scheduling: v.scheduling ?? 'batch',
  };
}

export async function loadExecutorConfig(file: string): Promise<ExecutorConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new AttexError('config.unreadable', `cannot read executor config ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new AttexError('config.invalid', `executor config ${file} is not valid JSON: ${(err as Error).message}`);
  }
  return parseExecutorConfig(json, path.dirname(path.resolve(file)));
}
