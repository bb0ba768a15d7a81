/**
 * Generates the simulated vendor PKI: an AMD-shaped chain (ARK -> ASK -> VCEK per product) and an
 * Intel-shaped one (SGX Root CA -> PCK Platform CA -> PCK, plus a TCB Signing certificate). Every
 * subject says "attex simulated" so nobody mistakes these roots for the vendors'.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { type KeyObject, KeyObject as NodeKeyObject, randomBytes, webcrypto } from 'node:crypto';
import type { AmdProduct } from '../types.ts';
import { SGX_EXTENSION_OID, type SgxPckFacts, type SimTcb, sgxExtensionValue, vcekExtensionValues } from './vendor-extensions.ts';

x509.cryptoProvider.set(webcrypto);

export const AMD_PRODUCTS: readonly AmdProduct[] = ['Milan', 'Genoa', 'Turin'];

/** The reported TCB of the simulated platform, per product (values seen on real parts). */
export const SIM_TCB: Record<AmdProduct, SimTcb> = {
  Milan: { bl: 4, tee: 0, snp: 24, ucode: 219 },
  Genoa: { bl: 10, tee: 0, snp: 25, ucode: 84 },
  Turin: { fmc: 0, bl: 1, tee: 0, snp: 2, ucode: 71 },
};

const AMD_SUFFIX = 'O=attex simulated TEE (not AMD)';
const INTEL_SUFFIX = 'O=attex simulated TEE (not Intel)';
const RSA_PSS = { name: 'RSA-PSS', hash: 'SHA-384', saltLength: 48 } as const;
const ECDSA_SHA256 = { name: 'ECDSA', hash: 'SHA-256' } as const;
const YEAR_MS = 365 * 24 * 3600 * 1000;

export interface GeneratedMaterial {
  readonly createdAt: string;
  readonly chipId: Uint8Array;
  readonly sgx: SgxPckFacts;
  /** PEM certificates by role, e.g. "ark_milan", "vcek_milan", "sgx_root_ca", "pck". */
  readonly certs: Record<string, string>;
  /** PKCS#8 private keys by role (secret: persisted 0600, never logged). */
  readonly keys: Record<string, KeyObject>;
}

async function ecKeyPair(curve: 'P-256' | 'P-384'): Promise<webcrypto.CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: curve }, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
}

