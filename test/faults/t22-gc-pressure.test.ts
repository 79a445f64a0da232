/**
 * T22 (fault F18: use-after-free under GC and compaction), reliability
 * plan §4, CI size.
 *
 * An aionode streams echo server and 10 clients on one loop do round trips
 * with random-size payloads (1 B – 64 KiB) while `global.gc()` runs every
 * 1 ms from a Node setInterval, and every round trip drops a fresh task
 * (garbage holding loop objects). Once in this process (1.5 s), once in a
 * child run with `--stress-compaction` (every GC also compacts, so any raw
 * pointer into a moved JS object would be caught as corrupted data or a
 * crash) — test/fixtures/faults/t22-gc-echo.mjs.
 *
 * Survived means: no crash (the child exits 0 without a signal), every
 * echo comes back byte-identical, a non-trivial number of round trips
 * completed, and no exception-handler call.
 */
import { describe, expect, it } from 'vitest';
import { gather, openConnection, sleep, startServer, waitFor, type StreamReader, type StreamWriter } from '../../lib/index.js';
import { faultHarness, fixture, lcg, loopKinds, ms, runChild } from '../helpers/faults.js';
import { serverPort } from '../helpers/net.js';

// A heavy suite: epoll, io_uring and poll only (HEAVY_LOOPS, test/helpers/loops.ts).
describe.each(loopKinds({ heavy: true }))('T22 echo under GC pressure on %s', (kind) => {
  const h = faultHarness(kind);

  it('echoes correctly with gc() every 1 ms and dropped tasks (in process)', async () => {
    const gc = (globalThis as { gc?: () => void }).gc!;
    expect(typeof gc).toBe('function');
    let gcs = 0;
    const timer = setInterval(() => {
      gc();
      gcs++;
    }, 1);
    h.defer(() => clearInterval(timer));
    const rand = lcg(0x22);
    let roundTrips = 0;
    let bad = 0;
    await h.run(async () => {
      const server = await startServer(
        async (r: StreamReader, w: StreamWriter) => {
          for (;;) {
            const d = await r.read(65536);
            if (d.length === 0) break;
            w.write(d);
            await w.drain();
          }
          w.close();
        },
        '127.0.0.1',
        0,
      );
      const port = serverPort(server);
      const deadline = h.loop.time() + 1.5;
      await waitFor(
        gather(
          Array.from({ length: 10 }, async (_, c) => {
            const [r, w] = await openConnection('127.0.0.1', port);
            // A floor of round trips, not only a time: on a loaded machine
            // 1.5 s under gc() every 1 ms may give too few to mean anything.
            while (h.loop.time() < deadline || (roundTrips <= 60 && h.loop.time() < deadline + 10)) {
              const n = 1 + Math.floor(rand() * 65536);
              const msg = Buffer.alloc(n, (c * 31 + roundTrips) & 0xff);
              msg.writeUInt32LE(roundTrips, 0 < n - 4 ? n - 4 : 0);
              w.write(msg);
              h.loop.createTask(sleep(0.0001)); // dropped on purpose
              const back = await waitFor(r.readexactly(n), 5);
              if (!back.equals(msg)) bad++;
              roundTrips++;
            }
            w.close();
            await w.waitClosed();
          }),
        ),
        ms(20),
      );
      server.close();
      await waitFor(server.waitClosed(), 5);
      await sleep(0.01); // let the dropped sleeps finish
    });
    clearInterval(timer);
    console.log(`[${kind.name}] T22: ${roundTrips} round trips, ${gcs} GCs, ${bad} bad`);
    expect(bad).toBe(0);
    expect(roundTrips).toBeGreaterThan(50);
    expect(gcs).toBeGreaterThan(20);
  });

  it('echoes correctly in a child with --stress-compaction and gc() every 1 ms', async () => {
    const r = await runChild(process.execPath, ['--expose-gc', '--stress-compaction', fixture('t22-gc-echo.mjs'), kind.name, '1'], ms(30_000));
    expect(r.timedOut).toBe(false);
    expect({ code: r.code, signal: r.signal }, r.stderr.slice(-3000)).toEqual({ code: 0, signal: null });
    const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    console.log(`[${kind.name}] T22 --stress-compaction: ${out.roundTrips} round trips, ${out.bad} bad`);
    expect(out.errors).toEqual([]);
    expect(out.bad).toBe(0);
    expect(out.roundTrips).toBeGreaterThan(20);
  }, ms(40_000));
});
