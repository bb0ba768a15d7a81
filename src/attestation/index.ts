/**
 * Public surface of attestation: evidence front door, the three verifiers, key binding and the
 * shared types. One `export ... from` line per module; add new modules the same way.
 */
export type * from './types.ts';
export * from './evidence/index.ts';
export * from './snp/index.ts';
export * from './azure-hcl/index.ts';
export * from './tdx/index.ts';
export * from './binding/index.ts';