async function rsaPssKeyPair(): Promise<webcrypto.CryptoKeyPair> {
  const params = { name: 'RSA-PSS', modulusLength: 4096, publicExponent: Uint8Array.of(1, 0, 1), hash: 'SHA-384' };
  return (await webcrypto.subtle.generateKey(params, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
}

function serial(): string {
  const bytes = randomBytes(16);
  bytes[0] = bytes[0]! & 0x7f;
  return bytes.toString('hex');
}

interface CertSpec {
  readonly subject: string;
  readonly issuer: string;
  readonly publicKey: webcrypto.CryptoKey;
  readonly issuerPublicKey: webcrypto.CryptoKey;
  readonly signingKey: webcrypto.CryptoKey;
  readonly algorithm: typeof RSA_PSS | typeof ECDSA_SHA256;
  readonly notBefore: Date;
  readonly years: number;
  readonly ca: boolean;
  readonly pathLength?: number;
  readonly serialNumber?: string;
  readonly extra?: Array<[string, Uint8Array]>;
}

async function makeCert(spec: CertSpec): Promise<x509.X509Certificate> {
  const usage = spec.ca
    ? x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign
    : x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.nonRepudiation;
  const extensions: x509.Extension[] = [
    await x509.SubjectKeyIdentifierExtension.create(spec.publicKey),
    await x509.AuthorityKeyIdentifierExtension.create(spec.issuerPublicKey),
    new x509.BasicConstraintsExtension(spec.ca, spec.ca ? spec.pathLength : undefined, true),
    new x509.KeyUsagesExtension(usage, true),
    ...(spec.extra ?? []).map(([oid, value]) => new x509.Extension(oid, false, value)),
  ];
  return x509.X509CertificateGenerator.create({
    serialNumber: spec.serialNumber ?? serial(),
    subject: spec.subject,
    issuer: spec.issuer,
    notBefore: spec.notBefore,
    notAfter: new Date(spec.notBefore.getTime() + spec.years * YEAR_MS),
    signingAlgorithm: spec.algorithm,
    publicKey: spec.publicKey,
    signingKey: spec.signingKey,
    extensions,
  });
}

function toKeyObject(key: webcrypto.CryptoKey): KeyObject {
  return NodeKeyObject.from(key);
}

/** Generate a complete simulated PKI. Slow (two RSA-4096 keys): done once per state directory. */
export async function generateMaterial(now: Date = new Date()): Promise<GeneratedMaterial> {
  // Back-date a day so a verifier with a slightly slow clock still accepts fresh evidence.
  const notBefore = new Date(Math.floor(now.getTime() / 1000) * 1000 - 24 * 3600 * 1000);
  const certs: Record<string, string> = {};
  const keys: Record<string, KeyObject> = {};
  const chipId = new Uint8Array(randomBytes(64));

  // AMD: one ARK key and one ASK key, certified once per product family.
  const [ark, ask] = await Promise.all([rsaPssKeyPair(), rsaPssKeyPair()]);
  keys['amd_ark'] = toKeyObject(ark.privateKey);
  keys['amd_ask'] = toKeyObject(ask.privateKey);
  for (const product of AMD_PRODUCTS) {
    const lower = product.toLowerCase();
    const arkName = `CN=ARK-${product} (attex simulated), ${AMD_SUFFIX}`;
    const askName = `CN=SEV-${product} (attex simulated), ${AMD_SUFFIX}`;
    const arkCert = await makeCert({
      subject: arkName, issuer: arkName, publicKey: ark.publicKey, issuerPublicKey: ark.publicKey, signingKey: ark.privateKey,
      algorithm: RSA_PSS, notBefore, years: 25, ca: true, pathLength: 1,
    });
    const askCert = await makeCert({
      subject: askName, issuer: arkName, publicKey: ask.publicKey, issuerPublicKey: ark.publicKey, signingKey: ark.privateKey,
      algorithm: RSA_PSS, notBefore, years: 25, ca: true, pathLength: 0,
    });
    const vcek = await ecKeyPair('P-384');
    const vcekCert = await makeCert({
      subject: `CN=SEV-VCEK (attex simulated), ${AMD_SUFFIX}`, issuer: askName, publicKey: vcek.publicKey,
      issuerPublicKey: ask.publicKey, signingKey: ask.privateKey, algorithm: RSA_PSS, notBefore, years: 7, ca: false,
      serialNumber: '01', extra: vcekExtensionValues(product, SIM_TCB[product], chipId),
    });
    certs[`ark_${lower}`] = arkCert.toString('pem');
    certs[`ask_${lower}`] = askCert.toString('pem');
    certs[`vcek_${lower}`] = vcekCert.toString('pem');
    keys[`vcek_${lower}`] = toKeyObject(vcek.privateKey);
  }

  // Intel: root -> PCK Platform CA -> PCK; root -> TCB Signing. All P-256 / ECDSA-SHA256.
  const [root, platform, pck, tcbSigning, attestation] = await Promise.all([
    ecKeyPair('P-256'), ecKeyPair('P-256'), ecKeyPair('P-256'), ecKeyPair('P-256'), ecKeyPair('P-256'),
  ]);
  const rootName = `CN=Intel SGX Root CA (attex simulated), ${INTEL_SUFFIX}`;
  const platformName = `CN=Intel SGX PCK Platform CA (attex simulated), ${INTEL_SUFFIX}`;
  const sgx: SgxPckFacts = {
    ppid: new Uint8Array(randomBytes(16)),
    compSvns: [3, 3, 2, 2, 4, 1, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0],
    pceSvn: 11,
    cpuSvn: Uint8Array.from([3, 3, 2, 2, 4, 1, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0]),
    pceId: Uint8Array.of(0, 0),
    fmspc: Uint8Array.from([0x00, 0xa0, 0x5e, 0x51, 0x00, 0x00]),
  };
  const rootCert = await makeCert({
    subject: rootName, issuer: rootName, publicKey: root.publicKey, issuerPublicKey: root.publicKey, signingKey: root.privateKey,
    algorithm: ECDSA_SHA256, notBefore, years: 30, ca: true, pathLength: 1,
  });
  const platformCert = await makeCert({
    subject: platformName, issuer: rootName, publicKey: platform.publicKey, issuerPublicKey: root.publicKey,
    signingKey: root.privateKey, algorithm: ECDSA_SHA256, notBefore, years: 15, ca: true, pathLength: 0,
  });
  const pckCert = await makeCert({
    subject: `CN=Intel SGX PCK Certificate (attex simulated), ${INTEL_SUFFIX}`, issuer: platformName,
    publicKey: pck.publicKey, issuerPublicKey: platform.publicKey, signingKey: platform.privateKey,
    algorithm: ECDSA_SHA256, notBefore, years: 7, ca: false, extra: [[SGX_EXTENSION_OID, sgxExtensionValue(sgx)]],
  });
  const tcbCert = await makeCert({
    subject: `CN=Intel SGX TCB Signing (attex simulated), ${INTEL_SUFFIX}`, issuer: rootName,
    publicKey: tcbSigning.publicKey, issuerPublicKey: root.publicKey, signingKey: root.privateKey,
    algorithm: ECDSA_SHA256, notBefore, years: 7, ca: false,
  });
  certs['sgx_root_ca'] = rootCert.toString('pem');
  certs['pck_platform_ca'] = platformCert.toString('pem');
  certs['pck'] = pckCert.toString('pem');
  certs['tcb_signing'] = tcbCert.toString('pem');
  keys['sgx_root_ca'] = toKeyObject(root.privateKey);
  keys['pck_platform_ca'] = toKeyObject(platform.privateKey);
  keys['pck'] = toKeyObject(pck.privateKey);
  keys['tcb_signing'] = toKeyObject(tcbSigning.privateKey);
  keys['qe_attestation'] = toKeyObject(attestation.privateKey);

  return { createdAt: now.toISOString(), chipId, sgx, certs, keys };
}
