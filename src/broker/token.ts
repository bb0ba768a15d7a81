/**
 * Attestation results as EAR (Entity Attestation Result, Veraison profile) JWTs signed by the
 * broker's ES256 key. The key lives in the broker's state directory (private JWK, mode 0600)
 * and its public half is served as a JWKS. The token also binds the KBS session (a hash of the
 * session id) and carries the TEE public key, so the broker can release resources on a bearer
 * token alone, always encrypted to the key that was attested.
 */
import { randomUUID } from 'node:crypto';
import { readFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, jwtVerify, type CryptoKey, type JWK } from 'jose';
import { AttexError } from '../errors/index.ts';
import type { EvidenceKind, TeeName } from '../attestation/types.ts';
import type { EarStatus } from './policy/index.ts';
import type { TeePubKey } from './protocol.ts';
import { writeFileAtomic } from './store/index.ts';

export const EAR_PROFILE = 'tag:github.com,2023:veraison/ear';
export const TOKEN_ALG = 'ES256';
export const TOKEN_KEY_FILE = 'token-signing-key.jwk.json';
export const JWKS_PATH = '/.well-known/attex-broker-jwks.json';

export interface TokenKey {
  readonly privateKey: CryptoKey;
  readonly publicKey: CryptoKey;
  readonly publicJwk: JWK;
  readonly kid: string;
}

export async function loadOrCreateTokenKey(stateDir: string): Promise<TokenKey> {
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const file = path.join(stateDir, TOKEN_KEY_FILE);
  let jwk: JWK;
  try {
    jwk = JSON.parse(await readFile(file, 'utf8')) as JWK;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new AttexError('broker.token-key', 'the token signing key file is unreadable or not JSON');
    const pair = await generateKeyPair(TOKEN_ALG, { extractable: true });
    jwk = await exportJWK(pair.privateKey);
    await writeFileAtomic(stateDir, file, `${JSON.stringify(jwk)}\n`);
  }
  if (jwk.kty !== 'EC' || jwk.crv !== 'P-256' || typeof jwk.d !== 'string') throw new AttexError('broker.token-key', 'the token signing key must be a private P-256 JWK');
  const { d: _d, ...pub } = jwk;
  const privateKey = (await importJWK(jwk, TOKEN_ALG)) as CryptoKey;
  const publicKey = (await importJWK(pub, TOKEN_ALG)) as CryptoKey;
  const kid = await calculateJwkThumbprint(pub);
  return { privateKey, publicKey, kid, publicJwk: { kty: 'EC', crv: 'P-256', x: pub.x!, y: pub.y!, alg: TOKEN_ALG, use: 'sig', kid } };
}

export function jwks(key: TokenKey): { keys: JWK[] } {
  return { keys: [key.publicJwk] };
}

/** What annotated evidence says about the attested TEE (public facts only). */
export interface AnnotatedEvidence {
  readonly tee: TeeName;
  readonly kind: EvidenceKind;
  readonly simulated: boolean;
  readonly measurement: string | null;
  readonly debug: boolean | null;
  readonly 'evidence-digest': string;
  readonly 'report-data': string;
  readonly 'tee-pubkey': TeePubKey;
  readonly 'runtime-data': Readonly<Record<string, unknown>>;
  readonly 'verifier-outcome': string;
  readonly 'tcb-status': string | null;
  readonly 'appraisal-policy-digest': string;
}

export interface EarSubmod {
  readonly 'ear.status': EarStatus;
  readonly 'ear.trustworthiness-vector': Readonly<Record<string, number>>;
  readonly 'ear.appraisal-policy-id': string;
  readonly 'ear.veraison.annotated-evidence': AnnotatedEvidence;
}

export interface EarClaims {
  readonly eat_profile: typeof EAR_PROFILE;
  readonly iat: number;
  readonly exp: number;
  readonly iss: string;
  readonly jti: string;
  readonly eat_nonce: string;
  readonly 'ear.verifier-id': { readonly developer: string; readonly build: string };
  /** sha256 hex of the kbs-session-id this token was issued in. */
  readonly 'attex.kbs-session': string;
  readonly submods: Readonly<Record<string, EarSubmod>>;
}

export interface IssueInput {
  readonly issuer: string;
  readonly build: string;
  readonly now: Date;
  readonly ttlSeconds: number;
  readonly nonce: string;
  readonly sessionHash: string;
  readonly submodName: string;
  readonly submod: EarSubmod;
}

export async function issueEarToken(key: TokenKey, input: IssueInput): Promise<{ token: string; claims: EarClaims }> {
  const iat = Math.floor(input.now.getTime() / 1000);
  const claims: EarClaims = {
    eat_profile: EAR_PROFILE,
    iat,
    exp: iat + input.ttlSeconds,
    iss: input.issuer,
    jti: randomUUID(),
    eat_nonce: input.nonce,
    'ear.verifier-id': { developer: 'attex', build: input.build },
    'attex.kbs-session': input.sessionHash,
    submods: { [input.submodName]: input.submod },
  };
  const token = await new SignJWT({ ...claims })
    .setProtectedHeader({ alg: TOKEN_ALG, typ: 'JWT', kid: key.kid })
    .sign(key.privateKey);
  return { token, claims };
}

/** Verify signature, issuer, profile and time; throws AttexError `broker.token-invalid` / `broker.token-expired`. */
export async function verifyEarToken(key: TokenKey, token: string, opts: { issuer: string; now: Date }): Promise<EarClaims> {
  let payload: Record<string, unknown>;
  try {
    ({ payload } = await jwtVerify(token, key.publicKey, {
      algorithms: [TOKEN_ALG],
      issuer: opts.issuer,
      currentDate: opts.now,
      requiredClaims: ['iat', 'exp', 'jti'],
      clockTolerance: 0,
    }));
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'ERR_JWT_EXPIRED') throw new AttexError('broker.token-expired', 'the attestation token has expired');
    throw new AttexError('broker.token-invalid', 'the attestation token does not verify');
  }
  const submods = payload['submods'];
  if (
    payload['eat_profile'] !== EAR_PROFILE ||
    typeof payload['attex.kbs-session'] !== 'string' ||
    typeof submods !== 'object' || submods === null || Object.keys(submods).length !== 1
  ) {
    throw new AttexError('broker.token-invalid', 'the attestation token is not an attex EAR');
  }
  return payload as unknown as EarClaims;
}

/** The single submod of a verified token (the broker issues exactly one). */
export function onlySubmod(claims: EarClaims): EarSubmod {
  const first = Object.values(claims.submods)[0];
  if (first === undefined) throw new AttexError('broker.token-invalid', 'the attestation token has no submod');
  return first;
}
