import { AsyncLocalStorage } from 'node:async_hooks';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  AbstractEventLoop,
  CancelledError,
  Future,
  InvalidStateError,
  RuntimeError,
  isFuture,
  newEventLoop,
  setEventLoop,
  type ExceptionContext,
} from '../lib/index.js';
import { _copyFutureState, _setResultUnlessCancelled, _setThenHook } from '../lib/futures.js';
import { eachLoop, useLoop, type TestLoop } from './helpers/loops.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with --expose-gc (vitest.config.ts sets it)');

const loops: TestLoop[] = [];

/** A loop of the kind under test (useLoop() points newEventLoop() at it). */
function newLoop(): TestLoop {
  const loop = newEventLoop() as TestLoop;
  loops.push(loop);
  return loop;
}

afterEach(() => {
  setEventLoop(null);
  for (const loop of loops.splice(0)) loop.close();
});

/**
 * test_utils.run_briefly: CPython runs a one-yield task to completion, which
 * takes three passes; callbacks scheduled by callbacks therefore get to run.
 */
async function runBriefly(loop: AbstractEventLoop, passes = 3): Promise<void> {
  let left = passes;
  const tick = (): void => {
    if (--left === 0) loop.stop();
    else loop.callSoon(tick);
  };
  loop.callSoon(tick);
  await loop.runForever();
}

