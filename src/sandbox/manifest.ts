/**
 * Component manifests (`components/<name>/attex.json`): the capability grant and limits of one
 * action. Deny by default: an absent or empty grant list grants nothing. Unknown keys are refused
 * so a typo never silently widens or narrows a grant. Format: docs/manifest.md.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Ajv } from 'ajv';
import { AttexError } from '../errors/index.ts';
import { SandboxCodes } from './errors.ts';
import { isGuestHeaderName } from './net-policy.ts';

export const WORLDS = ['pure-action', 'basic-action', 'http-action', 'secrets-action', 'kv-action', 'http-secrets-action', 'full-action'] as const;
export type WorldName = (typeof WORLDS)[number];

/** One secret the host may place into one request header, for requests to these origins only. */
export interface SecretHeaderGrant {
  readonly secret: string;
  /** Lower case. */
  readonly header: string;
  /** Origins, each also in `grants.http` (lower case). */
  readonly origins: readonly string[];
}

export interface Grants {
  /** Allowed origins, `scheme://host[:port]`; a host may start with `*.` to match subdomains. */
  readonly http: readonly string[];
  readonly secrets: readonly string[];
  /** Deny by default: a secret goes into a request header only where one of these allows it. */
  readonly secretHeaders: readonly SecretHeaderGrant[];
  readonly kv: readonly string[];
  readonly config: readonly string[];
}

export interface Limits {
  readonly timeout_ms: number;
  readonly memory_mb: number;
  readonly cpu_ms: number;
  readonly max_output_bytes: number;
  readonly max_host_calls: number;
  readonly max_http_response_bytes: number;
}

export interface Manifest {
  readonly name: string;
  readonly entry: string;
  readonly world: WorldName;
  readonly backend: 'quickjs' | 'starlingmonkey' | 'wat';
  readonly grants: Grants;
  readonly limits: Limits;
}

export const DEFAULT_LIMITS: Limits = {
  timeout_ms: 2000,
  memory_mb: 64,
  cpu_ms: 2000,
  max_output_bytes: 1 << 20,
  max_host_calls: 64,
  max_http_response_bytes: 1 << 20,
};

const ORIGIN_PATTERN = '^(https?)://(\\*\\.)?[A-Za-z0-9.-]+(:[0-9]{1,5})?$|^(https?)://\\[[0-9A-Fa-f:.]+\\](:[0-9]{1,5})?$';
const NAME_PATTERN = '^[a-z0-9][a-z0-9._-]{0,63}$';

const limitSchema = (min: number, max: number) => ({ type: 'integer', minimum: min, maximum: max });

export const manifestSchema = {
  $id: 'https://attex.dev/schemas/component-manifest.json',
  type: 'object',
  additionalProperties: false,
  required: ['name', 'world'],
  properties: {
    $schema: { type: 'string' },
    name: { type: 'string', pattern: NAME_PATTERN },
    entry: { type: 'string', pattern: '^[A-Za-z0-9._-]+\\.(js|mjs|wat)$' },
    world: { enum: [...WORLDS] },
    backend: { enum: ['quickjs', 'starlingmonkey', 'wat'] },
    grants: {
      type: 'object',
      additionalProperties: false,
      properties: {
        http: { type: 'array', maxItems: 64, uniqueItems: true, items: { type: 'string', maxLength: 300, pattern: ORIGIN_PATTERN } },
        secrets: { type: 'array', maxItems: 64, uniqueItems: true, items: { type: 'string', pattern: NAME_PATTERN } },
        secret_headers: {
          type: 'array', maxItems: 64,
          items: {
            type: 'object', additionalProperties: false, required: ['secret', 'header', 'origins'],
            properties: {
              secret: { type: 'string', pattern: NAME_PATTERN },
              header: { type: 'string', pattern: '^[!#$%&\'*+.^_`|~0-9A-Za-z-]{1,128}$' },
              origins: { type: 'array', minItems: 1, maxItems: 64, uniqueItems: true, items: { type: 'string', maxLength: 300, pattern: ORIGIN_PATTERN } },
            },
          },
        },
        kv: { type: 'array', maxItems: 64, uniqueItems: true, items: { type: 'string', pattern: NAME_PATTERN } },
        config: { type: 'array', maxItems: 256, uniqueItems: true, items: { type: 'string', pattern: NAME_PATTERN } },
      },
    },
    limits: {
      type: 'object',
      additionalProperties: false,
      properties: {
        timeout_ms: limitSchema(10, 120_000),
        // Kept well below the worker heap cap (1 GiB): guest output is decoded into that heap.
        memory_mb: limitSchema(4, 512),
        cpu_ms: limitSchema(1, 120_000),
        max_output_bytes: limitSchema(2, 64 << 20),
        max_host_calls: limitSchema(0, 100_000),
        max_http_response_bytes: limitSchema(0, 256 << 20),
      },
    },
  },
} as const;

