/** The simulated TEE as an evidence provider (for `attex dev`, CI and machines without a TEE). */
import type { EvidencePackage } from '../evidence/package.ts';
import { openSimulatedTee, type SimulatedTee } from '../sim/index.ts';
import type { AmdProduct } from '../types.ts';
import { checkReportData } from './errors.ts';
import type { EvidenceProvider } from './provider.ts';

export interface SimProviderOptions {
  readonly stateDir: string;
  readonly kind?: 'snp' | 'tdx';
  readonly version?: 3 | 5;
  readonly product?: AmdProduct;
  readonly measurementInput?: Uint8Array;
}

export function simProvider(opts: SimProviderOptions): EvidenceProvider {
  let tee: Promise<SimulatedTee> | undefined;
  return {
    name: 'sim',
    async collect(reportData: Uint8Array): Promise<EvidencePackage> {
      checkReportData(reportData);
      tee ??= openSimulatedTee(opts.stateDir, opts.measurementInput ? { measurementInput: opts.measurementInput } : {}).catch((err: unknown) => {
        tee = undefined; // let a later call retry instead of caching the failure
        throw err;
      });
      const sim = await tee;
      if (opts.kind === 'tdx') return sim.tdxEvidence(reportData);
      return sim.snpEvidence(reportData, { version: opts.version ?? 3, product: opts.product ?? 'Milan' });
    },
  };
}
