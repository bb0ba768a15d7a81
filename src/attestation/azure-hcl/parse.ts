/**
 * Azure vTPM HCL report (NV index 0x01400001): header, the hardware report at 0x20, the runtime
 * data header at 0x4C0 and the runtime claims JSON after it. Every size comes from the blob's
 * own header fields and is checked against the buffer; nothing assumes a 2600-byte blob.
 * Throws AttexError `hcl.parse`.
 */
import { AttexError } from '../../errors/index.ts';
import { jsonNestsDeeperThan, sha256, sha384, sha512, toHex } from '../../util/index.ts';
import { parseSnpReport, SNP_REPORT_LENGTH, type SnpReport } from '../snp/index.ts';
import { LIMITS } from '../x509/index.ts';

/** Azure's runtime claims are a few levels deep (keys, vm-configuration, user-data). */
const MAX_CLAIMS_DEPTH = 32;

export const HCL_MAGIC = 'HCLA';
export const HCL_HEADER_LENGTH = 0x20;
export const HW_REPORT_OFFSET = 0x20;
/** The hardware-report area is 1184 bytes whatever the TEE (a TDX report is padded into it). */
export const RUNTIME_HEADER_OFFSET = HW_REPORT_OFFSET + SNP_REPORT_LENGTH;
export const RUNTIME_HEADER_LENGTH = 20;
export const CLAIMS_OFFSET = RUNTIME_HEADER_OFFSET + RUNTIME_HEADER_LENGTH;

const REPORT_TYPES: Readonly<Record<number, string>> = { 2: 'snp', 4: 'tdx' };
const HASH_TYPES: Readonly<Record<number, 'sha256' | 'sha384' | 'sha512'>> = { 1: 'sha256', 2: 'sha384', 3: 'sha512' };

export interface HclReport {
  readonly blobLength: number;
  readonly hclVersion: number;
  /** Bytes of the blob that carry the report: header + hardware report + runtime data. */
  readonly reportSize: number;
  readonly requestType: number;
  readonly status: number;
  readonly runtimeDataSize: number;
  readonly runtimeDataVersion: number;
  /** 2 = SNP, 4 = TDX, as in the runtime data header. */
  readonly reportType: number;
  readonly reportTypeName: string | null;
  readonly hashType: number;
  readonly hashTypeName: 'sha256' | 'sha384' | 'sha512' | null;
  /** The 1184-byte hardware-report area. */
  readonly hwReport: Uint8Array;
  /** The parsed SNP report when reportType is SNP, else null. */
  readonly snpReport: SnpReport | null;
  /** The runtime claims exactly as stored (the bytes report_data binds). */
  readonly claimsBytes: Uint8Array;
  readonly claims: Record<string, unknown>;
}

function fail(message: string, cause?: unknown): AttexError {
  return new AttexError('hcl.parse', message, cause === undefined ? {} : { cause });
}

