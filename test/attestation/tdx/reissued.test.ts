/**
 * A real quote whose PCK key is re-certified under a test PKI generated here. The QE report
 * signature (made by the real PCK key) stays valid, so the whole verifier runs on real evidence
 * while the test holds the CA keys: revocation, chain structure, simulated roots and signed TCB
 * info with any status can be exercised end to end.
 */
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import {
  BasicConstraintsExtension, Extension, KeyUsageFlags, KeyUsagesExtension, X509Certificate, X509CertificateGenerator, X509CrlGenerator,
} from '@peculiar/x509';
import { beforeAll, describe, expect, it } from 'vitest';
import { parsePckChain, parseTdxQuote, SGX_EXTENSION_OID, verifyTdx } from '../../../src/attestation/tdx/index.ts';
import type { TdxCollateral, TrustStore, VerificationResult } from '../../../src/attestation/types.ts';
import { concatBytes } from '../../../src/util/index.ts';
import { intelRoot, vector } from './vectors.ts';

const EC = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGN = { name: 'ECDSA', hash: 'SHA-256' } as const;
const v = vector('v4-dcap-qvl');
const now = v.now;
const day = 86_400_000;
const codes = (r: VerificationResult) => r.reasons.map((x) => x.code);

type Key = webcrypto.CryptoKey;
type Keys = webcrypto.CryptoKeyPair;
let rootKeys: Keys;
let caKeys: Keys;
let tcbKeys: Keys;
let root: X509Certificate;
let ca: X509Certificate;
let tcbSigner: X509Certificate;
let quote: Uint8Array;
let trust: TrustStore;

async function issue(
  subject: string, issuer: string, publicKey: Key | X509Certificate['publicKey'], signingKey: Key, serial: string, extensions: Extension[],
  signingAlgorithm: { name: 'ECDSA'; hash: string } = SIGN,
) {
  return X509CertificateGenerator.create({
    serialNumber: serial, subject, issuer, publicKey, signingKey, signingAlgorithm,
    notBefore: new Date(now.getTime() - 365 * day), notAfter: new Date(now.getTime() + 365 * day), extensions,
  });
}

/** Replace the quote's embedded PEM chain, fixing up the three length fields. */
function withChain(original: Uint8Array, pem: string): Uint8Array {
  const parsed = parseTdxQuote(original);
  const pemBytes = new TextEncoder().encode(pem);
  const sigStart = parsed.signedBytes.length;
  const innerSizeAt = sigStart + 4 + 128 + 6 + 384 + 64 + 2 + parsed.qeAuthData.length + 2;
  const head = original.slice(0, innerSizeAt + 4);
  const view = new DataView(head.buffer);
  view.setUint32(innerSizeAt, pemBytes.length, true);
  const outer = 384 + 64 + 2 + parsed.qeAuthData.length + 6 + pemBytes.length;
  view.setUint32(sigStart + 4 + 128 + 2, outer, true);
  view.setUint32(sigStart, 128 + 6 + outer, true);
  return concatBytes(head, pemBytes);
}

async function crl(issuer: X509Certificate, key: Key, serials: string[], extensions: Extension[] = []): Promise<Uint8Array> {
  const list = await X509CrlGenerator.create({
    issuer: issuer.subject, signingKey: key, signingAlgorithm: SIGN, extensions,
    thisUpdate: new Date(now.getTime() - day), nextUpdate: new Date(now.getTime() + day),
    entries: serials.map((serialNumber) => ({ serialNumber, revocationDate: new Date(now.getTime() - day) })),
  });
  return new Uint8Array(list.rawData);
}

/** The dcap-qvl TCB info with `edit` applied, signed by the test TCB signing key (or `signer`). */
async function signedTcbInfo(edit: (info: any) => void, signer?: { key: Key; cert: X509Certificate }): Promise<TdxCollateral> {
  const body = JSON.parse(new TextDecoder().decode(v.collateral.tcbInfo!));
  const info = body.tcbInfo;
  info.issueDate = new Date(now.getTime() - day).toISOString().replace('.000', '');
  info.nextUpdate = new Date(now.getTime() + day).toISOString().replace('.000', '');
  edit(info);
  const inner = JSON.stringify(info);
  const sig = new Uint8Array(await webcrypto.subtle.sign(SIGN, signer?.key ?? tcbKeys.privateKey, new TextEncoder().encode(inner)));
  const text = `{"tcbInfo":${inner},"signature":"${Buffer.from(sig).toString('hex')}"}`;
  return { tcbInfo: new TextEncoder().encode(text), tcbInfoIssuerChain: `${(signer?.cert ?? tcbSigner).toString('pem')}\n${root.toString('pem')}\n` };
}

