/**
 * One evidence, one byte form: targeted cases for each way the same real evidence could once be
 * presented in several byte forms and still verify (see fuzz.test.ts for the random search), and
 * the stability of verification results against the bytes no signature covers.
 */
import 'reflect-metadata';
import { X509Certificate, X509Crl } from '@peculiar/x509';
import { describe, expect, it } from 'vitest';
import { loadTrustStore, makeEvidencePackage, verifyEvidence } from '../../src/attestation/index.ts';
import { verifyTdx } from '../../src/attestation/tdx/index.ts';
import type { TdxCollateral, VerificationResult } from '../../src/attestation/types.ts';
import { parseVekCert } from '../../src/attestation/snp/cert.ts';
import { assertDerSequence, certificateProblems, crlProblems, parsePemCertificates, readTlvs } from '../../src/attestation/x509/index.ts';
import { sha384, toHex } from '../../src/util/index.ts';
import { loadVectors } from './evidence/vectors.ts';
import { intelRoot, trustStore, vector } from './tdx/vectors.ts';

const codes = (r: VerificationResult) => r.reasons.map((x) => x.code);
const PEM_BLOCK = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g;

/** Offset of the unused-bits byte of the outer signature BIT STRING, and of the SPKI's (certificates). */
function bitStringOffsets(der: Uint8Array): { signature: number; publicKey: number } {
  const tlv = (at: number) => {
    const first = der[at + 1]!;
    const n = first & 0x80 ? first & 0x7f : 0;
    let len = n === 0 ? first : 0;
    for (let i = 0; i < n; i++) len = len * 256 + der[at + 2 + i]!;
    return { content: at + 2 + n, end: at + 2 + n + len };
  };
  const tbs = tlv(tlv(0).content);
  const signature = tlv(tlv(tbs.end).end).content;
  // TBS: [0] version, serial, signature, issuer, validity, subject, subjectPublicKeyInfo.
  let at = tbs.content;
  for (let i = 0; i < 6; i++) at = tlv(at).end;
  const spki = tlv(at);
  return { signature, publicKey: tlv(tlv(spki.content).end).content };
}

/** A DER TLV with a minimal length. */
function tlv(tag: number, ...content: Uint8Array[]): Uint8Array {
  const body = Buffer.concat(content);
  const n = body.length;
  const len = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : n < 0x10000 ? [0x82, n >> 8, n & 0xff] : [0x83, n >> 16, (n >> 8) & 0xff, n & 0xff];
  return new Uint8Array(Buffer.concat([Uint8Array.of(tag, ...len), body]));
}

/** `text` with its `index`-th PEM certificate replaced by `der` (same length: the line layout is kept). */
function replacePemCertificate(text: string, index: number, der: Uint8Array): string {
  const match = [...text.matchAll(PEM_BLOCK)][index]!;
  const body = match[1]!;
  const b64 = Buffer.from(der).toString('base64');
  let k = 0;
  const replaced = body.replace(/[A-Za-z0-9+/=]/g, () => b64[k++]!);
  expect(k).toBe(b64.length);
  const start = match.index + '-----BEGIN CERTIFICATE-----'.length;
  return text.slice(0, start) + replaced + text.slice(start + body.length);
}

/** The root's DER with the last signature byte changed: the same subject and key, other bytes. */
function alteredRootDer(): Uint8Array {
  const der = new Uint8Array(intelRoot.rawData).slice();
  der[der.length - 1]! ^= 0x01;
  return der;
}

/** The vector's quote with its PEM certificate `index` replaced (the PEM is not signed by the quote). */
function quoteWithCertificate(quote: Uint8Array, index: number, der: Uint8Array): Uint8Array {
  const text = Buffer.from(quote).toString('latin1');
  const out = new Uint8Array(Buffer.from(replacePemCertificate(text, index, der), 'latin1'));
  expect(out.length).toBe(quote.length);
  return out;
}

