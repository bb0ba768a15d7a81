/**
 * Evidence collection against a hostile host: inside a confidential VM the host emulates the
 * vTPM, fills the SNP certificate table and answers the metadata service. A TPM that reports
 * absurd buffer sizes or answers each command just in time, a metadata service that sends
 * gigabytes or redirects, a report file that is a FIFO or far too large, and a device that wedges
 * must each end in a typed error, in bounded time and memory. The TPM and the metadata service
 * are loopback servers scripted to misbehave (the real emulator cannot be told to), the files
 * and the FIFO are real.
 */
import { execFileSync } from 'node:child_process';
import { constants, openSync, closeSync, writeSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AttexError } from '../../../src/errors/index.ts';
import { azureVtpmProvider, buildCertTable, CERT_TABLE_GUIDS, fetchAzureVcek, nodeTsmFileSystem, openTpmTransport, parseCertTable } from '../../../src/attestation/providers/index.ts';

let dir: string;
const closers: Array<() => void> = [];

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'attex-hostile-host-'));
});
afterAll(async () => {
  for (const close of closers) close();
  await rm(dir, { recursive: true, force: true });
});

async function rejection(p: Promise<unknown>): Promise<AttexError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(AttexError);
  return err as AttexError;
}

interface TpmScript {
  readonly nvBufferMax: number;
  readonly hclSize: number;
  /** Delay before each answer. */
  readonly delayMs?: number;
}

