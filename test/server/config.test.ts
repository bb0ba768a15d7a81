/** Executor configuration: the deployed example parses; mistakes are refused with their JSON path. */
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { AttexError } from '../../src/errors/index.ts';
import { DEFAULT_LIMITS, loadExecutorConfig, loadOrCreateLogKey, parseExecutorConfig } from '../../src/server/index.ts';
import { repoRoot } from './helpers.ts';

const base = {
  executorId: 'e1',
  mode: 'simulated',
  listen: { host: '127.0.0.1', port: 0 },
  stateDir: 'state',
  componentsDir: 'components',
  evidence: { provider: 'sim' },
  log: { origin: 'example.test/log' },
  callers: [{ id: 'a', publicKey: Buffer.alloc(32, 1).toString('base64'), actions: ['*'] }],
};

function refused(value: unknown, where: string): void {
  try {
    parseExecutorConfig(value, '/srv');
  } catch (err) {
    expect(err).toBeInstanceOf(AttexError);
    expect((err as AttexError).code).toBe('config.invalid');
    expect((err as AttexError).message).toContain(where);
    return;
  }
  throw new Error('config was accepted');
}

describe('executor config', () => {
  it('the Kubernetes base config is valid', async () => {
    const c = await loadExecutorConfig(path.join(repoRoot, 'deploy/kubernetes/base/executor.json'));
    expect(c.mode).toBe('production');
    expect(c.evidence.provider).toBe('auto');
    expect(c.broker?.url).toMatch(/^https:/);
    expect(c.limits.poolSize).toBeGreaterThanOrEqual(1);
  });

  it('fills defaults and resolves paths against the config directory', () => {
    const c = parseExecutorConfig(base, '/srv/attex');
    expect(c.stateDir).toBe('/srv/attex/state');
    expect(c.componentsCacheDir).toBe('/srv/attex/state/cache/components');
    expect(c.evidence.simStateDir).toBe('/srv/attex/state/sim');
    expect(c.limits).toEqual(DEFAULT_LIMITS);
    expect(c.receipts).toEqual({ includeInput: false, includeOutput: false });
    expect(c.scheduling).toBe('batch');
    expect(parseExecutorConfig({ ...base, scheduling: 'inherit' }, '/srv/attex').scheduling).toBe('inherit');
  });

  it('refuses unknown keys, wrong types and unsafe combinations, naming the path', () => {
    refused({ ...base, extra: 1 }, '/extra');
    refused({ ...base, listen: { host: 'x', port: 70000 } }, '/listen/port');
    refused({ ...base, limits: { poolSize: 0 } }, '/limits/poolSize');
    refused({ ...base, limits: { workerQueueDepth: 4 } }, '/limits/workerQueueDepth');
    refused({ ...base, mode: 'production' }, '/evidence/provider');
    refused({ ...base, mode: 'production', evidence: { provider: 'auto' }, bearerTokens: [{ caller: 'a', tokenFile: 't' }] }, '/bearerTokens');
    refused({ ...base, callers: [...base.callers, { ...base.callers[0] }] }, '/callers/1/id');
    refused({ ...base, bearerTokens: [{ caller: 'nobody', tokenFile: 't' }] }, '/bearerTokens/0/caller');
    refused({ ...base, broker: { url: 'ftp://x', secrets: {} } }, '/broker/url');
    refused({ ...base, broker: { url: 'http://x', secrets: { k: '../etc/passwd' } } }, '/broker/secrets/k');
    refused({ ...base, log: { origin: 'has space' } }, '/log/origin');
    refused({ ...base, scheduling: 'fifo' }, '/scheduling');
  });

  it('an unreadable or non-JSON file is a typed error', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'attex-config-'));
    try {
      await expect(loadExecutorConfig(path.join(dir, 'missing.json'))).rejects.toMatchObject({ code: 'config.unreadable' });
      await writeFile(path.join(dir, 'bad.json'), '{"executorId":');
      await expect(loadExecutorConfig(path.join(dir, 'bad.json'))).rejects.toMatchObject({ code: 'config.invalid' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('the log key is created once with mode 0600 and then reused', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'attex-logkey-'));
    try {
      const a = await loadOrCreateLogKey(dir);
      const b = await loadOrCreateLogKey(dir);
      expect(a.created).toBe(true);
      expect(b.created).toBe(false);
      expect(b.privateKey.export({ format: 'jwk' }).d).toBe(a.privateKey.export({ format: 'jwk' }).d);
      expect((await stat(path.join(dir, 'log-key.pem'))).mode & 0o777).toBe(0o600);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
