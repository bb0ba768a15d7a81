/**
 * The evidence package: the JSON form in which evidence travels (executor -> broker, bundles,
 * files on disk). Decoding is strict because the package is attacker-controlled: unknown keys,
 * non-canonical base64 and oversized items are refused with an AttexError `evidence.malformed`
 * whose message names the offending key.
 */
import { AttexError } from '../../errors/index.ts';
import type { EvidenceKind, TdxCollateral } from '../types.ts';

export interface EvidencePackageCollateral {
  /** base64 of the raw PCS TCB info body. */
  tcbInfo?: string;
  /** PEM. */
  tcbInfoIssuerChain?: string;
  /** base64 of the raw PCS QE identity body. */
  qeIdentity?: string;
  qeIdentityIssuerChain?: string;
  /** base64 DER. */
  pckCrl?: string;
  pckCrlIssuerChain?: string;
  /** base64 DER. */
  rootCaCrl?: string;
}

export interface EvidencePackage {
  kind: EvidenceKind;
  /** base64 of the report, HCL report or quote. */
  evidence: string;
  /** base64 DER: the VCEK or VLEK first; SNP kinds only. */
  certs?: string[];
  /** base64 DER AMD CRLs (ARK- or ASK/ASVK-signed, as KDS serves them); SNP kinds only. */
  crls?: string[];
  /** Intel PCS collateral; TDX only. */
  collateral?: EvidencePackageCollateral;
}

const KiB = 1024;
/** Decoded-size limits. Real evidence is far smaller; the caps bound work done on hostile input. */
export const PACKAGE_LIMITS = {
  evidenceBytes: 64 * KiB,
  certs: 4,
  certBytes: 16 * KiB,
  crls: 8,
  /** TCB info / QE identity bodies (real ones are a few KiB). */
  collateralJsonBytes: 256 * KiB,
  crlBytes: 512 * KiB,
  issuerChainChars: 16 * KiB,
} as const;

const KINDS: readonly EvidenceKind[] = ['snp', 'azure-hcl-snp', 'tdx'];
const TOP_KEYS = new Set(['kind', 'evidence', 'certs', 'crls', 'collateral']);
const BASE64_COLLATERAL = { tcbInfo: 'collateralJsonBytes', qeIdentity: 'collateralJsonBytes', pckCrl: 'crlBytes', rootCaCrl: 'crlBytes' } as const;
const PEM_COLLATERAL = ['tcbInfoIssuerChain', 'qeIdentityIssuerChain', 'pckCrlIssuerChain'] as const;
const COLLATERAL_KEYS = new Set<string>([...Object.keys(BASE64_COLLATERAL), ...PEM_COLLATERAL]);
const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
/** Printable ASCII plus CR/LF/TAB: what a PEM chain may contain. */
const PEM_TEXT_RE = /^[\t\n\r\x20-\x7e]*$/;

function malformed(key: string, message: string): AttexError {
  return new AttexError('evidence.malformed', `evidence package: ${key}: ${message}`, { details: { key } });
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.getPrototypeOf(value) === Object.prototype;
}

/**
 * Strict base64 (RFC 4648 section 4, padded): no whitespace, no URL alphabet, and the unused
 * bits of the last character must be zero, so each byte string has exactly one encoding.
 */
export function decodeBase64Strict(text: string, key: string, maxBytes: number): Uint8Array {
  // Check the length before the regex so a huge string costs nothing.
  if (Math.floor(text.length / 4) * 3 > maxBytes + 2) throw malformed(key, `larger than ${maxBytes} bytes`);
  if (!BASE64_RE.test(text)) throw malformed(key, 'not canonical base64');
  const bytes = new Uint8Array(Buffer.from(text, 'base64'));
  if (bytes.length > maxBytes) throw malformed(key, `larger than ${maxBytes} bytes`);
  if (Buffer.from(bytes).toString('base64') !== text) throw malformed(key, 'not canonical base64');
  return bytes;
}

export function encodeBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

function rejectUnknownKeys(obj: Record<string, unknown>, allowed: ReadonlySet<string>, prefix: string): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.has(key)) throw malformed(`${prefix}${key}`, 'unknown key');
  }
}

