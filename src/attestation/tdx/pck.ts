/**
 * The PCK certificate chain embedded in a quote, and the Intel SGX extension of the PCK
 * certificate (OID 1.2.840.113741.1.13.1): the platform's TCB (16 SGX component SVNs, PCESVN,
 * CPUSVN), PCE-ID, FMSPC and SGX type, which select the TCB level in the TCB info.
 */
import type { KeyObject } from 'node:crypto';
import type { X509Certificate } from '@peculiar/x509';
import { AttexError } from '../../errors/index.ts';
import {
  TAG_ENUMERATED, TAG_INTEGER, TAG_OCTET_STRING, TAG_OID, TAG_SEQUENCE,
  decodeOid as decodeOidAs, decodeSmallUnsigned as decodeSmallUnsignedAs, expectTag as expectTagAs, parsePemCertificates, readTlvs as readTlvsAs,
  type Tlv,
} from '../x509/index.ts';
import { nodeKeyOf } from './certs.ts';

export const SGX_EXTENSION_OID = '1.2.840.113741.1.13.1';
const TCB_OID = `${SGX_EXTENSION_OID}.2`;

export interface SgxExtension {
  readonly ppid: Uint8Array;
  /** SGX TCB component SVNs 1..16. */
  readonly tcbCompSvns: readonly number[];
  readonly pceSvn: number;
  readonly cpuSvn: Uint8Array;
  readonly pceId: Uint8Array;
  readonly fmspc: Uint8Array;
  /** "Standard", "Scalable", "ScalableWithIntegrity" (or "Unknown(n)"). */
  readonly sgxType: string;
}

export interface PckChain {
  readonly pck: X509Certificate;
  /** PCK Platform CA or PCK Processor CA. */
  readonly intermediate: X509Certificate;
  /** The root the quote carries, if any; never trusted by itself. */
  readonly embeddedRoot: X509Certificate | null;
  /** Null when the certificate has no SGX extension (only tolerated without collateral). */
  readonly sgx: SgxExtension | null;
  readonly pckKey: KeyObject;
}

const SGX_TYPES = ['Standard', 'Scalable', 'ScalableWithIntegrity'];

const EXTENSION_CODE = 'tdx.pck-extension';

function fail(message: string): never {
  throw new AttexError(EXTENSION_CODE, message);
}

// The shared DER reader, failing with this module's code.
const readTlvs = (bytes: Uint8Array): Tlv[] => readTlvsAs(bytes, EXTENSION_CODE);
const expectTag = (tlv: Tlv | undefined, tag: number, what: string): Uint8Array => expectTagAs(tlv, tag, EXTENSION_CODE, what);
const decodeOid = (value: Uint8Array): string => decodeOidAs(value, EXTENSION_CODE);
const decodeSmallUnsigned = (value: Uint8Array, what: string): number => decodeSmallUnsignedAs(value, EXTENSION_CODE, what);

function octets(value: Uint8Array, length: number, what: string): Uint8Array {
  if (value.length !== length) fail(`${what} is ${value.length} bytes, expected ${length}`);
  return value.slice();
}

