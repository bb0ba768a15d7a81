import { beforeAll, describe, expect, it } from 'vitest';
import { AttexError } from '../../../src/errors/index.ts';
import { claimsBindingReasons, describeHcl, parseHclReport, verifyAzureHcl } from '../../../src/attestation/azure-hcl/index.ts';
import { sha256, toHex } from '../../../src/util/index.ts';
import type { SnpVerifyInput } from '../../../src/attestation/types.ts';
import { forgePki, forgeReport, type ForgedPki } from '../snp/forge.ts';
import { amdTrust, vector } from '../snp/vectors.ts';

const azure = vector('snp/azure-hcl-milan-v2-trustee');
const trust = amdTrust();
const codes = (r: { reasons: readonly { code: string }[] }): string[] => r.reasons.map((x) => x.code);
const input = (over: Partial<SnpVerifyInput> = {}): SnpVerifyInput => ({ evidence: azure.evidence, vekCert: azure.vekCert, trust, now: azure.now, ...over });

/** An HCL blob around an SNP report and claims, lengths as the header says; `pad` extra zero bytes. */
function buildHcl(snpReport: Uint8Array, claims: Uint8Array, pad = 0): Uint8Array {
  const blob = new Uint8Array(0x4d4 + claims.length + pad);
  const view = new DataView(blob.buffer);
  blob.set(new TextEncoder().encode('HCLA'), 0);
  view.setUint32(4, 1, true);
  view.setUint32(8, 0x4d4 + claims.length, true);
  view.setUint32(12, 2, true);
  blob.set(snpReport, 0x20);
  view.setUint32(0x4c0, 20 + claims.length, true);
  view.setUint32(0x4c4, 1, true);
  view.setUint32(0x4c8, 2, true);
  view.setUint32(0x4cc, 1, true);
  view.setUint32(0x4d0, claims.length, true);
  blob.set(claims, 0x4d4);
  return blob;
}

function parseError(bytes: Uint8Array): AttexError {
  try {
    parseHclReport(bytes);
  } catch (err) {
    return err as AttexError;
  }
  throw new Error('expected parseHclReport to throw');
}

describe('parseHclReport', () => {
  it('describes the Azure vector exactly as expected.json `hcl`', () => {
    const hcl = parseHclReport(azure.evidence);
    expect(describeHcl(hcl, claimsBindingReasons(hcl).length === 0)).toStrictEqual(azure.hcl);
    expect(hcl.snpReport?.version).toBe(2);
  });

  it('refuses runtime claims nested past 32 levels (they would break re-serialization) with hcl.parse', () => {
    const report = azure.evidence.subarray(0x20, 0x20 + 0x4a0);
    const deep = (depth: number) => new TextEncoder().encode(`{"user-data":"${'0'.repeat(128)}","x":${'['.repeat(depth)}${']'.repeat(depth)}}`);
    expect(parseHclReport(buildHcl(report, deep(31))).claims['x']).toBeDefined();
    const err = parseError(buildHcl(report, deep(30_000)));
    expect([err.code, err.message]).toEqual(['hcl.parse', expect.stringMatching(/nested deeper than 32 levels/)]);
  });

  it('refuses bad magic, truncation and inconsistent lengths with hcl.parse', () => {
    const bad: Uint8Array[] = [];
    const magic = azure.evidence.slice();
    magic[0] = 0x58;
    bad.push(magic, azure.evidence.subarray(0, 0x4d3), azure.evidence.subarray(0, 2000), new Uint8Array(0), crypto.getRandomValues(new Uint8Array(2600)));
    const hugeClaims = azure.evidence.slice();
    new DataView(hugeClaims.buffer).setUint32(0x4d0, 0xffffffff, true);
    const runtimeSize = azure.evidence.slice();
    new DataView(runtimeSize.buffer).setUint32(0x4c0, 1129, true);
    const reportSize = azure.evidence.slice();
    new DataView(reportSize.buffer).setUint32(8, 2600, true);
    const snpVersion = azure.evidence.slice();
    snpVersion[0x20] = 9;
    const notJson = azure.evidence.slice();
    notJson[0x4d4] = 0x5b; // '[' instead of '{'
    bad.push(hugeClaims, runtimeSize, reportSize, snpVersion, notJson);
    for (const bytes of bad) {
      const err = parseError(bytes);
      expect(err).toBeInstanceOf(AttexError);
      expect(err.code).toBe('hcl.parse');
    }
    expect(parseError(snpVersion).message).toContain('embedded SNP report');
  });
});

