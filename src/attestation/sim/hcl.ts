/**
 * Azure vTPM HCL report layout (what the paravisor writes to NV index 0x01400001): a 32-byte
 * header "HCLA", the 1184-byte SNP report, a 20-byte runtime-data header and the runtime claims
 * JSON. The SNP report's report_data[0:32] is SHA-256 of the claims bytes, [32:64] zero.
 * The simulator uses this to play the HCL firmware in tests and demos.
 */
import { concatBytes, sha256, toHex } from '../../util/index.ts';

export const HCL_HEADER_SIZE = 32;
export const HCL_RUNTIME_HEADER_SIZE = 20;

/** The report_data an SNP report must carry to bind `claims`. */
export function hclReportDataFor(claims: Uint8Array): Uint8Array {
  const out = new Uint8Array(64);
  out.set(sha256(claims), 0);
  return out;
}

/** Claims JSON in Azure's shape, carrying `userData` (64 bytes) as uppercase hex like the HCL does. */
export function hclClaims(userData: Uint8Array, keys: readonly Record<string, unknown>[] = []): Uint8Array {
  const claims = {
    keys,
    'vm-configuration': { 'console-enabled': false, 'secure-boot': true, 'tpm-enabled': true, vmUniqueId: 'ATTEX-SIMULATED-VM' },
    'user-data': toHex(userData).toUpperCase(),
  };
  return new TextEncoder().encode(JSON.stringify(claims));
}

/** Assemble an HCL report; `totalSize` pads with zeros like the fixed-size NV index does. */
export function buildHclReport(snpReport: Uint8Array, claims: Uint8Array, totalSize?: number): Uint8Array {
  const reportSize = HCL_HEADER_SIZE + snpReport.length + HCL_RUNTIME_HEADER_SIZE + claims.length;
  const header = new Uint8Array(HCL_HEADER_SIZE);
  const hv = new DataView(header.buffer);
  header.set([0x48, 0x43, 0x4c, 0x41], 0); // "HCLA"
  hv.setUint32(4, 1, true); // version
  hv.setUint32(8, reportSize, true);
  hv.setUint32(12, 2, true); // request type
  hv.setUint32(16, 0, true); // status
  const runtime = new Uint8Array(HCL_RUNTIME_HEADER_SIZE);
  const rv = new DataView(runtime.buffer);
  rv.setUint32(0, HCL_RUNTIME_HEADER_SIZE + claims.length, true); // data size
  rv.setUint32(4, 1, true); // version
  rv.setUint32(8, 2, true); // report type: SNP
  rv.setUint32(12, 1, true); // hash type: SHA-256
  rv.setUint32(16, claims.length, true);
  const blob = concatBytes(header, snpReport, runtime, claims);
  if (totalSize === undefined) return blob;
  if (totalSize < blob.length) throw new RangeError(`HCL report needs ${blob.length} bytes, only ${totalSize} available`);
  const out = new Uint8Array(totalSize);
  out.set(blob, 0);
  return out;
}
