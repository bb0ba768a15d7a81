/**
 * The vendor-specific certificate extensions a verifier reads from a VCEK and a PCK certificate,
 * encoded exactly as AMD KDS and Intel PCS encode them (see the vectors README).
 */
import type { AmdProduct } from '../types.ts';
import { enumerated, ia5String, integer, objectIdentifier, octetString, sequence } from './der.ts';

/** One TCB_VERSION, decoded. `fmc` exists on Turin only. */
export interface SimTcb {
  readonly fmc?: number;
  readonly bl: number;
  readonly tee: number;
  readonly snp: number;
  readonly ucode: number;
}

/** AMD KDS extension bodies (extnValue contents) keyed by OID. */
export function vcekExtensionValues(product: AmdProduct, tcb: SimTcb, chipId: Uint8Array): Array<[string, Uint8Array]> {
  const amd = '1.3.6.1.4.1.3704.1';
  const out: Array<[string, Uint8Array]> = [
    [`${amd}.1`, integer(0)],
    [`${amd}.2`, ia5String(PRODUCT_NAMES[product])],
    [`${amd}.3.1`, integer(tcb.bl)],
    [`${amd}.3.2`, integer(tcb.tee)],
    [`${amd}.3.4`, integer(0)],
    [`${amd}.3.5`, integer(0)],
    [`${amd}.3.6`, integer(0)],
    [`${amd}.3.7`, integer(0)],
    [`${amd}.3.3`, integer(tcb.snp)],
    [`${amd}.3.8`, integer(tcb.ucode)],
  ];
  if (product === 'Turin') out.push([`${amd}.3.9`, integer(tcb.fmc ?? 0)]);
  // hwID is raw bytes, not DER-wrapped: 64 bytes, or chip_id[0:8] on Turin.
  out.push([`${amd}.4`, product === 'Turin' ? chipId.slice(0, 8) : chipId.slice()]);
  return out;
}

const PRODUCT_NAMES: Record<AmdProduct, string> = { Milan: 'Milan-B0', Genoa: 'Genoa-B1', Turin: 'Turin-C1' };

/** Encode a TCB_VERSION the way the report carries it (Turin moves the fields). */
export function encodeTcb(product: AmdProduct, tcb: SimTcb): Uint8Array {
  const out = new Uint8Array(8);
  if (product === 'Turin') {
    out[0] = tcb.fmc ?? 0;
    out[1] = tcb.bl;
    out[2] = tcb.tee;
    out[3] = tcb.snp;
  } else {
    out[0] = tcb.bl;
    out[1] = tcb.tee;
    out[6] = tcb.snp;
  }
  out[7] = tcb.ucode;
  return out;
}

export interface SgxPckFacts {
  readonly ppid: Uint8Array; // 16 bytes
  readonly compSvns: readonly number[]; // 16 SGX TCB component SVNs
  readonly pceSvn: number;
  readonly cpuSvn: Uint8Array; // 16 bytes
  readonly pceId: Uint8Array; // 2 bytes
  readonly fmspc: Uint8Array; // 6 bytes
}

/** The SGX Extensions (OID 1.2.840.113741.1.13.1) per Intel's PCK certificate profile. */
export function sgxExtensionValue(facts: SgxPckFacts): Uint8Array {
  const sgx = '1.2.840.113741.1.13.1';
  const tcbItems = facts.compSvns.map((svn, i) => sequence(objectIdentifier(`${sgx}.2.${i + 1}`), integer(svn)));
  return sequence(
    sequence(objectIdentifier(`${sgx}.1`), octetString(facts.ppid)),
    sequence(
      objectIdentifier(`${sgx}.2`),
      sequence(
        ...tcbItems,
        sequence(objectIdentifier(`${sgx}.2.17`), integer(facts.pceSvn)),
        sequence(objectIdentifier(`${sgx}.2.18`), octetString(facts.cpuSvn)),
      ),
    ),
    sequence(objectIdentifier(`${sgx}.3`), octetString(facts.pceId)),
    sequence(objectIdentifier(`${sgx}.4`), octetString(facts.fmspc)),
    // SGX Type: 0 = Standard, 1 = Scalable (what TDX platforms report).
    sequence(objectIdentifier(`${sgx}.5`), enumerated(1)),
  );
}

export const SGX_EXTENSION_OID = '1.2.840.113741.1.13.1';
