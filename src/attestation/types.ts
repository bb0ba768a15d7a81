/**
 * Shared vocabulary of the attestation modules. The verifiers (snp, azure-hcl, tdx), the
 * evidence front door, the simulated TEE, appraisal, the broker and receipts all speak these
 * types, so each can be built and tested on its own.
 */
import type { X509Certificate } from '@peculiar/x509';
import type { Reason } from '../errors/index.ts';

export type EvidenceKind = 'snp' | 'azure-hcl-snp' | 'tdx';

/** What the TEE is, as named in appraisals, tokens and receipts ("sim-" when the root is simulated). */
export type TeeName = 'snp' | 'azure-hcl-snp' | 'tdx' | 'sim-snp' | 'sim-tdx';

/** Meanings exactly as `conventions.outcome` in the vendor vectors' expected.json. */
export type Outcome = 'accept' | 'accept-tcb-not-uptodate' | 'reject' | 'chain-only';

export type AmdProduct = 'Milan' | 'Genoa' | 'Turin';

/** One AMD certificate family: the ARK and the intermediates it signs. */
export interface AmdRootSet {
  readonly product: AmdProduct;
  readonly ark: X509Certificate;
  /** Signs VCEKs. */
  readonly ask?: X509Certificate;
  /** Signs VLEKs. */
  readonly asvk?: X509Certificate;
  /** True for the simulated TEE's roots: accepted only with allowSimulated. */
  readonly simulated: boolean;
}

export interface IntelRoot {
  readonly root: X509Certificate;
  readonly simulated: boolean;
}

/** The trust anchors a verification may chain to. Nothing outside it is ever trusted. */
export interface TrustStore {
  readonly amd: readonly AmdRootSet[];
  readonly intel: readonly IntelRoot[];
  /** Accept evidence that chains to a simulated root (flagged `simulated` in the result). */
  readonly allowSimulated: boolean;
}

/** Intel PCS collateral exactly as served (raw bytes: signatures cover the inner JSON bytes). */
export interface TdxCollateral {
  /** PCS TCB info body: {"tcbInfo":{...},"signature":"<hex>"} */
  readonly tcbInfo?: Uint8Array;
  /** PEM: TCB signing certificate, then the root CA. */
  readonly tcbInfoIssuerChain?: string;
  /** PCS QE identity body: {"enclaveIdentity":{...},"signature":"<hex>"} */
  readonly qeIdentity?: Uint8Array;
  readonly qeIdentityIssuerChain?: string;
  /** DER CRL issued by the PCK Platform or Processor CA. */
  readonly pckCrl?: Uint8Array;
  readonly pckCrlIssuerChain?: string;
  /** DER CRL issued by the Intel SGX Root CA. */
  readonly rootCaCrl?: Uint8Array;
}

export interface SnpVerifyInput {
  /** The 1184-byte attestation report (or the HCL blob, for azure-hcl). */
  readonly evidence: Uint8Array;
  /** The VCEK or VLEK certificate, DER. */
  readonly vekCert: Uint8Array;
  /** Optional AMD CRLs (DER) issued by the ARK. */
  readonly crls?: readonly Uint8Array[];
  readonly trust: TrustStore;
  readonly now: Date;
}

export interface TdxVerifyInput {
  readonly evidence: Uint8Array;
  readonly collateral?: TdxCollateral;
  readonly trust: TrustStore;
  readonly now: Date;
}

/** The verifier's verdict. `fields` uses the names and encodings of expected.json. */
export interface VerificationResult {
  readonly kind: EvidenceKind;
  readonly tee: TeeName;
  readonly simulated: boolean;
  readonly outcome: Outcome;
  /** Intel TCB status string, "no matching TCB level", or null (SNP, or TDX without collateral). */
  readonly tcb_status: string | null;
  readonly advisory_ids: readonly string[];
  readonly reasons: readonly Reason[];
  readonly fields: Readonly<Record<string, unknown>>;
}