describe('DER strictness in the shared certificate profile', () => {
  const snp = loadVectors().find((v) => v.name === 'snp/milan-v2-virtee')!;
  const pck = parsePemCertificates(Buffer.from(vector('v4-dcap-qvl').quote).toString('latin1').replace(/^[\s\S]*?(?=-----BEGIN)/, '').replace(/\0+$/, ''), 'x', 'chain');

  it('refuses a certificate whose signature BIT STRING declares unused bits', () => {
    const der = snp.cert!.slice();
    expect(certificateProblems(new X509Certificate(der), 'rsassa-pss-sha384', 'end-entity')).toEqual([]);
    der[bitStringOffsets(der).signature] = 0x03;
    expect(certificateProblems(new X509Certificate(der), 'rsassa-pss-sha384', 'end-entity').join()).toMatch(/certificate signature declares 3 unused bits/);
  });

  it('refuses a certificate whose subject public key BIT STRING declares unused bits', () => {
    const der = new Uint8Array(pck[0]!.rawData).slice();
    expect(certificateProblems(new X509Certificate(der), 'ecdsa-sha256', 'end-entity')).toEqual([]);
    der[bitStringOffsets(der).publicKey] = 0x01;
    expect(certificateProblems(new X509Certificate(der), 'ecdsa-sha256', 'end-entity').join()).toMatch(/subject public key declares 1 unused bits/);
  });

  it('refuses a CRL whose signature BIT STRING declares unused bits', () => {
    const der = vector('v4-dcap-qvl').collateral.pckCrl!.slice();
    expect(crlProblems(new X509Crl(der), 'ecdsa-sha256')).toEqual([]);
    der[bitStringOffsets(der).signature] = 0x07;
    expect(crlProblems(new X509Crl(der), 'ecdsa-sha256').join()).toMatch(/crl signature declares 7 unused bits/);
  });

  it('refuses a second encoding of a CRL\'s ECDSA signature or of an outer length, and text where DER is expected', () => {
    const der = vector('v4-dcap-qvl').collateral.pckCrl!.slice();
    const parts = readTlvs(readTlvs(der, 'x')[0]!.value, 'x'); // tbsCertList, signatureAlgorithm, signature
    const [r, sv] = readTlvs(readTlvs(parts[2]!.value.subarray(1), 'x')[0]!.value, 'x');
    const rebuilt = (rBytes: Uint8Array) =>
      tlv(0x30, parts[0]!.encoded, parts[1]!.encoded, tlv(0x03, Uint8Array.of(0), tlv(0x30, tlv(0x02, rBytes), sv!.encoded)));
    expect(Buffer.from(rebuilt(r!.value)).equals(Buffer.from(der))).toBe(true); // the rebuild is exact
    expect(crlProblems(new X509Crl(rebuilt(r!.value)), 'ecdsa-sha256')).toEqual([]);
    const padded = rebuilt(Uint8Array.of(0, ...r!.value)); // same r, one more leading zero
    expect(crlProblems(new X509Crl(padded), 'ecdsa-sha256').join()).toMatch(/r is not minimally encoded/);
    // The outer length with a leading zero byte: the same CRL, another encoding.
    const lengthBytes = der[1]! & 0x7f;
    const longer = Uint8Array.of(0x30, 0x80 | (lengthBytes + 1), 0, ...der.subarray(2));
    expect(() => readTlvs(longer, 'x')).toThrow(/non-minimal DER length/);
    // PEM text of a valid VCEK: the library would read it; the verifier wants DER.
    const pem = `-----BEGIN CERTIFICATE-----\n${Buffer.from(snp.cert!).toString('base64')}\n-----END CERTIFICATE-----\n`;
    expect(() => parseVekCert(new TextEncoder().encode(pem))).toThrow(/not DER/);
    expect(() => assertDerSequence(Uint8Array.of(...snp.cert!, 0x05, 0x00), 'x', 'VEK')).toThrow(/expected one DER value, found 2/);
  });

  it('refuses non-canonical base64 (non-zero padding bits) in a PEM block', () => {
    const pem = vector('v4-dcap-qvl').collateral.tcbInfoIssuerChain!;
    expect(parsePemCertificates(pem, 'x', 'chain')).toHaveLength(2);
    // Flip the lowest bit of the last base64 digit before the padding of a block that has any.
    const m = /([A-Za-z0-9+/])(=+)\s*-----END/.exec(pem)!;
    const at = m.index;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    const flipped = pem.slice(0, at) + alphabet[alphabet.indexOf(pem[at]!) ^ 1] + pem.slice(at + 1);
    expect(() => parsePemCertificates(flipped, 'x', 'chain')).toThrow(/non-canonical base64/);
  });
});

