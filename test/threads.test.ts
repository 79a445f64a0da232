/**
 * Tests for lib/threads.ts and the native channel (native/channel_wrap.cc):
 * callSoonThreadsafe, threadsafeHandle + postToLoop across worker_threads,
 * runCoroutineThreadsafe on this thread and across threads.
 *
 * Workers run the compiled package (dist/lib, built by global-setup), as
 * users do; both it and these sources load the same addon file, so they
 * share the process-wide channel registry. Ported from CPython 3.14
 * Lib/test/test_asyncio/{test_events,test_tasks}.py where a case applies.
 */
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  CancelledError,
  ConcurrentFuture,
  Handle,
  LoopHandle,
  RuntimeError,
  getRunningLoop,
  postToLoop,
  runCoroutineThreadsafe,
  sleep,
  waitFor,
  wrapFuture,
  type BaseEventLoop,
  type LoopRef,
} from '../lib/index.js';
import { binding } from '../lib/native.js';
import { expectExceptionHandlerCalls } from './helpers/exception-handler.js';
import { fdCount, runUntil } from './helpers/loop.js';
import { LOOPS, newLoop, useLoop } from './helpers/loops.js';

const root = path.resolve(__dirname, '..');
const dist = path.join(root, 'dist', 'lib', 'index.js');
const distThreads = path.join(root, 'dist', 'lib', 'threads.js');
const fixtures = path.join(__dirname, 'fixtures', 'threads');
const coros = path.join(fixtures, 'coros.cjs');

/** Resolves with a worker's first message; rejects on its error or an exit before it. */
function firstMessage<T>(w: Worker): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
    w.once('exit', (code) => reject(new Error(`worker exited (${code}) before its message`)));
  });
}

const exits = new WeakMap<Worker, Promise<number>>();

/** A worker that records its exit from the start (an 'exit' listener added late would wait forever). */
function spawn(file: string, workerData: unknown): Worker {
  const w = new Worker(file, { workerData });
  exits.set(w, new Promise((resolve) => w.once('exit', resolve)));
  return w;
}

function exited(w: Worker): Promise<number> {
  return exits.get(w)!;
}

/** A worker hosting a loop of kind `backend` (test/fixtures/threads/loop-host.cjs); resolves with its reference. */
async function loopHost(backend: string, extra: Record<string, unknown> = {}): Promise<{ w: Worker; ref: LoopRef }> {
  const w = spawn(path.join(fixtures, 'loop-host.cjs'), { dist, backend, ...extra });
  const { ref } = await firstMessage<{ ref: LoopRef }>(w);
  return { w, ref };
}

/** Runs `loop` until `p` settles (the loop keeps serving meanwhile). */
async function runWhile<T>(loop: BaseEventLoop, p: PromiseLike<T>, timeout = 15): Promise<T> {
  let done = false;
  let out: { ok: boolean; v: unknown } | undefined;
  Promise.resolve(p).then(
    (v) => ((out = { ok: true, v }), (done = true)),
    (e) => ((out = { ok: false, v: e }), (done = true)),
  );
  await runUntil(loop, () => done, timeout);
  if (!out!.ok) throw out!.v;
  return out!.v as T;
}

/** How `p` settled within `ms` ({ value } or { error }), or 'still pending' (a call nobody answers). */
async function settledWithin(p: PromiseLike<unknown>, ms: number): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  const pending = new Promise((resolve) => (timer = setTimeout(() => resolve('still pending'), ms)));
  try {
    return await Promise.race([Promise.resolve(p).then((value) => ({ value }), (error: unknown) => ({ error })), pending]);
  } finally {
    clearTimeout(timer);
  }
}

function release(flag: Int32Array): void {
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
}

