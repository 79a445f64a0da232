/**
 * Tests for waitFor() in lib/tasks.ts.
 *
 * Ported from CPython Lib/test/test_asyncio/test_waitfor.py (3.14), for both
 * kinds of coroutine (test/helpers/coro.ts): each test body, and the
 * coroutines it waits for, are of the kind under test. Real delays, at most
 * 50 ms, with bounds that only check the shape of the timing.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  CancelledError,
  Future,
  Task,
  TimeoutError,
  createTask,
  currentTask,
  newEventLoop,
  setEventLoop,
  shield,
  sleep,
  wait,
  waitFor,
  type AwaitableLike,
  type BaseEventLoop,
  type Coroutine,
} from '../lib/index.js';
import { COROUTINE_KINDS, type CoroKind } from './helpers/coro.js';
import { eachLoop, LOOPS, useLoop } from './helpers/loops.js';

// A timeout that passes "timeout > 0" but barely waits.
const EPSILON = 0.0001;

const loops: BaseEventLoop[] = [];

function newLoop(): BaseEventLoop {
  const loop = newEventLoop() as BaseEventLoop;
  loops.push(loop);
  return loop;
}

afterEach(() => {
  setEventLoop(null);
  for (const loop of loops.splice(0)) if (!loop.isClosed()) loop.close();
});

/**
 * IsolatedAsyncioTestCase: runs `body` as the main task of a new loop of
 * the kind under test; the loop is stopped after `within` seconds so a hang
 * fails the test instead of timing it out.
 */
async function asyncioTest<T>(kind: CoroKind, body: () => Coroutine<T>, within = 5): Promise<T> {
  const loop = newLoop();
  const guard = loop.callLater(within, () => loop.stop());
  try {
    return await loop.runUntilComplete(kind.task(body));
  } finally {
    guard.cancel();
  }
}

/** Runs `body` and returns what it throws; fails if it returns. */
function* raisedBy(body: () => Coroutine<unknown>): Coroutine<any> {
  try {
    yield* body();
  } catch (exc) {
    return exc;
  }
  throw new Error('expected an exception');
}

/** Monotonic seconds. */
function now(): number {
  return performance.now() / 1000;
}

/** A task that runs for TASK_TIMEOUT seconds, ignoring cancel requests. */
class SlowTask {
  static readonly TASK_TIMEOUT = 0.05;
  exited = false;

  *run(): Coroutine<void> {
    const exitAt = now() + SlowTask.TASK_TIMEOUT;
    for (;;) {
      const toSleep = exitAt - now();
      if (toSleep <= 0) break;
      try {
        yield* sleep(toSleep);
      } catch (exc) {
        if (!(exc instanceof CancelledError)) throw exc;
      }
    }
    this.exited = true;
  }
}

