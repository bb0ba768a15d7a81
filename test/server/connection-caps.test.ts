/**
 * Connection caps of the executor's HTTP server: in all (Node's server.maxConnections) and per
 * client address (an IPv6 /64), so that one client cannot hold every connection. Real sockets on
 * loopback against the executor's app in front of a service that answers at once.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createExecutorApp, type ExecutorApp } from '../../src/server/app.ts';
import { addressGroup } from '../../src/server/connections.ts';
import type { ExecutorService } from '../../src/server/service.ts';

const service = {
  readiness: () => ({ ready: true, checks: {} }),
  hasAction: () => false,
  poolStats: () => ({ running: 0, queued: 0 }),
  ledgerSize: () => 0,
} as unknown as ExecutorService;

let app: ExecutorApp | undefined;
afterEach(async () => {
  await app?.app.close();
  app = undefined;
});

async function start(limits: { maxConnections?: number; maxConnectionsPerAddress?: number }): Promise<number> {
  app = await createExecutorApp({ service, concurrency: 1, callers: [], ...limits });
  await app.app.listen({ host: '127.0.0.1', port: 0 });
  return (app.app.server.address() as net.AddressInfo).port;
}

/** Connect; resolves with the socket once connected, and whether the server cut it within 300 ms. */
async function open(port: number): Promise<{ socket: net.Socket; cut: Promise<boolean> }> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  await new Promise((r) => socket.once('connect', r));
  const cut = new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 300);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
  return { socket, cut };
}

/** GET /healthz over `socket`: the status line. */
async function health(socket: net.Socket): Promise<string> {
  const reply = new Promise<string>((resolve) => socket.once('data', (d: Buffer) => resolve(d.toString().split('\r\n')[0]!)));
  socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
  return reply;
}

describe('connection caps', () => {
  it('one address may hold maxConnectionsPerAddress connections; the next is cut at once, and a freed place is taken again', async () => {
    const port = await start({ maxConnectionsPerAddress: 3 });
    const held = [await open(port), await open(port), await open(port)];
    const extra = await open(port);
    expect(await extra.cut).toBe(true);
    for (const c of held) expect(await health(c.socket)).toBe('HTTP/1.1 200 OK');
    held[0]!.socket.destroy();
    await new Promise((r) => setTimeout(r, 100));
    const again = await open(port);
    expect(await health(again.socket)).toBe('HTTP/1.1 200 OK');
    expect(await again.cut).toBe(false);
    for (const c of [...held, again]) c.socket.destroy();
  });

  it('maxConnections caps them all, whatever the address', async () => {
    const port = await start({ maxConnections: 16 });
    const held = await Promise.all(Array.from({ length: 16 }, () => open(port)));
    const extra = await open(port);
    expect(await extra.cut).toBe(true);
    expect(await health(held[15]!.socket)).toBe('HTTP/1.1 200 OK');
    for (const c of held) c.socket.destroy();
  });

  it('addresses are grouped as IPv4 addresses and IPv6 /64 prefixes', () => {
    expect(addressGroup('192.0.2.7')).toBe('192.0.2.7');
    expect(addressGroup('::ffff:192.0.2.7')).toBe('192.0.2.7');
    expect(addressGroup('2001:db8:1:2:3:4:5:6')).toBe('2001:db8:1:2::/64');
    expect(addressGroup('2001:0DB8:0001:0002:ffff::9')).toBe('2001:db8:1:2::/64');
    expect(addressGroup('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(addressGroup('::1')).toBe('0:0:0:0::/64');
    expect(addressGroup('2001:db8:1:2::')).toBe('2001:db8:1:2::/64');
    expect(addressGroup('1:2::3:4:5:1.2.3.4')).toBe('1:2:0:3::/64');
    expect(addressGroup('::ffff:c000:207')).toBe('192.0.2.7');
    expect(addressGroup('64:ff9b::192.0.2.7')).toBe('192.0.2.7');
    expect(addressGroup('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(addressGroup(undefined)).toBe('');
  });
});
