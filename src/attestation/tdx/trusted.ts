/**
 * The time-independent, cacheable half of TDX verification: PCK chain anchoring, collateral
 * signatures and CRL signatures. Results are keyed by SHA-256 of the exact input bytes and by
 * the trust anchors, so a cached answer is the answer those bytes would get again. Everything
 * that depends on `now` or on the quote is checked per call by the verifier.
 */
import 'reflect-metadata';
import { X509Crl, type X509Certificate } from '@peculiar/x509';
import { AttexError, type Reason } from '../../errors/index.ts';
import { sha256, toHex } from '../../util/index.ts';
import type { IntelRoot, TrustStore } from '../types.ts';
import { assertDerSequence, certFingerprint, certificateProblems, commonName, crlProblems, LIMITS, LruCache, parsePemCertificates } from '../x509/index.ts';
import { findIntelAnchor, isSignedBy, nodeKeyOf, verifyP256 } from './certs.ts';
import { parseQeIdentity, parseTdxTcbInfo, type QeIdentity, type TdxTcbInfo } from './collateral.ts';
import { parsePckChain, type PckChain } from './pck.ts';
import { extractSignedJson } from './signed-json.ts';

export interface AnchoredChain {
  /** Index into trust.intel of the root that issued the PCK CA; null when none did. */
  readonly anchorIndex: number | null;
  readonly problems: readonly Reason[];
}

export interface SignedCollateral<T> {
  readonly value: T;
  readonly signer: X509Certificate;
  readonly anchorIndex: number;
}

export interface CheckedCrl {
  readonly issuer: string;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date;
  readonly revoked: ReadonlySet<string>;
  readonly signatureOk: boolean;
}

type Failure = { readonly failure: Reason };
const isFailure = (v: unknown): v is Failure => typeof v === 'object' && v !== null && 'failure' in v;

function reasonOf(err: unknown, fallbackCode: string): Reason {
  if (err instanceof AttexError) return { code: err.code, message: err.message };
  return { code: fallbackCode, message: err instanceof Error ? err.message : String(err) };
}

/** Serial numbers as lowercase hex without leading zeros, so CRL and certificate forms compare. */
export function normaliseSerial(hex: string): string {
  return hex.toLowerCase().replace(/^0+(?=.)/, '');
}

/** Identity of a trust store's Intel anchors (and their simulated flags) for cache keys. */
export function anchorsKey(trust: TrustStore): string {
  return trust.intel.map((r) => `${certFingerprint(r.root)}${r.simulated ? 's' : 'r'}`).join(',');
}

function anchorIndexOf(trust: TrustStore, anchor: IntelRoot | null): number | null {
  if (anchor === null) return null;
  const i = trust.intel.indexOf(anchor);
  return i < 0 ? null : i;
}

/** Byte-identical certificates (DER). */
export function sameCertificate(a: X509Certificate, b: X509Certificate): boolean {
  return Buffer.from(a.rawData).equals(Buffer.from(b.rawData));
}

/**
 * A copy of the root inside a chain is never trusted by itself, and must be exactly the trusted
 * root: any other bytes (even an equivalent re-encoding) would give the same evidence several forms.
 */
export function rootCopyProblem(copy: X509Certificate, root: X509Certificate, where: string): Reason | null {
  if (sameCertificate(copy, root)) return null;
  return { code: 'tdx.root-copy', message: `the root certificate in ${where} is not byte-identical to the trusted Intel root ${commonName(root)}` };
}

export class TrustedMaterialCache {
  readonly #chains: LruCache<PckChain | Failure>;
  readonly #anchored: LruCache<AnchoredChain>;
  readonly #signed: LruCache<SignedCollateral<TdxTcbInfo | QeIdentity> | Failure>;
  readonly #crls: LruCache<CheckedCrl | Failure>;
  readonly #pems: LruCache<X509Certificate[] | Failure>;

  constructor(size: number) {
    this.#chains = new LruCache(size);
    this.#anchored = new LruCache(size);
    this.#signed = new LruCache(size);
    this.#crls = new LruCache(size);
    this.#pems = new LruCache(size);
  }

  /** The parsed PCK chain of a quote (throws AttexError tdx.pck-chain / tdx.pck-extension). */
  pckChain(pem: Uint8Array): { key: string; chain: PckChain } {
    const key = toHex(sha256(pem));
    let entry = this.#chains.get(key);
    if (entry === undefined) {
      try {
        entry = parsePckChain(pem);
      } catch (err) {
        entry = { failure: reasonOf(err, 'tdx.pck-chain') };
      }
      this.#chains.set(key, entry);
    }
    if (isFailure(entry)) throw new AttexError(entry.failure.code, entry.failure.message);
    return { key, chain: entry };
  }

