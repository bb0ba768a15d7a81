/**
 * What an HTTP server needs to shut down promptly. Node's own closeIdleConnections() passes over
 * a connection that never sent a request (a load balancer's pre-opened one, say) and a TLS socket
 * still in its handshake, and a keep-alive connection whose response finishes during shutdown
 * goes idle with nobody to close it; any of them held shutdown for its whole grace period and
 * kept the process alive after it. Shared by the executor and the broker.
 */
import { isIPv6, type Socket } from 'node:net';
import { Server as TlsServer } from 'node:tls';
import type { FastifyInstance } from 'fastify';

export interface ConnectionTracker {
  /** Shutdown begins: a connection ends once no request on it is in progress. */
  beginClose(): void;
  /** End `socket` once no request on it is in progress (now, if none is). */
  endWhenIdle(socket: Socket): void;
  /** End every connection with no request in progress (TLS ones still in their handshake excepted). */
  closeIdle(): void;
  /** Cut every connection still open (the grace period is over). */
  destroyAll(): void;
}

/**
 * Who a connection is counted against for `maxPerAddress`: its IPv4 address, or the /64 prefix
 * of its IPv6 address (one host commonly holds a whole /64, so single IPv6 addresses would not
 * bound it). An IPv4 client seen through an IPv4-mapped address (::ffff:a.b.c.d) or the NAT64
 * prefix (64:ff9b::/96) counts as its IPv4 address.
 */
export function addressGroup(address: string | undefined): string {
  if (address === undefined) return '';
  const bare = address.split('%')[0]!; // a zone id names the interface, not the peer
  const words = isIPv6(bare) ? ipv6Words(bare) : undefined;
  if (words === undefined) return bare;
  const mapped = words.slice(0, 5).every((w) => w === 0) && words[5] === 0xffff;
  const nat64 = words[0] === 0x64 && words[1] === 0xff9b && words.slice(2, 6).every((w) => w === 0);
  if (mapped || nat64) return [words[6]! >> 8, words[6]! & 0xff, words[7]! >> 8, words[7]! & 0xff].join('.');
  return `${words.slice(0, 4).map((w) => w.toString(16)).join(':')}::/64`;
}

/** The eight 16-bit words of a valid IPv6 address (`::` expanded, a trailing dotted quad read). */
function ipv6Words(address: string): number[] | undefined {
  let text = address.toLowerCase();
  const quad = /(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (quad) {
    const [a, b, c, d] = quad.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, quad.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const halves = text.split('::');
  const parse = (part: string | undefined) => (part === undefined || part === '' ? [] : part.split(':').map((h) => Number.parseInt(h, 16)));
  const head = parse(halves[0]);
  const tail = parse(halves[1]);
  const words = halves.length > 1 ? [...head, ...Array<number>(Math.max(0, 8 - head.length - tail.length)).fill(0), ...tail] : head;
  return words.length === 8 && words.every((w) => Number.isInteger(w) && w >= 0 && w <= 0xffff) ? words : undefined;
}

export interface TrackOptions {
  /** Connections one address (an IPv6 /64) may hold open; more are closed as they arrive. Default: no cap. */
  readonly maxPerAddress?: number;
}

export function trackConnections(app: FastifyInstance, opts: TrackOptions = {}): ConnectionTracker {
  // Every TCP connection, to cut them all at the end.
  const sockets = new Set<Socket>();
  // Open connections per address group, for maxPerAddress.
  const perAddress = new Map<string, number>();
  // Requests in progress per socket the requests arrive on (the TLS socket, on an HTTPS server).
  const requests = new Map<Socket, number>();
  let closing = false;
  // Requests counted in progress (a hook registered before ours may refuse one before we see it).
  const counted = new WeakSet<object>();
  // Connections to end once their last request in progress is answered.
  const ending = new WeakSet<Socket>();
  const forget = (socket: Socket, set: { delete(s: Socket): unknown }) => socket.once('close', () => set.delete(socket));
  app.server.on('connection', (socket: Socket) => {
    if (opts.maxPerAddress !== undefined) {
      const group = addressGroup(socket.remoteAddress);
      const open = perAddress.get(group) ?? 0;
      if (open >= opts.maxPerAddress) {
        socket.destroy(); // as Node does beyond server.maxConnections: no bytes, no parser
        return;
      }
      perAddress.set(group, open + 1);
      socket.once('close', () => {
        const left = (perAddress.get(group) ?? 1) - 1;
        if (left > 0) perAddress.set(group, left);
        else perAddress.delete(group);
      });
    }
    sockets.add(socket);
    forget(socket, sockets);
  });
  app.server.on(app.server instanceof TlsServer ? 'secureConnection' : 'connection', (socket: Socket) => {
    requests.set(socket, 0);
    forget(socket, requests);
  });
  const count = (socket: Socket, by: number) => {
    const n = requests.get(socket);
    if (n !== undefined) requests.set(socket, n + by);
  };
  // Callback hooks, not async ones: they run on every request.
  app.addHook('onRequest', (req, _reply, done) => {
    counted.add(req.raw);
    count(req.raw.socket, 1);
    done();
  });
  app.addHook('onResponse', (req, _reply, done) => {
    const socket = req.raw.socket;
    if (counted.delete(req.raw)) count(socket, -1);
    // Every answer owed on the connection has gone out: end it now rather than leave it to the
    // keep-alive timeout (responses can finish out of order with their requests' handlers).
    if ((closing || ending.has(socket)) && requests.get(socket) === 0) socket.end();
    done();
  });
  app.addHook('onSend', (req, reply, payload, done) => {
    // Only the last request in progress on the connection closes it: one pipelined behind this
    // one was admitted (and may have run), so its answer must still go out.
    if (closing && (requests.get(req.raw.socket) ?? 0) <= 1) reply.header('connection', 'close');
    done(null, payload);
  });
  return {
    beginClose() {
      closing = true;
    },
    endWhenIdle(socket) {
      if ((requests.get(socket) ?? 0) <= 0) socket.destroy();
      else ending.add(socket);
    },
    closeIdle() {
      for (const [socket, n] of requests) if (n <= 0) socket.destroy();
    },
    destroyAll() {
      for (const socket of sockets) socket.destroy();
      for (const socket of requests.keys()) socket.destroy();
    },
  };
}
