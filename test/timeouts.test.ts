/**
 * Tests for lib/timeouts.ts: Timeout, timeout(), timeoutAt().
 *
 * Ported from CPython 3.14 Lib/test/test_asyncio/test_timeouts.py. Each case
 * runs as the main task of a fresh loop (`run()`, as IsolatedAsyncioTestCase
 * does), once as an async function and once as a generator coroutine.
 *
 * JavaScript has no implicit exception context (`__context__`): the chains
 * CPython checks through `__context__` are either dropped or, where the
 * library promises an equivalent through `cause`, checked with errors that
 * set `cause` explicitly.
 */
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import {
  BaseEventLoop,
  CancelledError,
  ExceptionGroup,
  RuntimeError,
  TaskGroup,
  Timeout,
  TimeoutError,
  asyncWith,
  createTask,
  currentTask,
  getRunningLoop,
  run,
  sleep,
  timeout,
  timeoutAt,
  type Coroutine,
  type Sleep,
} from '../lib/index.js';
import { LOOPS, useLoop } from './helpers/loops.js';

// Python's builtin exceptions the CPython tests raise.
class ZeroDivisionError extends Error {
  override name = 'ZeroDivisionError';
}
class KeyError extends Error {
  override name = 'KeyError';
}
class ValueError extends Error {
  override name = 'ValueError';
}

type ErrorClass<E> = abstract new (...args: any[]) => E;

/** unittest's assertRaises: returns the error if it is a `cls`, rethrows any other. */
async function assertRaises<E>(cls: ErrorClass<E>, body: () => PromiseLike<unknown>): Promise<E> {
  try {
    await body();
  } catch (e) {
    if (e instanceof cls) return e;
    throw e;
  }
  throw new Error(`${cls.name} not raised`);
}

/** assertRaises for generator coroutines. */
function* assertRaisesG<E>(cls: ErrorClass<E>, body: () => Coroutine<unknown>): Coroutine<E> {
  try {
    yield* body();
  } catch (e) {
    if (e instanceof cls) return e;
    throw e;
  }
  throw new Error(`${cls.name} not raised`);
}

