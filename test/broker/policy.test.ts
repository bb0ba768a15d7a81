import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { globMatches } from '../../src/broker/paths.ts';
import { evaluateResourcePolicy, loadResourcePolicy, type AttestedSubject } from '../../src/broker/policy/index.ts';

const repoRoot = path.resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
const M1 = 'a1'.repeat(48);
const M2 = 'b2'.repeat(48);

const policy = loadResourcePolicy({
  version: 1,
  id: 'test',
  rules: [
    { resources: ['app/key/*'], tees: ['snp', 'sim-snp'], measurements: [M1], minStatus: 'affirming', allowSimulated: true },
    { resources: ['app/hw/*'], tees: ['snp', 'sim-snp', 'tdx'], measurements: [M1], minStatus: 'warning', allowSimulated: false },
    { resources: ['app/tdx/*'], tees: ['tdx', 'sim-tdx'], evidenceKinds: ['tdx'], measurements: [M1], minStatus: 'affirming', allowSimulated: true },
  ],
});

const sim: AttestedSubject = { kind: 'snp', tee: 'sim-snp', simulated: true, measurement: M1, status: 'affirming' };

describe('resource policy', () => {
  it('the shipped example validates against the schema', async () => {
    const text = await readFile(path.join(repoRoot, 'attestation/policies/resources.example.json'), 'utf8');
    expect(loadResourcePolicy(text).id).toBe('example');
  });

  it('refuses unknown keys, missing fields and bad values, naming the JSON path', () => {
    const rule = { resources: ['a/b/c'], tees: ['snp'], measurements: [M1], minStatus: 'affirming', allowSimulated: false };
    const cases: [unknown, RegExp][] = [
      [{ version: 1, id: 'x', rules: [{ ...rule, extra: 1 }] }, /\/rules\/0.*extra/],
      [{ version: 1, id: 'x', rules: [], surprise: true }, /surprise/],
      [{ version: 2, id: 'x', rules: [] }, /\/version/],
      [{ version: 1, id: 'x', rules: [{ ...rule, measurements: [] }] }, /\/rules\/0\/measurements/],
      [{ version: 1, id: 'x', rules: [{ ...rule, measurements: ['XYZ'] }] }, /\/rules\/0\/measurements\/0/],
      [{ version: 1, id: 'x', rules: [{ ...rule, tees: ['sgx'] }] }, /\/rules\/0\/tees\/0/],
      [{ version: 1, id: 'x', rules: [{ ...rule, resources: ['a/b'] }] }, /\/rules\/0\/resources\/0/],
      [{ version: 1, id: 'x', rules: [{ ...rule, minStatus: 'contraindicated' }] }, /minStatus/],
      ['{not json', /not valid JSON/],
    ];
    for (const [doc, re] of cases) {
      expect(() => loadResourcePolicy(doc)).toThrow(re);
    }
  });

  it('denies by default and releases only what a rule allows', () => {
    expect(evaluateResourcePolicy(policy, 'app/key/db', sim)).toEqual({ allow: true, rule: 0 });
    expect(evaluateResourcePolicy(policy, 'other/key/db', sim)).toMatchObject({ allow: false, code: 'broker.policy.no-rule' });
    expect(evaluateResourcePolicy(loadResourcePolicy({ version: 1, id: 'empty', rules: [] }), 'app/key/db', sim)).toMatchObject({ allow: false, code: 'broker.policy.no-rule' });
    expect(evaluateResourcePolicy(policy, 'app/hw/db', sim)).toMatchObject({ allow: false, code: 'broker.policy.simulated', rule: 1 });
    expect(evaluateResourcePolicy(policy, 'app/key/db', { ...sim, measurement: M2 })).toMatchObject({ allow: false, code: 'broker.policy.measurement' });
    expect(evaluateResourcePolicy(policy, 'app/key/db', { ...sim, measurement: null })).toMatchObject({ allow: false, code: 'broker.policy.measurement' });
    expect(evaluateResourcePolicy(policy, 'app/key/db', { ...sim, status: 'warning' })).toMatchObject({ allow: false, code: 'broker.policy.status' });
    expect(evaluateResourcePolicy(policy, 'app/hw/db', { ...sim, simulated: false, tee: 'snp', status: 'warning' })).toEqual({ allow: true, rule: 1 });
    expect(evaluateResourcePolicy(policy, 'app/key/db', { ...sim, tee: 'sim-tdx', kind: 'tdx' })).toMatchObject({ allow: false, code: 'broker.policy.tee' });
    expect(evaluateResourcePolicy(policy, 'app/tdx/x', { ...sim, tee: 'sim-tdx', kind: 'snp' })).toMatchObject({ allow: false, code: 'broker.policy.evidence-kind' });
  });

  it('digest is stable under key order and ignores $schema', () => {
    const a = loadResourcePolicy({ version: 1, id: 'd', rules: [] });
    const b = loadResourcePolicy({ rules: [], id: 'd', version: 1, $schema: './x.json' });
    expect(a.digest).toBe(b.digest);
    expect(a.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
  });
});

describe('resource globs', () => {
  it('match segment-wise only', () => {
    expect(globMatches('a/*/c', 'a/bbb/c')).toBe(true);
    expect(globMatches('a/*/c', 'a/b/x/c')).toBe(false);
    expect(globMatches('a/b/key-?', 'a/b/key-1')).toBe(true);
    expect(globMatches('a/b/key-?', 'a/b/key-12')).toBe(false);
    expect(globMatches('a/b/*-prod', 'a/b/db-prod')).toBe(true);
    expect(globMatches('a/b/*-prod', 'a/b/db-prod2')).toBe(false);
    expect(globMatches('*/*/*', 'x/y/z')).toBe(true);
    expect(globMatches('a/b/c', 'a/b/cc')).toBe(false);
    expect(globMatches(`a/b/${'*'.repeat(60)}x`, `a/b/${'y'.repeat(120)}`)).toBe(false);
  });
});
