/** Evidence detection, the package codec's strictness, the collateral directory and the front door. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type EvidencePackage,
  PACKAGE_LIMITS,
  decodeEvidencePackage,
  detectEvidenceKind,
  encodeEvidencePackage,
  loadCollateralDir,
  loadTrustStore,
  makeEvidencePackage,
  parseEvidencePackage,
  verifyEvidence,
} from '../../../src/attestation/index.ts';
import type { TrustStore } from '../../../src/attestation/types.ts';
import { AttexError } from '../../../src/errors/index.ts';
import { loadVectors } from './vectors.ts';

const vectors = loadVectors();
const byName = (name: string) => vectors.find((v) => v.name === name)!;
const snp = byName('snp/milan-v2-virtee');
const tdx = byName('tdx/v4-dcap-qvl');
const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64');

function malformedKey(value: unknown): string {
  try {
    decodeEvidencePackage(value);
  } catch (err) {
    expect(err).toBeInstanceOf(AttexError);
    expect((err as AttexError).code).toBe('evidence.malformed');
    return String((err as AttexError).details?.['key']);
  }
  throw new Error('expected decodeEvidencePackage to refuse the input');
}

describe('detectEvidenceKind', () => {
  it('names the kind of every vector', () => {
    for (const v of vectors) expect(detectEvidenceKind(v.evidence), v.name).toBe(v.expected.kind);
  });

  it('returns null for anything else', () => {
    expect(detectEvidenceKind(new Uint8Array(0))).toBeNull();
    expect(detectEvidenceKind(new Uint8Array(1184))).toBeNull();
    expect(detectEvidenceKind(snp.evidence.subarray(0, 1183))).toBeNull();
    expect(detectEvidenceKind(tdx.evidence.subarray(0, 47))).toBeNull();
    const v4 = snp.evidence.slice();
    v4[0] = 4;
    expect(detectEvidenceKind(v4)).toBeNull();
    const notTdx = tdx.evidence.slice();
    notTdx[4] = 0x00;
    expect(detectEvidenceKind(notTdx)).toBeNull();
  });

  it('keeps a v5 SNP report whose GUEST_SVN is 0x81 an SNP report', () => {
    const report = snp.evidence.slice();
    report.set([5, 0, 0, 0, 0x81, 0, 0, 0], 0);
    expect(detectEvidenceKind(report)).toBe('snp');
  });
});

describe('decodeEvidencePackage', () => {
  const good: EvidencePackage = { kind: 'snp', evidence: b64(snp.evidence), certs: [b64(snp.cert!)] };

  it('accepts a valid package and round-trips through encode', () => {
    expect(decodeEvidencePackage(good)).toEqual(good);
    const text = encodeEvidencePackage(good);
    expect(parseEvidencePackage(text)).toEqual(good);
    expect(Object.keys(JSON.parse(text) as object)).toEqual(['kind', 'evidence', 'certs']);
  });

  it('refuses unknown keys, naming them', () => {
    expect(malformedKey({ ...good, extra: 1 })).toBe('extra');
    expect(malformedKey(JSON.parse(`{"kind":"snp","evidence":"${good.evidence}","__proto__":{"x":1}}`))).toBe('__proto__');
    expect(malformedKey({ kind: 'tdx', evidence: b64(tdx.evidence), collateral: { tcbInfo: 'AAAA', tcbinfo: 'AAAA' } })).toBe('collateral.tcbinfo');
  });

  it('refuses non-objects and bad kinds', () => {
    for (const value of [null, 'x', 1, [], [good]]) expect(malformedKey(value)).toBe('(root)');
    expect(malformedKey({ ...good, kind: 'sgx' })).toBe('kind');
    expect(malformedKey({ evidence: good.evidence })).toBe('kind');
  });

  it('takes only canonical base64', () => {
    for (const evidence of ['', 'QQ', 'QR==', 'Q Q==', 'QQ==\n', '-_8=', 'QQ===', 'A===']) {
      expect(malformedKey({ kind: 'snp', evidence }), JSON.stringify(evidence)).toBe('evidence');
    }
    expect(malformedKey({ ...good, certs: ['QR=='] })).toBe('certs[0]');
  });

  it('enforces the size caps', () => {
    expect(malformedKey({ kind: 'snp', evidence: b64(new Uint8Array(PACKAGE_LIMITS.evidenceBytes + 1)) })).toBe('evidence');
    expect(decodeEvidencePackage({ kind: 'snp', evidence: b64(new Uint8Array(PACKAGE_LIMITS.evidenceBytes)) }).kind).toBe('snp');
    expect(malformedKey({ ...good, certs: Array(5).fill(good.certs![0]) })).toBe('certs');
    expect(malformedKey({ ...good, certs: [b64(new Uint8Array(PACKAGE_LIMITS.certBytes + 1))] })).toBe('certs[0]');
    expect(malformedKey({ kind: 'tdx', evidence: good.evidence, collateral: { tcbInfoIssuerChain: `-----BEGIN CERTIFICATE-----${'A'.repeat(17000)}` } })).toBe(
      'collateral.tcbInfoIssuerChain',
    );
  });

  it('refuses items that belong to the other kind and ill-typed items', () => {
    expect(malformedKey({ kind: 'tdx', evidence: good.evidence, certs: good.certs })).toBe('certs');
    expect(malformedKey({ ...good, collateral: {} })).toBe('collateral');
    expect(malformedKey({ ...good, certs: 'AAAA' })).toBe('certs');
    expect(malformedKey({ ...good, certs: [1] })).toBe('certs[0]');
    expect(malformedKey({ kind: 'tdx', evidence: good.evidence, collateral: { pckCrlIssuerChain: 'no pem here' } })).toBe('collateral.pckCrlIssuerChain');
    expect(malformedKey({ kind: 'tdx', evidence: good.evidence, collateral: { qeIdentityIssuerChain: '-----BEGIN CERTIFICATE-----\u00e9' } })).toBe(
      'collateral.qeIdentityIssuerChain',
    );
  });

  it('parseEvidencePackage refuses text that is not JSON', () => {
    expect(() => parseEvidencePackage('{"kind":')).toThrow(/not JSON/);
  });
});

describe('loadCollateralDir', () => {
  let tmp: string;
  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'attex-coll-'));
  });
  afterAll(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it('reads every item of the layout, and only the ones present', async () => {
    const full = await loadCollateralDir(tdx.collateralDir!);
    expect(Object.keys(full).sort()).toEqual(['pckCrl', 'pckCrlIssuerChain', 'qeIdentity', 'qeIdentityIssuerChain', 'rootCaCrl', 'tcbInfo', 'tcbInfoIssuerChain']);
    expect(full.tcbInfo).toBeInstanceOf(Uint8Array);
    expect(typeof full.tcbInfoIssuerChain).toBe('string');
    const partial = await loadCollateralDir(byName('tdx/v5-go-tdx-guest').collateralDir!);
    expect(Object.keys(partial).sort()).toEqual(['tcbInfo', 'tcbInfoIssuerChain']);
  });

  it('refuses a missing directory, a non-PEM chain and oversized files', async () => {
    await expect(loadCollateralDir(path.join(tmp, 'missing'))).rejects.toMatchObject({ code: 'collateral.unreadable' });
    await writeFile(path.join(tmp, 'tcb-info-issuer-chain.pem'), 'not a chain');
    await expect(loadCollateralDir(tmp)).rejects.toMatchObject({ code: 'collateral.malformed', message: /tcb-info-issuer-chain\.pem/ });
    await rm(path.join(tmp, 'tcb-info-issuer-chain.pem'));
    await writeFile(path.join(tmp, 'pck-crl.der'), new Uint8Array(PACKAGE_LIMITS.crlBytes + 1));
    await expect(loadCollateralDir(tmp)).rejects.toMatchObject({ code: 'collateral.malformed', message: /pck-crl\.der/ });
  });
});

describe('verifyEvidence front door', () => {
  let trust: TrustStore;
  beforeAll(async () => {
    trust = await loadTrustStore({ allowSimulated: false });
  });
  const now = new Date(snp.expected.now);

  it('never throws: hostile package objects become rejections', async () => {
    for (const pkg of [null, undefined, 42, {}, { kind: 'snp' }, { kind: 'snp', evidence: '!!' }, { kind: 'tdx', evidence: 'AAAA', more: 1 }]) {
      const result = await verifyEvidence(pkg as never, { trust, now });
      expect(result.outcome).toBe('reject');
      expect(result.reasons[0]!.code).toBe('evidence.malformed');
    }
    const badTime = await verifyEvidence(makeEvidencePackage({ kind: 'snp', evidence: snp.evidence, certs: [snp.cert!] }), { trust, now: new Date('nope') });
    expect(badTime.reasons.map((r) => r.code)).toEqual(['evidence.invalid-time']);
    // Not plain JSON: a getter that throws, and options missing altogether.
    const trap = { get kind(): string { throw new Error('boom'); } };
    expect((await verifyEvidence(trap as never, { trust, now })).outcome).toBe('reject');
    const noOptions = await verifyEvidence(makeEvidencePackage({ kind: 'snp', evidence: snp.evidence, certs: [snp.cert!] }), undefined as never);
    expect(noOptions.reasons.map((r) => r.code)).toEqual(['evidence.invalid-time']);
  });

  it('rejects a package whose bytes are not the kind it claims', async () => {
    const lie = { kind: 'azure-hcl-snp', evidence: b64(snp.evidence), certs: [b64(snp.cert!)] } as EvidencePackage;
    const result = await verifyEvidence(lie, { trust, now });
    expect(result.outcome).toBe('reject');
    expect(result.kind).toBe('azure-hcl-snp');
    expect(result.reasons.map((r) => r.code)).toEqual(['evidence.kind-mismatch']);
  });

  it('rejects SNP evidence without a VCEK/VLEK', async () => {
    const result = await verifyEvidence({ kind: 'snp', evidence: b64(snp.evidence) }, { trust, now });
    expect(result.reasons.map((r) => r.code)).toEqual(['evidence.missing-vek']);
  });

  it('takes only the first certificate as the VEK: a wrong one first is rejected', async () => {
    const other = byName('snp/genoa-v5-oak');
    const result = await verifyEvidence({ kind: 'snp', evidence: b64(snp.evidence), certs: [b64(other.cert!), b64(snp.cert!)] }, { trust, now });
    expect(result.outcome).toBe('reject');
  });

  it('reports chain-only for a TDX quote without collateral', async () => {
    const result = await verifyEvidence(makeEvidencePackage({ kind: 'tdx', evidence: tdx.evidence }), { trust, now: new Date(tdx.expected.now) });
    expect(result.outcome).toBe('chain-only');
    expect(result.tcb_status).toBeNull();
  });

  it('rejects real evidence when the trust store lacks its vendor', async () => {
    const intelOnly: TrustStore = { ...trust, amd: [] };
    expect((await verifyEvidence(makeEvidencePackage({ kind: 'snp', evidence: snp.evidence, certs: [snp.cert!] }), { trust: intelOnly, now })).outcome).toBe('reject');
    const amdOnly: TrustStore = { ...trust, intel: [] };
    const pkg = makeEvidencePackage({ kind: 'tdx', evidence: tdx.evidence, collateral: await loadCollateralDir(tdx.collateralDir!) });
    expect((await verifyEvidence(pkg, { trust: amdOnly, now: new Date(tdx.expected.now) })).outcome).toBe('reject');
  });
});
