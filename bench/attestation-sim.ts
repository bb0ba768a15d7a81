/**
 * Simulated-TEE benchmark (prints figures; not a test): evidence generated per second for
 * SEV-SNP (report + VCEK signature) and TDX (quote, QE report, cached collateral), plus one
 * round trip through the real verifier for scale. Exported as `simCases` for bench/attestation.ts.
 * Usage: node bench/attestation-sim.ts [--seconds 2]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { verifyEvidence } from '../src/attestation/evidence/index.ts';
import { openSimulatedTee, type SimulatedTee } from '../src/attestation/sim/index.ts';

export interface BenchCase {
  readonly name: string;
  run: () => Promise<void>;
}

const reportData = new Uint8Array(64).fill(0x42);
let simPromise: Promise<SimulatedTee> | undefined;
let stateDir: string | undefined;

function sim(): Promise<SimulatedTee> {
  stateDir ??= mkdtempSync(path.join(tmpdir(), 'attex-bench-sim-'));
  simPromise ??= openSimulatedTee(stateDir);
  return simPromise;
}

export const simCases: BenchCase[] = [
  { name: 'sim: SNP v3 evidence', run: async () => void (await (await sim()).snpEvidence(reportData, { version: 3 })) },
  { name: 'sim: SNP v5 Turin evidence', run: async () => void (await (await sim()).snpEvidence(reportData, { version: 5, product: 'Turin' })) },
  { name: 'sim: TDX v4 quote + collateral', run: async () => void (await (await sim()).tdxEvidence(reportData)) },
  {
    name: 'sim: TDX generate + verify',
    run: async () => {
      const tee = await sim();
      const result = await verifyEvidence(await tee.tdxEvidence(reportData), { trust: { amd: tee.amdRoots, intel: tee.intelRoots, allowSimulated: true }, now: new Date() });
      if (result.outcome !== 'accept') throw new Error(`simulated TDX evidence rejected: ${JSON.stringify(result.reasons)}`);
    },
  },
];

/** Remove the temporary state directory the cases created (call after running simCases). */
export function disposeSimCases(): void {
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  stateDir = undefined;
  simPromise = undefined;
}

async function measure(c: BenchCase, seconds: number): Promise<number> {
  await c.run(); // warm-up (and first-use costs such as collateral signing)
  let n = 0;
  const start = performance.now();
  const deadline = start + seconds * 1000;
  while (performance.now() < deadline) {
    await c.run();
    n++;
  }
  return n / ((performance.now() - start) / 1000);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '2' } } });
  const seconds = Number(values.seconds);
  try {
    const t0 = performance.now();
    await sim();
    console.log(`simulated TEE state generated in ${(performance.now() - t0).toFixed(0)} ms (two RSA-4096 keys; once per state directory)`);
    const rates: Record<string, number> = {};
    for (const c of simCases) {
      rates[c.name] = await measure(c, seconds);
      console.log(`${c.name.padEnd(34)} ${rates[c.name]!.toFixed(0).padStart(7)} /s`);
    }
    const snp = rates['sim: SNP v3 evidence']!;
    const tdx = rates['sim: TDX v4 quote + collateral']!;
    console.log(`ratio SNP/TDX generation: ${(snp / tdx).toFixed(2)}`);
  } finally {
    disposeSimCases();
  }
}