function decodeCollateral(value: unknown): EvidencePackageCollateral {
  if (!isPlainObject(value)) throw malformed('collateral', 'expected an object');
  rejectUnknownKeys(value, COLLATERAL_KEYS, 'collateral.');
  const out: EvidencePackageCollateral = {};
  for (const [key, limit] of Object.entries(BASE64_COLLATERAL) as [keyof typeof BASE64_COLLATERAL, keyof typeof PACKAGE_LIMITS][]) {
    const item = value[key];
    if (item === undefined) continue;
    if (typeof item !== 'string' || item.length === 0) throw malformed(`collateral.${key}`, 'expected a non-empty base64 string');
    decodeBase64Strict(item, `collateral.${key}`, PACKAGE_LIMITS[limit]);
    out[key] = item;
  }
  for (const key of PEM_COLLATERAL) {
    const item = value[key];
    if (item === undefined) continue;
    if (typeof item !== 'string' || item.length === 0) throw malformed(`collateral.${key}`, 'expected a non-empty PEM string');
    if (item.length > PACKAGE_LIMITS.issuerChainChars) throw malformed(`collateral.${key}`, `longer than ${PACKAGE_LIMITS.issuerChainChars} characters`);
    if (!PEM_TEXT_RE.test(item) || !item.includes('-----BEGIN CERTIFICATE-----')) throw malformed(`collateral.${key}`, 'not a PEM certificate chain');
    out[key] = item;
  }
  return out;
}

/** Validate an untrusted, already JSON-parsed value as an EvidencePackage. */
export function decodeEvidencePackage(json: unknown): EvidencePackage {
  if (!isPlainObject(json)) throw malformed('(root)', 'expected a JSON object');
  rejectUnknownKeys(json, TOP_KEYS, '');
  const { kind, evidence, certs, crls, collateral } = json;
  if (typeof kind !== 'string' || !(KINDS as readonly string[]).includes(kind)) {
    throw malformed('kind', `expected one of ${KINDS.join(', ')}`);
  }
  if (typeof evidence !== 'string' || evidence.length === 0) throw malformed('evidence', 'expected a non-empty base64 string');
  decodeBase64Strict(evidence, 'evidence', PACKAGE_LIMITS.evidenceBytes);
  const pkg: EvidencePackage = { kind: kind as EvidenceKind, evidence };
  if (certs !== undefined) {
    if (kind === 'tdx') throw malformed('certs', 'not used for tdx (the PCK chain is inside the quote)');
    if (!Array.isArray(certs)) throw malformed('certs', 'expected an array');
    if (certs.length > PACKAGE_LIMITS.certs) throw malformed('certs', `more than ${PACKAGE_LIMITS.certs} certificates`);
    certs.forEach((cert: unknown, i) => {
      if (typeof cert !== 'string' || cert.length === 0) throw malformed(`certs[${i}]`, 'expected a non-empty base64 string');
      decodeBase64Strict(cert, `certs[${i}]`, PACKAGE_LIMITS.certBytes);
    });
    pkg.certs = [...(certs as string[])];
  }
  if (crls !== undefined) {
    if (kind === 'tdx') throw malformed('crls', 'not used for tdx (Intel CRLs travel in collateral)');
    if (!Array.isArray(crls)) throw malformed('crls', 'expected an array');
    if (crls.length > PACKAGE_LIMITS.crls) throw malformed('crls', `more than ${PACKAGE_LIMITS.crls} CRLs`);
    crls.forEach((crl: unknown, i) => {
      if (typeof crl !== 'string' || crl.length === 0) throw malformed(`crls[${i}]`, 'expected a non-empty base64 string');
      decodeBase64Strict(crl, `crls[${i}]`, PACKAGE_LIMITS.crlBytes);
    });
    pkg.crls = [...(crls as string[])];
  }
  if (collateral !== undefined) {
    if (kind !== 'tdx') throw malformed('collateral', `not used for ${kind}`);
    pkg.collateral = decodeCollateral(collateral);
  }
  return pkg;
}

