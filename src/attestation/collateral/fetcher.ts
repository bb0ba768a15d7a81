/**
 * Collateral fetcher: VCEKs and AMD chains from AMD KDS, TDX TCB info, QE identity and CRLs from
 * Intel PCS. Used to prepare offline bundles and to feed providers; the verifiers never call it
 * (they take collateral as bytes). Responses are checked for shape, not trust: the verifiers
 * check signatures. With a cache directory, a fresh cached response makes no request at all.
 */
import { AttexError } from '../../errors/index.ts';
import type { AmdProduct, TdxCollateral } from '../types.ts';
import { ResponseCache } from './cache.ts';
import { type HttpOptions, httpGet } from './http.ts';
import {
  DEFAULT_AMD_KDS_URL,
  DEFAULT_INTEL_CERTS_URL,
  DEFAULT_INTEL_PCS_URL,
  HEADER_PCK_CRL_ISSUER_CHAIN,
  HEADER_QE_IDENTITY_ISSUER_CHAIN,
  HEADER_TCB_INFO_ISSUER_CHAIN,
  type PckCa,
  type SnpTcbSpl,
  amdCrlUrl,
  pckCrlUrl,
  rootCaCrlUrl,
  tdxQeIdentityUrl,
  tdxTcbInfoUrl,
  vcekCertChainUrl,
  vcekUrl,
  vlekCertChainUrl,
} from './urls.ts';

export interface CollateralFetcherOptions extends HttpOptions {
  readonly amdKdsUrl?: string;
  readonly intelPcsUrl?: string;
  /** Host of IntelSGXRootCA.der (the Root CA CRL). */
  readonly intelCertsUrl?: string;
  /** Directory for the response cache; no caching when absent. */
  readonly cacheDir?: string;
  /**
   * How long cached TCB info, QE identity and CRLs stay fresh. Default 24 h (they are reissued
   * monthly or on TCB recovery). VCEKs and AMD chains never change for a given URL.
   */
  readonly collateralMaxAgeMs?: number;
}

export interface SignedBody {
  /** The response body exactly as served (signatures cover bytes inside it). */
  readonly body: Uint8Array;
  /** The issuer chain from the response header, URL-decoded PEM. */
  readonly issuerChain: string;
}

export interface CollateralFetcher {
  fetchVcek(product: AmdProduct, chipId: Uint8Array, tcb: SnpTcbSpl): Promise<Uint8Array>;
  /** PEM: ASK then ARK. */
  fetchAmdCertChain(product: AmdProduct): Promise<string>;
  /** PEM: ASVK then ARK. */
  fetchAmdVlekCertChain(product: AmdProduct): Promise<string>;
  fetchAmdCrl(product: AmdProduct): Promise<Uint8Array>;
  fetchTdxTcbInfo(fmspc: string): Promise<SignedBody>;
  fetchTdxQeIdentity(): Promise<SignedBody>;
  fetchPckCrl(ca: PckCa): Promise<SignedBody>;
  fetchRootCaCrl(): Promise<Uint8Array>;
  /** Everything a TDX verification needs for one platform, in the verifier's shape. */
  fetchTdxCollateral(opts: { fmspc: string; ca: PckCa }): Promise<TdxCollateral>;
}

const FOREVER = Number.POSITIVE_INFINITY;
const PEM_TEXT_RE = /^[\t\n\r\x20-\x7e]*$/;

function malformed(url: string, message: string): AttexError {
  return new AttexError('collateral.malformed', `${url}: ${message}`);
}

function checkPemChain(text: string, url: string, what: string, minCerts: number): string {
  const count = text.match(/-----BEGIN CERTIFICATE-----/g)?.length ?? 0;
  if (!PEM_TEXT_RE.test(text) || count < minCerts) throw malformed(url, `${what} is not a PEM chain of at least ${minCerts} certificate(s)`);
  return text;
}

function checkDer(body: Uint8Array, url: string, what: string): Uint8Array {
  // A DER SEQUENCE with a long-form length: every certificate and CRL starts this way.
  if (body.length < 4 || body[0] !== 0x30 || ((body[1] ?? 0) & 0x80) === 0) throw malformed(url, `${what} is not DER`);
  return body;
}

function checkPcsJson(body: Uint8Array, url: string, key: 'tcbInfo' | 'enclaveIdentity'): Uint8Array {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
  } catch {
    throw malformed(url, 'body is not JSON');
  }
  const obj = value as Record<string, unknown> | null;
  if (typeof obj !== 'object' || obj === null || typeof obj[key] !== 'object' || typeof obj['signature'] !== 'string') {
    throw malformed(url, `body is not a PCS {"${key}":{...},"signature":"..."} document`);
  }
  return body;
}

function issuerChainFrom(headers: Readonly<Record<string, string>>, header: string, url: string): string {
  const raw = headers[header.toLowerCase()];
  if (raw === undefined) throw malformed(url, `missing ${header} header`);
  let decoded: string;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    throw malformed(url, `${header} header is not URL-encoded`);
  }
  return checkPemChain(decoded, url, `${header} header`, 2);
}