beforeAll(async () => {
  const newKeys = () => webcrypto.subtle.generateKey(EC, false, ['sign', 'verify']) as Promise<Keys>;
  [rootKeys, caKeys, tcbKeys] = await Promise.all([newKeys(), newKeys(), newKeys()]);
  const ca_ = [new BasicConstraintsExtension(true, undefined, true)];
  root = await issue('CN=Test TDX Root', 'CN=Test TDX Root', rootKeys.publicKey, rootKeys.privateKey, '01', ca_);
  ca = await issue('CN=Test PCK CA', root.subject, caKeys.publicKey, rootKeys.privateKey, '02', ca_);
  tcbSigner = await issue('CN=Test TCB Signing', root.subject, tcbKeys.publicKey, rootKeys.privateKey, '03', []);
  const real = parsePckChain(parseTdxQuote(v.quote).pckChainPem).pck;
  const sgx = real.extensions.find((e) => e.type === SGX_EXTENSION_OID)!;
  const pck = await issue('CN=Test PCK Certificate', ca.subject, real.publicKey, caKeys.privateKey, '0badc0de', [new Extension(SGX_EXTENSION_OID, false, sgx.value)]);
  quote = withChain(v.quote, [pck, ca, root].map((c) => c.toString('pem')).join('\n'));
  trust = { amd: [], intel: [{ root, simulated: true }], allowSimulated: true };
});

