/**
 * Intel TDX DCAP quote (v4 and v5) parser: bytes in, structure out, nothing verified here.
 *
 * Every length field is checked against the buffer before it is used, and the nested
 * certification data must add up exactly; bytes after the signature data are ignored (real
 * quotes carry zero padding, fixed-size buffers or unrelated trailing bytes).
 */
import { AttexError } from '../../errors/index.ts';

export const TEE_TYPE_TDX = 0x81;
export const ATT_KEY_TYPE_ECDSA_P256 = 2;
export const INTEL_QE_VENDOR_ID = '939a7233f79c4ca9940a0db3957f0607';

const HEADER_LEN = 48;
const TD_REPORT10_LEN = 584;
const TD_REPORT15_LEN = 648;
const QE_REPORT_LEN = 384;
const CERT_DATA_QE_REPORT = 6;
const CERT_DATA_PCK_CHAIN = 5;
/** Far above any real PCK chain; bounds what a hostile length field can make us decode. */
const MAX_PCK_CHAIN_LEN = 64 * 1024;

export interface TdxQuoteHeader {
  readonly version: 4 | 5;
  readonly attKeyType: number;
  readonly teeType: number;
  /** Bytes 8..11: QE SVN / PCE SVN in SGX quotes, reserved (zero) in TDX quotes. */
  readonly reserved: Uint8Array;
  readonly qeVendorId: Uint8Array;
  readonly userData: Uint8Array;
}

export interface TdReport {
  readonly teeTcbSvn: Uint8Array;
  readonly mrSeam: Uint8Array;
  readonly mrSignerSeam: Uint8Array;
  readonly seamAttributes: Uint8Array;
  readonly tdAttributes: Uint8Array;
  readonly xfam: Uint8Array;
  readonly mrTd: Uint8Array;
  readonly mrConfigId: Uint8Array;
  readonly mrOwner: Uint8Array;
  readonly mrOwnerConfig: Uint8Array;
  readonly rtmrs: readonly [Uint8Array, Uint8Array, Uint8Array, Uint8Array];
  readonly reportData: Uint8Array;
  /** TDX 1.5 report (body type 3) only. */
  readonly teeTcbSvn2?: Uint8Array;
  readonly mrServiceTd?: Uint8Array;
}

/** The QE's SGX enclave report (384 bytes), which binds the attestation key. */
export interface QeReport {
  readonly raw: Uint8Array;
  readonly cpuSvn: Uint8Array;
  readonly miscSelect: Uint8Array;
  readonly attributes: Uint8Array;
  readonly mrEnclave: Uint8Array;
  readonly mrSigner: Uint8Array;
  readonly isvProdId: number;
  readonly isvSvn: number;
  readonly reportData: Uint8Array;
}

export interface TdxQuote {
  readonly header: TdxQuoteHeader;
  /** v5 body type (2 = TDX 1.0 report, 3 = TDX 1.5 report); null for v4. */
  readonly bodyType: 2 | 3 | null;
  readonly report: TdReport;
  /** Header plus body: the bytes the attestation key signed. */
  readonly signedBytes: Uint8Array;
  /** ECDSA P-256 signature r||s over signedBytes. */
  readonly signature: Uint8Array;
  /** Attestation public key x||y (P-256). */
  readonly attestationKey: Uint8Array;
  readonly qeReport: QeReport;
  /** ECDSA P-256 signature r||s over the QE report, by the PCK key. */
  readonly qeReportSignature: Uint8Array;
  readonly qeAuthData: Uint8Array;
  /** The PCK chain exactly as embedded (PEM, possibly NUL-terminated). */
  readonly pckChainPem: Uint8Array;
  /** Quote length according to its own length fields. */
  readonly length: number;
  readonly trailingBytes: number;
}

function fail(message: string): never {
  throw new AttexError('tdx.parse', message);
}

/** Bounds-checked little-endian reader over the quote. */
class Reader {
  readonly bytes: Uint8Array;
  readonly view: DataView;
  at = 0;
  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  need(n: number, what: string): void {
    if (n < 0 || this.at + n > this.bytes.length) {
      fail(`${what}: needs ${n} bytes at offset ${this.at}, quote has ${this.bytes.length}`);
    }
  }
  take(n: number, what: string): Uint8Array {
    this.need(n, what);
    const out = this.bytes.slice(this.at, this.at + n);
    this.at += n;
    return out;
  }
  u16(what: string): number {
    this.need(2, what);
    const v = this.view.getUint16(this.at, true);
    this.at += 2;
    return v;
  }
  u32(what: string): number {
    this.need(4, what);
    const v = this.view.getUint32(this.at, true);
    this.at += 4;
    return v;
  }
}

