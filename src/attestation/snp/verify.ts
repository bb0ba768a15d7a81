/**
 * SEV-SNP verification: report signature, AMD chain at `now`, CRLs and the certificate-vs-report
 * checks, folded into a VerificationResult. Never throws: every failure is a Reason.
 *
 * The chain signatures (three RSA-PSS verifications) and the parsed VEK with its imported key
 * depend only on the certificates, so a verifier caches them per (VEK DER SHA-256, root set);
 * validity at `now`, CRLs and everything about the report are checked on every call.
 */
import type { webcrypto } from 'node:crypto';
import type { Reason } from '../../errors/index.ts';
import { sha256, toHex } from '../../util/index.ts';
import type { AmdProduct, SnpVerifyInput, TeeName, VerificationResult } from '../types.ts';
import { parseSnpReport, type SnpReport } from './abi.ts';
import { certCommonName, parseVekCert, type VekCert } from './cert.ts';
import { candidateRootSets, certFingerprint, chainReasons, checkChain, crlReasons, intermediateFor, validityReasons, type ChainCheck } from './chain.ts';
import { hwIdReasons, importVekKey, reportSignatureReasons, resolveProduct, signingKeyReasons, tcbReasons } from './checks.ts';
import { snpFields } from './fields.ts';
import { certificateProblems, LIMITS, LruCache } from '../x509/index.ts';

/** What the SNP checks concluded about one report; wrappers (Azure HCL) build on it. */
export interface SnpEvaluation {
  readonly reasons: Reason[];
  readonly product: AmdProduct | null;
  /** The chain ends at a simulated root. */
  readonly simulated: boolean;
}

export interface SnpVerifier {
  verify(input: SnpVerifyInput): Promise<VerificationResult>;
  /** All SNP checks of an already parsed report (the `evidence` field of `input` is ignored). */
  evaluate(report: SnpReport, input: SnpVerifyInput): Promise<SnpEvaluation>;
}

export interface SnpVerifierOptions {
  /** Entries kept in each cache (parsed VEKs; chain results). 0 disables caching. Default 256. */
  readonly cacheSize?: number;
}

interface ParsedVek {
  readonly vek: VekCert;
  readonly key: webcrypto.CryptoKey;
  /** Where the certificate departs from AMD's profile; a VEK with any is never used. */
  readonly profileProblems: readonly string[];
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function errorCode(err: unknown, fallback: string): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('snp.') ? code : fallback;
}

export function inputReasons(input: SnpVerifyInput): Reason[] {
  const reasons: Reason[] = [];
  if (typeof input !== 'object' || input === null) return [{ code: 'snp.input', message: 'verification input must be an object' }];
  if (!(input.evidence instanceof Uint8Array)) reasons.push({ code: 'snp.input', message: 'evidence must be bytes' });
  if (!(input.vekCert instanceof Uint8Array)) reasons.push({ code: 'snp.input', message: 'vekCert must be DER bytes' });
  if (!(input.now instanceof Date) || Number.isNaN(input.now.getTime())) reasons.push({ code: 'snp.input', message: 'now must be a valid Date' });
  if (typeof input.trust !== 'object' || input.trust === null || !Array.isArray(input.trust.amd)) {
    reasons.push({ code: 'snp.input', message: 'trust must be a TrustStore' });
  }
  if (input.crls !== undefined && (!Array.isArray(input.crls) || !input.crls.every((c) => c instanceof Uint8Array))) {
    reasons.push({ code: 'snp.input', message: 'crls must be a list of DER byte arrays' });
  }
  if (reasons.length > 0) return reasons;
  return sizeReasons(input);
}

/** Caps checked before any parsing, so oversized input costs nothing (LIMITS says why each is safe). */
function sizeReasons(input: SnpVerifyInput): Reason[] {
  const tooLarge = (message: string): Reason[] => [{ code: 'snp.too-large', message }];
  if (input.vekCert.length > LIMITS.certificateBytes) {
    return tooLarge(`VEK certificate is ${input.vekCert.length} bytes, more than the ${LIMITS.certificateBytes} allowed`);
  }
  const crls = input.crls ?? [];
  if (crls.length > LIMITS.crls) return tooLarge(`${crls.length} CRLs given, more than the ${LIMITS.crls} allowed`);
  const big = crls.findIndex((crl) => crl.length > LIMITS.crlBytes);
  if (big >= 0) return tooLarge(`CRL #${big} is ${crls[big]!.length} bytes, more than the ${LIMITS.crlBytes} allowed`);
  return [];
}