  /** Signatures of PCK -> CA -> trusted Intel root (validity dates are checked per call). */
  async anchorPckChain(chainKey: string, chain: PckChain, trust: TrustStore, trustKey: string): Promise<AnchoredChain> {
    const key = `${chainKey}|${trustKey}`;
    const cached = this.#anchored.get(key);
    if (cached !== undefined) return cached;
    const problems: Reason[] = [];
    const fail = (message: string) => problems.push({ code: 'tdx.pck-chain', message });
    if (!(await isSignedBy(chain.pck, chain.intermediate))) fail('the PCK certificate is not signed by the CA that follows it in the chain');
    for (const problem of certificateProblems(chain.pck, 'ecdsa-sha256', 'end-entity')) fail(`PCK certificate: ${problem}`);
    for (const problem of certificateProblems(chain.intermediate, 'ecdsa-sha256', 'ca')) fail(`${commonName(chain.intermediate)}: ${problem}`);
    const anchor = await findIntelAnchor(chain.intermediate, trust);
    if (anchor === null) fail(`${commonName(chain.intermediate)} is not issued by a trusted Intel root`);
    else if (chain.embeddedRoot !== null) {
      const problem = rootCopyProblem(chain.embeddedRoot, anchor.root, 'the quote\'s PCK chain');
      if (problem !== null) problems.push(problem);
    }
    const result: AnchoredChain = { anchorIndex: anchorIndexOf(trust, anchor), problems };
    this.#anchored.set(key, result);
    return result;
  }

  /**
   * A PCS TCB info or QE identity body with its issuer chain: signature over the exact inner
   * bytes, signer chained to a trusted root, then the typed content. Throws AttexError.
   */
  async signedCollateral(kind: 'tcbInfo', body: Uint8Array, chainPem: string | undefined, trust: TrustStore, trustKey: string): Promise<SignedCollateral<TdxTcbInfo>>;
  async signedCollateral(kind: 'qeIdentity', body: Uint8Array, chainPem: string | undefined, trust: TrustStore, trustKey: string): Promise<SignedCollateral<QeIdentity>>;
  async signedCollateral(kind: 'tcbInfo' | 'qeIdentity', body: Uint8Array, chainPem: string | undefined, trust: TrustStore, trustKey: string): Promise<SignedCollateral<TdxTcbInfo | QeIdentity>> {
    const what = kind === 'tcbInfo' ? 'TCB info' : 'QE identity';
    if (!(body instanceof Uint8Array)) throw new AttexError('tdx.collateral.malformed', `${what} must be bytes`);
    if (typeof chainPem !== 'string') throw new AttexError('tdx.collateral.malformed', `${what} was given without its issuer chain`);
    if (body.length > LIMITS.collateralJsonBytes) throw new AttexError('tdx.too-large', `${what} is ${body.length} bytes, more than the ${LIMITS.collateralJsonBytes} allowed`);
    if (chainPem.length > LIMITS.pemChars) throw new AttexError('tdx.too-large', `${what} issuer chain is ${chainPem.length} characters, more than the ${LIMITS.pemChars} allowed`);
    const key = `${kind}|${toHex(sha256(body))}|${toHex(sha256(chainPem))}|${trustKey}`;
    let entry = this.#signed.get(key);
    if (entry === undefined) {
      try {
        entry = await this.#loadSigned(kind, what, body, chainPem, trust);
      } catch (err) {
        entry = { failure: reasonOf(err, 'tdx.collateral.malformed') };
      }
      this.#signed.set(key, entry);
    }
    if (isFailure(entry)) throw new AttexError(entry.failure.code, entry.failure.message);
    return entry;
  }

