/**
 * Attestation verification throughput, single-threaded (so the figures are per core):
 *   - SEV-SNP cold: a fresh verifier per verification (VEK parse + three RSA-PSS chain checks)
 *   - SEV-SNP with the chain cached (report signature + per-call checks only)
 *   - TDX with full PCS collateral, cold and cached
 *   - the front door (verifyEvidence) as the broker calls it
 * Real vendor vectors from ../shared/vectors at their pinned times.
 *
 * Usage: npm run bench:attestation  [ATTEX_BENCH_MS=1500 per case]
 *
 * SIMULATED EVIDENCE: cases from bench/attestation-sim.ts are appended when that file exists:
 * it exports `simCases: BenchCase[]` (a `{ name, run }` list) and optionally `disposeSimCases()`.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { loadCollateralDir, loadTrustStore, makeEvidencePackage, verifyEvidence } from '../src/attestation/index.ts';
import { createSnpVerifier } from '../src/attestation/snp/index.ts';
import { createTdxVerifier } from '../src/attestation/tdx/index.ts';
import type { SnpVerifyInput, TdxVerifyInput, VerificationResult } from '../src/attestation/types.ts';

export interface BenchCase {
  readonly name: string;
  /** One operation; its result is checked by `check` once before timing starts. */
  run(): Promise<unknown>;
  check?(result: unknown): string | null;
}

const here = path.dirname(fileURLToPath(import.meta.url));
const vectors = path.resolve(here, '../../shared/vectors');
const budgetMs = Number(process.env['ATTEX_BENCH_MS'] ?? 1500);

function expectOutcome(outcome: string): (result: unknown) => string | null {
  return (result) => ((result as VerificationResult).outcome === outcome ? null : `expected ${outcome}, got ${(result as VerificationResult).outcome}`);
}

async function measure(c: BenchCase): Promise<{ opsPerSec: number; ops: number }> {
  const first = await c.run();
  const problem = c.check?.(first) ?? null;
  if (problem !== null) throw new Error(`${c.name}: ${problem}`);
  for (let i = 0; i < 3; i++) await c.run();
  let ops = 0;
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < budgetMs) {
    await c.run();
    ops++;
    elapsed = performance.now() - start;
  }
  return { opsPerSec: (ops * 1000) / elapsed, ops };
}

async function realCases(): Promise<BenchCase[]> {
  const trust = await loadTrustStore({ allowSimulated: false });
  const snpDir = path.join(vectors, 'snp/genoa-v5-oak');
  const snpInput: SnpVerifyInput = {
    evidence: new Uint8Array(readFileSync(path.join(snpDir, 'report.bin'))),
    vekCert: new Uint8Array(readFileSync(path.join(snpDir, 'vcek.der'))),
    trust,
    now: new Date('2025-09-06T00:00:00Z'),
  };
  const tdxDir = path.join(vectors, 'tdx/v4-dcap-qvl');
  const tdxInput: TdxVerifyInput = {
    evidence: new Uint8Array(readFileSync(path.join(tdxDir, 'quote.bin'))),
    collateral: await loadCollateralDir(path.join(tdxDir, 'collateral')),
    trust,
    now: new Date('2025-07-04T00:00:00Z'),
  };
  const snpCached = createSnpVerifier();
  const tdxCached = createTdxVerifier();
  const snpPackage = makeEvidencePackage({ kind: 'snp', evidence: snpInput.evidence, certs: [snpInput.vekCert] });
  const tdxPackage = makeEvidencePackage({ kind: 'tdx', evidence: tdxInput.evidence, ...(tdxInput.collateral && { collateral: tdxInput.collateral }) });
  return [
    { name: 'SNP verify, cold (fresh verifier)', run: () => createSnpVerifier().verify(snpInput), check: expectOutcome('accept') },
    { name: 'SNP verify, chain cached', run: () => snpCached.verify(snpInput), check: expectOutcome('accept') },
    { name: 'TDX verify + collateral, cold (fresh verifier)', run: () => createTdxVerifier().verify(tdxInput), check: expectOutcome('accept') },
    { name: 'TDX verify + collateral, cached', run: () => tdxCached.verify(tdxInput), check: expectOutcome('accept') },
    { name: 'verifyEvidence(SNP package)', run: () => verifyEvidence(snpPackage, { trust, now: snpInput.now }), check: expectOutcome('accept') },
    { name: 'verifyEvidence(TDX package)', run: () => verifyEvidence(tdxPackage, { trust, now: tdxInput.now }), check: expectOutcome('accept') },
  ];
}

// ---- Simulated-evidence generation figures (owned by the simulated-TEE module) ----------------
interface SimModule {
  readonly simCases?: unknown;
  readonly cases?: unknown;
  readonly disposeSimCases?: () => void;
}

async function simulatedCases(): Promise<{ cases: BenchCase[]; dispose: () => void }> {
  const file = path.join(here, 'attestation-sim.ts');
  if (!existsSync(file)) return { cases: [], dispose: () => undefined };
  const mod = (await import(pathToFileURL(file).href)) as SimModule;
  const cases = mod.simCases ?? mod.cases;
  if (!Array.isArray(cases)) throw new Error('bench/attestation-sim.ts must export `simCases: BenchCase[]`');
  return { cases: cases as BenchCase[], dispose: () => mod.disposeSimCases?.() };
}
// ------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const sim = await simulatedCases();
  const cases = [...(await realCases()), ...sim.cases];
  console.log(`attestation benchmark: single thread, ${budgetMs} ms per case, node ${process.version}`);
  const width = Math.max(...cases.map((c) => c.name.length));
  const figures = new Map<string, number>();
  for (const c of cases) {
    const { opsPerSec, ops } = await measure(c);
    figures.set(c.name, opsPerSec);
    console.log(`  ${c.name.padEnd(width)}  ${opsPerSec.toFixed(0).padStart(7)} /s per core  (${ops} ops, ${(1000 / opsPerSec).toFixed(2)} ms each)`);
  }
  const ratio = (a: string, b: string) => {
    const [x, y] = [figures.get(a), figures.get(b)];
    return x && y ? (x / y).toFixed(1) : '-';
  };
  sim.dispose();
  console.log(`  SNP cached / cold: ${ratio('SNP verify, chain cached', 'SNP verify, cold (fresh verifier)')}x;  TDX cached / cold: ${ratio('TDX verify + collateral, cached', 'TDX verify + collateral, cold (fresh verifier)')}x`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  await main();
}
