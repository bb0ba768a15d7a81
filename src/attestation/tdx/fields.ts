/**
 * The `fields` of a TDX VerificationResult, named and encoded exactly as the vendor vectors'
 * expected.json: byte strings as lowercase hex of the bytes as they appear, td_attributes also
 * decoded from its little-endian u64 value.
 */
import { toHex } from '../../util/index.ts';
import type { SgxExtension } from './pck.ts';
import type { TdxQuote } from './quote.ts';

const TD_ATTR_DEBUG = 0n;
const TD_ATTR_SEPT_VE_DISABLE = 28n;
const TD_ATTR_PKS = 30n;
const TD_ATTR_KL = 31n;
const TD_ATTR_PERFMON = 63n;

function u64le(bytes: Uint8Array): bigint {
  return new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
}

const bit = (v: bigint, n: bigint) => ((v >> n) & 1n) === 1n;

/** Fields taken from the quote alone, plus those from the PCK certificate's SGX extension. */
export function tdxFields(quote: TdxQuote, sgx: SgxExtension | null): Record<string, unknown> {
  const r = quote.report;
  const attrs = u64le(r.tdAttributes);
  const reserved = quote.header.reserved;
  const fields: Record<string, unknown> = {
    version: quote.header.version,
    tee_type: 'tdx',
    att_key_type: quote.header.attKeyType,
    body_type: quote.bodyType,
    qe_vendor_id: toHex(quote.header.qeVendorId),
    tee_tcb_svn: toHex(r.teeTcbSvn),
  };
  if (r.teeTcbSvn2 !== undefined) fields.tee_tcb_svn2 = toHex(r.teeTcbSvn2);
  Object.assign(fields, {
    mr_seam: toHex(r.mrSeam),
    mr_signer_seam: toHex(r.mrSignerSeam),
    seam_attributes: toHex(r.seamAttributes),
    td_attributes: toHex(r.tdAttributes),
    xfam: toHex(r.xfam),
    mr_td: toHex(r.mrTd),
    mr_config_id: toHex(r.mrConfigId),
    mr_owner: toHex(r.mrOwner),
    mr_owner_config: toHex(r.mrOwnerConfig),
    rtmr0: toHex(r.rtmrs[0]),
    rtmr1: toHex(r.rtmrs[1]),
    rtmr2: toHex(r.rtmrs[2]),
    rtmr3: toHex(r.rtmrs[3]),
    report_data: toHex(r.reportData),
  });
  if (r.mrServiceTd !== undefined) fields.mr_servicetd = toHex(r.mrServiceTd);
  Object.assign(fields, {
    td_attributes_u64: `0x${attrs.toString(16).padStart(16, '0')}`,
    td_attributes_decoded: {
      debug: bit(attrs, TD_ATTR_DEBUG),
      sept_ve_disable: bit(attrs, TD_ATTR_SEPT_VE_DISABLE),
      pks: bit(attrs, TD_ATTR_PKS),
      kl: bit(attrs, TD_ATTR_KL),
      perfmon: bit(attrs, TD_ATTR_PERFMON),
    },
    debug: bit(attrs, TD_ATTR_DEBUG),
    fmspc: sgx === null ? null : toHex(sgx.fmspc),
    pce_svn: sgx === null ? null : sgx.pceSvn,
    pceid: sgx === null ? null : toHex(sgx.pceId),
    pck_sgx_tcb_comp_svns: sgx === null ? null : [...sgx.tcbCompSvns],
    pck_cpusvn: sgx === null ? null : toHex(sgx.cpuSvn),
    pck_sgx_type: sgx === null ? null : sgx.sgxType,
    header_bytes_8_12: `${toHex(reserved.subarray(0, 2))} ${toHex(reserved.subarray(2, 4))}`,
    qe_report: {
      mr_enclave: toHex(quote.qeReport.mrEnclave),
      mr_signer: toHex(quote.qeReport.mrSigner),
      isv_prod_id: quote.qeReport.isvProdId,
      isv_svn: quote.qeReport.isvSvn,
      misc_select: toHex(quote.qeReport.miscSelect),
      attributes: toHex(quote.qeReport.attributes),
      cpu_svn: toHex(quote.qeReport.cpuSvn),
    },
    signed_region: [0, quote.signedBytes.length],
    quote_len_by_length_fields: quote.length,
    trailing_bytes: quote.trailingBytes,
  });
  return fields;
}
