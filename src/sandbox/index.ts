/** Public surface of the sandbox: manifests, building, loading and the worker pool. */
export { SandboxCodes, type SandboxCode } from './errors.ts';
export { DEFAULT_LIMITS, WORLDS, loadManifest, manifestSchema, overrideManifest, parseManifest } from './manifest.ts';
export type { Grants, Limits, Manifest, SecretHeaderGrant, WorldName } from './manifest.ts';
export { CAPABILITY_INTERFACES, WORLD_IMPORTS, excessImports } from './imports-policy.ts';
export { assertImportsGranted, inspectComponent, loadComponent, type LoadedComponent, type LoadOptions } from './loader.ts';
export { buildComponent, buildComponents, buildKey, DEFAULT_WIT_DIR, type BuildEvent, type BuildOptions, type BuildReport, type BuiltComponent } from './build.ts';
export { defaultTranspileCacheDir, readTranspiled, transpileCacheKey, type TranspiledComponent } from './transpile-cache.ts';
export { MAX_OUTPUT_DEPTH, jsonNestsDeeperThan } from './json-depth.ts';
export { SandboxPool, workerHeapLimits, type ActionUsage, type PoolOptions, type PoolStats, type RunOptions, type RunResult } from './pool.ts';
export type { SecretSource } from './host.ts';
export { FileKvStore, KvQuotaError, MAX_KV_BUCKET_BYTES, MAX_KV_BUCKET_KEYS, MemoryKvStore, type KvStore } from './kv.ts';
export { systemResolver, type Resolver } from './http.ts';
export { checkAddress, checkOrigin, specialAddressReason } from './net-policy.ts';