describe('a real quote re-certified under a test root', () => {
  it('verifies chain-only and is flagged simulated', async () => {
    const r = await verifyTdx({ evidence: quote, trust, now });
    expect(r).toMatchObject({ outcome: 'chain-only', tee: 'sim-tdx', simulated: true, reasons: [] });
    expect(r.fields.fmspc).toBe('b0c06f000000');
  });

  it('a PCK serial on the PCK CRL is revoked; an unrelated CRL entry is not', async () => {
    const revoked = await verifyTdx({ evidence: quote, trust, now, collateral: { pckCrl: await crl(ca, caKeys.privateKey, ['0badc0de']) } });
    expect(codes(revoked)).toEqual(['tdx.revoked']);
    const fine = await verifyTdx({ evidence: quote, trust, now, collateral: { pckCrl: await crl(ca, caKeys.privateKey, ['1234']) } });
    expect(fine).toMatchObject({ outcome: 'chain-only', reasons: [] });
  });

  it('the PCK CA or the TCB signing certificate on the Root CA CRL is revoked', async () => {
    const caRevoked = await verifyTdx({ evidence: quote, trust, now, collateral: { rootCaCrl: await crl(root, rootKeys.privateKey, ['02']) } });
    expect(codes(caRevoked)).toEqual(['tdx.revoked']);
    const tcb = await signedTcbInfo(() => {});
    const signerRevoked = await verifyTdx({ evidence: quote, trust, now, collateral: { ...tcb, rootCaCrl: await crl(root, rootKeys.privateKey, ['03']) } });
    expect(codes(signerRevoked)).toEqual(['tdx.revoked']);
    expect(signerRevoked.reasons[0]!.message).toMatch(/Test TCB Signing/);
  });

  it('a CRL signed by the wrong key is refused', async () => {
    const forged = await crl(ca, rootKeys.privateKey, []);
    expect(codes(await verifyTdx({ evidence: quote, trust, now, collateral: { pckCrl: forged } }))).toEqual(['tdx.crl']);
  });

  it('signed TCB info with a Revoked level rejects with tdx.tcb.revoked', async () => {
    const collateral = await signedTcbInfo((info) => { info.tcbLevels[0].tcbStatus = 'Revoked'; });
    const r = await verifyTdx({ evidence: quote, trust, now, collateral });
    expect(r.outcome).toBe('reject');
    expect(r.tcb_status).toBe('Revoked');
    expect(codes(r)).toEqual(['tdx.tcb.revoked']);
  });

  it('SWHardeningNeeded with advisories is accept-tcb-not-uptodate and lists them', async () => {
    const collateral = await signedTcbInfo((info) => {
      info.tcbLevels[0].tcbStatus = 'SWHardeningNeeded';
      info.tcbLevels[0].advisoryIDs = ['INTEL-SA-00615', 'INTEL-SA-00657'];
    });
    const r = await verifyTdx({ evidence: quote, trust, now, collateral });
    expect(r).toMatchObject({ outcome: 'accept-tcb-not-uptodate', tcb_status: 'SWHardeningNeeded', advisory_ids: ['INTEL-SA-00615', 'INTEL-SA-00657'], reasons: [] });
    const unsigned = await signedTcbInfo(() => {});
    expect((await verifyTdx({ evidence: quote, trust, now, collateral: unsigned })).outcome).toBe('accept');
  });

  it('real TCB info does not verify under the test root (another root signed it)', async () => {
    const r = await verifyTdx({ evidence: quote, trust, now, collateral: { tcbInfo: v.collateral.tcbInfo, tcbInfoIssuerChain: v.collateral.tcbInfoIssuerChain } });
    expect(codes(r)).toEqual(['tdx.collateral.chain']);
  });

  it('a chain out of order, or with a non-CA intermediate, is refused', async () => {
    const pem = (certs: X509Certificate[]) => certs.map((c) => c.toString('pem')).join('\n');
    const pck = parsePckChain(parseTdxQuote(quote).pckChainPem).pck;
    expect(codes(await verifyTdx({ evidence: withChain(quote, pem([pck, root, ca])), trust, now }))).toContain('tdx.pck-chain');
    const notCa = await issue('CN=Test PCK CA', root.subject, caKeys.publicKey, rootKeys.privateKey, '04', []);
    const r = await verifyTdx({ evidence: withChain(quote, pem([pck, notCa, root])), trust, now });
    expect(r.reasons).toEqual([{ code: 'tdx.pck-chain', message: 'Test PCK CA: it is not a CA (basicConstraints CA:TRUE missing)' }]);
    const stranger = await issue('CN=Test PCK CA', root.subject, tcbKeys.publicKey, rootKeys.privateKey, '05', [new BasicConstraintsExtension(true, undefined, true)]);
    expect(codes(await verifyTdx({ evidence: withChain(quote, pem([pck, stranger, root])), trust, now }))).toEqual(['tdx.pck-chain']);
  });
});