/** Decode the SGX extension value (DER SEQUENCE of {OID, value} pairs). */
export function parseSgxExtension(der: Uint8Array): SgxExtension {
  if (!(der instanceof Uint8Array)) fail('SGX extension must be DER bytes');
  const outer = readTlvs(der);
  if (outer.length !== 1) fail('SGX extension is not a single SEQUENCE');
  const entries = new Map<string, Tlv>();
  for (const item of readTlvs(expectTag(outer[0], TAG_SEQUENCE, 'SGX extension'))) {
    const [oid, value, extra] = readTlvs(expectTag(item, TAG_SEQUENCE, 'SGX extension entry'));
    if (value === undefined || extra !== undefined) fail('SGX extension entry is not an {OID, value} pair');
    const id = decodeOid(expectTag(oid, TAG_OID, 'SGX extension entry id'));
    if (entries.has(id)) fail(`SGX extension entry ${id} appears twice`);
    entries.set(id, value);
  }
  const get = (suffix: number, tag: number, what: string) => {
    const v = entries.get(`${SGX_EXTENSION_OID}.${suffix}`);
    if (v === undefined) fail(`SGX extension has no ${what}`);
    return expectTag(v, tag, what);
  };

  const tcb = new Map<string, Tlv>();
  for (const item of readTlvs(get(2, TAG_SEQUENCE, 'TCB'))) {
    const [oid, value, extra] = readTlvs(expectTag(item, TAG_SEQUENCE, 'TCB entry'));
    if (value === undefined || extra !== undefined) fail('TCB entry is not an {OID, value} pair');
    const id = decodeOid(expectTag(oid, TAG_OID, 'TCB entry id'));
    if (tcb.has(id)) fail(`TCB entry ${id} appears twice`);
    tcb.set(id, value);
  }
  const tcbValue = (n: number, tag: number, what: string) => {
    const v = tcb.get(`${TCB_OID}.${n}`);
    if (v === undefined) fail(`SGX TCB has no ${what}`);
    return expectTag(v, tag, what);
  };
  const tcbCompSvns: number[] = [];
  for (let i = 1; i <= 16; i++) {
    const svn = decodeSmallUnsigned(tcbValue(i, TAG_INTEGER, `SGX TCB component ${i}`), `SGX TCB component ${i}`);
    if (svn > 255) fail(`SGX TCB component ${i} SVN ${svn} exceeds one byte`);
    tcbCompSvns.push(svn);
  }
  const pceSvn = decodeSmallUnsigned(tcbValue(17, TAG_INTEGER, 'PCESVN'), 'PCESVN');
  if (pceSvn > 0xffff) fail(`PCESVN ${pceSvn} exceeds two bytes`);
  const cpuSvn = octets(tcbValue(18, TAG_OCTET_STRING, 'CPUSVN'), 16, 'CPUSVN');

  const typeCode = decodeSmallUnsigned(get(5, TAG_ENUMERATED, 'SGX type'), 'SGX type');
  return {
    ppid: octets(get(1, TAG_OCTET_STRING, 'PPID'), 16, 'PPID'),
    tcbCompSvns,
    pceSvn,
    cpuSvn,
    pceId: octets(get(3, TAG_OCTET_STRING, 'PCE-ID'), 2, 'PCE-ID'),
    fmspc: octets(get(4, TAG_OCTET_STRING, 'FMSPC'), 6, 'FMSPC'),
    sgxType: SGX_TYPES[typeCode] ?? `Unknown(${typeCode})`,
  };
}

/**
 * Parse the embedded PEM chain: PCK certificate, its CA, optionally the root.
 * Throws AttexError `tdx.pck-chain` (structure) or `tdx.pck-extension` (SGX extension).
 */
export function parsePckChain(pem: Uint8Array): PckChain {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(pem);
  } catch {
    throw new AttexError('tdx.pck-chain', 'PCK chain is not UTF-8 PEM');
  }
  const certs = parsePemCertificates(text, 'tdx.pck-chain', 'PCK chain');
  if (certs.length < 2 || certs.length > 3) {
    throw new AttexError('tdx.pck-chain', `PCK chain has ${certs.length} certificates, expected PCK, CA and optionally the root`);
  }
  const [pck, intermediate, embeddedRoot] = certs as [X509Certificate, X509Certificate, X509Certificate | undefined];
  let pckKey: KeyObject;
  try {
    pckKey = nodeKeyOf(pck);
  } catch (err) {
    throw new AttexError('tdx.pck-chain', 'PCK certificate public key is unreadable', { cause: err });
  }
  if (pckKey.asymmetricKeyType !== 'ec' || pckKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new AttexError('tdx.pck-chain', 'PCK certificate key is not ECDSA P-256');
  }
  const ext = pck.extensions.filter((e) => e.type === SGX_EXTENSION_OID);
  if (ext.length > 1) fail('PCK certificate has more than one SGX extension');
  const sgx = ext[0] === undefined ? null : parseSgxExtension(new Uint8Array(ext[0].value));
  return { pck, intermediate, embeddedRoot: embeddedRoot ?? null, sgx, pckKey };
}
