/**
 * Where the vendors serve collateral. Pure functions from parameters to URLs; the base URLs are
 * configurable (a PCCS, a mirror, a loopback test server) and default to the vendors' hosts.
 *
 * AMD KDS:   /vcek/v1/{Milan|Genoa|Turin}/{hwID hex}?blSPL=&teeSPL=&snpSPL=&ucodeSPL=[&fmcSPL=]
 *            /vcek/v1/{product}/cert_chain (ASK then ARK, PEM), /vcek/v1/{product}/crl (DER),
 *            /vlek/v1/{product}/cert_chain (ASVK then ARK, PEM)
 * Intel PCS: /tdx/certification/v4/tcb?fmspc=        (header TCB-Info-Issuer-Chain)
 *            /tdx/certification/v4/qe/identity       (header SGX-Enclave-Identity-Issuer-Chain)
 *            /sgx/certification/v4/pckcrl?ca=&encoding=der (header SGX-PCK-CRL-Issuer-Chain)
 * Intel:     IntelSGXRootCA.der, the Root CA CRL at the root certificate's CRL distribution point.
 */
import { AttexError } from '../../errors/index.ts';
import { toHex } from '../../util/index.ts';
import type { AmdProduct } from '../types.ts';

export const DEFAULT_AMD_KDS_URL = 'https://kdsintf.amd.com';
export const DEFAULT_INTEL_PCS_URL = 'https://api.trustedservices.intel.com';
export const DEFAULT_INTEL_CERTS_URL = 'https://certificates.trustedservices.intel.com';

export const HEADER_TCB_INFO_ISSUER_CHAIN = 'TCB-Info-Issuer-Chain';
export const HEADER_QE_IDENTITY_ISSUER_CHAIN = 'SGX-Enclave-Identity-Issuer-Chain';
export const HEADER_PCK_CRL_ISSUER_CHAIN = 'SGX-PCK-CRL-Issuer-Chain';

/** REPORTED_TCB components, as the KDS query names them. `fmc` exists on Turin only. */
export interface SnpTcbSpl {
  readonly bl: number;
  readonly tee: number;
  readonly snp: number;
  readonly ucode: number;
  readonly fmc?: number;
}

export type PckCa = 'platform' | 'processor';

const PRODUCTS: readonly AmdProduct[] = ['Milan', 'Genoa', 'Turin'];

function invalid(message: string): AttexError {
  return new AttexError('collateral.invalid-request', message);
}

function joinUrl(base: string, pathAndQuery: string): string {
  let url: URL;
  try {
    url = new URL(base);
  } catch {
    throw invalid(`not a URL: ${base}`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw invalid(`unsupported URL scheme: ${url.protocol}`);
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}${pathAndQuery}`;
}

function checkProduct(product: AmdProduct): void {
  if (!PRODUCTS.includes(product)) throw invalid(`unknown AMD product: ${String(product)}`);
}

function checkSpl(name: string, value: number | undefined): number {
  if (value === undefined || !Number.isInteger(value) || value < 0 || value > 255) throw invalid(`${name} must be an integer 0..255`);
  return value;
}

/**
 * The KDS hwID for a product: all 64 bytes of CHIP_ID on Milan/Genoa, the first 8 on Turin
 * (a 64-byte Turin CHIP_ID must be zero after byte 8, as the hardware reports it).
 */
export function kdsHwId(product: AmdProduct, chipId: Uint8Array): string {
  checkProduct(product);
  if (product === 'Turin') {
    if (chipId.length === 64 && chipId.subarray(8).some((b) => b !== 0)) throw invalid('a Turin CHIP_ID must be zero after its first 8 bytes');
    if (chipId.length !== 8 && chipId.length !== 64) throw invalid('a Turin hwID is 8 bytes');
    return toHex(chipId.subarray(0, 8));
  }
  if (chipId.length !== 64) throw invalid(`a ${product} hwID is 64 bytes`);
  return toHex(chipId);
}

export function vcekUrl(base: string, product: AmdProduct, chipId: Uint8Array, tcb: SnpTcbSpl): string {
  const hwid = kdsHwId(product, chipId);
  const query = new URLSearchParams({
    blSPL: String(checkSpl('blSPL', tcb.bl)),
    teeSPL: String(checkSpl('teeSPL', tcb.tee)),
    snpSPL: String(checkSpl('snpSPL', tcb.snp)),
    ucodeSPL: String(checkSpl('ucodeSPL', tcb.ucode)),
  });
  if (product === 'Turin') query.set('fmcSPL', String(checkSpl('fmcSPL', tcb.fmc)));
  else if (tcb.fmc !== undefined) throw invalid(`fmcSPL exists on Turin only, not ${product}`);
  return joinUrl(base, `/vcek/v1/${product}/${hwid}?${query.toString()}`);
}

export function vcekCertChainUrl(base: string, product: AmdProduct): string {
  checkProduct(product);
  return joinUrl(base, `/vcek/v1/${product}/cert_chain`);
}

/** The VLEK chain (ASVK then ARK, PEM). VLEKs themselves are issued to cloud providers only. */
export function vlekCertChainUrl(base: string, product: AmdProduct): string {
  checkProduct(product);
  return joinUrl(base, `/vlek/v1/${product}/cert_chain`);
}

export function amdCrlUrl(base: string, product: AmdProduct): string {
  checkProduct(product);
  return joinUrl(base, `/vcek/v1/${product}/crl`);
}

/** FMSPC: 6 bytes, 12 hex digits (either case; sent lowercase). */
export function tdxTcbInfoUrl(base: string, fmspc: string): string {
  if (!/^[0-9a-fA-F]{12}$/.test(fmspc)) throw invalid('fmspc must be 12 hex digits');
  return joinUrl(base, `/tdx/certification/v4/tcb?fmspc=${fmspc.toLowerCase()}`);
}

export function tdxQeIdentityUrl(base: string): string {
  return joinUrl(base, '/tdx/certification/v4/qe/identity');
}

export function pckCrlUrl(base: string, ca: PckCa): string {
  if (ca !== 'platform' && ca !== 'processor') throw invalid('ca must be platform or processor');
  return joinUrl(base, `/sgx/certification/v4/pckcrl?ca=${ca}&encoding=der`);
}

export function rootCaCrlUrl(base: string): string {
  return joinUrl(base, '/IntelSGXRootCA.der');
}