describe('attacks on certificate roles, algorithms and collateral mixing', () => {
  const pem = (certs: X509Certificate[]) => certs.map((c) => c.toString('pem')).join('\n');
  const realPck = () => parsePckChain(parseTdxQuote(v.quote).pckChainPem).pck;
  const sgxExtension = () => new Extension(SGX_EXTENSION_OID, false, realPck().extensions.find((e) => e.type === SGX_EXTENSION_OID)!.value);
  const caExtensions = [new BasicConstraintsExtension(true, 0, true)];

  it('TCB info signed by the PCK CA key (a CA the root issued, not a TCB signing certificate) is refused', async () => {
    const collateral = await signedTcbInfo(() => {}, { key: caKeys.privateKey, cert: ca });
    const r = await verifyTdx({ evidence: quote, trust, now, collateral });
    expect(r.outcome).toBe('reject');
    expect(codes(r)).toEqual(['tdx.collateral.chain']);
    expect(r.reasons[0]!.message).toMatch(/is a CA certificate/);
  });

  it('a PCK certificate with an unknown critical extension is refused with tdx.pck-chain', async () => {
    const pck = await issue('CN=Test PCK Certificate', ca.subject, realPck().publicKey, caKeys.privateKey, '0badc0df',
      [sgxExtension(), new Extension('1.2.3.4.5', true, new Uint8Array([5, 0]))]);
    const r = await verifyTdx({ evidence: withChain(quote, pem([pck, ca, root])), trust, now });
    expect(codes(r)).toEqual(['tdx.pck-chain']);
    expect(r.reasons[0]!.message).toContain('unknown critical extension 1.2.3.4.5');
  });

  it('a PCK certificate signed with ECDSA-SHA384 (Intel signs with SHA-256) is refused with tdx.pck-chain', async () => {
    const pck = await issue('CN=Test PCK Certificate', ca.subject, realPck().publicKey, caKeys.privateKey, '0badc0e0',
      [sgxExtension()], { name: 'ECDSA', hash: 'SHA-384' });
    const r = await verifyTdx({ evidence: withChain(quote, pem([pck, ca, root])), trust, now });
    expect(codes(r)).toEqual(['tdx.pck-chain']);
    expect(r.reasons[0]!.message).toMatch(/not ECDSA with SHA-256/);
  });

  it('a PCK certificate that is itself a CA is refused', async () => {
    const pck = await issue('CN=Test PCK Certificate', ca.subject, realPck().publicKey, caKeys.privateKey, '0badc0e1', [sgxExtension(), ...caExtensions]);
    expect(codes(await verifyTdx({ evidence: withChain(quote, pem([pck, ca, root])), trust, now }))).toEqual(['tdx.pck-chain']);
  });

  it('a PCK CA whose keyUsage does not allow keyCertSign is refused', async () => {
    const signingOnly = await issue('CN=Test PCK CA', root.subject, caKeys.publicKey, rootKeys.privateKey, '06',
      [...caExtensions, new KeyUsagesExtension(KeyUsageFlags.digitalSignature, true)]);
    const pck = parsePckChain(parseTdxQuote(quote).pckChainPem).pck;
    const r = await verifyTdx({ evidence: withChain(quote, pem([pck, signingOnly, root])), trust, now });
    expect(codes(r)).toEqual(['tdx.pck-chain']);
    expect(r.reasons[0]!.message).toContain('keyCertSign');
  });

  it('a delta CRL, or a CRL with a critical extension, is refused with tdx.crl', async () => {
    const delta = await crl(ca, caKeys.privateKey, [], [new Extension('2.5.29.27', true, new Uint8Array([2, 1, 1]))]);
    const r = await verifyTdx({ evidence: quote, trust, now, collateral: { pckCrl: delta } });
    expect(codes(r)).toEqual(['tdx.crl']);
    expect(r.reasons[0]!.message).toContain('delta CRL');
    const critical = await crl(root, rootKeys.privateKey, [], [new Extension('1.2.3.4.6', true, new Uint8Array([5, 0]))]);
    expect(codes(await verifyTdx({ evidence: quote, trust, now, collateral: { rootCaCrl: critical } }))).toEqual(['tdx.crl']);
  });

  it('a real quote with TCB info signed under another trusted root is refused, even with simulated roots allowed', async () => {
    const both: TrustStore = { amd: [], intel: [{ root: intelRoot, simulated: false }, { root, simulated: true }], allowSimulated: true };
    const collateral = { ...(await signedTcbInfo(() => {})), qeIdentity: v.collateral.qeIdentity, qeIdentityIssuerChain: v.collateral.qeIdentityIssuerChain };
    const r = await verifyTdx({ evidence: v.quote, trust: both, now, collateral });
    expect(r.outcome).toBe('reject');
    expect(r.simulated).toBe(false);
    expect(codes(r)).toEqual(['tdx.collateral.chain']);
  });

  it('oversized quotes, CRLs and issuer chains are refused with tdx.too-large before parsing', async () => {
    const padded = new Uint8Array(16 << 20);
    padded.set(quote);
    expect(codes(await verifyTdx({ evidence: padded, trust, now }))).toEqual(['tdx.too-large']);
    expect(codes(await verifyTdx({ evidence: quote, trust, now, collateral: { pckCrl: new Uint8Array(32 << 20) } }))).toEqual(['tdx.too-large']);
    const tcb = await signedTcbInfo(() => {});
    const hugeChain = `${tcb.tcbInfoIssuerChain}${'\n'.repeat(1 << 20)}`;
    const r = await verifyTdx({ evidence: quote, trust, now, collateral: { ...tcb, tcbInfoIssuerChain: hugeChain } });
    expect(codes(r)).toEqual(['tdx.too-large']);
  });
});
