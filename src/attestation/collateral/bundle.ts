/**
 * Offline collateral bundles: the directory layout `loadCollateralDir` reads and
 * `attex evidence verify --collateral DIR` takes, written atomically.
 */
import { AttexError } from '../../errors/index.ts';
import { COLLATERAL_FILES, type CollateralItem } from '../evidence/collateral-dir.ts';
import type { TdxCollateral } from '../types.ts';
import { writeDirAtomic } from './atomic.ts';

/**
 * Write `collateral` to a new directory `dir` (tcb-info.json, tcb-info-issuer-chain.pem,
 * qe-identity.json, qe-identity-issuer-chain.pem, pck-crl.der, pck-crl-issuer-chain.pem,
 * root-ca-crl.der; absent items are left out). The directory appears complete or not at all;
 * an existing non-empty `dir` is `collateral.exists`.
 */
export async function writeOfflineBundle(dir: string, collateral: TdxCollateral): Promise<void> {
  const files = new Map<string, Uint8Array | string>();
  for (const [item, file] of Object.entries(COLLATERAL_FILES) as [CollateralItem, string][]) {
    const value = collateral[item];
    if (value !== undefined) files.set(file, value);
  }
  if (files.size === 0) throw new AttexError('collateral.empty', 'no collateral to write');
  try {
    await writeDirAtomic(dir, files);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOTEMPTY' || code === 'EEXIST' || code === 'ENOTDIR') {
      throw new AttexError('collateral.exists', 'the bundle directory already exists and is not empty', { cause: err });
    }
    throw new AttexError('collateral.io', `cannot write the collateral bundle: ${code ?? String(err)}`, { cause: err });
  }
}
