/**
 * Lock, Event, Condition, Semaphore, BoundedSemaphore and Barrier: CPython's
 * test_locks, with the waiting tasks written as async functions and as
 * generator coroutines.
 */
import { describe, expect, it } from 'vitest';
import {
  asyncWith,
  BrokenBarrierError,
  CancelledError,
  createTask,
  gather,
  getRunningLoop,
  newEventLoop,
  run,
  RuntimeError,
  sleep,
  TaskGroup,
  timeout,
  TimeoutError,
  wait,
  waitFor,
  type AsyncContextManager,
  type Task,
} from '../lib/index.js';
import { eachLoop, LOOPS, useLoop } from './helpers/loops.js';
import { Barrier, BoundedSemaphore, Condition, Event, Lock, Semaphore } from '../lib/locks.js';

// ---------------------------------------------------------------- coroutine kinds

/** One step of a coroutine: gets the previous step's value; what it returns is waited for if awaitable. */
type Step = (prev: any) => unknown;

/**
 * Writes the same coroutine as an async function (`await`) or a generator
 * coroutine (`yield*`), so one scenario runs against both kinds of task.
 */
interface Kind {
  /**
   * Loop passes that stand for one asyncio pass: an async function resumes
   * in the promise jobs that run after the loop's batch, so the test body
   * needs one more pass to observe what such a task did.
   */
  passes: number;
  /** A coroutine function running `steps` in order; it returns the last value. */
  co(...steps: Step[]): (init?: unknown) => any;
  /** A step running `steps` inside `try { } catch (e) { if (e instanceof E) return onError(e); throw e; }`. */
  catching(E: abstract new (...args: any[]) => Error, onError: (e: any) => unknown, ...steps: Step[]): Step;
  /** A step running `steps` inside `try { } finally { cleanup() }`. */
  tryFinally(steps: Step[], cleanup: () => unknown): Step;
  /** A step running `steps` inside `async with cm` (the first step gets its value). */
  with(cm: AsyncContextManager<any>, ...steps: Step[]): Step;
}

const isThenable = (v: unknown): v is PromiseLike<unknown> =>
  typeof v === 'object' && v !== null && typeof (v as PromiseLike<unknown>).then === 'function';
/** What `yield*` waits on: a generator coroutine, or a Future or Sleep (thenable and iterable). */
const isDelegable = (v: unknown): v is Iterable<unknown> =>
  typeof v === 'object' &&
  v !== null &&
  typeof (v as Iterable<unknown>)[Symbol.iterator] === 'function' &&
  (typeof (v as Generator).next === 'function' || isThenable(v));

const asyncKind: Kind = {
  passes: 2,
  co:
    (...steps) =>
    async (init?: unknown) => {
      let v = init;
      for (const step of steps) {
        v = step(v);
        if (isThenable(v)) v = await v;
      }
      return v;
    },
  catching:
    (E, onError, ...steps) =>
    async () => {
      try {
        return await asyncKind.co(...steps)();
      } catch (e) {
        if (e instanceof E) return onError(e);
        throw e;
      }
    },
  tryFinally:
    (steps, cleanup) =>
    async () => {
      try {
        return await asyncKind.co(...steps)();
      } finally {
        cleanup();
      }
    },
  with: (cm, ...steps) => () => asyncWith(cm, asyncKind.co(...steps)),
};

const generatorKind: Kind = {
  passes: 1,
  co: (...steps) =>
    function* (init?: unknown): Generator<any, unknown, any> {
      let v = init;
      for (const step of steps) {
        v = step(v);
        if (isDelegable(v)) v = yield* v as Generator<any, unknown, any>;
        else if (isThenable(v)) throw new Error('test bug: a promise in a generator coroutine');
      }
      return v;
    },
  catching: (E, onError, ...steps) =>
    function* (): Generator<any, unknown, any> {
      try {
        return yield* generatorKind.co(...steps)();
      } catch (e) {
        if (e instanceof E) return onError(e);
        throw e;
      }
    },
  tryFinally: (steps, cleanup) =>
    function* (): Generator<any, unknown, any> {
      try {
        return yield* generatorKind.co(...steps)();
      } finally {
        cleanup();
      }
    },
  with: (cm, ...steps) => () => asyncWith(cm, generatorKind.co(...steps) as (v: unknown) => Generator<any, unknown, any>),
};

const KINDS = [
  ['async', asyncKind],
  ['generator', generatorKind],
] as const;

/** Gives up `n` loop passes. */
async function spin(n = 1): Promise<void> {
  for (let i = 0; i < n; i++) await sleep(0);
}