function parseTdReport(r: Reader, bodyLen: number): TdReport {
  r.need(bodyLen, 'TD report');
  const teeTcbSvn = r.take(16, 'tee_tcb_svn');
  const mrSeam = r.take(48, 'mr_seam');
  const mrSignerSeam = r.take(48, 'mr_signer_seam');
  const seamAttributes = r.take(8, 'seam_attributes');
  const tdAttributes = r.take(8, 'td_attributes');
  const xfam = r.take(8, 'xfam');
  const mrTd = r.take(48, 'mr_td');
  const mrConfigId = r.take(48, 'mr_config_id');
  const mrOwner = r.take(48, 'mr_owner');
  const mrOwnerConfig = r.take(48, 'mr_owner_config');
  const rtmrs = [r.take(48, 'rtmr0'), r.take(48, 'rtmr1'), r.take(48, 'rtmr2'), r.take(48, 'rtmr3')] as const;
  const reportData = r.take(64, 'report_data');
  const base = { teeTcbSvn, mrSeam, mrSignerSeam, seamAttributes, tdAttributes, xfam, mrTd, mrConfigId, mrOwner, mrOwnerConfig, rtmrs, reportData };
  if (bodyLen === TD_REPORT10_LEN) return base;
  return { ...base, teeTcbSvn2: r.take(16, 'tee_tcb_svn2'), mrServiceTd: r.take(48, 'mr_servicetd') };
}

function parseQeReport(raw: Uint8Array): QeReport {
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  return {
    raw,
    cpuSvn: raw.slice(0, 16),
    miscSelect: raw.slice(16, 20),
    attributes: raw.slice(48, 64),
    mrEnclave: raw.slice(64, 96),
    mrSigner: raw.slice(128, 160),
    isvProdId: view.getUint16(256, true),
    isvSvn: view.getUint16(258, true),
    reportData: raw.slice(320, 384),
  };
}

/** Parse a TDX DCAP quote. Throws AttexError `tdx.parse` on anything inconsistent. */
export function parseTdxQuote(bytes: Uint8Array): TdxQuote {
  if (!(bytes instanceof Uint8Array)) fail('quote must be bytes');
  const r = new Reader(bytes);
  const version = r.u16('version');
  if (version !== 4 && version !== 5) fail(`unsupported quote version ${version} (expected 4 or 5)`);
  const attKeyType = r.u16('attestation key type');
  if (attKeyType !== ATT_KEY_TYPE_ECDSA_P256) fail(`attestation key type ${attKeyType} is not 2 (ECDSA P-256)`);
  const teeType = r.u32('tee type');
  if (teeType !== TEE_TYPE_TDX) fail(`TEE type 0x${teeType.toString(16)} is not 0x81 (TDX)`);
  const reserved = r.take(4, 'header reserved bytes');
  const qeVendorId = r.take(16, 'QE vendor id');
  const userData = r.take(20, 'user data');
  const header: TdxQuoteHeader = { version, attKeyType, teeType, reserved, qeVendorId, userData };

  let bodyType: 2 | 3 | null = null;
  let bodyLen = TD_REPORT10_LEN;
  if (version === 5) {
    const type = r.u16('body type');
    const size = r.u32('body size');
    if (type === 2) bodyLen = TD_REPORT10_LEN;
    else if (type === 3) bodyLen = TD_REPORT15_LEN;
    else fail(`v5 body type ${type} is not a TD report (2 or 3)`);
    if (size !== bodyLen) fail(`v5 body size ${size} does not match body type ${type} (${bodyLen})`);
    bodyType = type;
  }
  const report = parseTdReport(r, bodyLen);
  const signedEnd = r.at;
  if (signedEnd !== (version === 4 ? HEADER_LEN + bodyLen : HEADER_LEN + 6 + bodyLen)) fail('internal: body length');

  const sigDataLen = r.u32('signature data length');
  r.need(sigDataLen, 'signature data');
  const sigDataEnd = r.at + sigDataLen;
  const signature = r.take(64, 'quote signature');
  const attestationKey = r.take(64, 'attestation key');
  const outerType = r.u16('certification data type');
  if (outerType !== CERT_DATA_QE_REPORT) fail(`certification data type ${outerType} is not 6 (QE report certification data)`);
  const outerLen = r.u32('certification data size');
  if (r.at + outerLen !== sigDataEnd) {
    fail(`certification data size ${outerLen} disagrees with signature data length ${sigDataLen}`);
  }
  const qeReport = parseQeReport(r.take(QE_REPORT_LEN, 'QE report'));
  const qeReportSignature = r.take(64, 'QE report signature');
  const authLen = r.u16('QE auth data length');
  const qeAuthData = r.take(authLen, 'QE auth data');
  const innerType = r.u16('PCK certification data type');
  if (innerType !== CERT_DATA_PCK_CHAIN) fail(`nested certification data type ${innerType} is not 5 (PEM PCK chain)`);
  const innerLen = r.u32('PCK certification data size');
  if (innerLen > MAX_PCK_CHAIN_LEN) fail(`PCK chain size ${innerLen} exceeds ${MAX_PCK_CHAIN_LEN} bytes`);
  if (r.at + innerLen !== sigDataEnd) fail(`PCK chain size ${innerLen} disagrees with the certification data size ${outerLen}`);
  const pckChainPem = r.take(innerLen, 'PCK chain');
  return {
    header,
    bodyType,
    report,
    signedBytes: bytes.slice(0, signedEnd),
    signature,
    attestationKey,
    qeReport,
    qeReportSignature,
    qeAuthData,
    pckChainPem,
    length: sigDataEnd,
    trailingBytes: bytes.length - sigDataEnd,
  };
}
