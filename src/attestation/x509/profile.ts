/**
 * Certificate and CRL profiles: what a vendor chain is allowed to look like, beyond "the
 * signature verifies". @peculiar/x509 verifies with whatever algorithm and parameters the
 * certificate names and ignores extensions it does not know, so these checks pin the exact
 * signature algorithm (outer and inside the signed part), refuse unknown critical extensions,
 * and hold CAs and end entities to their roles. Each check returns problem sentences (empty when
 * the profile holds); callers turn them into their own reason codes.
 */
import 'reflect-metadata';
import { BasicConstraintsExtension, KeyUsageFlags, KeyUsagesExtension, type X509Certificate, type X509Crl } from '@peculiar/x509';
import { bytesEqual } from '../../util/index.ts';
import { decodeOid, decodeSmallUnsigned, readSingleTlv, readTlvs, TAG_BIT_STRING, TAG_INTEGER, TAG_NULL, TAG_OID, TAG_SEQUENCE, type Tlv } from './der.ts';

/** AMD signs with RSASSA-PSS, SHA-384, MGF1-SHA-384, salt 48; Intel with ECDSA P-256 / SHA-256. */
export type SignatureProfile = 'rsassa-pss-sha384' | 'ecdsa-sha256';

const OID_ECDSA_SHA256 = '1.2.840.10045.4.3.2';
const OID_RSASSA_PSS = '1.2.840.113549.1.1.10';
const OID_MGF1 = '1.2.840.113549.1.1.8';
const OID_SHA384 = '2.16.840.1.101.3.4.2.2';
const OID_BASIC_CONSTRAINTS = '2.5.29.19';
const OID_KEY_USAGE = '2.5.29.15';
const OID_DELTA_CRL_INDICATOR = '2.5.29.27';

/** Critical extensions a certificate may carry: the ones these checks understand. */
const UNDERSTOOD_CRITICAL = new Set([OID_BASIC_CONSTRAINTS, OID_KEY_USAGE]);

const CODE = 'x509.profile';

class ProfileViolation extends Error {}

function must(condition: boolean, message: string): void {
  if (!condition) throw new ProfileViolation(message);
}

function children(tlv: Tlv | undefined, what: string): Tlv[] {
  must(tlv !== undefined && tlv.tag === TAG_SEQUENCE, `${what} is not a SEQUENCE`);
  return readTlvs(tlv!.value, CODE);
}

/** A hash AlgorithmIdentifier naming SHA-384 (parameters absent or NULL). */
function isSha384(tlv: Tlv | undefined): boolean {
  // An absent hash means the SHA-1 default.
  if (tlv === undefined) return false;
  const [oid, params, extra] = children(tlv, 'hash algorithm');
  if (oid?.tag !== TAG_OID || decodeOid(oid.value, CODE) !== OID_SHA384 || extra !== undefined) return false;
  return params === undefined || (params.tag === TAG_NULL && params.value.length === 0);
}

/** RSASSA-PSS-params must spell out SHA-384, MGF1 with SHA-384, salt 48 and trailer 1 (or default). */
function checkPssParams(params: Tlv | undefined): void {
  const fields = new Map<number, Tlv>();
  for (const field of children(params, 'RSASSA-PSS parameters')) {
    must(!fields.has(field.tag), 'RSASSA-PSS parameters repeat a field');
    fields.set(field.tag, field);
  }
  const explicit = (tag: number): Tlv | undefined => {
    const field = fields.get(tag);
    return field === undefined ? undefined : readSingleTlv(field.value, CODE, 'RSASSA-PSS parameter');
  };
  for (const tag of fields.keys()) must(tag >= 0xa0 && tag <= 0xa3, 'RSASSA-PSS parameters have an unknown field');
  must(isSha384(explicit(0xa0)), 'RSASSA-PSS hash is not SHA-384');
  const [mgfOid, mgfHash, mgfExtra] = children(explicit(0xa1), 'RSASSA-PSS mask generation');
  must(mgfOid?.tag === TAG_OID && decodeOid(mgfOid.value, CODE) === OID_MGF1 && mgfExtra === undefined, 'RSASSA-PSS mask generation is not MGF1');
  must(isSha384(mgfHash), 'RSASSA-PSS MGF1 hash is not SHA-384');
  const salt = explicit(0xa2);
  must(salt?.tag === TAG_INTEGER && decodeSmallUnsigned(salt.value, CODE, 'salt length') === 48, 'RSASSA-PSS salt length is not 48');
  const trailer = explicit(0xa3);
  must(trailer === undefined || (trailer.tag === TAG_INTEGER && decodeSmallUnsigned(trailer.value, CODE, 'trailer field') === 1), 'RSASSA-PSS trailer field is not 1');
}

