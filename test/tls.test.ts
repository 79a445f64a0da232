/**
 * TLS (lib/sslproto.ts) on every loop of test/helpers/loops.ts: aionode's TLS client and
 * server against each other and against node:tls, certificate failures,
 * handshake and shutdown timeouts, flow control, a large transfer, and
 * startTls. Loopback only; the certificate is made here with the openssl
 * CLI (nothing committed) and the suite is skipped when it is missing.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  CancelledError,
  ConnectionAbortedError,
  OSError,
  RuntimeError,
  TimeoutError,
  logger,
  type ExceptionContext,
  type SelectorEventLoop,
} from '../lib/index.js';
import type { Server } from '../lib/base-events.js';
import { BufferedProtocol, Protocol } from '../lib/protocols.js';
import { Socket, constants } from '../lib/socket.js';
import type { Transport } from '../lib/transports.js';
import {
  SSLCertVerificationError,
  SSLError,
  SSLTransport,
  SSL_HANDSHAKE_TIMEOUT,
  SSL_SHUTDOWN_TIMEOUT,
  startTls,
} from '../lib/sslproto.js';
import { LOOPS, newLoop, useLoop, type TestLoop } from './helpers/loops.js';
import { fdCount } from './helpers/loop.js';

function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const OPENSSL = hasOpenssl();
const C = constants();

/** A deferred value. */
function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** A protocol recording its callbacks, for the one-made/one-lost checks. */
class Peer extends Protocol {
  transport!: Transport;
  events: string[] = [];
  chunks: Buffer[] = [];
  pauses = 0;
  resumes = 0;
  readonly made = deferred<void>();
  readonly eof = deferred<void>();
  readonly lost = deferred<Error | undefined>();
  onData: ((data: Buffer) => void) | null = null;
  override connectionMade(t: Transport): void {
    this.transport = t;
    this.events.push('made');
    this.made.resolve();
  }
  override dataReceived(data: Buffer): void {
    if (this.events.at(-1) !== 'data') this.events.push('data');
    this.chunks.push(Buffer.from(data));
    this.onData?.(data);
  }
  override eofReceived(): boolean {
    this.events.push('eof');
    this.eof.resolve();
    return false;
  }
  override connectionLost(exc: Error | undefined): void {
    this.events.push(exc === undefined ? 'lost' : `lost:${exc.name}`);
    this.lost.resolve(exc);
  }
  override pauseWriting(): void {
    this.pauses++;
  }
  override resumeWriting(): void {
    this.resumes++;
  }
  text(): string {
    return Buffer.concat(this.chunks).toString();
  }
}

function portOf(server: Server): number {
  return (server.sockets[0].getsockname() as [string, number])[1];
}

if (!OPENSSL) describe('TLS', () => {
  it.skip('needs the openssl CLI on PATH to make a test certificate; skipped', () => {});
});

