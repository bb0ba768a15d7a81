/**
 * What a plain-HTTP server needs to shut down promptly: which connections carry a request in
 * progress. Node's own closeIdleConnections() passes over a connection that never sent a
 * request (a load balancer's pre-opened one, say), and a keep-alive connection whose response
 * finishes during shutdown goes idle with nobody to close it; either held the executor's
 * shutdown for its whole grace period and kept the process alive after it.
 */
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';

export interface ConnectionTracker {
  /** Shutdown begins: end every connection with no request in progress; responses from now on close theirs. */
  beginClose(): void;
  /** Cut every connection still open (the grace period is over). */
  destroyAll(): void;
}

export function trackConnections(app: FastifyInstance): ConnectionTracker {
  const requests = new Map<Socket, number>();
  let closing = false;
  app.server.on('connection', (socket: Socket) => {
    requests.set(socket, 0);
    socket.once('close', () => requests.delete(socket));
  });
  const count = (socket: Socket, by: number) => {
    const n = requests.get(socket);
    if (n !== undefined) requests.set(socket, n + by);
  };
  app.addHook('onRequest', async (req) => count(req.raw.socket, 1));
  app.addHook('onResponse', async (req) => count(req.raw.socket, -1));
  app.addHook('onSend', async (_req, reply) => {
    if (closing) reply.header('connection', 'close');
  });
  return {
    beginClose() {
      closing = true;
      for (const [socket, n] of requests) if (n <= 0) socket.destroy();
    },
    destroyAll() {
      for (const socket of requests.keys()) socket.destroy();
    },
  };
}
