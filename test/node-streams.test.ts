/**
 * Duplex views of transports (lib/node-streams.ts), on every loop of test/helpers/loops.ts:
 * node:http served over aionode transports, and back-pressure both ways.
 */
import * as http from 'node:http';
import * as net from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ExceptionContext, SelectorEventLoop } from '../lib/index.js';
import type { Server } from '../lib/base-events.js';
import { Protocol } from '../lib/protocols.js';
import type { Transport } from '../lib/transports.js';
import { createDuplexProtocol, toDuplex, type DuplexProtocol, type TransportDuplex } from '../lib/node-streams.js';
import { LOOPS, newLoop, useLoop, type TestLoop } from './helpers/loops.js';
import { fdCount } from './helpers/loop.js';

function portOf(server: Server): number {
  return (server.sockets[0].getsockname() as [string, number])[1];
}

function get(url: string, agent?: http.Agent): Promise<{ res: http.IncomingMessage; body: string; localPort: number | undefined }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent }, (res) => {
        const chunks: Buffer[] = [];
        const localPort = res.socket.localPort;
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ res, body: Buffer.concat(chunks).toString(), localPort }));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

/** Runs `main` on `loop`, stopping the loop after `seconds` so a hang fails one test only. */
async function runOn<T>(loop: SelectorEventLoop, main: () => Promise<T>, seconds = 10): Promise<T> {
  const guard = loop.callLater(seconds, () => loop.stop());
  try {
    return await loop.runUntilComplete(main);
  } finally {
    guard.cancel();
  }
}

/** Waits for `cond`, polling on Node's timers (the loop keeps running meanwhile). */
async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

