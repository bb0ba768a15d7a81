/**
 * TDX quote verification: quote and QE report signatures, the QE's binding of the attestation
 * key, the PCK chain to a trusted Intel root at `now`, and, given PCS collateral, CRLs, TCB
 * info and QE identity (signatures, issuer chains, validity) and the TCB status by Intel's rules.
 * Never throws: every failure becomes a Reason with a stable code (docs/attestation-tdx.md).
 */
import type { X509Certificate } from '@peculiar/x509';
import { AttexError, type Reason } from '../../errors/index.ts';
import { bytesEqual, concatBytes, sha256, toHex } from '../../util/index.ts';
import type { IntelRoot, Outcome, TdxCollateral, TdxVerifyInput, VerificationResult } from '../types.ts';
import { commonName, LIMITS } from '../x509/index.ts';
import { p256KeyFromRaw, validityProblem, verifyP256 } from './certs.ts';
import type { QeIdentity, TdxTcbInfo } from './collateral.ts';
import { tdxFields } from './fields.ts';
import type { PckChain } from './pck.ts';
import { INTEL_QE_VENDOR_ID, parseTdxQuote, type TdxQuote } from './quote.ts';
import { evaluateQeIdentity, evaluateTdxTcb, type QeEvaluation } from './tcb.ts';
import { anchorsKey, normaliseSerial, TrustedMaterialCache, type SignedCollateral } from './trusted.ts';

export interface TdxVerifierOptions {
  /** Entries kept per cache (PCK chains, anchorings, collateral items, CRLs). Default 256. */
  readonly cacheSize?: number;
}

export interface TdxVerifier {
  verify(input: TdxVerifyInput): Promise<VerificationResult>;
}

interface Verdict {
  simulated: boolean;
  tcbStatus: string | null;
  advisoryIds: readonly string[];
  reasons: Reason[];
  fields: Record<string, unknown>;
}

function reasonOf(err: unknown, fallbackCode: string): Reason {
  if (err instanceof AttexError) return { code: err.code, message: err.message };
  return { code: fallbackCode, message: err instanceof Error ? err.message : String(err) };
}

function finish(v: Verdict, evaluated: boolean): VerificationResult {
  let outcome: Outcome;
  if (v.reasons.length > 0) outcome = 'reject';
  else if (!evaluated) outcome = 'chain-only';
  else outcome = v.tcbStatus === 'UpToDate' ? 'accept' : 'accept-tcb-not-uptodate';
  return {
    kind: 'tdx',
    tee: v.simulated ? 'sim-tdx' : 'tdx',
    simulated: v.simulated,
    outcome,
    tcb_status: v.tcbStatus,
    advisory_ids: [...v.advisoryIds],
    reasons: v.reasons,
    fields: v.fields,
  };
}

function windowProblem(notBefore: Date, notAfter: Date, now: Date, what: string): Reason | null {
  const t = now.getTime();
  if (t >= notBefore.getTime() && t <= notAfter.getTime()) return null;
  return {
    code: 'tdx.collateral.expired',
    message: `${what} is valid ${notBefore.toISOString()} .. ${notAfter.toISOString()}, not at ${now.toISOString()}`,
  };
}

/** Checks that depend only on the quote and its embedded PCK certificate. */
function quoteChecks(quote: TdxQuote, chain: PckChain, reasons: Reason[]): void {
  if (toHex(quote.header.qeVendorId) !== INTEL_QE_VENDOR_ID) {
    reasons.push({ code: 'tdx.qe-vendor', message: `QE vendor id ${toHex(quote.header.qeVendorId)} is not Intel's` });
  }
  let quoteOk = false;
  try {
    quoteOk = verifyP256(p256KeyFromRaw(quote.attestationKey), quote.signedBytes, quote.signature);
  } catch {
    quoteOk = false;
  }
  if (!quoteOk) reasons.push({ code: 'tdx.quote-signature', message: 'quote signature does not verify under the attestation key' });
  if (!verifyP256(chain.pckKey, quote.qeReport.raw, quote.qeReportSignature)) {
    reasons.push({ code: 'tdx.qe-report-signature', message: 'QE report signature does not verify under the PCK certificate key' });
  }
  const expected = sha256(concatBytes(quote.attestationKey, quote.qeAuthData));
  const rd = quote.qeReport.reportData;
  if (!bytesEqual(rd.subarray(0, 32), expected) || rd.subarray(32).some((b) => b !== 0)) {
    reasons.push({ code: 'tdx.qe-binding', message: 'QE report_data is not SHA-256(attestation key || QE auth data) followed by zeros' });
  }
}

