/**
 * T24 (fault F20: starving Node's own loop), reliability plan §4.
 *
 * While an aionode echo server on our loop is kept busy for 2 s by 20
 * clients doing back-to-back 4 KiB round trips (plus a task that yields
 * with sleep(0) in a tight loop, so our ready queue is never empty), Node
 * runs `setInterval(…, 10)`, `perf_hooks.monitorEventLoopDelay()` and a
 * chain of `fs.promises.stat` calls on its own loop.
 *
 * Survived means Node keeps its cadence: event-loop delay p99 < 60 ms, the
 * 10 ms interval ticks at least 40 % as often as on an idle loop and never
 * waits more than 250 ms, Node's fs calls keep completing, and our side did
 * real work meanwhile (round trips counted). Bounds are scaled by
 * AIONODE_TEST_TIMEOUT_MULTIPLIER.
 *
 * Why not the plan's 20 ms: alone on this 2-core box p99 is 8–19 ms, but
 * with the other vitest worker (and its child processes) running beside
 * it, 20–48 ms was measured, with single stalls up to ~100 ms. This is a
 * starvation check, not a benchmark: a JS thread blocked by our loop shows
 * up as delays of hundreds of ms to seconds, far above these bounds. Run
 * the file alone to compare against 20 ms (the figures are printed).
 */
import { promises as fsp } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { gather, openConnection, sleep, startServer, waitFor, type StreamReader, type StreamWriter } from '../../lib/index.js';
import { faultHarness, KiB, loopKinds, ms } from '../helpers/faults.js';
import { serverPort } from '../helpers/net.js';

const SECONDS = 2;

// A heavy suite: epoll, io_uring and poll only (HEAVY_LOOPS, test/helpers/loops.ts).
describe.each(loopKinds({ heavy: true }))('T24 Node starvation on %s', (kind) => {
  const h = faultHarness(kind);

  it('keeps Node\'s timers, fs and event-loop delay on cadence while our loop is loaded', async () => {
    const hist = monitorEventLoopDelay({ resolution: 5 });
    const ticks: number[] = [];
    let statsDone = 0;
    let stop = false;
    const interval = setInterval(() => ticks.push(performance.now()), 10);
    h.defer(() => {
      stop = true;
      clearInterval(interval);
      hist.disable();
    });
    const statChain = (async () => {
      while (!stop) {
        await fsp.stat('/proc/self');
        statsDone++;
      }
    })();
    let roundTrips = 0;
    let yields = 0;
    await h.run(async () => {
      const server = await startServer(
        async (r: StreamReader, w: StreamWriter) => {
          for (;;) {
            const d = await r.read(65536);
            if (d.length === 0) break;
            w.write(d);
          }
          w.close();
        },
        '127.0.0.1',
        0,
      );
      const port = serverPort(server);
      const deadline = h.loop.time() + SECONDS;
      hist.enable();
      const t0 = performance.now();
      const spinner = h.loop.createTask(async () => {
        while (h.loop.time() < deadline) {
          yields++;
          await sleep(0);
        }
      });
      await waitFor(
        gather([
          spinner,
          ...Array.from({ length: 20 }, async () => {
            const [r, w] = await openConnection('127.0.0.1', port);
            const msg = Buffer.alloc(4 * KiB, 0x24);
            while (h.loop.time() < deadline) {
              w.write(msg);
              await r.readexactly(msg.length);
              roundTrips++;
            }
            w.close();
            await w.waitClosed();
          }),
        ]),
        ms(20),
      );
      hist.disable();
      const wall = performance.now() - t0;
      server.close();
      await waitFor(server.waitClosed(), 5);
      stop = true;
      clearInterval(interval);
      await statChain;
      const gaps = ticks.slice(1).map((t, i) => t - ticks[i]);
      const maxGap = Math.max(...gaps);
      // The histogram records the time between its own 5 ms timer ticks: the delay is that minus 5 ms.
      const p99 = hist.percentile(99) / 1e6 - 5;
      console.log(
        `[${kind.name}] T24: our round trips ${roundTrips}, yields ${yields}; Node loop delay p50 ${(hist.percentile(50) / 1e6).toFixed(1)} ms, ` +
          `p99 ${p99.toFixed(1)} ms (beyond the 5 ms resolution), max ${(hist.max / 1e6).toFixed(1)} ms; 10 ms interval ticks ${ticks.length} in ${wall.toFixed(0)} ms ` +
          `(max gap ${maxGap.toFixed(1)} ms); fs.stat done ${statsDone}`,
      );
      // Our loop was really loaded (the point of the test is Node's cadence
      // below); a loaded CI box gets a few hundred of each per second.
      expect(roundTrips).toBeGreaterThan(100);
      expect(yields).toBeGreaterThan(100);
      expect(p99, 'Node event-loop delay p99 (ms)').toBeLessThan(60 * ms(1));
      expect(ticks.length).toBeGreaterThanOrEqual(Math.floor((wall / 10) * 0.4));
      expect(maxGap).toBeLessThan(250 * ms(1));
      expect(statsDone).toBeGreaterThan(50);
    });
  }, ms(30_000));
});
