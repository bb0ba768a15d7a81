/** Crash-safe writes for the collateral cache and offline bundles (shared implementation). */
export { writeDirAtomic, writeFileAtomic } from '../../util/files.ts';
