/**
 * VCEK / VLEK certificates: parse the DER once into what the checks need (AMD KDS extensions
 * under 1.3.6.1.4.1.3704.1, the P-384 key, validity). Throws AttexError `snp.cert-malformed`.
 */
import type { webcrypto } from 'node:crypto';
import 'reflect-metadata';
import { X509Certificate } from '@peculiar/x509';
import { AttexError } from '../../errors/index.ts';
import type { AmdProduct } from '../types.ts';
import { assertDerSequence, commonName as certCommonName, decodeSmallUnsigned, LIMITS, readSingleTlv, TAG_INTEGER, type Tlv } from '../x509/index.ts';

export const OID_STRUCT_VERSION = '1.3.6.1.4.1.3704.1.1';
export const OID_PRODUCT_NAME = '1.3.6.1.4.1.3704.1.2';
export const OID_BL_SPL = '1.3.6.1.4.1.3704.1.3.1';
export const OID_TEE_SPL = '1.3.6.1.4.1.3704.1.3.2';
export const OID_SNP_SPL = '1.3.6.1.4.1.3704.1.3.3';
export const OID_UCODE_SPL = '1.3.6.1.4.1.3704.1.3.8';
export const OID_FMC_SPL = '1.3.6.1.4.1.3704.1.3.9';
export const OID_HWID = '1.3.6.1.4.1.3704.1.4';
export const OID_CSP_ID = '1.3.6.1.4.1.3704.1.5';

export type VekKind = 'vcek' | 'vlek';

export interface CertSpl {
  readonly fmc: number | null;
  readonly bl: number | null;
  readonly tee: number | null;
  readonly snp: number | null;
  readonly ucode: number | null;
}

export interface VekCert {
  readonly cert: X509Certificate;
  readonly der: Uint8Array;
  readonly kind: VekKind;
  readonly productName: string | null;
  /** From productName ("Milan-B0" -> Milan), else from the issuer CN ("SEV-Milan", "SEV-VLEK-Milan"). */
  readonly product: AmdProduct | null;
  readonly spl: CertSpl;
  /** The hwID extension's value bytes as stored (raw, or a DER OCTET STRING wrapping them). */
  readonly hwIdValue: Uint8Array | null;
  readonly cspId: string | null;
  readonly serialHex: string;
}

const PRODUCTS: readonly AmdProduct[] = ['Milan', 'Genoa', 'Turin'];

function malformed(message: string): AttexError {
  return new AttexError('snp.cert-malformed', message);
}

const CERT_CODE = 'snp.cert-malformed';

/** An extension value that must be exactly one DER value. */
function derValue(der: Uint8Array, what: string): Tlv {
  return readSingleTlv(der, CERT_CODE, what);
}

function derSmallUint(der: Uint8Array, what: string): number {
  const { tag, value } = derValue(der, what);
  if (tag !== TAG_INTEGER) throw malformed(`${what}: not an INTEGER`);
  return decodeSmallUnsigned(value, CERT_CODE, what);
}

function derString(der: Uint8Array, what: string): string {
  const { tag, value } = derValue(der, what);
  // IA5String, UTF8String, PrintableString
  if (tag !== 0x16 && tag !== 0x0c && tag !== 0x13) throw malformed(`${what}: not a string`);
  return new TextDecoder('utf-8', { fatal: true }).decode(value);
}

/** The CN of a DN string (the issuer of a VEK names its product: "SEV-Milan", "SEV-VLEK-Milan"). */
function dnCommonName(dn: string): string | null {
  const match = /(?:^|,\s*)CN=([^,]+)/.exec(dn);
  return match ? match[1]!.trim() : null;
}

function productFromName(name: string | null): AmdProduct | null {
  if (name === null) return null;
  const base = name.split('-')[0]!;
  return PRODUCTS.find((p) => p === base) ?? null;
}

