import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PassThrough, Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/main.ts';
import type { CommandIO } from '../../src/cli/command.ts';

const KEY = 'c4'.repeat(32);
const SECRET = 'cli-secret-value-d41c8e';
let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'attex-broker-cli-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function run(argv: string[], stdin = '', env: Record<string, string> = { ATTEX_BROKER_KEY: KEY }) {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (c) => (out += c));
  stderr.on('data', (c) => (err += c));
  const io: CommandIO = { stdout, stderr, stdin: Readable.from([Buffer.from(stdin)]), env, cwd: dir };
  const code = await runCli(['broker', ...argv], io);
  return { code, out, err };
}

describe('attex broker secret', () => {
  it('put (stdin and --from-file), list, rm; values never echoed or stored in plaintext', async () => {
    expect((await run(['secret', 'put', 'app/key/db', '--state', 's'], SECRET)).code).toBe(0);
    await writeFile(path.join(dir, 'v.txt'), 'file-value');
    expect((await run(['secret', 'put', 'app/key/api', '--state', 's', '--from-file', 'v.txt'])).code).toBe(0);
    const list = await run(['secret', 'list', '--state', 's', '--json']);
    expect(list.code).toBe(0);
    expect(JSON.parse(list.out)).toEqual({ resources: ['app/key/api', 'app/key/db'] });
    for (const f of await readdir(path.join(dir, 's/secrets'))) {
      expect(await readFile(path.join(dir, 's/secrets', f), 'utf8')).not.toContain(SECRET);
    }
    const removed = await run(['secret', 'rm', 'app/key/db', '--state', 's']);
    expect(removed.code).toBe(0);
    expect((await run(['secret', 'rm', 'app/key/db', '--state', 's'])).code).toBe(1);
    expect((await run(['secret', 'list', '--state', 's'])).out).toBe('app/key/api\n');
  });

  it('refuses a value on argv, bad paths, empty values and a missing key', async () => {
    const argv = await run(['secret', 'put', 'app/key/db', SECRET, '--state', 's'], '');
    expect(argv.code).toBe(2);
    expect(argv.err).not.toContain(SECRET);
    expect((await run(['secret', 'put', '../x/y', '--state', 's'], 'v')).code).toBe(2);
    expect((await run(['secret', 'put', 'a/b/c', '--state', 's'], '')).code).toBe(2);
    const nokey = await run(['secret', 'list', '--state', 's'], '', {});
    expect(nokey.code).toBe(2);
    expect(nokey.err).toContain('ATTEX_BROKER_KEY');
  });

  it('prints help and rejects unknown sub-commands', async () => {
    const help = await run(['secret', '--help']);
    expect(help.code).toBe(0);
    expect(help.out).toContain('attex broker secret put');
    expect((await run(['frobnicate'])).code).toBe(2);
    expect((await run(['serve', '--state', 's'])).err).toContain('--policy');
    const halfTls = await run(['serve', '--state', 's', '--policy', 'p.json', '--resource-policy', 'r.json', '--tls-cert', 'broker.crt']);
    expect(halfTls.code).toBe(2);
    expect(halfTls.err).toContain('--tls-cert and --tls-key go together');
    expect(help.out).toContain('--tls-key');
  });
});

describe('attex broker audit', () => {
  it('lists signature-checked entries, and refuses while a broker owns the state directory', async () => {
    const { openBroker } = await import('../../src/broker/open.ts');
    const { loadBrokerVerifier } = await import('../../src/broker/wiring.ts');
    const { loadResourcePolicy } = await import('../../src/broker/policy/index.ts');
    const pino = (await import('pino')).default;
    const { verifier } = await loadBrokerVerifier({ policyFile: path.resolve(fileURLToPath(new URL('.', import.meta.url)), '../../attestation/policies/default.json'), allowSimulated: false });
    const broker = await openBroker({
      stateDir: path.join(dir, 's'),
      operatorKey: new Uint8Array(32).fill(1),
      verifier,
      resourcePolicy: loadResourcePolicy({ version: 1, id: 'none', rules: [] }),
      logger: pino({ level: 'silent' }),
      checkpointInterval: 0,
    });
    try {
      const url = await broker.listen();
      expect((await fetch(`${url}/kbs/v0/resource/a/b/c`)).status).toBe(401);
      const locked = await run(['audit', '--state', 's']);
      expect(locked.code).toBe(2);
      expect(locked.err).toContain('in use');
    } finally {
      await broker.close();
    }
    const listed = await run(['audit', '--state', 's', '--json']);
    expect(listed.code).toBe(0);
    const out = JSON.parse(listed.out);
    expect(out.logVerifierKey).toMatch(/^attex-broker-audit\+[0-9a-f]{8}\+/);
    expect(out.entries).toMatchObject([{ index: 0, event: 'resource', decision: 'deny', reason: 'broker.token-missing', resource: 'a/b/c' }]);
  });
});