/** Issuer chains sent without the item they certify: unused bytes that would go unchecked. */
function orphanChainReasons(c: TdxCollateral | undefined): Reason[] {
  if (c === undefined || c === null) return [];
  const pairs = [['tcbInfoIssuerChain', 'tcbInfo'], ['qeIdentityIssuerChain', 'qeIdentity'], ['pckCrlIssuerChain', 'pckCrl']] as const;
  return pairs
    .filter(([chain, item]) => c[chain] !== undefined && c[item] === undefined)
    .map(([chain, item]) => ({ code: 'tdx.collateral.malformed', message: `collateral has ${chain} but no ${item} for it to certify` }));
}

function hasCollateral(c: TdxCollateral | undefined): c is TdxCollateral {
  return c !== undefined && c !== null && (c.tcbInfo !== undefined || c.qeIdentity !== undefined || c.pckCrl !== undefined || c.rootCaCrl !== undefined);
}

export function createTdxVerifier(opts: TdxVerifierOptions = {}): TdxVerifier {
  const cache = new TrustedMaterialCache(opts.cacheSize ?? 256);

  /** Signed collateral item, checked against `now` and the PCK's anchor; null on failure. */
  async function signedItem<T extends TdxTcbInfo | QeIdentity>(
    load: () => Promise<SignedCollateral<T>>, what: string, anchorIndex: number, now: Date, reasons: Reason[],
  ): Promise<SignedCollateral<T> | null> {
    let item: SignedCollateral<T>;
    try {
      item = await load();
    } catch (err) {
      reasons.push(reasonOf(err, 'tdx.collateral.malformed'));
      return null;
    }
    if (item.anchorIndex !== anchorIndex) {
      reasons.push({ code: 'tdx.collateral.chain', message: `${what} is not signed under the root that anchors the PCK chain` });
    }
    const certProblem = validityProblem(item.signer, now, `${what} signing certificate`);
    if (certProblem !== null) reasons.push({ code: 'tdx.cert-validity', message: certProblem });
    const window = windowProblem(item.value.issueDate, item.value.nextUpdate, now, `${what} (issueDate .. nextUpdate)`);
    if (window !== null) reasons.push(window);
    return item;
  }

  async function collateralChecks(input: TdxVerifyInput, quote: TdxQuote, chain: PckChain, anchor: IntelRoot, anchorIndex: number, trustKey: string, v: Verdict): Promise<boolean> {
    const c = input.collateral!;
    const { now, trust } = input;
    const reasons = v.reasons;
    const tcbSigners: X509Certificate[] = [];

    const tcbItem = c.tcbInfo === undefined ? null : await signedItem(
      () => cache.signedCollateral('tcbInfo', c.tcbInfo!, c.tcbInfoIssuerChain, trust, trustKey), 'TCB info', anchorIndex, now, reasons);
    if (tcbItem !== null) tcbSigners.push(tcbItem.signer);
    const qeItem = c.qeIdentity === undefined ? null : await signedItem(
      () => cache.signedCollateral('qeIdentity', c.qeIdentity!, c.qeIdentityIssuerChain, trust, trustKey), 'QE identity', anchorIndex, now, reasons);
    if (qeItem !== null) tcbSigners.push(qeItem.signer);
    // Whoever supplies the evidence picks which collateral to send, and a TCB status computed
    // without QE identity or CRLs cannot see a revoked QE or certificate. The vendor vectors pin
    // such partial verdicts as acceptable, so the gap is reported for policy to judge.
    v.fields['collateral_checked'] = {
      tcb_info: c.tcbInfo !== undefined,
      qe_identity: c.qeIdentity !== undefined,
      pck_crl: c.pckCrl !== undefined,
      root_ca_crl: c.rootCaCrl !== undefined,
    };

    if (c.pckCrlIssuerChain !== undefined) reasons.push(...cache.crlIssuerChainProblems(c.pckCrlIssuerChain, chain, anchor.root));
    if (c.pckCrl !== undefined) {
      try {
        const crl = await cache.crl(c.pckCrl, chain.intermediate, 'PCK CRL');
        if (crl.issuer !== chain.pck.issuer) {
          reasons.push({ code: 'tdx.crl', message: `PCK CRL is issued by "${crl.issuer}", not by the PCK's CA ${commonName(chain.intermediate)}` });
        } else if (!crl.signatureOk) {
          reasons.push({ code: 'tdx.crl', message: `PCK CRL signature does not verify under ${commonName(chain.intermediate)}` });
        } else {
          const window = windowProblem(crl.thisUpdate, crl.nextUpdate, now, 'PCK CRL (thisUpdate .. nextUpdate)');
          if (window !== null) reasons.push(window);
          if (crl.revoked.has(normaliseSerial(chain.pck.serialNumber))) {
            reasons.push({ code: 'tdx.revoked', message: `PCK certificate serial ${chain.pck.serialNumber} is revoked` });
          }
        }
      } catch (err) {
        reasons.push(reasonOf(err, 'tdx.crl'));
      }
    }
    if (c.rootCaCrl !== undefined) {
      try {
        const crl = await cache.crl(c.rootCaCrl, anchor.root, 'Root CA CRL');
        if (crl.issuer !== anchor.root.subject) {
          reasons.push({ code: 'tdx.crl', message: `Root CA CRL is issued by "${crl.issuer}", not by ${commonName(anchor.root)}` });
        } else if (!crl.signatureOk) {
          reasons.push({ code: 'tdx.crl', message: `Root CA CRL signature does not verify under ${commonName(anchor.root)}` });
        } else {
          const window = windowProblem(crl.thisUpdate, crl.nextUpdate, now, 'Root CA CRL (thisUpdate .. nextUpdate)');
          if (window !== null) reasons.push(window);
          for (const cert of [chain.intermediate, ...tcbSigners]) {
            if (crl.revoked.has(normaliseSerial(cert.serialNumber))) {
              reasons.push({ code: 'tdx.revoked', message: `${commonName(cert)} (serial ${cert.serialNumber}) is revoked by the Root CA CRL` });
            }
          }
        }
      } catch (err) {
        reasons.push(reasonOf(err, 'tdx.crl'));
      }
    }

    let qe: QeEvaluation | null = null;
    if (qeItem !== null) {
      qe = evaluateQeIdentity(qeItem.value, quote.qeReport);
      reasons.push(...qe.reasons);
    }
    if (tcbItem === null) return false;
    const info = tcbItem.value;
    const sgx = chain.sgx;
    if (sgx === null) {
      reasons.push({ code: 'tdx.pck-extension', message: 'the PCK certificate has no SGX extension, so no TCB level can be selected' });
      return false;
    }
    if (!bytesEqual(info.fmspc, sgx.fmspc)) {
      reasons.push({ code: 'tdx.collateral.fmspc-mismatch', message: `TCB info is for FMSPC ${toHex(info.fmspc)}, the PCK certificate's is ${toHex(sgx.fmspc)}` });
      return false;
    }
    if (!bytesEqual(info.pceId, sgx.pceId)) {
      reasons.push({ code: 'tdx.collateral.pceid-mismatch', message: `TCB info is for PCE-ID ${toHex(info.pceId)}, the PCK certificate's is ${toHex(sgx.pceId)}` });
      return false;
    }
    const tcb = evaluateTdxTcb(info, sgx, quote.report, qe !== null && qe.status !== null ? qe : null);
    v.tcbStatus = tcb.status;
    v.advisoryIds = tcb.advisoryIds;
    reasons.push(...tcb.reasons);
    return true;
  }

  async function run(input: TdxVerifyInput): Promise<VerificationResult> {
    const v: Verdict = { simulated: false, tcbStatus: null, advisoryIds: [], reasons: [], fields: {} };
    if (typeof input !== 'object' || input === null || !(input.now instanceof Date) || Number.isNaN(input.now.getTime())
      || typeof input.trust !== 'object' || input.trust === null || !Array.isArray(input.trust.intel)) {
      v.reasons.push({ code: 'tdx.input', message: 'verification input needs evidence bytes, a trust store and a valid `now`' });
      return finish(v, false);
    }
    if (input.evidence instanceof Uint8Array && input.evidence.length > LIMITS.tdxQuoteBytes) {
      v.reasons.push({ code: 'tdx.too-large', message: `quote is ${input.evidence.length} bytes, more than the ${LIMITS.tdxQuoteBytes} allowed` });
      return finish(v, false);
    }
    let quote: TdxQuote;
    try {
      quote = parseTdxQuote(input.evidence);
    } catch (err) {
      v.reasons.push(reasonOf(err, 'tdx.parse'));
      return finish(v, false);
    }
    let chainKey: string;
    let chain: PckChain;
    try {
      ({ key: chainKey, chain } = cache.pckChain(quote.pckChainPem));
    } catch (err) {
      v.fields = tdxFields(quote, null);
      v.reasons.push(reasonOf(err, 'tdx.pck-chain'));
      return finish(v, false);
    }
    v.fields = tdxFields(quote, chain.sgx);
    v.fields['collateral_checked'] = { tcb_info: false, qe_identity: false, pck_crl: false, root_ca_crl: false };
    quoteChecks(quote, chain, v.reasons);

    const { trust, now } = input;
    const trustKey = anchorsKey(trust);
    const anchored = await cache.anchorPckChain(chainKey, chain, trust, trustKey);
    v.reasons.push(...anchored.problems);
    const anchor = anchored.anchorIndex === null ? undefined : trust.intel[anchored.anchorIndex];
    if (anchor === undefined || anchored.anchorIndex === null) return finish(v, false);

    for (const [cert, role] of [[chain.pck, 'PCK certificate'], [chain.intermediate, 'PCK CA certificate'], [anchor.root, 'Intel root certificate']] as const) {
      const problem = validityProblem(cert, now, role);
      if (problem !== null) v.reasons.push({ code: 'tdx.cert-validity', message: problem });
    }
    if (anchor.simulated) {
      v.simulated = true;
      if (!trust.allowSimulated) {
        v.reasons.push({ code: 'attestation.simulated-root', message: `the PCK chain ends at the simulated root "${commonName(anchor.root)}" and simulated roots are not allowed` });
      }
    }
    const orphans = orphanChainReasons(input.collateral);
    if (orphans.length > 0) {
      v.reasons.push(...orphans);
      return finish(v, false);
    }
    if (!hasCollateral(input.collateral)) return finish(v, false);
    const evaluated = await collateralChecks(input, quote, chain, anchor, anchored.anchorIndex, trustKey, v);
    return finish(v, evaluated);
  }

  return {
    async verify(input: TdxVerifyInput): Promise<VerificationResult> {
      try {
        return await run(input);
      } catch (err) {
        // Defensive: every expected failure is already a Reason; this keeps the never-throws promise.
        return finish({ simulated: false, tcbStatus: null, advisoryIds: [], reasons: [reasonOf(err, 'tdx.internal')], fields: {} }, false);
      }
    },
  };
}

const defaultVerifier = createTdxVerifier();

/** Verify a TDX quote (and optional PCS collateral) at `input.now`. Never throws. */
export function verifyTdx(input: TdxVerifyInput): Promise<VerificationResult> {
  return defaultVerifier.verify(input);
}
