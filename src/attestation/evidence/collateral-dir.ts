/**
 * The offline collateral directory: Intel PCS responses stored as files, one per item, all
 * optional. The collateral fetcher writes this layout; the CLI and tests read it.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { AttexError } from '../../errors/index.ts';
import { readBoundedFile } from '../../util/index.ts';
import type { TdxCollateral } from '../types.ts';
import { PACKAGE_LIMITS } from './package.ts';

/** File name of each TdxCollateral item in a collateral directory. */
export const COLLATERAL_FILES = {
  tcbInfo: 'tcb-info.json',
  tcbInfoIssuerChain: 'tcb-info-issuer-chain.pem',
  qeIdentity: 'qe-identity.json',
  qeIdentityIssuerChain: 'qe-identity-issuer-chain.pem',
  pckCrl: 'pck-crl.der',
  pckCrlIssuerChain: 'pck-crl-issuer-chain.pem',
  rootCaCrl: 'root-ca-crl.der',
} as const satisfies Record<keyof TdxCollateral, string>;

export type CollateralItem = keyof typeof COLLATERAL_FILES;

const BINARY_ITEMS: readonly CollateralItem[] = ['tcbInfo', 'qeIdentity', 'pckCrl', 'rootCaCrl'];
const PEM_ITEMS: readonly CollateralItem[] = ['tcbInfoIssuerChain', 'qeIdentityIssuerChain', 'pckCrlIssuerChain'];

function limitFor(item: CollateralItem): number {
  if (item === 'tcbInfo' || item === 'qeIdentity') return PACKAGE_LIMITS.collateralJsonBytes;
  if (item === 'pckCrl' || item === 'rootCaCrl') return PACKAGE_LIMITS.crlBytes;
  return PACKAGE_LIMITS.issuerChainChars;
}

async function readOptional(dir: string, item: CollateralItem): Promise<Buffer | undefined> {
  const file = COLLATERAL_FILES[item];
  try {
    return await readBoundedFile(path.join(dir, file), limitFor(item));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'EFBIG') throw new AttexError('collateral.malformed', `collateral ${file}: larger than ${limitFor(item)} bytes`, { details: { file } });
    throw new AttexError('collateral.unreadable', `cannot read collateral ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, {
      cause: err,
      details: { file },
    });
  }
}

/**
 * Read a collateral directory into TdxCollateral. Missing files are simply absent; a missing
 * directory is `collateral.unreadable`; an issuer chain that is not PEM text or an oversized
 * file is `collateral.malformed`. Contents are not verified here: the TDX verifier does that.
 */
export async function loadCollateralDir(dir: string): Promise<TdxCollateral> {
  let isDir = false;
  try {
    isDir = (await stat(dir)).isDirectory();
  } catch (err) {
    throw new AttexError('collateral.unreadable', `cannot read collateral directory: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
  if (!isDir) throw new AttexError('collateral.unreadable', 'collateral path is not a directory');
  const out: Record<string, Uint8Array | string> = {};
  for (const item of BINARY_ITEMS) {
    const bytes = await readOptional(dir, item);
    if (bytes !== undefined) out[item] = new Uint8Array(bytes);
  }
  for (const item of PEM_ITEMS) {
    const bytes = await readOptional(dir, item);
    if (bytes === undefined) continue;
    const text = bytes.toString('latin1');
    if (!/^[\t\n\r\x20-\x7e]*$/.test(text) || !text.includes('-----BEGIN CERTIFICATE-----')) {
      throw new AttexError('collateral.malformed', `collateral ${COLLATERAL_FILES[item]}: not a PEM certificate chain`, {
        details: { file: COLLATERAL_FILES[item] },
      });
    }
    out[item] = text;
  }
  return out as TdxCollateral;
}
