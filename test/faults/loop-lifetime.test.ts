/**
 * Fault suite, loop lifetime (issue 8 item 10): a loop dropped without
 * close() is garbage, and the native finalizer closes its fds (selector,
 * wake-up, timer); a running loop is never collected, even when nothing but
 * its own running state refers to it. Needs --expose-gc (vitest.config.mts).
 * Also the loop's side of item 7: a worker that ends inside a batch.
 */
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { binding } from '../../lib/native.js';
import { availableBackends } from '../helpers/backends.js';
import { LOOPS as LOOP_NAMES, newLoop, selectorOnly, useLoop } from '../helpers/loops.js';
import { fdCount, runBriefly } from '../helpers/loop.js';

const LOOPS = 50;

/** Full GCs with turns of Node's loop between them: finalizers run deferred. */
async function collect(until: () => boolean, rounds = 20): Promise<void> {
  for (let i = 0; i < rounds && !until(); i++) {
    global.gc!();
    await sleep(10);
  }
}

describe.each(LOOP_NAMES)('loop lifetime on %s', (backend) => {
  useLoop(backend);
  it('item 10: 50 loops run briefly and dropped without close() give their fds back after GC', async () => {
    const before = fdCount();
    let peak = 0;
    await (async () => {
      const loops = [];
      for (let i = 0; i < LOOPS; i++) {
        const loop = newLoop(backend);
        loop.callLater(0.001, () => {});
        await runBriefly(loop);
        loops.push(loop);
      }
      peak = fdCount();
    })();
    // Each loop holds at least its selector (or wake-up) fd and a timer fd.
    expect(peak - before).toBeGreaterThanOrEqual(2 * LOOPS);
    await collect(() => fdCount() <= before + 2);
    expect(fdCount()).toBeLessThanOrEqual(before + 2);
  });

  it('item 10: a dropped loop that was never run is collected too', async () => {
    const before = fdCount();
    (() => {
      for (let i = 0; i < LOOPS; i++) newLoop(backend).callLater(10, () => {});
    })();
    await collect(() => fdCount() <= before + 2);
    expect(fdCount()).toBeLessThanOrEqual(before + 2);
  });

  // The public loop is also held by lib's running-loop slot while it runs;
  // this checks the whole promise end to end.
  it('item 10: a running loop kept only by its running state completes', async () => {
    let ran = false;
    const done = (() => {
      const loop = newLoop(backend);
      loop.callLater(0.05, () => {
        ran = true;
        loop.stop();
      });
      return loop.runForever();
    })();
    for (let i = 0; i < 3; i++) {
      global.gc!();
      await sleep(5);
    }
    await Promise.race([done, sleep(5000)]);
    expect(ran).toBe(true);
  });

  // The native half alone: nothing refers to the NativeLoop but its own
  // batch callback, so only the native side's strong hold while it runs
  // keeps it from being collected (and its core closed) before its timer.
  selectorOnly(backend, 'drives a NativeLoop over a NativeSelector directly')('item 10: a started NativeLoop nobody references still delivers its timer, then is collected', async () => {
    const before = fdCount();
    const b = binding();
    let delivered = false;
    (() => {
      const events = new Int32Array(64);
      const nl = new b.NativeLoop(new b.NativeSelector(backend), events, (n: number) => {
        if (n > 0 && events[0] === -1) {
          delivered = true;
          nl.stop();
        }
        return 0;
      });
      nl.timerIn(0, 0.2);
      nl.start(false);
    })();
    for (let i = 0; i < 5; i++) {
      global.gc!();
      await sleep(5);
    }
    const deadline = Date.now() + 5000;
    while (!delivered && Date.now() < deadline) await sleep(10);
    expect(delivered).toBe(true);
    // Stopped and dropped: now it goes, and its fds with it.
    await collect(() => fdCount() <= before);
    expect(fdCount()).toBeLessThanOrEqual(before);
  });
});

const nativeJs = path.resolve(__dirname, '..', '..', 'dist', 'lib', 'native.js');

// Item 7 (loop side): the batch callback closes its loop and then the
// worker exits (process.exit) inside the same batch. The call into JS fails
// with no exception to report, and the loop must just stop calling JS: no
// C++ exception out of the uv callback, no touching the closed core (UBSan
// caught a null LoopCore here), the main thread unharmed.
// Selector-only: it drives a NativeLoop over a NativeSelector directly.
describe.each(availableBackends())('worker ending inside a batch on %s', (backend) => {
  it('item 7: close() then process.exit() inside a batch ends only the worker', async () => {
    const before = fdCount();
    const code = `
      const { binding } = require(${JSON.stringify(nativeJs)});
      const b = binding();
      const events = new Int32Array(64);
      let nl;
      const onBatch = () => { nl.close(); process.exit(5); };
      nl = new b.NativeLoop(new b.NativeSelector(${JSON.stringify(backend)}), events, onBatch);
      nl.timerIn(0, 0.01);
      nl.start(false);
    `;
    const exits = await Promise.all(
      Array.from({ length: 4 }, () => {
        const w = new Worker(code, { eval: true });
        return new Promise<number>((resolve, reject) => {
          w.once('error', reject);
          w.once('exit', resolve);
        });
      }),
    );
    expect(exits).toEqual([5, 5, 5, 5]);
    for (let i = 0; i < 50 && fdCount() > before; i++) await sleep(20);
    expect(fdCount()).toBe(before);
  });
});