describe.each(LOOPS)('threads on %s', (loopName) => {
  useLoop(loopName);
  let loop: BaseEventLoop;
  let channelsBefore: number;

  beforeEach(() => {
    channelsBefore = binding().channelCount();
    loop = newLoop(loopName);
  });
  afterEach(() => {
    if (loop.isRunning()) loop.stop();
    else loop.close();
  });

  describe('callSoonThreadsafe', () => {
    it('runs callbacks in order with their arguments and returns Handles', async () => {
      const got: unknown[] = [];
      const h1 = loop.callSoonThreadsafe((a: number, b: string) => got.push([a, b]), 1, 'x');
      loop.callSoon(() => got.push('soon'));
      loop.callSoonThreadsafe(() => {
        got.push('last');
        loop.stop();
      });
      expect(h1).toBeInstanceOf(Handle);
      await loop.runForever();
      expect(got).toEqual([[1, 'x'], 'soon', 'last']);
    }); // CPython test_events: test_call_soon_threadsafe_same_thread

    it('wakes a loop idle in its native wait', async () => {
      // Nothing is ready and no timer is armed: the loop waits in its source
      // (the helper thread's poll/select, or Node's epoll on the loop's fd).
      let ran = false;
      setTimeout(() => loop.callSoonThreadsafe(() => ((ran = true), loop.stop())), 30);
      await loop.runForever();
      expect(ran).toBe(true);
    }); // CPython test_events: test_call_soon_threadsafe

    it('runs in the given context', async () => {
      let seen = '';
      const ctx = <R>(fn: (...a: any[]) => R, ...a: any[]): R => ((seen = 'in-context'), fn(...a));
      loop.callSoonThreadsafe({ context: ctx }, () => loop.stop());
      await loop.runForever();
      expect(seen).toBe('in-context');
    }); // CPython test_events: test_call_soon_threadsafe_with_context

    it('refuses a closed loop, a non-function and a coroutine function', () => {
      expect(() => loop.callSoonThreadsafe(42 as never)).toThrow(TypeError);
      expect(() => loop.callSoonThreadsafe(42 as never)).toThrow(/callSoonThreadsafe/);
      expect(() => loop.callSoonThreadsafe((async () => {}) as never)).toThrow(/coroutines cannot be used with callSoonThreadsafe/);
      loop.close();
      expect(() => loop.callSoonThreadsafe(() => {})).toThrow(new RuntimeError('Event loop is closed'));
    }); // CPython test_base_events: test_call_soon_non_callable
  });

  describe('threadsafeHandle / postToLoop', () => {
    it('4 workers x 10,000 posts each run exactly once, FIFO per sender, as handles of the loop', async () => {
      const SENDERS = 4;
      const COUNT = 10_000;
      const next = new Array<number>(SENDERS).fill(0);
      let total = 0;
      let outOfOrder = 0;
      let offLoop = 0;
      const ref = loop.threadsafeHandle(([sender, i]: [number, number]) => {
        if (getRunningLoop() !== loop) offLoop++;
        if (i !== next[sender]) outOfOrder++;
        next[sender] = i + 1;
        total++;
      });
      const workers = Array.from(
        { length: SENDERS },
        (_, sender) =>
          spawn(path.join(fixtures, 'poster.cjs'), { threads: distThreads, ref: ref.toJSON(), sender, count: COUNT }),
      );
      const reports = workers.map((w) => firstMessage<{ posted: number }>(w));
      await runUntil(loop, () => total >= SENDERS * COUNT, 30);
      // A little longer: a duplicate would show up now.
      await runUntil(loop, () => true);
      expect((await Promise.all(reports)).map((r) => r.posted)).toEqual(new Array(SENDERS).fill(COUNT));
      await Promise.all(workers.map(exited));
      expect(total).toBe(SENDERS * COUNT);
      expect(next).toEqual(new Array(SENDERS).fill(COUNT));
      expect(outOfOrder).toBe(0);
      expect(offLoop).toBe(0);
    }, 60_000);

    it('the reference is plain data and survives JSON', async () => {
      const got: unknown[] = [];
      const ref = loop.threadsafeHandle((m) => got.push(m));
      expect(ref).toBeInstanceOf(LoopHandle);
      const copy = JSON.parse(JSON.stringify(ref)) as unknown;
      expect(copy).toEqual({ kind: 'aionode.LoopRef', id: ref.id });
      postToLoop(copy as LoopRef, { a: [1, 2n, new Map([[1, 'x']])] });
      postToLoop(ref, 'direct');
      await runUntil(loop, () => got.length === 2);
      expect(got).toEqual([{ a: [1, 2n, new Map([[1, 'x']])] }, 'direct']);
    });

    it('a post to a closed loop is a RuntimeError on the sender, in a worker too', async () => {
      const ref = loop.threadsafeHandle(() => {});
      const w = spawn(path.join(fixtures, 'poster.cjs'), { threads: distThreads, ref: ref.toJSON(), sender: 0, untilClosed: true });
      const report = firstMessage<{ posted: number; error: { name: string; message: string } }>(w);
      await runUntil(loop, () => true);
      loop.close();
      const r = await report;
      expect(r.error).toEqual({ name: 'RuntimeError', message: 'Event loop is closed' });
      expect(() => postToLoop(ref, 1)).toThrow(new RuntimeError('Event loop is closed'));
      expect(binding().channelCount()).toBe(channelsBefore);
      await exited(w);
    });

    it('a closed handle refuses posts; the loop keeps its other handles', async () => {
      const got: unknown[] = [];
      const a = loop.threadsafeHandle((m) => got.push(['a', m]));
      const b = loop.threadsafeHandle((m) => got.push(['b', m]));
      a.close();
      a.close();
      expect(a.closed).toBe(true);
      expect(() => postToLoop(a, 1)).toThrow(new RuntimeError('Event loop is closed'));
      postToLoop(b, 2);
      await runUntil(loop, () => got.length === 1);
      expect(got).toEqual([['b', 2]]);
      loop.close();
      expect(binding().channelCount()).toBe(channelsBefore);
    });

    it('scalars and objects arrive as they were sent', async () => {
      const got: unknown[] = [];
      const ref = loop.threadsafeHandle((m) => got.push(m));
      // Lone surrogates too, alone and inside objects (structured clone keeps them; UTF-8 cannot).
      const sent = [0, -0, 1.5, NaN, -Infinity, 2 ** 53, '', 'héllo ✓ 𝄞', 'a\0b', '\ud800x', 'x\udc00', { s: '\ud800', ['k\udfff']: 1 }, ['\ud83d'], true, false, null, undefined, 10n, [1, 'x'], { a: new Date(0) }];
      for (const m of sent) postToLoop(ref, m);
      await runUntil(loop, () => got.length === sent.length);
      expect(got).toEqual(sent);
      expect(Object.is(got[1], -0)).toBe(true);
    });

    it('objects keep what structured clone keeps: undefined members, holes, shared nodes, cycles', async () => {
      const got: any[] = [];
      const ref = loop.threadsafeHandle((m) => got.push(m));
      const shared = { n: 1 };
      const cyclic: any = { name: 'c' };
      cyclic.self = cyclic;
      class Point {
        constructor(
          public x: number,
          public y: number,
        ) {}
      }
      // eslint-disable-next-line no-sparse-arrays
      const sent: unknown[] = [{ a: undefined, b: 1 }, [1, , 3], { p: shared, q: shared }, cyclic, new Point(1, 2), { d: new Date(5), m: new Map([[1, 2]]) }, { nan: NaN, neg: -0 }];
      for (const m of sent) postToLoop(ref, m);
      await runUntil(loop, () => got.length === sent.length);
      expect(Object.keys(got[0])).toEqual(['a', 'b']);
      expect(1 in got[1]).toBe(false);
      expect(got[1].length).toBe(3);
      expect(got[2].p).toBe(got[2].q);
      expect(got[3].self).toBe(got[3]);
      expect(got[4]).toEqual({ x: 1, y: 2 });
      expect(got[5].d).toEqual(new Date(5));
      expect(got[5].m).toEqual(new Map([[1, 2]]));
      expect(Number.isNaN(got[6].nan)).toBe(true);
      expect(Object.is(got[6].neg, -0)).toBe(true);
    });

    it('a loop dropped without close() is collected and its channel closed', async () => {
      const ref = ((): LoopRef => {
        const dropped = newLoop(loopName);
        return dropped.threadsafeHandle(() => {}).toJSON();
      })();
      postToLoop(ref, 'still open');
      const onWarning = (): void => {};
      process.on('warning', onWarning);
      try {
        let closed = false;
        for (let i = 0; i < 50 && !closed; i++) {
          (globalThis as { gc?: () => void }).gc?.();
          await new Promise((r) => setTimeout(r, 10));
          try {
            postToLoop(ref, i);
          } catch (e) {
            expect(e).toEqual(new RuntimeError('Event loop is closed'));
            closed = true;
          }
        }
        expect(closed).toBe(true);
      } finally {
        process.off('warning', onWarning);
      }
    });

    it('messages posted before the loop runs wait for it', async () => {
      const got: number[] = [];
      const ref = loop.threadsafeHandle((m: number) => got.push(m));
      for (let i = 0; i < 5; i++) postToLoop(ref, i);
      // Delivered to the loop's ready queue by Node's loop, run by the pass.
      await new Promise((r) => setTimeout(r, 20));
      expect(got).toEqual([]);
      await runUntil(loop, () => got.length === 5);
      expect(got).toEqual([0, 1, 2, 3, 4]);
    });

    it('a wake-up hands over at most maxBatchBytes; the rest follows in order on later turns', async () => {
      const batches: number[][] = [];
      const ch = new (binding().NativeChannel as unknown as new (cb: (k: Int32Array, d: Buffer, e: Uint32Array) => void, max?: number) => {
        id: string;
        close(): void;
      })((kinds, data, ends) => {
        const got: number[] = [];
        let start = 0;
        for (let i = 0; i < kinds.length; i++) {
          expect(ends[i] - start).toBe(300);
          got.push(data[start]);
          start = ends[i];
        }
        batches.push(got);
      }, 1024);
      try {
        for (let i = 0; i < 10; i++) expect(binding().channelPost(ch.id, 0, new Uint8Array(300).fill(i))).toBe(0);
        const deadline = Date.now() + 5000;
        while (batches.flat().length < 10 && Date.now() < deadline) await new Promise((r) => setImmediate(r));
        // 3 x 300 bytes fit in 1024: four turns, FIFO across them.
        expect(batches).toEqual([[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]);
      } finally {
        ch.close();
      }
      const Ctor = binding().NativeChannel as unknown as new (cb: () => void, max?: unknown) => unknown;
      expect(() => new Ctor(() => {}, 0)).toThrow(/"maxBatchBytes" to be a number of bytes from 1 to 64 MiB, got 0/);
      expect(() => new Ctor(() => {}, 2 ** 40)).toThrow(TypeError);
    });

    it('bad input: a non-function callback, a bad reference, an uncloneable message', () => {
      expect(() => loop.threadsafeHandle(42 as never)).toThrow(TypeError);
      expect(() => loop.threadsafeHandle(42 as never)).toThrow(/"onMessage" to be a function or null, got 42/);
      const ref = loop.threadsafeHandle(() => {});
      expect(() => postToLoop({ id: ref.id } as never, 1)).toThrow(/"loopRef" to be a loop reference/);
      expect(() => postToLoop({ kind: 'aionode.LoopRef', id: '0' } as never, 1)).toThrow(TypeError);
      expect(() => postToLoop({ kind: 'aionode.LoopRef', id: '99999999999999999999999' } as never, 1)).toThrow(TypeError);
      expect(() => postToLoop(null as never, 1)).toThrow(TypeError);
      expect(() => postToLoop(ref, () => 1)).toThrow(/message must be structured-clonable/);
      // An id nobody holds.
      expect(() => postToLoop({ kind: 'aionode.LoopRef', id: '18446744073709551615' }, 1)).toThrow(
        new RuntimeError('Event loop is closed'),
      );
      loop.close();
      expect(() => loop.threadsafeHandle(() => {})).toThrow(new RuntimeError('Event loop is closed'));
    });

    it('a worker that exits with a live channel frees it; posts then fail cleanly', async () => {
      const fds = fdCount();
      const got: unknown[] = [];
      const back = loop.threadsafeHandle((m) => got.push(m));
      const { w, ref } = await loopHost(loopName, { exitHard: true, replyRef: back.toJSON() });
      postToLoop(ref, 'ping');
      await runUntil(loop, () => got.length === 1);
      expect(got).toEqual(['ping']);
      const gone = exited(w);
      w.postMessage('exit');
      expect(await gone).toBe(0);
      expect(() => postToLoop(ref, 'late')).toThrow(new RuntimeError('Event loop is closed'));
      loop.close();
      expect(binding().channelCount()).toBe(channelsBefore);
      expect(fdCount()).toBeLessThanOrEqual(fds);
    });

    it.each([0, 5, 20])('terminate() after %i ms while this thread posts as fast as it can does not crash', async (delay) => {
      const { w, ref } = await loopHost(loopName);
      const gone = exited(w);
      let posted = 0;
      let error: unknown;
      const t0 = Date.now();
      setTimeout(() => void w.terminate(), delay);
      // Posts from this thread race the worker's teardown.
      while (Date.now() - t0 < 5000) {
        try {
          postToLoop(ref, posted);
          posted++;
        } catch (e) {
          error = e;
          break;
        }
        if ((posted & 1023) === 0) await new Promise((r) => setImmediate(r));
      }
      await gone;
      expect(error).toEqual(new RuntimeError('Event loop is closed'));
      expect(binding().channelCount()).toBe(channelsBefore);
    });
  });

  describe('runCoroutineThreadsafe, same thread', () => {
    it('returns a ConcurrentFuture with the result', async () => {
      async function add(a: number, b: number): Promise<number> {
        await sleep(0.001);
        return a + b;
      }
      const fut = runCoroutineThreadsafe<number>(add(1, 2), loop);
      expect(fut).toBeInstanceOf(ConcurrentFuture);
      expect(fut.done()).toBe(false);
      expect(await runWhile(loop, fut)).toBe(3);
      expect(fut.result()).toBe(3);
    }); // CPython test_tasks: test_run_coroutine_threadsafe

    it('carries the exception', async () => {
      function* failing(): Generator<any, never, any> {
        yield* sleep(0.001);
        throw new TypeError('Fail!');
      }
      const fut = runCoroutineThreadsafe(failing(), loop);
      await expect(runWhile(loop, fut)).rejects.toThrow(new TypeError('Fail!'));
      expect(fut.exception()).toBeInstanceOf(TypeError);
    }); // CPython test_tasks: test_run_coroutine_threadsafe_with_exception

    it('cancelling the future cancels the task', async () => {
      let cancelled = false;
      const fut = runCoroutineThreadsafe(async () => {
        try {
          await sleep(3600);
        } catch (e) {
          cancelled = e instanceof CancelledError;
          throw e;
        }
      }, loop);
      await runUntil(loop, () => true);
      expect(fut.cancel()).toBe(true);
      expect(fut.cancelled()).toBe(true);
      await runUntil(loop, () => cancelled);
      await expect(fut).rejects.toBeInstanceOf(CancelledError);
    }); // CPython test_tasks: test_run_coroutine_threadsafe_task_cancelled

    it('a task factory that throws fails the future', async () => {
      loop.setTaskFactory(() => {
        throw new RangeError('factory says no');
      });
      allowHandler();
      const fut = runCoroutineThreadsafe(async () => 1, loop);
      await runUntil(loop, () => fut.done());
      expect(fut.exception()).toEqual(new RangeError('factory says no'));
    }); // CPython test_tasks: test_run_coroutine_threadsafe_task_factory_exception

    it('refuses what is not a coroutine or not a loop', () => {
      expect(() => runCoroutineThreadsafe(42, loop)).toThrow(/A coroutine object is required/);
      expect(() => runCoroutineThreadsafe(async () => 1, {} as never)).toThrow(/"loop" to be an event loop or a loop reference/);
      loop.close();
      expect(() => runCoroutineThreadsafe(async () => 1, loop)).toThrow(new RuntimeError('Event loop is closed'));
    });
  });

  describe('runCoroutineThreadsafe with a timeout', () => {
    it('waitFor on the wrapped future times out and cancels the task', async () => {
      let cancelled = false;
      const fut = runCoroutineThreadsafe(async () => {
        try {
          await sleep(3600);
        } catch (e) {
          cancelled = e instanceof CancelledError;
          throw e;
        }
      }, loop);
      const outcome = await runWhile(
        loop,
        loop.createTask(async () => {
          try {
            await waitFor(wrapFuture(fut), 0.01);
            return 'finished';
          } catch (e) {
            return (e as Error).constructor.name;
          }
        }),
      );
      expect(outcome).toBe('TimeoutError');
      await runUntil(loop, () => cancelled);
      expect(fut.cancelled()).toBe(true);
    }); // CPython test_tasks: test_run_coroutine_threadsafe_with_timeout
  });

  describe('runCoroutineThreadsafe across threads', () => {
    it('runs a module export in a worker\'s loop and returns its result', async () => {
      const { w, ref } = await loopHost(loopName);
      try {
        expect(await runCoroutineThreadsafe({ filename: coros, name: 'add', args: [40, 2] }, ref)).toBe(42);
        expect(await runCoroutineThreadsafe({ filename: coros, name: 'gen', args: [1] }, ref)).toBe(2);
        const esm = path.join(fixtures, 'esm.mjs');
        expect(await runCoroutineThreadsafe({ filename: esm, name: 'addAsync', args: [2, 3] }, ref)).toBe(5);
        // asyncio runs coroutines only: a plain function's value is refused.
        await expect(runCoroutineThreadsafe({ filename: coros, name: 'notAsync', args: [21] }, ref)).rejects.toThrow(
          /a coroutine was expected from notAsync\(\), got 42/,
        );
      } finally {
        postToLoop(ref, 'stop');
        await exited(w);
      }
    });

    it('carries the error with its class and message', async () => {
      const { w, ref } = await loopHost(loopName);
      try {
        const err = await runCoroutineThreadsafe({ filename: coros, name: 'fail', args: ['bad thing'] }, ref).then(
          () => null,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(TypeError);
        expect((err as Error).message).toBe('bad thing');
        const custom = (await runCoroutineThreadsafe({ filename: coros, name: 'failCustom', args: ['quota'] }, ref).then(
          () => null,
          (e: unknown) => e,
        )) as Error;
        expect(custom.name).toBe('AppError');
        expect(custom.message).toBe('quota');
        const missing = (await runCoroutineThreadsafe({ filename: coros, name: 'notAFunction' }, ref).then(
          () => null,
          (e: unknown) => e,
        )) as Error;
        expect(missing).toBeInstanceOf(TypeError);
        expect(missing.message).toMatch(/no function export "notAFunction"/);
        const unclonable = (await runCoroutineThreadsafe({ filename: coros, name: 'returnsFunction' }, ref).then(
          () => null,
          (e: unknown) => e,
        )) as Error;
        expect(unclonable).toBeInstanceOf(TypeError);
        expect(unclonable.message).toMatch(/result must be structured-clonable/);
      } finally {
        postToLoop(ref, 'stop');
        await exited(w);
      }
    });

    it('cancelling on the caller cancels the task in the target loop', async () => {
      const { w, ref } = await loopHost(loopName);
      const notes: unknown[] = [];
      const notify = loop.threadsafeHandle((m) => notes.push(m));
      try {
        const fut = runCoroutineThreadsafe({ filename: coros, name: 'sleepUntilCancelled', args: [notify.toJSON()] }, ref);
        await runUntil(loop, () => false, 0.05).catch(() => {});
        expect(fut.done()).toBe(false);
        expect(fut.cancel()).toBe(true);
        await expect(fut).rejects.toBeInstanceOf(CancelledError);
        await runUntil(loop, () => notes.length === 1);
        expect(notes).toEqual([{ cancelled: true }]);
      } finally {
        postToLoop(ref, 'stop');
        await exited(w);
      }
    });

    it('a worker calls into this thread\'s loop', async () => {
      const ref = loop.threadsafeHandle();
      const w = spawn(path.join(fixtures, 'caller.cjs'), { threads: distThreads, ref: ref.toJSON(), spec: { filename: coros, name: 'add', args: [1, 2] } });
      const report = firstMessage<{ value?: number }>(w);
      expect(await runWhile(loop, report)).toEqual({ value: 3 });
      const w2 = spawn(path.join(fixtures, 'caller.cjs'), { threads: distThreads, ref: ref.toJSON(), spec: { filename: coros, name: 'fail', args: ['nope'] } });
      const report2 = firstMessage<{ error?: unknown }>(w2);
      expect(await runWhile(loop, report2)).toEqual({ error: { name: 'TypeError', ownName: 'TypeError', message: 'nope' } });
      await Promise.all([exited(w), exited(w2)]);
    });

    it('a call pending when the target loop closes fails with RuntimeError', async () => {
      const ref = loop.threadsafeHandle();
      const w = spawn(path.join(fixtures, 'caller.cjs'), {
          threads: distThreads,
          ref: ref.toJSON(),
          spec: { filename: coros, name: 'sleepForever', args: [] },
        });
      // sleepForever is not exported: the call fails in the target, with a TypeError.
      const report = firstMessage<{ error?: { name: string } }>(w);
      expect((await runWhile(loop, report)).error?.name).toBe('TypeError');
      await exited(w);
      // Now one that hangs: close the loop under it.
      const w2 = spawn(path.join(fixtures, 'caller.cjs'), { threads: distThreads, ref: ref.toJSON(), spec: { filename: coros, name: 'add', args: [1, 1] } });
      const report2 = firstMessage<{ value?: number; error?: { name: string; message: string } }>(w2);
      // The call arrives but the loop never runs it: closing answers it.
      await new Promise((r) => setTimeout(r, 100));
      loop.close();
      expect(await report2).toEqual({ error: { name: 'RuntimeError', ownName: 'RuntimeError', message: 'Event loop is closed' } });
      await exited(w2);
    });

    it('a call still queued in the native FIFO when the target loop closes fails with RuntimeError', async () => {
      const ref = loop.threadsafeHandle();
      // Posted to this thread's own loop and closed before Node's loop can
      // deliver it: the call never leaves the native queue.
      const fut = runCoroutineThreadsafe({ filename: coros, name: 'add', args: [1, 2] }, ref);
      loop.close();
      expect(await settledWithin(fut, 5000)).toEqual({ error: new RuntimeError('Event loop is closed') });
    });

    it('a worker whose call is dropped by the closing target gets RuntimeError and exits by itself', async () => {
      const ref = loop.threadsafeHandle();
      const flag = new Int32Array(new SharedArrayBuffer(4));
      const w = new Worker(
        `const { parentPort, workerData } = require('node:worker_threads');
        const { runCoroutineThreadsafe } = require(workerData.threads);
        const fut = runCoroutineThreadsafe(workerData.spec, workerData.ref);
        Atomics.store(workerData.flag, 0, 1);
        Atomics.notify(workerData.flag, 0);
        fut.then(
          (value) => parentPort.postMessage({ value }),
          (e) => parentPort.postMessage({ error: { name: e.constructor.name, message: e.message } }),
        );`,
        { eval: true, workerData: { threads: distThreads, ref: ref.toJSON(), spec: { filename: coros, name: 'add', args: [1, 1] }, flag } },
      );
      const gone = new Promise<number>((resolve) => w.once('exit', resolve));
      const report = firstMessage<unknown>(w);
      // This thread does not return to Node's loop until the call is posted,
      // then closes: the call is still in the native queue.
      while (Atomics.wait(flag, 0, 0, 10_000) === 'ok' && Atomics.load(flag, 0) === 0);
      expect(Atomics.load(flag, 0)).toBe(1);
      try {
        loop.close();
        expect(await settledWithin(report, 5000)).toEqual({ value: { error: { name: 'RuntimeError', message: 'Event loop is closed' } } });
        // Its reply channel no longer holds it: the worker's event loop empties and it exits.
        expect(await settledWithin(gone, 5000)).toEqual({ value: 0 });
      } finally {
        void w.terminate();
      }
    });

    it.each(['exit', 'terminate'])('a target thread that ends (%s) with calls running and queued answers them all', async (how) => {
      const pongs: unknown[] = [];
      const back = loop.threadsafeHandle((m) => pongs.push(m));
      const flag = new Int32Array(new SharedArrayBuffer(8));
      const w = new Worker(
        `const { parentPort, workerData } = require('node:worker_threads');
        const a = require(workerData.dist);
        globalThis.__aionodeThreadsTest = a;
        const { makeLoop } = require(workerData.loopByName);
        const runner = new a.Runner({ loopFactory: () => makeLoop(a, workerData.backend) });
        runner.run(async () => {
          const loop = a.getRunningLoop();
          const ref = loop.threadsafeHandle((m) => {
            if (m === 'ping') return a.postToLoop(workerData.back, 'pong');
            // Blocks this thread (its loop cannot drain), then ends it.
            const flag = workerData.flag;
            Atomics.store(flag, 1, 1);
            Atomics.notify(flag, 1);
            while (Atomics.load(flag, 0) === 0) Atomics.wait(flag, 0, 0, 50);
            if (workerData.how === 'exit') process.exit(0);
            for (;;) Atomics.wait(flag, 0, 1, 50);
          });
          parentPort.postMessage({ ref: ref.toJSON() });
          await loop.createFuture();
        });`,
        {
          eval: true,
          workerData: { dist, backend: loopName, loopByName: path.join(fixtures, '..', 'faults', 'loop-by-name.cjs'), back: back.toJSON(), flag, how },
        },
      );
      const gone = new Promise<number>((resolve) => w.once('exit', resolve));
      const { ref } = await firstMessage<{ ref: LoopRef }>(w);
      const running = runCoroutineThreadsafe({ filename: coros, name: 'sleepUntilCancelled', args: [back.toJSON()] }, ref);
      // The echo comes back after the call was drained and its task started (one FIFO).
      postToLoop(ref, 'ping');
      await runUntil(loop, () => pongs.length === 1);
      postToLoop(ref, 'block');
      while (Atomics.load(flag, 1) === 0) await new Promise((r) => setTimeout(r, 5));
      const queued = runCoroutineThreadsafe({ filename: coros, name: 'add', args: [1, 2] }, ref);
      release(flag);
      if (how === 'terminate') void w.terminate();
      const closed = { error: new RuntimeError('Event loop is closed') };
      try {
        expect(await settledWithin(running, 5000)).toEqual(closed);
        expect(await settledWithin(queued, 5000)).toEqual(closed);
      } finally {
        void w.terminate();
      }
      await gone;
      expect(() => runCoroutineThreadsafe({ filename: coros, name: 'add', args: [1, 2] }, ref)).toThrow(new RuntimeError('Event loop is closed'));
      loop.close();
      expect(binding().channelCount()).toBe(channelsBefore);
    });

    it('bad input: a bad spec and a closed target are errors on the caller', async () => {
      const ref = loop.threadsafeHandle();
      expect(() => runCoroutineThreadsafe(async () => 1, ref)).toThrow(/"coro" to be a function or a \{ filename, name \} module reference/);
      expect(() => runCoroutineThreadsafe({ filename: 'relative.cjs', name: 'x' }, ref)).toThrow(/absolute path/);
      expect(() => runCoroutineThreadsafe({ filename: coros, name: 'add', args: 5 }, ref)).toThrow(/"coro.args" to be an array/);
      expect(() => runCoroutineThreadsafe({ filename: coros, name: 'add', args: [() => 1] }, ref)).toThrow(/structured-clonable/);
      ref.close();
      expect(() => runCoroutineThreadsafe({ filename: coros, name: 'add', args: [] }, ref)).toThrow(
        new RuntimeError('Event loop is closed'),
      );
    });
  });
});

function allowHandler(): void {
  // The factory's error is re-raised from the loop callback (asyncio's
  // run_coroutine_threadsafe does `raise` after setting it): reported once.
  expectExceptionHandlerCalls(/Exception in callback/);
}
