/**
 * A throwaway AMD-shaped PKI for tests: an RSA-PSS ARK and ASK, a P-384 VCEK carrying the KDS
 * extensions, SEV-SNP reports signed with it, and CRLs signed by the ARK. Nothing here is trusted
 * unless a test puts the root set into its TrustStore.
 */
import type { webcrypto } from 'node:crypto';
import 'reflect-metadata';
import {
  BasicConstraintsExtension, Extension, KeyUsageFlags, KeyUsagesExtension, X509Certificate, X509CertificateGenerator, X509CrlGenerator,
} from '@peculiar/x509';
import type { AmdProduct, AmdRootSet } from '../../../src/attestation/types.ts';

const PSS = { name: 'RSA-PSS', hash: 'SHA-384', saltLength: 48 } as const;
const DAY = 86_400_000;

export interface ForgedPki {
  readonly product: AmdProduct;
  readonly ark: X509Certificate;
  readonly ask: X509Certificate;
  readonly arkKeys: webcrypto.CryptoKeyPair;
  readonly askKeys: webcrypto.CryptoKeyPair;
  readonly vcek: X509Certificate;
  readonly vcekKeys: webcrypto.CryptoKeyPair;
  readonly chipId: Uint8Array;
  readonly tcb: Uint8Array;
  readonly notBefore: Date;
  rootSet(simulated: boolean): AmdRootSet;
}

const derInt = (n: number): Uint8Array => (n < 0x80 ? new Uint8Array([0x02, 1, n]) : new Uint8Array([0x02, 2, 0, n]));
const ia5 = (s: string): Uint8Array => new Uint8Array([0x16, s.length, ...new TextEncoder().encode(s)]);

