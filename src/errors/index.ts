/**
 * Typed errors with stable codes. Every error that crosses a module boundary is an AttexError
 * whose `code` is part of the public contract (documented in docs/errors.md); messages are for
 * people and may change. Never put secret values in a message or in `details`.
 */
export class AttexError extends Error {
  readonly code: string;
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: string, message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AttexError';
    this.code = code;
    this.details = options.details;
  }
}

export function isAttexError(value: unknown): value is AttexError {
  return value instanceof AttexError;
}

/** A verification finding: a stable code plus a human explanation. */
export interface Reason {
  readonly code: string;
  readonly message: string;
}

/** Wrap anything thrown into an AttexError without losing a typed code already present. */
export function toAttexError(err: unknown, fallbackCode: string): AttexError {
  if (err instanceof AttexError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new AttexError(fallbackCode, message, { cause: err });
}