describe('verifyAzureHcl on the vendor vector', () => {
  it('accepts at the pinned now with the SNP fields plus user_data, claims and hcl_ak_pub', async () => {
    const result = await verifyAzureHcl(input());
    expect(result.reasons).toEqual([]);
    expect(result.outcome).toBe('accept');
    expect(result.kind).toBe('azure-hcl-snp');
    expect(result.tee).toBe('azure-hcl-snp');
    expect(result.tcb_status).toBeNull();
    const { user_data, claims, hcl_ak_pub, ...snp } = result.fields as Record<string, unknown> & { claims: Record<string, unknown> };
    expect(snp).toStrictEqual(azure.fields);
    expect(user_data).toBe(azure.hcl!['claims_user_data']);
    expect(Object.keys(claims).sort()).toEqual(azure.hcl!['claims_top_level_keys']);
    expect(hcl_ak_pub).toMatchObject({ kid: 'HCLAkPub', kty: 'RSA', e: 'AQAB' });
  });

  it('claims changed after the fact break the binding (hcl.claims-binding), nothing else', async () => {
    const evidence = azure.evidence.slice();
    const text = new TextDecoder().decode(evidence.subarray(0x4d4, 0x4d4 + 1110));
    const match = /"user-data"\s*:\s*"/.exec(text)!;
    const at = match.index + match[0].length;
    evidence[0x4d4 + at] = 0x31; // '0' -> '1'
    const result = await verifyAzureHcl(input({ evidence }));
    expect(codes(result)).toEqual(['hcl.claims-binding']);
    expect(result.fields['user_data']).toBe('1' + '0'.repeat(127));
  });

  it('a VCEK outside its validity window rejects with a reason naming it', async () => {
    const result = await verifyAzureHcl(input({ now: new Date('2031-01-01T00:00:00Z') }));
    expect(codes(result)).toEqual(['snp.cert-validity']);
    expect(result.reasons[0]!.message).toContain('VCEK expired at 2030-05-02T21:22:19');
  });

  it('a bit flip in the embedded SNP report rejects the signature', async () => {
    const evidence = azure.evidence.slice();
    evidence[0x20 + 0x90]! ^= 1;
    expect(codes(await verifyAzureHcl(input({ evidence })))).toEqual(['snp.report-signature']);
  });

  it('a TDX report type is refused; garbage never throws', async () => {
    const tdx = azure.evidence.slice();
    new DataView(tdx.buffer).setUint32(0x4c8, 4, true);
    expect(codes(await verifyAzureHcl(input({ evidence: tdx })))).toEqual(['hcl.report-type']);
    expect(codes(await verifyAzureHcl(input({ evidence: new Uint8Array(10) })))).toEqual(['hcl.parse']);
    expect(codes(await verifyAzureHcl(input({ evidence: 'x' as unknown as Uint8Array })))).toEqual(['snp.input']);
  });
});

describe('HCL blobs of other sizes', () => {
  let pki: ForgedPki;
  let now: Date;
  beforeAll(async () => {
    pki = await forgePki({ cn: 'Hcl' });
    now = new Date(pki.notBefore.getTime() + 86_400_000);
  });

  async function blobFor(claims: Record<string, unknown>, pad = 0): Promise<{ blob: Uint8Array; claimsBytes: Uint8Array }> {
    const claimsBytes = new TextEncoder().encode(JSON.stringify(claims));
    const reportData = new Uint8Array(64);
    reportData.set(sha256(claimsBytes), 0);
    return { blob: buildHcl(await forgeReport(pki, reportData), claimsBytes, pad), claimsBytes };
  }

  it('a short blob with consistent lengths parses and verifies; trailing padding is fine', async () => {
    const userData = 'AB'.repeat(64);
    for (const pad of [0, 37]) {
      const { blob, claimsBytes } = await blobFor({ keys: [], 'user-data': userData }, pad);
      expect(blob.length).toBeLessThan(1500);
      const hcl = parseHclReport(blob);
      expect(describeHcl(hcl, true)['claims_sha256']).toBe(toHex(sha256(claimsBytes)));
      const result = await verifyAzureHcl({ evidence: blob, vekCert: new Uint8Array(pki.vcek.rawData), trust: amdTrust([pki.rootSet(false)]), now });
      expect(result.reasons).toEqual([]);
      expect(result.fields['user_data']).toBe(userData.toLowerCase());
      expect(result.fields['hcl_ak_pub']).toBeNull();
    }
  });

  it('claims without a 64-byte user-data are refused with hcl.claims', async () => {
    const { blob } = await blobFor({ 'user-data': 'abcd' });
    const result = await verifyAzureHcl({ evidence: blob, vekCert: new Uint8Array(pki.vcek.rawData), trust: amdTrust([pki.rootSet(false)]), now });
    expect(codes(result)).toEqual(['hcl.claims']);
    expect(result.fields['user_data']).toBeNull();
  });

  it('report_data with a non-zero tail does not bind', async () => {
    const claimsBytes = new TextEncoder().encode('{"user-data":"' + '00'.repeat(64) + '"}');
    const reportData = new Uint8Array(64).fill(1);
    reportData.set(sha256(claimsBytes), 0);
    const blob = buildHcl(await forgeReport(pki, reportData), claimsBytes);
    const result = await verifyAzureHcl({ evidence: blob, vekCert: new Uint8Array(pki.vcek.rawData), trust: amdTrust([pki.rootSet(false)]), now });
    expect(codes(result)).toEqual(['hcl.claims-binding']);
    expect(result.reasons[0]!.message).toContain('[32:64] is not zero');
  });
});
