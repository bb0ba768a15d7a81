/**
 * SEV-SNP ATTESTATION_REPORT layout (AMD SEV-SNP ABI, little-endian). This layer turns bytes into
 * a typed structure and nothing else: no signatures, no certificates, no policy.
 */
import { AttexError } from '../../errors/index.ts';
import type { AmdProduct } from '../types.ts';

export const SNP_REPORT_LENGTH = 1184;
/** The signature covers bytes [0, 0x2A0). */
export const SNP_SIGNED_LENGTH = 0x2a0;
export const SUPPORTED_REPORT_VERSIONS: readonly number[] = [2, 3, 5];

export type SigningKeyType = 'vcek' | 'vlek' | 'none' | 'reserved';

/** TCB_VERSION decoded per product; `fmc` exists on Turin only. */
export interface TcbVersion {
  readonly fmc?: number;
  readonly bl: number;
  readonly tee: number;
  readonly snp: number;
  readonly ucode: number;
  /** The 8 bytes exactly as in the report. */
  readonly raw: Uint8Array;
}

export interface GuestPolicy {
  readonly abi_minor: number;
  readonly abi_major: number;
  readonly smt: boolean;
  readonly reserved_must_be_one: boolean;
  readonly migrate_ma: boolean;
  readonly debug: boolean;
  readonly single_socket: boolean;
  readonly cxl_allow: boolean;
  readonly mem_aes_256_xts: boolean;
  readonly rapl_dis: boolean;
  readonly ciphertext_hiding_dram: boolean;
  readonly page_swap_disable: boolean;
}

export interface PlatformInfo {
  readonly smt_en: boolean;
  readonly tsme_en: boolean;
  readonly ecc_en: boolean;
  readonly rapl_dis: boolean;
  readonly ciphertext_hiding_en: boolean;
  readonly alias_check_complete: boolean;
  readonly tio_en: boolean;
}

export interface CpuId {
  readonly family: number;
  readonly model: number;
  readonly stepping: number;
  /** KDS product name, or null for a family/model this verifier does not know. */
  readonly product: AmdProduct | null;
}

export interface FirmwareVersion {
  readonly major: number;
  readonly minor: number;
  readonly build: number;
}

export interface SnpReport {
  /** The whole 1184-byte report (a copy: later changes to the input do not affect it). */
  readonly raw: Uint8Array;
  readonly version: number;
  readonly guestSvn: number;
  readonly policy: bigint;
  readonly policyDecoded: GuestPolicy;
  readonly familyId: Uint8Array;
  readonly imageId: Uint8Array;
  readonly vmpl: number;
  readonly signatureAlgo: number;
  readonly platformInfo: bigint;
  readonly platformInfoDecoded: PlatformInfo;
  readonly authorKeyEn: boolean;
  readonly maskChipKey: boolean;
  readonly signingKey: SigningKeyType;
  readonly reportData: Uint8Array;
  readonly measurement: Uint8Array;
  readonly hostData: Uint8Array;
  readonly idKeyDigest: Uint8Array;
  readonly authorKeyDigest: Uint8Array;
  readonly reportId: Uint8Array;
  readonly reportIdMa: Uint8Array;
  /** Raw TCB_VERSION bytes; decode with `decodeTcb(raw, product)`. */
  readonly currentTcbRaw: Uint8Array;
  readonly reportedTcbRaw: Uint8Array;
  readonly committedTcbRaw: Uint8Array;
  readonly launchTcbRaw: Uint8Array;
  /** v3+ only; null on v2 (the bytes are reserved there). */
  readonly cpuid: CpuId | null;
  readonly chipId: Uint8Array;
  readonly currentVersion: FirmwareVersion;
  readonly committedVersion: FirmwareVersion;
  /** v5 only. */
  readonly launchMitVector: bigint | null;
  readonly currentMitVector: bigint | null;
  /** The signed region [0, 0x2A0). */
  readonly signedBytes: Uint8Array;
  /** R and S, 72 bytes each, little-endian as in the report. */
  readonly signatureR: Uint8Array;
  readonly signatureS: Uint8Array;
}

const bit = (value: bigint, n: number): boolean => ((value >> BigInt(n)) & 1n) === 1n;

export function decodePolicy(policy: bigint): GuestPolicy {
  return {
    abi_minor: Number(policy & 0xffn),
    abi_major: Number((policy >> 8n) & 0xffn),
    smt: bit(policy, 16),
    reserved_must_be_one: bit(policy, 17),
    migrate_ma: bit(policy, 18),
    debug: bit(policy, 19),
    single_socket: bit(policy, 20),
    cxl_allow: bit(policy, 21),
    mem_aes_256_xts: bit(policy, 22),
    rapl_dis: bit(policy, 23),
    ciphertext_hiding_dram: bit(policy, 24),
    page_swap_disable: bit(policy, 25),
  };
}