describe('TDX: root copies and the PCK CRL issuer chain', () => {
  const v = vector('v4-dcap-qvl');
  const trust = trustStore();
  const verify = (quote: Uint8Array, collateral: TdxCollateral = v.collateral) => verifyTdx({ evidence: quote, collateral, trust, now: v.now });

  it('accepts the vector as it is, root copies included', async () => {
    expect((await verify(v.quote)).outcome).toBe('accept');
  });

  it('refuses a quote whose embedded root copy differs from the trusted root', async () => {
    const r = await verify(quoteWithCertificate(v.quote, 2, alteredRootDer()));
    expect(r.outcome).toBe('reject');
    expect(codes(r)).toEqual(['tdx.root-copy']);
  });

  it('refuses a TCB info or QE identity issuer chain whose root copy differs', async () => {
    const altered = alteredRootDer();
    const tcb = await verify(v.quote, { ...v.collateral, tcbInfoIssuerChain: replacePemCertificate(v.collateral.tcbInfoIssuerChain!, 1, altered) });
    expect(codes(tcb)).toContain('tdx.root-copy');
    const qe = await verify(v.quote, { ...v.collateral, qeIdentityIssuerChain: replacePemCertificate(v.collateral.qeIdentityIssuerChain!, 1, altered) });
    expect(codes(qe)).toContain('tdx.root-copy');
  });

  it('refuses an issuer chain with certificates beyond the signer and the root', async () => {
    const chain = v.collateral.tcbInfoIssuerChain!;
    const r = await verify(v.quote, { ...v.collateral, tcbInfoIssuerChain: `${chain.trimEnd()}\n${intelRoot.toString('pem')}\n` });
    expect(codes(r)).toContain('tdx.collateral.chain');
  });

  it('checks the PCK CRL issuer chain against the quote: its CA and root copy must be byte-identical', async () => {
    const chain = v.collateral.pckCrlIssuerChain!;
    const badRoot = await verify(v.quote, { ...v.collateral, pckCrlIssuerChain: replacePemCertificate(chain, 1, alteredRootDer()) });
    expect(codes(badRoot)).toEqual(['tdx.root-copy']);
    // Another genuine Intel CA (here: the root itself) in the CA's place.
    const wrongCa = await verify(v.quote, { ...v.collateral, pckCrlIssuerChain: intelRoot.toString('pem') });
    expect(codes(wrongCa)).toEqual(['tdx.crl.issuer-chain']);
    const garbage = await verify(v.quote, { ...v.collateral, pckCrlIssuerChain: 'not a chain' });
    expect(codes(garbage)).toEqual(['tdx.crl.issuer-chain']);
    // The CA alone (no root copy) is the same statement in fewer bytes: accepted.
    const caOnly = [...chain.matchAll(PEM_BLOCK)][0]![0];
    expect((await verify(v.quote, { ...v.collateral, pckCrlIssuerChain: caOnly })).outcome).toBe('accept');
  });

  it('refuses an issuer chain sent without the item it certifies', async () => {
    const { pckCrl: _crl, ...withoutCrl } = v.collateral;
    const r = await verify(v.quote, withoutCrl);
    expect(r.outcome).toBe('reject');
    expect(codes(r)).toEqual(['tdx.collateral.malformed']);
    expect(r.reasons[0]!.message).toMatch(/pckCrlIssuerChain but no pckCrl/);
  });
});