function checkAlgorithm(algorithm: Tlv, profile: SignatureProfile): void {
  const [oid, params, extra] = children(algorithm, 'signature algorithm');
  must(oid?.tag === TAG_OID && extra === undefined, 'signature algorithm is malformed');
  const name = decodeOid(oid!.value, CODE);
  if (profile === 'ecdsa-sha256') {
    must(name === OID_ECDSA_SHA256 && params === undefined, `signature algorithm ${name} is not ECDSA with SHA-256`);
  } else {
    must(name === OID_RSASSA_PSS, `signature algorithm ${name} is not RSASSA-PSS`);
    checkPssParams(params);
  }
}

/** A DER BIT STRING that holds whole bytes: the leading unused-bits count must be 0. */
/**
 * The ECDSA signature sits outside the signed part: any second encoding of (r, s) would verify
 * the same, so only DER's one encoding is accepted: SEQUENCE { INTEGER r, INTEGER s }, both
 * positive and minimal, nothing else.
 */
function checkEcdsaSignature(bytes: Uint8Array, what: string): void {
  const [sequence, extra] = readTlvs(bytes, CODE);
  must(sequence?.tag === TAG_SEQUENCE && extra === undefined, `${what} is not one DER SEQUENCE`);
  const [r, s, more] = readTlvs(sequence!.value, CODE);
  must(more === undefined, `${what} has more than r and s`);
  for (const [n, name] of [[r, 'r'], [s, 's']] as const) {
    must(n?.tag === TAG_INTEGER && n.value.length >= 1 && n.value.length <= 67, `${what}: ${name} is not an INTEGER`);
    const v = n!.value;
    must((v[0]! & 0x80) === 0, `${what}: ${name} is negative`);
    must(!(v.length > 1 && v[0] === 0 && (v[1]! & 0x80) === 0), `${what}: ${name} is not minimally encoded`);
  }
}

function checkWholeBytes(tlv: Tlv | undefined, what: string): void {
  must(tlv !== undefined && tlv.tag === TAG_BIT_STRING && tlv.value.length >= 1, `${what} is not a BIT STRING`);
  // Signatures and keys are whole bytes; any other count is a second encoding of the same value
  // (the byte sits outside the signed part), so it would make the evidence malleable.
  must(tlv!.value[0] === 0, `${what} declares ${tlv!.value[0]} unused bits (must be 0)`);
}

/**
 * The signature AlgorithmIdentifier of a certificate or CRL must be `profile`, and the copy
 * inside the signed part must be byte-identical (RFC 5280 4.1.1.2, 5.1.1.2). The signature BIT
 * STRING, and a certificate's subject public key BIT STRING, must declare 0 unused bits.
 */