  async #loadSigned(kind: 'tcbInfo' | 'qeIdentity', what: string, body: Uint8Array, chainPem: string, trust: TrustStore): Promise<SignedCollateral<TdxTcbInfo | QeIdentity>> {
    const signed = extractSignedJson(body, kind === 'tcbInfo' ? 'tcbInfo' : 'enclaveIdentity', what);
    const certs = parsePemCertificates(chainPem, 'tdx.collateral.chain', `${what} issuer chain`);
    if (certs.length > 2) throw new AttexError('tdx.collateral.chain', `${what} issuer chain has ${certs.length} certificates, expected the signer and optionally the root`);
    const signer = certs[0]!;
    const anchor = await findIntelAnchor(signer, trust);
    if (anchor === null) throw new AttexError('tdx.collateral.chain', `${what} signer ${commonName(signer)} is not issued by a trusted Intel root`);
    const rootProblem = certs[1] === undefined ? null : rootCopyProblem(certs[1], anchor.root, `the ${what} issuer chain`);
    if (rootProblem !== null) throw new AttexError(rootProblem.code, rootProblem.message);
    // Only an end-entity signing certificate may sign collateral, never a CA that the root also issued.
    const problems = certificateProblems(signer, 'ecdsa-sha256', 'end-entity');
    if (problems.length > 0) throw new AttexError('tdx.collateral.chain', `${what} signer ${commonName(signer)}: ${problems.join('; ')}`);
    let ok = false;
    try {
      ok = verifyP256(nodeKeyOf(signer), signed.signedBytes, signed.signature);
    } catch {
      ok = false;
    }
    if (!ok) throw new AttexError('tdx.collateral.signature', `${what} signature does not verify under ${commonName(signer)}`);
    const value = kind === 'tcbInfo' ? parseTdxTcbInfo(signed.value) : parseQeIdentity(signed.value);
    return { value, signer, anchorIndex: anchorIndexOf(trust, anchor)! };
  }

  /**
   * Problems of the PCK CRL issuer chain: it may only repeat what the quote already proved, the
   * PCK CA that issued the PCK (byte-identical) and optionally the trusted root (byte-identical).
   */
  crlIssuerChainProblems(chainPem: string, chain: PckChain, root: X509Certificate): Reason[] {
    const what = 'PCK CRL issuer chain';
    if (typeof chainPem !== 'string') return [{ code: 'tdx.collateral.malformed', message: `${what} must be PEM text` }];
    if (chainPem.length > LIMITS.pemChars) return [{ code: 'tdx.too-large', message: `${what} is ${chainPem.length} characters, more than the ${LIMITS.pemChars} allowed` }];
    const key = toHex(sha256(chainPem));
    let entry = this.#pems.get(key);
    if (entry === undefined) {
      try {
        entry = parsePemCertificates(chainPem, 'tdx.crl.issuer-chain', what);
      } catch (err) {
        entry = { failure: reasonOf(err, 'tdx.crl.issuer-chain') };
      }
      this.#pems.set(key, entry);
    }
    if (isFailure(entry)) return [entry.failure];
    const [ca, rootCopy, ...extra] = entry;
    if (extra.length > 0) return [{ code: 'tdx.crl.issuer-chain', message: `${what} has ${entry.length} certificates, expected the PCK CA and optionally the root` }];
    if (!sameCertificate(ca!, chain.intermediate)) {
      return [{ code: 'tdx.crl.issuer-chain', message: `${what} does not start with the PCK CA certificate of the quote (${commonName(chain.intermediate)})` }];
    }
    const problem = rootCopy === undefined ? null : rootCopyProblem(rootCopy, root, `the ${what}`);
    return problem === null ? [] : [problem];
  }

  /** A DER CRL and whether `issuer` signed it. Throws AttexError `tdx.crl` when unreadable. */
  async crl(der: Uint8Array, issuer: X509Certificate, what: string): Promise<CheckedCrl> {
    if (!(der instanceof Uint8Array)) throw new AttexError('tdx.crl', `${what} must be DER bytes`);
    if (der.length > LIMITS.crlBytes) throw new AttexError('tdx.too-large', `${what} is ${der.length} bytes, more than the ${LIMITS.crlBytes} allowed`);
    const key = `${toHex(sha256(der))}|${certFingerprint(issuer)}`;
    let entry = this.#crls.get(key);
    if (entry === undefined) {
      try {
        entry = await loadCrl(der, issuer, what);
      } catch (err) {
        entry = { failure: reasonOf(err, 'tdx.crl') };
      }
      this.#crls.set(key, entry);
    }
    if (isFailure(entry)) throw new AttexError(entry.failure.code, entry.failure.message);
    return entry;
  }
}

async function loadCrl(der: Uint8Array, issuer: X509Certificate, what: string): Promise<CheckedCrl> {
  let crl: X509Crl;
  try {
    assertDerSequence(der, 'tdx.crl', what);
    crl = new X509Crl(der, { berOptions: { maxNodes: LIMITS.crlNodes } });
  } catch (err) {
    throw new AttexError('tdx.crl', `${what} is not a DER CRL: ${(err as Error).message}`, { cause: err });
  }
  const problems = crlProblems(crl, 'ecdsa-sha256');
  const nextUpdate = crl.nextUpdate;
  if (problems.length > 0 || nextUpdate === undefined) throw new AttexError('tdx.crl', `${what}: ${problems.join('; ')}`);
  let signatureOk = false;
  if (crl.issuer === issuer.subject) {
    try {
      signatureOk = await crl.verify({ publicKey: issuer.publicKey });
    } catch {
      signatureOk = false;
    }
  }
  const revoked = new Set(crl.entries.map((e) => normaliseSerial(e.serialNumber)));
  return { issuer: crl.issuer, thisUpdate: crl.thisUpdate, nextUpdate, revoked, signatureOk };
}