describe.runIf(OPENSSL)('TLS', () => {
  let dir: string;
  let key: Buffer;
  let cert: Buffer;

  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'aionode-tls-'));
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes',
      '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'),
      '-subj', '/CN=localhost', '-days', '1',
      '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
    ], { stdio: 'ignore' });
    key = readFileSync(path.join(dir, 'key.pem'));
    cert = readFileSync(path.join(dir, 'cert.pem'));
  });

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  describe.each(LOOPS)('on %s', (backend) => {
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

    /** Runs `main` on the loop; stops the loop after `seconds` so a hang fails one test only. */
    async function run<T>(main: () => Promise<T>, seconds = 15): Promise<T> {
      const guard = loop.callLater(seconds, () => loop.stop());
      try {
        return await loop.runUntilComplete(main);
      } finally {
        guard.cancel();
      }
    }

    const serverSsl = (): tls.SecureContextOptions => ({ key, cert });
    const clientSsl = (): tls.SecureContextOptions => ({ ca: cert });

    /** An aionode TLS server; each connection gets a Peer, which `setup` may configure. */
    async function tlsServer(setup: (p: Peer) => void = () => {}, options: Record<string, unknown> = {}): Promise<{ server: Server; peers: Peer[] }> {
      const peers: Peer[] = [];
      const server = await loop.createServer(() => {
        const p = new Peer();
        setup(p);
        peers.push(p);
        return p;
      }, '127.0.0.1', 0, { ssl: serverSsl(), ...options });
      return { server, peers };
    }

    async function closeServer(server: Server): Promise<void> {
      server.close();
      await server.waitClosed();
    }

    it('round-trips data between an aionode TLS client and server', async () => {
      await run(async () => {
        const { server, peers } = await tlsServer((p) => {
          p.onData = (d) => p.transport.write(Buffer.concat([Buffer.from('echo:'), d]));
        });
        const [transport, client] = await loop.createConnection(() => new Peer(), '127.0.0.1', portOf(server), { ssl: clientSsl() });
        expect(transport).toBeInstanceOf(SSLTransport);
        expect(client.events).toEqual(['made']);
        expect(transport.getExtraInfo('ssl_object')).toBeInstanceOf(tls.TLSSocket);
        expect(transport.getExtraInfo('sslcontext')).toBeDefined();
        expect((transport.getExtraInfo('peercert') as tls.PeerCertificate).subject.CN).toBe('localhost');
        expect((transport.getExtraInfo('cipher') as tls.CipherNameAndProtocol).version).toMatch(/^TLSv1\.[23]$/);
        expect(transport.getExtraInfo('compression', 'absent')).toBeNull();
        expect(transport.getExtraInfo('peername')).toEqual(['127.0.0.1', portOf(server)]);
        expect(transport.getExtraInfo('socket')).toBeDefined();
        expect(transport.getExtraInfo('nope', 42)).toBe(42);
        expect(transport.canWriteEof()).toBe(false);
        expect(() => transport.writeEof()).toThrow(RuntimeError);
        const replied = deferred<void>();
        client.onData = () => {
          if (client.text() === 'echo:hello tls') replied.resolve();
        };
        transport.write('hello tls');
        await replied.promise;
        // close(): close_notify both ways, then both connections end cleanly.
        transport.close();
        expect(transport.isClosing()).toBe(true);
        expect(await client.lost.promise).toBeUndefined();
        expect(await peers[0].lost.promise).toBeUndefined();
        expect(client.events).toEqual(['made', 'data', 'lost']);
        expect(peers[0].events).toEqual(['made', 'data', 'eof', 'lost']);
        expect(peers[0].text()).toBe('hello tls');
        expect(peers[0].transport.getExtraInfo('peercert')).toBeNull();
        await closeServer(server);
      });
    });

    it('connects an aionode TLS client to a node:tls server', async () => {
      await run(async () => {
        const nodeServer = tls.createServer(serverSsl(), (s) => {
          s.on('data', (d: Buffer) => s.end(`node says ${d.toString()}`));
        });
        await new Promise<void>((r) => nodeServer.listen(0, '127.0.0.1', r));
        const port = (nodeServer.address() as { port: number }).port;
        const [transport, client] = await loop.createConnection(() => new Peer(), 'localhost', port, {
          ssl: clientSsl(),
          family: 2, // AF_INET: localhost may also be ::1
        });
        transport.write('hi');
        // The server ends: EOF reaches the protocol, then the connection closes.
        expect(await client.lost.promise).toBeUndefined();
        expect(client.text()).toBe('node says hi');
        expect(client.events).toEqual(['made', 'data', 'eof', 'lost']);
        expect((transport.getExtraInfo('ssl_object') as tls.TLSSocket).servername).toBe('localhost');
        await new Promise<void>((r) => nodeServer.close(() => r()));
      });
    });

    it('serves a node:tls client from an aionode TLS server', async () => {
      await run(async () => {
        const { server, peers } = await tlsServer((p) => {
          p.onData = () => p.transport.write(`aionode got ${p.text()}`);
        });
        const nodeClient = tls.connect({ host: '127.0.0.1', port: portOf(server), ca: cert, servername: 'localhost' });
        await new Promise<void>((r, j) => nodeClient.once('secureConnect', r).once('error', j));
        expect(nodeClient.authorized).toBe(true);
        nodeClient.write('ping');
        const reply = await new Promise<string>((r) => nodeClient.once('data', (d: Buffer) => r(d.toString())));
        expect(reply).toBe('aionode got ping');
        const closed = new Promise((r) => nodeClient.once('close', r));
        nodeClient.end();
        expect(await peers[0].lost.promise).toBeUndefined();
        await closed;
        expect(peers[0].events).toEqual(['made', 'data', 'eof', 'lost']);
        await closeServer(server);
      });
    });

    it('answers data that races the peer\'s close without an error', async () => {
      await run(async () => {
        const nodeServer = tls.createServer(serverSsl(), (s) => {
          s.on('error', () => {});
          s.resume();
          s.end('bye');
        });
        await new Promise<void>((r) => nodeServer.listen(0, '127.0.0.1', r));
        const port = (nodeServer.address() as { port: number }).port;
        const [transport, client] = await loop.createConnection(() => new Peer(), '127.0.0.1', port, { ssl: clientSsl() });
        // Writes on every loop pass: some land after node:tls has seen the
        // peer's EOF but before the protocol has; they are dropped quietly.
        const tick = (): void => {
          if (transport.isClosing()) return;
          transport.write('ack');
          loop.callSoon(tick);
        };
        tick();
        expect(await client.lost.promise).toBeUndefined();
        expect(client.text()).toBe('bye');
        expect(client.events).toEqual(['made', 'data', 'eof', 'lost']);
        await new Promise<void>((r) => nodeServer.close(() => r()));
      });
    });

    it('verifies client certificates when the server asks for them', async () => {
      await run(async () => {
        const { server, peers } = await tlsServer(() => {}, { ssl: { key, cert, ca: cert, requestCert: true } });
        // With a certificate the server trusts: both sides are authorized.
        const [t, c] = await loop.createConnection(() => new Peer(), '127.0.0.1', portOf(server), { ssl: { ca: cert, key, cert } });
        await new Promise<void>((r) => {
          const check = (): void => (peers.length === 1 && peers[0].events.includes('made') ? r() : void setTimeout(check, 2));
          check();
        });
        const serverTls = peers[0].transport.getExtraInfo('ssl_object') as tls.TLSSocket;
        expect(serverTls.authorized).toBe(true);
        expect((peers[0].transport.getExtraInfo('peercert') as tls.PeerCertificate).subject.CN).toBe('localhost');
        t.close();
        await c.lost.promise;
        await peers[0].lost.promise;
        // Without one: the server refuses, its protocol never hears of it.
        const outcome = await loop
          .createConnection(() => new Peer(), '127.0.0.1', portOf(server), { ssl: clientSsl() })
          .then(
            async ([, p]) => p.lost.promise,
            (e: unknown) => e,
          );
        expect(outcome).toBeInstanceOf(OSError);
        expect(peers).toHaveLength(2);
        await new Promise((r) => setTimeout(r, 50));
        expect(peers[1].events).toEqual([]);
        await closeServer(server);
      });
    });

    it('closes the connection when createConnection is cancelled during the handshake', async () => {
      await run(async () => {
        const silent: Peer[] = [];
        const server = await loop.createServer(() => {
          const p = new Peer();
          silent.push(p);
          return p;
        }, '127.0.0.1', 0);
        const task = loop.createConnection(() => new Peer(), '127.0.0.1', portOf(server), { ssl: clientSsl() });
        await new Promise<void>((r) => {
          const check = (): void => (silent.length === 1 && silent[0].chunks.length > 0 ? r() : void setTimeout(check, 2));
          check();
        });
        task.cancel();
        await expect(task).rejects.toThrow(CancelledError);
        expect(await silent[0].lost.promise).toBeUndefined();
        await closeServer(server);
      });
    });

    it('rejects a certificate the client cannot verify (SSLCertVerificationError)', async () => {
      await run(async () => {
        const made: string[] = [];
        const { server } = await tlsServer((p) => {
          p.made.promise.then(() => made.push('server made'));
        });
        // Default context: Node's CAs, which do not include our certificate.
        const err = (await loop
          .createConnection(() => new Peer(), '127.0.0.1', portOf(server), { ssl: true })
          .then(() => null, (e: unknown) => e)) as SSLCertVerificationError;
        expect(err).toBeInstanceOf(SSLCertVerificationError);
        expect(err).toBeInstanceOf(SSLError);
        expect(err).toBeInstanceOf(OSError);
        expect(err.code).toBe('DEPTH_ZERO_SELF_SIGNED_CERT');
        expect(err.message).toMatch(/certificate verify failed: self[- ]signed certificate/);
        // The right CA, the wrong name.
        const err2 = (await loop
          .createConnection(() => new Peer(), '127.0.0.1', portOf(server), { ssl: clientSsl(), serverHostname: 'example.com' })
          .then(() => null, (e: unknown) => e)) as SSLCertVerificationError;
        expect(err2).toBeInstanceOf(SSLCertVerificationError);
        expect(err2.code).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
        // The server's protocol never saw those connections.
        await new Promise((r) => setTimeout(r, 50));
        expect(made).toEqual([]);
        // rejectUnauthorized: false accepts it, as Node's option says.
        const [t, c] = await loop.createConnection(() => new Peer(), '127.0.0.1', portOf(server), { ssl: { rejectUnauthorized: false } });
        expect((t.getExtraInfo('ssl_object') as tls.TLSSocket).authorized).toBe(false);
        t.close();
        await c.lost.promise;
        await closeServer(server);
      });
    });

    it('aborts a handshake that takes longer than sslHandshakeTimeout', async () => {
      await run(async () => {
        // A plain server that accepts and never answers the ClientHello.
        const silent: Peer[] = [];
        const server = await loop.createServer(() => {
          const p = new Peer();
          silent.push(p);
          return p;
        }, '127.0.0.1', 0);
        const t0 = loop.time();
        const err = (await loop
          .createConnection(() => new Peer(), '127.0.0.1', portOf(server), { ssl: clientSsl(), sslHandshakeTimeout: 0.2 })
          .then(() => null, (e: unknown) => e)) as Error;
        const dt = loop.time() - t0;
        expect(err).toBeInstanceOf(ConnectionAbortedError);
        expect(err.message).toBe('SSL handshake is taking longer than 0.2 seconds: aborting the connection');
        expect(dt).toBeGreaterThanOrEqual(0.19);
        expect(dt).toBeLessThan(3);
        // The ClientHello did go out; the abort reaches the server as EOF.
        expect(await silent[0].lost.promise).toBeUndefined();
        expect(silent[0].chunks.length).toBeGreaterThan(0);
        expect(silent[0].chunks[0][0]).toBe(0x16); // TLS handshake record
        await closeServer(server);
      });
    });

    it('reports a peer reset as connectionLost(ConnectionResetError)', async () => {
      await run(async () => {
        // TLS over a net.Socket we can reset (a TLSSocket's own handle cannot).
        const nodeServer = net.createServer((raw) => {
          const s = new tls.TLSSocket(raw, { isServer: true, secureContext: tls.createSecureContext(serverSsl()) });
          s.on('error', () => {});
          s.once('data', () => raw.resetAndDestroy());
        });
        await new Promise<void>((r) => nodeServer.listen(0, '127.0.0.1', r));
        const port = (nodeServer.address() as { port: number }).port;
        const [transport, client] = await loop.createConnection(() => new Peer(), '127.0.0.1', port, { ssl: clientSsl() });
        transport.write('reset me');
        const exc = (await client.lost.promise) as OSError;
        expect(exc).toBeInstanceOf(OSError);
        expect(exc.name).toBe('ConnectionResetError');
        expect(exc.code).toBe('ECONNRESET');
        expect(client.events).toEqual(['made', 'lost:ConnectionResetError']);
        expect(transport.isClosing()).toBe(true);
        await new Promise<void>((r) => nodeServer.close(() => r()));
      });
    });

    it('validates the ssl arguments with asyncio\'s messages', async () => {
      await run(async () => {
        expect(SSL_HANDSHAKE_TIMEOUT).toBe(60);
        expect(SSL_SHUTDOWN_TIMEOUT).toBe(30);
        // A server needs a certificate: ssl: true is for clients.
        await expect(loop.connectAcceptedSocket(() => new Peer(), new Socket(C.AF_INET, C.SOCK_STREAM), { ssl: true })).rejects.toThrow(
          'Server side SSL needs a valid SSLContext',
        );
        await expect(loop.connectAcceptedSocket(() => new Peer(), new Socket(C.AF_INET, C.SOCK_STREAM), { ssl: 'yes' })).rejects.toThrow(
          'Expected "ssl" to be true, a tls.SecureContext or a tls options object, got "yes"',
        );
        const { server } = await tlsServer();
        await expect(
          loop.createConnection(() => new Peer(), '127.0.0.1', portOf(server), { ssl: clientSsl(), sslHandshakeTimeout: 0 }),
        ).rejects.toThrow('ssl_handshake_timeout should be a positive number, got 0');
        await expect(
          loop.createConnection(() => new Peer(), '127.0.0.1', portOf(server), { ssl: clientSsl(), sslShutdownTimeout: -1 }),
        ).rejects.toThrow('ssl_shutdown_timeout should be a positive number, got -1');
        await closeServer(server);
      });
    });

    it('moves 8 MiB each way with flow control and intact data', async () => {
      await run(async () => {
        const size = 8 * 1024 * 1024;
        const payload = randomBytes(size);
        const digest = createHash('sha256').update(payload).digest('hex');
        const { server, peers } = await tlsServer((p) => {
          const hash = createHash('sha256');
          let got = 0;
          p.chunks = [];
          p.onData = (d) => {
            hash.update(d);
            got += d.length;
            if (got === size) {
              p.transport.write(hash.digest('hex'));
              // And the payload back, in one write: the server pauses too.
              p.transport.write(payload);
            }
          };
          // Peer.dataReceived keeps a copy of every chunk: skip that here.
          p.dataReceived = (d: Buffer) => p.onData!(d);
        });
        const [transport, client] = await loop.createConnection(() => new Peer(), '127.0.0.1', portOf(server), { ssl: clientSsl() });
        const back = createHash('sha256');
        let echoed = 0;
        let reply = '';
        const done = deferred<void>();
        client.dataReceived = (d: Buffer) => {
          if (reply.length < 64) {
            const take = Math.min(64 - reply.length, d.length);
            reply += d.subarray(0, take).toString();
            d = d.subarray(take);
          }
          back.update(d);
          echoed += d.length;
          if (echoed === size) done.resolve();
        };
        for (let off = 0; off < size; off += 64 * 1024) transport.write(payload.subarray(off, off + 64 * 1024));
        // Far over the 64 KiB high-water mark: the protocol was paused.
        expect(transport.getWriteBufferSize()).toBeGreaterThan(64 * 1024);
        expect(client.pauses).toBe(1);
        await done.promise;
        expect(reply).toBe(digest);
        expect(back.digest('hex')).toBe(digest);
        expect(client.resumes).toBe(1);
        expect(transport.getWriteBufferSize()).toBe(0);
        expect(peers[0].pauses).toBe(1);
        transport.close();
        await client.lost.promise;
        await peers[0].lost.promise;
        await closeServer(server);
      });
    });

    it('stops delivering while reading is paused and resumes after', async () => {
      await run(async () => {
        // The server pauses in its first dataReceived: no more calls until it resumes,
        // though more records are already decrypted and waiting.
        const { server, peers } = await tlsServer((p) => {
          p.onData = () => {
            if (p.chunks.length === 1) p.transport.pauseReading();
          };
        });
        const [transport, client] = await loop.createConnection(() => new Peer(), '127.0.0.1', portOf(server), { ssl: clientSsl() });
        const data = randomBytes(1024 * 1024);
        transport.write(data);
        await new Promise((r) => setTimeout(r, 150));
        const peer = peers[0];
        expect(peer.transport.isReading()).toBe(false);
        expect(peer.chunks).toHaveLength(1);
        // Memory stays bounded: node:tls stopped reading, so the raw transport did too.
        const raw = (peer.transport as SSLTransport)._rawProtocol.transport!;
        expect(raw.isReading()).toBe(false);
        peer.transport.resumeReading();
        expect(peer.transport.isReading()).toBe(true);
        await new Promise<void>((r) => {
          peer.onData = () => {
            if (Buffer.concat(peer.chunks).length === data.length) r();
          };
        });
        expect(Buffer.concat(peer.chunks).equals(data)).toBe(true);
        transport.close();
        await client.lost.promise;
        await peer.lost.promise;
        await closeServer(server);
      });
    });

    it('fills a BufferedProtocol\'s buffers with decrypted data', async () => {
      await run(async () => {
        class Sink extends BufferedProtocol {
          buf = new Uint8Array(1000);
          got: Buffer[] = [];
          sizes = new Set<number>();
          eof = deferred<void>();
          override getBuffer(hint: number): Uint8Array {
            this.sizes.add(hint);
            return this.buf;
          }
          override bufferUpdated(n: number): void {
            this.got.push(Buffer.from(this.buf.subarray(0, n)));
          }
          override eofReceived(): boolean {
            this.eof.resolve();
            return false;
          }
        }
        const sinks: Sink[] = [];
        const server = await loop.createServer(() => {
          const s = new Sink();
          sinks.push(s);
          return s;
        }, '127.0.0.1', 0, { ssl: serverSsl() });
        const [transport, client] = await loop.createConnection(() => new Peer(), '127.0.0.1', portOf(server), { ssl: clientSsl() });
        const data = randomBytes(100_000);
        transport.write(data);
        transport.close();
        await sinks[0].eof.promise;
        expect(Buffer.concat(sinks[0].got).equals(data)).toBe(true);
        expect(Math.max(...sinks[0].got.map((b) => b.length))).toBe(1000);
        await client.lost.promise;
        await closeServer(server);
      });
    });

    it('reports TimeoutError when the peer never completes the TLS shutdown', async () => {
      await run(async () => {
        // allowHalfOpen: the node:tls server neither answers close_notify nor closes.
        const sockets: tls.TLSSocket[] = [];
        const nodeServer = tls.createServer({ ...serverSsl(), allowHalfOpen: true }, (s) => {
          sockets.push(s);
          s.resume();
        });
        await new Promise<void>((r) => nodeServer.listen(0, '127.0.0.1', r));
        const port = (nodeServer.address() as { port: number }).port;
        const [transport, client] = await loop.createConnection(() => new Peer(), '127.0.0.1', port, {
          ssl: clientSsl(),
          sslShutdownTimeout: 0.2,
        });
        const t0 = loop.time();
        transport.close();
        const exc = await client.lost.promise;
        expect(exc).toBeInstanceOf(TimeoutError);
        expect(exc!.message).toBe('SSL shutdown timed out');
        expect(loop.time() - t0).toBeGreaterThanOrEqual(0.19);
        expect(client.events).toEqual(['made', 'lost:TimeoutError']);
        for (const s of sockets) s.destroy();
        await new Promise<void>((r) => nodeServer.close(() => r()));
      });
    });

    it('drops writes after close() and warns after a few', async () => {
      await run(async () => {
        const warn = vi.spyOn(logger, 'warning').mockImplementation(() => {});
        try {
          const { server, peers } = await tlsServer();
          const [transport, client] = await loop.createConnection(() => new Peer(), '127.0.0.1', portOf(server), { ssl: clientSsl() });
          transport.write('kept');
          transport.close();
          for (let i = 0; i < 7; i++) transport.write('dropped');
          expect(() => transport.write(42 as unknown as string)).toThrow(TypeError);
          expect(warn.mock.calls.map((c) => c[0])).toEqual(['SSL connection is closed', 'SSL connection is closed']);
          await client.lost.promise;
          await peers[0].lost.promise;
          expect(peers[0].text()).toBe('kept');
          await closeServer(server);
        } finally {
          warn.mockRestore();
        }
      });
    });

    it('upgrades a plain connection with startTls', async () => {
      await run(async () => {
        const serverTls = deferred<SSLTransport>();
        const serverPeers: Peer[] = [];
        const server = await loop.createServer(() => {
          const p = new Peer();
          serverPeers.push(p);
          p.onData = (d) => {
            if (d.toString() === 'STARTTLS\n') {
              p.transport.write('OK\n');
              // The protocol's old transport is the plain one: write through the new one.
              p.onData = (d2) => void serverTls.promise.then((t) => t.write(`secure echo ${d2.toString()}`));
              void startTls(loop, p.transport, p, serverSsl(), { serverSide: true }).then(serverTls.resolve);
            }
          };
          return p;
        }, '127.0.0.1', 0);
        const [plain, client] = await loop.createConnection(() => new Peer(), '127.0.0.1', portOf(server));
        const ok = deferred<void>();
        client.onData = (d) => d.toString() === 'OK\n' && ok.resolve();
        plain.write('STARTTLS\n');
        await ok.promise;
        client.chunks = [];
        client.onData = null;
        const secure = await startTls(loop, plain, client, clientSsl(), { serverHostname: 'localhost' });
        expect(secure).toBeInstanceOf(SSLTransport);
        expect(secure.getExtraInfo('ssl_object')).toBeInstanceOf(tls.TLSSocket);
        expect(secure.getExtraInfo('peername')).toEqual(plain.getExtraInfo('peername'));
        const serverSecure = await serverTls.promise;
        expect(serverSecure.getProtocol()).toBe(serverPeers[0]);
        const replied = deferred<void>();
        client.onData = () => client.text() === 'secure echo over tls' && replied.resolve();
        secure.write('over tls');
        await replied.promise;
        // No second connectionMade: the protocols were already connected.
        expect(client.events.filter((e) => e === 'made')).toHaveLength(1);
        expect(serverPeers[0].events.filter((e) => e === 'made')).toHaveLength(1);
        secure.close();
        expect(await client.lost.promise).toBeUndefined();
        expect(await serverPeers[0].lost.promise).toBeUndefined();
        await closeServer(server);
      });
    });

    it('rejects startTls when the handshake fails, and closes the transport', async () => {
      await run(async () => {
        const { server } = await tlsServer();
        // A plain connection to a TLS server, upgraded with a context that does not trust it.
        const [plain, client] = await loop.createConnection(() => new Peer(), '127.0.0.1', portOf(server));
        await expect(startTls(loop, plain, client, true, { serverHostname: 'localhost' })).rejects.toBeInstanceOf(SSLCertVerificationError);
        expect(plain.isClosing()).toBe(true);
        expect(() => startTls(loop, {} as Transport, client, true)).toThrow(TypeError);
        server.close();
        server.closeClients();
        await server.waitClosed();
      });
    });
  });
});
