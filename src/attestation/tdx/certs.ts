/**
 * Certificate and key helpers shared by the PCK chain and the collateral checks:
 * strict PEM splitting, issuer/signature checks with @peculiar/x509, trust-anchor lookup,
 * and raw P-256 ECDSA (r||s) verification with node:crypto (the per-quote hot path).
 */
import { createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import 'reflect-metadata';
import { BasicConstraintsExtension, X509Certificate } from '@peculiar/x509';
import { AttexError } from '../../errors/index.ts';
import type { IntelRoot, TrustStore } from '../types.ts';

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]*?)-----END CERTIFICATE-----/g;
const MAX_CERTS = 8;

/** Split a PEM bundle into certificates; only whitespace (and trailing NULs) may sit between blocks. */
export function parsePemCertificates(text: string, code: string, what: string): X509Certificate[] {
  const trimmed = text.replace(/\0+$/, '');
  const certs: X509Certificate[] = [];
  let last = 0;
  for (const m of trimmed.matchAll(PEM_BLOCK)) {
    if (trimmed.slice(last, m.index).trim() !== '') throw new AttexError(code, `${what}: unexpected text between PEM blocks`);
    last = m.index + m[0].length;
    if (certs.length >= MAX_CERTS) throw new AttexError(code, `${what}: more than ${MAX_CERTS} certificates`);
    const b64 = m[1]!.replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0) throw new AttexError(code, `${what}: bad base64 in PEM block`);
    try {
      certs.push(new X509Certificate(Buffer.from(b64, 'base64')));
    } catch (err) {
      throw new AttexError(code, `${what}: certificate ${certs.length} is not valid X.509`, { cause: err });
    }
  }
  if (trimmed.slice(last).trim() !== '') throw new AttexError(code, `${what}: unexpected text after the last PEM block`);
  if (certs.length === 0) throw new AttexError(code, `${what}: no certificate found`);
  return certs;
}

export function commonName(cert: X509Certificate): string {
  try {
    return cert.subjectName.getField('CN')[0] ?? cert.subject;
  } catch {
    return cert.subject;
  }
}

/** True when `issuer` issued `cert`: names chain and the signature verifies under issuer's key. */
export async function isSignedBy(cert: X509Certificate, issuer: X509Certificate): Promise<boolean> {
  if (cert.issuer !== issuer.subject) return false;
  try {
    return await cert.verify({ publicKey: issuer.publicKey, signatureOnly: true });
  } catch {
    return false;
  }
}

export function isCa(cert: X509Certificate): boolean {
  try {
    const bc = cert.getExtension(BasicConstraintsExtension);
    return bc !== null && bc.ca;
  } catch {
    return false;
  }
}

/** The trusted Intel root that issued `cert` (real roots are tried before simulated ones). */
export async function findIntelAnchor(cert: X509Certificate, trust: TrustStore): Promise<IntelRoot | null> {
  const ordered = [...trust.intel].sort((a, b) => Number(a.simulated) - Number(b.simulated));
  for (const anchor of ordered) {
    if (await isSignedBy(cert, anchor.root)) return anchor;
  }
  return null;
}

/** A problem sentence when `cert` is not valid at `now`, else null. */
export function validityProblem(cert: X509Certificate, now: Date, role: string): string | null {
  const t = now.getTime();
  if (t < cert.notBefore.getTime()) return `${role} (${commonName(cert)}) is not valid before ${cert.notBefore.toISOString()}`;
  if (t > cert.notAfter.getTime()) return `${role} (${commonName(cert)}) expired at ${cert.notAfter.toISOString()}`;
  return null;
}

export function sameCertificate(a: X509Certificate, b: X509Certificate): boolean {
  return Buffer.from(a.rawData).equals(Buffer.from(b.rawData));
}

/** node:crypto key for a certificate's subject public key (SPKI DER). */
export function nodeKeyOf(cert: X509Certificate): KeyObject {
  return createPublicKey({ key: Buffer.from(cert.publicKey.rawData), format: 'der', type: 'spki' });
}

/** node:crypto key for a raw P-256 point x||y (64 bytes); throws if it is not on the curve. */
export function p256KeyFromRaw(xy: Uint8Array): KeyObject {
  if (xy.length !== 64) throw new RangeError('P-256 public key must be 64 bytes (x||y)');
  const b64u = (b: Uint8Array) => Buffer.from(b).toString('base64url');
  return createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: b64u(xy.subarray(0, 32)), y: b64u(xy.subarray(32)) }, format: 'jwk' });
}

/** ECDSA P-256 / SHA-256 verification of a raw r||s signature; never throws. */
export function verifyP256(key: KeyObject, data: Uint8Array, signatureRs: Uint8Array): boolean {
  if (signatureRs.length !== 64) return false;
  try {
    return cryptoVerify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, signatureRs);
  } catch {
    return false;
  }
}
