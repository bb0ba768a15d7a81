/**
 * The broker over HTTPS and the executor's broker client pinned to the broker's CA: a real TLS
 * server on loopback with a certificate made for the test, the real client and the simulated TEE.
 */
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import net from 'node:net';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as x509 from '@peculiar/x509';
import type { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simProvider } from '../../src/attestation/providers/index.ts';
import { BrokerCallError, attestAndFetch, brokerCaDispatcher } from '../../src/broker/client/index.ts';
import { checkBrokerTls } from '../../src/broker/server.ts';
import { parseExecutorConfig } from '../../src/server/index.ts';
import { toHex } from '../../src/util/index.ts';
import { openSim, startBroker, tempDir, type TestBroker } from './harness.ts';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const pem = (label: string, der: ArrayBuffer) => `-----BEGIN ${label}-----\n${Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').trim()}\n-----END ${label}-----\n`;

/** A self-signed certificate for 127.0.0.1 (its own CA), and its key. */
async function loopbackCertificate(cn: string): Promise<{ cert: string; key: string }> {
  const alg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = await webcrypto.subtle.generateKey(alg, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: `CN=${cn}`,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 86_400_000),
    signingAlgorithm: alg,
    keys,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'ip', value: '127.0.0.1' }])],
  });
  return { cert: cert.toString('pem'), key: pem('PRIVATE KEY', await webcrypto.subtle.exportKey('pkcs8', keys.privateKey)) };
}

let tmp: Awaited<ReturnType<typeof tempDir>>;
let b: TestBroker;
let own: { cert: string; key: string };
let stranger: { cert: string; key: string };

beforeAll(async () => {
  tmp = await tempDir('attex-broker-tls-');
  const sim = await openSim(tmp.dir);
  own = await loopbackCertificate('attex test broker');
  stranger = await loopbackCertificate('someone else');
  b = await startBroker({
    sim,
    dir: tmp.dir,
    tls: own,
    resourcePolicy: { version: 1, id: 'tls', rules: [{ resources: ['app/key/*'], tees: ['sim-snp'], measurements: [toHex(sim.measurement)], minStatus: 'warning', allowSimulated: true }] },
  });
  await b.broker.store.put('app/key/db', new TextEncoder().encode('tls-secret-value'));
});

afterAll(async () => {
  await b?.close();
  await tmp?.cleanup();
});

const dispatchers: Agent[] = [];
afterAll(async () => {
  await Promise.all(dispatchers.map((d) => d.close()));
});

function pinnedTo(ca: string): Agent {
  const agent = brokerCaDispatcher(ca);
  dispatchers.push(agent);
  return agent;
}

function fetchFrom(brokerUrl: string, ca?: string, extra: Partial<Parameters<typeof attestAndFetch>[0]> = {}) {
  return attestAndFetch({
    brokerUrl,
    provider: simProvider({ stateDir: path.join(tmp.dir, 'sim') }),
    resources: ['app/key/db'],
    renew: false,
    retry: { attempts: 3, baseDelayMs: 10, maxDelayMs: 20 },
    timeoutMs: 5000,
    ...(ca === undefined ? {} : { dispatcher: pinnedTo(ca) }),
    ...extra,
  });
}

async function refusal(p: Promise<unknown>): Promise<BrokerCallError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(BrokerCallError);
  return err as BrokerCallError;
}

describe('broker over TLS', () => {
  it('serves HTTPS, and the client pinned to its CA attests and gets the secret', async () => {
    expect(b.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const session = await fetchFrom(b.url, own.cert);
    try {
      expect(new TextDecoder().decode(session.secrets.get('app/key/db'))).toBe('tls-secret-value');
    } finally {
      session.close();
    }
  });

  it('refuses, without retrying, a broker whose certificate the pinned CA did not issue, and one the system does not trust', async () => {
    const before = (await b.auditEntries()).length;
    const pinnedElsewhere = await refusal(fetchFrom(b.url, stranger.cert));
    expect(pinnedElsewhere).toMatchObject({ code: 'broker.client.tls', retryable: false });
    const systemTrust = await refusal(fetchFrom(b.url));
    expect(systemTrust).toMatchObject({ code: 'broker.client.tls', retryable: false });
    expect((await b.auditEntries()).length).toBe(before);
    // Plain HTTP to the TLS port gets no KBS answer.
    const plain = await refusal(fetchFrom(b.url.replace('https:', 'http:')));
    expect(plain.code).toMatch(/^broker\./);
  });

  it('names a bad CA bundle or a certificate and key that do not belong together, without quoting the key', () => {
    expect(() => brokerCaDispatcher('not a certificate')).toThrow(expect.objectContaining({ code: 'broker.client.ca' }));
    expect(() => brokerCaDispatcher(own.cert + own.key)).toThrow(expect.objectContaining({ code: 'broker.client.ca', message: expect.stringContaining('private key') }));
    expect(() => brokerCaDispatcher('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n')).toThrow(expect.objectContaining({ code: 'broker.client.ca' }));
    let err: unknown;
    try {
      checkBrokerTls({ cert: own.cert, key: stranger.key });
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'broker.tls' });
    const keyBody = stranger.key.split('\n')[1]!;
    expect(String((err as Error).message)).not.toContain(keyBody);
  });

  it('closing a session stops a renewal in flight at once, and reports nothing after', async () => {
    const renewals: Array<Error | null> = [];
    const session = await fetchFrom(b.url, own.cert, { onRenew: (err) => void renewals.push(err) });
    const pending = session.renewNow();
    session.close();
    const start = performance.now();
    await expect(pending).rejects.toMatchObject({ code: 'broker.client.aborted' });
    expect(performance.now() - start).toBeLessThan(1000);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(renewals).toEqual([]);
  });

  it('shuts down within its grace period while clients hold idle connections and unfinished handshakes', async () => {
    const sim = await openSim(tmp.dir);
    const other = await startBroker({ sim, dir: tmp.dir, tls: own, resourcePolicy: { version: 1, id: 'idle', rules: [] } });
    const { port } = new URL(other.url);
    const idle = net.connect(Number(port), '127.0.0.1');
    const halfHandshake = net.connect(Number(port), '127.0.0.1', () => void halfHandshake.write(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x80])));
    for (const s of [idle, halfHandshake]) s.on('error', () => undefined); // the broker resets them
    await Promise.all([idle, halfHandshake].map((s) => new Promise((resolve) => s.once('connect', resolve))));
    const start = performance.now();
    await other.close();
    expect(performance.now() - start).toBeLessThan(5000);
    idle.destroy();
    halfHandshake.destroy();
  });

  it('an executor config takes a CA bundle only for an https:// broker, resolved beside the config', async () => {
    const base = {
      executorId: 'tls-test', mode: 'simulated', listen: { host: '127.0.0.1', port: 0 }, stateDir: 'state', componentsDir: 'components',
      evidence: { provider: 'sim' }, log: { origin: 'tls.attex.invalid/log' }, callers: [],
    };
    const dir = path.join(tmp.dir, 'config');
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'broker-ca.pem'), own.cert);
    const ok = parseExecutorConfig({ ...base, broker: { url: 'https://broker.internal:8443', secrets: {}, caFile: 'broker-ca.pem' } }, dir);
    expect(ok.broker?.caFile).toBe(path.join(dir, 'broker-ca.pem'));
    expect(() => parseExecutorConfig({ ...base, broker: { url: 'http://broker.internal:8080', secrets: {}, caFile: 'broker-ca.pem' } }, dir)).toThrow(expect.objectContaining({ code: 'config.invalid' }));
  });
});