export function productFromIssuer(issuer: string): AmdProduct | null {
  const cn = dnCommonName(issuer);
  const match = cn === null ? null : /^SEV-(?:VLEK-)?(\w+)$/.exec(cn);
  return match ? productFromName(match[1]!) : null;
}

export { commonName as certCommonName } from '../x509/index.ts';

/** Parse a VCEK/VLEK. Throws `snp.too-large` past LIMITS.certificateBytes, else `snp.cert-malformed`. */
export function parseVekCert(der: Uint8Array): VekCert {
  if (!(der instanceof Uint8Array)) throw new AttexError('snp.cert-malformed', 'VEK certificate must be DER bytes');
  if (der.length > LIMITS.certificateBytes) {
    throw new AttexError('snp.too-large', `VEK certificate is ${der.length} bytes, more than the ${LIMITS.certificateBytes} allowed`);
  }
  let cert: X509Certificate;
  try {
    assertDerSequence(der, 'snp.cert-malformed', 'VEK certificate');
    cert = new X509Certificate(der);
  } catch (err) {
    throw new AttexError('snp.cert-malformed', `VEK certificate is not valid DER X.509: ${(err as Error).message}`);
  }
  const alg = cert.publicKey.algorithm as webcrypto.EcKeyAlgorithm;
  if (alg.name !== 'ECDSA' || alg.namedCurve !== 'P-384') throw malformed('VEK key is not ECDSA P-384');
  const ext = new Map<string, Uint8Array>();
  for (const e of cert.extensions) {
    if (ext.has(e.type)) throw malformed(`duplicate extension ${e.type}`);
    ext.set(e.type, new Uint8Array(e.value));
  }
  const int = (oid: string, name: string): number | null => {
    const v = ext.get(oid);
    return v === undefined ? null : derSmallUint(v, name);
  };
  const productNameDer = ext.get(OID_PRODUCT_NAME);
  const productName = productNameDer === undefined ? null : derString(productNameDer, 'productName');
  const cspDer = ext.get(OID_CSP_ID);
  const cspId = cspDer === undefined ? null : derString(cspDer, 'cspID');
  const hwIdValue = ext.get(OID_HWID) ?? null;
  const cn = certCommonName(cert);
  let kind: VekKind;
  if (cn === 'SEV-VCEK') kind = 'vcek';
  else if (cn === 'SEV-VLEK') kind = 'vlek';
  else if (hwIdValue !== null && cspId === null) kind = 'vcek';
  else if (cspId !== null && hwIdValue === null) kind = 'vlek';
  else throw malformed(`cannot tell VCEK from VLEK (subject ${cn})`);
  const fromName = productFromName(productName);
  if (productName !== null && fromName === null) throw malformed(`unknown productName ${JSON.stringify(productName)}`);
  return {
    cert,
    der: der.slice(),
    kind,
    productName,
    product: fromName ?? productFromIssuer(cert.issuer),
    spl: {
      fmc: int(OID_FMC_SPL, 'fmcSPL'),
      bl: int(OID_BL_SPL, 'blSPL'),
      tee: int(OID_TEE_SPL, 'teeSPL'),
      snp: int(OID_SNP_SPL, 'snpSPL'),
      ucode: int(OID_UCODE_SPL, 'ucodeSPL'),
    },
    hwIdValue,
    cspId,
    serialHex: cert.serialNumber.toLowerCase(),
  };
}

/**
 * The hwID bytes: `expectedLength` raw bytes (what AMD KDS issues), or the same wrapped in a DER
 * OCTET STRING (seen in edited test fixtures). Anything else is null.
 */
export function decodeHwId(value: Uint8Array, expectedLength: number): { bytes: Uint8Array; encoding: 'raw' | 'octet' } | null {
  if (value.length === expectedLength) return { bytes: value, encoding: 'raw' };
  if (value.length === expectedLength + 2 && value[0] === 0x04 && value[1] === expectedLength) {
    return { bytes: value.subarray(2), encoding: 'octet' };
  }
  return null;
}
