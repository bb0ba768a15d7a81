/**
 * Start-up attestation. The executor binds its receipt key into hardware evidence:
 *
 *   runtime data = { nonce, "tee-pubkey": <P-256 JWK>, "attex-receipt-key": <base64 Ed25519> }
 *   report_data  = SHA-384(canonical JSON of the runtime data), zero-padded to 64 bytes
 *
 * With a broker configured, the nonce comes from the broker (KBS /auth), the broker verifies and
 * appraises the evidence, and releases the secrets the components need, encrypted to the TEE
 * key. Without one, the nonce is random and the executor only collects evidence. Either way the
 * executor verifies its own evidence before publishing it (a provider that binds the wrong data
 * must stop start-up, not produce receipts nobody can verify).
 */
import { randomBytes } from 'node:crypto';
import { decodeJwt, exportJWK, generateKeyPair } from 'jose';
import type { Logger } from 'pino';
import { bindingMatches, reportDataFor } from '../attestation/binding/index.ts';
import { type EvidencePackage, loadTrustStore, verifyEvidence } from '../attestation/evidence/index.ts';
import type { EvidenceProvider } from '../attestation/providers/index.ts';
import type { AmdRootSet, EvidenceKind, IntelRoot, TeeName } from '../attestation/types.ts';
import type { JWK } from 'jose';
import { attestAndFetch, brokerCaDispatcher, type AttestedBrokerSession, type SecretSource } from '../broker/client/index.ts';
import { AttexError } from '../errors/index.ts';
import { type AppraisalSummary, type PublicJwk, encodeBase64, executorRuntimeData, RECEIPT_KEY_MEMBER } from '../receipts/index.ts';
import { sha256, toHex } from '../util/index.ts';

export interface AttestOptions {
  readonly provider: EvidenceProvider;
  /** Raw 32-byte Ed25519 receipt public key to bind. */
  readonly receiptKey: Uint8Array;
  readonly allowSimulated: boolean;
  /** Roots of the simulated TEE (added to the self-check's trust store in simulated mode). */
  readonly simulatedRoots?: { readonly amd: readonly AmdRootSet[]; readonly intel: readonly IntelRoot[] };
  readonly broker?: {
    readonly url: string;
    /** Secret name -> resource path, for the secrets the components name. */
    readonly secrets: Readonly<Record<string, string>>;
    /** The broker's token-signing public key; without it a token's appraisal is the broker's word. */
    readonly tokenKey?: JWK;
    /** PEM bundle of the only CAs trusted for an https:// broker (else the system's). */
    readonly ca?: string;
  };
  readonly logger?: Logger;
  readonly clock?: () => Date;
  readonly signal?: AbortSignal;
}

export interface ExecutorAttestation {
  readonly evidence: EvidencePackage;
  readonly nonce: string;
  readonly teePublicKey: PublicJwk;
  readonly runtimeData: Readonly<Record<string, unknown>>;
  readonly kind: EvidenceKind;
  readonly tee: TeeName;
  /** Lowercase hex of the launch measurement (SNP MEASUREMENT / TDX MRTD). */
  readonly measurement: string;
  /** Lowercase hex SHA-256 of the raw evidence bytes. */
  readonly evidenceDigest: string;
  readonly simulated: boolean;
  /** The broker's EAR token and its appraisal, when a broker attested us. */
  readonly brokerToken?: string;
  readonly appraisal?: AppraisalSummary;
  readonly secrets: SecretSource;
  /** True while secrets are usable (the broker token is valid, or there is no broker). */
  secretsReady(): boolean;
  close(): void;
}

const NO_SECRETS: SecretSource = { has: () => false, get: () => undefined };

async function newTeeKey(): Promise<PublicJwk> {
  // Only the public half is ever needed without a broker: nothing is encrypted to it.
  const { publicKey } = await generateKeyPair('ECDH-ES+A256KW', { crv: 'P-256', extractable: true });
  const jwk = await exportJWK(publicKey);
  return { kty: 'EC', crv: 'P-256', alg: 'ECDH-ES+A256KW', x: jwk.x!, y: jwk.y! };
}

/** KBS tee name for the provider's evidence kind (probed once when the provider cannot say). */
async function kbsTee(provider: EvidenceProvider): Promise<'snp' | 'tdx' | 'az-snp-vtpm'> {
  if (provider.name === 'azure-vtpm') return 'az-snp-vtpm';
  const probe = await provider.collect(new Uint8Array(64));
  return probe.kind === 'tdx' ? 'tdx' : probe.kind === 'azure-hcl-snp' ? 'az-snp-vtpm' : 'snp';
}

