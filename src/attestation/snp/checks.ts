/**
 * Checks of the report against its signing certificate: ECDSA P-384 signature, signing-key
 * type, product, TCB SPLs and hwID. Each returns reasons (empty when the check passes).
 */
import type { webcrypto } from 'node:crypto';
import type { Reason } from '../../errors/index.ts';
import { bytesEqual, toHex } from '../../util/index.ts';
import type { AmdProduct } from '../types.ts';
import { decodeTcb, type SnpReport } from './abi.ts';
import { decodeHwId, type VekCert } from './cert.ts';

const ECDSA_P384_SHA384 = 1;
const SCALAR_BYTES = 48;
/** After R and S (72 bytes each at 0x2A0), the 512-byte signature field is reserved. */
const SIGNATURE_RESERVED_START = 0x330;
const SIGNATURE_RESERVED_END = 0x4a0;

/** R or S (72 bytes little-endian) as a 48-byte big-endian scalar, or null if it does not fit. */
function scalar(le: Uint8Array): Uint8Array | null {
  const be = le.slice().reverse();
  for (let i = 0; i < be.length - SCALAR_BYTES; i++) if (be[i] !== 0) return null;
  return be.subarray(be.length - SCALAR_BYTES);
}

export async function importVekKey(vek: VekCert): Promise<webcrypto.CryptoKey> {
  return crypto.subtle.importKey('spki', vek.cert.publicKey.rawData, { name: 'ECDSA', namedCurve: 'P-384' }, false, ['verify']);
}

export async function reportSignatureReasons(report: SnpReport, key: webcrypto.CryptoKey, vekName: string): Promise<Reason[]> {
  if (report.maskChipKey) {
    return [{ code: 'snp.report-signature', message: 'MASK_CHIP_KEY is set: the firmware did not sign this report with a VCEK' }];
  }
  if (report.signatureAlgo !== ECDSA_P384_SHA384) {
    return [{ code: 'snp.report-signature', message: `unsupported signature algorithm ${report.signatureAlgo} (only 1 = ECDSA P-384 with SHA-384)` }];
  }
  const r = scalar(report.signatureR);
  const s = scalar(report.signatureS);
  if (r === null || s === null) return [{ code: 'snp.report-signature', message: 'signature R or S does not fit in 48 bytes' }];
  // The rest of the signature field is reserved and unsigned; non-zero bytes there would give the
  // same report many byte forms (and many report_sha384 values).
  if (report.raw.subarray(SIGNATURE_RESERVED_START, SIGNATURE_RESERVED_END).some((b) => b !== 0)) {
    return [{ code: 'snp.signature-reserved', message: 'reserved bytes 0x330..0x49F of the signature field are not zero' }];
  }
  const signature = new Uint8Array(2 * SCALAR_BYTES);
  signature.set(r, 0);
  signature.set(s, SCALAR_BYTES);
  let ok = false;
  try {
    ok = await crypto.subtle.verify({ name: 'ECDSA', hash: 'SHA-384' }, key, signature, report.signedBytes);
  } catch {
    ok = false;
  }
  return ok ? [] : [{ code: 'snp.report-signature', message: `report signature does not verify with the ${vekName} key` }];
}

export function signingKeyReasons(report: SnpReport, vek: VekCert, vekName: string): Reason[] {
  if (report.signingKey === vek.kind) return [];
  return [{ code: 'snp.signing-key', message: `report says it is signed by key type "${report.signingKey}" but the certificate is a ${vekName}` }];
}

/**
 * The product the report comes from: CPUID (v3+) when it names a known product, else the
 * certificate. Disagreement, or no product at all, is a reason.
 */
export function resolveProduct(report: SnpReport, vek: VekCert): { product: AmdProduct | null; reasons: Reason[] } {
  const fromCpuid = report.cpuid?.product ?? null;
  const fromCert = vek.product;
  if (report.cpuid !== null && fromCpuid === null) {
    const { family, model } = report.cpuid;
    return {
      product: fromCert,
      reasons: [{ code: 'snp.product', message: `unknown CPUID family 0x${family.toString(16)} model 0x${model.toString(16)}` }],
    };
  }
  if (fromCpuid !== null && fromCert !== null && fromCpuid !== fromCert) {
    return {
      product: fromCpuid,
      reasons: [{ code: 'snp.product', message: `report CPUID says ${fromCpuid} but the certificate is for ${fromCert}` }],
    };
  }
  const product = fromCpuid ?? fromCert;
  if (product === null) return { product, reasons: [{ code: 'snp.product', message: 'cannot determine the AMD product from CPUID or the certificate' }] };
  return { product, reasons: [] };
}

/** Certificate SPL extensions must equal REPORTED_TCB (decoded in the product's layout). */
export function tcbReasons(report: SnpReport, vek: VekCert, product: AmdProduct | null, vekName: string): Reason[] {
  const tcb = decodeTcb(report.reportedTcbRaw, product);
  const pairs: Array<[string, number | null, number]> = [
    ['bl', vek.spl.bl, tcb.bl],
    ['tee', vek.spl.tee, tcb.tee],
    ['snp', vek.spl.snp, tcb.snp],
    ['ucode', vek.spl.ucode, tcb.ucode],
  ];
  if (tcb.fmc !== undefined) pairs.push(['fmc', vek.spl.fmc, tcb.fmc]);
  const diffs = pairs
    .filter(([, cert, reported]) => cert !== reported)
    .map(([name, cert, reported]) => `${name} ${cert === null ? 'missing' : cert} != ${reported}`);
  if (diffs.length === 0) return [];
  return [{ code: 'snp.tcb-mismatch', message: `${vekName} TCB does not match REPORTED_TCB (certificate vs report): ${diffs.join(', ')}` }];
}

/**
 * A VCEK's hwID must equal CHIP_ID (64 bytes; Turin: the first 8). Skipped for a VLEK (no
 * hwID) and when CHIP_ID is all zeros (MASK_CHIP_ID: the firmware withholds it).
 */
export function hwIdReasons(report: SnpReport, vek: VekCert, product: AmdProduct | null): Reason[] {
  if (vek.kind !== 'vcek') return [];
  if (report.chipId.every((b) => b === 0)) return [];
  if (vek.hwIdValue === null) return [{ code: 'snp.hwid-mismatch', message: 'VCEK has no hwID extension' }];
  const length = product === 'Turin' ? 8 : 64;
  const hwId = decodeHwId(vek.hwIdValue, length);
  if (hwId === null) {
    return [{ code: 'snp.hwid-mismatch', message: `VCEK hwID is ${vek.hwIdValue.length} bytes, expected ${length} for ${product ?? 'this product'}` }];
  }
  if (bytesEqual(hwId.bytes, report.chipId.subarray(0, length))) return [];
  return [{ code: 'snp.hwid-mismatch', message: `VCEK hwID ${toHex(hwId.bytes)} does not match CHIP_ID ${toHex(report.chipId.subarray(0, length))}` }];
}