describe.each(LOOPS)('node-streams on %s', (backend) => {
  useLoop(backend);
  let loop: TestLoop;
  let errors: ExceptionContext[];
  let fdsBefore: number;

  beforeEach(() => {
    fdsBefore = fdCount();
    loop = newLoop(backend);
    errors = [];
    loop.setExceptionHandler((_l, ctx) => errors.push(ctx));
  });

  afterEach(() => {
    loop.close();
    expect(errors).toEqual([]);
    expect(fdCount()).toBe(fdsBefore);
  });

  /** An aionode server whose connections are injected into `httpServer`; tracks the protocols. */
  async function serveHttp(httpServer: http.Server): Promise<{ server: Server; protocols: DuplexProtocol[] }> {
    const protocols: DuplexProtocol[] = [];
    const server = await loop.createServer(() => {
      const [protocol, duplex] = createDuplexProtocol();
      protocols.push(protocol);
      httpServer.emit('connection', duplex);
      return protocol;
    }, '127.0.0.1', 0);
    return { server, protocols };
  }

  it('serves node:http over an aionode server, hit by http.get', async () => {
    await runOn(loop, async () => {
      const httpServer = http.createServer((req, res) => {
        res.setHeader('x-aionode', 'yes');
        res.writeHead(201, { 'content-type': 'text/plain' });
        res.end(`hello ${req.method} ${req.url} from ${req.socket.remoteAddress}`);
      });
      const { server, protocols } = await serveHttp(httpServer);
      const agent = new http.Agent({ keepAlive: false });
      const { res, body } = await get(`http://127.0.0.1:${portOf(server)}/path?q=1`, agent);
      expect(res.statusCode).toBe(201);
      expect(res.headers['x-aionode']).toBe('yes');
      expect(res.headers['content-type']).toBe('text/plain');
      expect(body).toBe('hello GET /path?q=1 from 127.0.0.1');
      expect(protocols).toHaveLength(1);
      // Connection: close: the server ends, the transport closes.
      await until(() => protocols[0].lost, 'the server connection to close');
      expect(protocols[0].duplex.destroyed).toBe(true);
      agent.destroy();
      server.close();
      await server.waitClosed();
    });
  });

  it('keeps one connection alive for two requests', async () => {
    await runOn(loop, async () => {
      let n = 0;
      const sockets = new Set<unknown>();
      const httpServer = http.createServer((req, res) => {
        sockets.add(req.socket);
        res.end(`response ${++n}`);
      });
      const { server, protocols } = await serveHttp(httpServer);
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      const url = `http://127.0.0.1:${portOf(server)}/`;
      const first = await get(url, agent);
      const second = await get(url, agent);
      expect([first.body, second.body]).toEqual(['response 1', 'response 2']);
      expect(second.res.headers.connection).toBe('keep-alive');
      expect(second.localPort).toBe(first.localPort);
      expect(protocols).toHaveLength(1);
      expect(sockets.size).toBe(1);
      expect(protocols[0].lost).toBe(false);
      // The client goes away: EOF ends the Duplex, and the transport closes.
      agent.destroy();
      await until(() => protocols[0].lost, 'the server connection to close');
      server.close();
      await server.waitClosed();
    });
  });

  it('pauses the transport while a slow reader lets the Duplex fill up', async () => {
    await runOn(loop, async () => {
      let protocol!: DuplexProtocol;
      let transport!: Transport;
      const server = await loop.createServer(() => {
        const [p] = createDuplexProtocol({ highWaterMark: 64 * 1024 });
        protocol = p;
        return p;
      }, '127.0.0.1', 0);
      const payload = randomBytes(4 * 1024 * 1024);
      const client = net.connect(portOf(server), '127.0.0.1');
      client.end(payload);
      await until(() => protocol?.transport != null, 'the connection');
      transport = protocol.transport!;
      const duplex = protocol.duplex;
      // Nobody reads: the Duplex buffers up to its high-water mark, then the
      // transport stops reading (the rest waits in the kernel and the client).
      await until(() => !transport.isReading(), 'the transport to pause');
      const buffered = duplex.readableLength;
      expect(buffered).toBeGreaterThanOrEqual(64 * 1024);
      expect(buffered).toBeLessThan(payload.length);
      await new Promise((r) => setTimeout(r, 50));
      expect(duplex.readableLength).toBe(buffered);
      // A reader drains it all, and the transport resumes as needed.
      const hash = createHash('sha256');
      let got = 0;
      duplex.on('data', (c: Buffer) => {
        hash.update(c);
        got += c.length;
      });
      await once(duplex, 'end');
      expect(got).toBe(payload.length);
      expect(hash.digest('hex')).toBe(createHash('sha256').update(payload).digest('hex'));
      duplex.end();
      await once(client, 'close');
      await until(() => protocol.lost, 'the server connection to close');
      server.close();
      await server.waitClosed();
    });
  });

  it('holds writes back while the transport is paused and drains after', async () => {
    await runOn(loop, async () => {
      const accepted: net.Socket[] = [];
      const nodeServer = net.createServer((s) => {
        s.pause();
        accepted.push(s);
      });
      await new Promise<void>((r) => nodeServer.listen(0, '127.0.0.1', r));
      const port = (nodeServer.address() as net.AddressInfo).port;
      const [transport] = await loop.createConnection(() => new Protocol(), '127.0.0.1', port);
      const duplex: TransportDuplex = toDuplex(transport);
      await until(() => accepted.length === 1, 'the accept');
      const chunk = randomBytes(64 * 1024);
      let writes = 0;
      let full = false;
      // The peer does not read: the kernel buffers fill, then the
      // transport's buffer goes over 64 KiB, and write() says "wait".
      while (writes < 2000) {
        writes++;
        if (!duplex.write(chunk)) {
          full = true;
          // Only turns false once the transport paused its protocol.
          if (transport.getWriteBufferSize() > 64 * 1024) break;
        }
        await new Promise((r) => setImmediate(r));
      }
      expect(full).toBe(true);
      expect(transport.getWriteBufferSize()).toBeGreaterThan(64 * 1024);
      expect(duplex.writableLength).toBeGreaterThan(0);
      const sent = writes * chunk.length;
      const peer = accepted[0];
      let received = 0;
      peer.on('data', (c: Buffer) => (received += c.length));
      peer.resume();
      await once(duplex, 'drain');
      // Like a net.Socket, the Duplex only ends (and closes) once read to its end.
      duplex.resume();
      duplex.end();
      await once(peer, 'end');
      expect(received).toBe(sent);
      peer.end();
      await once(duplex, 'close');
      await new Promise<void>((r) => nodeServer.close(() => r()));
    });
  });

  it('ends the readable side on EOF and half-closes with end()', async () => {
    await runOn(loop, async () => {
      let peer!: net.Socket;
      const nodeServer = net.createServer({ allowHalfOpen: true }, (s) => {
        peer = s;
      });
      await new Promise<void>((r) => nodeServer.listen(0, '127.0.0.1', r));
      const port = (nodeServer.address() as net.AddressInfo).port;
      const [transport] = await loop.createConnection(() => new Protocol(), '127.0.0.1', port);
      const duplex = toDuplex(transport, { allowHalfOpen: true });
      await until(() => peer !== undefined, 'the accept');
      const got: string[] = [];
      duplex.setEncoding('utf8');
      duplex.on('data', (s: string) => got.push(s));
      peer.end('from peer');
      await once(duplex, 'end');
      expect(got.join('')).toBe('from peer');
      // Half-open: the Duplex may still write after EOF.
      expect(transport.isClosing()).toBe(false);
      const peerGot: Buffer[] = [];
      peer.on('data', (c: Buffer) => peerGot.push(c));
      const peerEnded = once(peer, 'end');
      const closed = once(duplex, 'close');
      duplex.end('reply after eof');
      await peerEnded;
      expect(Buffer.concat(peerGot).toString()).toBe('reply after eof');
      await closed;
      expect(transport.isClosing()).toBe(true);
      await new Promise<void>((r) => nodeServer.close(() => r()));
    });
  });

  it('destroys the Duplex with the error of a lost connection and aborts on destroy(err)', async () => {
    await runOn(loop, async () => {
      const peers: net.Socket[] = [];
      const nodeServer = net.createServer((s) => peers.push(s));
      await new Promise<void>((r) => nodeServer.listen(0, '127.0.0.1', r));
      const port = (nodeServer.address() as net.AddressInfo).port;
      // The peer resets: the Duplex errors with ConnectionResetError.
      const [t1] = await loop.createConnection(() => new Protocol(), '127.0.0.1', port);
      const d1 = toDuplex(t1);
      d1.resume();
      await until(() => peers.length === 1, 'the accept');
      const errored = once(d1, 'error');
      peers[0].resetAndDestroy();
      const [err] = (await errored) as [Error & { code?: string }];
      expect(err.name).toBe('ConnectionResetError');
      expect(err.code).toBe('ECONNRESET');
      await until(() => d1.destroyed && t1.isClosing(), 'the Duplex to be destroyed');
      // destroy(err) aborts: what the transport still buffers is dropped,
      // so a peer that does not read cannot hold the connection open.
      const [t2] = await loop.createConnection(() => new Protocol(), '127.0.0.1', port);
      const d2 = toDuplex(t2);
      await until(() => peers.length === 2, 'the accept');
      peers[1].pause();
      const big = Buffer.alloc(8 * 1024 * 1024);
      d2.write(big);
      expect(t2.getWriteBufferSize()).toBeGreaterThan(0);
      const d2Closed = new Promise((r) => d2.once('close', r));
      d2.on('error', () => {});
      d2.destroy(new Error('boom'));
      expect(t2.isClosing()).toBe(true);
      await d2Closed;
      await until(() => d2.protocol.lost, 'the aborted transport to be lost');
      peers[1].on('error', () => {});
      peers[1].destroy();
      // destroy() without an error closes: the buffered bytes still go out.
      const [t3] = await loop.createConnection(() => new Protocol(), '127.0.0.1', port);
      const d3 = toDuplex(t3);
      await until(() => peers.length === 3, 'the accept');
      d3.write(big);
      expect(t3.getWriteBufferSize()).toBeGreaterThan(0);
      d3.destroy();
      expect(t3.isClosing()).toBe(true);
      let received = 0;
      peers[2].on('data', (c: Buffer) => (received += c.length));
      await once(peers[2], 'end');
      expect(received).toBe(big.length);
      await until(() => d3.protocol.lost, 'the closed transport to be lost');
      peers[2].destroy();
      await new Promise<void>((r) => nodeServer.close(() => r()));
    });
  });
});
