/**
 * T8 (fault F7: slowloris, slow readers), reliability plan §4, CI size:
 * 100 connections sending 1 byte per second (no newline ever) plus 5
 * normal clients, against a streams server whose handler reads one line
 * under a per-connection deadline of 1.5 s — half the connections with
 * `waitFor(reader.readline(), 1.5)`, half inside `asyncWith(timeout(1.5), ...)`.
 * The clients are node:net sockets on Node's own loop.
 *
 * Survived means:
 *  - every slow connection is closed by the server within deadline + 1 s
 *    of its connect (measured at the client), and its handler ended with
 *    TimeoutError (counted exactly: 100);
 *  - every normal client gets its line echoed, each in well under the
 *    deadline, while the slow ones are pending;
 *  - no exception-handler call; loop closed; fds back at baseline.
 * Timing bounds are scaled by AIONODE_TEST_TIMEOUT_MULTIPLIER.
 */
import * as net from 'node:net';
import { describe, expect, it } from 'vitest';
import { asyncWith, startServer, timeout, TimeoutError, waitFor, sleep, type StreamReader, type StreamWriter } from '../../lib/index.js';
import { faultHarness, loopKinds, ms } from '../helpers/faults.js';
import { serverPort } from '../helpers/net.js';

const SLOW = 100;
const NORMAL = 5;
const DEADLINE = 1.5; // seconds: long enough for the slow clients to trickle a byte more

// A heavy suite: epoll, io_uring and poll only (HEAVY_LOOPS, test/helpers/loops.ts).
describe.each(loopKinds({ heavy: true }))('T8 slowloris on %s', (kind) => {
  const h = faultHarness(kind);

  it(`closes ${SLOW} 1-byte/s clients by deadline + 1 s and serves ${NORMAL} normal clients meanwhile`, async () => {
    const sockets: net.Socket[] = [];
    const timers: NodeJS.Timeout[] = [];
    h.defer(() => {
      timers.forEach(clearInterval);
      sockets.forEach((s) => s.destroy());
    });
    await h.run(async () => {
      let timedOut = 0;
      let served = 0;
      let n = 0;
      const server = await startServer(
        async (r: StreamReader, w: StreamWriter) => {
          const mine = n++;
          try {
            const line =
              mine % 2 === 0
                ? await waitFor(r.readline(), DEADLINE)
                : ((await asyncWith(timeout(DEADLINE), async () => r.readline())) as Buffer);
            w.write(line);
            await w.drain();
            served++;
          } catch (e) {
            if (!(e instanceof TimeoutError)) throw e;
            timedOut++;
          } finally {
            w.close();
          }
        },
        '127.0.0.1',
        0,
      );
      const port = serverPort(server);

      // Slow clients: connect all at once, one byte per second, never a newline.
      const slowClosedAfter: Promise<number>[] = [];
      for (let i = 0; i < SLOW; i++) {
        slowClosedAfter.push(
          new Promise((resolve) => {
            const s = net.connect({ host: '127.0.0.1', port });
            sockets.push(s);
            let t0 = 0;
            s.on('connect', () => {
              t0 = performance.now();
              s.write('G');
              timers.push(setInterval(() => s.writable && s.write('E'), 1000));
            });
            s.on('data', () => undefined);
            s.on('error', () => undefined);
            s.on('close', () => resolve((performance.now() - t0) / 1000));
          }),
        );
      }
      // Normal clients, spread over the slow ones' deadline window.
      const normalLatency: Promise<number>[] = [];
      for (let i = 0; i < NORMAL; i++) {
        normalLatency.push(
          new Promise((resolve, reject) => {
            setTimeout(() => {
              const s = net.connect({ host: '127.0.0.1', port });
              sockets.push(s);
              const t0 = performance.now();
              let got = '';
              s.on('connect', () => s.write(`hello ${i}\n`));
              s.on('data', (d) => {
                got += d.toString();
                if (got === `hello ${i}\n`) resolve((performance.now() - t0) / 1000);
              });
              s.on('error', reject);
              s.on('close', () => reject(new Error(`normal client ${i} closed with ${JSON.stringify(got)}`)));
            }, 150 * i);
          }),
        );
      }
      const lat = await waitFor(Promise.all(normalLatency) as never, ms(10)) as number[];
      const closed = await waitFor(Promise.all(slowClosedAfter) as never, ms(10)) as number[];
      const worst = Math.max(...closed);
      console.log(
        `[${kind.name}] T8: slow closed after ${Math.min(...closed).toFixed(2)}..${worst.toFixed(2)} s; ` +
          `normal latency max ${(Math.max(...lat) * 1000).toFixed(1)} ms`,
      );
      expect(closed.length).toBe(SLOW);
      expect(worst, 'slow clients closed by deadline + 1 s').toBeLessThanOrEqual((DEADLINE + 1) * Math.max(1, ms(1)));
      expect(Math.min(...closed)).toBeGreaterThanOrEqual(DEADLINE * 0.9);
      expect(Math.max(...lat), 'normal clients served well within the deadline').toBeLessThan(DEADLINE / 2 * Math.max(1, ms(1)));
      await sleep(0.05);
      expect(timedOut).toBe(SLOW);
      expect(served).toBe(NORMAL);
      server.close();
      await waitFor(server.waitClosed(), 5);
    });
  }, ms(30_000));
});
