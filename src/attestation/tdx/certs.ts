/**
 * Certificate and key helpers of the PCK chain and the collateral checks: issuer/signature
 * checks with @peculiar/x509, trust-anchor lookup, validity at `now`, and raw P-256 ECDSA (r||s)
 * verification with node:crypto (the per-quote hot path). PEM, DER and profile checks live in
 * ../x509, shared with the SNP verifier.
 */
import { createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import 'reflect-metadata';
import type { X509Certificate } from '@peculiar/x509';
import { commonName } from '../x509/index.ts';
import type { IntelRoot, TrustStore } from '../types.ts';

/** True when `issuer` issued `cert`: names chain and the signature verifies under issuer's key. */
export async function isSignedBy(cert: X509Certificate, issuer: X509Certificate): Promise<boolean> {
  if (cert.issuer !== issuer.subject) return false;
  try {
    return await cert.verify({ publicKey: issuer.publicKey, signatureOnly: true });
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
  // Written to fail closed: an invalid `now` (NaN) is inside no window.
  if (!(t >= cert.notBefore.getTime())) return `${role} (${commonName(cert)}) is not valid before ${cert.notBefore.toISOString()}`;
  if (!(t <= cert.notAfter.getTime())) return `${role} (${commonName(cert)}) expired at ${cert.notAfter.toISOString()}`;
  return null;
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
