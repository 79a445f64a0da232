/**
 * T9 (fault F7: unbounded line buffering), reliability plan §4.
 *
 * A client sends one 1 MiB line (no separator for 1 MiB, then "\n") and a
 * short "next line\n" to a streams server whose StreamReader has the
 * default 64 KiB limit.
 *
 * Survived means:
 *  - `readuntil('\n')` throws LimitOverrunError (consumed > limit), and at
 *    that moment the reader holds at most limit + one received chunk;
 *  - while the long line streams in, the reader never holds more than
 *    2 × limit + one chunk (it pauses the transport at 2 × limit, as asyncio);
 *  - `readline()` throws RangeError (asyncio's ValueError) whose cause is
 *    the LimitOverrunError, drops the oversized data, and a later
 *    readline() still returns "next line\n" intact; no line it returns is
 *    longer than the limit;
 *  - the handler ends normally; no exception-handler call; fds at baseline.
 * Plus (the plan asks for an example test besides the fuzz): a 4-byte
 * separator split across two TCP reads at every cut is still found.
 */
import { describe, expect, it } from 'vitest';
import { LimitOverrunError, openConnection, sleep, startServer, waitFor, type StreamReader, type StreamWriter } from '../../lib/index.js';
import { faultHarness, KiB, loopKinds, MiB } from '../helpers/faults.js';
import { serverPort } from '../helpers/net.js';

const LIMIT = 64 * KiB;
const LINE = 1 * MiB;

interface Seen {
  maxChunk: number;
  maxBuffer: number;
}

/** Records the largest chunk fed to `r` and the largest buffer it reached. */
function watch(r: StreamReader): Seen {
  const seen: Seen = { maxChunk: 0, maxBuffer: 0 };
  const feed = r.feedData.bind(r);
  r.feedData = (d: Uint8Array) => {
    seen.maxChunk = Math.max(seen.maxChunk, d.length);
    feed(d);
    seen.maxBuffer = Math.max(seen.maxBuffer, r._buffer.length);
  };
  return seen;
}

describe.each(loopKinds())('T9 1 MiB line against a 64 KiB limit on %s', (kind) => {
  const h = faultHarness(kind);

  async function serveOnce(handler: (r: StreamReader, w: StreamWriter) => Promise<unknown>): Promise<unknown> {
    const result = h.loop.createFuture<unknown>();
    const server = await startServer(
      h.calls.mustCall('clientConnected', async (r: StreamReader, w: StreamWriter) => {
        try {
          result.setResult(await handler(r, w));
        } catch (e) {
          result.setException(e);
        } finally {
          w.close();
        }
      }),
      '127.0.0.1',
      0,
    );
    const [r, w] = await waitFor(openConnection('127.0.0.1', serverPort(server)), 5);
    w.write(Buffer.alloc(LINE, 0x61));
    w.write('\nnext line\n');
    try {
      return await waitFor(result, 10);
    } finally {
      w.close();
      await waitFor(w.waitClosed(), 5).catch(() => undefined);
      await waitFor(r.read(), 5).catch(() => undefined);
      server.close();
      await waitFor(server.waitClosed(), 5);
    }
  }

  it('readuntil throws LimitOverrunError with the buffer at most limit + one chunk', async () => {
    await h.run(async () => {
      const out = (await serveOnce(async (r) => {
        const seen = watch(r);
        try {
          await r.readuntil('\n');
          return { err: null, seen };
        } catch (e) {
          return { err: e, atError: r._buffer.length, seen };
        }
      })) as { err: unknown; atError: number; seen: Seen };
      console.log(`[${kind.name}] T9 readuntil: buffer at error ${out.atError} B, max buffer ${out.seen.maxBuffer} B, max chunk ${out.seen.maxChunk} B`);
      expect(out.err).toBeInstanceOf(LimitOverrunError);
      expect((out.err as LimitOverrunError).consumed).toBeGreaterThan(LIMIT);
      expect(out.seen.maxChunk).toBeGreaterThan(0);
      expect(out.atError).toBeLessThanOrEqual(LIMIT + out.seen.maxChunk);
      expect(out.seen.maxBuffer).toBeLessThanOrEqual(2 * LIMIT + out.seen.maxChunk);
    });
  });

  it('readline throws RangeError (ValueError) caused by LimitOverrunError, then reads the next line intact', async () => {
    await h.run(async () => {
      const out = (await serveOnce(async (r) => {
        const seen = watch(r);
        let errors = 0;
        let first: unknown = null;
        const lines: string[] = [];
        for (let i = 0; i < 200; i++) {
          try {
            const line = await r.readline();
            expect(line.length).toBeLessThanOrEqual(LIMIT + 1);
            lines.push(line.length > 32 ? `<${line.length} bytes>` : line.toString());
            if (line.toString() === 'next line\n') break;
          } catch (e) {
            first ??= e;
            errors++;
            expect(r._buffer.length).toBeLessThanOrEqual(LIMIT + seen.maxChunk);
          }
        }
        return { first, errors, lines, seen };
      })) as { first: unknown; errors: number; lines: string[]; seen: Seen };
      expect(out.first).toBeInstanceOf(RangeError);
      expect((out.first as Error).cause).toBeInstanceOf(LimitOverrunError);
      expect(out.errors).toBeGreaterThan(0);
      expect(out.lines.at(-1)).toBe('next line\n');
      expect(out.seen.maxBuffer).toBeLessThanOrEqual(2 * LIMIT + out.seen.maxChunk);
    });
  });

  it.each([1, 2, 3])('readuntil finds a 4-byte separator split across TCP chunks at byte %i', async (cut) => {
    await h.run(async () => {
      const sep = '\r\n\r\n';
      const got = h.loop.createFuture<[string, string]>();
      const server = await startServer(
        h.calls.mustCall('clientConnected', async (r: StreamReader, w: StreamWriter) => {
          try {
            const head = (await r.readuntil(sep)).toString();
            const rest = (await r.read()).toString();
            got.setResult([head, rest]);
          } catch (e) {
            got.setException(e);
          } finally {
            w.close();
          }
        }),
        '127.0.0.1',
        0,
      );
      const [r, w] = await waitFor(openConnection('127.0.0.1', serverPort(server)), 5);
      // Separate writes with pauses between them: separate reads on the server.
      w.write('GET / HTTP/1.0' + sep.slice(0, cut));
      await w.drain();
      await sleep(0.02);
      w.write(sep.slice(cut));
      await sleep(0.02);
      w.write('body');
      w.writeEof();
      expect(await waitFor(got, 5)).toEqual(['GET / HTTP/1.0' + sep, 'body']);
      await waitFor(r.read(), 5);
      w.close();
      await waitFor(w.waitClosed(), 5).catch(() => undefined);
      server.close();
      await waitFor(server.waitClosed(), 5);
    });
  });
});