const ajv = new Ajv({ allErrors: true, strict: true });
const validateManifest = ajv.compile(manifestSchema);

/** Validate untrusted JSON into a Manifest with every default filled in. */
export function parseManifest(value: unknown, source = 'manifest'): Manifest {
  if (!validateManifest(value)) {
    const detail = (validateManifest.errors ?? [])
      .map((e) => `${e.instancePath || '/'} ${e.message ?? 'is invalid'}${e.params && 'additionalProperty' in e.params ? ` (${String(e.params.additionalProperty)})` : ''}`)
      .join('; ');
    throw new AttexError(SandboxCodes.manifestInvalid, `${source}: ${detail}`);
  }
  const v = value as {
    name: string; entry?: string; world: WorldName; backend?: Manifest['backend'];
    grants?: Partial<Omit<Grants, 'secretHeaders'>> & { secret_headers?: SecretHeaderGrant[] }; limits?: Partial<Limits>;
  };
  const entry = v.entry ?? (v.backend === 'wat' ? 'component.wat' : 'index.js');
  const backend = v.backend ?? (entry.endsWith('.wat') ? 'wat' : 'quickjs');
  if ((backend === 'wat') !== entry.endsWith('.wat')) {
    throw new AttexError(SandboxCodes.manifestInvalid, `${source}: backend '${backend}' does not match entry '${entry}'`);
  }
  const limits = { ...DEFAULT_LIMITS, ...v.limits };
  if (v.limits?.cpu_ms === undefined) limits.cpu_ms = limits.timeout_ms;
  const http = [...(v.grants?.http ?? [])].map((o) => o.toLowerCase());
  const secrets = [...(v.grants?.secrets ?? [])];
  return {
    name: v.name,
    entry,
    world: v.world,
    backend,
    grants: {
      http,
      secrets,
      secretHeaders: (v.grants?.secret_headers ?? []).map((g, i) => secretHeaderGrant(g, http, secrets, `${source}: /grants/secret_headers/${i}`)),
      kv: [...(v.grants?.kv ?? [])],
      config: [...(v.grants?.config ?? [])],
    },
    limits,
  };
}

/** A binding must name a granted secret, a header a guest may set and only granted origins. */
function secretHeaderGrant(g: SecretHeaderGrant, http: readonly string[], secrets: readonly string[], where: string): SecretHeaderGrant {
  const invalid = (detail: string) => new AttexError(SandboxCodes.manifestInvalid, `${where} ${detail}`);
  if (!secrets.includes(g.secret)) throw invalid(`names secret '${g.secret}', which grants.secrets does not grant`);
  const header = g.header.toLowerCase();
  if (!isGuestHeaderName(header)) throw invalid(`header '${header}' is set by the host and cannot carry a secret`);
  const origins = g.origins.map((o) => o.toLowerCase());
  for (const origin of origins) {
    if (!http.includes(origin)) throw invalid(`origin '${origin}' is not in grants.http`);
  }
  return { secret: g.secret, header, origins };
}

/** Read `<dir>/attex.json` (or the given .json file). */
export async function loadManifest(dirOrFile: string): Promise<Manifest> {
  const file = dirOrFile.endsWith('.json') ? dirOrFile : path.join(dirOrFile, 'attex.json');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new AttexError(SandboxCodes.manifestInvalid, `cannot read manifest ${path.basename(file)}: ${(err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new AttexError(SandboxCodes.manifestInvalid, `${path.basename(file)} is not JSON: ${(err as Error).message}`);
  }
  return parseManifest(json, path.basename(path.dirname(file)) + '/attex.json');
}

/** Apply a grant/limit override (e.g. from the CLI) and re-validate the result. */
export function overrideManifest(base: Manifest, override: unknown): Manifest {
  if (override === null || typeof override !== 'object' || Array.isArray(override)) {
    throw new AttexError(SandboxCodes.manifestInvalid, 'grant override must be a JSON object');
  }
  const o = override as { grants?: object; limits?: { timeout_ms?: unknown; cpu_ms?: unknown } };
  // An override changes what an action may do and use, never which action it is.
  const other = Object.keys(o).filter((k) => k !== 'grants' && k !== 'limits');
  if (other.length > 0) throw new AttexError(SandboxCodes.manifestInvalid, `grant override may change only grants and limits, not ${other.join(', ')}`);
  const { secretHeaders, ...grants } = base.grants;
  const limits: Record<string, unknown> = { ...base.limits, ...(o.limits ?? {}) };
  // cpu_ms that only followed timeout_ms follows the new one (the documented default).
  if (o.limits?.timeout_ms !== undefined && o.limits.cpu_ms === undefined && base.limits.cpu_ms === base.limits.timeout_ms) delete limits['cpu_ms'];
  const merged = {
    name: base.name, entry: base.entry, world: base.world, backend: base.backend,
    grants: { ...grants, secret_headers: secretHeaders, ...(o.grants ?? {}) },
    limits,
  };
  return parseManifest(merged, 'grant override');
}
