/**
 * The front door of verification: one call for any evidence package. It re-validates the
 * package, checks that the bytes are the kind the package claims, and hands them to the
 * matching verifier. It never throws: every failure is a `reject` with a reason code.
 */
import type { Reason } from '../../errors/index.ts';
import { verifyAzureHcl } from '../azure-hcl/index.ts';
import { verifySnp } from '../snp/index.ts';
import { verifyTdx } from '../tdx/index.ts';
import type { EvidenceKind, TrustStore, VerificationResult } from '../types.ts';
import { detectEvidenceKind } from './detect.ts';
import { type EvidencePackage, decodeEvidencePackage, packageCollateral } from './package.ts';

export interface VerifyEvidenceOptions {
  readonly trust: TrustStore;
  readonly now: Date;
}

const KNOWN_KINDS: readonly string[] = ['snp', 'azure-hcl-snp', 'tdx'];

/** A verdict for evidence that never reached a verifier. */
export function rejectedResult(kind: EvidenceKind, reasons: Reason[]): VerificationResult {
  return { kind, tee: kind, simulated: false, outcome: 'reject', tcb_status: null, advisory_ids: [], reasons, fields: {} };
}

const amdDerCache = new WeakMap<TrustStore, Set<string>>();
/** base64 DER of every ARK, ASK and ASVK the trust store holds (the form a package carries). */
function trustedAmdDer(trust: TrustStore): Set<string> {
  let set = amdDerCache.get(trust);
  if (set === undefined) {
    set = new Set();
    for (const roots of trust.amd) {
      for (const cert of [roots.ark, roots.ask, roots.asvk]) if (cert !== undefined) set.add(Buffer.from(cert.rawData).toString('base64'));
    }
    amdDerCache.set(trust, set);
  }
  return set;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export async function verifyEvidence(pkg: EvidencePackage, opts: VerifyEvidenceOptions): Promise<VerificationResult> {
  let claimed: EvidenceKind = 'snp';
  try {
    // Inside the try: even reading `kind` may throw on an object that is not plain JSON.
    const kind = (pkg as { kind?: unknown } | null | undefined)?.kind;
    if (KNOWN_KINDS.includes(kind as string)) claimed = kind as EvidenceKind;
    if (!(opts?.now instanceof Date) || Number.isNaN(opts.now.getTime())) {
      return rejectedResult(claimed, [{ code: 'evidence.invalid-time', message: 'verification time is not a valid date' }]);
    }
    let valid: EvidencePackage;
    try {
      valid = decodeEvidencePackage(pkg);
    } catch (err) {
      return rejectedResult(claimed, [{ code: 'evidence.malformed', message: errorMessage(err) }]);
    }
    const evidence = new Uint8Array(Buffer.from(valid.evidence, 'base64'));
    const detected = detectEvidenceKind(evidence);
    if (detected !== valid.kind) {
      return rejectedResult(valid.kind, [
        {
          code: 'evidence.kind-mismatch',
          message: `package says ${valid.kind} but the evidence ${detected === null ? 'is not recognisable' : `looks like ${detected}`}`,
        },
      ]);
    }
    const { trust, now } = opts;
    if (valid.kind === 'tdx') {
      const collateral = packageCollateral(valid);
      return await verifyTdx({ evidence, trust, now, ...(collateral !== undefined && { collateral }) });
    }
    const vek = valid.certs?.[0];
    if (vek === undefined) {
      return rejectedResult(valid.kind, [{ code: 'evidence.missing-vek', message: 'no VCEK/VLEK certificate in the package (certs[0])' }]);
    }
    // Only the VCEK/VLEK is taken from the package: intermediates and roots come from the trust
    // store, so any further certificate may only repeat one of those, byte for byte.
    const stray = (valid.certs ?? []).slice(1).findIndex((cert) => !trustedAmdDer(trust).has(cert));
    if (stray >= 0) {
      return rejectedResult(valid.kind, [
        { code: 'evidence.untrusted-cert', message: `certs[${stray + 1}] is not byte-identical to an AMD certificate in the trust store (only certs[0], the VCEK/VLEK, may be new)` },
      ]);
    }
    const vekCert = new Uint8Array(Buffer.from(vek, 'base64'));
    const crls = valid.crls?.map((crl) => new Uint8Array(Buffer.from(crl, 'base64')));
    const input = { evidence, vekCert, trust, now, ...(crls !== undefined && { crls }) };
    return valid.kind === 'snp' ? await verifySnp(input) : await verifyAzureHcl(input);
  } catch (err) {
    return rejectedResult(claimed, [{ code: 'evidence.verifier-error', message: `verifier failed: ${errorMessage(err)}` }]);
  }
}
