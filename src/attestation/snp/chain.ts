/**
 * The AMD certificate chain: VCEK -> ASK -> ARK or VLEK -> ASVK -> ARK (RSASSA-PSS, SHA-384),
 * validity of every certificate at an explicit `now`, and AMD CRLs. Signature results are pure
 * functions of the certificates, so callers may cache them; validity and CRLs depend on `now`.
 */
import 'reflect-metadata';
import { X509Certificate, X509Crl } from '@peculiar/x509';
import type { Reason } from '../../errors/index.ts';
import type { AmdProduct, AmdRootSet, TrustStore } from '../types.ts';
import { assertDerSequence, certificateProblems, crlProblems, LIMITS } from '../x509/index.ts';
import { certCommonName, type VekCert, type VekKind } from './cert.ts';

export { certFingerprint } from '../x509/index.ts';

export interface ChainCheck {
  readonly rootSet: AmdRootSet;
  readonly intermediate: X509Certificate;
  /** "ASK" or "ASVK". */
  readonly intermediateName: string;
  readonly vekSigned: boolean;
  readonly intermediateSigned: boolean;
  readonly arkSelfSigned: boolean;
  /** Profile problems of the trusted intermediate (not a CA, wrong algorithm...). */
  readonly intermediateProblems: readonly string[];
  readonly arkProblems: readonly string[];
}

export function intermediateFor(set: AmdRootSet, kind: VekKind): X509Certificate | undefined {
  return kind === 'vcek' ? set.ask : set.asvk;
}

/** Root sets that could have issued a VEK of this kind for this product (all products when unknown). */
export function candidateRootSets(trust: TrustStore, product: AmdProduct | null, kind: VekKind): AmdRootSet[] {
  return trust.amd.filter((set) => (product === null || set.product === product) && intermediateFor(set, kind) !== undefined);
}

async function signedBy(cert: X509Certificate, issuer: X509Certificate): Promise<boolean> {
  try {
    return await cert.verify({ publicKey: issuer, signatureOnly: true });
  } catch {
    return false;
  }
}

export async function checkChain(vek: VekCert, set: AmdRootSet): Promise<ChainCheck> {
  const intermediate = intermediateFor(set, vek.kind);
  if (intermediate === undefined) throw new Error(`root set ${set.product} has no intermediate for ${vek.kind}`);
  const [vekSigned, intermediateSigned, arkSelfSigned] = await Promise.all([
    signedBy(vek.cert, intermediate),
    signedBy(intermediate, set.ark),
    signedBy(set.ark, set.ark),
  ]);
  return {
    rootSet: set,
    intermediate,
    intermediateName: vek.kind === 'vcek' ? 'ASK' : 'ASVK',
    vekSigned,
    intermediateSigned,
    arkSelfSigned,
    // Trust-store certificates are still held to AMD's profile: a mislabelled leaf must not act as a CA.
    intermediateProblems: certificateProblems(intermediate, 'rsassa-pss-sha384', 'ca'),
    arkProblems: certificateProblems(set.ark, 'rsassa-pss-sha384', 'ca'),
  };
}

export function chainReasons(check: ChainCheck, vekName: string): Reason[] {
  const reasons: Reason[] = [];
  const ask = check.intermediateName;
  if (!check.vekSigned) {
    reasons.push({ code: 'snp.vek-chain', message: `${vekName} is not signed by the trusted ${ask} (${certCommonName(check.intermediate)})` });
  }
  if (!check.intermediateSigned) {
    reasons.push({ code: 'snp.ask-chain', message: `${ask} (${certCommonName(check.intermediate)}) is not signed by the trusted ARK (${certCommonName(check.rootSet.ark)})` });
  }
  for (const problem of check.intermediateProblems) {
    reasons.push({ code: 'snp.ask-chain', message: `${ask} (${certCommonName(check.intermediate)}): ${problem}` });
  }
  if (!check.arkSelfSigned) {
    reasons.push({ code: 'snp.ark', message: `ARK (${certCommonName(check.rootSet.ark)}) is not a valid self-signed certificate` });
  }
  for (const problem of check.arkProblems) {
    reasons.push({ code: 'snp.ark', message: `ARK (${certCommonName(check.rootSet.ark)}): ${problem}` });
  }
  return reasons;
}

