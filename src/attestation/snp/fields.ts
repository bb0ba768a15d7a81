/**
 * The report as reported to callers: the names and encodings of the vendor vectors'
 * expected.json (`conventions`): byte strings as lowercase hex, policy / platform_info / TCB /
 * mitigation vectors as 0x-prefixed zero-padded hex, TCB decoded per product.
 */
import { sha384, toHex } from '../../util/index.ts';
import type { AmdProduct } from '../types.ts';
import { decodeTcb, type FirmwareVersion, type SnpReport } from './abi.ts';

export const hex64 = (value: bigint): string => `0x${value.toString(16).padStart(16, '0')}`;

function tcbField(raw: Uint8Array, product: AmdProduct | null): Record<string, unknown> {
  const tcb = decodeTcb(raw, product);
  const rawU64 = new DataView(raw.buffer, raw.byteOffset, 8).getBigUint64(0, true);
  const out: Record<string, unknown> = {};
  if (tcb.fmc !== undefined) out['fmc'] = tcb.fmc;
  out['bl'] = tcb.bl;
  out['tee'] = tcb.tee;
  out['snp'] = tcb.snp;
  out['ucode'] = tcb.ucode;
  out['raw_u64'] = hex64(rawU64);
  out['raw_bytes'] = toHex(raw);
  return out;
}

const version = (v: FirmwareVersion): string => `${v.major}.${v.minor}.${v.build}`;

/**
 * `product` picks the TCB layout; pass the product the verifier settled on (CPUID, else the
 * certificate). Without it the CPUID product is used, else the Milan/Genoa layout.
 */
export function snpFields(report: SnpReport, product?: AmdProduct | null): Record<string, unknown> {
  const layout = product ?? report.cpuid?.product ?? null;
  const fields: Record<string, unknown> = {
    version: report.version,
    guest_svn: report.guestSvn,
    policy: hex64(report.policy),
    policy_decoded: { ...report.policyDecoded },
    debug_allowed: report.policyDecoded.debug,
    vmpl: report.vmpl,
    signature_algo: report.signatureAlgo,
    signing_key: report.signingKey,
    author_key_en: report.authorKeyEn,
    mask_chip_key: report.maskChipKey,
    family_id: toHex(report.familyId),
    image_id: toHex(report.imageId),
    measurement: toHex(report.measurement),
    report_data: toHex(report.reportData),
    host_data: toHex(report.hostData),
    id_key_digest: toHex(report.idKeyDigest),
    author_key_digest: toHex(report.authorKeyDigest),
    report_id: toHex(report.reportId),
    report_id_ma: toHex(report.reportIdMa),
    chip_id: toHex(report.chipId),
    current_tcb: tcbField(report.currentTcbRaw, layout),
    reported_tcb: tcbField(report.reportedTcbRaw, layout),
    committed_tcb: tcbField(report.committedTcbRaw, layout),
    launch_tcb: tcbField(report.launchTcbRaw, layout),
    platform_info: hex64(report.platformInfo),
    platform_info_decoded: { ...report.platformInfoDecoded },
    cpuid: report.cpuid === null ? null : { ...report.cpuid },
    current_version: version(report.currentVersion),
    committed_version: version(report.committedVersion),
  };
  if (report.launchMitVector !== null) fields['launch_mit_vector'] = hex64(report.launchMitVector);
  if (report.currentMitVector !== null) fields['current_mit_vector'] = hex64(report.currentMitVector);
  fields['report_sha384'] = toHex(sha384(report.raw));
  return fields;
}