/** time.sleep(): blocks the thread, and so the loop. */
function blockFor(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

/**
 * One CPython case, written as an async function and as a generator
 * coroutine; each runs as the main task of a fresh loop.
 */
function both(
  name: string,
  bodies: {
    /** A known bug in lib/ (reported): the case runs as `it.fails`. */
    fails?: string;
    async: () => Promise<void>;
    gen: () => Coroutine<void>;
  },
): void {
  const test = bodies.fails === undefined ? it : it.fails;
  describe(name, () => {
    test('async function', async () => {
      await run(bodies.async);
    });
    test('generator coroutine', async () => {
      await run(bodies.gen());
    });
  });
}

/**
 * test_utils.await_without_task: runs an awaitable's steps from a plain
 * loop callback, outside any task, and rethrows what it threw.
 */
async function awaitWithoutTask(aw: Sleep<unknown>): Promise<void> {
  let exc: unknown = undefined;
  getRunningLoop().callSoon(() => {
    try {
      const it = aw[Symbol.iterator]();
      while (!it.next().done);
    } catch (e) {
      exc = e;
    }
  });
  await sleep(0);
  if (exc !== undefined) throw exc;
}

describe.each(LOOPS)('timeout() on %s', (backend) => {
  useLoop(backend);
  both('test_timeout_basic', {
    async: async () => {
      let cm!: Timeout;
      await assertRaises(TimeoutError, () =>
        asyncWith(timeout(0.01), async (c) => {
          cm = c;
          await sleep(10);
        }),
      );
      expect(cm.expired()).toBe(true);
    },
    *gen() {
      let cm!: Timeout;
      yield* assertRaisesG(TimeoutError, () =>
        asyncWith(timeout(0.01), function* (c) {
          cm = c;
          yield* sleep(10);
        }),
      );
      expect(cm.expired()).toBe(true);
    },
  }); // CPython test_timeouts: test_timeout_basic

  both('test_timeout_at_basic', {
    async: async () => {
      const loop = getRunningLoop();
      let cm!: Timeout;
      const deadline = loop.time() + 0.01;
      await assertRaises(TimeoutError, () =>
        asyncWith(timeoutAt(deadline), async (c) => {
          cm = c;
          await sleep(10);
        }),
      );
      expect(cm.expired()).toBe(true);
      expect(cm.when()).toBe(deadline);
    },
    *gen() {
      const loop = getRunningLoop();
      let cm!: Timeout;
      const deadline = loop.time() + 0.01;
      yield* assertRaisesG(TimeoutError, () =>
        asyncWith(timeoutAt(deadline), function* (c) {
          cm = c;
          yield* sleep(10);
        }),
      );
      expect(cm.expired()).toBe(true);
      expect(cm.when()).toBe(deadline);
    },
  }); // CPython test_timeouts: test_timeout_at_basic

  both('test_nested_timeouts', {
    async: async () => {
      const loop = getRunningLoop();
      let cancelled = false;
      let cm1!: Timeout;
      let cm2!: Timeout;
      const deadline = loop.time() + 0.01;
      await assertRaises(TimeoutError, () =>
        asyncWith(timeoutAt(deadline), async (c1) => {
          cm1 = c1;
          // Only the topmost context manager should raise TimeoutError.
          try {
            await asyncWith(timeoutAt(deadline), async (c2) => {
              cm2 = c2;
              await sleep(10);
            });
          } catch (e) {
            if (e instanceof CancelledError) cancelled = true;
            throw e;
          }
        }),
      );
      expect(cancelled).toBe(true);
      expect(cm1.expired()).toBe(true);
      expect(cm2.expired()).toBe(true);
    },
    *gen() {
      const loop = getRunningLoop();
      let cancelled = false;
      let cm1!: Timeout;
      let cm2!: Timeout;
      const deadline = loop.time() + 0.01;
      yield* assertRaisesG(TimeoutError, () =>
        asyncWith(timeoutAt(deadline), function* (c1) {
          cm1 = c1;
          try {
            yield* asyncWith(timeoutAt(deadline), function* (c2) {
              cm2 = c2;
              yield* sleep(10);
            });
          } catch (e) {
            if (e instanceof CancelledError) cancelled = true;
            throw e;
          }
        }),
      );
      expect(cancelled).toBe(true);
      expect(cm1.expired()).toBe(true);
      expect(cm2.expired()).toBe(true);
    },
  }); // CPython test_timeouts: test_nested_timeouts

  both('test_waiter_cancelled', {
    async: async () => {
      let cancelled = false;
      await assertRaises(TimeoutError, () =>
        asyncWith(timeout(0.01), async () => {
          try {
            await sleep(10);
          } catch (e) {
            if (e instanceof CancelledError) cancelled = true;
            throw e;
          }
        }),
      );
      expect(cancelled).toBe(true);
    },
    *gen() {
      let cancelled = false;
      yield* assertRaisesG(TimeoutError, () =>
        asyncWith(timeout(0.01), function* () {
          try {
            yield* sleep(10);
          } catch (e) {
            if (e instanceof CancelledError) cancelled = true;
            throw e;
          }
        }),
      );
      expect(cancelled).toBe(true);
    },
  }); // CPython test_timeouts: test_waiter_cancelled

  both('test_timeout_not_called', {
    async: async () => {
      const loop = getRunningLoop();
      let cm!: Timeout;
      await asyncWith(timeout(10), async (c) => {
        cm = c;
        await sleep(0.01);
      });
      const t1 = loop.time();
      expect(cm.expired()).toBe(false);
      expect(cm.when()).toBeGreaterThan(t1);
    },
    *gen() {
      const loop = getRunningLoop();
      let cm!: Timeout;
      yield* asyncWith(timeout(10), function* (c) {
        cm = c;
        yield* sleep(0.01);
      });
      const t1 = loop.time();
      expect(cm.expired()).toBe(false);
      expect(cm.when()).toBeGreaterThan(t1);
    },
  }); // CPython test_timeouts: test_timeout_not_called

  both('test_timeout_disabled', {
    async: async () => {
      let cm!: Timeout;
      await asyncWith(timeout(null), async (c) => {
        cm = c;
        await sleep(0.01);
      });
      expect(cm.expired()).toBe(false);
      expect(cm.when()).toBeNull();
    },
    *gen() {
      let cm!: Timeout;
      yield* asyncWith(timeout(null), function* (c) {
        cm = c;
        yield* sleep(0.01);
      });
      expect(cm.expired()).toBe(false);
      expect(cm.when()).toBeNull();
    },
  }); // CPython test_timeouts: test_timeout_disabled

  both('test_timeout_at_disabled', {
    async: async () => {
      let cm!: Timeout;
      await asyncWith(timeoutAt(null), async (c) => {
        cm = c;
        await sleep(0.01);
      });
      expect(cm.expired()).toBe(false);
      expect(cm.when()).toBeNull();
    },
    *gen() {
      let cm!: Timeout;
      yield* asyncWith(timeoutAt(null), function* (c) {
        cm = c;
        yield* sleep(0.01);
      });
      expect(cm.expired()).toBe(false);
      expect(cm.when()).toBeNull();
    },
  }); // CPython test_timeouts: test_timeout_at_disabled

  both('test_timeout_zero', {
    async: async () => {
      const loop = getRunningLoop();
      const t0 = loop.time();
      let cm!: Timeout;
      await assertRaises(TimeoutError, () =>
        asyncWith(timeout(0), async (c) => {
          cm = c;
          await sleep(10);
        }),
      );
      const t1 = loop.time();
      expect(cm.expired()).toBe(true);
      expect(t1 - t0).toBeLessThan(2);
      expect(cm.when()).toBeGreaterThanOrEqual(t0);
      expect(cm.when()).toBeLessThanOrEqual(t1);
    },
    *gen() {
      const loop = getRunningLoop();
      const t0 = loop.time();
      let cm!: Timeout;
      yield* assertRaisesG(TimeoutError, () =>
        asyncWith(timeout(0), function* (c) {
          cm = c;
          yield* sleep(10);
        }),
      );
      const t1 = loop.time();
      expect(cm.expired()).toBe(true);
      expect(t1 - t0).toBeLessThan(2);
      expect(cm.when()).toBeGreaterThanOrEqual(t0);
      expect(cm.when()).toBeLessThanOrEqual(t1);
    },
  }); // CPython test_timeouts: test_timeout_zero

  both('test_timeout_zero_sleep_zero', {
    async: async () => {
      const loop = getRunningLoop();
      const t0 = loop.time();
      let cm!: Timeout;
      await assertRaises(TimeoutError, () =>
        asyncWith(timeout(0), async (c) => {
          cm = c;
          await sleep(0);
        }),
      );
      const t1 = loop.time();
      expect(cm.expired()).toBe(true);
      expect(cm.when()).toBeGreaterThanOrEqual(t0);
      expect(cm.when()).toBeLessThanOrEqual(t1);
    },
    *gen() {
      const loop = getRunningLoop();
      const t0 = loop.time();
      let cm!: Timeout;
      yield* assertRaisesG(TimeoutError, () =>
        asyncWith(timeout(0), function* (c) {
          cm = c;
          yield* sleep(0);
        }),
      );
      const t1 = loop.time();
      expect(cm.expired()).toBe(true);
      expect(cm.when()).toBeGreaterThanOrEqual(t0);
      expect(cm.when()).toBeLessThanOrEqual(t1);
    },
  }); // CPython test_timeouts: test_timeout_zero_sleep_zero

  both('test_timeout_in_the_past_sleep_zero', {
    async: async () => {
      const loop = getRunningLoop();
      const t0 = loop.time();
      let cm!: Timeout;
      await assertRaises(TimeoutError, () =>
        asyncWith(timeout(-11), async (c) => {
          cm = c;
          await sleep(0);
        }),
      );
      expect(cm.expired()).toBe(true);
      expect(cm.when()).toBeLessThanOrEqual(t0);
    },
    *gen() {
      const loop = getRunningLoop();
      const t0 = loop.time();
      let cm!: Timeout;
      yield* assertRaisesG(TimeoutError, () =>
        asyncWith(timeout(-11), function* (c) {
          cm = c;
          yield* sleep(0);
        }),
      );
      expect(cm.expired()).toBe(true);
      expect(cm.when()).toBeLessThanOrEqual(t0);
    },
  }); // CPython test_timeouts: test_timeout_in_the_past_sleep_zero

  both('test_foreign_exception_passed', {
    async: async () => {
      let cm!: Timeout;
      await assertRaises(KeyError, () =>
        asyncWith(timeout(0.01), async (c) => {
          cm = c;
          throw new KeyError();
        }),
      );
      expect(cm.expired()).toBe(false);
    },
    *gen() {
      let cm!: Timeout;
      yield* assertRaisesG(KeyError, () =>
        // eslint-disable-next-line require-yield
        asyncWith(timeout(0.01), function* (c) {
          cm = c;
          throw new KeyError();
        }),
      );
      expect(cm.expired()).toBe(false);
    },
  }); // CPython test_timeouts: test_foreign_exception_passed

  // The CancelledError of the `finally` replaces the ZeroDivisionError in
  // both languages; only Python keeps the latter as __context__.
  both('test_timeout_exception_context', {
    async: async () => {
      const e = await assertRaises(TimeoutError, () =>
        asyncWith(timeout(0.01), async () => {
          try {
            throw new ZeroDivisionError();
          } finally {
            await sleep(1);
          }
        }),
      );
      expect(e.cause).toBeInstanceOf(CancelledError);
      expect((e.cause as Error).cause).toBeUndefined();
    },
    *gen() {
      const e = yield* assertRaisesG(TimeoutError, () =>
        asyncWith(timeout(0.01), function* () {
          try {
            throw new ZeroDivisionError();
          } finally {
            yield* sleep(1);
          }
        }),
      );
      expect(e.cause).toBeInstanceOf(CancelledError);
      expect((e.cause as Error).cause).toBeUndefined();
    },
  }); // CPython test_timeouts: test_timeout_exception_context

  // Python raises the ZeroDivisionError in `finally`, with the CancelledError
  // as implicit __context__, which Timeout then rewrites to a TimeoutError.
  // JavaScript links errors only through an explicit `cause`: crash() sets it,
  // and Timeout inserts the TimeoutError there (timeouts.ts insertTimeoutError).
  both('test_foreign_exception_on_timeout', {
    async: async () => {
      async function crash(): Promise<void> {
        try {
          await sleep(1);
        } catch (exc) {
          throw new ZeroDivisionError('', { cause: exc });
        }
      }
      const e = await assertRaises(ZeroDivisionError, () =>
        asyncWith(timeout(0.01), async () => {
          await crash();
        }),
      );
      const e2 = e.cause;
      expect(e2).toBeInstanceOf(TimeoutError);
      expect((e2 as Error).cause).toBeInstanceOf(CancelledError);
    },
    *gen() {
      function* crash(): Coroutine<void> {
        try {
          yield* sleep(1);
        } catch (exc) {
          throw new ZeroDivisionError('', { cause: exc });
        }
      }
      const e = yield* assertRaisesG(ZeroDivisionError, () =>
        asyncWith(timeout(0.01), function* () {
          yield* crash();
        }),
      );
      const e2 = e.cause;
      expect(e2).toBeInstanceOf(TimeoutError);
      expect((e2 as Error).cause).toBeInstanceOf(CancelledError);
    },
  }); // CPython test_timeouts: test_foreign_exception_on_timeout

  // As above: the Python chain ZeroDivisionError -> KeyError -> TimeoutError
  // -> CancelledError is built from __context__; here from explicit causes.
  both('test_foreign_exception_on_timeout_2', {
    async: async () => {
      const e = await assertRaises(ZeroDivisionError, () =>
        asyncWith(timeout(0.01), async () => {
          try {
            try {
              throw new ValueError();
            } finally {
              await sleep(1);
            }
          } catch (cancelled) {
            try {
              throw new KeyError('', { cause: cancelled });
            } catch (keyError) {
              throw new ZeroDivisionError('', { cause: keyError });
            }
          }
        }),
      );
      const e2 = e.cause as Error;
      expect(e2).toBeInstanceOf(KeyError);
      const e3 = e2.cause as Error;
      expect(e3).toBeInstanceOf(TimeoutError);
      expect(e3.cause).toBeInstanceOf(CancelledError);
    },
    *gen() {
      const e = yield* assertRaisesG(ZeroDivisionError, () =>
        asyncWith(timeout(0.01), function* () {
          try {
            try {
              throw new ValueError();
            } finally {
              yield* sleep(1);
            }
          } catch (cancelled) {
            try {
              throw new KeyError('', { cause: cancelled });
            } catch (keyError) {
              throw new ZeroDivisionError('', { cause: keyError });
            }
          }
        }),
      );
      const e2 = e.cause as Error;
      expect(e2).toBeInstanceOf(KeyError);
      const e3 = e2.cause as Error;
      expect(e3).toBeInstanceOf(TimeoutError);
      expect(e3.cause).toBeInstanceOf(CancelledError);
    },
  }); // CPython test_timeouts: test_foreign_exception_on_timeout_2

  both('test_foreign_cancel_doesnt_timeout_if_not_expired', {
    async: async () => {
      let cm!: Timeout;
      await assertRaises(CancelledError, () =>
        asyncWith(timeout(10), async (c) => {
          cm = c;
          currentTask()!.cancel();
          await sleep(10);
        }),
      );
      expect(cm.expired()).toBe(false);
    },
    *gen() {
      let cm!: Timeout;
      yield* assertRaisesG(CancelledError, () =>
        asyncWith(timeout(10), function* (c) {
          cm = c;
          currentTask()!.cancel();
          yield* sleep(10);
        }),
      );
      expect(cm.expired()).toBe(false);
    },
  }); // CPython test_timeouts: test_foreign_cancel_doesnt_timeout_if_not_expired

  both('test_outer_task_is_not_cancelled', {
    async: async () => {
      async function outer(): Promise<void> {
        await assertRaises(TimeoutError, () =>
          asyncWith(timeout(0.001), async () => {
            await sleep(10);
          }),
        );
      }
      const task = createTask(outer);
      await task;
      expect(task.cancelled()).toBe(false);
      expect(task.done()).toBe(true);
    },
    *gen() {
      function* outer(): Coroutine<void> {
        yield* assertRaisesG(TimeoutError, () =>
          asyncWith(timeout(0.001), function* () {
            yield* sleep(10);
          }),
        );
      }
      const task = createTask(outer());
      yield* task;
      expect(task.cancelled()).toBe(false);
      expect(task.done()).toBe(true);
    },
  }); // CPython test_timeouts: test_outer_task_is_not_cancelled

  both('test_nested_timeouts_concurrent', {
    async: async () => {
      await assertRaises(TimeoutError, () =>
        asyncWith(timeout(0.002), async () => {
          await assertRaises(TimeoutError, () =>
            asyncWith(timeout(0.1), async () => {
              // Pretend we crunch some numbers.
              blockFor(10);
              await sleep(1);
            }),
          );
        }),
      );
    },
    *gen() {
      yield* assertRaisesG(TimeoutError, () =>
        asyncWith(timeout(0.002), function* () {
          yield* assertRaisesG(TimeoutError, () =>
            asyncWith(timeout(0.1), function* () {
              blockFor(10);
              yield* sleep(1);
            }),
          );
        }),
      );
    },
  }); // CPython test_timeouts: test_nested_timeouts_concurrent

  // Delays scaled down (0.1 -> 0.05, 0.01 -> 0.005, time.sleep(0.1) -> 50 ms):
  // what matters is that both deadlines pass while the loop is blocked.
  both('test_nested_timeouts_loop_busy', {
    async: async () => {
      const loop = getRunningLoop() as BaseEventLoop;
      loop.slowCallbackDuration = 10;
      const t0 = loop.time();
      await assertRaises(TimeoutError, () =>
        asyncWith(timeout(0.05), async () => {
          await assertRaises(TimeoutError, () =>
            asyncWith(timeout(0.005), async () => {
              // Pretend the loop is busy for a while.
              blockFor(50);
              await sleep(1);
            }),
          );
          // TimeoutError was caught by the inner block.
          await sleep(10); // This sleep should be interrupted by the outer timeout.
        }),
      );
      const t1 = loop.time();
      expect(t0 <= t1 && t1 <= t0 + 1).toBe(true);
    },
    *gen() {
      const loop = getRunningLoop() as BaseEventLoop;
      loop.slowCallbackDuration = 10;
      const t0 = loop.time();
      yield* assertRaisesG(TimeoutError, () =>
        asyncWith(timeout(0.05), function* () {
          yield* assertRaisesG(TimeoutError, () =>
            asyncWith(timeout(0.005), function* () {
              blockFor(50);
              yield* sleep(1);
            }),
          );
          yield* sleep(10);
        }),
      );
      const t1 = loop.time();
      expect(t0 <= t1 && t1 <= t0 + 1).toBe(true);
    },
  }); // CPython test_timeouts: test_nested_timeouts_loop_busy

  both('test_reschedule', {
    async: async () => {
      const loop = getRunningLoop();
      const fut = loop.createFuture<Timeout>();
      const deadline1 = loop.time() + 10;
      const deadline2 = deadline1 + 20;
      async function f(): Promise<void> {
        await asyncWith(timeoutAt(deadline1), async (cm) => {
          fut.setResult(cm);
          await sleep(50);
        });
      }
      const task = createTask(f);
      const cm = await fut;
      expect(cm.when()).toBe(deadline1);
      cm.reschedule(deadline2);
      expect(cm.when()).toBe(deadline2);
      cm.reschedule(null);
      expect(cm.when()).toBeNull();
      task.cancel();
      await assertRaises(CancelledError, () => task);
      expect(cm.expired()).toBe(false);
    },
    *gen() {
      const loop = getRunningLoop();
      const fut = loop.createFuture<Timeout>();
      const deadline1 = loop.time() + 10;
      const deadline2 = deadline1 + 20;
      function* f(): Coroutine<void> {
        yield* asyncWith(timeoutAt(deadline1), function* (cm) {
          fut.setResult(cm);
          yield* sleep(50);
        });
      }
      const task = createTask(f());
      const cm = yield* fut;
      expect(cm.when()).toBe(deadline1);
      cm.reschedule(deadline2);
      expect(cm.when()).toBe(deadline2);
      cm.reschedule(null);
      expect(cm.when()).toBeNull();
      task.cancel();
      yield* assertRaisesG(CancelledError, () => task[Symbol.iterator]());
      expect(cm.expired()).toBe(false);
    },
  }); // CPython test_timeouts: test_reschedule

  // repr() is toString() and util.inspect in JavaScript.
  both('test_repr_active', {
    async: async () => {
      await asyncWith(timeout(10), async (cm) => {
        expect(String(cm)).toMatch(/^<Timeout \[active\] when=\d+\.\d*>$/);
        expect(inspect(cm)).toBe(String(cm));
      });
    },
    // eslint-disable-next-line require-yield
    *gen() {
      // eslint-disable-next-line require-yield
      yield* asyncWith(timeout(10), function* (cm) {
        expect(String(cm)).toMatch(/^<Timeout \[active\] when=\d+\.\d*>$/);
      });
    },
  }); // CPython test_timeouts: test_repr_active

  both('test_repr_expired', {
    async: async () => {
      let cm!: Timeout;
      await assertRaises(TimeoutError, () =>
        asyncWith(timeout(0.01), async (c) => {
          cm = c;
          await sleep(10);
        }),
      );
      expect(String(cm)).toBe('<Timeout [expired]>');
      expect(inspect(cm)).toBe('<Timeout [expired]>');
    },
    *gen() {
      let cm!: Timeout;
      yield* assertRaisesG(TimeoutError, () =>
        asyncWith(timeout(0.01), function* (c) {
          cm = c;
          yield* sleep(10);
        }),
      );
      expect(String(cm)).toBe('<Timeout [expired]>');
    },
  }); // CPython test_timeouts: test_repr_expired

  both('test_repr_finished', {
    async: async () => {
      let cm!: Timeout;
      await asyncWith(timeout(10), async (c) => {
        cm = c;
        await sleep(0);
      });
      expect(String(cm)).toBe('<Timeout [finished]>');
    },
    *gen() {
      let cm!: Timeout;
      yield* asyncWith(timeout(10), function* (c) {
        cm = c;
        yield* sleep(0);
      });
      expect(String(cm)).toBe('<Timeout [finished]>');
    },
  }); // CPython test_timeouts: test_repr_finished

  both('test_repr_disabled', {
    async: async () => {
      await asyncWith(timeout(null), async (cm) => {
        expect(String(cm)).toBe('<Timeout [active] when=None>');
      });
    },
    *gen() {
      // eslint-disable-next-line require-yield
      yield* asyncWith(timeout(null), function* (cm) {
        expect(String(cm)).toBe('<Timeout [active] when=None>');
      });
    },
  }); // CPython test_timeouts: test_repr_disabled

  both('test_nested_timeout_in_finally', {
    async: async () => {
      let e2: TimeoutError | undefined;
      const e1 = await assertRaises(TimeoutError, () =>
        asyncWith(timeout(0.01), async () => {
          try {
            await sleep(1);
          } finally {
            e2 = await assertRaises(TimeoutError, () =>
              asyncWith(timeout(0.01), async () => {
                await sleep(10);
              }),
            );
          }
        }),
      );
      // Each TimeoutError is caused by its own CancelledError.
      const e12 = e1.cause;
      expect(e12).toBeInstanceOf(CancelledError);
      const e22 = e2!.cause;
      expect(e22).toBeInstanceOf(CancelledError);
      expect(e22).not.toBe(e12);
    },
    *gen() {
      let e2: TimeoutError | undefined;
      const e1 = yield* assertRaisesG(TimeoutError, () =>
        asyncWith(timeout(0.01), function* () {
          try {
            yield* sleep(1);
          } finally {
            e2 = yield* assertRaisesG(TimeoutError, () =>
              asyncWith(timeout(0.01), function* () {
                yield* sleep(10);
              }),
            );
          }
        }),
      );
      const e12 = e1.cause;
      expect(e12).toBeInstanceOf(CancelledError);
      const e22 = e2!.cause;
      expect(e22).toBeInstanceOf(CancelledError);
      expect(e22).not.toBe(e12);
    },
  }); // CPython test_timeouts: test_nested_timeout_in_finally

  both('test_timeout_after_cancellation', {
    async: async () => {
      try {
        currentTask()!.cancel();
        await sleep(1); // work which will be cancelled
      } catch (e) {
        if (!(e instanceof CancelledError)) throw e;
      } finally {
        await assertRaises(TimeoutError, () =>
          asyncWith(timeout(0.0), async () => {
            await sleep(1); // some cleanup
          }),
        );
      }
    },
    *gen() {
      try {
        currentTask()!.cancel();
        yield* sleep(1);
      } catch (e) {
        if (!(e instanceof CancelledError)) throw e;
      } finally {
        yield* assertRaisesG(TimeoutError, () =>
          asyncWith(timeout(0.0), function* () {
            yield* sleep(1);
          }),
        );
      }
    },
  }); // CPython test_timeouts: test_timeout_after_cancellation

  both('test_cancel_in_timeout_after_cancellation', {
    async: async () => {
      try {
        currentTask()!.cancel();
        await sleep(1); // work which will be cancelled
      } catch (e) {
        if (!(e instanceof CancelledError)) throw e;
      } finally {
        await assertRaises(CancelledError, () =>
          asyncWith(timeout(1.0), async () => {
            currentTask()!.cancel();
            await sleep(2); // some cleanup
          }),
        );
      }
    },
    *gen() {
      try {
        currentTask()!.cancel();
        yield* sleep(1);
      } catch (e) {
        if (!(e instanceof CancelledError)) throw e;
      } finally {
        yield* assertRaisesG(CancelledError, () =>
          asyncWith(timeout(1.0), function* () {
            currentTask()!.cancel();
            yield* sleep(2);
          }),
        );
      }
    },
  }); // CPython test_timeouts: test_cancel_in_timeout_after_cancellation

  both('test_timeout_already_entered', {
    async: async () => {
      await asyncWith(timeout(0.01), async (cm) => {
        const e = await assertRaises(RuntimeError, () => asyncWith(cm, async () => {}));
        expect(e.message).toBe('Timeout has already been entered');
      });
    },
    *gen() {
      yield* asyncWith(timeout(0.01), function* (cm) {
        const e = yield* assertRaisesG(RuntimeError, () => asyncWith(cm, function* () {}));
        expect(e.message).toBe('Timeout has already been entered');
      });
    },
  }); // CPython test_timeouts: test_timeout_already_entered

  both('test_timeout_double_enter', {
    async: async () => {
      const cm = timeout(0.01);
      await asyncWith(cm, async () => {});
      const e = await assertRaises(RuntimeError, () => asyncWith(cm, async () => {}));
      expect(e.message).toBe('Timeout has already been entered');
    },
    *gen() {
      const cm = timeout(0.01);
      yield* asyncWith(cm, function* () {});
      const e = yield* assertRaisesG(RuntimeError, () => asyncWith(cm, function* () {}));
      expect(e.message).toBe('Timeout has already been entered');
    },
  }); // CPython test_timeouts: test_timeout_double_enter

  both('test_timeout_finished', {
    async: async () => {
      const cm = timeout(0.01);
      await asyncWith(cm, async () => {});
      expect(() => cm.reschedule(0.02)).toThrow(RuntimeError);
      expect(() => cm.reschedule(0.02)).toThrow(/finished/);
    },
    *gen() {
      const cm = timeout(0.01);
      yield* asyncWith(cm, function* () {});
      expect(() => cm.reschedule(0.02)).toThrow(RuntimeError);
      expect(() => cm.reschedule(0.02)).toThrow(/finished/);
    },
  }); // CPython test_timeouts: test_timeout_finished

  both('test_timeout_expired', {
    async: async () => {
      const cm = timeout(0.01);
      await assertRaises(TimeoutError, () =>
        asyncWith(cm, async () => {
          await sleep(1);
        }),
      );
      expect(() => cm.reschedule(0.02)).toThrow(RuntimeError);
      expect(() => cm.reschedule(0.02)).toThrow(/expired/);
    },
    *gen() {
      const cm = timeout(0.01);
      yield* assertRaisesG(TimeoutError, () =>
        asyncWith(cm, function* () {
          yield* sleep(1);
        }),
      );
      expect(() => cm.reschedule(0.02)).toThrow(RuntimeError);
      expect(() => cm.reschedule(0.02)).toThrow(/expired/);
    },
  }); // CPython test_timeouts: test_timeout_expired

  both('test_timeout_expiring', {
    async: async () => {
      await asyncWith(timeout(0.01), async (cm) => {
        await assertRaises(CancelledError, () => sleep(1));
        expect(() => cm.reschedule(0.02)).toThrow(RuntimeError);
        expect(() => cm.reschedule(0.02)).toThrow(/expiring/);
      });
    },
    *gen() {
      yield* asyncWith(timeout(0.01), function* (cm) {
        yield* assertRaisesG(CancelledError, () => sleep(1)[Symbol.iterator]());
        expect(() => cm.reschedule(0.02)).toThrow(RuntimeError);
        expect(() => cm.reschedule(0.02)).toThrow(/expiring/);
      });
    },
  }); // CPython test_timeouts: test_timeout_expiring

  both('test_timeout_not_entered', {
    async: async () => {
      const cm = timeout(0.01);
      expect(() => cm.reschedule(0.02)).toThrow(new RuntimeError('Timeout has not been entered'));
    },
    // eslint-disable-next-line require-yield
    *gen() {
      const cm = timeout(0.01);
      expect(() => cm.reschedule(0.02)).toThrow(new RuntimeError('Timeout has not been entered'));
    },
  }); // CPython test_timeouts: test_timeout_not_entered

  both('test_timeout_without_task', {
    async: async () => {
      const cm = timeout(0.01);
      const e = await assertRaises(RuntimeError, () => awaitWithoutTask(cm.aenter()));
      expect(e.message).toMatch(/task/);
      expect(() => cm.reschedule(0.02)).toThrow(/has not been entered/);
    },
    *gen() {
      const cm = timeout(0.01);
      // awaitWithoutTask runs the steps in a loop callback; waiting for it is
      // the one awaited promise here.
      const done = getRunningLoop().createFuture<unknown>();
      awaitWithoutTask(cm.aenter()).then(
        () => done.setResult(null),
        (e: unknown) => done.setResult(e),
      );
      const e = yield* done;
      expect(e).toBeInstanceOf(RuntimeError);
      expect((e as Error).message).toMatch(/task/);
      expect(() => cm.reschedule(0.02)).toThrow(/has not been entered/);
    },
  }); // CPython test_timeouts: test_timeout_without_task

  both('test_timeout_taskgroup', {
    async: async () => {
      async function task(): Promise<void> {
        try {
          await sleep(2); // Will be interrupted after 0.01 second
        } finally {
          throw new ZeroDivisionError(); // Crash in cleanup
        }
      }
      const eg = await assertRaises(ExceptionGroup, () =>
        asyncWith(timeout(0.01), async () => {
          await asyncWith(new TaskGroup(), async (tg) => {
            tg.createTask(task);
            try {
              throw new ValueError();
            } finally {
              await sleep(1);
            }
          });
        }),
      );
      expect(eg.exceptions).toHaveLength(1);
      expect(eg.exceptions[0]).toBeInstanceOf(ZeroDivisionError);
    },
    *gen() {
      function* task(): Coroutine<void> {
        try {
          yield* sleep(2);
        } finally {
          // eslint-disable-next-line no-unsafe-finally
          throw new ZeroDivisionError();
        }
      }
      const eg = yield* assertRaisesG(ExceptionGroup, () =>
        asyncWith(timeout(0.01), function* () {
          yield* asyncWith(new TaskGroup(), function* (tg) {
            tg.createTask(task());
            try {
              throw new ValueError();
            } finally {
              yield* sleep(1);
            }
          });
        }),
      );
      expect(eg.exceptions).toHaveLength(1);
      expect(eg.exceptions[0]).toBeInstanceOf(ZeroDivisionError);
    },
  }); // CPython test_timeouts: test_timeout_taskgroup
});

describe.each(LOOPS)('Timeout by hand (aenter/aexit) on %s', (backend) => {
  useLoop(backend);
  it('aenter() twice throws "Timeout has already been entered"', async () => {
    await run(async () => {
      const cm = timeout(10);
      expect(await cm.aenter()).toBe(cm);
      await expect(Promise.resolve(cm.aenter())).rejects.toThrow(new RuntimeError('Timeout has already been entered'));
      expect(await cm.aexit()).toBe(false);
      expect(String(cm)).toBe('<Timeout [finished]>');
    });
  });

  it('reschedule() moves an active deadline earlier, and it fires', async () => {
    await run(async () => {
      const loop = getRunningLoop();
      const t0 = loop.time();
      let cm!: Timeout;
      await expect(
        asyncWith(timeout(10), async (c) => {
          cm = c;
          c.reschedule(loop.time() + 0.01);
          await sleep(10);
        }),
      ).rejects.toBeInstanceOf(TimeoutError);
      expect(cm.expired()).toBe(true);
      expect(loop.time() - t0).toBeLessThan(5);
    });
  });

  it('timeout() needs a running loop', () => {
    expect(() => timeout(1)).toThrow(new RuntimeError('no running event loop'));
  });
});
