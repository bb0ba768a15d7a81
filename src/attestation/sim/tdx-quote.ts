/**
 * Builds an Intel TDX DCAP quote v4 as the Quoting Enclave would: header, 584-byte TD report,
 * ECDSA P-256 signature by the attestation key, then certification data type 6 (QE report
 * signed by the PCK key, QE auth data) wrapping type 5 (the PEM PCK chain).
 */
import { createPublicKey, type KeyObject, sign } from 'node:crypto';
import { concatBytes, fromHex, sha256, sha384 } from '../../util/index.ts';

export const INTEL_QE_VENDOR_ID = fromHex('939a7233f79c4ca9940a0db3957f0607');
/** tee_tcb_svn: TDX module ISVSVN 6, major version 1 (identity TDX_01), late microcode 3. */
export const SIM_TEE_TCB_SVN = fromHex('06010300000000000000000000000000');
/** td_attributes: SEPT_VE_DISABLE (bit 28) set, DEBUG (bit 0) clear. Little-endian u64. */
export const SIM_TD_ATTRIBUTES = fromHex('0000001000000000');
export const SIM_XFAM = fromHex('e702060000000000');

/** The Quoting Enclave's identity as the simulated QE reports it (and its QE identity endorses). */
export const SIM_QE = {
  mrSigner: fromHex('dc9e2a7c6f948f17474e34a7fc43ed030f7c1563f1babddf6340c82e0e54a8c5'),
  mrEnclave: fromHex('e5a3a7b5d830c2953b98534c6c59a3a34fdc34e933f7f5898f0a85cf08846bca'),
  isvProdId: 2,
  isvSvn: 6,
  attributes: fromHex('1500000000000000e700000000000000'),
  miscSelect: fromHex('00000000'),
} as const;

export interface TdxQuoteInput {
  readonly reportData: Uint8Array;
  readonly mrTd: Uint8Array;
  readonly mrConfigId?: Uint8Array;
  readonly rtmrs?: readonly Uint8Array[];
  readonly attestationKey: KeyObject;
  readonly pckKey: KeyObject;
  readonly cpuSvn: Uint8Array;
  /** PEM: PCK certificate, PCK Platform CA, Root CA. */
  readonly pckChainPem: string;
}

function u16(n: number): Uint8Array {
  const b = new Uint8Array(2);
  new DataView(b.buffer).setUint16(0, n, true);
  return b;
}

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, true);
  return b;
}

function p256Sign(key: KeyObject, data: Uint8Array): Uint8Array {
  return new Uint8Array(sign('sha256', data, { key, dsaEncoding: 'ieee-p1363' }));
}

/** Raw x||y (64 bytes) of a P-256 key. */
export function rawP256PublicKey(privateKey: KeyObject): Uint8Array {
  const jwk = createPublicKey(privateKey).export({ format: 'jwk' });
  return concatBytes(Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url'));
}

function tdReport(input: TdxQuoteInput): Uint8Array {
  const body = new Uint8Array(584);
  body.set(SIM_TEE_TCB_SVN, 0);
  // mr_seam: a fixed simulated module digest; mr_signer_seam zero (Intel-signed module), seam_attributes zero.
  body.set(sha384('attex simulated TDX module'), 16);
  body.set(SIM_TD_ATTRIBUTES, 120);
  body.set(SIM_XFAM, 128);
  body.set(input.mrTd, 136);
  if (input.mrConfigId) body.set(input.mrConfigId.subarray(0, 48), 184);
  (input.rtmrs ?? []).slice(0, 4).forEach((rtmr, i) => body.set(rtmr.subarray(0, 48), 328 + i * 48));
  body.set(input.reportData, 520);
  return body;
}

/** The 384-byte SGX report body of the QE, binding the attestation key through report_data. */
function qeReport(cpuSvn: Uint8Array, attestationPublic: Uint8Array, authData: Uint8Array): Uint8Array {
  const r = new Uint8Array(384);
  r.set(cpuSvn, 0);
  r.set(SIM_QE.miscSelect, 16);
  r.set(SIM_QE.attributes, 48);
  r.set(SIM_QE.mrEnclave, 64);
  r.set(SIM_QE.mrSigner, 128);
  r.set(u16(SIM_QE.isvProdId), 256);
  r.set(u16(SIM_QE.isvSvn), 258);
  r.set(sha256(concatBytes(attestationPublic, authData)), 320);
  return r;
}

export function buildTdxQuote(input: TdxQuoteInput): Uint8Array {
  if (input.reportData.length !== 64) throw new RangeError('report_data must be 64 bytes');
  if (input.mrTd.length !== 48) throw new RangeError('mr_td must be 48 bytes');
  const header = concatBytes(u16(4), u16(2), u32(0x81), u16(0), u16(0), INTEL_QE_VENDOR_ID, new Uint8Array(20));
  const signed = concatBytes(header, tdReport(input));
  const quoteSignature = p256Sign(input.attestationKey, signed);
  const attestationPublic = rawP256PublicKey(input.attestationKey);
  const authData = Uint8Array.from({ length: 32 }, (_, i) => i);
  const qe = qeReport(input.cpuSvn, attestationPublic, authData);
  const qeSignature = p256Sign(input.pckKey, qe);
  const chain = new TextEncoder().encode(input.pckChainPem);
  const certType5 = concatBytes(u16(5), u32(chain.length), chain);
  const qeCertData = concatBytes(qe, qeSignature, u16(authData.length), authData, certType5);
  const signatureData = concatBytes(quoteSignature, attestationPublic, u16(6), u32(qeCertData.length), qeCertData);
  return concatBytes(signed, u32(signatureData.length), signatureData);
}
