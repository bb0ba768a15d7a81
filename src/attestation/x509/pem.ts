/**
 * Strict PEM certificate bundles: only whitespace (and trailing NULs) may sit between blocks, and
 * the base64 must be canonical (zero padding bits). Whitespace is presentation and stays free.
 */
import 'reflect-metadata';
import { X509Certificate } from '@peculiar/x509';
import { AttexError } from '../../errors/index.ts';
import { LIMITS } from './limits.ts';

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]*?)-----END CERTIFICATE-----/g;

/**
 * Split a PEM bundle into certificates, in order. Throws AttexError `code` naming `what` for
 * anything else in the text, bad base64, a certificate that does not parse, more than
 * LIMITS.pemCertificates blocks or more than LIMITS.pemChars characters (checked first, so a huge
 * bundle costs nothing).
 */
export function parsePemCertificates(text: string, code: string, what: string): X509Certificate[] {
  if (typeof text !== 'string') throw new AttexError(code, `${what}: not PEM text`);
  if (text.length > LIMITS.pemChars) throw new AttexError(code, `${what}: ${text.length} characters, more than the ${LIMITS.pemChars} allowed`);
  const trimmed = text.replace(/\0+$/, '');
  const certs: X509Certificate[] = [];
  let last = 0;
  for (const m of trimmed.matchAll(PEM_BLOCK)) {
    if (trimmed.slice(last, m.index).trim() !== '') throw new AttexError(code, `${what}: unexpected text between PEM blocks`);
    last = m.index + m[0].length;
    if (certs.length >= LIMITS.pemCertificates) throw new AttexError(code, `${what}: more than ${LIMITS.pemCertificates} certificates`);
    const b64 = m[1]!.replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0) throw new AttexError(code, `${what}: bad base64 in PEM block`);
    const der = Buffer.from(b64, 'base64');
    // Non-zero padding bits decode to the same DER: refuse them so a chain has one base64 form.
    if (der.toString('base64') !== b64) throw new AttexError(code, `${what}: non-canonical base64 in PEM block`);
    try {
      certs.push(new X509Certificate(der));
    } catch (err) {
      throw new AttexError(code, `${what}: certificate ${certs.length} is not valid X.509`, { cause: err });
    }
  }
  if (trimmed.slice(last).trim() !== '') throw new AttexError(code, `${what}: unexpected text after the last PEM block`);
  if (certs.length === 0) throw new AttexError(code, `${what}: no certificate found`);
  return certs;
}
