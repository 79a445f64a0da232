/**
 * Fault suite, timers: zero and past deadlines never stall the timer
 * (issue 8 item 4), the documented result of odd delays (reliability.md
 * T12), and memory coming back after a flood of cancelled timers (item 13,
 * T13). Every loop of test/helpers/loops.ts; on the selector loops both
 * native timer sources: the timerfd and the uv_timer_t fallback (forced
 * with AIONODE_TIMER_SOURCE=uv_timer, the path platforms without timerfd
 * take). A proactor loop runs the same cases on its own timer source.
 *
 * Bounded: a Node timer stops any run that a stalled native timer would
 * leave running.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { binding, type NativeLoopStats } from '../../lib/native.js';
import { isSelectorLoop, LOOPS, newLoop, selectorOnly, useLoop, type TestLoop } from '../helpers/loops.js';
import { fdCount, runBriefly } from '../helpers/loop.js';

type Source = 'timerfd' | 'uv_timer';

// Native timer storage counters (loop_wrap.cc Stats); lib/native.ts's
// NativeLoopStats does not list them yet.
type TimerStats = NativeLoopStats & { timerHeapBytes: number; timerIndexBytes: number };
const bytes = (s: NativeLoopStats): TimerStats => s as TimerStats;
const sources: Source[] = ['timerfd', 'uv_timer'];

/**
 * The timer sources a loop runs these cases with, as [label, source]: both
 * on a selector loop; on a proactor, null (the source that loop picks;
 * forcing one is a selector-loop switch).
 */
const sourcesFor = (backend: string): [string, Source | null][] =>
  isSelectorLoop(backend) ? sources.map((s) => [s, s]) : [["the loop's own", null]];

/** A loop on `backend` whose native timers use `source` (null: the loop's own choice). */
function loopWith(backend: string, source: Source | null): TestLoop {
  if (source === null) return newLoop(backend);
  const prev = process.env.AIONODE_TIMER_SOURCE;
  if (source === 'uv_timer') process.env.AIONODE_TIMER_SOURCE = 'uv_timer';
  else delete process.env.AIONODE_TIMER_SOURCE;
  try {
    return newLoop(backend);
  } finally {
    if (prev === undefined) delete process.env.AIONODE_TIMER_SOURCE;
    else process.env.AIONODE_TIMER_SOURCE = prev;
  }
}

/**
 * Runs the loop until it stops itself or `limit` s pass (a Node timer stops
 * it then). Returns whether that guard had to step in.
 */
async function runAtMost(loop: TestLoop, limit: number): Promise<boolean> {
  let guarded = false;
  const guard = setTimeout(() => {
    guarded = true;
    loop.stop();
  }, limit * 1000);
  try {
    await loop.runForever();
  } finally {
    clearTimeout(guard);
  }
  return guarded;
}

const noop = (): void => {};

// Every way to ask for "a deadline at or before now".
const zeroDeadlines: [string, (loop: TestLoop, cb: () => void) => void][] = [
  ['callAt(0)', (l, cb) => l.callAt(0, cb)],
  ['callAt(-1)', (l, cb) => l.callAt(-1, cb)],
  ['callAt(-Infinity)', (l, cb) => l.callAt(-Infinity, cb)],
  ['callAt(time() - 1)', (l, cb) => l.callAt(l.time() - 1, cb)],
  ['callLater(-1)', (l, cb) => l.callLater(-1, cb)],
  ['callLater(0)', (l, cb) => l.callLater(0, cb)],
];

