/**
 * Tests for lib/executor.ts: ThreadPoolExecutor (piscina), runInExecutor,
 * toThread, the default executor and its shutdown, wrapFuture.
 *
 * Ported from CPython 3.14 Lib/test/test_asyncio/{test_threads,
 * test_events,test_base_events}.py where a case applies. Jobs that must
 * block for a while wait on a SharedArrayBuffer flag this thread releases
 * (test/fixtures/threads/blocking.cjs), never on wall-clock sleeps.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  CancelledError,
  ConcurrentFuture,
  Future,
  RuntimeError,
  ThreadPoolExecutor,
  getRunningLoop,
  run,
  sleep,
  toThread,
  wrapFuture,
  type BaseEventLoop,
} from '../lib/index.js';
import { fdCount, runUntil } from './helpers/loop.js';
import { LOOPS, newLoop, useLoop } from './helpers/loops.js';

const blocking = path.join(__dirname, 'fixtures', 'threads', 'blocking.cjs');

/** A flag a blocking job waits on: [0] release (set here), [1] started (set by the job). */
function newFlag(): Int32Array {
  return new Int32Array(new SharedArrayBuffer(8));
}

function release(flag: Int32Array): void {
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
}

/** Runs `loop` until `p` settles; returns its value or throws its error. */
async function runWhile<T>(loop: BaseEventLoop, p: PromiseLike<T>, timeout = 15): Promise<T> {
  let out: { ok: boolean; v: unknown } | undefined;
  Promise.resolve(p).then(
    (v) => (out = { ok: true, v }),
    (e) => (out = { ok: false, v: e }),
  );
  await runUntil(loop, () => out !== undefined, timeout);
  if (!out!.ok) throw out!.v;
  return out!.v as T;
}