export function createCollateralFetcher(opts: CollateralFetcherOptions = {}): CollateralFetcher {
  const kds = opts.amdKdsUrl ?? DEFAULT_AMD_KDS_URL;
  const pcs = opts.intelPcsUrl ?? DEFAULT_INTEL_PCS_URL;
  const certs = opts.intelCertsUrl ?? DEFAULT_INTEL_CERTS_URL;
  const cache = opts.cacheDir === undefined ? undefined : new ResponseCache(opts.cacheDir);
  const collateralMaxAge = opts.collateralMaxAgeMs ?? 24 * 3600 * 1000;
  const now = opts.now ?? Date.now;

  /** GET through the cache; `check` runs before anything is cached, so junk is never stored. */
  async function get(
    url: string,
    maxAgeMs: number,
    keepHeader: string | undefined,
    check: (body: Uint8Array, headers: Readonly<Record<string, string>>) => void,
  ): Promise<{ body: Uint8Array; headers: Readonly<Record<string, string>> }> {
    const hit = await cache?.get(url, maxAgeMs, now());
    if (hit !== undefined) {
      try {
        check(hit.body, hit.headers);
        return hit;
      } catch {
        // A damaged entry is refetched.
      }
    }
    const res = await httpGet(url, opts);
    check(res.body, res.headers);
    const headers: Record<string, string> = {};
    if (keepHeader !== undefined) headers[keepHeader.toLowerCase()] = res.headers[keepHeader.toLowerCase()]!;
    if (cache !== undefined) {
      await cache.put({ url, fetchedAt: new Date(now()), body: res.body, headers }).catch((err: unknown) => {
        throw new AttexError('collateral.cache', `cannot write the collateral cache: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
      });
    }
    return { body: res.body, headers };
  }

  async function signedBody(url: string, header: string, key: 'tcbInfo' | 'enclaveIdentity' | 'crl'): Promise<SignedBody> {
    const { body, headers } = await get(url, collateralMaxAge, header, (b, h) => {
      if (key === 'crl') checkDer(b, url, 'CRL');
      else checkPcsJson(b, url, key);
      issuerChainFrom(h, header, url);
    });
    return { body, issuerChain: issuerChainFrom(headers, header, url) };
  }

  const fetcher: CollateralFetcher = {
    async fetchVcek(product, chipId, tcb) {
      const url = vcekUrl(kds, product, chipId, tcb);
      return (await get(url, FOREVER, undefined, (b) => checkDer(b, url, 'VCEK'))).body;
    },
    async fetchAmdCertChain(product) {
      const url = vcekCertChainUrl(kds, product);
      const check = (b: Uint8Array) => checkPemChain(Buffer.from(b).toString('latin1'), url, 'cert_chain', 2);
      return Buffer.from((await get(url, FOREVER, undefined, check)).body).toString('latin1');
    },
    async fetchAmdVlekCertChain(product) {
      const url = vlekCertChainUrl(kds, product);
      const check = (b: Uint8Array) => checkPemChain(Buffer.from(b).toString('latin1'), url, 'cert_chain', 2);
      return Buffer.from((await get(url, FOREVER, undefined, check)).body).toString('latin1');
    },
    async fetchAmdCrl(product) {
      const url = amdCrlUrl(kds, product);
      return (await get(url, collateralMaxAge, undefined, (b) => checkDer(b, url, 'CRL'))).body;
    },
    fetchTdxTcbInfo: (fmspc) => signedBody(tdxTcbInfoUrl(pcs, fmspc), HEADER_TCB_INFO_ISSUER_CHAIN, 'tcbInfo'),
    fetchTdxQeIdentity: () => signedBody(tdxQeIdentityUrl(pcs), HEADER_QE_IDENTITY_ISSUER_CHAIN, 'enclaveIdentity'),
    fetchPckCrl: (ca) => signedBody(pckCrlUrl(pcs, ca), HEADER_PCK_CRL_ISSUER_CHAIN, 'crl'),
    async fetchRootCaCrl() {
      const url = rootCaCrlUrl(certs);
      return (await get(url, collateralMaxAge, undefined, (b) => checkDer(b, url, 'CRL'))).body;
    },
    async fetchTdxCollateral({ fmspc, ca }) {
      const tcb = await fetcher.fetchTdxTcbInfo(fmspc);
      const qe = await fetcher.fetchTdxQeIdentity();
      const crl = await fetcher.fetchPckCrl(ca);
      const rootCrl = await fetcher.fetchRootCaCrl();
      return {
        tcbInfo: tcb.body,
        tcbInfoIssuerChain: tcb.issuerChain,
        qeIdentity: qe.body,
        qeIdentityIssuerChain: qe.issuerChain,
        pckCrl: crl.body,
        pckCrlIssuerChain: crl.issuerChain,
        rootCaCrl: rootCrl,
      };
    },
  };
  return fetcher;
}
