/**
 * The three KBS endpoints as functions of (request data, broker context). They return what to
 * send or throw a BrokerProblem; the server turns problems into problem+json and records every
 * decision in the audit log before it answers.
 */
import { AttexError } from '../errors/index.ts';
import { decideAttestation, measurementOf } from './attest.ts';
import type { AuditEvent, AuditLog } from './audit.ts';
import { encryptToTee } from './jwe.ts';
import { isResourceSegment } from './paths.ts';
import { evaluateResourcePolicy, type ResourcePolicy } from './policy/index.ts';
import { BrokerProblem, PROBLEMS } from './problems.ts';
import { KBS_PROTOCOL_VERSION, isSupportedTee, type KbsAttestation, type KbsChallenge, type KbsRequest, type KbsResponse } from './protocol.ts';
import { type Session, SessionTable, sessionHash } from './session.ts';
import type { SecretStore } from './store/index.ts';
import { issueEarToken, onlySubmod, verifyEarToken, type EarClaims, type TokenKey } from './token.ts';
import type { EvidenceVerifier } from './verifier.ts';

export interface BrokerContext {
  readonly verifier: EvidenceVerifier;
  readonly resourcePolicy: ResourcePolicy;
  readonly store: SecretStore;
  readonly tokenKey: TokenKey;
  readonly audit: AuditLog;
  readonly sessions: SessionTable;
  readonly clock: () => Date;
  readonly issuer: string;
  readonly build: string;
  readonly sessionTtlSeconds: number;
  readonly tokenTtlSeconds: number;
}

/** Audit a denial and rethrow it: nothing is refused without a record. */
async function deny(ctx: BrokerContext, problem: BrokerProblem, event: Omit<AuditEvent, 'decision' | 'reason' | 'status' | 'problemType'>): Promise<never> {
  const kind = PROBLEMS[problem.problem];
  await ctx.audit.record({ ...event, decision: 'deny', reason: problem.code, status: kind.status, problemType: kind.type }, ctx.clock());
  problem.audited = true;
  throw problem;
}

export function handleAuth(ctx: BrokerContext, body: KbsRequest): { challenge: KbsChallenge; session: Session } {
  if (body.version !== KBS_PROTOCOL_VERSION) {
    throw new BrokerProblem('AuthRejected', 'broker.protocol-version', `KBS protocol version mismatch: this broker speaks =${KBS_PROTOCOL_VERSION}`);
  }
  if (!isSupportedTee(body.tee)) throw new BrokerProblem('AuthRejected', 'broker.tee-unsupported', `tee ${body.tee} is not supported by this broker`);
  const session = ctx.sessions.open(body.tee, ctx.clock(), ctx.sessionTtlSeconds);
  // Trustee's generic challenge carries an empty string in extra-params.
  return { challenge: { nonce: session.nonce, 'extra-params': '' }, session };
}

export function sessionFromCookie(ctx: BrokerContext, id: string | undefined | null): Session {
  if (id === undefined) throw new BrokerProblem('MissingCookie', 'broker.cookie-missing', 'no kbs-session-id cookie; POST /kbs/v0/auth first');
  if (id === null) throw new BrokerProblem('InvalidCookie', 'broker.cookie-invalid', 'the kbs-session-id cookie is malformed or repeated');
  const found = ctx.sessions.lookup(id, ctx.clock());
  if (!found.ok) {
    throw found.reason === 'expired'
      ? new BrokerProblem('ExpiredCookie', 'broker.session-expired', 'the session (and its nonce) has expired; authenticate again')
      : new BrokerProblem('InvalidCookie', 'broker.session-unknown', 'no such session');
  }
  return found.session;
}

export async function handleAttest(ctx: BrokerContext, cookie: string | undefined | null, body: KbsAttestation): Promise<{ token: string; session: Session }> {
  let session: Session;
  try {
    session = sessionFromCookie(ctx, cookie);
  } catch (err) {
    return deny(ctx, err as BrokerProblem, { event: 'attest' });
  }
  const base = { event: 'attest' as const, kbsTee: session.tee, session: sessionHash(session.id) };
  if (session.state !== 'authed' || session.nonceUsed) {
    return deny(ctx, new BrokerProblem('AttestationFailed', 'broker.nonce-replayed', 'this session\'s nonce has already been presented'), base);
  }
  session.nonceUsed = true;

  const now = ctx.clock();
  const outcome = await decideAttestation(session, body, ctx.verifier, now);
  const appraisal = outcome.appraisal === null ? undefined : {
    status: outcome.appraisal.status,
    tee: outcome.appraisal.tee,
    policyId: outcome.appraisal.policyId,
    policyDigest: outcome.appraisal.policyDigest,
    trustworthinessVector: outcome.appraisal.trustworthinessVector,
  };
  const facts = {
    ...base,
    reasons: outcome.reasons,
    ...(outcome.evidenceDigest === null ? {} : { evidenceDigest: outcome.evidenceDigest }),
    ...(outcome.result === null ? {} : { measurement: measurementOf(outcome.result), simulated: outcome.result.simulated }),
    ...(appraisal === undefined ? {} : { appraisal }),
  };
  if (!outcome.ok) return deny(ctx, outcome.problem, facts);

  const { token, claims } = await issueEarToken(ctx.tokenKey, {
    issuer: ctx.issuer,
    build: ctx.build,
    now,
    ttlSeconds: ctx.tokenTtlSeconds,
    nonce: session.nonce,
    sessionHash: sessionHash(session.id),
    submodName: session.tee,
    submod: outcome.submod,
  });
  await ctx.audit.record({ ...facts, decision: 'token-issued', reason: 'ok', status: 200, tokenId: claims.jti }, now);
  return { token, session: ctx.sessions.attest(session, token, claims.exp * 1000, now) };
}