export function decodePlatformInfo(info: bigint): PlatformInfo {
  return {
    smt_en: bit(info, 0),
    tsme_en: bit(info, 1),
    ecc_en: bit(info, 2),
    rapl_dis: bit(info, 3),
    ciphertext_hiding_en: bit(info, 4),
    alias_check_complete: bit(info, 5),
    tio_en: bit(info, 7),
  };
}

/** KDS product for a CPUID family/model (Bergamo and Siena are served as Genoa). */
export function productFromCpuid(family: number, model: number): AmdProduct | null {
  if (family === 0x19) {
    const series = model >> 4;
    if (series === 0x0) return 'Milan';
    if (series === 0x1 || series === 0xa) return 'Genoa';
    return null;
  }
  if (family === 0x1a) return 'Turin';
  return null;
}

/**
 * TCB_VERSION per product. Turin moved the fields and added FMC; every other product (and any
 * report whose product is not yet known) uses the Milan/Genoa layout.
 */
export function decodeTcb(raw: Uint8Array, product: AmdProduct | null): TcbVersion {
  if (raw.length !== 8) throw new AttexError('snp.parse', 'TCB_VERSION must be 8 bytes');
  const b = (i: number): number => raw[i]!;
  const copy = raw.slice();
  if (product === 'Turin') return { fmc: b(0), bl: b(1), tee: b(2), snp: b(3), ucode: b(7), raw: copy };
  return { bl: b(0), tee: b(1), snp: b(6), ucode: b(7), raw: copy };
}

function signingKeyType(code: number): SigningKeyType {
  if (code === 0) return 'vcek';
  if (code === 1) return 'vlek';
  if (code === 7) return 'none';
  return 'reserved';
}

/** Parse a 1184-byte report of version 2, 3 or 5. Throws AttexError `snp.parse`. */
export function parseSnpReport(bytes: Uint8Array): SnpReport {
  if (!(bytes instanceof Uint8Array)) throw new AttexError('snp.parse', 'SNP report must be bytes');
  if (bytes.length !== SNP_REPORT_LENGTH) {
    throw new AttexError('snp.parse', `SNP report must be ${SNP_REPORT_LENGTH} bytes, got ${bytes.length}`);
  }
  const raw = bytes.slice();
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const u32 = (at: number): number => view.getUint32(at, true);
  const u64 = (at: number): bigint => view.getBigUint64(at, true);
  const take = (at: number, len: number): Uint8Array => raw.subarray(at, at + len);

  const version = u32(0x00);
  if (!SUPPORTED_REPORT_VERSIONS.includes(version)) {
    throw new AttexError('snp.parse', `unsupported SNP report version ${version} (supported: ${SUPPORTED_REPORT_VERSIONS.join(', ')})`);
  }
  const policy = u64(0x08);
  const platformInfo = u64(0x40);
  const keyInfo = u32(0x48);
  let cpuid: CpuId | null = null;
  if (version >= 3) {
    const family = raw[0x188]!;
    const model = raw[0x189]!;
    const stepping = raw[0x18a]!;
    cpuid = { family, model, stepping, product: productFromCpuid(family, model) };
  }
  const fw = (at: number): FirmwareVersion => ({ build: raw[at]!, minor: raw[at + 1]!, major: raw[at + 2]! });
  return {
    raw,
    version,
    guestSvn: u32(0x04),
    policy,
    policyDecoded: decodePolicy(policy),
    familyId: take(0x10, 16),
    imageId: take(0x20, 16),
    vmpl: u32(0x30),
    signatureAlgo: u32(0x34),
    currentTcbRaw: take(0x38, 8),
    platformInfo,
    platformInfoDecoded: decodePlatformInfo(platformInfo),
    authorKeyEn: (keyInfo & 1) === 1,
    maskChipKey: ((keyInfo >> 1) & 1) === 1,
    signingKey: signingKeyType((keyInfo >> 2) & 7),
    reportData: take(0x50, 64),
    measurement: take(0x90, 48),
    hostData: take(0xc0, 32),
    idKeyDigest: take(0xe0, 48),
    authorKeyDigest: take(0x110, 48),
    reportId: take(0x140, 32),
    reportIdMa: take(0x160, 32),
    reportedTcbRaw: take(0x180, 8),
    cpuid,
    chipId: take(0x1a0, 64),
    committedTcbRaw: take(0x1e0, 8),
    currentVersion: fw(0x1e8),
    committedVersion: fw(0x1ec),
    launchTcbRaw: take(0x1f0, 8),
    launchMitVector: version >= 5 ? u64(0x1f8) : null,
    currentMitVector: version >= 5 ? u64(0x200) : null,
    signedBytes: take(0, SNP_SIGNED_LENGTH),
    signatureR: take(0x2a0, 72),
    signatureS: take(0x2e8, 72),
  };
}