describe.each(eachLoop(COROUTINE_KINDS.map((k) => [k.name, k] as const)))('[%s] waitFor (%s)', (backend, _kindName, kind: CoroKind) => {
  useLoop(backend);
  // asyncio's wait_for is a coroutine: a task running it finishes only when
  // the awaitable does, even when cancelled. waitFor() returns a Future that
  // is cancelled at once and cancels the awaitable without waiting for it
  // (tasks.ts, waitFor: `outer.addDoneCallback(...)` calls inner.cancel()
  // after the outer Future is already done).
  it('cancelling a task in waitFor() waits for the awaitable to finish', async () => {
    await asyncioTest(kind, function* () {
      const t = new SlowTask();
      const waitForTask = createTask(() => waitFor(kind.task(() => t.run()), SlowTask.TASK_TIMEOUT * 2));
      yield* sleep(0);
      waitForTask.cancel();
      yield* wait(new Set([waitForTask]));
      expect(t.exited).toBe(true);
    });
  }); // CPython test_waitfor: test_asyncio_wait_for_cancelled

  it('waits for an awaitable that ignores the timeout cancellation', async () => {
    await asyncioTest(kind, function* () {
      const t = new SlowTask();
      try {
        yield* waitFor(kind.task(() => t.run()), SlowTask.TASK_TIMEOUT / 2);
      } catch (exc) {
        if (!(exc instanceof TimeoutError)) throw exc;
      }
      expect(t.exited).toBe(true);
    });
  }); // CPython test_waitfor: test_asyncio_wait_for_timeout

  it('a timeout of 0 gives the result of a done Future', async () => {
    await asyncioTest(kind, function* () {
      const loop = currentTask()!.getLoop();
      const fut = loop.createFuture<string>();
      fut.setResult('done');
      const ret = yield* waitFor(fut, 0);
      expect(ret).toBe('done');
      expect(fut.done()).toBe(true);
    });
  }); // CPython test_waitfor: test_wait_for_timeout_less_then_0_or_0_future_done

  it('a timeout of 0 never starts the coroutine', async () => {
    await asyncioTest(kind, function* () {
      let fooStarted = false;
      function* foo(): Coroutine<void> {
        fooStarted = true;
      }
      const exc = yield* raisedBy(function* () {
        yield* waitFor(kind.task(foo), 0);
      });
      expect(exc).toBeInstanceOf(TimeoutError);
      expect(fooStarted).toBe(false);
    });
  }); // CPython test_waitfor: test_wait_for_timeout_less_then_0_or_0_coroutine_do_not_started

  it.each([0, -1])('a timeout of %s cancels a running task and waits for it', async (timeout) => {
    await asyncioTest(kind, function* () {
      const loop = currentTask()!.getLoop();
      let fooRunning: boolean | null = null;
      const started = loop.createFuture<void>();
      function* foo(): Coroutine<string> {
        fooRunning = true;
        started.setResult(undefined);
        try {
          yield* sleep(10);
        } finally {
          fooRunning = false;
        }
        return 'done';
      }
      const fut = createTask(kind.task(foo));
      yield* started;
      const t0 = loop.time();
      const exc = yield* raisedBy(function* () {
        yield* waitFor(fut, timeout);
      });
      expect(exc).toBeInstanceOf(TimeoutError);
      expect(loop.time() - t0).toBeLessThan(1);
      expect(fut.done()).toBe(true);
      // It was cancelled because of the timeout.
      expect(fut.cancelled()).toBe(true);
      expect(fooRunning).toBe(false);
    });
  }); // CPython test_waitfor: test_wait_for_timeout_less_then_0_or_0

  it('cancels the task at the timeout and raises TimeoutError', async () => {
    await asyncioTest(kind, function* () {
      const loop = currentTask()!.getLoop();
      let fooRunning: boolean | null = null;
      function* foo(): Coroutine<string> {
        fooRunning = true;
        try {
          yield* sleep(10);
        } finally {
          fooRunning = false;
        }
        return 'done';
      }
      const fut = createTask(kind.task(foo));
      const t0 = loop.time();
      const exc = yield* raisedBy(function* () {
        yield* waitFor(fut, 0.01);
      });
      expect(exc).toBeInstanceOf(TimeoutError);
      const elapsed = loop.time() - t0;
      expect(elapsed).toBeGreaterThanOrEqual(0.005);
      expect(elapsed).toBeLessThan(1);
      expect(fut.done()).toBe(true);
      expect(fut.cancelled()).toBe(true);
      expect(fooRunning).toBe(false);
    });
  }); // CPython test_waitfor: test_wait_for

  it('no timeout waits for the result', async () => {
    await asyncioTest(kind, function* () {
      function* coro(): Coroutine<string> {
        return 'done';
      }
      const res = yield* waitFor(kind.task(coro), null);
      expect(res).toBe('done');
    });
  }); // CPython test_waitfor: test_wait_for_blocking

  it('a result before the timeout wins', async () => {
    await asyncioTest(kind, function* () {
      const loop = currentTask()!.getLoop();
      const fut = loop.createFuture<string>();
      const task = waitFor(fut, 0.2);
      loop.callSoon(() => fut.setResult('ok'));
      const res = yield* task;
      expect(res).toBe('ok');
    });
  }); // CPython test_waitfor: test_wait_for_race_condition

  it('a coroutine that catches the cancellation and returns gives its result', async () => {
    await asyncioTest(kind, function* () {
      function* inner(): Coroutine<number> {
        let raised: unknown = null;
        try {
          yield* sleep(1);
        } catch (exc) {
          raised = exc;
        }
        expect(raised).toBeInstanceOf(CancelledError);
        return 1;
      }
      const result = yield* waitFor(kind.task(inner), 0.01);
      expect(result).toBe(1);
    });
  }); // CPython test_waitfor: test_wait_for_cancellation_race_condition

  it('waits for the cancelled task to finish before raising TimeoutError', async () => {
    await asyncioTest(kind, function* () {
      let taskDone = false;
      function* inner(): Coroutine<void> {
        try {
          yield* sleep(10);
        } catch (exc) {
          if (exc instanceof CancelledError) yield* sleep(EPSILON);
          throw exc;
        } finally {
          taskDone = true;
        }
      }
      const innerTask = createTask(kind.task(inner));
      const exc = yield* raisedBy(function* () {
        yield* waitFor(innerTask, EPSILON);
      });
      expect(exc).toBeInstanceOf(TimeoutError);
      expect(taskDone).toBe(true);
      // asyncio chains it as __context__ (raise TimeoutError from exc).
      expect(exc.cause).toBeInstanceOf(CancelledError);
    });
  }); // CPython test_waitfor: test_wait_for_waits_for_task_cancellation

  it('with a timeout of 0 too', async () => {
    await asyncioTest(kind, function* () {
      let taskDone = false;
      function* foo(): Coroutine<void> {
        function* inner(): Coroutine<void> {
          try {
            yield* sleep(10);
          } catch (exc) {
            if (exc instanceof CancelledError) yield* sleep(EPSILON);
            throw exc;
          } finally {
            taskDone = true;
          }
        }
        const innerTask = createTask(kind.task(inner));
        yield* sleep(EPSILON);
        yield* waitFor(innerTask, 0);
      }
      const exc = yield* raisedBy(foo);
      expect(exc).toBeInstanceOf(TimeoutError);
      expect(taskDone).toBe(true);
      expect(exc.cause).toBeInstanceOf(CancelledError);
    });
  }); // CPython test_waitfor: test_wait_for_waits_for_task_cancellation_w_timeout_0

  it('an exception raised while the task is cancelled is raised instead', async () => {
    class FooException extends Error {}
    await asyncioTest(kind, function* () {
      function* foo(): Coroutine<void> {
        function* inner(): Coroutine<void> {
          try {
            yield* sleep(0.2);
          } finally {
            throw new FooException();
          }
        }
        const innerTask = createTask(kind.task(inner));
        yield* waitFor(innerTask, EPSILON);
      }
      const exc = yield* raisedBy(foo);
      expect(exc).toBeInstanceOf(FooException);
    });
  }); // CPython test_waitfor: test_wait_for_reraises_exception_during_cancellation

  /**
   * bpo-23219: cancelling the wait must also cancel the task. asyncio's
   * wait_for only finishes once the task is cancelled; waitFor()'s Future is
   * cancelled first and cancels the task a loop pass after (see the first
   * test above).
   */
  function* cancelWaitFor(timeout: number | null): Coroutine<void> {
    const loop = currentTask()!.getLoop();
    function* blockingCoroutine(): Coroutine<void> {
      const fut = loop.createFuture<void>();
      // Block: fut's result is never set.
      yield* fut;
    }
    const task = createTask(kind.task(blockingCoroutine));
    const waitTask = createTask(() => waitFor(task, timeout));
    loop.callSoon(() => waitTask.cancel());
    const exc = yield* raisedBy(function* () {
      yield* waitTask;
    });
    expect(exc).toBeInstanceOf(CancelledError);
    expect(task.cancelled()).toBe(true);
  }

  it('cancelling a waitFor() without timeout cancels the task before it ends', async () => {
    await asyncioTest(kind, () => cancelWaitFor(null));
  }); // CPython test_waitfor: test_cancel_blocking_wait_for

  it('cancelling a waitFor() with a timeout cancels the task before it ends', async () => {
    await asyncioTest(kind, () => cancelWaitFor(60));
  }); // CPython test_waitfor: test_cancel_wait_for

  it('cancelling a waitFor() cancels the task, a loop pass later', async () => {
    // The part of the two tests above that holds: the task does end cancelled.
    await asyncioTest(kind, function* () {
      const loop = currentTask()!.getLoop();
      const fut = loop.createFuture<void>();
      const task = createTask(kind.task(function* () {
        yield* fut;
      }));
      const waitTask = createTask(() => waitFor(task, 60));
      loop.callSoon(() => waitTask.cancel());
      const exc = yield* raisedBy(function* () {
        yield* waitTask;
      });
      expect(exc).toBeInstanceOf(CancelledError);
      yield* wait([task]);
      expect(task.cancelled()).toBe(true);
      expect(fut.cancelled()).toBe(true);
    });
  });

  it('a task that suppresses the cancellation and returns gives its value', async () => {
    await asyncioTest(kind, function* () {
      // GH-86296: discouraged, but then wait_for returns the value, as timeout() does.
      function* return42(): Coroutine<number | undefined> {
        try {
          yield* sleep(10);
        } catch (exc) {
          if (exc instanceof CancelledError) return 42;
          throw exc;
        }
        return undefined;
      }
      const res = yield* waitFor(kind.task(return42), 0.01);
      expect(res).toBe(42);
    });
  }); // CPython test_waitfor: test_wait_for_cancel_suppressed

  it('a task awaiting an already finished waitFor() is still cancelled', async () => {
    await asyncioTest(kind, function* () {
      // GH-86296: inner completes in one loop pass, before the task is cancelled.
      function* inner(): Coroutine<string> {
        return 'done';
      }
      const innerTask = createTask(kind.task(inner));
      let reachedEnd = false;
      function* waitForCoro(): Coroutine<void> {
        yield* waitFor(innerTask, 100);
        yield* sleep(1);
        reachedEnd = true;
      }
      const task = createTask(kind.task(waitForCoro));
      expect(task.done()).toBe(false);
      // Run the task.
      yield* sleep(0);
      task.cancel();
      const exc = yield* raisedBy(function* () {
        yield* task;
      });
      expect(exc).toBeInstanceOf(CancelledError);
      expect(innerTask.done()).toBe(true);
      expect(yield* innerTask).toBe('done');
      expect(reachedEnd).toBe(false);
    });
  }); // CPython test_waitfor: test_wait_for_issue86296

  describe('with shield()', () => {
    it('a timeout of 0 cancels the shield, not the task', async () => {
      await asyncioTest(kind, function* () {
        // shield() makes a Future that stands for the task and protects it:
        // with a timeout of 0 that Future is cancelled at once and the task
        // it wraps goes on.
        function* coro(): Coroutine<string> {
          yield* sleep(0.01);
          return 'done';
        }
        const task = createTask(kind.task(coro));
        const shieldedTask = shield(task);
        const exc = yield* raisedBy(function* () {
          yield* waitFor(shieldedTask, 0);
        });
        expect(exc).toBeInstanceOf(TimeoutError);
        // The task runs in the background.
        expect(task.done()).toBe(false);
        expect(task.cancelled()).toBe(false);
        expect(shieldedTask.cancelled()).toBe(true);
        // Wait for the task to complete.
        yield* sleep(0.04);
        expect(task.done()).toBe(true);
      });
    }); // CPython test_waitfor: test_zero_timeout

    it('no timeout runs it to completion', async () => {
      await asyncioTest(kind, function* () {
        function* coro(): Coroutine<string> {
          yield* sleep(0.01);
          return 'done';
        }
        const task = createTask(kind.task(coro));
        yield* waitFor(shield(task), null);
        expect(task.done()).toBe(true);
        expect(yield* task).toBe('done');
      });
    }); // CPython test_waitfor: test_none_timeout

    it('a timeout leaves the shielded task running', async () => {
      await asyncioTest(kind, function* () {
        function* coro(): Coroutine<string> {
          yield* sleep(0.03);
          return 'done';
        }
        const task = createTask(kind.task(coro));
        const exc = yield* raisedBy(function* () {
          yield* waitFor(shield(task), 0.005);
        });
        expect(exc).toBeInstanceOf(TimeoutError);
        expect(task.done()).toBe(false);
        expect(task.cancelled()).toBe(false);
        expect(yield* task).toBe('done');
      });
    }); // CPython test_waitfor: test_shielded_timeout
  });

  describe('beyond asyncio', () => {
    it('takes a function and calls it inside its task', async () => {
      await asyncioTest(kind, function* () {
        let inner: Task<unknown> | null = null;
        const res = yield* waitFor(() => {
          inner = currentTask();
          return kind.isGenerator ? (function* () {
            return 'v';
          })() : Promise.resolve('v');
        }, 1);
        expect(res).toBe('v');
        expect(inner).toBeInstanceOf(Task);
        expect(inner).not.toBe(currentTask());
      });
    });

    it('aborting its signal cancels the wait and the awaitable', async () => {
      await asyncioTest(kind, function* () {
        const controller = new AbortController();
        const loop = currentTask()!.getLoop();
        const task = createTask(kind.task(function* () {
          yield* sleep(10);
        }));
        loop.callLater(0.005, () => controller.abort('enough'));
        const exc = yield* raisedBy(function* () {
          yield* waitFor(task, 5, { signal: controller.signal });
        });
        expect(exc).toBeInstanceOf(CancelledError);
        expect(exc.message).toBe('enough');
        yield* wait([task]);
        expect(task.cancelled()).toBe(true);
      });
    });
  });
});