/** The error `aw` rejects with (fails if it resolves). */
async function rejection(aw: PromiseLike<unknown>): Promise<any> {
  try {
    await aw;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

// ---------------------------------------------------------------- Lock

describe.each(eachLoop(KINDS))('[%s] Lock with %s tasks', (backend, kind, K) => {
  useLoop(backend);
  const tick = (n = 1) => spin(n * K.passes);
  it('hands the lock to waiters in FIFO order', async () => {
    await run(async () => {
      const lock = new Lock();
      const result: number[] = [];
      expect(await lock.acquire()).toBe(true);
      const c = (n: number) => K.co(() => lock.acquire(), (ok) => ok && result.push(n), () => true);

      const t1 = createTask(c(1));
      const t2 = createTask(c(2));
      await tick();
      expect(result).toEqual([]);

      lock.release();
      await tick();
      expect(result).toEqual([1]);
      await tick();
      expect(result).toEqual([1]);

      const t3 = createTask(c(3));
      lock.release();
      await tick();
      expect(result).toEqual([1, 2]);

      lock.release();
      await tick();
      expect(result).toEqual([1, 2, 3]);
      for (const t of [t1, t2, t3]) expect(t.result()).toBe(true);
    });
  }); // CPython test_locks: test_acquire

  it('removes a cancelled waiter', async () => {
    await run(async () => {
      const lock = new Lock();
      expect(await lock.acquire()).toBe(true);
      const task = createTask(K.co(() => lock.acquire()));
      getRunningLoop().callSoon(() => task.cancel());
      expect(await rejection(task)).toBeInstanceOf(CancelledError);
      expect(lock._waiters).toEqual([]);
      expect(lock.locked()).toBe(true);
    });
  }); // CPython test_locks: test_acquire_cancel

  it('skips a cancelled waiter whose Future is still queued', async () => {
    await run(async () => {
      const lock = new Lock();
      const lockit = (blocker: PromiseLike<unknown> | null) =>
        K.co(() => lock.acquire(), K.tryFinally([() => blocker], () => lock.release()));
      const fa = getRunningLoop().createFuture();
      const ta = createTask(lockit(fa));
      await tick();
      expect(lock.locked()).toBe(true);
      const tb = createTask(lockit(null));
      await tick();
      expect(lock._waiters!.length).toBe(1);
      const tc = createTask(lockit(null));
      await tick();
      expect(lock._waiters!.length).toBe(2);

      // B's waiter is cancelled but still queued when A releases: C must
      // get the lock, not a crash on B's cancelled Future.
      fa.setResult(undefined);
      tb.cancel();
      expect(lock._waiters![0].cancelled()).toBe(true);
      await tick();
      expect(lock.locked()).toBe(false);
      expect(ta.done()).toBe(true);
      expect(tb.cancelled()).toBe(true);
      await tc;
    });
  }); // CPython test_locks: test_cancel_race

  it('takes the lock once when a waiter is cancelled as it is released', async () => {
    await run(async () => {
      const lock = new Lock();
      let lockCount = 0;
      let callCount = 0;
      const lockit = K.co(
        () => callCount++,
        () => lock.acquire(),
        () => lockCount++,
      );
      await lock.acquire();
      const t1 = createTask(lockit);
      const t2 = createTask(lockit);
      const t3 = createTask(lockit);
      await tick();

      getRunningLoop().callSoon(() => {
        t1.cancel();
        lock.release();
      });
      expect(await rejection(t1)).toBeInstanceOf(CancelledError);
      // The test body is an async function: `await t1` resumes it in the
      // promise jobs right after t1's last step, a pass before asyncio's
      // done callback would, and before t2's wakeup.
      await tick();
      expect(lockCount).toBe(1);
      expect(callCount).toBe(3);
      expect(t1.cancelled() && t2.done()).toBe(true);

      t3.cancel();
      await tick();
      expect(t3.cancelled()).toBe(true);
    });
  }); // CPython test_locks: test_cancel_release_race

  it('wakes the next waiter when a woken one is cancelled', async () => {
    await run(async () => {
      const lock = new Lock();
      await lock.acquire();
      expect(lock.locked()).toBe(true);
      const tb = createTask(K.co(() => lock.acquire()));
      await tick();
      expect(lock._waiters!.length).toBe(1);

      const tc = createTask(K.co(() => lock.acquire()));
      tb.cancel();
      lock.release();
      await tick();
      expect(lock.locked()).toBe(true);
      expect(tb.cancelled()).toBe(true);
      await tc;
    });
  }); // CPython test_locks: test_finished_waiter_cancelled

  it('works as an async context manager', async () => {
    await run(async () => {
      const lock = new Lock();
      expect(lock.locked()).toBe(false);
      const seen = await createTask(K.co(K.with(lock, () => lock.locked())));
      expect(seen).toBe(true);
      expect(lock.locked()).toBe(false);
    });
  }); // CPython test_locks: test_context_manager

  it('releases when the body of the context manager throws', async () => {
    await run(async () => {
      const lock = new Lock();
      const boom = new Error('boom');
      const task = createTask(
        K.co(
          K.with(lock, () => {
            throw boom;
          }),
        ),
      );
      expect(await rejection(task)).toBe(boom);
      expect(lock.locked()).toBe(false);
    });
  });

  it('is fair: release wakes the first waiter and a newcomer cannot barge in', async () => {
    await run(async () => {
      const lock = new Lock();
      const order: string[] = [];
      // The asyncio docs' lock_competitor: each takes the lock twice.
      const competitor = (name: string) =>
        K.co(
          () => lock.acquire(),
          () => order.push(name),
          () => sleep(0),
          () => lock.release(),
          () => lock.acquire(), // right after its own release: must queue
          () => order.push(name),
          () => lock.release(),
        );
      const tasks = ['a', 'b', 'c'].map((n) => createTask(competitor(n)));
      await gather(tasks);
      expect(order).toEqual(['a', 'b', 'c', 'a', 'b', 'c']);
    });
  });

  it('does not let a task take a lock released to a waiter that has not run yet', async () => {
    await run(async () => {
      const lock = new Lock();
      await lock.acquire();
      const order: string[] = [];
      const waiter = createTask(K.co(() => lock.acquire(), () => order.push('waiter'), () => lock.release()));
      await tick();
      lock.release();
      // Unlocked, but promised to the waiter.
      expect(lock.locked()).toBe(false);
      const newcomer = createTask(K.co(() => lock.acquire(), () => order.push('newcomer'), () => lock.release()));
      await gather([waiter, newcomer]);
      expect(order).toEqual(['waiter', 'newcomer']);
    });
  });

  it('takes the fast path when every waiter is cancelled', async () => {
    await run(async () => {
      const lock = new Lock();
      await lock.acquire();
      const t = createTask(K.co(() => lock.acquire()));
      await tick();
      t.cancel();
      lock.release();
      // t's cancelled Future is still queued: the lock is free to take at once.
      expect(lock._waiters!.length).toBe(1);
      expect(await createTask(K.co(() => lock.acquire()))).toBe(true);
      expect(lock.locked()).toBe(true);
      expect(await rejection(t)).toBeInstanceOf(CancelledError);
    });
  });

  it('aborting the signal cancels the wait and takes nothing', async () => {
    await run(async () => {
      const lock = new Lock();
      await lock.acquire();
      const ac = new AbortController();
      const t1 = createTask(K.co(() => lock.acquire({ signal: ac.signal })));
      const t2 = createTask(K.co(() => lock.acquire(), () => 't2'));
      await tick();
      ac.abort('no longer needed');
      const err = await rejection(t1);
      expect(err).toBeInstanceOf(CancelledError);
      expect(err.message).toBe('no longer needed');
      // Nobody called t1.cancel(): the CancelledError came from its wait
      // and ended the task, as in asyncio.
      expect(t1.cancelling()).toBe(0);
      expect(t1.cancelled()).toBe(true);
      expect(lock._waiters!.length).toBe(1);
      expect(lock.locked()).toBe(true);
      lock.release();
      expect(await t2).toBe('t2');
      expect(lock.locked()).toBe(true);
    });
  });

  it('an already-aborted signal throws even when the lock is free', async () => {
    await run(async () => {
      const lock = new Lock();
      const reason = new Error('gone');
      const t = createTask(K.co(() => lock.acquire({ signal: AbortSignal.abort(reason) })));
      const err = await rejection(t);
      expect(err).toBeInstanceOf(CancelledError);
      expect(err.message).toBe(String(reason));
      expect(lock.locked()).toBe(false);
    });
  });

  it('aborting the signal after the lock was handed over keeps the lock', async () => {
    await run(async () => {
      const lock = new Lock();
      await lock.acquire();
      const ac = new AbortController();
      const t = createTask(K.co(() => lock.acquire({ signal: ac.signal }), () => lock.locked()));
      await tick();
      lock.release();
      ac.abort(); // too late: the wait is over
      expect(await t).toBe(true);
      expect(lock.locked()).toBe(true);
      lock.release();
    });
  });

  it('cancelling a waiter after it was woken, before it runs', async () => {
    await run(async () => {
      const lock = new Lock();
      await lock.acquire();
      const log: string[] = [];
      const tb = createTask(
        K.co(
          () => lock.acquire(),
          () => log.push('b got it'),
          K.tryFinally([() => sleep(0), () => log.push('b slept')], () => lock.release()),
        ),
      );
      const tc = createTask(K.co(() => lock.acquire(), () => log.push('c got it'), () => lock.release()));
      await tick();
      lock.release(); // wakes b
      tb.cancel(); // before b runs
      await rejection(tb);
      await tc;
      expect(tb.cancelled()).toBe(true);
      // asyncio exactly, for both kinds: CancelledError at the wait, the lock goes to c.
      expect(log).toEqual(['c got it']);
      expect(lock.locked()).toBe(false);
      expect(lock._waiters).toEqual([]);
    });
  });
});

describe.each(LOOPS)('Lock on %s', (backend) => {
  useLoop(backend);
  it('shows its state in toString()', async () => {
    await run(async () => {
      const lock = new Lock();
      expect(String(lock)).toBe('<Lock [unlocked]>');
      await lock.acquire();
      expect(String(lock)).toBe('<Lock [locked]>');
      const t = createTask(() => lock.acquire());
      await spin();
      expect(String(lock)).toBe('<Lock [locked, waiters:1]>');
      t.cancel();
    });
  }); // CPython test_locks: test_repr

  it('release() of an unlocked lock throws RuntimeError', () => {
    const lock = new Lock();
    expect(() => lock.release()).toThrow(RuntimeError);
    expect(() => lock.release()).toThrow(/^Lock is not acquired\.$/);
  }); // CPython test_locks: test_release_not_acquired

  it('release() without waiters unlocks', async () => {
    await run(async () => {
      const lock = new Lock();
      await lock.acquire();
      expect(lock.locked()).toBe(true);
      lock.release();
      expect(lock.locked()).toBe(false);
    });
  }); // CPython test_locks: test_release_no_waiters

  it('refuses a signal that is not an AbortSignal, and options that are not an object', () => {
    const lock = new Lock();
    expect(() => lock.acquire({ signal: 'stop' as never })).toThrow(TypeError);
    expect(() => lock.acquire({ signal: {} as never })).toThrow(/^Expected "signal" to be an AbortSignal, got an instance of Object$/);
    expect(() => lock.acquire(null as never)).toThrow(/"options"/);
    expect(lock.locked()).toBe(false);
  });

  it('throws RuntimeError when waiting in another loop than the first', async () => {
    const other = newEventLoop();
    try {
      await run(async () => {
        const lock = new Lock();
        lock._loop = other; // private API, as CPython's test
        await asyncWith(lock, async () => {
          // Acquired on the fast path, without touching any loop.
          const cond = new Condition(lock);
          // cond.acquire() has to wait on the lock, and finds the mismatch.
          const err = await rejection(cond.acquire());
          expect(err).toBeInstanceOf(RuntimeError);
          expect(err.message).toMatch(/is bound to a different event loop$/);
        });
        const lock2 = new Lock();
        await asyncWith(lock2, async () => {
          const cond = new Condition(lock2);
          cond._loop = other;
          const err = await rejection(cond.wait());
          expect(err).toBeInstanceOf(RuntimeError);
          expect(err.message).toBe('<Condition [locked]> is bound to a different event loop');
          expect(lock2.locked()).toBe(true);
        });
      });
    } finally {
      other.close();
    }
  }); // CPython test_locks: test_ambiguous_loops
});

// ---------------------------------------------------------------- Event

describe.each(eachLoop(KINDS))('[%s] Event with %s tasks', (backend, kind, K) => {
  useLoop(backend);
  const tick = (n = 1) => spin(n * K.passes);
  it('wakes every waiter on set()', async () => {
    await run(async () => {
      const ev = new Event();
      expect(ev.isSet()).toBe(false);
      const result: number[] = [];
      const c = (n: number) => K.co(() => ev.wait(), (ok) => ok && result.push(n), () => undefined);
      const t1 = createTask(c(1));
      const t2 = createTask(c(2));
      await tick();
      expect(result).toEqual([]);

      const t3 = createTask(c(3));
      ev.set();
      await tick();
      // Generator tasks resume in the next pass, after t3's first step, as
      // in asyncio; async functions resume in the microtasks right after set().
      expect(result).toEqual(kind === 'generator' ? [3, 1, 2] : [1, 2, 3]);
      for (const t of [t1, t2, t3]) {
        expect(t.done()).toBe(true);
        expect(t.result()).toBeUndefined();
      }
    });
  }); // CPython test_locks: test_wait

  it('removes a cancelled waiter', async () => {
    await run(async () => {
      const ev = new Event();
      const w = createTask(K.co(() => ev.wait()));
      getRunningLoop().callSoon(() => w.cancel());
      expect(await rejection(w)).toBeInstanceOf(CancelledError);
      expect(ev._waiters).toEqual([]);
    });
  }); // CPython test_locks: test_wait_cancel

  it('a waiter woken by set() returns even if clear() follows', async () => {
    await run(async () => {
      const ev = new Event();
      const result: number[] = [];
      const t = createTask(K.co(() => ev.wait(), (ok) => ok && result.push(1), () => true));
      await tick();
      expect(result).toEqual([]);

      ev.set();
      ev.clear();
      expect(ev.isSet()).toBe(false);
      ev.set();
      ev.set();
      expect(ev._waiters.length).toBe(1);

      await tick();
      expect(result).toEqual([1]);
      expect(ev._waiters.length).toBe(0);
      expect(t.result()).toBe(true);
    });
  }); // CPython test_locks: test_clear_with_waiters

  it('aborting the signal cancels the wait', async () => {
    await run(async () => {
      const ev = new Event();
      const ac = new AbortController();
      const t = createTask(K.co(() => ev.wait({ signal: ac.signal })));
      const other = createTask(K.co(() => ev.wait()));
      await tick();
      ac.abort('stop');
      const err = await rejection(t);
      expect(err).toBeInstanceOf(CancelledError);
      expect(err.message).toBe('stop');
      expect(ev._waiters.length).toBe(1);
      ev.set();
      expect(await other).toBe(true);
    });
  });
});

describe.each(LOOPS)('Event on %s', (backend) => {
  useLoop(backend);
  it('shows its state in toString()', () => {
    const ev = new Event();
    expect(String(ev)).toBe('<Event [unset]>');
    ev.set();
    expect(String(ev)).toBe('<Event [set]>');
    ev._waiters.push(null as never);
    expect(String(ev)).toBe('<Event [set, waiters:1]>');
  }); // CPython test_locks: test_repr

  it('wait() on a set event returns true at once', async () => {
    await run(async () => {
      const ev = new Event();
      ev.set();
      expect(await ev.wait()).toBe(true);
    });
  }); // CPython test_locks: test_wait_on_set

  it('clear() resets the flag', () => {
    const ev = new Event();
    expect(ev.isSet()).toBe(false);
    ev.set();
    expect(ev.isSet()).toBe(true);
    ev.clear();
    expect(ev.isSet()).toBe(false);
  }); // CPython test_locks: test_clear

  it('refuses a signal that is not an AbortSignal', () => {
    expect(() => new Event().wait({ signal: 42 as never })).toThrow(/^Expected "signal" to be an AbortSignal, got 42$/);
  });
});

// ---------------------------------------------------------------- Condition

describe.each(eachLoop(KINDS))('[%s] Condition with %s tasks', (backend, kind, K) => {
  useLoop(backend);
  const tick = (n = 1) => spin(n * K.passes);
  const waiter = (cond: Condition, result: number[], n: number, release = false) =>
    K.co(
      () => cond.acquire(),
      () => cond.wait(),
      (ok) => {
        if (ok) {
          result.push(n);
          if (release) cond.release();
        }
      },
      () => true,
    );

  it('wakes waiters with notify(), each once it gets the lock', async () => {
    await run(async () => {
      const cond = new Condition();
      const result: number[] = [];
      const t1 = createTask(waiter(cond, result, 1));
      const t2 = createTask(waiter(cond, result, 2));
      const t3 = createTask(waiter(cond, result, 3));
      await tick();
      expect(result).toEqual([]);
      expect(cond.locked()).toBe(false);

      expect(await cond.acquire()).toBe(true);
      cond.notify();
      await tick();
      expect(result).toEqual([]);
      expect(cond.locked()).toBe(true);

      cond.release();
      await tick();
      expect(result).toEqual([1]);
      expect(cond.locked()).toBe(true);

      cond.notify(2);
      await tick();
      expect(result).toEqual([1]);
      expect(cond.locked()).toBe(true);

      cond.release();
      await tick();
      expect(result).toEqual([1, 2]);
      expect(cond.locked()).toBe(true);

      cond.release();
      await tick();
      expect(result).toEqual([1, 2, 3]);
      expect(cond.locked()).toBe(true);
      for (const t of [t1, t2, t3]) expect(t.result()).toBe(true);
    });
  }); // CPython test_locks: test_wait

  it('re-acquires the lock when the wait is cancelled', async () => {
    await run(async () => {
      const cond = new Condition();
      await cond.acquire();
      const w = createTask(K.co(() => cond.wait()));
      getRunningLoop().callSoon(() => w.cancel());
      expect(await rejection(w)).toBeInstanceOf(CancelledError);
      expect(cond._waiters).toEqual([]);
      expect(cond.locked()).toBe(true);
    });
  }); // CPython test_locks: test_wait_cancel

  it('a notified waiter whose lock is contested ends with the lock', async () => {
    await run(async () => {
      const cond = new Condition();
      await cond.acquire();
      expect(cond.locked()).toBe(true);
      const waitTask = createTask(K.co(() => cond.wait()));
      await tick();
      expect(cond.locked()).toBe(false);

      // Notify, but contest the lock before cancelling.
      await cond.acquire();
      expect(cond.locked()).toBe(true);
      cond.notify();
      getRunningLoop().callSoon(() => waitTask.cancel());
      getRunningLoop().callSoon(() => cond.release());
      try {
        await waitTask;
      } catch (e) {
        expect(e).toBeInstanceOf(CancelledError);
      }
      expect(cond.locked()).toBe(true);
    });
  }); // CPython test_locks: test_wait_cancel_contested

  it('a waiter cancelled after notify() while re-acquiring ends cancelled', async () => {
    await run(async () => {
      let waited = false;
      const cond = new Condition();
      const w = createTask(
        K.co(
          K.with(
            cond,
            () => (waited = true),
            () => cond.wait(),
          ),
        ),
      );
      await tick(); // start waiting
      await cond.acquire();
      cond.notify();
      await tick(); // get to acquire()
      w.cancel();
      await tick(); // activate cancellation
      cond.release();
      await tick(); // cancellation should occur
      expect(w.cancelled()).toBe(true);
      expect(waited).toBe(true);
    });
  }); // CPython test_locks: test_wait_cancel_after_notify

  it('waitFor() waits until the predicate holds', async () => {
    await run(async () => {
      const cond = new Condition();
      let presult = false;
      const result: number[] = [];
      const t = createTask(
        K.co(
          () => cond.acquire(),
          () => cond.waitFor(() => presult),
          (ok) => {
            if (ok) {
              result.push(1);
              cond.release();
            }
          },
          () => true,
        ),
      );
      await tick();
      expect(result).toEqual([]);

      await cond.acquire();
      cond.notify();
      cond.release();
      await tick();
      expect(result).toEqual([]);

      presult = true;
      await cond.acquire();
      cond.notify();
      cond.release();
      await tick();
      expect(result).toEqual([1]);
      expect(t.result()).toBe(true);
    });
  }); // CPython test_locks: test_wait_for

  it('notify(n) wakes at most n waiters', async () => {
    await run(async () => {
      const cond = new Condition();
      const result: number[] = [];
      const tasks = [1, 2, 3].map((n) => createTask(waiter(cond, result, n, true)));
      await tick();
      expect(result).toEqual([]);

      await cond.acquire();
      cond.notify(1);
      cond.release();
      await tick();
      expect(result).toEqual([1]);

      await cond.acquire();
      cond.notify(1);
      cond.notify(2048);
      cond.release();
      await tick();
      expect(result).toEqual([1, 2, 3]);
      for (const t of tasks) expect(t.result()).toBe(true);
    });
  }); // CPython test_locks: test_notify

  it('notifyAll() wakes every waiter', async () => {
    await run(async () => {
      const cond = new Condition();
      const result: number[] = [];
      const tasks = [1, 2].map((n) => createTask(waiter(cond, result, n, true)));
      await tick();
      expect(result).toEqual([]);

      await cond.acquire();
      cond.notifyAll();
      cond.release();
      await tick();
      expect(result).toEqual([1, 2]);
      for (const t of tasks) expect(t.result()).toBe(true);
    });
  }); // CPython test_locks: test_notify_all

  it('rethrows the CancelledError received while waiting for the wakeup unchanged', async () => {
    await run(async () => {
      const cond = new Condition();
      let raised: unknown = null;
      const task = createTask(
        K.co(
          K.with(
            cond,
            K.catching(
              CancelledError,
              (e) => {
                raised = e;
                throw e;
              },
              () => cond.waitFor(() => false),
            ),
          ),
        ),
      );
      await tick();
      task.cancel('foo');
      const err = await rejection(task);
      expect(err).toBeInstanceOf(CancelledError);
      expect(err.message).toBe('foo');
      expect(err).toBe(raised);
      expect(cond.locked()).toBe(false);
    });
  }); // CPython test_locks: test_cancelled_error_wakeup

  it('rethrows the CancelledError received while re-acquiring the lock unchanged', async () => {
    await run(async () => {
      const cond = new Condition();
      let wake = false;
      let raised: unknown = null;
      const task = createTask(
        K.co(
          K.with(
            cond,
            K.catching(
              CancelledError,
              (e) => {
                raised = e;
                throw e;
              },
              () => cond.waitFor(() => wake),
            ),
          ),
        ),
      );
      await tick();
      await cond.acquire();
      wake = true;
      cond.notify();
      await tick();
      // The task now re-acquires the lock: cancel it there.
      task.cancel('foo');
      cond.release();
      const err = await rejection(task);
      expect(err).toBeInstanceOf(CancelledError);
      expect(err.message).toBe('foo');
      expect(err).toBe(raised);
    });
  }); // CPython test_locks: test_cancelled_error_re_aquire

  for (const relock of [false, true]) {
    it(`a waiter cancelled as notify() wakes it passes the wakeup on (${relock ? 'while re-acquiring' : 'before it runs'})`, async () => {
      await run(async () => {
        const cond = new Condition();
        let state = 0;
        const consumer = K.co(
          K.with(cond, function loop(): unknown {
            // while (true) { await waitFor(state != 0); if (state < 0) return; state-- }
            return K.co(
              () => cond.waitFor(() => state !== 0),
              () => (state < 0 ? undefined : (state--, loop())),
            )();
          }),
        );
        const c = [createTask(consumer), createTask(consumer)];
        await tick(); // let them settle
        await asyncWith(cond, async () => {
          // Produce one item and wake up one consumer.
          state += 1;
          cond.notify(1);
          if (relock) await tick(); // it wakes up and waits for the lock
          // Cancel it: the notification must not be lost with it.
          c[0].cancel();
          try {
            await asyncWith(timeout(1), async () => {
              await cond.waitFor(() => state === 0);
            });
          } catch (e) {
            if (!(e instanceof TimeoutError)) throw e;
          }
          expect(state).toBe(0);
          // Clean up.
          state = -1;
          cond.notifyAll();
        });
        await c[1];
        expect(await rejection(c[0])).toBeInstanceOf(CancelledError);
      });
    }); // CPython test_locks: test_cancelled_wakeup, test_cancelled_wakeup_relock
  }

  it('aborting the signal cancels the wait and re-acquires the lock first', async () => {
    await run(async () => {
      const cond = new Condition();
      const ac = new AbortController();
      const seen: boolean[] = [];
      const t = createTask(
        K.co(
          () => cond.acquire(),
          K.catching(
            CancelledError,
            (e) => {
              seen.push(cond.locked());
              cond.release();
              return e.message;
            },
            () => cond.wait({ signal: ac.signal }),
          ),
        ),
      );
      await tick();
      expect(cond.locked()).toBe(false);
      await cond.acquire(); // the lock is contested while the signal aborts
      ac.abort('bye');
      await tick();
      expect(t.done()).toBe(false);
      cond.release();
      expect(await t).toBe('bye');
      expect(seen).toEqual([true]);
      expect(cond._waiters).toEqual([]);
      expect(cond.locked()).toBe(false);
    });
  });

  it('waitFor() with an aborted signal waits for a wakeup, then throws', async () => {
    await run(async () => {
      const cond = new Condition();
      let ready = false;
      const ac = new AbortController();
      const t = createTask(K.co(K.with(cond, () => cond.waitFor(() => ready, { signal: ac.signal }))));
      await tick();
      ac.abort();
      const err = await rejection(t);
      expect(err).toBeInstanceOf(CancelledError);
      expect(err.message).toMatch(/AbortError/);
      expect(cond.locked()).toBe(false);
      ready = true;
    });
  });
});

describe.each(LOOPS)('Condition on %s', (backend) => {
  useLoop(backend);
  it('wait() without the lock throws RuntimeError', async () => {
    await run(async () => {
      const cond = new Condition();
      const err = await rejection(cond.wait());
      expect(err).toBeInstanceOf(RuntimeError);
      expect(err.message).toBe('cannot wait on un-acquired lock');
    });
  }); // CPython test_locks: test_wait_unacquired

  it('waitFor() without the lock returns a true predicate, else throws', async () => {
    await run(async () => {
      const cond = new Condition();
      expect(await cond.waitFor(() => [1, 2, 3])).toEqual([1, 2, 3]);
      expect(await rejection(cond.waitFor(() => false))).toBeInstanceOf(RuntimeError);
    });
  }); // CPython test_locks: test_wait_for_unacquired

  it('notify() without the lock throws RuntimeError', () => {
    const cond = new Condition();
    expect(() => cond.notify()).toThrow(RuntimeError);
    expect(() => cond.notify()).toThrow(/^cannot notify on un-acquired lock$/);
  }); // CPython test_locks: test_notify_unacquired

  it('notifyAll() without the lock throws RuntimeError', () => {
    const cond = new Condition();
    expect(() => cond.notifyAll()).toThrow(RuntimeError);
  }); // CPython test_locks: test_notify_all_unacquired

  it('shows its state in toString()', async () => {
    await run(async () => {
      const cond = new Condition();
      expect(String(cond)).toBe('<Condition [unlocked]>');
      await cond.acquire();
      expect(String(cond)).toBe('<Condition [locked]>');
      cond._waiters.push(null as never);
      expect(String(cond)).toBe('<Condition [locked, waiters:1]>');
      cond._waiters.push(null as never);
      expect(String(cond)).toBe('<Condition [locked, waiters:2]>');
    });
  }); // CPython test_locks: test_repr

  it('works as an async context manager', async () => {
    await run(async () => {
      const cond = new Condition();
      expect(cond.locked()).toBe(false);
      await asyncWith(cond, async () => {
        expect(cond.locked()).toBe(true);
      });
      expect(cond.locked()).toBe(false);
    });
  }); // CPython test_locks: test_context_manager

  it('works on a given lock', async () => {
    await run(async () => {
      const f = async (lock?: Lock, cond?: Condition): Promise<void> => {
        lock ??= new Lock();
        cond ??= new Condition(lock);
        expect(cond._lock).toBe(lock);
        expect(lock.locked()).toBe(false);
        expect(cond.locked()).toBe(false);
        await asyncWith(cond, async () => {
          expect(lock.locked()).toBe(true);
          expect(cond.locked()).toBe(true);
        });
        expect(lock.locked()).toBe(false);
        expect(cond.locked()).toBe(false);
        await asyncWith(lock, async () => {
          expect(lock.locked()).toBe(true);
          expect(cond.locked()).toBe(true);
        });
        expect(lock.locked()).toBe(false);
        expect(cond.locked()).toBe(false);
      };
      await f();
      await f(new Lock());
      const lock = new Lock();
      await f(lock, new Condition(lock));
    });
  }); // CPython test_locks: test_explicit_lock

  it('a timed-out wait re-acquires the lock', async () => {
    await run(async () => {
      const condition = new Condition();
      await asyncWith(condition, async () => {
        expect(await rejection(waitFor(() => condition.wait(), 0.05))).toBeInstanceOf(TimeoutError);
        expect(condition.locked()).toBe(true);
      });
      expect(condition.locked()).toBe(false);
    });
  }); // CPython test_locks: test_timeout_in_block

  it('refuses a lock that is not a Lock, a predicate that is not a function, a bad n', () => {
    expect(() => new Condition({} as never)).toThrow(/^Expected "lock" to be a Lock, got an instance of Object$/);
    expect(() => new Condition(new Semaphore() as never)).toThrow(TypeError);
    const cond = new Condition();
    expect(() => cond.waitFor(true as never)).toThrow(/^Expected "predicate" to be a function, got true$/);
    expect(() => cond.notify('2' as never)).toThrow(TypeError);
    expect(() => cond.wait({ signal: 'x' as never })).toThrow(TypeError);
  });
});

// ---------------------------------------------------------------- Semaphore

describe.each(eachLoop(KINDS))('[%s] Semaphore with %s tasks', (backend, kind, K) => {
  useLoop(backend);
  const tick = (n = 1) => spin(n * K.passes);
  it('lets value tasks in and queues the rest', async () => {
    await run(async () => {
      const sem = new Semaphore(3);
      const result: number[] = [];
      expect(await sem.acquire()).toBe(true);
      expect(await sem.acquire()).toBe(true);
      expect(sem.locked()).toBe(false);

      const c = (n: number) => K.co(() => sem.acquire(), () => result.push(n), () => true);
      const t1 = createTask(c(1));
      const t2 = createTask(c(2));
      const t3 = createTask(c(3));
      await tick();
      expect(result).toEqual([1]);
      expect(sem.locked()).toBe(true);
      expect(sem._waiters!.length).toBe(2);
      expect(sem._value).toBe(0);

      const t4 = createTask(c(4));
      sem.release();
      sem.release();
      expect(sem._value).toBe(0);

      await tick();
      expect(sem._value).toBe(0);
      expect(result.length).toBe(3);
      expect(sem.locked()).toBe(true);
      expect(sem._waiters!.length).toBe(1);
      expect(t1.result()).toBe(true);
      const race = [t2, t3, t4];
      expect(race.filter((t) => t.done() && t.result()).length).toBe(2);

      sem.release();
      await gather(race);
    });
  }); // CPython test_locks: test_acquire

  it('leaves no pending waiter when a waiting acquire is cancelled', async () => {
    await run(async () => {
      const sem = new Semaphore();
      await sem.acquire();
      const acquire = createTask(K.co(() => sem.acquire()));
      getRunningLoop().callSoon(() => acquire.cancel());
      expect(await rejection(acquire)).toBeInstanceOf(CancelledError);
      expect(sem._waiters!.every((w) => w.done())).toBe(true);
    });
  }); // CPython test_locks: test_acquire_cancel

  it('passes a release on past waiters cancelled before they were woken', async () => {
    await run(async () => {
      const sem = new Semaphore(0);
      const [t1, t2, t3, t4] = [1, 2, 3, 4].map(() => createTask(K.co(() => sem.acquire())));
      await tick();
      t1.cancel();
      t2.cancel();
      sem.release();
      await tick(2);
      expect([t3, t4].filter((t) => t.done()).length).toBe(1);
      expect(t3.done()).toBe(true);
      expect(t4.done()).toBe(false);
      t3.cancel();
      t4.cancel();
      await tick();
    });
  }); // CPython test_locks: test_acquire_cancel_before_awoken

  it('does not hang when the first waiter is cancelled', async () => {
    await run(async () => {
      const sem = new Semaphore(0);
      const t1 = createTask(K.co(() => sem.acquire()));
      const t2 = createTask(K.co(() => sem.acquire()));
      await tick();
      t1.cancel();
      sem.release();
      await tick(2);
      expect(sem.locked()).toBe(true);
      expect(t2.done()).toBe(true);
    });
  }); // CPython test_locks: test_acquire_hang

  it('does not leak the unit of a waiter cancelled after it was woken', async () => {
    await run(async () => {
      const sem = new Semaphore(1);
      let t2: Task<unknown> | null = null;
      const t1 = createTask(
        K.co(
          K.with(sem, () => sleep(0)),
          () => t2!.cancel(),
          () => null,
        ),
      );
      const ran: string[] = [];
      t2 = createTask(K.co(K.with(sem, () => ran.push('c2'))));
      const [r1, r2] = await gather([t1, t2], { returnExceptions: true });
      expect(r1).toBeNull();
      expect(r2).toBeInstanceOf(CancelledError);
      // c1's release wakes t2, then c1 cancels it: a generator gets the
      // CancelledError at its wait, as in asyncio. An async t2 resumes in
      // the promise jobs right after the release, before c1 gets to
      // cancel(): it holds the semaphore once, gives it back, and is
      // cancelled as it ends. Either way no unit leaks.
      expect(ran).toEqual(kind === 'generator' ? [] : ['c2']);
      await waitFor(() => sem.acquire(), 1);
      expect(sem.locked()).toBe(true);
    });
  }); // CPython test_locks: test_acquire_no_hang

  it('serves waiters in FIFO order', async () => {
    await run(async () => {
      const sem = new Semaphore(1);
      const result: string[] = [];
      const coro = (tag: string) =>
        K.co(
          () => sem.acquire(),
          () => result.push(`${tag}_1`),
          () => sleep(0.01),
          () => sem.release(),
          () => sem.acquire(),
          () => result.push(`${tag}_2`),
          () => sleep(0.01),
          () => sem.release(),
        );
      await asyncWith(new TaskGroup(), async (tg) => {
        tg.createTask(coro('c1'));
        tg.createTask(coro('c2'));
        tg.createTask(coro('c3'));
      });
      expect(result).toEqual(['c1_1', 'c2_1', 'c3_1', 'c1_2', 'c2_2', 'c3_2']);
    });
  }); // CPython test_locks: test_acquire_fifo_order

  it('a task releasing and re-acquiring queues behind earlier waiters', async () => {
    await run(async () => {
      const sem = new Semaphore(1);
      const result: number[] = [];
      const t1 = createTask(K.co(() => sem.acquire(), () => result.push(1), () => true));
      const t2 = createTask(
        K.co(
          () => sem.acquire(),
          () => result.push(2),
          () => sem.release(),
          () => sem.acquire(),
          () => result.push(4),
          () => true,
        ),
      );
      const t3 = createTask(K.co(() => sem.acquire(), () => result.push(3), () => true));
      await tick();
      sem.release();
      sem.release();
      await gather([t1, t2, t3]);
      expect(result).toEqual([1, 2, 3, 4]);
    });
  }); // CPython test_locks: test_acquire_fifo_order_2

  it('skips a cancelled waiter', async () => {
    await run(async () => {
      const sem = new Semaphore(0);
      const result: number[] = [];
      const c = (n: number) => K.co(() => sem.acquire(), () => result.push(n), () => true);
      const tasks = [1, 2, 3].map((n) => createTask(c(n)));
      await tick();
      tasks[0].cancel();
      await tick();
      sem.release();
      sem.release();
      await gather(tasks, { returnExceptions: true });
      expect(result).toEqual([2, 3]);
    });
  }); // CPython test_locks: test_acquire_fifo_order_3

  // Generator tasks only: the scenario needs c1 queued before c2 runs in
  // the same pass, but an async function reaches its first wait in the
  // promise jobs after the pass, when c2 has released already.
  if (kind === 'generator') it('a successful acquire() wakes the waiters that FIFO held back', async () => {
    await run(async () => {
      const sem = new Semaphore(0);
      const result: number[] = [];
      let t4: Task<unknown> | null = null;
      const c4 = K.co(() => result.push(4), () => true);
      const t1 = createTask(
        K.co(
          () => expect(sem._value).toBe(0),
          () => sem.acquire(),
          // Every waiting task has been woken up now.
          () => expect(sem._value).toBe(0),
          // A fourth task: it runs after c3, not c2.
          () => void (t4 = createTask(c4)),
          () => result.push(1),
          () => true,
        ),
      );
      const t2 = createTask(
        K.co(
          // Released three times: for c1, c2 and c3.
          () => (sem.release(), sem.release(), sem.release()),
          () => expect(sem._value).toBe(2),
          // Locked, because c1 has not woken up yet.
          () => expect(sem.locked()).toBe(true),
          () => sem.acquire(),
          () => result.push(2),
          () => true,
        ),
      );
      const t3 = createTask(
        K.co(
          () => sem.acquire(),
          () => expect(sem.locked()).toBe(true),
          () => result.push(3),
          () => true,
        ),
      );
      await tick();
      // Three tasks are queued; the first has not woken up yet.
      expect(sem._value).toBe(2);
      expect(sem._waiters!.length).toBe(3);
      await tick();
      await gather([t1, t2, t3, t4!]);
      expect(result).toEqual([1, 2, 3, 4]);
    });
  }); // CPython test_locks: test_acquire_fifo_order_4

  it('aborting the signal cancels the wait and takes no unit', async () => {
    await run(async () => {
      const sem = new Semaphore(0);
      const ac = new AbortController();
      const t1 = createTask(K.co(() => sem.acquire({ signal: ac.signal })));
      const t2 = createTask(K.co(() => sem.acquire(), () => 't2'));
      await tick();
      ac.abort('enough');
      const err = await rejection(t1);
      expect(err).toBeInstanceOf(CancelledError);
      expect(err.message).toBe('enough');
      expect(sem._value).toBe(0);
      sem.release();
      expect(await t2).toBe('t2');
      expect(sem._value).toBe(0);
      expect(sem._waiters).toEqual([]);
    });
  });

  it('works as an async context manager', async () => {
    await run(async () => {
      const sem = new BoundedSemaphore(2);
      const inside = await createTask(K.co(K.with(sem, () => sem._value)));
      expect(inside).toBe(1);
      expect(sem._value).toBe(2);
    });
  });
});

describe.each(LOOPS)('Semaphore on %s', (backend) => {
  useLoop(backend);
  it('starts locked with value 0', () => {
    expect(new Semaphore(0).locked()).toBe(true);
  }); // CPython test_locks: test_initial_value_zero

  it('shows its state in toString()', async () => {
    await run(async () => {
      const sem = new Semaphore();
      expect(String(sem)).toBe('<Semaphore [unlocked, value:1]>');
      await sem.acquire();
      expect(String(sem)).toBe('<Semaphore [locked]>');
      sem._waiters ??= [];
      sem._waiters.push(getRunningLoop().createFuture());
      expect(String(sem)).toBe('<Semaphore [locked, waiters:1]>');
      sem._waiters.push(getRunningLoop().createFuture());
      expect(String(sem)).toBe('<Semaphore [locked, waiters:2]>');
    });
  }); // CPython test_locks: test_repr

  it('defaults to value 1', () => {
    const sem = new Semaphore();
    expect(sem._value).toBe(1);
    expect(sem.locked()).toBe(false);
  }); // CPython test_locks: test_semaphore

  it('refuses a negative value', () => {
    expect(() => new Semaphore(-1)).toThrow(RangeError);
    expect(() => new Semaphore(-1)).toThrow(/^Semaphore initial value must be >= 0, got -1$/);
    expect(() => new BoundedSemaphore(-1)).toThrow(/^Semaphore initial value must be >= 0, got -1$/);
  }); // CPython test_locks: test_semaphore_value

  it('refuses a value that is not an integer', () => {
    expect(() => new Semaphore(1.5)).toThrow(RangeError);
    expect(() => new Semaphore(1.5)).toThrow(/^Expected "value" to be an integer, got 1.5$/);
    expect(() => new Semaphore('2' as never)).toThrow(TypeError);
    expect(() => new Semaphore(Number.NaN)).toThrow(RangeError);
  });

  it('BoundedSemaphore refuses to be released above its initial value', async () => {
    const sem = new BoundedSemaphore();
    expect(() => sem.release()).toThrow(RangeError);
    expect(() => sem.release()).toThrow(/^BoundedSemaphore released too many times$/);
    await run(async () => {
      const b = new BoundedSemaphore(2);
      await b.acquire();
      b.release();
      expect(() => b.release()).toThrow(/^BoundedSemaphore released too many times$/);
      expect(b._value).toBe(2);
    });
  }); // CPython test_locks: test_release_not_acquired

  it('release() without waiters unlocks', async () => {
    await run(async () => {
      const sem = new Semaphore();
      await sem.acquire();
      expect(sem.locked()).toBe(true);
      sem.release();
      expect(sem.locked()).toBe(false);
    });
  }); // CPython test_locks: test_release_no_waiters

  it('a plain Semaphore can be released above its initial value', () => {
    const sem = new Semaphore(1);
    sem.release();
    expect(sem._value).toBe(2);
  });
});

// ---------------------------------------------------------------- Barrier

const N = 5;

/** Runs `n` tasks of `coro` and gathers their results. */
async function gatherTasks(n: number, coro: () => any): Promise<unknown[]> {
  const tasks = Array.from({ length: n }, () => createTask(coro));
  return gather(tasks);
}

describe.each(eachLoop(KINDS))('[%s] Barrier with %s tasks', (backend, kind, K) => {
  useLoop(backend);
  const tick = (n = 1) => spin(n * K.passes);
  it('gives each task a distinct index as a context manager', async () => {
    await run(async () => {
      const barrier = new Barrier(3);
      const results: number[] = [];
      await gatherTasks(3, K.co(K.with(barrier, (i: number) => results.push(i))));
      expect(results.sort()).toEqual([0, 1, 2]);
      expect(barrier.nWaiting).toBe(0);
      expect(barrier.broken).toBe(false);
    });
  }); // CPython test_locks: test_context_manager

  it('passes twice in a row', async () => {
    await run(async () => {
      const barrier = new Barrier(N);
      const results: boolean[] = [];
      await gatherTasks(
        N,
        K.co(
          K.with(
            barrier,
            () => results.push(true),
            K.with(barrier, () => results.push(false)),
          ),
        ),
      );
      expect(results.length).toBe(N * 2);
      expect(results.filter((r) => r).length).toBe(N);
      expect(barrier.nWaiting).toBe(0);
      expect(barrier.broken).toBe(false);
    });
  }); // CPython test_locks: test_filling_tasks_wait_twice

  it('returns the index from the second pass', async () => {
    await run(async () => {
      const barrier = new Barrier(N);
      const res = await gatherTasks(N, K.co(K.with(barrier, K.with(barrier, (i: number) => i))));
      expect((res as number[]).sort()).toEqual([0, 1, 2, 3, 4]);
      expect(barrier.nWaiting).toBe(0);
    });
  }); // CPython test_locks: test_filling_tasks_check_return_value

  it('a cancelled waiter leaves the barrier', async () => {
    await run(async () => {
      const barrier = new Barrier(3);
      const results: boolean[] = [];
      const coro = K.co(() => barrier.wait(), () => results.push(true));
      const t1 = createTask(coro);
      await tick();
      expect(barrier.nWaiting).toBe(1);
      const t2 = createTask(coro);
      await tick();
      expect(barrier.nWaiting).toBe(2);

      t1.cancel();
      await tick();
      expect(barrier.nWaiting).toBe(1);
      expect(await rejection(t1)).toBeInstanceOf(CancelledError);
      expect(t1.cancelled()).toBe(true);

      const t3 = createTask(coro);
      await tick();
      expect(barrier.nWaiting).toBe(2);
      const t4 = createTask(coro);
      await gather([t2, t3, t4]);
      expect(results).toEqual([true, true, true]);
      expect(barrier.nWaiting).toBe(0);
      expect(barrier.broken).toBe(false);
    });
  }); // CPython test_locks: test_filling_tasks_cancel_one

  it('aborting the signal takes one waiter out, the others keep waiting', async () => {
    await run(async () => {
      const barrier = new Barrier(2);
      const ac = new AbortController();
      const t1 = createTask(K.co(() => barrier.wait({ signal: ac.signal })));
      const t2 = createTask(K.co(() => barrier.wait()));
      await tick();
      // Both are in: the barrier tripped in t2's wait.
      expect(t1.done() || t2.done()).toBe(true);
      await gather([t1, t2]);

      ac.abort();
      const t3 = createTask(K.co(() => barrier.wait({ signal: ac.signal })));
      const t4 = createTask(K.co(() => barrier.wait()));
      // t3's signal is aborted already: it never counts as a party.
      expect((await rejection(t3)).message).toMatch(/AbortError/);
      await tick();
      expect(barrier.nWaiting).toBe(1);
      const ac2 = new AbortController();
      const t5 = createTask(K.co(() => barrier.wait({ signal: ac2.signal })));
      expect((await gather([t4, t5])).sort()).toEqual([0, 1]);

      const t6 = createTask(K.co(() => barrier.wait({ signal: ac2.signal })));
      await tick();
      expect(barrier.nWaiting).toBe(1);
      ac2.abort('late');
      expect((await rejection(t6)).message).toBe('late');
      expect(barrier.nWaiting).toBe(0);
      expect(barrier.broken).toBe(false);
    });
  });

  it('reset() and abort() make waiters throw BrokenBarrierError', async () => {
    await run(async () => {
      const barrier = new Barrier(3);
      const caught: string[] = [];
      const coro = K.co(
        K.catching(
          BrokenBarrierError,
          (e) => caught.push(e.message),
          () => barrier.wait(),
        ),
      );
      const tasks = [createTask(coro), createTask(coro)];
      await tick();
      await barrier.reset();
      await gather(tasks);
      expect(caught).toEqual(['Abort or reset of barrier', 'Abort or reset of barrier']);
      expect(barrier.broken).toBe(false);

      const more = [createTask(coro), createTask(coro)];
      await tick();
      await barrier.abort();
      await gather(more);
      expect(caught.slice(2)).toEqual(['Abort or reset of barrier', 'Abort or reset of barrier']);
      expect(barrier.broken).toBe(true);
      await createTask(coro);
      expect(caught[4]).toBe('Barrier aborted');
    });
  });
});

// These scenarios depend on how the tasks interleave at each pass, so they
// run as generator coroutines, which step exactly as asyncio's tasks do. An
// async function resumes in promise jobs, so several asyncio passes of
// barrier traffic can collapse into one, and a state such as "draining" may
// never be visible between them.
describe.each(LOOPS)('Barrier (generator tasks, asyncio-exact interleaving) on %s', (backend) => {
  useLoop(backend);
  const waitTask = (barrier: Barrier) =>
    createTask(function* () {
      return yield* barrier.wait();
    });

  it('starts filling', () => {
    const barrier = new Barrier(N);
    expect(String(barrier)).toContain('filling');
    expect(String(barrier)).toBe('<Barrier [filling, waiters:0/5]>');
  }); // CPython test_locks: test_barrier

  it('shows its state in toString()', async () => {
    await run(async () => {
      const barrier = new Barrier(N);
      expect(String(barrier)).toBe('<Barrier [filling, waiters:0/5]>');
      const waiters: Task<unknown>[] = [];
      const incr = 2;
      for (let i = 0; i < incr; i++) waiters.push(waitTask(barrier));
      await spin();
      expect(String(barrier)).toBe(`<Barrier [filling, waiters:${incr}/${N}]>`);

      // Create the missing waiters.
      for (let i = 0; i < barrier.parties - barrier.nWaiting; i++) waiters.push(waitTask(barrier));
      await spin();
      expect(String(barrier)).toMatch(/^<Barrier \[draining, waiters:0\/5\]>$/);

      // Add some waiters, and reset.
      for (let i = 0; i < incr; i++) waiters.push(waitTask(barrier));
      await spin();
      await barrier.reset();
      expect(String(barrier)).toMatch(/^<Barrier \[resetting, waiters:0\/5\]>$/);

      // Add some waiters again, and abort.
      for (let i = 0; i < incr; i++) waiters.push(waitTask(barrier));
      await spin();
      await barrier.abort();
      expect(String(barrier)).toBe('<Barrier [broken]>');
      expect(barrier.broken).toBe(true);

      await gather(waiters, { returnExceptions: true });
    });
  }); // CPython test_locks: test_repr

  it('refuses parties < 1 or not an integer', () => {
    expect(() => new Barrier(0)).toThrow(RangeError);
    expect(() => new Barrier(-4)).toThrow(/^parties must be >= 1, got -4$/);
    expect(() => new Barrier(2.5)).toThrow(/^Expected "parties" to be an integer, got 2.5$/);
    expect(() => new Barrier(undefined as never)).toThrow(TypeError);
    expect(new Barrier(N)).toBeInstanceOf(Barrier);
    expect(new Barrier(N).parties).toBe(N);
  }); // CPython test_locks: test_barrier_parties

  it('one party passes at once', async () => {
    await run(async () => {
      const barrier = new Barrier(1);
      const ret = await createTask(function* () {
        return yield* asyncWith(barrier, function* (i) {
          return i === 0;
        });
      });
      expect(ret).toBe(true);
      expect(barrier.nWaiting).toBe(0);
      expect(barrier.broken).toBe(false);
    });
  }); // CPython test_locks: test_filling_one_task

  it('one party passes twice', async () => {
    await run(async () => {
      const barrier = new Barrier(1);
      const t1 = waitTask(barrier);
      await spin();
      expect(barrier.nWaiting).toBe(0);
      const t2 = waitTask(barrier);
      await spin();
      expect(t1.result()).toBe(t2.result());
      expect(t1.done()).toBe(t2.done());
      expect(barrier.nWaiting).toBe(0);
      expect(barrier.broken).toBe(false);
    });
  }); // CPython test_locks: test_filling_one_task_twice

  it('fills task by task', async () => {
    await run(async () => {
      const barrier = new Barrier(3);
      const t1 = waitTask(barrier);
      await spin();
      expect(barrier.nWaiting).toBe(1);
      expect(String(barrier)).toContain('filling');
      const t2 = waitTask(barrier);
      await spin();
      expect(barrier.nWaiting).toBe(2);
      expect(String(barrier)).toContain('filling');
      const t3 = waitTask(barrier);
      await spin();
      await wait([t1, t2, t3]);
      expect(barrier.nWaiting).toBe(0);
      expect(barrier.broken).toBe(false);
    });
  }); // CPython test_locks: test_filling_task_by_task

  it('drains: every task but the last sees it draining', async () => {
    await run(async () => {
      const barrier = new Barrier(N);
      const results: boolean[] = [];
      await gatherTasks(N, function* () {
        yield* asyncWith(barrier, function* () {
          // The state goes back to filling when the last task leaves.
          results.push(String(barrier).includes('draining'));
        });
      });
      expect(results.length).toBe(N);
      expect(results[N - 1]).toBe(false);
      expect(results.slice(0, N - 1).every((r) => r)).toBe(true);
      expect(barrier.nWaiting).toBe(0);
      expect(barrier.broken).toBe(false);
    });
  }); // CPython test_locks: test_draining_state

  it('blocks new waiters while it drains', async () => {
    await run(async () => {
      const rewait = 2;
      const barrier = new Barrier(N);
      const barrierNowaiting = new Barrier(N - rewait);
      let rewaitN = rewait;
      // Succeeds only if barrierNowaiting is waited for exactly N - rewait times.
      await gatherTasks(N, function* () {
        yield* barrier.wait();
        if (rewaitN > 0) {
          rewaitN--;
          yield* barrier.wait(); // again, only for the rewait tasks
        } else {
          yield* barrierNowaiting.wait(); // for the end of the drain
          yield* barrier.wait(); // for the other waiting tasks
        }
      });
    });
  }); // CPython test_locks: test_blocking_tasks_while_draining

  it('reset() of an empty barrier keeps it filling', async () => {
    await run(async () => {
      const barrier = new Barrier(1);
      createTask(function* () {
        yield* barrier.reset();
      });
      await spin();
      expect(barrier.nWaiting).toBe(0);
      expect(barrier.broken).toBe(false);
    });
  }); // CPython test_locks: test_reset_barrier

  it('reset() breaks the waiting tasks', async () => {
    await run(async () => {
      const barrier = new Barrier(N);
      const results: boolean[] = [];
      const tasks = Array.from({ length: N - 1 }, () =>
        createTask(function* () {
          try {
            yield* barrier.wait();
          } catch (e) {
            if (!(e instanceof BrokenBarrierError)) throw e;
            results.push(true);
          }
        }),
      );
      await spin();
      createTask(function* () {
        yield* barrier.reset();
      });
      await gather(tasks);
      expect(results).toEqual(Array(N - 1).fill(true));
      expect(barrier.nWaiting).toBe(0);
      expect(String(barrier)).not.toContain('resetting');
      expect(barrier.broken).toBe(false);
    });
  }); // CPython test_locks: test_reset_barrier_while_tasks_waiting

  it('reset() by a drained task breaks the rest', async () => {
    await run(async () => {
      const barrier = new Barrier(N);
      const results1: boolean[] = [];
      const restOfTasks = Math.floor(N / 2);
      await gatherTasks(N, function* () {
        try {
          yield* barrier.wait();
        } catch (e) {
          if (!(e instanceof BrokenBarrierError)) throw e;
          results1.push(true); // tasks still waiting
          return;
        }
        // A drained task, outside the barrier.
        if (restOfTasks === barrier._count) yield* barrier.reset();
      });
      expect(results1).toEqual(Array(restOfTasks).fill(true));
      expect(barrier.nWaiting).toBe(0);
      expect(String(barrier)).not.toContain('resetting');
      expect(barrier.broken).toBe(false);
    });
  }); // CPython test_locks: test_reset_barrier_when_tasks_half_draining

  it('reset() while half the tasks drain and half block', async () => {
    await run(async () => {
      const barrier = new Barrier(N);
      const results1: boolean[] = [];
      const results2: boolean[] = [];
      const blockingTasks = Math.floor(N / 2);
      let count = 0;
      await gatherTasks(N, function* () {
        try {
          yield* barrier.wait();
        } catch (e) {
          if (!(e instanceof BrokenBarrierError)) throw e;
          results1.push(true); // still waiting: wait again for the parties
          yield* barrier.wait();
          return;
        }
        count++;
        if (count > blockingTasks) {
          // Reset now: BrokenBarrierError for the waiting tasks.
          yield* barrier.reset();
          yield* barrier.wait();
        } else {
          try {
            yield* barrier.wait();
          } catch (e) {
            if (!(e instanceof BrokenBarrierError)) throw e;
            results2.push(true); // not here: blocked tasks go on waiting
          }
        }
      });
      expect(results1).toEqual(Array(blockingTasks).fill(true));
      expect(results2).toEqual([]);
      expect(barrier.nWaiting).toBe(0);
      expect(String(barrier)).not.toContain('resetting');
      expect(barrier.broken).toBe(false);
    });
  }); // CPython test_locks: test_reset_barrier_when_tasks_half_draining_half_blocking

  it('reset() while tasks wait, which then wait again', async () => {
    await run(async () => {
      const barrier = new Barrier(N);
      const results1: boolean[] = [];
      const results2: boolean[] = [];
      const tasks = Array.from({ length: N - 1 }, () =>
        createTask(function* () {
          try {
            yield* barrier.wait();
          } catch (e) {
            if (!(e instanceof BrokenBarrierError)) throw e;
            results1.push(true);
          } finally {
            yield* barrier.wait();
            results2.push(true);
          }
        }),
      );
      // Reset: the N - 1 waiting tasks throw BrokenBarrierError.
      createTask(function* () {
        yield* barrier.reset();
      });
      await spin();
      // Complete the waits in the `finally`.
      createTask(function* () {
        yield* asyncWith(barrier, function* () {
          results2.push(true);
        });
      });
      await gather(tasks);
      expect(barrier.broken).toBe(false);
      expect(results1).toEqual(Array(N - 1).fill(true));
      expect(results2).toEqual(Array(N).fill(true));
      expect(barrier.nWaiting).toBe(0);
    });
  }); // CPython test_locks: test_reset_barrier_while_tasks_waiting_and_waiting_again

  it('reset() while tasks drain', async () => {
    await run(async () => {
      const barrier = new Barrier(N);
      const results1: boolean[] = [];
      const results2: boolean[] = [];
      const results3: boolean[] = [];
      let count = 0;
      await gatherTasks(N, function* () {
        yield* barrier.wait();
        count++;
        if (count === N) {
          // The last task out of the barrier.
          yield* barrier.reset();
          yield* barrier.wait(); // to reach the parties
        } else {
          try {
            yield* barrier.wait(); // second wait: N - 1 tasks here
            results1.push(true);
          } catch {
            results2.push(true); // never here
          }
        }
        // Pass the barrier again: this last wait must complete.
        yield* barrier.wait();
        results3.push(true);
      });
      expect(barrier.broken).toBe(false);
      expect(results1).toEqual(Array(N - 1).fill(true));
      expect(results2).toEqual([]);
      expect(results3).toEqual(Array(N).fill(true));
      expect(barrier.nWaiting).toBe(0);
    });
  }); // CPython test_locks: test_reset_barrier_while_tasks_draining

  it('abort() breaks the barrier', async () => {
    await run(async () => {
      const barrier = new Barrier(1);
      createTask(function* () {
        yield* barrier.abort();
      });
      await spin();
      expect(barrier.nWaiting).toBe(0);
      expect(barrier.broken).toBe(true);
    });
  }); // CPython test_locks: test_abort_barrier

  it('abort() while half the tasks drain and half block', async () => {
    await run(async () => {
      const barrier = new Barrier(N);
      const results1: boolean[] = [];
      const results2: boolean[] = [];
      const blockingTasks = Math.floor(N / 2);
      let count = 0;
      await gatherTasks(N, function* () {
        try {
          yield* barrier.wait();
        } catch (e) {
          if (!(e instanceof BrokenBarrierError)) throw e;
          results1.push(true); // tasks waiting to drain
          return;
        }
        count++;
        if (count > blockingTasks) {
          yield* barrier.abort(); // BrokenBarrierError for every task
        } else {
          try {
            yield* barrier.wait();
          } catch (e) {
            if (!(e instanceof BrokenBarrierError)) throw e;
            results2.push(true); // blocked tasks, already drained
          }
        }
      });
      expect(barrier.broken).toBe(true);
      expect(results1).toEqual(Array(blockingTasks).fill(true));
      expect(results2).toEqual(Array(N - blockingTasks - 1).fill(true));
      expect(barrier.nWaiting).toBe(0);
      expect(String(barrier)).not.toContain('resetting');
    });
  }); // CPython test_locks: test_abort_barrier_when_tasks_half_draining_half_blocking

  it('abort() on an error breaks the other parties', async () => {
    await run(async () => {
      const barrier = new Barrier(N);
      const results1: boolean[] = [];
      const results2: boolean[] = [];
      class Boom extends Error {}
      await gatherTasks(N, function* () {
        try {
          yield* asyncWith(barrier, function* (i) {
            if (i === Math.floor(N / 2)) throw new Boom();
          });
          yield* asyncWith(barrier, function* () {
            results1.push(true);
          });
        } catch (e) {
          if (e instanceof BrokenBarrierError) results2.push(true);
          else if (e instanceof Boom) yield* barrier.abort();
          else throw e;
        }
      });
      expect(barrier.broken).toBe(true);
      expect(results1).toEqual([]);
      expect(results2).toEqual(Array(N - 1).fill(true));
      expect(barrier.nWaiting).toBe(0);
    });
  }); // CPython test_locks: test_abort_barrier_when_exception

  it('abort() on an error, then reset()', async () => {
    await run(async () => {
      const barrier1 = new Barrier(N);
      const barrier2 = new Barrier(N);
      const results1: boolean[] = [];
      const results2: boolean[] = [];
      const results3: boolean[] = [];
      class Boom extends Error {}
      await gatherTasks(N, function* () {
        try {
          const i = yield* barrier1.wait();
          if (i === Math.floor(N / 2)) throw new Boom();
          yield* barrier1.wait();
          results1.push(true);
        } catch (e) {
          if (e instanceof BrokenBarrierError) results2.push(true);
          else if (e instanceof Boom) yield* barrier1.abort();
          else throw e;
        }
        // Synchronize and reset the barrier: synchronize first so that
        // everyone has left it when we reset, and after so that no one
        // enters it before the reset.
        const i = yield* barrier2.wait();
        if (i === Math.floor(N / 2)) yield* barrier1.reset();
        yield* barrier2.wait();
        yield* barrier1.wait();
        results3.push(true);
      });
      expect(barrier1.broken).toBe(false);
      expect(results1).toEqual([]);
      expect(results2).toEqual(Array(N - 1).fill(true));
      expect(results3).toEqual(Array(N).fill(true));
      expect(barrier1.nWaiting).toBe(0);
    });
  }); // CPython test_locks: test_abort_barrier_when_exception_then_resetting

  it('refuses a signal that is not an AbortSignal', () => {
    const barrier = new Barrier(2);
    expect(() => barrier.wait({ signal: true as never })).toThrow(TypeError);
    expect(() => barrier.reset({ signal: 1 as never })).toThrow(TypeError);
    expect(() => barrier.abort({ signal: null as never })).toThrow(TypeError);
  });
});