const BEARER = /^Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)$/;

/** The verified claims authorising a resource request (cookie session, bearer token, or both). */
async function authorise(ctx: BrokerContext, cookie: string | undefined | null, authorization: string | undefined): Promise<EarClaims> {
  const now = ctx.clock();
  const session = cookie === undefined ? undefined : sessionFromCookie(ctx, cookie);
  let token: string;
  if (authorization !== undefined) {
    const m = BEARER.exec(authorization);
    if (m === null) throw new BrokerProblem('TokenVerifierError', 'broker.token-invalid', 'Authorization must be "Bearer <attestation token>"');
    token = m[1]!;
  } else if (session !== undefined) {
    if (session.state !== 'attested') throw new BrokerProblem('UnAuthenticatedCookie', 'broker.session-not-attested', 'this session has not attested');
    token = session.token;
  } else {
    throw new BrokerProblem('TokenNotFound', 'broker.token-missing', 'no kbs-session-id cookie and no bearer token');
  }
  let claims: EarClaims;
  try {
    claims = await verifyEarToken(ctx.tokenKey, token, { issuer: ctx.issuer, now });
  } catch (err) {
    const e = err as AttexError;
    throw new BrokerProblem('TokenVerifierError', e.code, e.message);
  }
  // A token presented alongside a session cookie must belong to that session.
  if (session !== undefined && claims['attex.kbs-session'] !== sessionHash(session.id)) {
    throw new BrokerProblem('TokenVerifierError', 'broker.token-session-mismatch', 'the token was issued to another session');
  }
  return claims;
}

export async function handleResource(
  ctx: BrokerContext,
  params: { repository: string; type: string; tag: string },
  cookie: string | undefined | null,
  authorization: string | undefined,
): Promise<KbsResponse> {
  const segments = [params.repository, params.type, params.tag];
  const resource = segments.join('/');
  if (!segments.every(isResourceSegment)) {
    return deny(ctx, new BrokerProblem('InvalidRequestPath', 'broker.resource-path', 'the resource path is not <repository>/<type>/<tag>'), { event: 'resource' });
  }
  const base = { event: 'resource' as const, resource };
  let claims: EarClaims;
  try {
    claims = await authorise(ctx, cookie, authorization);
  } catch (err) {
    if (!(err instanceof BrokerProblem)) throw err;
    return deny(ctx, err, base);
  }
  const submod = onlySubmod(claims);
  const ev = submod['ear.veraison.annotated-evidence'];
  const facts = {
    ...base,
    kbsTee: Object.keys(claims.submods)[0]!,
    session: claims['attex.kbs-session'],
    tokenId: claims.jti,
    evidenceDigest: ev['evidence-digest'],
    measurement: ev.measurement,
    simulated: ev.simulated,
    appraisal: {
      status: submod['ear.status'],
      tee: ev.tee,
      policyId: submod['ear.appraisal-policy-id'],
      policyDigest: ev['appraisal-policy-digest'],
      trustworthinessVector: submod['ear.trustworthiness-vector'],
    },
  };
  const decision = evaluateResourcePolicy(ctx.resourcePolicy, resource, {
    kind: ev.kind,
    tee: ev.tee,
    simulated: ev.simulated,
    measurement: ev.measurement,
    status: submod['ear.status'],
  });
  const policyFacts = { id: ctx.resourcePolicy.id, digest: ctx.resourcePolicy.digest, rule: decision.rule };
  if (!decision.allow) {
    return deny(ctx, new BrokerProblem('PolicyDeny', decision.code, decision.message), { ...facts, resourcePolicy: policyFacts });
  }
  const value = await ctx.store.get(resource);
  if (value === undefined) {
    return deny(ctx, new BrokerProblem('ResourceNotFound', 'broker.resource-unknown', 'no such resource'), { ...facts, resourcePolicy: policyFacts });
  }
  const jwe = await encryptToTee(ev['tee-pubkey'], value);
  value.fill(0);
  await ctx.audit.record({ ...facts, resourcePolicy: policyFacts, decision: 'release', reason: 'ok', status: 200 }, ctx.clock());
  return jwe;
}