describe.each(LOOPS)('timers on %s', (backend) => {
  useLoop(backend);
  describe.each(sourcesFor(backend))('with %s timers', (_label, source) => {
    let loop: TestLoop;
    let fdsBefore: number;

    const open = (): TestLoop => {
      fdsBefore = fdCount();
      loop = loopWith(backend, source);
      if (source !== null) expect(loop.nativeStats().timerSource).toBe(source);
      return loop;
    };

    afterEach(() => {
      if (loop.isRunning()) loop.stop();
      loop.close();
      expect(fdCount()).toBe(fdsBefore);
    });

    // Item 4: a zero it_value disarmed the timerfd and the cached deadline
    // kept every later timer from being armed.
    it.each(zeroDeadlines)('item 4: after %s, a 50 ms timer still fires within 2 s', async (_name, schedule) => {
      open();
      let zeroRan = false;
      schedule(loop, () => {
        zeroRan = true;
      });
      const t0 = loop.time();
      let firedAt: number | null = null;
      const h = loop.callLater(0.05, () => {
        firedAt = loop.time();
        loop.stop();
      });
      const guarded = await runAtMost(loop, 2);
      expect(zeroRan).toBe(true);
      expect(guarded).toBe(false);
      expect(firedAt).not.toBeNull();
      expect(firedAt!).toBeGreaterThanOrEqual(h.when());
      expect(firedAt! - t0).toBeLessThan(2);
    });

    // Item 4, re-arming: zero deadlines scheduled from inside batches, each
    // followed by a real one, over several rounds.
    it('item 4: zero and real deadlines alternating from callbacks keep firing', async () => {
      open();
      const rounds: number[] = [];
      const round = (i: number): void => {
        rounds.push(i);
        if (i === 5) {
          loop.stop();
          return;
        }
        loop.callAt(0, noop);
        loop.callLater(0.02, round, i + 1);
      };
      loop.callAt(-1, round, 0);
      const guarded = await runAtMost(loop, 3);
      expect(guarded).toBe(false);
      expect(rounds).toEqual([0, 1, 2, 3, 4, 5]);
    });

    // T12: NaN is refused (lib/base-events.ts checkTime: RangeError), and
    // nothing is scheduled.
    it('T12: callLater(NaN) and callAt(NaN) throw RangeError and schedule nothing', () => {
      open();
      expect(() => loop.callLater(NaN, noop)).toThrow(RangeError);
      expect(() => loop.callAt(NaN, noop)).toThrow(RangeError);
      expect(loop.nativeStats().timers).toBe(0);
    });

    // T12: huge delays are scheduled but never fire; nothing wraps around
    // into an early deadline (Node's setTimeout turns > 2**31-1 ms into 1
    // ms), and the loop does not spin on them. when() is time() + delay as
    // in asyncio, Infinity included. Deadlines past the int64 nanosecond
    // clock (about 292 years) are "never" natively.
    const huge: [string, number][] = [
      ['Infinity', Infinity],
      ['2**31 s', 2 ** 31],
      ['2**31 ms', 2 ** 31 / 1000],
      ['2**32 ms', 2 ** 32 / 1000],
      ['1e12 s', 1e12],
      ['Number.MAX_VALUE', Number.MAX_VALUE],
    ];
    it.each(huge)('T12: callLater(%s) is scheduled, never fires, does not spin', async (_name, delay) => {
      open();
      let fired = false;
      const before = loop.time();
      const h = loop.callLater(delay, () => {
        fired = true;
      });
      const a = loop.callAt(delay, () => {
        fired = true;
      });
      expect(h.when()).toBeGreaterThanOrEqual(before + delay);
      if (delay === Infinity) expect(h.when()).toBe(Infinity);
      expect(a.when()).toBe(delay);
      expect(loop.nativeStats().timers).toBe(2);
      const stats0 = loop.nativeStats();
      loop.callLater(0.2, () => loop.stop());
      expect(await runAtMost(loop, 3)).toBe(false);
      expect(fired).toBe(false);
      // An idle 200 ms run is a few batches; a deadline that wrapped to
      // "now" would make it thousands.
      expect(loop.nativeStats().batches - stats0.batches).toBeLessThan(100);
      h.cancel();
      a.cancel();
    });
  });
});

// Item 13 / T13: a million timers (200k in CI) scheduled and cancelled; the
// plan's bound is 2x the pre-flood memory while the loop lives.
const N = Number(process.env.AIONODE_T13_TIMERS ?? 200_000);

function heapUsed(): number {
  global.gc!();
  global.gc!();
  return process.memoryUsage().heapUsed;
}

