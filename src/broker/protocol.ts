/**
 * The Trustee KBS "RCAR" protocol, version 0.4.0: payload types with Trustee's field names
 * (kbs-types `Request`, `Challenge`, `Attestation`, `Response`, `ErrorInformation`) and the
 * strict JSON schemas the broker enforces on them. Shapes are documented in docs/kbs-protocol.md.
 */

/** The protocol version this broker speaks; Trustee requires an exact semver match. */
export const KBS_PROTOCOL_VERSION = '0.4.0';
export const KBS_SESSION_COOKIE = 'kbs-session-id';
export const NONCE_BYTES = 32;

/** Every `Tee` name kbs-types knows (serde renames). */
export const TRUSTEE_TEES = [
  'az-snp-vtpm', 'az-tdx-vtpm', 'nvidia', 'sev', 'sgx', 'snp', 'tdx', 'cca', 'csv', 'se', 'hygondcu', 'tpm', 'sample', 'sampledevice',
] as const;
export type TrusteeTee = (typeof TRUSTEE_TEES)[number];

/** The tees this broker attests, and the evidence kinds each accepts in `tee-evidence`. */
export const SUPPORTED_TEES = {
  snp: ['snp'],
  tdx: ['tdx'],
  'az-snp-vtpm': ['azure-hcl-snp'],
} as const satisfies Partial<Record<TrusteeTee, readonly string[]>>;
export type SupportedTee = keyof typeof SUPPORTED_TEES;

export function isSupportedTee(tee: string): tee is SupportedTee {
  return Object.hasOwn(SUPPORTED_TEES, tee);
}

/** kbs-types `Request`. */
export interface KbsRequest {
  readonly version: string;
  readonly tee: TrusteeTee;
  readonly 'extra-params': unknown;
}

/** kbs-types `Challenge`. */
export interface KbsChallenge {
  readonly nonce: string;
  readonly 'extra-params': unknown;
}

/** kbs-types `TeePubKey`: RSA or EC public JWK (with `alg`). */
export type TeePubKey =
  | { readonly kty: 'EC'; readonly crv: 'P-256' | 'P-384' | 'P-521'; readonly alg: 'ECDH-ES+A256KW'; readonly x: string; readonly y: string }
  | { readonly kty: 'RSA'; readonly alg: 'RSA-OAEP-256'; readonly n: string; readonly e: string };

/** kbs-types `RuntimeData` plus attex's extra members (e.g. `attex-receipt-key`). */
export interface RuntimeData {
  readonly nonce: string;
  readonly 'tee-pubkey': TeePubKey;
  readonly [extra: string]: unknown;
}

/** kbs-types `Attestation`. */
export interface KbsAttestation {
  readonly 'init-data'?: unknown;
  readonly 'runtime-data': RuntimeData;
  readonly 'tee-evidence': unknown;
}

/** kbs-types `Response`: a flattened JWE. */
export interface KbsResponse {
  readonly protected: string;
  readonly encrypted_key: string;
  readonly aad?: string;
  readonly iv: string;
  readonly ciphertext: string;
  readonly tag: string;
}

/** The `/attest` response body. */
export interface KbsTokenResponse {
  readonly token: string;
}

const b64url = '^[A-Za-z0-9_-]+$';

/** Limits on what a client may send; everything past them is refused before any parsing work. */
export const LIMITS = {
  authBodyBytes: 4 * 1024,
  attestBodyBytes: 1024 * 1024,
  runtimeDataMembers: 8,
} as const;

const extraParamsSchema = {
  anyOf: [
    { type: 'string', maxLength: 1024 },
    { type: 'object', maxProperties: 16 },
    { type: 'null' },
  ],
} as const;

export const requestSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['version', 'tee', 'extra-params'],
  properties: {
    version: { type: 'string', minLength: 1, maxLength: 32 },
    tee: { type: 'string', enum: [...TRUSTEE_TEES] },
    'extra-params': extraParamsSchema,
  },
} as const;

export const teePubKeySchema = {
  oneOf: [
    {
      type: 'object',
      additionalProperties: false,
      required: ['kty', 'crv', 'alg', 'x', 'y'],
      properties: {
        kty: { const: 'EC' },
        crv: { enum: ['P-256', 'P-384', 'P-521'] },
        alg: { const: 'ECDH-ES+A256KW' },
        x: { type: 'string', pattern: b64url, maxLength: 128 },
        y: { type: 'string', pattern: b64url, maxLength: 128 },
      },
    },
    {
      type: 'object',
      additionalProperties: false,
      required: ['kty', 'alg', 'n', 'e'],
      properties: {
        kty: { const: 'RSA' },
        alg: { const: 'RSA-OAEP-256' },
        n: { type: 'string', pattern: b64url, minLength: 342, maxLength: 1366 },
        e: { type: 'string', pattern: b64url, maxLength: 16 },
      },
    },
  ],
} as const;

export const attestationSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['runtime-data', 'tee-evidence'],
  properties: {
    'init-data': { type: 'null' },
    'runtime-data': {
      type: 'object',
      required: ['nonce', 'tee-pubkey'],
      maxProperties: LIMITS.runtimeDataMembers,
      properties: {
        nonce: { type: 'string', minLength: 1, maxLength: 128 },
        'tee-pubkey': teePubKeySchema,
      },
      // Extra members (attex binds its receipt key here) are short strings: they are echoed
      // into the token, so their size is bounded.
      additionalProperties: { type: 'string', maxLength: 4096 },
      propertyNames: { type: 'string', pattern: '^[a-z][a-z0-9-]{0,63}$' },
    },
    'tee-evidence': { type: 'object', maxProperties: 16 },
  },
} as const;

export const resourceParamsSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['repository', 'type', 'tag'],
  properties: {
    repository: { type: 'string' },
    type: { type: 'string' },
    tag: { type: 'string' },
  },
} as const;

/**
 * Unwraps `tee-evidence`: attex's EvidencePackage JSON directly, or Trustee's CompositeEvidence
 * `{primary_evidence, additional_evidence}` whose primary is an EvidencePackage and which carries
 * no additional evidence (multi-device evidence is not supported).
 */
export function primaryEvidence(teeEvidence: unknown): { ok: true; value: unknown } | { ok: false; message: string } {
  if (typeof teeEvidence !== 'object' || teeEvidence === null || Array.isArray(teeEvidence)) {
    return { ok: false, message: 'tee-evidence must be a JSON object' };
  }
  const obj = teeEvidence as Record<string, unknown>;
  if (!Object.hasOwn(obj, 'primary_evidence')) return { ok: true, value: obj };
  const keys = Object.keys(obj);
  if (keys.some((k) => k !== 'primary_evidence' && k !== 'additional_evidence')) {
    return { ok: false, message: 'composite tee-evidence has unknown members' };
  }
  const additional = obj['additional_evidence'];
  if (additional !== undefined && additional !== '' && additional !== '{}') {
    return { ok: false, message: 'additional_evidence is not supported' };
  }
  return { ok: true, value: obj['primary_evidence'] };
}
