/**
 * T4, T5, T6 (faults F4 SIGPIPE on write to a closed peer, F5 RST /
 * half-close / EOF order), reliability plan §4.
 *
 * T4 — the peer sets SO_LINGER 0 and closes (an RST) while our server keeps
 *   writing 1 MiB chunks. Survived: the process is alive, no SIGPIPE was
 *   raised (a `process.on('SIGPIPE')` listener makes one visible instead of
 *   ignored), the Protocol gets connectionLost(ECONNRESET | EPIPE) exactly
 *   once, later writes are dropped without throwing; with streams,
 *   `write` + `drain()` rejects with ConnectionResetError/BrokenPipeError;
 *   `loop.sendfile` / `sockSendfile` of a 32 MiB file rejects the same way
 *   (sendfile(2) has no MSG_NOSIGNAL flag: the SIGPIPE check matters most
 *   there) and settles.
 * T5 — the client shuts down its write side (raw `shutdown(SHUT_WR)`,
 *   `transport.writeEof()`, `writer.writeEof()`); the server replies 1 MiB
 *   after the EOF. Survived: eofReceived() returning true keeps the server
 *   transport open (it replies later, then closes), returning false closes
 *   it after flushing what eofReceived wrote; the client gets every byte,
 *   then a clean EOF — never ECONNRESET; callback order made, data, eof, lost.
 * T6 — the peer closes with unread data in its receive buffer (the kernel
 *   sends RST). Survived: our side sees ECONNRESET, not EOF
 *   (eofReceived never runs), connectionLost(err) exactly once; a stream
 *   reader's read() rejects with ConnectionResetError.
 * Every test: exact callback counts, loop closed, fds back at baseline.
 */
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  BrokenPipeError,
  ConnectionResetError,
  OSError,
  Protocol,
  sleep,
  startServer,
  openConnection,
  waitFor,
  type StreamReader,
  type StreamWriter,
  type Transport,
} from '../../lib/index.js';
import { Socket, constants } from '../../lib/socket.js';
import { faultHarness, loopKinds, MiB, KiB } from '../helpers/faults.js';
import { ConnTracker, TrackedProtocol, patternBuffer, serverPort } from '../helpers/net.js';
import { stopsWatching } from '../helpers/loops.js';

const C = constants();
const isResetOrPipe = (e: unknown): boolean =>
  (e instanceof ConnectionResetError || e instanceof BrokenPipeError) && ['ECONNRESET', 'EPIPE'].includes((e as OSError).code!);

