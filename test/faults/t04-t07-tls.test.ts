/**
 * T4, T6, T7 over TLS (faults F4, F5, F6 through lib/sslproto.ts), the same
 * faults as t04-t06-reset-halfclose.test.ts and t07-backpressure.test.ts
 * with an aionode TLS server and client (a throw-away self-signed
 * certificate made with the openssl CLI; skipped with the reason when it is
 * missing). T5 (half-close) has no TLS variant: a TLS transport cannot
 * write EOF (asyncio's canWriteEof() is false).
 *
 * T4 — the TLS client RSTs (SO_LINGER 0 + abort) while the TLS server
 *   writes 1 MiB chunks. Survived: no SIGPIPE, the server protocol gets
 *   connectionLost(ECONNRESET | EPIPE) exactly once, later writes are
 *   dropped without throwing.
 * T6 — the server stops reading and aborts with the client's data unread
 *   (RST). Survived: the TLS client sees ECONNRESET, not EOF, once.
 * T7 — the server stops reading; the TLS client writes 256 KiB chunks
 *   whenever it is not paused. Survived: it ends up paused for good after
 *   less than 12 MiB (kernel buffers plus the server's bounded TLS read
 *   buffer), the TLS transport's write buffer stays <= high-water + one
 *   chunk, and after the server reads again all 16 MiB arrive.
 * Every test: exact callback counts, loop closed, fds at baseline.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { BrokenPipeError, ConnectionResetError, OSError, logger, sleep, waitFor, type Future, type Transport } from '../../lib/index.js';
import type { Server } from '../../lib/base-events.js';
import type { Socket } from '../../lib/socket.js';
import { constants } from '../../lib/socket.js';
import { faultHarness, KiB, loopKinds, MiB } from '../helpers/faults.js';
import { ConnTracker, TrackedProtocol, serverPort } from '../helpers/net.js';

const C = constants();

function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const OPENSSL = hasOpenssl();
const isResetOrPipe = (e: unknown): boolean =>
  (e instanceof ConnectionResetError || e instanceof BrokenPipeError) && ['ECONNRESET', 'EPIPE'].includes((e as OSError).code!);

if (!OPENSSL) describe('T4/T6/T7 over TLS', () => {
  it.skip('needs the openssl CLI on PATH to make a test certificate', () => {});
});

describe.runIf(OPENSSL)('T4/T6/T7 over TLS', () => {
  let dir: string;
  let key: Buffer;
  let cert: Buffer;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'aionode-t-tls-'));
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'),
        '-subj', '/CN=localhost', '-days', '1', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'],
      { stdio: 'ignore' },
    );
    key = readFileSync(path.join(dir, 'key.pem'));
    cert = readFileSync(path.join(dir, 'cert.pem'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  describe.each(loopKinds())('on %s', (kind) => {
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
      expect(tr.violations().join('; ')).toBe('');
    });

    /** A TLS server whose protocols are set up by `setup`; resolves the first one made. */
    async function tlsServer(
      setup: (p: TrackedProtocol) => void = () => undefined,
      tracked = true,
    ): Promise<{ server: Server; first: Future<TrackedProtocol> }> {
      const first = h.loop.createFuture<TrackedProtocol>();
      const server = await h.loop.createServer(
        () => {
          const p = new TrackedProtocol(h.loop, tracked ? tr : null, 'srv');
          p.keep = false;
          setup(p);
          const made = p.connectionMade.bind(p);
          p.connectionMade = (t: Transport) => {
            made(t);
            if (!first.done()) first.setResult(p);
          };
          return p;
        },
        '127.0.0.1',
        0,
        { ssl: { key, cert } },
      );
      return { server, first };
    }

    async function tlsClient(port: number): Promise<TrackedProtocol> {
      const [, p] = await waitFor(h.loop.createConnection(() => new TrackedProtocol(h.loop, tr, 'cli'), '127.0.0.1', port, { ssl: { ca: cert } }), 10);
      p.keep = false;
      return p;
    }

    async function closeServer(server: Server): Promise<void> {
      server.close();
      server.closeClients();
      await waitFor(server.waitClosed(), 10);
    }

    /** The TCP socket under a TLS transport. */
    const rawSocket = (t: Transport): Socket => t.getExtraInfo('socket') as Socket;

    it('T4: the TLS peer RSTs while the server writes 1 MiB chunks: connectionLost(ECONNRESET|EPIPE) once, no SIGPIPE', async () => {
      // Writes after the loss log "SSL connection is closed" from the 5th on, as asyncio does.
      const warn = vi.spyOn(logger, 'warning').mockImplementation(() => {});
      h.defer(() => warn.mockRestore());
      await h.run(async () => {
        const chunk = Buffer.alloc(1 * MiB, 0x54);
        let writesAfterLoss = 0;
        const { server, first } = await tlsServer((p) => {
          const pump = (): void => {
            if (p.lost > 0) {
              if (writesAfterLoss++ < 20) {
                expect(() => p.transport!.write(chunk)).not.toThrow();
                h.loop.callSoon(pump);
              }
              return;
            }
            if (!p.paused) p.transport!.write(chunk);
            h.loop.callLater(0.002, pump);
          };
          p.onData = () => undefined;
          const made = p.connectionMade.bind(p);
          p.connectionMade = (t: Transport) => {
            made(t);
            h.loop.callSoon(pump);
          };
          // Not in the tracker: its callback order after the loss is the bug tested below.
        }, false);
        const cli = await tlsClient(serverPort(server));
        const srv = await waitFor(first, 10);
        await waitFor(cli.waitBytes(3 * MiB), 10);
        rawSocket(cli.transport!).setsockopt(C.SOL_SOCKET, C.SO_LINGER, 0);
        cli.transport!.abort();
        const exc = await waitFor(srv.lostFut, 10);
        expect(isResetOrPipe(exc), `server connectionLost got ${String(exc)}`).toBe(true);
        for (let i = 0; i < 400 && writesAfterLoss <= 20; i++) await sleep(0.005);
        await sleep(0.05);
        expect(writesAfterLoss).toBeGreaterThan(20);
        expect(warn).toHaveBeenCalledWith('SSL connection is closed');
        expect(srv.made).toBe(1);
        expect(srv.lost).toBe(1);
        expect(srv.eofs).toBe(0);
        expect(await waitFor(cli.lostFut, 5)).toBeUndefined();
        await closeServer(server);
      });
    });

    it('T4: no protocol callback after connectionLost when the TLS peer resets while the server is paused (10 tries)', async () => {
      const warn = vi.spyOn(logger, 'warning').mockImplementation(() => {});
      h.defer(() => warn.mockRestore());
      await h.run(async () => {
        const bad: string[] = [];
        for (let i = 0; i < 10; i++) {
          const chunk = Buffer.alloc(1 * MiB, 0x55);
          const { server, first } = await tlsServer((p) => {
            const pump = (): void => {
              if (p.lost > 0) return;
              if (!p.paused) p.transport!.write(chunk);
              h.loop.callLater(0.001, pump);
            };
            p.onData = () => undefined;
            const made = p.connectionMade.bind(p);
            p.connectionMade = (t: Transport) => {
              made(t);
              h.loop.callSoon(pump);
            };
          }, false);
          const cli = await tlsClient(serverPort(server));
          const srv = await waitFor(first, 10);
          await waitFor(cli.waitBytes(3 * MiB), 10);
          // The client stops reading: the server fills up and pauses; then the client resets.
          cli.transport!.pauseReading();
          await sleep(0.05);
          rawSocket(cli.transport!).setsockopt(C.SOL_SOCKET, C.SO_LINGER, 0);
          cli.transport!.abort();
          await waitFor(srv.lostFut, 10);
          await sleep(0.02);
          if (srv.order.at(-1) !== 'lost' || srv.lost !== 1) bad.push(`try ${i}: ${srv.order.slice(-4).join(',')}`);
          await waitFor(cli.lostFut, 5);
          await closeServer(server);
        }
        expect(bad).toEqual([]);
      });
    });

    it('T6: the TLS server aborts with the client\'s data unread: the client sees ECONNRESET, not EOF, once', async () => {
      await h.run(async () => {
        const { server, first } = await tlsServer();
        const cli = await tlsClient(serverPort(server));
        const srv = await waitFor(first, 10);
        srv.transport!.pauseReading();
        cli.transport!.write(Buffer.alloc(256 * KiB, 1));
        await sleep(0.05);
        srv.transport!.abort(); // unread bytes in its TCP buffer: RST
        const exc = await waitFor(cli.lostFut, 10);
        expect(exc).toBeInstanceOf(ConnectionResetError);
        expect(cli.eofs).toBe(0);
        await sleep(0.02);
        expect(cli.lost).toBe(1);
        await waitFor(srv.lostFut, 5);
        await closeServer(server);
      });
    });

    it('T7: the server stops reading; the TLS client respecting pause keeps its buffer <= high-water + a chunk; 16 MiB arrive', async () => {
      await h.run(async () => {
        const TOTAL = 16 * MiB;
        const CHUNK = 256 * KiB;
        const { server, first } = await tlsServer();
        const cli = await tlsClient(serverPort(server));
        const srv = await waitFor(first, 10);
        srv.transport!.pauseReading();
        const t = cli.transport!;
        const high = t.getWriteBufferLimits()[1];
        const chunk = Buffer.alloc(CHUNK, 0x37);
        let sent = 0;
        let maxBuf = 0;
        // Phase 1: the server reads nothing. Write whenever not paused; stop once the
        // client has stayed paused for 200 ms. The TLS server may absorb some data
        // into its read buffers first (asyncio's SSL read high-water), but not without bound.
        const waitResume = async (ms: number): Promise<boolean> => {
          if (!cli.paused) return true;
          const res = h.loop.createFuture<void>();
          cli.onResume = () => void (res.done() || res.setResult(undefined));
          try {
            await waitFor(res, ms / 1000);
            return true;
          } catch {
            return false;
          }
        };
        const phase1End = h.loop.time() + 5;
        while (sent < TOTAL && h.loop.time() < phase1End) {
          if (cli.paused) {
            if (!(await waitResume(200))) break;
            continue;
          }
          t.write(chunk);
          sent += CHUNK;
          maxBuf = Math.max(maxBuf, t.getWriteBufferSize());
          await sleep(0);
        }
        const stuckAt = sent;
        console.log(`[${kind.name}] T7 TLS: with the server not reading, the client got ${stuckAt} bytes out before staying paused (pauses ${cli.pauses})`);
        expect(cli.paused, `never stayed paused; ${sent} bytes written to a peer that reads nothing`).toBe(true);
        expect(stuckAt, 'bytes accepted while the peer reads nothing').toBeLessThan(12 * MiB);
        expect(maxBuf).toBeLessThanOrEqual(high + CHUNK);
        srv.transport!.resumeReading();
        while (sent < TOTAL) {
          if (cli.paused) {
            const res = h.loop.createFuture<void>();
            cli.onResume = () => void (res.done() || res.setResult(undefined));
            if (cli.paused) await waitFor(res, 10);
            continue;
          }
          t.write(chunk);
          sent += CHUNK;
          maxBuf = Math.max(maxBuf, t.getWriteBufferSize());
          await sleep(0);
        }
        await waitFor(srv.waitBytes(TOTAL), 20);
        console.log(`[${kind.name}] T7 TLS: max write buffer ${maxBuf} B (high ${high}), pauses ${cli.pauses}`);
        expect(cli.resumes).toBe(cli.pauses);
        expect(srv.bytes).toBe(TOTAL);
        expect(maxBuf).toBeLessThanOrEqual(high + CHUNK);
        t.close();
        await waitFor(cli.lostFut, 10);
        await closeServer(server);
      });
    });
  });
});
