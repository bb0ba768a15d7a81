/**
 * Builds a SEV-SNP ATTESTATION_REPORT (1184 bytes, little-endian) the way AMD firmware lays it
 * out, and signs bytes [0, 0x2A0) with the simulated VCEK: ECDSA P-384 over SHA-384, R and S
 * each written little-endian into 72-byte fields.
 */
import { type KeyObject, randomBytes, sign } from 'node:crypto';
import type { AmdProduct } from '../types.ts';
import { encodeTcb, type SimTcb } from './vendor-extensions.ts';

export const SNP_REPORT_SIZE = 1184;
const SIGNED_LENGTH = 0x2a0;

/** Guest policy: SMT allowed (bit 16), reserved bit 17 set; DEBUG (bit 19) clear. */
export const SIM_GUEST_POLICY = 0x30000n;

const CPUID: Record<AmdProduct, readonly [number, number, number]> = {
  Milan: [0x19, 0x01, 0x01],
  Genoa: [0x19, 0x11, 0x01],
  Turin: [0x1a, 0x02, 0x01],
};

export interface SnpReportInput {
  readonly version: 3 | 5;
  readonly product: AmdProduct;
  readonly reportData: Uint8Array;
  readonly measurement: Uint8Array;
  readonly hostData?: Uint8Array;
  readonly chipId: Uint8Array;
  readonly tcb: SimTcb;
  readonly vmpl?: number;
  readonly policy?: bigint;
  readonly vcekKey: KeyObject;
}

function reverse(bytes: Uint8Array): Uint8Array {
  return Uint8Array.from(bytes).reverse();
}

export function buildSnpReport(input: SnpReportInput): Uint8Array {
  if (input.reportData.length !== 64) throw new RangeError('report_data must be 64 bytes');
  if (input.measurement.length !== 48) throw new RangeError('measurement must be 48 bytes');
  const report = new Uint8Array(SNP_REPORT_SIZE);
  const view = new DataView(report.buffer);
  const tcb = encodeTcb(input.product, input.tcb);
  view.setUint32(0x00, input.version, true);
  view.setUint32(0x04, 0, true); // guest_svn
  view.setBigUint64(0x08, input.policy ?? SIM_GUEST_POLICY, true);
  view.setUint32(0x30, input.vmpl ?? 0, true);
  view.setUint32(0x34, 1, true); // signature_algo: ECDSA P-384 with SHA-384
  report.set(tcb, 0x38); // current_tcb
  view.setBigUint64(0x40, 0x1n, true); // platform_info: SMT enabled
  view.setUint32(0x48, 0, true); // signing key VCEK, no author key, chip key not masked
  report.set(input.reportData, 0x50);
  report.set(input.measurement, 0x90);
  if (input.hostData) report.set(input.hostData.subarray(0, 32), 0xc0);
  report.set(randomBytes(32), 0x140); // report_id
  report.fill(0xff, 0x160, 0x180); // report_id_ma: no migration agent
  report.set(tcb, 0x180); // reported_tcb
  const [family, model, stepping] = CPUID[input.product];
  report[0x188] = family;
  report[0x189] = model;
  report[0x18a] = stepping;
  report.set(input.chipId, 0x1a0);
  report.set(tcb, 0x1e0); // committed_tcb
  // Firmware 1.55.24 as current and committed: build, minor, major.
  report.set([24, 55, 1], 0x1e8);
  report.set([24, 55, 1], 0x1ec);
  report.set(tcb, 0x1f0); // launch_tcb
  if (input.version >= 5) {
    view.setBigUint64(0x1f8, 0n, true); // launch_mit_vector
    view.setBigUint64(0x200, 0n, true); // current_mit_vector
  }
  const signature = sign('sha384', report.subarray(0, SIGNED_LENGTH), { key: input.vcekKey, dsaEncoding: 'ieee-p1363' });
  report.set(reverse(signature.subarray(0, 48)), 0x2a0);
  report.set(reverse(signature.subarray(48, 96)), 0x2e8);
  return report;
}
