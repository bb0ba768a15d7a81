/** The bundled trust roots: README fingerprints match the files, and loadTrustStore is strict. */
import { spawnSync } from 'node:child_process';
import { X509Certificate, createHash } from 'node:crypto';
import { copyFile, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_ROOTS_DIR, loadTrustStore } from '../../../src/attestation/index.ts';
import { AttexError } from '../../../src/errors/index.ts';
import { repoRoot, vectorsDir } from './vectors.ts';

const rootsDir = path.join(repoRoot, 'attestation/roots');

interface Row {
  file: string;
  cn: string;
  from: string;
  until: string;
  sha256: string;
}

async function readmeRows(): Promise<Row[]> {
  const text = await readFile(path.join(rootsDir, 'README.md'), 'utf8');
  const rows: Row[] = [];
  for (const line of text.split('\n')) {
    const m = /^\| `([a-z0-9_]+\.pem)` \| [^|]+ \| ([^|]+) \| (\S+) \| (\S+) \| `([0-9a-f]{64})` \|$/.exec(line);
    if (m) rows.push({ file: m[1]!, cn: m[2]!.trim(), from: m[3]!, until: m[4]!, sha256: m[5]! });
  }
  return rows;
}

function isoSeconds(date: string): string {
  return new Date(date).toISOString().replace('.000Z', 'Z');
}

const tempDirs: string[] = [];
async function tempRoots(files: Record<string, string | null>): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'attex-roots-'));
  tempDirs.push(dir);
  for (const [name, source] of Object.entries(files)) {
    if (source === null) continue;
    if (source.startsWith('@')) await copyFile(path.join(rootsDir, source.slice(1)), path.join(dir, name));
    else await writeFile(path.join(dir, name), source);
  }
  return dir;
}

