/** The executor service: HTTP app, configuration, the attested ExecutorService, and running it. */
export { createExecutorApp, type AppOptions, type CallerCredential, type ExecutorApp } from './app.ts';
export { DEFAULT_LIMITS, loadExecutorConfig, parseExecutorConfig, type ExecutorConfig } from './config.ts';
export { AttestedExecutor, EXECUTOR_VERSION, type ExecutorOptions } from './executor.ts';
export { LOG_KEY_FILE, RECEIPT_PUBLIC_KEY_FILE, loadOrCreateLogKey } from './keys.ts';
export { createExecutorLogger, LOG_REDACT_PATHS } from './logger.ts';
export { callerCredentials, runExecutor, type RunExecutorOptions, type RunningExecutor } from './run.ts';
export type { Caller, DispatchRequest, DispatchResult, ExecutorService, Readiness } from './service.ts';
