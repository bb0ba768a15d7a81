/**
 * Intel PCS-shaped collateral for the simulated platform: TCB info v3 (id "TDX") and the TD_QE
 * enclave identity, each signed over the exact bytes of its inner JSON object with the simulated
 * TCB Signing key, issuer chains as PEM, and CRLs from the simulated PCK Platform CA and root.
 * Collateral is short-lived (30 days), like Intel's, and regenerated as it ages.
 */
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { type KeyObject, sign, webcrypto } from 'node:crypto';
import { toHex } from '../../util/index.ts';
import type { SgxPckFacts } from './vendor-extensions.ts';
import { SIM_QE } from './tdx-quote.ts';

x509.cryptoProvider.set(webcrypto);

export interface SimTdxCollateral {
  readonly tcbInfo: Uint8Array;
  readonly tcbInfoIssuerChain: string;
  readonly qeIdentity: Uint8Array;
  readonly qeIdentityIssuerChain: string;
  readonly pckCrl: Uint8Array;
  readonly pckCrlIssuerChain: string;
  readonly rootCaCrl: Uint8Array;
  readonly issuedAt: Date;
}

export interface CollateralInput {
  readonly now: Date;
  readonly sgx: SgxPckFacts;
  readonly tcbSigningKey: KeyObject;
  readonly tcbSigningPem: string;
  readonly rootPem: string;
  readonly rootKey: KeyObject;
  readonly platformCaPem: string;
  readonly platformCaKey: KeyObject;
}

const DAY_MS = 24 * 3600 * 1000;
const VALIDITY_DAYS = 30;
const TCB_DATE = '2024-03-13T00:00:00Z';

function isoSeconds(date: Date): string {
  return `${date.toISOString().slice(0, 19)}Z`;
}

/** {"<name>":<inner>,"signature":"<hex r||s>"}: the signature covers `inner` byte for byte. */
function signedBody(name: string, inner: unknown, key: KeyObject): Uint8Array {
  const innerJson = JSON.stringify(inner);
  const signature = sign('sha256', Buffer.from(innerJson, 'utf8'), { key, dsaEncoding: 'ieee-p1363' });
  return new TextEncoder().encode(`{"${name}":${innerJson},"signature":"${toHex(signature)}"}`);
}

const ZERO_MRSIGNER = '0'.repeat(96);

function tcbInfoBody(sgx: SgxPckFacts, issueDate: string, nextUpdate: string): unknown {
  const svns = (values: readonly number[]) => values.map((svn) => ({ svn }));
  return {
    id: 'TDX',
    version: 3,
    issueDate,
    nextUpdate,
    fmspc: toHex(sgx.fmspc).toUpperCase(),
    pceId: toHex(sgx.pceId).toUpperCase(),
    tcbType: 0,
    tcbEvaluationDataNumber: 17,
    tdxModule: { mrsigner: ZERO_MRSIGNER, attributes: '0000000000000000', attributesMask: 'FFFFFFFFFFFFFFFF' },
    tdxModuleIdentities: [
      {
        id: 'TDX_01',
        mrsigner: ZERO_MRSIGNER,
        attributes: '0000000000000000',
        attributesMask: 'FFFFFFFFFFFFFFFF',
        tcbLevels: [{ tcb: { isvsvn: 4 }, tcbDate: TCB_DATE, tcbStatus: 'UpToDate' }],
      },
    ],
    tcbLevels: [
      {
        tcb: {
          sgxtcbcomponents: svns(sgx.compSvns),
          pcesvn: sgx.pceSvn,
          tdxtcbcomponents: svns([5, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        },
        tcbDate: TCB_DATE,
        tcbStatus: 'UpToDate',
      },
    ],
  };
}

function qeIdentityBody(issueDate: string, nextUpdate: string): unknown {
  return {
    id: 'TD_QE',
    version: 2,
    issueDate,
    nextUpdate,
    tcbEvaluationDataNumber: 17,
    miscselect: '00000000',
    miscselectMask: 'FFFFFFFF',
    attributes: '11000000000000000000000000000000',
    attributesMask: 'FBFFFFFFFFFFFFFF0000000000000000',
    mrsigner: toHex(SIM_QE.mrSigner).toUpperCase(),
    isvprodid: SIM_QE.isvProdId,
    tcbLevels: [{ tcb: { isvsvn: 4 }, tcbDate: TCB_DATE, tcbStatus: 'UpToDate' }],
  };
}

async function emptyCrl(issuerPem: string, key: KeyObject, thisUpdate: Date, nextUpdate: Date): Promise<Uint8Array> {
  const issuer = new x509.X509Certificate(issuerPem);
  const crl = await x509.X509CrlGenerator.create({
    issuer: issuer.subjectName,
    thisUpdate,
    nextUpdate,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    signingKey: key.toCryptoKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']) as webcrypto.CryptoKey,
    extensions: [await x509.AuthorityKeyIdentifierExtension.create(issuer)],
    entries: [],
  });
  return new Uint8Array(crl.rawData);
}

export async function buildTdxCollateral(input: CollateralInput): Promise<SimTdxCollateral> {
  // Issued an hour back so a verifier whose clock lags a little still sees it as current.
  const issued = new Date(Math.floor(input.now.getTime() / 1000) * 1000 - 3600 * 1000);
  const next = new Date(issued.getTime() + VALIDITY_DAYS * DAY_MS);
  const issueDate = isoSeconds(issued);
  const nextUpdate = isoSeconds(next);
  const signingChain = `${input.tcbSigningPem.trim()}\n${input.rootPem.trim()}\n`;
  return {
    tcbInfo: signedBody('tcbInfo', tcbInfoBody(input.sgx, issueDate, nextUpdate), input.tcbSigningKey),
    tcbInfoIssuerChain: signingChain,
    qeIdentity: signedBody('enclaveIdentity', qeIdentityBody(issueDate, nextUpdate), input.tcbSigningKey),
    qeIdentityIssuerChain: signingChain,
    pckCrl: await emptyCrl(input.platformCaPem, input.platformCaKey, issued, next),
    pckCrlIssuerChain: `${input.platformCaPem.trim()}\n${input.rootPem.trim()}\n`,
    rootCaCrl: await emptyCrl(input.rootPem, input.rootKey, issued, next),
    issuedAt: issued,
  };
}
