import { describe, expect, it } from 'vitest';
import { createTdxVerifier, extractSignedJson, verifyTdx } from '../../../src/attestation/tdx/index.ts';
import type { TdxCollateral, VerificationResult } from '../../../src/attestation/types.ts';
import { sha256, toHex } from '../../../src/util/index.ts';
import { tdxVectors, trustStore, vector } from './vectors.ts';

const codes = (r: VerificationResult) => r.reasons.map((x) => x.code);

function flip(bytes: Uint8Array, at: number): Uint8Array {
  const copy = bytes.slice();
  copy[at] = copy[at]! ^ 0x01;
  return copy;
}

describe('verifyTdx on the vendor vectors at their pinned now', () => {
  for (const v of tdxVectors) {
    it(`${v.name}: ${v.expected.expected.outcome}, ${v.expected.expected.tcb_status}`, async () => {
      const r = await verifyTdx({ evidence: v.quote, collateral: v.collateral, trust: trustStore(), now: v.now });
      expect(r.kind).toBe('tdx');
      expect(r.tee).toBe('tdx');
      expect(r.simulated).toBe(false);
      expect(r.outcome).toBe(v.expected.expected.outcome);
      expect(r.tcb_status).toBe(v.expected.expected.tcb_status);
      expect(r.advisory_ids).toEqual(v.expected.expected.advisory_ids);
      for (const [key, value] of Object.entries(v.expected.fields)) expect(r.fields[key], key).toEqual(value);
      if (v.expected.expected.outcome === 'reject') expect(r.reasons.length).toBeGreaterThan(0);
      else expect(r.reasons).toEqual([]);
    });

    it(`${v.name}: without collateral only the chain is checked (chain-only)`, async () => {
      const r = await verifyTdx({ evidence: v.quote, trust: trustStore(), now: v.now });
      expect(r.outcome).toBe('chain-only');
      expect(r.tcb_status).toBeNull();
      expect(r.reasons).toEqual([]);
    });
  }

  it('the SPR quote is rejected for its TCB level, with nothing else wrong', async () => {
    const v = vector('v4-spr-go-tdx-guest');
    const r = await verifyTdx({ evidence: v.quote, collateral: v.collateral, trust: trustStore(), now: v.now });
    expect(codes(r)).toEqual(['tdx.tcb.no-matching-level']);
  });

  it('finds the exact signed bytes of the inner objects (never re-serialised)', () => {
    const v = vector('v4-dcap-qvl');
    const tcb = extractSignedJson(v.collateral.tcbInfo!, 'tcbInfo', 'TCB info');
    expect(tcb.signedBytes.length).toBe(v.expected.tcb_info.signed_bytes_len);
    expect(toHex(sha256(tcb.signedBytes))).toBe(v.expected.tcb_info.signed_bytes_sha256);
    const qe = extractSignedJson(v.collateral.qeIdentity!, 'enclaveIdentity', 'QE identity');
    expect(toHex(sha256(qe.signedBytes))).toBe(v.expected.qe_identity.signed_bytes_sha256);
  });
});

