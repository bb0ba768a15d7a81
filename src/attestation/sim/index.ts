/**
 * The software-emulated TEE: a simulated AMD and Intel PKI persisted in a state directory, and
 * evidence (SEV-SNP reports, TDX quotes with collateral, Azure HCL reports) that is byte-for-byte
 * in the vendors' formats and verifies with the real verifiers once the simulated roots are in
 * the trust store with `allowSimulated`. It proves nothing about hardware: it exists so the whole
 * system runs and is tested on machines without a TEE.
 */
import 'reflect-metadata';
import { X509Certificate } from '@peculiar/x509';
import { AttexError } from '../../errors/index.ts';
import { type EvidencePackage, makeEvidencePackage } from '../evidence/package.ts';
import type { AmdProduct, AmdRootSet, IntelRoot } from '../types.ts';
import { buildHclReport, hclClaims, hclReportDataFor } from './hcl.ts';
import { combineMeasurement, sourceTreeDigest } from './measurement.ts';
import { AMD_PRODUCTS, SIM_TCB } from './pki.ts';
import { buildSnpReport } from './snp-report.ts';
import { loadExistingState, loadOrCreateState, type StoredMaterial } from './store.ts';
import { buildTdxCollateral, type SimTdxCollateral } from './tdx-collateral.ts';
import { buildTdxQuote } from './tdx-quote.ts';

export { buildHclReport, hclClaims, hclReportDataFor } from './hcl.ts';
export { combineMeasurement, sourceTreeDigest, SOURCE_ROOT } from './measurement.ts';

export interface SnpEvidenceOptions {
  readonly version?: 3 | 5;
  readonly product?: AmdProduct;
}

export interface HclEvidenceOptions {
  readonly product?: AmdProduct;
  /** Pad the HCL report to this size, as the fixed-size NV index does (Azure: 2600). */
  readonly totalSize?: number;
  /** JWKs to list under the claims' `keys` (Azure lists HCLAkPub and HCLEkPub). */
  readonly keys?: readonly Record<string, unknown>[];
}

export interface SimulatedTee {
  readonly amdRoots: AmdRootSet[];
  readonly intelRoots: IntelRoot[];
  /** Directory holding the simulated roots as PEM (roots/amd/*.pem, roots/intel/sgx_root_ca.pem). */
  readonly rootsDir: string;
  /** 48 bytes: the SNP MEASUREMENT and the TDX MRTD of every report. */
  readonly measurement: Uint8Array;
  snpEvidence(reportData: Uint8Array, opts?: SnpEvidenceOptions): Promise<EvidencePackage>;
  tdxEvidence(reportData: Uint8Array): Promise<EvidencePackage>;
  /** An Azure-style HCL report whose runtime claims carry `userData` (64 bytes). */
  azureHclEvidence(userData: Uint8Array, opts?: HclEvidenceOptions): Promise<EvidencePackage>;
}

let treeDigest: Promise<Uint8Array> | undefined;

function checkReportData(reportData: Uint8Array): void {
  if (!(reportData instanceof Uint8Array) || reportData.length !== 64) {
    throw new AttexError('sim.report-data', `report data must be exactly 64 bytes, got ${reportData?.length ?? 'none'}`);
  }
}

function rootSets(m: StoredMaterial): { amd: AmdRootSet[]; intel: IntelRoot[] } {
  const amd = AMD_PRODUCTS.map((product) => ({
    product,
    ark: new X509Certificate(m.certs[`ark_${product.toLowerCase()}`]!),
    ask: new X509Certificate(m.certs[`ask_${product.toLowerCase()}`]!),
    simulated: true,
  }));
  return { amd, intel: [{ root: new X509Certificate(m.certs['sgx_root_ca']!), simulated: true }] };
}

/** The simulated roots of an existing state directory, without generating anything. */
export async function loadSimulatedRoots(stateDir: string): Promise<{ amd: AmdRootSet[]; intel: IntelRoot[]; rootsDir: string }> {
  const m = await loadExistingState(stateDir);
  return { ...rootSets(m), rootsDir: m.rootsDir };
}