export function parseHclReport(bytes: Uint8Array): HclReport {
  if (!(bytes instanceof Uint8Array)) throw fail('HCL report must be bytes');
  if (bytes.length > LIMITS.hclReportBytes) throw fail(`HCL report is ${bytes.length} bytes, more than the ${LIMITS.hclReportBytes} allowed`);
  if (bytes.length < CLAIMS_OFFSET) throw fail(`HCL report is ${bytes.length} bytes, shorter than its fixed part (${CLAIMS_OFFSET})`);
  const blob = bytes.slice();
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const u32 = (at: number): number => view.getUint32(at, true);
  const magic = new TextDecoder('latin1').decode(blob.subarray(0, 4));
  if (magic !== HCL_MAGIC) throw fail(`HCL report magic is ${JSON.stringify(magic)}, expected "HCLA"`);

  const reportSize = u32(0x08);
  const runtimeDataSize = u32(RUNTIME_HEADER_OFFSET);
  const claimsSize = u32(RUNTIME_HEADER_OFFSET + 16);
  if (claimsSize === 0) throw fail('runtime claims are empty');
  if (claimsSize > blob.length - CLAIMS_OFFSET) {
    throw fail(`runtime claims size ${claimsSize} runs past the end of the ${blob.length}-byte blob`);
  }
  if (runtimeDataSize !== RUNTIME_HEADER_LENGTH + claimsSize) {
    throw fail(`runtime data size ${runtimeDataSize} does not equal its header (${RUNTIME_HEADER_LENGTH}) plus claims (${claimsSize})`);
  }
  if (reportSize !== RUNTIME_HEADER_OFFSET + runtimeDataSize) {
    throw fail(`report size ${reportSize} does not equal the header and hardware report (${RUNTIME_HEADER_OFFSET}) plus runtime data (${runtimeDataSize})`);
  }

  const reportType = u32(RUNTIME_HEADER_OFFSET + 8);
  const hashType = u32(RUNTIME_HEADER_OFFSET + 12);
  const hwReport = blob.subarray(HW_REPORT_OFFSET, RUNTIME_HEADER_OFFSET);
  let snpReport: SnpReport | null = null;
  if (reportType === 2) {
    try {
      snpReport = parseSnpReport(hwReport);
    } catch (err) {
      throw fail(`embedded SNP report: ${(err as Error).message}`, err);
    }
  }

  const claimsBytes = blob.subarray(CLAIMS_OFFSET, CLAIMS_OFFSET + claimsSize);
  let claims: unknown;
  try {
    // Some producers NUL-terminate the JSON; the binding still covers the bytes as stored.
    let end = claimsBytes.length;
    while (end > 0 && claimsBytes[end - 1] === 0) end--;
    const text = new TextDecoder('utf-8', { fatal: true }).decode(claimsBytes.subarray(0, end));
    // Real claims nest a few levels; deep nesting would break whoever re-serializes them.
    if (jsonNestsDeeperThan(text, MAX_CLAIMS_DEPTH)) throw new Error(`nested deeper than ${MAX_CLAIMS_DEPTH} levels`);
    claims = JSON.parse(text);
  } catch (err) {
    throw fail(`runtime claims are not UTF-8 JSON: ${(err as Error).message}`, err);
  }
  if (typeof claims !== 'object' || claims === null || Array.isArray(claims)) throw fail('runtime claims are not a JSON object');

  return {
    blobLength: blob.length,
    hclVersion: u32(0x04),
    reportSize,
    requestType: u32(0x0c),
    status: u32(0x10),
    runtimeDataSize,
    runtimeDataVersion: u32(RUNTIME_HEADER_OFFSET + 4),
    reportType,
    reportTypeName: REPORT_TYPES[reportType] ?? null,
    hashType,
    hashTypeName: HASH_TYPES[hashType] ?? null,
    hwReport,
    snpReport,
    claimsBytes,
    claims: claims as Record<string, unknown>,
  };
}

/** The HCLAkPub JWK from claims.keys, or null. */
export function hclAkPub(report: HclReport): Record<string, unknown> | null {
  const keys = report.claims['keys'];
  if (!Array.isArray(keys)) return null;
  const found = keys.find((k): k is Record<string, unknown> => typeof k === 'object' && k !== null && (k as Record<string, unknown>)['kid'] === 'HCLAkPub');
  return found ?? null;
}

/** claims['user-data'] as lowercase hex when it is exactly 64 bytes of hex, else null. */
export function hclUserData(report: HclReport): string | null {
  const value = report.claims['user-data'];
  if (typeof value !== 'string' || !/^[0-9a-fA-F]{128}$/.test(value)) return null;
  return value.toLowerCase();
}

/** The digest report_data must start with, per the runtime header's hash type (null if unknown). */
export function claimsDigest(report: HclReport): Uint8Array | null {
  if (report.hashTypeName === 'sha256') return sha256(report.claimsBytes);
  if (report.hashTypeName === 'sha384') return sha384(report.claimsBytes);
  if (report.hashTypeName === 'sha512') return sha512(report.claimsBytes);
  return null;
}

/** A description in the names of the vendor vectors' expected.json `hcl` object. */
export function describeHcl(report: HclReport, bindsClaims: boolean): Record<string, unknown> {
  const keys = report.claims['keys'];
  return {
    blob_len: report.blobLength,
    magic: HCL_MAGIC,
    hw_report_offset: HW_REPORT_OFFSET,
    runtime_header_offset: RUNTIME_HEADER_OFFSET,
    hcl_version: report.hclVersion,
    report_size: report.reportSize,
    request_type: report.requestType,
    status: report.status,
    runtime_data_size: report.runtimeDataSize,
    runtime_data_version: report.runtimeDataVersion,
    report_type: report.reportTypeName ?? report.reportType,
    report_data_hash_type: report.hashTypeName ?? report.hashType,
    claims_offset: CLAIMS_OFFSET,
    claims_len: report.claimsBytes.length,
    claims_sha256: toHex(sha256(report.claimsBytes)),
    claims_top_level_keys: Object.keys(report.claims).sort(),
    claims_key_ids: Array.isArray(keys) ? keys.map((k) => (typeof k === 'object' && k !== null ? (k as Record<string, unknown>)['kid'] : null)) : [],
    claims_user_data: hclUserData(report),
    report_data_binds_claims: bindsClaims,
  };
}