describe('verifyTdx rejections', () => {
  const v = vector('v4-dcap-qvl');
  const base = { evidence: v.quote, collateral: v.collateral, trust: trustStore(), now: v.now };

  it('a now after the collateral window names what expired', async () => {
    const r = await verifyTdx({ ...base, now: new Date('2025-08-01T00:00:00Z') });
    expect(r.outcome).toBe('reject');
    const expired = r.reasons.filter((x) => x.code === 'tdx.collateral.expired').map((x) => x.message).join('\n');
    expect(expired).toMatch(/TCB info/);
    expect(expired).toMatch(/QE identity/);
    expect(expired).toMatch(/PCK CRL/);
    expect(expired).not.toMatch(/Root CA CRL/);
  });

  it('a now before the collateral was issued rejects too', async () => {
    const r = await verifyTdx({ ...base, now: new Date('2025-06-01T00:00:00Z') });
    expect(codes(r)).toContain('tdx.collateral.expired');
  });

  it('a now before the PCK certificate was issued rejects with tdx.cert-validity', async () => {
    const r = await verifyTdx({ evidence: v.quote, trust: trustStore(), now: new Date('2024-01-01T00:00:00Z') });
    expect(r.outcome).toBe('reject');
    expect(r.reasons.find((x) => x.code === 'tdx.cert-validity')?.message).toMatch(/PCK certificate/);
  });

  it('TCB info for another FMSPC rejects with tdx.collateral.fmspc-mismatch', async () => {
    const other = vector('v4-outofdate-trustee').collateral;
    const collateral: TdxCollateral = { ...v.collateral, tcbInfo: other.tcbInfo, tcbInfoIssuerChain: other.tcbInfoIssuerChain };
    const r = await verifyTdx({ ...base, collateral, now: new Date('2025-07-04T00:00:00Z') });
    expect(r.outcome).toBe('reject');
    expect(codes(r)).toContain('tdx.collateral.fmspc-mismatch');
    expect(r.tcb_status).toBeNull();
  });

  it('one flipped byte inside the signed TCB info rejects with tdx.collateral.signature', async () => {
    const text = new TextDecoder().decode(v.collateral.tcbInfo!);
    const at = text.indexOf('"tcbEvaluationDataNumber":17') + '"tcbEvaluationDataNumber":'.length + 1;
    const tampered = flip(v.collateral.tcbInfo!, at); // 17 -> 16: still valid JSON
    const r = await verifyTdx({ ...base, collateral: { ...v.collateral, tcbInfo: tampered } });
    expect(r.outcome).toBe('reject');
    expect(codes(r)).toEqual(['tdx.collateral.signature']);
  });

  it('pretty-printed (re-serialised) TCB info no longer verifies', async () => {
    const pretty = new TextEncoder().encode(JSON.stringify(JSON.parse(new TextDecoder().decode(v.collateral.tcbInfo!)), null, 2));
    const r = await verifyTdx({ ...base, collateral: { ...v.collateral, tcbInfo: pretty } });
    expect(codes(r)).toEqual(['tdx.collateral.signature']);
  });

  it('a tampered QE identity byte rejects with tdx.collateral.signature', async () => {
    const text = new TextDecoder().decode(v.collateral.qeIdentity!);
    const tampered = flip(v.collateral.qeIdentity!, text.indexOf('"isvprodid":2') + '"isvprodid":'.length);
    const r = await verifyTdx({ ...base, collateral: { ...v.collateral, qeIdentity: tampered } });
    expect(codes(r)).toEqual(['tdx.collateral.signature']);
  });

  it('a body with two tcbInfo members is refused: the signed span and the parsed value could differ', async () => {
    const text = new TextDecoder().decode(v.collateral.tcbInfo!);
    const inner = text.slice(text.indexOf('{', 1), text.lastIndexOf(',"signature"'));
    const forged = JSON.parse(inner);
    forged.tcbLevels[0].tcbStatus = 'UpToDate';
    for (const body of [`{"tcbInfo":${JSON.stringify(forged)},${text.slice(1)}`, `${text.slice(0, -1)},"tcbInfo":${JSON.stringify(forged)}}`]) {
      const r = await verifyTdx({ ...base, collateral: { ...v.collateral, tcbInfo: new TextEncoder().encode(body) } });
      expect(codes(r)).toEqual(['tdx.collateral.malformed']);
      expect(r.reasons[0]!.message).toContain('appears twice');
    }
  });

  it('a byte-order mark, leading or trailing garbage around the signed JSON is refused; whitespace is fine', async () => {
    const body = v.collateral.tcbInfo!;
    const around = (head: number[], tail: number[]) => new Uint8Array([...head, ...body, ...tail]);
    for (const [bytes, hint] of [[around([0xef, 0xbb, 0xbf], []), 'byte-order mark'], [around([0x78], []), 'JSON'], [around([], [0x00]), 'JSON'], [around([], [0x7d]), 'JSON']] as const) {
      const r = await verifyTdx({ ...base, collateral: { ...v.collateral, tcbInfo: bytes } });
      expect(codes(r)).toEqual(['tdx.collateral.malformed']);
      expect(r.reasons[0]!.message).toContain(hint);
    }
    const spaced = await verifyTdx({ ...base, collateral: { ...v.collateral, tcbInfo: around([0x20, 0x0a], [0x0a]) } });
    expect(spaced.outcome).toBe('accept');
  });

  it('fields.collateral_checked says which collateral the verdict rests on', async () => {
    const full = await verifyTdx(base);
    expect(full.fields.collateral_checked).toEqual({ tcb_info: true, qe_identity: true, pck_crl: true, root_ca_crl: true });
    const partial = await verifyTdx({ ...base, collateral: { tcbInfo: v.collateral.tcbInfo, tcbInfoIssuerChain: v.collateral.tcbInfoIssuerChain } });
    expect(partial.outcome).toBe('accept');
    expect(partial.fields.collateral_checked).toEqual({ tcb_info: true, qe_identity: false, pck_crl: false, root_ca_crl: false });
  });

  it('TCB info without its issuer chain, or not JSON, is malformed', async () => {
    const noChain = await verifyTdx({ ...base, collateral: { ...v.collateral, tcbInfoIssuerChain: undefined } });
    expect(codes(noChain)).toEqual(['tdx.collateral.malformed']);
    const junk = await verifyTdx({ ...base, collateral: { ...v.collateral, tcbInfo: new Uint8Array([0x7b, 0x22]) } });
    expect(codes(junk)).toEqual(['tdx.collateral.malformed']);
  });

  it('a CRL from the wrong issuer rejects with tdx.crl', async () => {
    const r = await verifyTdx({ ...base, collateral: { ...v.collateral, pckCrl: v.collateral.rootCaCrl } });
    expect(codes(r)).toEqual(['tdx.crl']);
    const garbage = await verifyTdx({ ...base, collateral: { ...v.collateral, rootCaCrl: new Uint8Array([0x30, 0x03, 1, 2, 3]) } });
    expect(codes(garbage)).toEqual(['tdx.crl']);
  });

  it('a flipped signature byte in a CRL rejects with tdx.crl', async () => {
    const crl = v.collateral.pckCrl!;
    const r = await verifyTdx({ ...base, collateral: { ...v.collateral, pckCrl: flip(crl, crl.length - 5) } });
    expect(codes(r)).toEqual(['tdx.crl']);
  });

  it('tampered quote body, QE report and QE auth data each fail their own check', async () => {
    const body = await verifyTdx({ ...base, evidence: flip(v.quote, 48 + 520) }); // report_data
    expect(codes(body)).toEqual(['tdx.quote-signature']);
    const qeReportAt = 632 + 4 + 128 + 6;
    const qe = await verifyTdx({ ...base, evidence: flip(v.quote, qeReportAt + 258) }); // QE ISVSVN
    expect(codes(qe)).toContain('tdx.qe-report-signature');
    const auth = await verifyTdx({ ...base, evidence: flip(v.quote, qeReportAt + 384 + 64 + 2) });
    expect(codes(auth)).toEqual(['tdx.qe-binding']);
  });

  it('no trusted Intel root rejects with tdx.pck-chain', async () => {
    const r = await verifyTdx({ ...base, trust: { amd: [], intel: [], allowSimulated: false } });
    expect(r.outcome).toBe('reject');
    expect(codes(r)).toEqual(['tdx.pck-chain']);
  });

  it('a chain ending at a simulated root is flagged, and refused unless allowed', async () => {
    const refused = await verifyTdx({ ...base, trust: trustStore({ simulated: true }) });
    expect(refused.tee).toBe('sim-tdx');
    expect(refused.simulated).toBe(true);
    expect(refused.outcome).toBe('reject');
    expect(refused.reasons).toEqual([expect.objectContaining({ code: 'attestation.simulated-root' })]);
    expect(refused.reasons[0]!.message).toContain('Intel SGX Root CA');
    const allowed = await verifyTdx({ ...base, trust: trustStore({ simulated: true, allowSimulated: true }) });
    expect(allowed.outcome).toBe('accept');
    expect(allowed.tee).toBe('sim-tdx');
  });

  it('truncated quotes, garbage and bad input never throw', async () => {
    const end = v.expected.fields.quote_len_by_length_fields as number; // bytes after it are ignored
    for (let len = 0; len < end; len += 97) {
      const r = await verifyTdx({ ...base, evidence: v.quote.subarray(0, len) });
      expect(r.outcome).toBe('reject');
    }
    const odd = [null, undefined, 'quote', new Uint8Array(0)] as unknown as Uint8Array[];
    for (const evidence of odd) expect((await verifyTdx({ ...base, evidence })).outcome).toBe('reject');
    const badNow = await verifyTdx({ ...base, now: new Date('nonsense') });
    expect(codes(badNow)).toEqual(['tdx.input']);
    const noInput = await verifyTdx(undefined as never);
    expect(noInput.outcome).toBe('reject');
    const junkCollateral = await verifyTdx({ ...base, collateral: { tcbInfo: 'x', tcbInfoIssuerChain: 7 } as never });
    expect(junkCollateral.outcome).toBe('reject');
  });
});

describe('createTdxVerifier caching', () => {
  it('caches collateral but still checks time and quote per call', async () => {
    const verifier = createTdxVerifier({ cacheSize: 8 });
    const v = vector('v4-outofdate-trustee');
    const input = { evidence: v.quote, collateral: v.collateral, trust: trustStore(), now: v.now };
    const first = await verifier.verify(input);
    const second = await verifier.verify(input);
    expect(second).toEqual(first);
    expect(second.outcome).toBe('accept-tcb-not-uptodate');
    const late = await verifier.verify({ ...input, now: new Date('2025-12-01T00:00:00Z') });
    expect(codes(late)).toContain('tdx.collateral.expired');
    const tampered = await verifier.verify({ ...input, evidence: flip(v.quote, 48 + 600) });
    expect(codes(tampered)).toEqual(['tdx.quote-signature']);
    const simulated = await verifier.verify({ ...input, trust: trustStore({ simulated: true }) });
    expect(codes(simulated)).toEqual(['attestation.simulated-root']);
    expect((await verifier.verify(input)).outcome).toBe('accept-tcb-not-uptodate');
  });
});