async function rsaKeys(): Promise<webcrypto.CryptoKeyPair> {
  return crypto.subtle.generateKey(
    { name: 'RSA-PSS', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-384' },
    true,
    ['sign', 'verify'],
  );
}

/** Milan/Genoa TCB_VERSION bytes: bl, tee, 4 reserved, snp, ucode. */
export function milanTcb(bl: number, tee: number, snp: number, ucode: number): Uint8Array {
  return new Uint8Array([bl, tee, 0, 0, 0, 0, snp, ucode]);
}

export interface ForgeOptions {
  readonly product?: AmdProduct;
  readonly cn?: string;
  readonly notBefore?: Date;
  readonly vcekDays?: number;
  readonly hwIdEncoding?: 'raw' | 'octet';
  /** How the ASK signs the VCEK (default: AMD's RSA-PSS SHA-384, salt 48). */
  readonly vcekSigningAlgorithm?: { name: 'RSA-PSS'; hash: string; saltLength: number };
  /** Extensions added to the VCEK after the KDS ones. */
  readonly vcekExtraExtensions?: Extension[];
  /** Leave the ASK without basicConstraints / keyUsage (AMD's ASK has CA:TRUE, keyCertSign). */
  readonly askWithoutCaExtensions?: boolean;
}

export async function forgePki(opts: ForgeOptions = {}): Promise<ForgedPki> {
  const product = opts.product ?? 'Milan';
  const cn = opts.cn ?? 'Test';
  const notBefore = opts.notBefore ?? new Date(Date.UTC(2024, 0, 1));
  const far = new Date(notBefore.getTime() + 3650 * DAY);
  const arkKeys = await rsaKeys();
  const askKeys = await rsaKeys();
  const vcekKeys = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-384' }, true, ['sign', 'verify']);
  const ark = await X509CertificateGenerator.create({
    serialNumber: '01',
    subject: `CN=ARK-${product}-${cn}`,
    issuer: `CN=ARK-${product}-${cn}`,
    notBefore,
    notAfter: far,
    publicKey: arkKeys.publicKey,
    signingKey: arkKeys.privateKey,
    signingAlgorithm: PSS,
    extensions: [new BasicConstraintsExtension(true, undefined, true), new KeyUsagesExtension(KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign, true)],
  });
  const ask = await X509CertificateGenerator.create({
    serialNumber: '0100',
    subject: `CN=SEV-${product}`,
    issuer: ark.subject,
    notBefore,
    notAfter: far,
    publicKey: askKeys.publicKey,
    signingKey: arkKeys.privateKey,
    signingAlgorithm: PSS,
    extensions: opts.askWithoutCaExtensions
      ? []
      : [new BasicConstraintsExtension(true, 0, true), new KeyUsagesExtension(KeyUsageFlags.keyCertSign, true)],
  });
  const chipId = crypto.getRandomValues(new Uint8Array(64));
  const tcb = milanTcb(3, 0, 8, 115);
  const vcek = await X509CertificateGenerator.create({
    subject: 'CN=SEV-VCEK',
    issuer: ask.subject,
    notBefore,
    notAfter: new Date(notBefore.getTime() + (opts.vcekDays ?? 2555) * DAY),
    publicKey: vcekKeys.publicKey,
    signingKey: askKeys.privateKey,
    signingAlgorithm: opts.vcekSigningAlgorithm ?? PSS,
    extensions: [
      new Extension('1.3.6.1.4.1.3704.1.1', false, derInt(0)),
      new Extension('1.3.6.1.4.1.3704.1.2', false, ia5(`${product}-B0`)),
      new Extension('1.3.6.1.4.1.3704.1.3.1', false, derInt(tcb[0]!)),
      new Extension('1.3.6.1.4.1.3704.1.3.2', false, derInt(tcb[1]!)),
      new Extension('1.3.6.1.4.1.3704.1.3.3', false, derInt(tcb[6]!)),
      new Extension('1.3.6.1.4.1.3704.1.3.8', false, derInt(tcb[7]!)),
      new Extension('1.3.6.1.4.1.3704.1.4', false, opts.hwIdEncoding === 'octet' ? new Uint8Array([0x04, 64, ...chipId]) : chipId),
      ...(opts.vcekExtraExtensions ?? []),
    ],
  });
  return {
    product,
    ark,
    ask,
    arkKeys,
    askKeys,
    vcek,
    vcekKeys,
    chipId,
    tcb,
    notBefore,
    rootSet: (simulated) => ({ product, ark, ask, simulated }),
  };
}

/** A v3 Milan report (CPUID family 0x19 model 0x01) signed by the forged VCEK. */
export async function forgeReport(pki: ForgedPki, reportData: Uint8Array, opts: { version?: 2 | 3 | 5 } = {}): Promise<Uint8Array> {
  const report = new Uint8Array(1184);
  const view = new DataView(report.buffer);
  const version = opts.version ?? 3;
  view.setUint32(0x00, version, true);
  view.setBigUint64(0x08, 0x30000n, true);
  view.setUint32(0x30, 0, true); // VMPL
  view.setUint32(0x34, 1, true); // ECDSA P-384 / SHA-384
  report.set(pki.tcb, 0x38);
  view.setBigUint64(0x40, 1n, true);
  view.setUint32(0x48, 0, true); // signed by the VCEK
  report.set(reportData, 0x50);
  report.set(crypto.getRandomValues(new Uint8Array(48)), 0x90);
  report.set(pki.tcb, 0x180);
  if (version >= 3) report.set([0x19, 0x01, 0x01], 0x188);
  report.set(pki.chipId, 0x1a0);
  report.set(pki.tcb, 0x1e0);
  report.set(pki.tcb, 0x1f0);
  return signReport(pki, report);
}

/** (Re)sign bytes [0, 0x2A0) of a report with the forged VCEK; R and S little-endian, 72 bytes. */
export async function signReport(pki: ForgedPki, report: Uint8Array): Promise<Uint8Array> {
  const out = report.slice();
  const sig = new Uint8Array(await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-384' }, pki.vcekKeys.privateKey, out.subarray(0, 0x2a0)));
  out.fill(0, 0x2a0, 0x2a0 + 144);
  out.set(sig.subarray(0, 48).reverse(), 0x2a0);
  out.set(sig.subarray(48, 96).reverse(), 0x2e8);
  return out;
}

export async function forgeCrl(
  issuer: X509Certificate,
  signingKey: webcrypto.CryptoKey,
  revokedSerials: string[],
  window: { thisUpdate: Date; nextUpdate?: Date },
  extensions: Extension[] = [],
): Promise<Uint8Array> {
  const crl = await X509CrlGenerator.create({
    issuer: issuer.subject,
    thisUpdate: window.thisUpdate,
    nextUpdate: window.nextUpdate,
    entries: revokedSerials.map((serialNumber) => ({ serialNumber, revocationDate: window.thisUpdate })),
    signingKey,
    signingAlgorithm: PSS,
    extensions,
  });
  return new Uint8Array(crl.rawData);
}