/** The error `p` rejects with (fails if it resolves). */
async function errorOf(loop: BaseEventLoop, p: PromiseLike<unknown>): Promise<Error> {
  try {
    await runWhile(loop, p);
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}

describe.each(LOOPS)('executor on %s', (loopName) => {
  useLoop(loopName);
  let loop: BaseEventLoop;
  const executors: ThreadPoolExecutor[] = [];

  function executor(maxWorkers = 2): ThreadPoolExecutor {
    const ex = new ThreadPoolExecutor({ maxWorkers });
    executors.push(ex);
    return ex;
  }

  beforeEach(() => {
    loop = newLoop(loopName);
  });
  afterEach(async () => {
    await Promise.all(executors.splice(0).map((ex) => ex.shutdown({ wait: false })));
    if (!loop.isClosed()) {
      await loop.shutdownDefaultExecutor();
      loop.close();
    }
  });

  it('runs a function on a thread and returns a Future of the loop', async () => {
    const fut = loop.runInExecutor(null, (a: number, b: number) => a * b, 6, 7);
    expect(fut).toBeInstanceOf(Future);
    expect(fut.getLoop()).toBe(loop);
    expect(await runWhile(loop, fut)).toBe(42);
  }); // CPython test_events: test_run_in_executor

  it('runs the job off this thread', async () => {
    const { threadId } = await import('node:worker_threads');
    const other = await runWhile(
      loop,
      loop.runInExecutor(null, () => (require('node:worker_threads') as typeof import('node:worker_threads')).threadId),
    );
    expect(other).not.toBe(threadId);
  });

  it('keeps the class and message of an exception', async () => {
    const e1 = await errorOf(
      loop,
      loop.runInExecutor(null, (s: string) => {
        throw new TypeError(`bad ${s}`);
      }, 'arg'),
    );
    expect(e1).toBeInstanceOf(TypeError);
    expect(e1.message).toBe('bad arg');
    const e2 = await errorOf(loop, loop.runInExecutor(null, () => [].reduce((a: number) => a)));
    expect(e2).toBeInstanceOf(TypeError);
    const e3 = await errorOf(loop, loop.runInExecutor(null, { filename: blocking, name: 'quota' }));
    expect(e3.name).toBe('QuotaError');
    expect(e3.message).toBe('over quota');
    const e4 = await errorOf(loop, loop.runInExecutor(null, () => new Array(-1)));
    expect(e4).toBeInstanceOf(RangeError);
  }); // CPython test_threads: test_to_thread_exception

  it('a function that closes over outer variables fails with an error that says so', async () => {
    const secret = 41;
    function addSecret(x: number): number {
      return x + secret;
    }
    const e = await errorOf(loop, loop.runInExecutor(null, addSecret, 1));
    expect(e).toBeInstanceOf(ReferenceError);
    expect(e.message).toMatch(/function "addSecret" refers to "secret"/);
    expect(e.message).toMatch(/self-contained/);
    expect(e.message).toMatch(/\{ filename, name \}/);
  });

  it('runs a { filename, name } module export, and the default export', async () => {
    expect(await runWhile(loop, loop.runInExecutor(null, { filename: blocking, name: 'fib' }, 20))).toBe(6765);
    expect(await runWhile(loop, loop.runInExecutor(null, { filename: blocking }, 10))).toBe(55);
    const esm = path.join(__dirname, 'fixtures', 'threads', 'esm.mjs');
    expect(await runWhile(loop, loop.runInExecutor(null, { filename: esm }, 7))).toBe(21);
    const url = `file://${blocking}`;
    expect(await runWhile(loop, loop.runInExecutor(null, { filename: url, name: 'fib' }, 5))).toBe(5);
    const e = await errorOf(loop, loop.runInExecutor(null, { filename: blocking, name: 'nope' }));
    expect(e).toBeInstanceOf(TypeError);
    expect(e.message).toMatch(/no function export "nope"/);
  });

  it('runs method shorthand and arrow functions', async () => {
    const obj = {
      twice(x: number): number {
        return 2 * x;
      },
    };
    expect(await runWhile(loop, loop.runInExecutor(null, obj.twice, 21))).toBe(42);
    expect(await runWhile(loop, loop.runInExecutor(null, (s: string) => s.toUpperCase(), 'ab'))).toBe('AB');
  });

  it('runs on a given executor, several jobs at once', async () => {
    const ex = executor(2);
    const a = newFlag();
    const b = newFlag();
    const fa = loop.runInExecutor(ex, { filename: blocking, name: 'waitForFlag' }, a);
    const fb = loop.runInExecutor(ex, { filename: blocking, name: 'waitForFlag' }, b);
    // Both start (two threads) before either is released.
    await runUntil(loop, () => Atomics.load(a, 1) === 1 && Atomics.load(b, 1) === 1, 15);
    release(a);
    release(b);
    expect(await runWhile(loop, fa)).toBe('released');
    expect(await runWhile(loop, fb)).toBe('released');
  }); // CPython test_threads: test_to_thread_concurrent

  it('cancelling a queued job removes it from the pool; a running one runs to its end', async () => {
    const ex = executor(1);
    const first = newFlag();
    const second = newFlag();
    const running = loop.runInExecutor(ex, { filename: blocking, name: 'waitForFlag' }, first);
    const queued = loop.runInExecutor(ex, { filename: blocking, name: 'waitForFlag' }, second);
    await runUntil(loop, () => Atomics.load(first, 1) === 1, 15);
    expect(queued.cancel()).toBe(true);
    expect(running.cancel()).toBe(true);
    // The cancellation reaches the pool from a done callback, on the next
    // pass (asyncio's _chain_future): let it run before the thread frees up.
    await runUntil(loop, () => true);
    release(first);
    await runUntil(loop, () => ex.pending === 0, 15);
    // The queued job never started; the running one finished (its result dropped).
    expect(Atomics.load(second, 1)).toBe(0);
    expect(queued.cancelled()).toBe(true);
    expect(running.cancelled()).toBe(true);
    // The pool still works.
    expect(await runWhile(loop, loop.runInExecutor(ex, (x: number) => x + 1, 1))).toBe(2);
  }); // CPython test_events: test_run_in_executor_cancel

  it('ConcurrentFuture.cancel() refuses a running job', async () => {
    const ex = executor(1);
    const flag = newFlag();
    const cf = ex.submit<string>({ filename: blocking, name: 'waitForFlag' }, flag);
    expect(cf).toBeInstanceOf(ConcurrentFuture);
    await runUntil(loop, () => Atomics.load(flag, 1) === 1, 15);
    expect(cf.cancel()).toBe(false);
    release(flag);
    expect(await cf).toBe('released');
    expect(cf.result()).toBe('released');
  });

  it('toThread runs on the running loop\'s default executor', async () => {
    const got = await runWhile(
      loop,
      loop.createTask(async () => {
        const a = await toThread((x: number, y: number) => x ** y, 2, 10);
        const b = await toThread({ filename: blocking, name: 'fib' }, 10);
        return [a, b, getRunningLoop() === loop];
      }),
    );
    expect(got).toEqual([1024, 55, true]);
  }); // CPython test_threads: test_to_thread, test_to_thread_args_kwargs

  it('toThread needs a running loop', () => {
    expect(() => toThread(() => 1)).toThrow(RuntimeError);
  });

  it('the default executor is made once', async () => {
    const seen = await runWhile(
      loop,
      loop.createTask(async () => {
        const ids = new Set<number>();
        for (let i = 0; i < 3; i++) {
          ids.add(await toThread(() => (require('node:worker_threads') as typeof import('node:worker_threads')).threadId));
        }
        return ids.size;
      }),
    );
    // One pool: its idle thread is reused, not one thread per call.
    expect(seen).toBe(1);
  }); // CPython test_threads: test_to_thread_once

  it('shutdownDefaultExecutor waits for pending work, then refuses new work', async () => {
    const flag = newFlag();
    const job = loop.runInExecutor(null, { filename: blocking, name: 'waitForFlag' }, flag);
    await runUntil(loop, () => Atomics.load(flag, 1) === 1, 15);
    let shut = false;
    const shutdown = loop.shutdownDefaultExecutor().then(() => (shut = true));
    await runUntil(loop, () => false, 0.1).catch(() => {});
    expect(shut).toBe(false);
    expect(job.done()).toBe(false);
    release(flag);
    await runWhile(loop, shutdown);
    expect(shut).toBe(true);
    expect(job.result()).toBe('released');
    expect(() => loop.runInExecutor(null, () => 1)).toThrow(new RuntimeError('Executor shutdown has been called'));
  }); // CPython test_base_events: test_run_in_executor_after_shutdown... asyncio 3.12 shutdown_default_executor

  it('shutdownDefaultExecutor(timeout) warns and terminates a job that outlives it', async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error): void => void warnings.push(w);
    process.on('warning', onWarning);
    try {
      const flag = newFlag();
      const job = loop.runInExecutor(null, { filename: blocking, name: 'waitForFlag' }, flag);
      await runUntil(loop, () => Atomics.load(flag, 1) === 1, 15);
      await runWhile(loop, loop.shutdownDefaultExecutor(0.05));
      await runUntil(loop, () => job.done() && warnings.length > 0, 5);
      expect(warnings[0].name).toBe('RuntimeWarning');
      expect(warnings[0].message).toBe('The executor did not finishing joining its threads within 0.05 seconds.');
      expect(job.exception()).toBeInstanceOf(RuntimeError);
    } finally {
      process.off('warning', onWarning);
    }
  });

  it('loop.close() lets running and queued jobs finish (shutdown(wait=False)), then the threads go', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'aionode-exec-'));
    try {
      const ex = executor(1);
      loop.setDefaultExecutor(ex);
      const flag = newFlag();
      const writeLater = (file: string, ms: number, started: Int32Array): void => {
        Atomics.store(started, 1, 1);
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
        (require('node:fs') as typeof import('node:fs')).writeFileSync(file, 'done');
      };
      const a = path.join(dir, 'running');
      const b = path.join(dir, 'queued');
      loop.runInExecutor(null, writeLater, a, 200, flag);
      loop.runInExecutor(null, writeLater, b, 0, newFlag());
      await runUntil(loop, () => Atomics.load(flag, 1) === 1, 15);
      loop.close();
      // No new work once closed, at once.
      expect(() => ex.submit(() => 1)).toThrow(new RuntimeError('cannot schedule new futures after shutdown'));
      const deadline = Date.now() + 10_000;
      while (!(existsSync(a) && existsSync(b) && ex.threads === 0) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(readFileSync(a, 'utf8')).toBe('done');
      expect(readFileSync(b, 'utf8')).toBe('done');
      expect(ex.pending).toBe(0);
      expect(ex.threads).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }); // CPython test_concurrent_futures: test_shutdown_no_wait (queued work still runs)

  it('shutdown({ wait: false, cancelFutures: true }) drops queued jobs; the running one finishes', async () => {
    const ex = executor(1);
    const first = newFlag();
    const second = newFlag();
    const running = ex.submit<string>({ filename: blocking, name: 'waitForFlag' }, first);
    const queued = ex.submit<string>({ filename: blocking, name: 'waitForFlag' }, second);
    await runUntil(loop, () => Atomics.load(first, 1) === 1, 15);
    await ex.shutdown({ wait: false, cancelFutures: true });
    expect(queued.cancelled()).toBe(true);
    expect(running.done()).toBe(false);
    release(first);
    expect(await running).toBe('released');
    expect(Atomics.load(second, 1)).toBe(0);
  }); // CPython test_concurrent_futures: test_cancel_futures_wait_false

  it('setDefaultExecutor takes a ThreadPoolExecutor only', async () => {
    const ex = executor(1);
    loop.setDefaultExecutor(ex);
    expect(await runWhile(loop, loop.runInExecutor(null, () => 7))).toBe(7);
    expect(ex.threads).toBe(1);
    expect(() => loop.setDefaultExecutor({ submit() {} } as never)).toThrow(TypeError);
    expect(() => loop.setDefaultExecutor({ submit() {} } as never)).toThrow(/"executor" to be a ThreadPoolExecutor/);
  }); // CPython test_base_events: test_set_default_executor, test_set_default_executor_error

  it('run() shuts the default executor down at the end', async () => {
    const ex = new ThreadPoolExecutor({ maxWorkers: 1 });
    const r = await run(async () => {
      getRunningLoop().setDefaultExecutor(ex);
      return toThread((x: number) => x * 3, 5);
    });
    expect(r).toBe(15);
    expect(ex.threads).toBe(0);
    expect(() => ex.submit(() => 1)).toThrow(RuntimeError);
  });

  it('bad input gives clear errors', async () => {
    expect(() => loop.runInExecutor('pool' as never, () => 1)).toThrow(/"executor" to be an executor \(an object with submit\(\)\) or null, got "pool"/);
    expect(() => loop.runInExecutor(null, 42 as never)).toThrow(/"fn" to be a function or a \{ filename, name \} module reference, got 42/);
    expect(() => loop.runInExecutor(null, { filename: 'rel.cjs' })).toThrow(/"fn.filename" to be an absolute path/);
    expect(() => loop.runInExecutor(null, { filename: blocking, name: 3 } as never)).toThrow(/"fn.name"/);
    expect(() => loop.runInExecutor(null, Math.max)).toThrow(/native or bound/);
    expect(() => loop.runInExecutor(null, ((x: number) => x).bind(null))).toThrow(/native or bound/);
    expect(() => loop.runInExecutor(null, async () => 1)).toThrow(/coroutines cannot be used with runInExecutor/);
    const e = await errorOf(loop, loop.runInExecutor(null, (f: unknown) => f, () => 1));
    expect(e).toBeInstanceOf(TypeError);
    expect(e.message).toMatch(/structured-clonable/);
    const r = await errorOf(loop, loop.runInExecutor(null, () => () => 1));
    expect(r).toBeInstanceOf(TypeError);
    expect(r.message).toMatch(/result must be structured-clonable/);
    expect(() => new ThreadPoolExecutor({ maxWorkers: 0 })).toThrow(RangeError);
    loop.close();
    expect(() => loop.runInExecutor(null, () => 1)).toThrow(new RuntimeError('Event loop is closed'));
  });

  it('a shipped source that is not a function names what it evaluated to', async () => {
    // A getter's source compiles as an object literal whose value is the getter's result.
    const getter = Object.getOwnPropertyDescriptor({ get answer() { return 42; } }, 'answer')!.get!;
    const e = await errorOf(loop, loop.runInExecutor(null, getter));
    expect(e).toBeInstanceOf(TypeError);
    expect(e.message).toMatch(/^Expected "fn" to be source text that evaluates to a function, got 42 \(source: "get answer\(\)/);
  });

  it('fds come back to baseline once the pools are destroyed', async () => {
    const before = fdCount();
    const ex = executor(2);
    await runWhile(loop, Promise.all([1, 2, 3, 4].map((i) => wrapFuture(ex.submit((x: number) => x, i), { loop }))));
    await runWhile(loop, loop.runInExecutor(null, () => 1));
    expect(fdCount()).toBeGreaterThan(before);
    await ex.shutdown();
    await runWhile(loop, loop.shutdownDefaultExecutor());
    // Worker threads release their fds as they exit.
    const deadline = Date.now() + 5000;
    while (fdCount() > before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(fdCount()).toBeLessThanOrEqual(before);
  });

  describe('wrapFuture', () => {
    it('follows a promise, a ConcurrentFuture, and passes a Future through', async () => {
      const f1 = wrapFuture(Promise.resolve(5), { loop });
      expect(f1).toBeInstanceOf(Future);
      expect(await runWhile(loop, f1)).toBe(5);
      const cf = new ConcurrentFuture<number>();
      const f2 = wrapFuture(cf, { loop });
      cf.setResult(9);
      expect(await runWhile(loop, f2)).toBe(9);
      const own = loop.createFuture();
      expect(wrapFuture(own)).toBe(own);
    }); // CPython test_futures: test_wrap_future, test_wrap_future_future

    it('cancelling the Future cancels the ConcurrentFuture', async () => {
      const cf = new ConcurrentFuture<number>();
      const f = wrapFuture(cf, { loop });
      f.cancel();
      // Done callbacks run on the loop (asyncio: run_briefly).
      await runUntil(loop, () => cf.cancelled());
      expect(cf.cancelled()).toBe(true);
      await expect(cf).rejects.toBeInstanceOf(CancelledError);
    }); // CPython test_futures: test_wrap_future_cancel

    it('a cancelled ConcurrentFuture cancels the Future', async () => {
      const cf = new ConcurrentFuture<number>();
      const f = wrapFuture(cf, { loop });
      cf.cancel();
      await runUntil(loop, () => f.done());
      expect(f.cancelled()).toBe(true);
    }); // CPython test_futures: test_wrap_future_cancel2

    it('refuses what is not a future', () => {
      expect(() => wrapFuture(42 as never, { loop })).toThrow(/"future" to be a ConcurrentFuture, a promise or a Future, got 42/);
    }); // CPython test_futures: test_wrap_future_verify

    it('uses the running loop by default', async () => {
      const f = await runWhile(
        loop,
        loop.createTask(async () => {
          await sleep(0);
          return wrapFuture(Promise.resolve(1)).getLoop() === loop;
        }),
      );
      expect(f).toBe(true);
    }); // CPython test_futures: test_wrap_future_use_global_loop
  });
});
