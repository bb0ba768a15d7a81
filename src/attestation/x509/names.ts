/** Naming certificates in messages and cache keys. */
import 'reflect-metadata';
import type { X509Certificate } from '@peculiar/x509';
import { sha256, toHex } from '../../util/index.ts';

const fingerprints = new WeakMap<X509Certificate, string>();

/** SHA-256 of the certificate DER (lowercase hex), memoised per certificate object. */
export function certFingerprint(cert: X509Certificate): string {
  let fp = fingerprints.get(cert);
  if (fp === undefined) {
    fp = toHex(sha256(new Uint8Array(cert.rawData)));
    fingerprints.set(cert, fp);
  }
  return fp;
}

/** The subject CN, else the whole subject DN. */
export function commonName(cert: X509Certificate): string {
  try {
    return cert.subjectName.getField('CN')[0] ?? cert.subject;
  } catch {
    return cert.subject;
  }
}
