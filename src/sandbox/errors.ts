/**
 * Stable error codes of the sandbox (documented in docs/sandbox.md). Load-time problems throw an
 * AttexError with one of these codes; run-time outcomes come back as `{ code, message }` in a
 * RunResult so one failing action never takes the pool down.
 */
import { AttexError } from '../errors/index.ts';

export const SandboxCodes = {
  manifestInvalid: 'sandbox.manifest-invalid',
  invalidComponent: 'sandbox.invalid-component',
  instantiateTimeout: 'sandbox.instantiate-timeout',
  importsExceedGrant: 'sandbox.imports-exceed-grant',
  buildFailed: 'sandbox.build-failed',
  unknownAction: 'sandbox.unknown-action',
  invalidInput: 'sandbox.invalid-input',
  timeout: 'sandbox.timeout',
  cpu: 'sandbox.cpu-exceeded',
  memory: 'sandbox.memory',
  outputTooLarge: 'sandbox.output-too-large',
  outputInvalid: 'sandbox.output-invalid',
  trap: 'sandbox.trap',
  hostCallsExceeded: 'sandbox.host-calls-exceeded',
  workerCrashed: 'sandbox.worker-crashed',
  poolClosed: 'sandbox.pool-closed',
  actionFailed: 'action.failed',
  capabilityDenied: 'capability.denied',
} as const;

export type SandboxCode = (typeof SandboxCodes)[keyof typeof SandboxCodes];

export function sandboxError(code: SandboxCode, message: string, details?: Record<string, unknown>): AttexError {
  return new AttexError(code, message, details === undefined ? {} : { details });
}