/** Enough of the raw TPM 2.0 command stream (as swtpm serves it over TCP) for the Azure provider's commands. */
async function hostileTpm(script: TpmScript): Promise<{ target: string; commands: () => number }> {
  let commands = 0;
  const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);
  const u32 = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32BE(n >>> 0); return b; };
  const answer = (tag: number, rc: number, body: Buffer) => Buffer.concat([u16(tag), u32(10 + body.length), u32(rc), body]);
  const session = Buffer.from([0, 0, 1, 0, 0]);
  const respond = (cmd: Buffer): Buffer => {
    const cc = cmd.readUInt32BE(6);
    if (cc === 0x17a) return answer(0x8001, 0, Buffer.concat([Buffer.from([0]), u32(6), u32(1), u32(0x100 + 44), u32(script.nvBufferMax)])); // GetCapability
    if (cc === 0x169) { // NV_ReadPublic
      const index = cmd.readUInt32BE(10);
      const size = index === 0x01400001 ? script.hclSize : 64;
      const pub = Buffer.concat([u32(index), u16(0x000b), u32(0x2060006), u16(0), u16(size)]);
      return answer(0x8001, 0, Buffer.concat([u16(pub.length), pub, u16(0)]));
    }
    if (cc === 0x137) return answer(0x8002, 0, Buffer.concat([u32(0), session])); // NV_Write
    if (cc === 0x14e) { // NV_Read: zeros
      const want = cmd.readUInt16BE(31);
      return answer(0x8002, 0, Buffer.concat([u32(2 + want), u16(want), Buffer.alloc(want), session]));
    }
    return answer(0x8001, 0x143, Buffer.alloc(0));
  };
  const server = net.createServer((socket) => {
    let buffered = Buffer.alloc(0);
    socket.on('error', () => undefined);
    socket.on('data', (data) => {
      buffered = Buffer.concat([buffered, data]);
      while (buffered.length >= 10 && buffered.length >= buffered.readUInt32BE(2)) {
        const cmd = buffered.subarray(0, buffered.readUInt32BE(2));
        buffered = buffered.subarray(cmd.length);
        commands++;
        const reply = respond(cmd);
        if (script.delayMs) setTimeout(() => socket.destroyed || socket.write(reply), script.delayMs);
        else socket.write(reply);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => {
    server.close();
    (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
  });
  return { target: `tcp:127.0.0.1:${(server.address() as net.AddressInfo).port}`, commands: () => commands };
}

describe('a hostile vTPM', () => {
  const vcek = new Uint8Array([0x30, 0]);
  it('an NV buffer of 0 bytes (which made the user-data write loop forever) or of 64 KiB is refused', async () => {
    for (const nvBufferMax of [0, 65_536]) {
      const tpm = await hostileTpm({ nvBufferMax, hclSize: 2600 });
      const err = await rejection(azureVtpmProvider({ device: tpm.target, vcek, timeoutMs: 1000, refreshAttempts: 1 }).collect(new Uint8Array(64)));
      expect(err.code).toBe('provider.tpm');
      expect(tpm.commands()).toBeLessThan(5);
    }
  });

  it('an HCL report index far larger than a report is refused before it is read', async () => {
    const tpm = await hostileTpm({ nvBufferMax: 1024, hclSize: 65_535 });
    const err = await rejection(azureVtpmProvider({ device: tpm.target, vcek, timeoutMs: 1000, refreshAttempts: 1, defineUserDataIndex: false }).collect(new Uint8Array(64)));
    expect(err.code).toBe('provider.malformed');
    // Capability, two index lookups and the user-data write: not 64 reads of the claimed size.
    expect(tpm.commands()).toBeLessThan(8);
  });

  it('a TPM that answers every command just in time cannot stretch one collection past its deadline', async () => {
    const tpm = await hostileTpm({ nvBufferMax: 64, hclSize: 16_384, delayMs: 150 });
    const start = performance.now();
    const err = await rejection(azureVtpmProvider({ device: tpm.target, vcek, timeoutMs: 1000, collectTimeoutMs: 1200, refreshAttempts: 5 }).collect(new Uint8Array(64)));
    expect(err.code).toBe('provider.tpm-timeout');
    expect(performance.now() - start).toBeLessThan(3000);
  });

  it('a wedged TPM device times out, and closing it does not wait for the stuck write', async () => {
    const device = path.join(dir, 'tpmrm0');
    execFileSync('mkfifo', [device]);
    // A FIFO with a full pipe buffer: the next write blocks, as a wedged device's would.
    const keep = openSync(device, constants.O_RDWR | constants.O_NONBLOCK);
    closers.push(() => closeSync(keep));
    try {
      for (;;) writeSync(keep, Buffer.alloc(4096));
    } catch {
      // EAGAIN: full
    }
    const transport = await openTpmTransport(device, 300);
    expect((await rejection(transport.transmit(new Uint8Array(10)))).code).toBe('provider.tpm-timeout');
    const closed = await Promise.race([transport.close().then(() => 'closed'), new Promise((r) => setTimeout(() => r('still waiting'), 1000))]);
    expect(closed).toBe('closed');
  });
});

describe('a hostile metadata service', () => {
  let server: HttpServer;
  let base = '';
  let internalCalls = 0;
  beforeAll(async () => {
    server = createHttpServer((req, res) => {
      if (req.url === '/huge') {
        res.writeHead(200, { 'content-type': 'application/json' });
        const t = setInterval(() => (res.destroyed ? clearInterval(t) : res.write('x'.repeat(65_536))), 1);
        res.on('close', () => clearInterval(t));
      } else if (req.url === '/declared') {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(2 ** 32) });
        res.write('{');
      } else if (req.url === '/redirect') {
        res.writeHead(302, { location: `${base}/internal` });
        res.end();
      } else if (req.url === '/internal') {
        internalCalls++;
        res.end('{"admin_token":"do-not-leak"}');
      } else {
        res.end('{"vcekCert":"not a certificate"}');
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
    closers.push(() => {
      server.close();
      server.closeAllConnections();
    });
  });

  it('an endless or oversized answer is cut off at 64 KiB, long before the timeout', async () => {
    for (const route of ['/huge', '/declared']) {
      const start = performance.now();
      const err = await rejection(fetchAzureVcek(10_000, `${base}${route}`));
      expect(err.code, route).toBe('provider.vcek-unavailable');
      expect(err.message).toContain('larger than');
      expect(performance.now() - start).toBeLessThan(3000);
    }
  });

  it('a redirect is not followed, and nothing of an answer is quoted back', async () => {
    const err = await rejection(fetchAzureVcek(2000, `${base}/redirect`));
    expect(err.code).toBe('provider.vcek-unavailable');
    expect(internalCalls).toBe(0);
    const garbage = await rejection(fetchAzureVcek(2000, `${base}/internal`));
    expect(garbage.message).not.toContain('do-not-leak');
  });
});

describe('hostile report files', () => {
  it('a FIFO where outblob should be fails at once instead of blocking a thread for good', async () => {
    const fifo = path.join(dir, 'outblob');
    execFileSync('mkfifo', [fifo]);
    const start = performance.now();
    await expect(nodeTsmFileSystem.readFile(fifo)).rejects.toMatchObject({ code: 'ENOTREG' });
    expect(performance.now() - start).toBeLessThan(1000);
  });

  it('an auxblob larger than the kernel ever writes is refused', async () => {
    const big = path.join(dir, 'auxblob');
    await writeFile(big, new Uint8Array(1 << 20));
    await expect(nodeTsmFileSystem.readFile(big)).rejects.toMatchObject({ code: 'EFBIG' });
  });

  it('a certificate table takes up to 64 entries, each no larger than a certificate', () => {
    const cert = new Uint8Array(1500).fill(1);
    expect(parseCertTable(buildCertTable(Array.from({ length: 64 }, () => ({ guid: CERT_TABLE_GUIDS.ask, cert }))))).toHaveLength(64);
    expect(() => parseCertTable(buildCertTable(Array.from({ length: 65 }, () => ({ guid: CERT_TABLE_GUIDS.ask, cert }))))).toThrow(/more than 64 entries/);
    expect(() => parseCertTable(buildCertTable([{ guid: CERT_TABLE_GUIDS.vcek, cert: new Uint8Array(20_000) }]))).toThrow(/more than a certificate/);
  });
});