describe('results depend only on verified bytes', () => {
  const vectors = loadVectors();

  it('SNP: the reserved tail of the signature field must be zero, so report_sha384 names one byte form', async () => {
    const trust = await loadTrustStore({ allowSimulated: false });
    for (const v of vectors.filter((x) => x.expected.kind !== 'tdx')) {
      const now = new Date(v.expected.now);
      const base = v.expected.kind === 'snp' ? 0 : 0x20;
      const baseline = await verifyEvidence(makeEvidencePackage({ kind: v.expected.kind, evidence: v.evidence, certs: [v.cert!] }), { trust, now });
      expect(baseline.fields['report_sha384']).toBe(toHex(sha384(v.evidence.subarray(base, base + 0x4a0))));
      const mutated = v.evidence.slice();
      mutated[base + 0x400]! ^= 0x10;
      const r = await verifyEvidence(makeEvidencePackage({ kind: v.expected.kind, evidence: mutated, certs: [v.cert!] }), { trust, now });
      expect(r.outcome, v.name).toBe('reject');
      expect(codes(r), v.name).toContain('snp.signature-reserved');
    }
  });

  it('documented limit: an ECDSA (r, n - s) re-encoding verifies, so evidence digests name a presentation', async () => {
    const trust = await loadTrustStore({ allowSimulated: false });
    const v = vectors.find((x) => x.name === 'snp/milan-v2-virtee')!;
    const n = BigInt('0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973');
    const evidence = v.evidence.slice();
    const s = BigInt(`0x${Buffer.from(evidence.subarray(0x2e8, 0x2e8 + 72)).reverse().toString('hex')}`);
    evidence.set(Buffer.from((n - s).toString(16).padStart(144, '0'), 'hex').reverse(), 0x2e8);
    const now = new Date(v.expected.now);
    const pkg = (e: Uint8Array) => makeEvidencePackage({ kind: 'snp', evidence: e, certs: [v.cert!] });
    const [original, reencoded] = [await verifyEvidence(pkg(v.evidence), { trust, now }), await verifyEvidence(pkg(evidence), { trust, now })];
    expect(reencoded.outcome).toBe('accept');
    expect(reencoded.fields['report_sha384']).not.toBe(original.fields['report_sha384']);
    // What a replay cache should key on is unchanged: the signed region.
    expect(Buffer.from(evidence.subarray(0, 0x2a0)).equals(Buffer.from(v.evidence.subarray(0, 0x2a0)))).toBe(true);
  });

  it('Azure HCL: bytes outside the SNP report and the bound claims never change an accepted result', async () => {
    const trust = await loadTrustStore({ allowSimulated: false });
    const v = vectors.find((x) => x.expected.kind === 'azure-hcl-snp')!;
    const now = new Date(v.expected.now);
    const verifyHcl = (evidence: Uint8Array) => verifyEvidence(makeEvidencePackage({ kind: 'azure-hcl-snp', evidence, certs: [v.cert!] }), { trust, now });
    const baseline = await verifyHcl(v.evidence);
    expect(baseline.outcome).toBe('accept');
    const claimsEnd = 0x4d4 + new DataView(v.evidence.buffer, v.evidence.byteOffset).getUint32(0x4c0 + 16, true);
    const unsigned = [...Array(v.evidence.length).keys()].filter((i) => i < 0x20 || (i >= 0x4c0 && i < 0x4d4) || i >= claimsEnd);
    for (const offset of unsigned) {
      const mutated = v.evidence.slice();
      mutated[offset]! ^= 0x01;
      const r = await verifyHcl(mutated);
      if (r.outcome !== 'reject') expect(r, `offset ${offset}`).toEqual(baseline);
    }
  });

  it('TDX: trailing padding is accepted and changes nothing but trailing_bytes', async () => {
    const trust = await loadTrustStore({ allowSimulated: false });
    for (const v of vectors.filter((x) => x.expected.kind === 'tdx')) {
      const now = new Date(v.expected.now);
      const t = vector(v.name.slice('tdx/'.length));
      const run = (quote: Uint8Array) => verifyTdx({ evidence: quote, collateral: t.collateral, trust, now });
      const baseline = await run(v.evidence);
      const signedEnd = baseline.fields['quote_len_by_length_fields'] as number;
      const trailing = v.evidence.length - signedEnd;
      const padded = new Uint8Array(v.evidence.length + 64);
      padded.set(v.evidence);
      const withPadding = await run(padded);
      expect(withPadding, v.name).toEqual({ ...baseline, fields: { ...baseline.fields, trailing_bytes: trailing + 64 } });
      if (trailing > 0) {
        const noise = v.evidence.slice();
        for (let i = signedEnd; i < noise.length; i++) noise[i] = 0xa5;
        expect(await run(noise), v.name).toEqual(baseline);
        expect(await run(v.evidence.subarray(0, signedEnd)), v.name).toEqual({ ...baseline, fields: { ...baseline.fields, trailing_bytes: 0 } });
      }
    }
  });
});