export function signatureAlgorithmProblems(der: Uint8Array, kind: 'certificate' | 'crl', profile: SignatureProfile): string[] {
  try {
    const [tbs, outer, value, extra] = children(readSingleTlv(der, CODE, kind), kind);
    must(value !== undefined && extra === undefined, `${kind} does not have three parts`);
    const tbsParts = children(tbs, `${kind} signed part`);
    // Certificate: [0] version, serial, signature. CRL: optional INTEGER version, signature.
    let i = 0;
    if (kind === 'certificate') i = tbsParts[0]?.tag === 0xa0 ? 2 : 1;
    else if (tbsParts[0]?.tag === TAG_INTEGER) i = 1;
    const inner = tbsParts[i];
    must(inner !== undefined && bytesEqual(inner.encoded, outer!.encoded), `${kind} names different signature algorithms inside and outside the signed part`);
    checkAlgorithm(outer!, profile);
    checkWholeBytes(value, `${kind} signature`);
    if (profile === 'ecdsa-sha256') checkEcdsaSignature(value!.value.subarray(1), `${kind} signature`);
    if (kind === 'certificate') {
      // After the signature algorithm: issuer, validity, subject, subjectPublicKeyInfo.
      const [, publicKey, keyExtra] = children(tbsParts[i + 4], 'subjectPublicKeyInfo');
      must(keyExtra === undefined, 'subjectPublicKeyInfo has more than two parts');
      checkWholeBytes(publicKey, 'subject public key');
    }
    return [];
  } catch (err) {
    return [err instanceof Error ? err.message : String(err)];
  }
}

function extensionProblems(extensions: ReadonlyArray<{ type: string; critical: boolean }>, understood: ReadonlySet<string>): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const ext of extensions) {
    if (seen.has(ext.type)) problems.push(`extension ${ext.type} appears twice`);
    seen.add(ext.type);
    if (ext.critical && !understood.has(ext.type)) problems.push(`unknown critical extension ${ext.type}`);
  }
  return problems;
}

function basicConstraints(cert: X509Certificate): BasicConstraintsExtension | null {
  return cert.getExtension(BasicConstraintsExtension);
}

function keyUsage(cert: X509Certificate): KeyUsagesExtension | null {
  return cert.getExtension(KeyUsagesExtension);
}

/**
 * A certificate in a vendor chain: the exact signature algorithm, no unknown critical extension,
 * and its role: a CA must say CA:TRUE and, when it has keyUsage, keyCertSign; an end entity must
 * not be a CA and, when it has keyUsage, must allow digitalSignature.
 */
export function certificateProblems(cert: X509Certificate, profile: SignatureProfile, role: 'ca' | 'end-entity'): string[] {
  const problems = signatureAlgorithmProblems(new Uint8Array(cert.rawData), 'certificate', profile);
  try {
    problems.push(...extensionProblems(cert.extensions, UNDERSTOOD_CRITICAL));
    const bc = basicConstraints(cert);
    const ku = keyUsage(cert);
    if (role === 'ca') {
      if (bc === null || !bc.ca) problems.push('it is not a CA (basicConstraints CA:TRUE missing)');
      if (ku !== null && (ku.usages & KeyUsageFlags.keyCertSign) === 0) problems.push('its keyUsage does not allow keyCertSign');
    } else {
      if (bc !== null && bc.ca) problems.push('it is a CA certificate, not an end entity');
      if (ku !== null && (ku.usages & KeyUsageFlags.digitalSignature) === 0) problems.push('its keyUsage does not allow digitalSignature');
    }
  } catch (err) {
    problems.push(`unreadable extensions: ${err instanceof Error ? err.message : String(err)}`);
  }
  return problems;
}

/**
 * A CRL: the exact signature algorithm, a nextUpdate (without one it would be current forever),
 * not a delta CRL (it lists only changes, so a missing serial proves nothing), and no critical
 * extension at all (none changes how a complete CRL is read, and a partial one must not pass).
 */
export function crlProblems(crl: X509Crl, profile: SignatureProfile): string[] {
  const problems = signatureAlgorithmProblems(new Uint8Array(crl.rawData), 'crl', profile);
  if (crl.nextUpdate === undefined) problems.push('it has no nextUpdate');
  try {
    const extensions = crl.extensions;
    if (extensions.some((e) => e.type === OID_DELTA_CRL_INDICATOR)) problems.push('it is a delta CRL');
    problems.push(...extensionProblems(extensions, new Set()).filter((p) => !p.includes(OID_DELTA_CRL_INDICATOR)));
  } catch (err) {
    problems.push(`unreadable extensions: ${err instanceof Error ? err.message : String(err)}`);
  }
  return problems;
}
