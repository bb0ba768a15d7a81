export { toHex, fromHex, concatBytes, bytesEqual, sha256, sha384, sha512 } from './bytes.ts';
export { canonicalJson } from './canonical-json.ts';
export { readBoundedFile, readBoundedFileSync } from './read-bounded.ts';
export { jsonNestsDeeperThan } from './json-depth.ts';
export { readCapped } from './read-capped.ts';
export { LOCK_NAME, LOCK_STALE_MS, LOCK_TAKEOVER_WAIT_MS, StateLockError, lockStateDirectory, type StateDirLock } from './state-lock.ts';
export { type SchedulingOptions, type SchedulingPolicy, type SchedulingResult, policyFromStat, setSchedulingPolicy, threadPolicies } from './scheduling.ts';