function appraisalFromToken(token: string): AppraisalSummary | undefined {
  try {
    const claims = decodeJwt(token) as { submods?: Record<string, Record<string, unknown>> };
    const sub = Object.values(claims.submods ?? {})[0];
    if (!sub) return undefined;
    const status = sub['ear.status'];
    const annotated = (sub['ear.veraison.annotated-evidence'] ?? {}) as Record<string, unknown>;
    if (status !== 'affirming' && status !== 'warning' && status !== 'contraindicated') return undefined;
    return {
      status,
      tee: annotated['tee'] as TeeName,
      policyId: String(sub['ear.appraisal-policy-id'] ?? 'unknown'),
      policyDigest: String(annotated['appraisal-policy-digest'] ?? 'unknown'),
    };
  } catch {
    return undefined;
  }
}

export async function attestExecutor(o: AttestOptions): Promise<ExecutorAttestation> {
  const clock = o.clock ?? (() => new Date());
  const receiptKeyB64 = encodeBase64(o.receiptKey);
  let evidence: EvidencePackage;
  let runtimeData: Record<string, unknown>;
  let session: AttestedBrokerSession | undefined;
  // Owned here, with the session that renews through it: closed with it.
  const dispatcher = o.broker?.ca === undefined ? undefined : brokerCaDispatcher(o.broker.ca);
  const closeBroker = () => {
    session?.close();
    void dispatcher?.close().catch(() => undefined);
  };
  try {
    if (o.broker) {
      const resources = [...new Set(Object.values(o.broker.secrets))];
      session = await attestAndFetch({
        brokerUrl: o.broker.url,
        provider: o.provider,
        resources,
        secretNames: o.broker.secrets,
        ...(o.broker.tokenKey ? { tokenKey: o.broker.tokenKey } : {}),
        ...(dispatcher ? { dispatcher } : {}),
        tee: await kbsTee(o.provider),
        runtimeDataExtra: { [RECEIPT_KEY_MEMBER]: receiptKeyB64 },
        clock,
        ...(o.signal ? { signal: o.signal } : {}),
        onRenew: (err) => {
          if (err) o.logger?.warn({ code: (err as AttexError).code }, 'broker renewal failed; retrying while the token is valid');
          else o.logger?.info('broker attestation renewed');
        },
      });
      evidence = session.evidence;
      runtimeData = { ...session.runtimeData };
    } else {
      const nonce = randomBytes(32).toString('base64url');
      runtimeData = { ...executorRuntimeData(nonce, await newTeeKey(), o.receiptKey) };
      evidence = await o.provider.collect(reportDataFor(runtimeData));
    }
  } catch (err) {
    closeBroker();
    throw err;
  }

  try {
    // Self-check: the evidence must verify and bind exactly this runtime data.
    const trust = await loadTrustStore({
      extraAmd: [...(o.simulatedRoots?.amd ?? [])],
      extraIntel: [...(o.simulatedRoots?.intel ?? [])],
      allowSimulated: o.allowSimulated,
    });
    const result = await verifyEvidence(evidence, { trust, now: clock() });
    if (result.outcome === 'reject') {
      throw new AttexError('executor.attestation', `own evidence does not verify: ${result.reasons.map((r) => `${r.code}: ${r.message}`).join('; ')}`);
    }
    if (!bindingMatches(result, runtimeData)) throw new AttexError('executor.attestation', 'own evidence does not bind the runtime data (receipt key, TEE key, nonce)');
    const measured = result.fields['measurement'] ?? result.fields['mr_td'];
    if (typeof measured !== 'string' || !/^[0-9a-fA-F]{2,256}$/.test(measured)) throw new AttexError('executor.attestation', 'own evidence has no launch measurement');
    const runtime = runtimeData as { nonce: string; 'tee-pubkey': PublicJwk };
    const token = session?.token;
    const appraisal = token === undefined ? undefined : appraisalFromToken(token);
    const s = session;
    return {
      evidence,
      nonce: runtime.nonce,
      teePublicKey: runtime['tee-pubkey'],
      runtimeData,
      kind: result.kind,
      tee: result.tee,
      measurement: measured.toLowerCase(),
      evidenceDigest: toHex(sha256(Buffer.from(evidence.evidence, 'base64'))),
      simulated: result.simulated,
      ...(token === undefined ? {} : { brokerToken: token }),
      ...(appraisal === undefined ? {} : { appraisal }),
      secrets: s ? s.secrets : NO_SECRETS,
      secretsReady: () => (s ? s.ready : true),
      close: closeBroker,
    };
  } catch (err) {
    closeBroker();
    throw err;
  }
}