afterEach(async () => {
  for (const dir of tempDirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

async function errorOf(p: Promise<unknown>): Promise<AttexError> {
  const err = await p.then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(AttexError);
  return err as AttexError;
}

describe('attestation/roots', () => {
  it('README lists every PEM with the subject CN, validity and SHA-256 of the DER', async () => {
    const rows = await readmeRows();
    const pems = (await readdir(rootsDir)).filter((f) => f.endsWith('.pem')).sort();
    expect(pems).toEqual(['ark_genoa.pem', 'ark_milan.pem', 'ark_turin.pem', 'ask_genoa.pem', 'ask_milan.pem', 'ask_turin.pem', 'asvk_genoa.pem', 'asvk_milan.pem', 'asvk_turin.pem', 'sgx_root_ca.pem']);
    expect(rows.map((r) => r.file).sort()).toEqual(pems);
    for (const row of rows) {
      const cert = new X509Certificate(await readFile(path.join(rootsDir, row.file)));
      expect(createHash('sha256').update(cert.raw).digest('hex'), row.file).toBe(row.sha256);
      expect(cert.subject.split('\n').find((l) => l.startsWith('CN='))?.slice(3), row.file).toBe(row.cn);
      expect(isoSeconds(cert.validFrom), row.file).toBe(row.from);
      expect(isoSeconds(cert.validTo), row.file).toBe(row.until);
    }
  });

  it('are the same certificates as the vendor vectors carry', async () => {
    for (const file of await readdir(rootsDir)) {
      if (!file.endsWith('.pem')) continue;
      const source = file === 'sgx_root_ca.pem' ? path.join(vectorsDir, 'roots/intel', file) : path.join(vectorsDir, 'roots/amd', file);
      expect(new X509Certificate(await readFile(path.join(rootsDir, file))).raw.equals(new X509Certificate(await readFile(source)).raw)).toBe(true);
    }
  });
});

describe('loadTrustStore', () => {
  it('loads the bundled roots by default: three AMD products and the Intel root, none simulated', async () => {
    expect(DEFAULT_ROOTS_DIR).toBe(rootsDir);
    const trust = await loadTrustStore({ allowSimulated: false });
    expect(trust.amd.map((s) => s.product)).toEqual(['Milan', 'Genoa', 'Turin']);
    for (const set of trust.amd) {
      expect(set.simulated).toBe(false);
      expect(set.ark.subjectName.getField('CN')).toEqual([`ARK-${set.product}`]);
      expect(set.ask?.subjectName.getField('CN')).toEqual([`SEV-${set.product}`]);
      expect(set.asvk?.subjectName.getField('CN')).toEqual([`SEV-VLEK-${set.product}`]);
    }
    expect(trust.intel).toHaveLength(1);
    expect(trust.intel[0]!.root.subjectName.getField('CN')).toEqual(['Intel SGX Root CA']);
    expect(trust.allowSimulated).toBe(false);
  });

  it('merges extra root sets and passes allowSimulated through', async () => {
    const base = await loadTrustStore({ allowSimulated: false });
    const fake = { ...base.amd[0]!, simulated: true };
    const trust = await loadTrustStore({ extraAmd: [fake], extraIntel: [{ root: base.intel[0]!.root, simulated: true }], allowSimulated: true });
    expect(trust.amd).toHaveLength(4);
    expect(trust.amd[3]!.simulated).toBe(true);
    expect(trust.intel.map((r) => r.simulated)).toEqual([false, true]);
    expect(trust.allowSimulated).toBe(true);
  });

  it('ignores files with other names and loads a partial directory', async () => {
    const dir = await tempRoots({ 'ark_milan.pem': '@ark_milan.pem', 'README.md': 'not a cert', 'notes.pem': 'junk' });
    const trust = await loadTrustStore({ rootsDir: dir, allowSimulated: false });
    expect(trust.amd).toHaveLength(1);
    expect(trust.amd[0]!.ask).toBeUndefined();
    expect(trust.intel).toHaveLength(0);
  });

  it('refuses a malformed root file, naming it', async () => {
    const dir = await tempRoots({ 'ark_genoa.pem': '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n' });
    const err = await errorOf(loadTrustStore({ rootsDir: dir, allowSimulated: false }));
    expect(err.code).toBe('trust.root-malformed');
    expect(err.message).toContain('ark_genoa.pem');
  });

  it('refuses a FIFO planted as a root file at once, instead of blocking on it', async () => {
    const dir = await tempRoots({ 'ark_milan.pem': '@ark_milan.pem' });
    const fifo = path.join(dir, 'ark_genoa.pem');
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    const err = await errorOf(loadTrustStore({ rootsDir: dir, allowSimulated: false }));
    expect(err.code).toBe('trust.roots-unreadable');
    expect(err.message).toMatch(/ark_genoa\.pem: not a regular file/);
  });

  it('refuses a file with two certificates or trailing junk', async () => {
    const ark = await readFile(path.join(rootsDir, 'ark_milan.pem'), 'utf8');
    const two = await tempRoots({ 'ark_milan.pem': ark + ark });
    expect((await errorOf(loadTrustStore({ rootsDir: two, allowSimulated: false }))).code).toBe('trust.root-malformed');
    const junk = await tempRoots({ 'ark_milan.pem': `${ark}trailing junk\n` });
    expect((await errorOf(loadTrustStore({ rootsDir: junk, allowSimulated: false }))).code).toBe('trust.root-malformed');
  });

  it('refuses an intermediate not signed by the ARK beside it, and one without its ARK', async () => {
    const crossed = await tempRoots({ 'ark_milan.pem': '@ark_milan.pem', 'ask_milan.pem': '@ask_genoa.pem' });
    const err = await errorOf(loadTrustStore({ rootsDir: crossed, allowSimulated: false }));
    expect(err.code).toBe('trust.root-malformed');
    expect(err.message).toMatch(/ask_milan\.pem: not signed by ark_milan\.pem/);
    const orphan = await tempRoots({ 'ask_turin.pem': '@ask_turin.pem' });
    expect((await errorOf(loadTrustStore({ rootsDir: orphan, allowSimulated: false }))).message).toContain('ark_turin.pem is missing');
  });

  it('refuses an ARK that is not self-signed', async () => {
    const dir = await tempRoots({ 'ark_milan.pem': '@ask_milan.pem' });
    expect((await errorOf(loadTrustStore({ rootsDir: dir, allowSimulated: false }))).message).toMatch(/not signed by itself/);
  });

  it('reports a missing directory and an empty store', async () => {
    expect((await errorOf(loadTrustStore({ rootsDir: path.join(os.tmpdir(), 'attex-no-such-dir'), allowSimulated: false }))).code).toBe('trust.roots-unreadable');
    const empty = await tempRoots({});
    expect((await errorOf(loadTrustStore({ rootsDir: empty, allowSimulated: false }))).code).toBe('trust.no-roots');
  });
});