/** Collects garbage until `done()` holds; FinalizationRegistry callbacks run as later tasks. */
async function collectUntil(done: () => boolean, rounds = 100): Promise<void> {
  for (let i = 0; i < rounds && !done(); i++) {
    gc!();
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A few more collections, for checks that something did not happen. */
async function collectMore(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    gc!();
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Exception handler calls recorded on `loop`. */
function recordExceptions(loop: AbstractEventLoop): ExceptionContext[] {
  const seen: ExceptionContext[] = [];
  loop.setExceptionHandler((l, ctx) => {
    expect(l).toBe(loop);
    seen.push(ctx);
  });
  return seen;
}

/** File and line of the caller, parsed as futures.ts parses its creation stack. */
function callerFrame(): [string, number] {
  const holder: { stack?: string } = {};
  Error.captureStackTrace(holder, callerFrame);
  for (const line of (holder.stack ?? '').split('\n')) {
    const m = /^\s*at (?:(.*?) \()?(.+?):(\d+):\d+\)?$/.exec(line);
    if (m !== null) return [m[2], Number(m[3])];
  }
  throw new Error('no frame');
}

class SubFuture<T = unknown> extends Future<T> {}

class ReachableCode extends Error {}

function firstCb(): void {}
function lastCb(): void {}
function fakeFunc(f: unknown): unknown {
  return f;
}

// CPython runs BaseFutureTests for the Python class, the C class and a C
// subclass; here for Future and a subclass (names in reprs and reports),
// on every loop of test/helpers/loops.ts.
describe.each(
  eachLoop([
    ['Future', Future],
    ['SubFuture', SubFuture],
  ] as const),
)('[%s] %s', (backend, name, Cls) => {
  useLoop(backend);
  const newFuture = <T = unknown>(loop: AbstractEventLoop): Future<T> => new Cls<T>({ loop });

  describe('state', () => {
    it('isFuture duck-types on a boolean _asyncioFutureBlocking', () => {
      class MyFuture {
        _asyncioFutureBlocking: boolean | null = null;
        constructor() {
          this._asyncioFutureBlocking = false;
        }
      }
      expect(isFuture(MyFuture)).toBe(false);
      expect(isFuture(new MyFuture())).toBe(true);
      expect(isFuture(1)).toBe(false);
      expect(isFuture({})).toBe(false);
      expect(isFuture(null)).toBe(false);

      const f = newFuture(newLoop());
      expect(isFuture(f)).toBe(true);
      expect(isFuture(Cls)).toBe(false);
      f.cancel();
    }); // CPython test_futures: test_isfuture

    it('starts pending and can be cancelled', () => {
      const f = newFuture(newLoop());
      expect(f.cancelled()).toBe(false);
      expect(f.done()).toBe(false);
      f.cancel();
      expect(f.cancelled()).toBe(true);
    }); // CPython test_futures: test_initial_state

    it('throws RuntimeError without a loop', () => {
      setEventLoop(null);
      expect(() => new Cls()).toThrow(RuntimeError);
      expect(() => new Cls()).toThrow(/no current event loop/);
    }); // CPython test_futures: test_constructor_without_loop

    it('uses the running loop', async () => {
      const loop = newLoop();
      const other = newLoop();
      setEventLoop(other);
      // Boxed: a Future result would be adopted as a thenable by the Promise.
      const outer = loop.createFuture<{ f: Future<unknown> }>();
      loop.callSoon(() => outer.setResult({ f: new Cls() }));
      const { f } = await loop.runUntilComplete(outer);
      expect(f._loop).toBe(loop);
      expect(f.getLoop()).toBe(loop);
    }); // CPython test_futures: test_constructor_use_running_loop

    it('uses the loop set with setEventLoop', () => {
      const loop = newLoop();
      setEventLoop(loop);
      const f = new Cls();
      expect(f._loop).toBe(loop);
      expect(f.getLoop()).toBe(loop);
    }); // CPython test_futures: test_constructor_use_global_loop

    it('rejects a positional argument', () => {
      const loop = newLoop();
      setEventLoop(loop);
      expect(() => new Cls(42 as never)).toThrow(TypeError);
      // The likely mistake: the loop itself instead of { loop }.
      expect(() => new Cls(loop as never)).toThrow(/Expected "options" to be .*, got an instance of \w+EventLoop/);
    }); // CPython test_futures: test_constructor_positional

    it('keeps the cancel message in _cancelMessage', async () => {
      const loop = newLoop();
      const f = newFuture(loop);
      expect(f._cancelMessage).toBeUndefined();
      f.cancel('my message');
      await expect(loop.runUntilComplete(f)).rejects.toThrow(CancelledError);
      expect(f._cancelMessage).toBe('my message');
    }); // CPython test_futures: test_future_cancel_message_getter

    it('uses a _cancelMessage set after cancel()', async () => {
      const loop = newLoop();
      const f = newFuture(loop);
      f.cancel('my message');
      f._cancelMessage = 'my new message';
      expect(f._cancelMessage).toBe('my new message');
      const err = await loop.runUntilComplete(f).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CancelledError);
      expect((err as Error).message).toBe('my new message');
      expect(f._cancelMessage).toBe('my new message');
    }); // CPython test_futures: test_future_cancel_message_setter

    it('cancel() makes it done and cancelled', () => {
      const f = newFuture(newLoop());
      expect(f.cancel()).toBe(true);
      expect(f.cancelled()).toBe(true);
      expect(f.done()).toBe(true);
      expect(() => f.result()).toThrow(CancelledError);
      expect(() => f.exception()).toThrow(CancelledError);
      expect(() => f.setResult(undefined)).toThrow(InvalidStateError);
      expect(() => f.setException(undefined)).toThrow(InvalidStateError);
      expect(f.cancel()).toBe(false);
    }); // CPython test_futures: test_cancel

    it('setResult() makes it done with a result', () => {
      const f = newFuture<number>(newLoop());
      expect(() => f.result()).toThrow(InvalidStateError);

      f.setResult(42);
      expect(f.cancelled()).toBe(false);
      expect(f.done()).toBe(true);
      expect(f.result()).toBe(42);
      expect(f.exception()).toBeUndefined();
      expect(() => f.setResult(0)).toThrow(InvalidStateError);
      expect(() => f.setException(undefined)).toThrow(InvalidStateError);
      expect(f.cancel()).toBe(false);
    }); // CPython test_futures: test_result

    it('setException() makes it done with an exception', () => {
      const exc = new RuntimeError();
      const f = newFuture(newLoop());
      expect(() => f.exception()).toThrow(InvalidStateError);

      f.setException(exc);
      expect(f.cancelled()).toBe(false);
      expect(f.done()).toBe(true);
      expect(() => f.result()).toThrow(RuntimeError);
      expect(f.exception()).toBe(exc);
      expect(() => f.setResult(0)).toThrow(InvalidStateError);
      expect(() => f.setException(undefined)).toThrow(InvalidStateError);
      expect(f.cancel()).toBe(false);
    }); // CPython test_futures: test_exception

    it('instantiates an exception class', () => {
      const f = newFuture(newLoop());
      f.setException(RuntimeError);
      expect(f.exception()).toBeInstanceOf(RuntimeError);

      const g = newFuture(newLoop());
      g.setException(Error);
      expect(g.exception()).toBeInstanceOf(Error);
      expect(g.exception()).not.toBe(Error);
    }); // CPython test_futures: test_exception_class

    it('yield* twice: the second does not yield', () => {
      const f = newFuture<number>(newLoop());
      function* fixture(): Generator<unknown, void, unknown> {
        yield 'A';
        const x = yield* f;
        yield ['B', x];
        const y = yield* f;
        yield ['C', y];
      }
      const g = fixture();
      expect(g.next().value).toBe('A');
      expect(g.next().value).toBe(f); // First yield* f.
      f.setResult(42);
      expect(g.next().value).toEqual(['B', 42]);
      // The second yield* f does not yield f.
      expect(g.next().value).toEqual(['C', 42]);
    }); // CPython test_futures: test_yield_from_twice

    it('has asyncio-style reprs', () => {
      const loop = newLoop();
      loop.setDebug(true);
      const fPendingDebug = newFuture(loop);
      const frame = fPendingDebug._sourceTraceback!.at(-1)!;
      expect(String(fPendingDebug)).toBe(`<${name} pending created at ${frame[0]}:${frame[1]}>`);
      fPendingDebug.cancel();

      loop.setDebug(false);
      const fPending = newFuture(loop);
      expect(String(fPending)).toBe(`<${name} pending>`);
      fPending.cancel();

      const fCancelled = newFuture(loop);
      fCancelled.cancel();
      expect(String(fCancelled)).toBe(`<${name} cancelled>`);

      const fResult = newFuture(loop);
      fResult.setResult(4);
      expect(String(fResult)).toBe(`<${name} finished result=4>`);
      expect(fResult.result()).toBe(4);

      const exc = new RuntimeError();
      const fException = newFuture(loop);
      fException.setException(exc);
      expect(String(fException)).toBe(`<${name} finished exception=RuntimeError()>`);
      expect(fException.exception()).toBe(exc);

      const fOneCallbacks = newFuture(loop);
      fOneCallbacks.addDoneCallback(fakeFunc);
      expect(String(fOneCallbacks)).toBe(`<${name} pending cb=[fakeFunc()]>`);
      fOneCallbacks.cancel();
      expect(String(fOneCallbacks)).toBe(`<${name} cancelled>`);

      const fTwoCallbacks = newFuture(loop);
      fTwoCallbacks.addDoneCallback(firstCb);
      fTwoCallbacks.addDoneCallback(lastCb);
      expect(String(fTwoCallbacks)).toBe(`<${name} pending cb=[firstCb(), lastCb()]>`);

      const fManyCallbacks = newFuture(loop);
      fManyCallbacks.addDoneCallback(firstCb);
      for (let i = 0; i < 8; i++) fManyCallbacks.addDoneCallback(fakeFunc);
      fManyCallbacks.addDoneCallback(lastCb);
      expect(String(fManyCallbacks)).toBe(`<${name} pending cb=[firstCb(), <8 more>, lastCb()]>`);
      fManyCallbacks.cancel();
      expect(String(fManyCallbacks)).toBe(`<${name} cancelled>`);
    }); // CPython test_futures: test_future_repr

    it('_copyFutureState copies result, exception and cancellation', () => {
      const loop = newLoop();
      const f = newFuture(loop);
      f.setResult(10);
      const newf = newFuture(loop);
      _copyFutureState(f, newf);
      expect(newf.done()).toBe(true);
      expect(newf.result()).toBe(10);

      const exc = new RuntimeError('boom');
      const fException = newFuture(loop);
      fException.setException(exc);
      const newfException = newFuture(loop);
      _copyFutureState(fException, newfException);
      expect(newfException.done()).toBe(true);
      expect(() => newfException.result()).toThrow(exc);

      const fCancelled = newFuture(loop);
      fCancelled.cancel();
      const newfCancelled = newFuture(loop);
      _copyFutureState(fCancelled, newfCancelled);
      expect(newfCancelled.cancelled()).toBe(true);
    }); // CPython test_futures: test_copy_state

    it('iterating twice without waiting throws RuntimeError', () => {
      const fut = newFuture(newLoop());
      function* coro(): Generator<unknown, void, unknown> {
        yield* fut;
      }
      const test = (): void => {
        // Destructuring pulls two values: the second next() finds fut pending.
        const [arg1, arg2] = coro();
        void arg1;
        void arg2;
      };
      expect(test).toThrow(RuntimeError);
      expect(test).toThrow("await wasn't used");
      fut.cancel();
    }); // CPython test_futures: test_iter

    it('_logTraceback can only be cleared', () => {
      const fut = newFuture(newLoop());
      expect(() => {
        fut._logTraceback = true;
      }).toThrow(/can only be set to false/);
    }); // CPython test_futures: test_log_traceback

    describe('never-retrieved exceptions', () => {
      // Each check also drops a canary Future whose exception must be
      // reported, so "not reported" cannot pass just because GC or the
      // FinalizationRegistry did not run.
      async function reportsAfterGc(loop: AbstractEventLoop, make: () => void): Promise<ExceptionContext[]> {
        const seen = recordExceptions(loop);
        const canary = new Error('canary');
        make();
        (() => newFuture(loop).setException(canary))();
        await collectUntil(() => seen.some((ctx) => ctx.exception === canary));
        await collectMore();
        expect(seen.filter((ctx) => ctx.exception === canary)).toHaveLength(1);
        return seen.filter((ctx) => ctx.exception !== canary);
      }

      it('an abandoned pending Future is not reported', async () => {
        const loop = newLoop();
        const reports = await reportsAfterGc(loop, () => {
          newFuture(loop);
        });
        expect(reports).toEqual([]);
      }); // CPython test_futures: test_tb_logger_abandoned

      it('not reported after cancel()', async () => {
        const loop = newLoop();
        const reports = await reportsAfterGc(loop, () => {
          const fut = newFuture(loop);
          fut.setException(new Error('x'));
          expect(fut.cancel()).toBe(false);
        });
        expect(reports).toEqual([]);
      }); // CPython test_futures: test_tb_logger_not_called_after_cancel

      it('an unretrieved result is not reported', async () => {
        const loop = newLoop();
        const reports = await reportsAfterGc(loop, () => {
          newFuture(loop).setResult(42);
        });
        expect(reports).toEqual([]);
      }); // CPython test_futures: test_tb_logger_result_unretrieved

      it('a retrieved result is not reported', async () => {
        const loop = newLoop();
        const reports = await reportsAfterGc(loop, () => {
          const fut = newFuture(loop);
          fut.setResult(42);
          fut.result();
        });
        expect(reports).toEqual([]);
      }); // CPython test_futures: test_tb_logger_result_retrieved

      it('an unretrieved exception is reported', async () => {
        const loop = newLoop();
        const exc = new RuntimeError('boom');
        const reports = await reportsAfterGc(loop, () => {
          newFuture(loop).setException(exc);
        });
        expect(reports.map((ctx) => ctx.exception)).toEqual([exc]);
      }); // CPython test_futures: test_tb_logger_exception_unretrieved

      it('not reported after exception()', async () => {
        const loop = newLoop();
        const reports = await reportsAfterGc(loop, () => {
          const fut = newFuture(loop);
          fut.setException(new RuntimeError('boom'));
          fut.exception();
        });
        expect(reports).toEqual([]);
      }); // CPython test_futures: test_tb_logger_exception_retrieved

      it('not reported after result() threw it', async () => {
        const loop = newLoop();
        const reports = await reportsAfterGc(loop, () => {
          const fut = newFuture(loop);
          fut.setException(new RuntimeError('boom'));
          expect(() => fut.result()).toThrow(RuntimeError);
        });
        expect(reports).toEqual([]);
      }); // CPython test_futures: test_tb_logger_exception_result_retrieved

      async function checkNeverRetrieved(debug: boolean): Promise<void> {
        const loop = newLoop();
        loop.setDebug(debug);
        const seen = recordExceptions(loop);
        const exc = new RangeError('memory');
        let line = 0;
        (() => {
          const future = newFuture(loop); line = callerFrame()[1];
          future.setException(exc);
        })();
        await runBriefly(loop);
        await collectUntil(() => seen.length > 0);
        await collectMore();
        expect(seen).toHaveLength(1);
        expect(seen[0].message).toBe(`${name} exception was never retrieved`);
        expect(seen[0].exception).toBe(exc);
        if (debug) {
          // As in CPython, the last frame is the newFuture helper, then its caller.
          const tb = seen[0].sourceTraceback as [string, number, string][];
          expect(tb.at(-2)![1]).toBe(line);
        } else {
          expect(seen[0]).not.toHaveProperty('sourceTraceback');
        }
      }

      it('reports "<class> exception was never retrieved" once', async () => {
        await checkNeverRetrieved(false);
      }); // CPython test_futures: test_future_exception_never_retrieved

      it('reports with the creation stack in debug mode', async () => {
        await checkNeverRetrieved(true);
      }); // CPython test_futures: test_future_exception_never_retrieved_debug

      it('is not reported after await, before or after completion', async () => {
        const loop = newLoop();
        const seen = recordExceptions(loop);
        const canary = new Error('canary');
        const before = new Error('awaited before');
        const after = new Error('awaited after');
        await (async () => {
          const f1 = newFuture(loop);
          const waiting = f1.then(
            () => 'resolved',
            (e: unknown) => e,
          );
          f1.setException(before);
          expect(await waiting).toBe(before);
          const f2 = newFuture(loop);
          f2.setException(after);
          await expect(f2).rejects.toBe(after);
          newFuture(loop).setException(canary);
        })();
        await collectUntil(() => seen.length > 0);
        await collectMore();
        expect(seen.map((ctx) => ctx.exception)).toEqual([canary]);
      });

      it('is not reported after _logTraceback = false', async () => {
        const loop = newLoop();
        const reports = await reportsAfterGc(loop, () => {
          const fut = newFuture(loop);
          fut.setException(new Error('silenced'));
          expect(fut._logTraceback).toBe(true);
          fut._logTraceback = false;
          expect(fut._logTraceback).toBe(false);
        });
        expect(reports).toEqual([]);
      });
    });

    it('records where it was created in debug mode', () => {
      const loop = newLoop();
      loop.setDebug(true);

      const future = new Cls({ loop }); const [file, line] = callerFrame();
      expect(Array.isArray(future._sourceTraceback)).toBe(true);
      const frame = future._sourceTraceback!.at(-1)!;
      expect(frame.slice(0, 2)).toEqual([file, line]);

      // Through createFuture the caller is further down the stack.
      const viaLoop = loop.createFuture(); const [, line2] = callerFrame();
      expect(viaLoop._sourceTraceback!.some(([f, l]) => f === file && l === line2)).toBe(true);

      loop.setDebug(false);
      expect(newFuture(loop)._sourceTraceback).toBeNull();
    }); // CPython test_futures: test_future_source_traceback

    it('_setResultUnlessCancelled leaves a cancelled Future alone', () => {
      const fut = newFuture(newLoop());
      fut.cancel();
      _setResultUnlessCancelled(fut, 2);
      expect(fut.cancelled()).toBe(true);

      const other = newFuture(newLoop());
      _setResultUnlessCancelled(other, 2);
      expect(other.result()).toBe(2);
    }); // CPython test_futures: test_set_result_unless_cancelled

    it('the iterator of a done Future returns its result', () => {
      const fut = newFuture<[number, number]>(newLoop());
      fut.setResult([1, 2]);
      const fi = fut[Symbol.iterator]();
      expect(fi.next()).toEqual({ done: true, value: [1, 2] });
    }); // CPython test_futures: test_future_stop_iteration_args

    it('throw() on its iterator throws the exception', () => {
      const fut = newFuture(newLoop());
      const fi = fut[Symbol.iterator]();
      const zebra = new Error('zebra');
      expect(() => fi.throw(zebra)).toThrow(zebra);
      // Python's legacy throw(type, value, tb) signatures have no JS equivalent.
      fut.cancel();
    }); // CPython test_futures: test_future_iter_throw

    it('keeps no reference to the CancelledError result() raised', () => {
      const f = newFuture(newLoop());
      f.cancel();
      let exc: unknown;
      try {
        f.result();
      } catch (e) {
        exc = e;
      }
      expect(exc).toBeInstanceOf(CancelledError);
      expect(Object.values(f)).not.toContain(exc);
      expect(f._cancelledExc).toBeUndefined();
    }); // CPython test_futures: test_future_cancelled_result_refcycles

    it('keeps no reference to the CancelledError exception() raised', () => {
      const f = newFuture(newLoop());
      f.cancel();
      let exc: unknown;
      try {
        f.exception();
      } catch (e) {
        exc = e;
      }
      expect(exc).toBeInstanceOf(CancelledError);
      expect(Object.values(f)).not.toContain(exc);
      expect(f._cancelledExc).toBeUndefined();
    }); // CPython test_futures: test_future_cancelled_exception_refcycles

    it('its iterator is finished after throw()', () => {
      const fut = newFuture(newLoop());
      const it = fut[Symbol.iterator]();
      const first = it.next();
      expect(first.done).toBe(false);
      expect(first.value).toBe(fut);
      expect(() => it.throw(new RuntimeError())).toThrow(RuntimeError);
      expect(it.next()).toEqual({ done: true, value: undefined });
      fut.cancel();
    }); // CPython test_futures: test_futureiter_send_after_throw_no_crash
  });

  describe('done callbacks', () => {
    const makeCallback = (bag: unknown[], thing: unknown) =>
      function bagAppender(_future: Future<unknown>): void {
        bag.push(thing);
      };

    it('removing the first callback', async () => {
      const loop = newLoop();
      const bag: unknown[] = [];
      const f = newFuture(loop);
      const cb1 = makeCallback(bag, 42);
      const cb2 = makeCallback(bag, 17);
      const cb3 = makeCallback(bag, 100);
      f.addDoneCallback(cb1);
      f.addDoneCallback(cb2);
      f.addDoneCallback(cb3);
      f.removeDoneCallback(cb1);
      f.removeDoneCallback(cb1);
      expect(bag).toEqual([]);
      f.setResult('foo');
      await runBriefly(loop);
      expect(bag).toEqual([17, 100]);
      expect(f.result()).toBe('foo');
    }); // CPython test_futures: test_callbacks_remove_first_callback

    it('removing the first and second callbacks', async () => {
      const loop = newLoop();
      const bag: unknown[] = [];
      const f = newFuture(loop);
      const cb1 = makeCallback(bag, 42);
      const cb2 = makeCallback(bag, 17);
      const cb3 = makeCallback(bag, 100);
      f.addDoneCallback(cb1);
      f.addDoneCallback(cb2);
      f.addDoneCallback(cb3);
      f.removeDoneCallback(cb1);
      f.removeDoneCallback(cb2);
      f.removeDoneCallback(cb1);
      expect(bag).toEqual([]);
      f.setResult('foo');
      await runBriefly(loop);
      expect(bag).toEqual([100]);
      expect(f.result()).toBe('foo');
    }); // CPython test_futures: test_callbacks_remove_first_and_second_callback

    it('removing the third callback', async () => {
      const loop = newLoop();
      const bag: unknown[] = [];
      const f = newFuture(loop);
      const cb1 = makeCallback(bag, 42);
      const cb2 = makeCallback(bag, 17);
      const cb3 = makeCallback(bag, 100);
      f.addDoneCallback(cb1);
      f.addDoneCallback(cb2);
      f.addDoneCallback(cb3);
      f.removeDoneCallback(cb3);
      f.removeDoneCallback(cb3);
      expect(bag).toEqual([]);
      f.setResult('foo');
      await runBriefly(loop);
      expect(bag).toEqual([42, 17]);
      expect(f.result()).toBe('foo');
    }); // CPython test_futures: test_callbacks_remove_third_callback

    it('run after setResult()', async () => {
      const loop = newLoop();
      const bag: unknown[] = [];
      const f = newFuture(loop);
      f.addDoneCallback(makeCallback(bag, 42));
      f.addDoneCallback(makeCallback(bag, 17));
      expect(bag).toEqual([]);
      f.setResult('foo');
      await runBriefly(loop);
      expect(bag).toEqual([42, 17]);
      expect(f.result()).toBe('foo');
    }); // CPython test_futures: test_callbacks_invoked_on_set_result

    it('run after setException()', async () => {
      const loop = newLoop();
      const bag: unknown[] = [];
      const f = newFuture(loop);
      f.addDoneCallback(makeCallback(bag, 100));
      expect(bag).toEqual([]);
      const exc = new RuntimeError();
      f.setException(exc);
      await runBriefly(loop);
      expect(bag).toEqual([100]);
      expect(f.exception()).toBe(exc);
    }); // CPython test_futures: test_callbacks_invoked_on_set_exception

    it('removeDoneCallback() removes every registration and returns the count', async () => {
      const loop = newLoop();
      const bag: unknown[] = [];
      const f = newFuture(loop);
      const cb1 = makeCallback(bag, 1);
      const cb2 = makeCallback(bag, 2);
      const cb3 = makeCallback(bag, 3);

      // Add one cb1 and one cb2.
      f.addDoneCallback(cb1);
      f.addDoneCallback(cb2);
      // One instance of cb2 removed. Now there's only one cb1.
      expect(f.removeDoneCallback(cb2)).toBe(1);
      // Never had any cb3 in there.
      expect(f.removeDoneCallback(cb3)).toBe(0);
      // After this there will be 6 instances of cb1 and one of cb2.
      f.addDoneCallback(cb2);
      for (let i = 0; i < 5; i++) f.addDoneCallback(cb1);
      // Remove all instances of cb1. One cb2 remains.
      expect(f.removeDoneCallback(cb1)).toBe(6);

      expect(bag).toEqual([]);
      f.setResult('foo');
      await runBriefly(loop);
      expect(bag).toEqual([2]);
      expect(f.result()).toBe('foo');
    }); // CPython test_futures: test_remove_done_callback

    it('a callback removing later ones does not stop them: they are already scheduled', async () => {
      const loop = newLoop();
      const bag: unknown[] = [];
      const strCb = (): void => {
        bag.push('str');
      };
      const mut = (f: Future<unknown>): void => {
        bag.push(['mut', f.removeDoneCallback(strCb)]);
      };
      const fut = newFuture(loop);
      fut.addDoneCallback(mut);
      fut.addDoneCallback(strCb);
      fut.addDoneCallback(strCb);
      fut.setResult(1);
      await runBriefly(loop);
      expect(bag).toEqual([['mut', 0], 'str', 'str']);
    }); // CPython test_futures: test_schedule_callbacks_list_mutation_1

    it('survives callSoon removing callbacks while they are scheduled', () => {
      const loop = newLoop();
      let calls = 0;
      let fut: Future<unknown>;
      const pad = (): void => {};
      const intCb = (): void => {};
      const evilCallSoon = (): void => {
        calls++;
        if (calls > 1) {
          // Called while scheduling the second callback: shrinks the list.
          fut.removeDoneCallback(intCb);
          fut.removeDoneCallback(pad);
        }
      };
      (loop as { callSoon: unknown }).callSoon = evilCallSoon;
      fut = newFuture(loop);
      expect(fut.getLoop()).toBe(loop);
      fut.addDoneCallback(String);
      fut.addDoneCallback(intCb);
      fut.addDoneCallback(pad);
      fut.addDoneCallback(pad);
      fut.setResult('boom');
      expect(calls).toBe(4);
      expect(fut._callbacks).toEqual([]);
    }); // CPython test_futures: test_evil_call_soon_list_mutation

    it('survives a callSoon getter removing the callback being scheduled', () => {
      const loop = newLoop();
      const realCallSoon = loop.callSoon.bind(loop) as (...args: any[]) => unknown;
      let fut: Future<unknown>;
      let futCallback0: (() => void) | undefined = () => {};
      Object.defineProperty(loop, 'callSoon', {
        configurable: true,
        get() {
          if (futCallback0 !== undefined) fut.removeDoneCallback(futCallback0);
          futCallback0 = undefined;
          return (...args: unknown[]) => {
            realCallSoon(...args);
            throw new ReachableCode();
          };
        },
      });
      fut = newFuture(loop);
      expect(fut.getLoop()).toBe(loop);
      fut.addDoneCallback(futCallback0);
      expect(() => fut.setResult('boom')).toThrow(ReachableCode);
      expect(fut.result()).toBe('boom');
      expect(fut._callbacks).toEqual([]);
    }); // CPython test_futures: test_use_after_free_on_fut_callback_0_with_evil__getattribute__

    it('receive the Future and run in FIFO order through callSoon, never synchronously', async () => {
      const loop = newLoop();
      const spy = vi.spyOn(loop, 'callSoon');
      const fut = newFuture<string>(loop);
      const got: [string, unknown][] = [];
      const a = (f: unknown): void => void got.push(['a', f]);
      const b = (f: unknown): void => void got.push(['b', f]);
      const c = (f: unknown): void => void got.push(['c', f]);
      fut.addDoneCallback(a);
      fut.addDoneCallback(b);
      fut.addDoneCallback(c);
      fut.setResult('x');
      expect(got).toEqual([]);
      expect(spy.mock.calls).toEqual([
        [a, fut],
        [b, fut],
        [c, fut],
      ]);
      await runBriefly(loop);
      expect(got).toEqual([
        ['a', fut],
        ['b', fut],
        ['c', fut],
      ]);
    });

    it('added to a done Future are scheduled with callSoon', async () => {
      const loop = newLoop();
      const fut = newFuture(loop);
      fut.setResult(1);
      const spy = vi.spyOn(loop, 'callSoon');
      const got: unknown[] = [];
      const cb = (f: unknown): void => void got.push(f);
      fut.addDoneCallback(cb);
      expect(got).toEqual([]);
      expect(spy).toHaveBeenCalledWith(cb, fut);
      await runBriefly(loop);
      expect(got).toEqual([fut]);
    });

    it('run inside the context given, pending or done', async () => {
      const loop = newLoop();
      const als = new AsyncLocalStorage<string>();
      const context = als.run('ctx', () => AsyncLocalStorage.snapshot());
      const seen: unknown[] = [];
      const cb = (): void => void seen.push(als.getStore());
      const pending = newFuture(loop);
      pending.addDoneCallback(cb, { context });
      pending.addDoneCallback(cb);
      pending.setResult(1);
      const done = newFuture(loop);
      done.setResult(2);
      done.addDoneCallback(cb, { context });
      await runBriefly(loop);
      expect(seen).toEqual(['ctx', undefined, 'ctx']);
    });

    it('an exception in a callback goes to the exception handler', async () => {
      const loop = newLoop();
      const seen = recordExceptions(loop);
      const fut = newFuture(loop);
      const boom = new Error('boom');
      const ran: number[] = [];
      fut.addDoneCallback(() => {
        throw boom;
      });
      fut.addDoneCallback(() => void ran.push(2));
      fut.setResult(1);
      await runBriefly(loop);
      expect(seen.map((ctx) => ctx.exception)).toEqual([boom]);
      expect(ran).toEqual([2]);
    });
  });

  describe('await and then()', () => {
    it('await gives the result', async () => {
      const loop = newLoop();
      const fut = newFuture<number>(loop);
      setTimeout(() => fut.setResult(42), 1);
      expect(await fut).toBe(42);
      // Already done.
      expect(await fut).toBe(42);
    });

    it('await throws the exception set', async () => {
      const loop = newLoop();
      const fut = newFuture(loop);
      const exc = new RuntimeError('boom');
      const waiting = (async () => {
        try {
          await fut;
          return 'no throw';
        } catch (e) {
          return e;
        }
      })();
      fut.setException(exc);
      expect(await waiting).toBe(exc);
      await expect(fut).rejects.toBe(exc);
    });

    it('await throws CancelledError with the cancel message', async () => {
      const loop = newLoop();
      const before = newFuture(loop);
      const waiting = Promise.resolve(before).catch((e: unknown) => e);
      before.cancel('stop now');
      const err = await waiting;
      expect(err).toBeInstanceOf(CancelledError);
      expect((err as Error).message).toBe('stop now');

      const after = newFuture(loop);
      after.cancel('later');
      await expect(after).rejects.toThrow(CancelledError);
      await expect(after).rejects.toThrow('later');
    });

    it('works with Promise.all', async () => {
      const loop = newLoop();
      const f1 = newFuture<number>(loop);
      const f2 = newFuture<string>(loop);
      const all = Promise.all([f1, f2]);
      f2.setResult('two');
      f1.setResult(1);
      expect(await all).toEqual([1, 'two']);

      const f3 = newFuture<number>(loop);
      const f4 = newFuture<number>(loop);
      const exc = new Error('f4');
      const failing = Promise.all([f3, f4]);
      f4.setException(exc);
      await expect(failing).rejects.toBe(exc);
      f3.cancel();
    });

    it('then() handlers never run synchronously', async () => {
      const loop = newLoop();
      const order: string[] = [];
      const fut = newFuture<number>(loop);
      const chained = fut.then((v) => {
        order.push(`then ${v}`);
        return v + 1;
      });
      order.push('before setResult');
      fut.setResult(41);
      order.push('after setResult');
      const doneHandler = fut.then((v) => void order.push(`done ${v}`));
      order.push('after then on done');
      expect(order).toEqual(['before setResult', 'after setResult', 'after then on done']);
      expect(await chained.then((v) => v * 2)).toBe(84);
      await doneHandler;
      expect(order).toEqual(['before setResult', 'after setResult', 'after then on done', 'then 41', 'done 41']);
    });

    it('settles then() waiters on completion, without the loop running', async () => {
      const loop = newLoop();
      const fut = newFuture<string>(loop);
      const doneCallbacks: unknown[] = [];
      fut.addDoneCallback((f) => void doneCallbacks.push(f));
      const waiting = fut.then((v) => v.toUpperCase());
      fut.setResult('ok');
      expect(await waiting).toBe('OK');
      // Done callbacks, unlike then(), wait for the loop.
      expect(doneCallbacks).toEqual([]);
      await runBriefly(loop);
      expect(doneCallbacks).toEqual([fut]);
    });

    it('catch() and finally()', async () => {
      const loop = newLoop();
      const fut = newFuture(loop);
      const exc = new Error('caught');
      const caught = fut.catch((e: unknown) => e);
      let finallyRan = false;
      const fin = fut.finally(() => {
        finallyRan = true;
      });
      fut.setException(exc);
      expect(await caught).toBe(exc);
      await expect(fin).rejects.toBe(exc);
      expect(finallyRan).toBe(true);
    });
  });

  describe('yield*', () => {
    it('yields the Future once, then returns its result', () => {
      const fut = newFuture<number>(newLoop());
      function* coro(): Generator<Future<unknown>, number, unknown> {
        const x = yield* fut;
        return x * 2;
      }
      const g = coro();
      // Not toEqual: deep equality iterates the Future, i.e. awaits it wrongly.
      const first = g.next();
      expect(first.done).toBe(false);
      expect(first.value).toBe(fut);
      expect(fut._asyncioFutureBlocking).toBe(true);
      fut.setResult(21);
      expect(g.next()).toEqual({ done: true, value: 42 });
    });

    it('does not yield a done Future', () => {
      const fut = newFuture<string>(newLoop());
      fut.setResult('now');
      function* coro(): Generator<Future<unknown>, string, unknown> {
        return yield* fut;
      }
      expect(coro().next()).toEqual({ done: true, value: 'now' });
      expect(fut._asyncioFutureBlocking).toBe(false);
    });

    it('throws the exception, or CancelledError with the message, into the generator', () => {
      const loop = newLoop();
      function* coro(f: Future<unknown>): Generator<Future<unknown>, unknown, unknown> {
        try {
          return yield* f;
        } catch (e) {
          return ['caught', e];
        }
      }
      const failed = newFuture(loop);
      const g1 = coro(failed);
      g1.next();
      const exc = new RuntimeError('boom');
      failed.setException(exc);
      expect(g1.next()).toEqual({ done: true, value: ['caught', exc] });

      const cancelled = newFuture(loop);
      const g2 = coro(cancelled);
      g2.next();
      cancelled.cancel('msg');
      const r = g2.next();
      expect(r.done).toBe(true);
      const [tag, err] = r.value as [string, Error];
      expect(tag).toBe('caught');
      expect(err).toBeInstanceOf(CancelledError);
      expect(err.message).toBe('msg');
    });

    it('next() after the yield on a pending Future throws RuntimeError', () => {
      const fut = newFuture(newLoop());
      function* coro(): Generator<Future<unknown>, unknown, unknown> {
        return yield* fut;
      }
      const g = coro();
      expect(g.next().value).toBe(fut);
      expect(() => g.next()).toThrow(RuntimeError);
      expect(g.next()).toEqual({ done: true, value: undefined });
      const it = fut[Symbol.iterator]();
      it.next();
      expect(() => it.next()).toThrow("await wasn't used with future");
      fut.cancel();
    });

    it('its iterator, once finished, only reports done', () => {
      const loop = newLoop();
      const done = newFuture<number>(loop);
      done.setResult(7);
      const it1 = done[Symbol.iterator]();
      expect(it1.next()).toEqual({ done: true, value: 7 });
      expect(it1.next()).toEqual({ done: true, value: undefined });

      const pending = newFuture(loop);
      const it2 = pending[Symbol.iterator]();
      expect(it2.next().value).toBe(pending);
      expect(it2.return(5)).toEqual({ done: true, value: 5 });
      pending.setResult(1);
      expect(it2.next()).toEqual({ done: true, value: undefined });

      const it3 = newFuture(loop)[Symbol.iterator]();
      it3.next();
      expect(() => it3.next()).toThrow(RuntimeError);
      expect(it3.next()).toEqual({ done: true, value: undefined });
    });

    it('generator.throw() at the yield* reaches the frame (how a Task cancels)', () => {
      const fut = newFuture(newLoop());
      function* coro(): Generator<Future<unknown>, unknown, unknown> {
        try {
          yield* fut;
          return 'not thrown';
        } catch (e) {
          return e;
        }
      }
      const g = coro();
      g.next();
      const cancel = new CancelledError('from task');
      expect(g.throw(cancel)).toEqual({ done: true, value: cancel });
      fut.cancel();
    });
  });

  describe('hooks for tasks.ts', () => {
    afterEach(() => _setThenHook(null));

    it('then() reports its Future to the then-hook, also for await', async () => {
      const loop = newLoop();
      const seen: unknown[] = [];
      _setThenHook((f) => void seen.push(f));
      const fut = newFuture<number>(loop);
      const waiting = (async () => await fut)();
      fut.setResult(3);
      expect(await waiting).toBe(3);
      void fut.then(() => {});
      expect(seen).toHaveLength(2);
      expect(seen[0]).toBe(fut);
      expect(seen[1]).toBe(fut);
      _setThenHook(null);
      await fut;
      expect(seen).toHaveLength(2);
    });

    it('_setExceptionUnchecked() accepts a CancelledError, as gather() needs', async () => {
      const loop = newLoop();
      const fut = newFuture(loop);
      const exc = new CancelledError('child');
      fut._setExceptionUnchecked(exc);
      expect(fut.cancelled()).toBe(false);
      expect(fut.exception()).toBe(exc);
      await expect(fut).rejects.toBe(exc);
      expect(() => fut._setExceptionUnchecked(new Error())).toThrow(InvalidStateError);
      expect(() => newFuture(loop)._setExceptionUnchecked(undefined)).toThrow(TypeError);
    });
  });

  describe('bad input', () => {
    it('setResult() twice throws InvalidStateError naming the state', () => {
      const fut = newFuture(newLoop());
      fut.setResult(1);
      let err: unknown;
      try {
        fut.setResult(2);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(InvalidStateError);
      expect((err as Error).message.startsWith('FINISHED: ')).toBe(true);
      expect((err as Error).message).toBe(`FINISHED: <${name} finished result=1>`);
      expect(fut.result()).toBe(1);

      const cancelled = newFuture(newLoop());
      cancelled.cancel();
      expect(() => cancelled.setException(new Error())).toThrow(/^CANCELLED: /);
    });

    it('setException(undefined) throws TypeError', () => {
      const fut = newFuture(newLoop());
      expect(() => fut.setException(undefined)).toThrow(TypeError);
      expect(fut.done()).toBe(false);
    });

    it('setException(CancelledError) throws TypeError', () => {
      const fut = newFuture(newLoop());
      expect(() => fut.setException(new CancelledError())).toThrow(TypeError);
      expect(() => fut.setException(CancelledError)).toThrow(TypeError);
      expect(fut.done()).toBe(false);
    });

    it('addDoneCallback() of a non-function throws TypeError naming "fn"', () => {
      const fut = newFuture(newLoop());
      expect(() => fut.addDoneCallback(42 as never)).toThrow(TypeError);
      expect(() => fut.addDoneCallback('cb' as never)).toThrow(/"fn"/);
      expect(fut._callbacks).toEqual([]);
    });

    it('result() and exception() of a pending Future throw InvalidStateError', () => {
      const fut = newFuture(newLoop());
      expect(() => fut.result()).toThrow(InvalidStateError);
      expect(() => fut.result()).toThrow(/^Result is not ready\.$/);
      expect(() => fut.exception()).toThrow(InvalidStateError);
      expect(() => fut.exception()).toThrow(/^Exception is not set\.$/);
    });
  });
});