describe.each(LOOPS)('waitFor with async functions on %s', (backend) => {
  useLoop(backend);
  it('the function form is cancelled at the timeout and runs its finally', async () => {
    const loop = newLoop();
    const log: string[] = [];
    async function work(): Promise<string> {
      try {
        await sleep(10);
        return 'slept';
      } finally {
        log.push('finally');
      }
    }
    const exc = await loop.runUntilComplete(async () => {
      try {
        await waitFor(work, 0.01);
      } catch (e) {
        return e;
      }
      return null;
    });
    expect(exc).toBeInstanceOf(TimeoutError);
    expect(log).toEqual(['finally']);
  });

  it('a started promise times out; the promise keeps running', async () => {
    const loop = newLoop();
    const log: string[] = [];
    async function work(): Promise<string> {
      await sleep(0.02);
      log.push('work done');
      return 'slept';
    }
    const exc = await loop.runUntilComplete(async () => {
      const p = work();
      try {
        await waitFor(p, 0.005);
      } catch (e) {
        expect(log).toEqual([]);
        await p;
        return e;
      }
      return null;
    });
    expect(exc).toBeInstanceOf(TimeoutError);
    expect(log).toEqual(['work done']);
  });
});

describe.each(LOOPS)('waitFor bad input on %s', (backend) => {
  useLoop(backend);
  it('a timeout that is not a number is a TypeError', async () => {
    const loop = newLoop();
    const fut = loop.createFuture<void>();
    expect(() => waitFor(fut, NaN)).toThrow(TypeError);
    expect(() => waitFor(fut, '1' as unknown as number)).toThrow(TypeError);
    fut.cancel();
  });

  it('refuses what is not awaitable', () => {
    newLoop();
    expect(() => waitFor(42 as unknown as AwaitableLike<unknown>, 1)).toThrow(TypeError);
  });

  it('the Future it returns is of the awaitable loop; cancelling it cancels the awaitable', async () => {
    const loop = newLoop();
    const fut: Future<void> = loop.createFuture<void>();
    const outer = waitFor(fut, 10);
    expect(outer.getLoop()).toBe(loop);
    loop.callSoon(() => outer.cancel());
    await expect(loop.runUntilComplete(outer)).rejects.toThrow(CancelledError);
    await loop.runUntilComplete(() => sleep(0));
    expect(fut.cancelled()).toBe(true);
  });
});
