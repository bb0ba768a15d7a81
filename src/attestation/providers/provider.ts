import type { EvidencePackage } from '../evidence/package.ts';

/** A source of hardware (or simulated) evidence bound to 64 bytes of report data. */
export interface EvidenceProvider {
  readonly name: string;
  collect(reportData: Uint8Array): Promise<EvidencePackage>;
}