function pemToDer(pem: string): Uint8Array {
  return new Uint8Array(new X509Certificate(pem).rawData);
}

/** Open (creating on first use) the simulated TEE whose PKI lives in `stateDir`. */
export async function openSimulatedTee(stateDir: string, opts: { measurementInput?: Uint8Array } = {}): Promise<SimulatedTee> {
  const m = await loadOrCreateState(stateDir);
  treeDigest ??= sourceTreeDigest();
  const measurement = combineMeasurement(await treeDigest, opts.measurementInput);
  const { amd, intel } = rootSets(m);
  const pckChainPem = [m.certs['pck']!, m.certs['pck_platform_ca']!, m.certs['sgx_root_ca']!].map((p) => p.trim()).join('\n') + '\n';
  let collateral: SimTdxCollateral | undefined;
  const vcekDer = new Map(AMD_PRODUCTS.map((p) => [p, pemToDer(m.certs[`vcek_${p.toLowerCase()}`]!)]));

  const snpReport = (reportData: Uint8Array, version: 3 | 5, product: AmdProduct) => {
    const lower = product.toLowerCase();
    const report = buildSnpReport({
      version, product, reportData, measurement, chipId: m.chipId, tcb: SIM_TCB[product], vcekKey: m.keys[`vcek_${lower}`]!,
    });
    return { report, vcek: vcekDer.get(product)! };
  };
  const checkOptions = (version: unknown, product: unknown) => {
    if (version !== 3 && version !== 5) throw new AttexError('sim.options', 'SNP report version must be 3 or 5');
    if (!AMD_PRODUCTS.includes(product as AmdProduct)) throw new AttexError('sim.options', `product must be one of ${AMD_PRODUCTS.join(', ')}`);
  };

  return {
    amdRoots: amd,
    intelRoots: intel,
    rootsDir: m.rootsDir,
    measurement,
    async snpEvidence(reportData, o = {}) {
      checkReportData(reportData);
      const version = o.version ?? 3;
      const product = o.product ?? 'Milan';
      checkOptions(version, product);
      const { report, vcek } = snpReport(reportData, version, product);
      return makeEvidencePackage({ kind: 'snp', evidence: report, certs: [vcek] });
    },
    async azureHclEvidence(userData, o = {}) {
      checkReportData(userData);
      const product = o.product ?? 'Milan';
      checkOptions(3, product);
      const claims = hclClaims(userData, o.keys);
      const { report, vcek } = snpReport(hclReportDataFor(claims), 3, product);
      return makeEvidencePackage({ kind: 'azure-hcl-snp', evidence: buildHclReport(report, claims, o.totalSize), certs: [vcek] });
    },
    async tdxEvidence(reportData) {
      checkReportData(reportData);
      const now = new Date();
      // Collateral lives 30 days; refresh daily so it is always comfortably current.
      if (!collateral || now.getTime() - collateral.issuedAt.getTime() > 24 * 3600 * 1000) {
        collateral = await buildTdxCollateral({
          now, sgx: m.sgx, tcbSigningKey: m.keys['tcb_signing']!, tcbSigningPem: m.certs['tcb_signing']!,
          rootPem: m.certs['sgx_root_ca']!, rootKey: m.keys['sgx_root_ca']!,
          platformCaPem: m.certs['pck_platform_ca']!, platformCaKey: m.keys['pck_platform_ca']!,
        });
      }
      const quote = buildTdxQuote({
        reportData, mrTd: measurement, attestationKey: m.keys['qe_attestation']!, pckKey: m.keys['pck']!,
        cpuSvn: m.sgx.cpuSvn, pckChainPem,
      });
      const { issuedAt: _issued, ...items } = collateral;
      return makeEvidencePackage({ kind: 'tdx', evidence: quote, collateral: items });
    },
  };
}