/** One reason per certificate not valid at `now`, naming the certificate and the boundary. */
export function validityReasons(certs: ReadonlyArray<{ name: string; cert: X509Certificate }>, now: Date): Reason[] {
  const reasons: Reason[] = [];
  const t = now.getTime();
  for (const { name, cert } of certs) {
    // Written to fail closed: an invalid `now` (NaN) is inside no window.
    if (!(t >= cert.notBefore.getTime())) {
      reasons.push({ code: 'snp.cert-validity', message: `${name} not yet valid: valid from ${cert.notBefore.toISOString()}, now is ${now.toISOString()}` });
    } else if (!(t <= cert.notAfter.getTime())) {
      reasons.push({ code: 'snp.cert-validity', message: `${name} expired at ${cert.notAfter.toISOString()}, now is ${now.toISOString()}` });
    }
  }
  return reasons;
}

const serialValue = (hex: string): bigint | null => {
  try {
    return BigInt(`0x${hex.replace(/[^0-9a-fA-F]/g, '') || '0'}`);
  } catch {
    return null;
  }
};

/**
 * Check AMD CRLs. A CRL must be signed by the ARK (it then covers the ASK/ASVK) or by the
 * intermediate (it then covers the VEK), be current at `now`, and not list the certificate it
 * covers. Entries are scoped to the signer, so a serial issued by another CA never collides
 * (every VEK has serial 0).
 */
export async function crlReasons(
  crls: readonly Uint8Array[],
  check: ChainCheck,
  vek: VekCert,
  vekName: string,
  now: Date,
): Promise<Reason[]> {
  const reasons: Reason[] = [];
  const ark = check.rootSet.ark;
  const arkName = `ARK (${certCommonName(ark)})`;
  for (const [i, der] of crls.entries()) {
    const label = `CRL #${i}`;
    let crl: X509Crl;
    try {
      assertDerSequence(der, 'snp.crl', label);
      crl = new X509Crl(der, { berOptions: { maxNodes: LIMITS.crlNodes } });
    } catch (err) {
      reasons.push({ code: 'snp.crl', message: `${label} is not a valid DER CRL: ${(err as Error).message}` });
      continue;
    }
    let covered: { name: string; cert: X509Certificate } | null = null;
    if (crl.issuer === ark.subject && (await crlSignedBy(crl, ark))) {
      covered = { name: check.intermediateName, cert: check.intermediate };
    } else if (crl.issuer === check.intermediate.subject && (await crlSignedBy(crl, check.intermediate))) {
      covered = { name: vekName, cert: vek.cert };
    }
    if (covered === null) {
      reasons.push({ code: 'snp.crl', message: `${label} (issuer ${crl.issuer}) is not signed by the trusted ${arkName}` });
      continue;
    }
    const problems = crlProblems(crl, 'rsassa-pss-sha384');
    if (problems.length > 0) {
      reasons.push({ code: 'snp.crl', message: `${label}: ${problems.join('; ')}` });
      continue;
    }
    if (!(now.getTime() >= crl.thisUpdate.getTime())) {
      reasons.push({ code: 'snp.crl', message: `${label} is not yet valid: thisUpdate ${crl.thisUpdate.toISOString()}` });
      continue;
    }
    const next = crl.nextUpdate!;
    if (!(now.getTime() <= next.getTime())) {
      reasons.push({ code: 'snp.crl', message: `${label} is stale: nextUpdate ${next.toISOString()}` });
      continue;
    }
    const serial = serialValue(covered.cert.serialNumber);
    for (const entry of crl.entries) {
      if (serial !== null && serialValue(entry.serialNumber) === serial) {
        reasons.push({
          code: 'snp.revoked',
          message: `${covered.name} (${certCommonName(covered.cert)}, serial ${covered.cert.serialNumber}) was revoked at ${entry.revocationDate.toISOString()}`,
        });
      }
    }
  }
  return reasons;
}

async function crlSignedBy(crl: X509Crl, issuer: X509Certificate): Promise<boolean> {
  try {
    return await crl.verify({ publicKey: issuer });
  } catch {
    return false;
  }
}