export function createSnpVerifier(opts: SnpVerifierOptions = {}): SnpVerifier {
  const size = opts.cacheSize ?? 256;
  const vekCache = new LruCache<ParsedVek>(size);
  const chainCache = new LruCache<ChainCheck>(size);

  async function parsedVek(der: Uint8Array): Promise<{ hash: string; parsed: ParsedVek }> {
    const hash = toHex(sha256(der));
    let parsed = vekCache.get(hash);
    if (parsed === undefined) {
      const vek = parseVekCert(der);
      parsed = { vek, key: await importVekKey(vek), profileProblems: certificateProblems(vek.cert, 'rsassa-pss-sha384', 'end-entity') };
      vekCache.set(hash, parsed);
    }
    return { hash, parsed };
  }

  /** The candidate whose intermediate verifies the VEK; else the first (non-simulated preferred). */
  async function pickChain(vekHash: string, vek: VekCert, product: AmdProduct | null, input: SnpVerifyInput): Promise<ChainCheck | null> {
    const candidates = candidateRootSets(input.trust, product, vek.kind);
    let fallback: ChainCheck | null = null;
    for (const set of candidates) {
      const key = `${vekHash}|${certFingerprint(set.ark)}|${certFingerprint(intermediateFor(set, vek.kind)!)}`;
      let check = chainCache.get(key);
      if (check === undefined) {
        check = await checkChain(vek, set);
        chainCache.set(key, check);
      }
      if (check.rootSet !== set) check = { ...check, rootSet: set };
      if (check.vekSigned) return check;
      if (fallback === null || (fallback.rootSet.simulated && !set.simulated)) fallback = check;
    }
    return fallback;
  }

  async function evaluate(report: SnpReport, input: SnpVerifyInput): Promise<SnpEvaluation> {
    // evaluate is public too: the same input checks and size caps as verify, before anything else.
    const bad = inputReasons(input);
    if (bad.length > 0) return { reasons: bad, product: report.cpuid?.product ?? null, simulated: false };
    const reasons: Reason[] = [];
    let hash: string;
    let parsed: ParsedVek;
    try {
      ({ hash, parsed } = await parsedVek(input.vekCert));
    } catch (err) {
      reasons.push({ code: errorCode(err, 'snp.cert-malformed'), message: errorMessage(err) });
      return { reasons, product: report.cpuid?.product ?? null, simulated: false };
    }
    const { vek, key } = parsed;
    const vekName = vek.kind === 'vcek' ? 'VCEK' : 'VLEK';
    if (parsed.profileProblems.length > 0) {
      reasons.push({ code: 'snp.cert-profile', message: `${vekName} does not follow AMD's certificate profile: ${parsed.profileProblems.join('; ')}` });
      return { reasons, product: report.cpuid?.product ?? null, simulated: false };
    }
    reasons.push(...signingKeyReasons(report, vek, vekName));
    const { product, reasons: productReasons } = resolveProduct(report, vek);
    reasons.push(...productReasons);

    const chain = await pickChain(hash, vek, product, input);
    let simulated = false;
    if (chain === null) {
      reasons.push({ code: 'snp.unknown-root', message: `no trusted AMD root set for ${product ?? 'an unknown product'} issues ${vekName}s` });
    } else {
      reasons.push(...chainReasons(chain, vekName));
      reasons.push(
        ...validityReasons(
          [
            { name: vekName, cert: vek.cert },
            { name: chain.intermediateName, cert: chain.intermediate },
            { name: 'ARK', cert: chain.rootSet.ark },
          ],
          input.now,
        ),
      );
      if (input.crls !== undefined && input.crls.length > 0) {
        reasons.push(...(await crlReasons(input.crls, chain, vek, vekName, input.now)));
      }
      simulated = chain.rootSet.simulated;
      if (simulated && !input.trust.allowSimulated) {
        reasons.push({
          code: 'attestation.simulated-root',
          message: `evidence chains to the simulated root ${certCommonName(chain.rootSet.ark)}, and simulated roots are not allowed`,
        });
      }
    }
    reasons.push(...(await reportSignatureReasons(report, key, vekName)));
    reasons.push(...tcbReasons(report, vek, product, vekName));
    reasons.push(...hwIdReasons(report, vek, product));
    return { reasons, product, simulated };
  }

  async function verify(input: SnpVerifyInput): Promise<VerificationResult> {
    let fields: Record<string, unknown> = {};
    let simulated = false;
    const reasons: Reason[] = [];
    try {
      const bad = inputReasons(input);
      if (bad.length > 0) return snpResult('snp', false, bad, fields);
      const report = parseSnpReport(input.evidence);
      fields = snpFields(report);
      const evaluation = await evaluate(report, input);
      fields = snpFields(report, evaluation.product);
      simulated = evaluation.simulated;
      reasons.push(...evaluation.reasons);
    } catch (err) {
      reasons.push({ code: errorCode(err, 'snp.internal'), message: errorMessage(err) });
    }
    return snpResult(simulated ? 'sim-snp' : 'snp', simulated, reasons, fields);
  }

  return { verify, evaluate };
}

function snpResult(tee: TeeName, simulated: boolean, reasons: Reason[], fields: Record<string, unknown>): VerificationResult {
  return amdResult('snp', tee, simulated, reasons, fields);
}

/** An AMD verdict (SNP or Azure HCL): AMD publishes no TCB status, so accept or reject only. */
export function amdResult(
  kind: 'snp' | 'azure-hcl-snp', tee: TeeName, simulated: boolean, reasons: Reason[], fields: Record<string, unknown>,
): VerificationResult {
  return {
    kind,
    tee,
    simulated,
    outcome: reasons.length === 0 ? 'accept' : 'reject',
    tcb_status: null,
    advisory_ids: [],
    reasons,
    fields,
  };
}

let defaultVerifier: SnpVerifier | null = null;

/** The module-wide verifier (its cache is shared by every caller of `verifySnp`). */
export function defaultSnpVerifier(): SnpVerifier {
  defaultVerifier ??= createSnpVerifier();
  return defaultVerifier;
}

/** Verify an SEV-SNP report and its VCEK/VLEK against `input.trust` at `input.now`. Never throws. */
export function verifySnp(input: SnpVerifyInput): Promise<VerificationResult> {
  return defaultSnpVerifier().verify(input);
}