describe.each(LOOPS)('T13 on %s', (backend) => {
  useLoop(backend);
  // The native half on its own, driven through the binding with the dense
  // ids a table that reuses its lowest free ids hands out: heap array and
  // id index both come back to the pre-flood size.
  selectorOnly(backend, 'drives a NativeLoop over a NativeSelector directly')('T13 native: timer storage is back within 2x after 200k timers were added and removed', async () => {
    const b = binding();
    const events = new Int32Array(2 * 4096);
    let fired = 0;
    let done: () => void = noop;
    const all = new Promise<void>((resolve) => {
      done = resolve;
    });
    const onBatch = (n: number): number => {
      for (let i = 0; i < 2 * n; i += 2) if (events[i] === -1) fired++;
      if (fired === 1000) done();
      return 0;
    };
    const nl = new b.NativeLoop(new b.NativeSelector(backend), events, onBatch);
    try {
      for (let id = 0; id < 1000; id++) nl.timerIn(id, 1000);
      for (let id = 0; id < 1000; id++) nl.timerRemove(id);
      const base = bytes(nl.stats());
      for (let id = 0; id < N; id++) nl.timerIn(id, 1000 + id * 1e-6);
      const peak = bytes(nl.stats());
      expect(peak.timerHeapBytes).toBeGreaterThan(10 * base.timerHeapBytes);
      let removed = 0;
      for (let id = 0; id < N; id++) if (nl.timerRemove(id)) removed++;
      expect(removed).toBe(N);
      for (let id = 0; id < 1000; id++) nl.timerIn(id, 0.01);
      nl.start(false);
      const guard = setTimeout(done, 5000);
      await all;
      clearTimeout(guard);
      nl.stop();
      expect(fired).toBe(1000);
      const after = bytes(nl.stats());
      expect(after.timers).toBe(0);
      expect(after.timerHeapBytes).toBeLessThanOrEqual(2 * base.timerHeapBytes);
      expect(after.timerIndexBytes).toBeLessThanOrEqual(2 * base.timerIndexBytes);
    } finally {
      nl.close();
    }
  });

  it('T13: 200k callLater cancelled, then 1000 more fire on time; native heap storage back within 2x', async () => {
    const loop = newLoop(backend);
    try {
      let warm = 0;
      for (let i = 0; i < 1000; i++) loop.callLater(0.001, () => warm++);
      await runAtMost(loop, 0.2);
      expect(warm).toBe(1000);
      const base = bytes(loop.nativeStats());

      const handles = [];
      for (let i = 0; i < N; i++) handles.push(loop.callLater(1000 + i * 1e-6, noop));
      for (const h of handles) h.cancel();
      handles.length = 0;
      await runBriefly(loop); // one pass sweeps the cancelled timers
      expect(loop.nativeStats().timers).toBe(0);

      let early = 0;
      let fired = 0;
      for (let i = 0; i < 1000; i++) {
        const h = loop.callLater(0.02, () => {
          if (loop.time() < h.when()) early++;
          if (++fired === 1000) loop.stop();
        });
      }
      expect(await runAtMost(loop, 5)).toBe(false);
      expect(fired).toBe(1000);
      expect(early).toBe(0);
      expect(bytes(loop.nativeStats()).timerHeapBytes).toBeLessThanOrEqual(2 * base.timerHeapBytes);
    } finally {
      loop.close();
    }
  });

  // The JS timer table renumbers its live timers after a burst, so the
  // native id index can shrink too.
  it('T13: JS heap and the native id index back within 2x', async () => {
    const loop = newLoop(backend);
    try {
      await runBriefly(loop);
      const baseNative = bytes(loop.nativeStats());
      const baseHeap = heapUsed();
      const handles = [];
      for (let i = 0; i < N; i++) handles.push(loop.callLater(1000 + i * 1e-6, noop));
      for (const h of handles) h.cancel();
      handles.length = 0;
      await runBriefly(loop);
      let fired = 0;
      for (let i = 0; i < 1000; i++) {
        loop.callLater(0.01, () => {
          if (++fired === 1000) loop.stop();
        });
      }
      await runAtMost(loop, 5);
      expect(fired).toBe(1000);
      // 200k table slots and free ids are ~3 MiB; what is left after a
      // full GC must be well under that.
      expect(heapUsed() - baseHeap).toBeLessThan(1024 * 1024);
      expect(bytes(loop.nativeStats()).timerIndexBytes).toBeLessThanOrEqual(2 * Math.max(baseNative.timerIndexBytes, 4096));
    } finally {
      loop.close();
    }
  });
});