/** Parse JSON text (or UTF-8 bytes) and decode it as an EvidencePackage. */
export function parseEvidencePackage(text: string | Uint8Array): EvidencePackage {
  const maxChars = 2 * 1024 * KiB;
  if (typeof text !== 'string' && !(text instanceof Uint8Array)) throw malformed('(root)', 'an evidence package is JSON text or its bytes');
  const str = typeof text === 'string' ? text : new TextDecoder('utf-8', { fatal: false }).decode(text);
  if (str.length > maxChars) throw malformed('(root)', `larger than ${maxChars} characters`);
  let value: unknown;
  try {
    value = JSON.parse(str);
  } catch (err) {
    throw malformed('(root)', `not JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  return decodeEvidencePackage(value);
}

/** Serialise a package as JSON text with a fixed key order, after validating it. */
export function encodeEvidencePackage(pkg: EvidencePackage): string {
  const valid = decodeEvidencePackage(JSON.parse(JSON.stringify(pkg)) as unknown);
  const ordered: Record<string, unknown> = { kind: valid.kind, evidence: valid.evidence };
  if (valid.certs !== undefined) ordered['certs'] = valid.certs;
  if (valid.crls !== undefined) ordered['crls'] = valid.crls;
  if (valid.collateral !== undefined) {
    const c: Record<string, string> = {};
    for (const key of [...Object.keys(BASE64_COLLATERAL), ...PEM_COLLATERAL] as (keyof EvidencePackageCollateral)[]) {
      const item = valid.collateral[key];
      if (item !== undefined) c[key] = item;
    }
    ordered['collateral'] = c;
  }
  return JSON.stringify(ordered);
}

/** Build a package from bytes (for providers, the simulator and the CLI). Validates the result. */
export function makeEvidencePackage(input: {
  kind: EvidenceKind;
  evidence: Uint8Array;
  certs?: readonly Uint8Array[];
  crls?: readonly Uint8Array[];
  collateral?: TdxCollateral;
}): EvidencePackage {
  const pkg: EvidencePackage = { kind: input.kind, evidence: encodeBase64(input.evidence) };
  if (input.certs !== undefined && input.certs.length > 0) pkg.certs = input.certs.map(encodeBase64);
  if (input.crls !== undefined && input.crls.length > 0) pkg.crls = input.crls.map(encodeBase64);
  if (input.collateral !== undefined) {
    const c = input.collateral;
    const out: EvidencePackageCollateral = {};
    if (c.tcbInfo) out.tcbInfo = encodeBase64(c.tcbInfo);
    if (c.tcbInfoIssuerChain) out.tcbInfoIssuerChain = c.tcbInfoIssuerChain;
    if (c.qeIdentity) out.qeIdentity = encodeBase64(c.qeIdentity);
    if (c.qeIdentityIssuerChain) out.qeIdentityIssuerChain = c.qeIdentityIssuerChain;
    if (c.pckCrl) out.pckCrl = encodeBase64(c.pckCrl);
    if (c.pckCrlIssuerChain) out.pckCrlIssuerChain = c.pckCrlIssuerChain;
    if (c.rootCaCrl) out.rootCaCrl = encodeBase64(c.rootCaCrl);
    if (Object.keys(out).length > 0) pkg.collateral = out;
  }
  return decodeEvidencePackage(pkg);
}

/** The package's collateral as the bytes the TDX verifier takes. Assumes a decoded package. */
export function packageCollateral(pkg: EvidencePackage): TdxCollateral | undefined {
  const c = pkg.collateral;
  if (c === undefined) return undefined;
  const bytes = (b64: string | undefined) => (b64 === undefined ? undefined : new Uint8Array(Buffer.from(b64, 'base64')));
  return {
    ...(c.tcbInfo !== undefined && { tcbInfo: bytes(c.tcbInfo) }),
    ...(c.tcbInfoIssuerChain !== undefined && { tcbInfoIssuerChain: c.tcbInfoIssuerChain }),
    ...(c.qeIdentity !== undefined && { qeIdentity: bytes(c.qeIdentity) }),
    ...(c.qeIdentityIssuerChain !== undefined && { qeIdentityIssuerChain: c.qeIdentityIssuerChain }),
    ...(c.pckCrl !== undefined && { pckCrl: bytes(c.pckCrl) }),
    ...(c.pckCrlIssuerChain !== undefined && { pckCrlIssuerChain: c.pckCrlIssuerChain }),
    ...(c.rootCaCrl !== undefined && { rootCaCrl: bytes(c.rootCaCrl) }),
  };
}