describe.each(loopKinds())('T4/T5/T6 resets and half-close on %s', (kind) => {
  const h = faultHarness(kind);
  let tr: ConnTracker;
  let sigpipes: number;
  const onSigpipe = (): void => void sigpipes++;
  beforeEach(() => {
    tr = new ConnTracker();
    sigpipes = 0;
    process.on('SIGPIPE', onSigpipe);
  });
  afterEach(() => {
    process.off('SIGPIPE', onSigpipe);
    expect(sigpipes, 'SIGPIPE raised by a write').toBe(0);
    expect(tr.violations()).toEqual([]);
  });

  /** A raw client Socket connected to `port` (the peer under the test's control). */
  async function rawClient(port: number): Promise<Socket> {
    const s = new Socket(C.AF_INET, C.SOCK_STREAM);
    h.defer(() => s.close());
    await waitFor(h.loop.sockConnect(s, ['127.0.0.1', port]), 5);
    return s;
  }

  /** Reads from `s` until EOF (bounded); a reset rejects. */
  async function recvAll(s: Socket, timeout = 10): Promise<Buffer> {
    const parts: Buffer[] = [];
    for (;;) {
      const d = await waitFor(h.loop.sockRecv(s, 256 * KiB), timeout);
      if (d.length === 0) return Buffer.concat(parts);
      parts.push(Buffer.from(d));
    }
  }

  async function closeServer(server: { close(): void; closeClients(): void; waitClosed(): PromiseLike<void> }): Promise<void> {
    server.close();
    server.closeClients();
    await waitFor(server.waitClosed() as never, 5);
  }

  // ------------------------------------------------------------------ T4

  it('T4: peer RSTs (SO_LINGER 0) while the server writes 1 MiB chunks: connectionLost(ECONNRESET|EPIPE) once, no SIGPIPE', async () => {
    await h.run(async () => {
      const chunk = Buffer.alloc(1 * MiB, 0x41);
      const srv: TrackedProtocol[] = [];
      let writesAfterLoss = 0;
      const server = await h.loop.createServer(
        () => {
          const p = new TrackedProtocol(h.loop, tr, 'srv');
          p.keep = false;
          srv.push(p);
          // Keep writing 1 MiB chunks (respecting pause) until 50 writes after the loss.
          const pump = (): void => {
            if (p.lost > 0) {
              if (writesAfterLoss++ < 50) {
                expect(() => p.transport!.write(chunk)).not.toThrow();
                h.loop.callSoon(pump);
              }
              return;
            }
            if (!p.paused) p.transport!.write(chunk);
            h.loop.callLater(0.001, pump);
          };
          p.onData = () => undefined;
          const made = p.connectionMade.bind(p);
          p.connectionMade = (t: Transport) => {
            made(t);
            h.loop.callSoon(pump);
          };
          return p;
        },
        '127.0.0.1',
        0,
      );
      const peer = await rawClient(serverPort(server));
      // Read a few MiB so the writes are really flowing, then reset.
      let got = 0;
      while (got < 3 * MiB) got += (await waitFor(h.loop.sockRecv(peer, 256 * KiB), 5)).length;
      peer.setsockopt(C.SOL_SOCKET, C.SO_LINGER, 0);
      peer.close();
      const exc = await waitFor(srv[0].lostFut, 5);
      expect(isResetOrPipe(exc), `connectionLost got ${String(exc)}`).toBe(true);
      // The 50 writes after the loss (one per pass); a SIGPIPE would land meanwhile.
      for (let i = 0; i < 400 && writesAfterLoss <= 50; i++) await sleep(0.005);
      await sleep(0.05);
      expect(writesAfterLoss).toBeGreaterThan(50);
      expect(srv[0].lost).toBe(1);
      expect(srv[0].eofs).toBe(0);
      expect(srv[0].transport!.getWriteBufferSize()).toBe(0);
      await closeServer(server);
    });
  });

  it('T4 (streams): write + drain() rejects with ConnectionResetError/BrokenPipeError after the peer RSTs', async () => {
    await h.run(async () => {
      const chunk = Buffer.alloc(1 * MiB, 0x42);
      const outcome = h.loop.createFuture<unknown>();
      const handler = h.calls.mustCall('clientConnected', async (_r: StreamReader, w: StreamWriter) => {
        try {
          for (let i = 0; i < 10_000; i++) {
            w.write(chunk);
            await w.drain();
          }
          outcome.setResult('no error after 10 GiB');
        } catch (e) {
          outcome.setResult(e);
        } finally {
          w.close();
        }
      });
      const server = await startServer(handler, '127.0.0.1', 0);
      const peer = await rawClient(serverPort(server));
      let got = 0;
      while (got < 3 * MiB) got += (await waitFor(h.loop.sockRecv(peer, 256 * KiB), 5)).length;
      peer.setsockopt(C.SOL_SOCKET, C.SO_LINGER, 0);
      peer.close();
      const exc = await waitFor(outcome, 5);
      expect(isResetOrPipe(exc), `drain() ended with ${String(exc)}`).toBe(true);
      await closeServer(server);
    });
  });

  /** A 32 MiB temp file, opened for reading; closed and removed in teardown. */
  function bigFile(): number {
    const dir = mkdtempSync(path.join(tmpdir(), 'aionode-t4-'));
    const file = path.join(dir, 'big');
    writeFileSync(file, Buffer.alloc(32 * MiB, 0x46));
    const fd = openSync(file, 'r');
    h.defer(() => {
      closeSync(fd);
      rmSync(dir, { recursive: true, force: true });
    });
    return fd;
  }

  it('T4 (sendfile): loop.sendfile to a peer that RSTs rejects with ECONNRESET|EPIPE, settles, no SIGPIPE', async () => {
    await h.run(async () => {
      const fd = bigFile();
      const srv: TrackedProtocol[] = [];
      const server = await h.loop.createServer(
        () => {
          const p = new TrackedProtocol(h.loop, tr, 'srv');
          srv.push(p);
          return p;
        },
        '127.0.0.1',
        0,
      );
      const peer = await rawClient(serverPort(server));
      for (let i = 0; i < 500 && srv.length === 0; i++) await sleep(0.01);
      await waitFor(srv[0].madeFut, 5);
      const sending = h.loop.sendfile(srv[0].transport!, fd);
      let got = 0;
      while (got < 1 * MiB) got += (await waitFor(h.loop.sockRecv(peer, 256 * KiB), 5)).length;
      peer.setsockopt(C.SOL_SOCKET, C.SO_LINGER, 0);
      peer.close();
      let exc: unknown = null;
      try {
        const n = await waitFor(sending, 5);
        exc = `sendfile resolved with ${n}`;
      } catch (e) {
        exc = e;
      }
      expect(isResetOrPipe(exc), `sendfile ended with ${String(exc)}`).toBe(true);
      srv[0].transport!.close();
      await waitFor(srv[0].lostFut, 5);
      await sleep(0.05);
      expect(srv[0].lost).toBe(1);
      await closeServer(server);
    });
  });

  it('T4 (sockSendfile): a raw socket sendfile to a peer that RSTs rejects with ECONNRESET|EPIPE, no SIGPIPE', async () => {
    await h.run(async () => {
      const fd = bigFile();
      const l = new Socket(C.AF_INET, C.SOCK_STREAM);
      h.defer(() => l.close());
      l.bind(['127.0.0.1', 0]);
      l.listen(4);
      const port = (l.getsockname() as [string, number])[1];
      const acc = h.loop.sockAccept(l);
      const peer = await rawClient(port);
      const [s] = await waitFor(acc, 5);
      h.defer(() => s.close());
      const sending = h.loop.sockSendfile(s, fd);
      let got = 0;
      while (got < 1 * MiB) got += (await waitFor(h.loop.sockRecv(peer, 256 * KiB), 5)).length;
      peer.setsockopt(C.SOL_SOCKET, C.SO_LINGER, 0);
      peer.close();
      let exc: unknown = null;
      try {
        const n = await waitFor(sending, 5);
        exc = `sockSendfile resolved with ${n}`;
      } catch (e) {
        exc = e;
      }
      expect(isResetOrPipe(exc), `sockSendfile ended with ${String(exc)}`).toBe(true);
      await sleep(0.05);
      expect(await stopsWatching(h.loop, s.fileno())).toBe(true);
    });
  });

  // ------------------------------------------------------------------ T5

  it.each([
    ['true: stays open, replies later', true],
    ['false: closes after flushing the reply', false],
  ] as const)('T5: raw shutdown(SHUT_WR); eofReceived returns %s; 1 MiB reply arrives whole, no reset', async (_n, keepOpen) => {
    await h.run(async () => {
      const reply = patternBuffer(1 * MiB, 5);
      const srv: TrackedProtocol[] = [];
      let closingAfterEof: boolean | null = null;
      const server = await h.loop.createServer(
        () => {
          const p = new TrackedProtocol(h.loop, tr, 'srv');
          srv.push(p);
          p.eofResult = keepOpen;
          p.onEof = () => {
            expect(p.transport!.isClosing()).toBe(false);
            if (keepOpen) {
              // Reply from a later callback: the transport must still be open.
              h.loop.callLater(0.02, () => {
                closingAfterEof = p.transport!.isClosing();
                p.transport!.write(Buffer.from(`${p.bytes};`));
                p.transport!.write(reply);
                p.transport!.close();
              });
            } else {
              p.transport!.write(Buffer.from(`${p.bytes};`));
              p.transport!.write(reply);
              h.loop.callSoon(() => (closingAfterEof = p.transport!.isClosing()));
            }
          };
          return p;
        },
        '127.0.0.1',
        0,
      );
      const peer = await rawClient(serverPort(server));
      await h.loop.sockSendall(peer, 'request');
      peer.shutdown(C.SHUT_WR);
      const got = await recvAll(peer); // rejects on ECONNRESET
      expect(got.subarray(0, 2).toString()).toBe('7;');
      expect(got.length).toBe(2 + reply.length);
      expect(got.subarray(2).equals(reply)).toBe(true);
      await waitFor(srv[0].lostFut, 5);
      expect(closingAfterEof).toBe(!keepOpen);
      expect(srv[0].lostExc).toBeUndefined();
      expect(srv[0].lifecycle()).toEqual(['made', 'data', 'eof', 'lost']);
      await closeServer(server);
    });
  });

  it('T5: Protocol client writeEof(); server replies 1 MiB after EOF; client sees data, one EOF, clean loss', async () => {
    await h.run(async () => {
      const reply = patternBuffer(1 * MiB, 6);
      const srv: TrackedProtocol[] = [];
      const server = await h.loop.createServer(
        () => {
          const p = new TrackedProtocol(h.loop, tr, 'srv');
          srv.push(p);
          p.eofResult = true;
          p.onEof = () => {
            p.transport!.write(reply);
            p.transport!.close();
          };
          return p;
        },
        '127.0.0.1',
        0,
      );
      const [t, cli] = await waitFor(h.loop.createConnection(() => new TrackedProtocol(h.loop, tr, 'cli'), '127.0.0.1', serverPort(server)), 5);
      t.write('ask');
      t.writeEof();
      await waitFor(cli.lostFut, 10);
      expect(cli.lostExc).toBeUndefined();
      expect(cli.bytes).toBe(reply.length);
      expect(cli.data().equals(reply)).toBe(true);
      expect(cli.lifecycle()).toEqual(['made', 'data', 'eof', 'lost']);
      await waitFor(srv[0].lostFut, 5);
      expect(srv[0].lostExc).toBeUndefined();
      await closeServer(server);
    });
  });

  it('T5 (streams): writer.writeEof(); the handler reads to EOF, replies 1 MiB, closes; the client reads it all', async () => {
    await h.run(async () => {
      const reply = patternBuffer(1 * MiB, 7);
      const handlerDone = h.loop.createFuture<string>();
      const server = await startServer(
        h.calls.mustCall('clientConnected', async (r: StreamReader, w: StreamWriter) => {
          const req = await r.read(); // to EOF
          w.write(reply);
          await w.drain();
          w.close();
          await w.waitClosed();
          handlerDone.setResult(req.toString());
        }),
        '127.0.0.1',
        0,
      );
      const [r, w] = await waitFor(openConnection('127.0.0.1', serverPort(server)), 5);
      w.write('question');
      w.writeEof();
      const got = await waitFor(r.read(), 10);
      expect(got.equals(reply)).toBe(true);
      expect(r.atEof()).toBe(true);
      expect(await waitFor(handlerDone, 5)).toBe('question');
      w.close();
      await waitFor(w.waitClosed(), 5);
      await closeServer(server);
    });
  });

  // ------------------------------------------------------------------ T6

  it('T6: a raw peer closes with our data unread: the client Protocol sees ECONNRESET, never EOF, lost once', async () => {
    await h.run(async () => {
      const l = new Socket(C.AF_INET, C.SOCK_STREAM);
      h.defer(() => l.close());
      l.bind(['127.0.0.1', 0]);
      l.listen(4);
      const port = (l.getsockname() as [string, number])[1];
      const acc = h.loop.sockAccept(l);
      const [t, cli] = await waitFor(h.loop.createConnection(() => new TrackedProtocol(h.loop, tr, 'cli'), '127.0.0.1', port), 5);
      const [peer] = await waitFor(acc, 5);
      t.write('data the peer never reads');
      await sleep(0.05);
      peer.close(); // unread data: the kernel answers with RST
      const exc = await waitFor(cli.lostFut, 5);
      expect(exc).toBeInstanceOf(ConnectionResetError);
      expect((exc as OSError).code).toBe('ECONNRESET');
      expect(cli.eofs).toBe(0);
      await sleep(0.02);
      expect(cli.lost).toBe(1);
    });
  });

  it('T6: a node:net client resets with our reply unread: the server Protocol sees ECONNRESET once', async () => {
    await h.run(async () => {
      const srv: TrackedProtocol[] = [];
      const server = await h.loop.createServer(
        () => {
          const p = new TrackedProtocol(h.loop, tr, 'srv');
          srv.push(p);
          // More than node:net buffers for itself: some stays in the kernel, unread.
          p.onData = () => p.transport!.write(Buffer.alloc(4 * MiB, 1));
          return p;
        },
        '127.0.0.1',
        0,
      );
      const sock = net.connect({ host: '127.0.0.1', port: serverPort(server) });
      await new Promise<void>((res) => sock.once('connect', () => res()));
      sock.pause(); // never read the reply
      sock.write('hi');
      for (let i = 0; i < 500 && srv.length === 0; i++) await sleep(0.01);
      await waitFor(srv[0].waitBytes(2), 5);
      await sleep(0.05);
      sock.destroy(); // close(2) with unread data: RST
      const exc = await waitFor(srv[0].lostFut, 5);
      expect(exc).toBeInstanceOf(ConnectionResetError);
      expect(srv[0].eofs).toBe(0);
      await closeServer(server);
    });
  });

  it('T6 (streams): reader.read() rejects with ConnectionResetError, not an empty EOF read', async () => {
    await h.run(async () => {
      const l = new Socket(C.AF_INET, C.SOCK_STREAM);
      h.defer(() => l.close());
      l.bind(['127.0.0.1', 0]);
      l.listen(4);
      const port = (l.getsockname() as [string, number])[1];
      const acc = h.loop.sockAccept(l);
      const [r, w] = await waitFor(openConnection('127.0.0.1', port), 5);
      const [peer] = await waitFor(acc, 5);
      w.write('unread by the peer');
      await w.drain();
      await sleep(0.05);
      peer.close();
      let err: unknown = null;
      try {
        const d = await waitFor(r.read(100), 5);
        err = `read returned ${d.length} bytes`;
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ConnectionResetError);
      w.close();
      await waitFor(w.waitClosed(), 5).catch((e) => expect(e).toBeInstanceOf(ConnectionResetError));
    });
  });
});
