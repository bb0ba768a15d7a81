/**
 * Done means: every vendor vector yields exactly expected.json's outcome, TCB status, advisories
 * and fields at its pinned time, through the library and through `attex evidence verify --json`,
 * and the negative vectors are rejected for the right reasons.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadCollateralDir, loadTrustStore, makeEvidencePackage, verifyEvidence } from '../../../src/attestation/index.ts';
import type { TrustStore } from '../../../src/attestation/types.ts';
import { type Vector, loadVectors, repoRoot, runCaptured, verifyArgs } from './vectors.ts';

const vectors = loadVectors();

/** The reference verifier's check names, as our reason codes. */
const REASON_CODE_FOR_CHECK: Record<string, string> = {
  report_signature: 'snp.report-signature',
  vek_signed_by_ask: 'snp.vek-chain',
  openssl_verify_at_now: 'snp.vek-chain',
  cert_tcb_matches_reported_tcb: 'snp.tcb-mismatch',
  hwid_matches_chip_id: 'snp.hwid-mismatch',
  'tcb: no matching TCB level (SGX components / PCESVN)': 'tdx.tcb.no-matching-level',
};

function expectedReasonCodes(v: Vector): string[] {
  return [...new Set(v.expected.expected.reject_reasons.map((r) => REASON_CODE_FOR_CHECK[r] ?? `unmapped: ${r}`))].sort();
}

function expectMatches(v: Vector, result: { kind: string; outcome: string; tcb_status: string | null; advisory_ids: readonly string[]; reasons: readonly { code: string }[]; fields: Readonly<Record<string, unknown>> }): void {
  const exp = v.expected;
  expect(result.kind).toBe(exp.kind);
  expect(result.outcome).toBe(exp.expected.outcome);
  expect(result.tcb_status).toBe(exp.expected.tcb_status ?? null);
  expect([...result.advisory_ids]).toEqual(exp.expected.advisory_ids ?? []);
  for (const [name, value] of Object.entries(exp.fields)) {
    expect(result.fields[name], `field ${name}`).toEqual(value);
  }
  if (exp.expected.outcome === 'reject') {
    expect([...new Set(result.reasons.map((r) => r.code))].sort()).toEqual(expectedReasonCodes(v));
  } else {
    expect(result.reasons).toEqual([]);
  }
}

describe('vendor vectors', () => {
  let trust: TrustStore;
  beforeAll(async () => {
    trust = await loadTrustStore({ allowSimulated: false });
  });

  it('covers every kind, both negative vectors and every vector in expected.json', () => {
    expect(vectors.length).toBe(11);
    expect(new Set(vectors.map((v) => v.expected.kind))).toEqual(new Set(['snp', 'azure-hcl-snp', 'tdx']));
    expect(vectors.filter((v) => v.expected.expected.outcome === 'reject').map((v) => v.name).sort()).toEqual([
      'snp/negative-bad-vcek-trustee',
      'tdx/v4-spr-go-tdx-guest',
    ]);
  });

  for (const v of vectors) {
    it(`${v.name}: library verifyEvidence`, async () => {
      const pkg = makeEvidencePackage({
        kind: v.expected.kind,
        evidence: v.evidence,
        ...(v.cert !== undefined && { certs: [v.cert] }),
        ...(v.collateralDir !== undefined && { collateral: await loadCollateralDir(v.collateralDir) }),
      });
      expectMatches(v, await verifyEvidence(pkg, { trust, now: new Date(v.expected.now) }));
    });

    it(`${v.name}: attex evidence verify --json`, async () => {
      const run = await runCaptured([...verifyArgs(v), '--json']);
      expect(run.code, run.stderr).toBe(v.expected.expected.outcome === 'reject' ? 1 : 0);
      const out = JSON.parse(run.stdout) as Record<string, unknown>;
      expect(Object.keys(out).sort()).toEqual(['advisory_ids', 'fields', 'kind', 'outcome', 'reasons', 'simulated', 'tcb_status', 'tee']);
      expect(out['simulated']).toBe(false);
      expect(out['tee']).toBe(v.expected.kind);
      expectMatches(v, out as never);
    });
  }

  it('verifies at the wrong time: the VLEK a year after issue is rejected', async () => {
    const v = vectors.find((x) => x.name === 'snp/milan-v3-vlek-trustee')!;
    const pkg = makeEvidencePackage({ kind: 'snp', evidence: v.evidence, certs: [v.cert!] });
    const result = await verifyEvidence(pkg, { trust, now: new Date('2026-06-01T00:00:00Z') });
    expect(result.outcome).toBe('reject');
  });

  it('runs as a real child process (node src/cli/main.ts)', async () => {
    const v = vectors.find((x) => x.name === 'tdx/v4-outofdate-trustee')!;
    const { stdout } = await promisify(execFile)(process.execPath, [path.join(repoRoot, 'src/cli/main.ts'), ...verifyArgs(v), '--json'], {
      cwd: repoRoot,
      timeout: 60_000,
    });
    const out = JSON.parse(stdout) as { outcome: string; tcb_status: string };
    expect(out.outcome).toBe('accept-tcb-not-uptodate');
    expect(out.tcb_status).toBe('OutOfDate');

    const neg = vectors.find((x) => x.name === 'snp/negative-bad-vcek-trustee')!;
    const failed = await promisify(execFile)(process.execPath, [path.join(repoRoot, 'src/cli/main.ts'), ...verifyArgs(neg)], { cwd: repoRoot }).then(
      () => null,
      (err: { code: number; stdout: string }) => err,
    );
    expect(failed?.code).toBe(1);
    expect(failed?.stdout).toMatch(/outcome\s+reject/);
  });
});
