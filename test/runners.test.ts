/**
 * Tests for lib/runners.ts: run() and Runner.
 *
 * Ported from CPython 3.14 Lib/test/test_asyncio/test_runners.py. CPython's
 * runner tests are synchronous (`asyncio.run()` blocks); ours await the
 * Promise that run() returns. Ctrl-C cases run in a child process
 * (test/fixtures/runners/sigint.cjs, on the compiled package), so a real
 * SIGINT, or a second one ending the process, never reaches the test worker.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { inspect } from 'node:util';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  AbstractEventLoop,
  availableLoops,
  CancelledError,
  EventLoop,
  RuntimeError,
  Runner,
  SelectorEventLoop,
  createTask,
  newEventLoop,
  getEventLoop,
  getRunningLoop,
  run,
  setEventLoop,
  sleep,
  type Coroutine,
  type Task,
} from '../lib/index.js';
import { currentLoopName, LOOPS, useLoop } from './helpers/loops.js';

const fixture = path.join(__dirname, 'fixtures', 'runners', 'sigint.cjs');

class ZeroDivisionError extends Error {
  override name = 'ZeroDivisionError';
}
class ValueError extends Error {
  override name = 'ValueError';
}

/** Runs one scenario of the SIGINT fixture; returns its printed lines and how it ended. */
function sigintScenario(name: string): { lines: string[]; status: number | null; signal: NodeJS.Signals | null } {
  // The child's run()/Runner make the loop under test (AIONODE_LOOP).
  const env = { ...process.env, AIONODE_LOOP: currentLoopName() ?? '' };
  const r = spawnSync(process.execPath, [fixture, name], { encoding: 'utf8', timeout: 15_000, env });
  const lines = r.stdout.split('\n').filter((l) => l !== '');
  if (r.error !== undefined) throw r.error;
  return { lines, status: r.status, signal: r.signal };
}

/**
 * `it` for the SIGINT scenarios: they run in a child that picks its loop by
 * AIONODE_LOOP, so a loop that variable cannot name yet is skipped, saying so.
 */
function sigintIt(backend: string): (name: string, fn: () => void) => void {
  if (availableLoops().includes(backend)) return (name, fn) => it(name, fn);
  return (name, fn) => it.skip(`${name} [AIONODE_LOOP cannot name ${backend} yet]`, fn);
}

// CPython BaseTest: tests pass `loop_factory=self.new_loop`, and tearDown
// checks that the last loop was closed with its async generators shut down.
let loops: (SelectorEventLoop & { shutdownAgRun: boolean })[] = [];

/** A loop of the kind under test (useLoop() points newEventLoop() at it). */
function newLoop(): AbstractEventLoop {
  const loop = newEventLoop() as SelectorEventLoop & { shutdownAgRun: boolean };
  loop.shutdownAgRun = false;
  const shutdownAsyncgens = loop.shutdownAsyncgens.bind(loop);
  loop.shutdownAsyncgens = () => {
    loop.shutdownAgRun = true;
    return shutdownAsyncgens();
  };
  loops.push(loop);
  return loop;
}

beforeEach(() => {
  loops = [];
  setEventLoop(null);
});

afterEach(() => {
  const loop = loops.at(-1);
  if (loop !== undefined) {
    expect(loop.isClosed()).toBe(true);
    expect(loop.shutdownAgRun).toBe(true);
  }
  setEventLoop(null);
});

describe.each(LOOPS)('run() on %s', (backend) => {
  useLoop(backend);
  it('test_asyncio_run_return', async () => {
    async function main(): Promise<number> {
      await sleep(0);
      return 42;
    }
    expect(await run(main, { loopFactory: newLoop })).toBe(42);
    expect(await run(main(), { loopFactory: newLoop })).toBe(42);
    function* gmain(): Coroutine<number> {
      yield* sleep(0);
      return 42;
    }
    expect(await run(gmain(), { loopFactory: newLoop })).toBe(42);
    expect(await run(gmain, { loopFactory: newLoop })).toBe(42);
  }); // CPython test_runners: test_asyncio_run_return

  it('test_asyncio_run_raises', async () => {
    async function main(): Promise<never> {
      await sleep(0);
      throw new ValueError('spam');
    }
    await expect(run(main, { loopFactory: newLoop })).rejects.toThrow(new ValueError('spam'));
    function* gmain(): Coroutine<never> {
      yield* sleep(0);
      throw new ValueError('spam');
    }
    await expect(run(gmain(), { loopFactory: newLoop })).rejects.toThrow(new ValueError('spam'));
  }); // CPython test_runners: test_asyncio_run_raises

  // CPython's `lambda: None` becomes a function returning null: run() takes
  // functions (the cancellable form of an async function), so that one is
  // refused once called, with a TypeError of its own.
  it('test_asyncio_run_only_coro', async () => {
    await expect(run(1 as never)).rejects.toThrow(TypeError);
    await expect(run((() => null) as never)).rejects.toThrow(TypeError);
    await expect(run(1 as never)).rejects.toThrow(/an awaitable is required/);
  }); // CPython test_runners: test_asyncio_run_only_coro

  // asyncio.coroutines._is_debug_mode() is AIONODE_DEBUG here.
  it('test_asyncio_run_debug', async () => {
    async function main(expected: boolean): Promise<void> {
      const loop = getEventLoop();
      expect(loop.getDebug()).toBe(expected);
    }
    const prev = process.env.AIONODE_DEBUG;
    try {
      delete process.env.AIONODE_DEBUG;
      await run(() => main(false), { debug: false, loopFactory: newLoop });
      await run(() => main(true), { debug: true, loopFactory: newLoop });
      process.env.AIONODE_DEBUG = '1';
      await run(() => main(true), { loopFactory: newLoop });
      await run(() => main(false), { debug: false, loopFactory: newLoop });
      delete process.env.AIONODE_DEBUG;
      await run(() => main(true), { debug: true, loopFactory: newLoop });
      await run(() => main(false), { loopFactory: newLoop });
    } finally {
      if (prev === undefined) delete process.env.AIONODE_DEBUG;
      else process.env.AIONODE_DEBUG = prev;
    }
  }); // CPython test_runners: test_asyncio_run_debug

  it('test_asyncio_run_from_running_loop', async () => {
    let innerCalled = false;
    async function main(): Promise<void> {
      await run(
        async () => {
          innerCalled = true;
        },
        { loopFactory: newLoop },
      );
    }
    await expect(run(main, { loopFactory: newLoop })).rejects.toThrow(
      new RuntimeError('asyncio.run() cannot be called from a running event loop'),
    );
    expect(innerCalled).toBe(false);
    // Generator coroutine: run() rejects, the refused generator never starts.
    let started = false;
    function* inner(): Coroutine<void> {
      started = true;
    }
    function* gmain(): Coroutine<void> {
      const p = run(inner(), { loopFactory: newLoop });
      const fut = getRunningLoop().createFuture<unknown>();
      p.then(
        () => fut.setResult(null),
        (e: unknown) => fut.setResult(e),
      );
      const err = yield* fut;
      expect(err).toEqual(new RuntimeError('asyncio.run() cannot be called from a running event loop'));
    }
    await run(gmain(), { loopFactory: newLoop });
    expect(started).toBe(false);
  }); // CPython test_runners: test_asyncio_run_from_running_loop

  // An async-function task first stepped in the loop's last pass (main just
  // returned) makes its first `await sleep()` in a microtask after the loop
  // stopped: sleep() then uses the task's own loop, as asyncio would leave
  // the task suspended until the runner cancels it.
  it('test_asyncio_run_cancels_hanging_tasks', async () => {
    let loTask: Task<void> | null = null;
    async function leftover(): Promise<void> {
      await sleep(0.1);
    }
    async function main(): Promise<number> {
      loTask = createTask(leftover);
      return 123;
    }
    expect(await run(main, { loopFactory: newLoop })).toBe(123);
    expect(loTask!.done()).toBe(true);
    // Cancelled at shutdown, as CPython's leftover (done() alone would also
    // hold for the RuntimeError above).
    expect(loTask!.cancelled()).toBe(true);
  }); // CPython test_runners: test_asyncio_run_cancels_hanging_tasks

  // Variants of the case above that pass: a generator leftover, and an
  // async-function leftover that reached its await before main returned.
  describe('test_asyncio_run_cancels_hanging_tasks (variants)', () => {
    it('generator coroutine', async () => {
      let loTask: Task<void> | null = null;
      function* leftover(): Coroutine<void> {
        yield* sleep(0.1);
      }
      // eslint-disable-next-line require-yield
      function* main(): Coroutine<number> {
        loTask = createTask(leftover());
        return 123;
      }
      expect(await run(main(), { loopFactory: newLoop })).toBe(123);
      expect(loTask!.done()).toBe(true);
      expect(loTask!.cancelled()).toBe(true);
    });

    it('async function that reached its await before main returned', async () => {
      let loTask: Task<void> | null = null;
      let leftoverSaw: unknown = null;
      async function leftover(): Promise<void> {
        try {
          await sleep(0.1);
        } catch (e) {
          leftoverSaw = e;
          throw e;
        }
      }
      async function main(): Promise<number> {
        loTask = createTask(leftover);
        await sleep(0);
        return 123;
      }
      expect(await run(main, { loopFactory: newLoop })).toBe(123);
      expect(loTask!.cancelled()).toBe(true);
      expect(leftoverSaw).toBeInstanceOf(CancelledError);
    });
  });

  /** Checks the exception-handler call of a failed leftover task. */
  function expectShutdownReport(mock: ReturnType<typeof vi.fn>, loTask: Task<void>): void {
    expect(mock).toHaveBeenCalled();
    const ctx = mock.mock.lastCall![0] as Record<string, unknown>;
    // Compared key by key: a deep equality would iterate the Task (it is
    // iterable, for yield*) and rethrow its exception.
    expect(Object.keys(ctx).sort()).toEqual(['exception', 'message', 'task']);
    expect(ctx.message).toMatch(/asyncio.run.*shutdown/);
    expect(ctx.task).toBe(loTask);
    expect(ctx.exception).toBeInstanceOf(ZeroDivisionError);
  }

  // As test_asyncio_run_cancels_hanging_tasks: the leftover is cancelled at shutdown.
  it('test_asyncio_run_reports_hanging_tasks_errors', async () => {
    let loTask: Task<void> | null = null;
    const callExcHandlerMock = vi.fn();
    async function leftover(): Promise<void> {
      try {
        await sleep(0.1);
      } catch (e) {
        if (e instanceof CancelledError) throw new ZeroDivisionError();
        throw e;
      }
    }
    async function main(): Promise<number> {
      const loop = getRunningLoop();
      loop.callExceptionHandler = callExcHandlerMock;
      loTask = createTask(leftover);
      return 123;
    }
    expect(await run(main, { loopFactory: newLoop })).toBe(123);
    expect(loTask!.done()).toBe(true);
    expectShutdownReport(callExcHandlerMock, loTask!);
  }); // CPython test_runners: test_asyncio_run_reports_hanging_tasks_errors

  // Variants of the case above that pass: a generator leftover, and an
  // async-function leftover that reached its await before main returned.
  describe('test_asyncio_run_reports_hanging_tasks_errors (variants)', () => {
    it('generator coroutine', async () => {
      let loTask: Task<void> | null = null;
      const callExcHandlerMock = vi.fn();
      function* leftover(): Coroutine<void> {
        try {
          yield* sleep(0.1);
        } catch (e) {
          if (e instanceof CancelledError) throw new ZeroDivisionError();
          throw e;
        }
      }
      // eslint-disable-next-line require-yield
      function* main(): Coroutine<number> {
        const loop = getRunningLoop();
        loop.callExceptionHandler = callExcHandlerMock;
        loTask = createTask(leftover());
        return 123;
      }
      expect(await run(main(), { loopFactory: newLoop })).toBe(123);
      expect(loTask!.done()).toBe(true);
      expectShutdownReport(callExcHandlerMock, loTask!);
    });

    it('async function that reached its await before main returned', async () => {
      let loTask: Task<void> | null = null;
      const callExcHandlerMock = vi.fn();
      async function leftover(): Promise<void> {
        try {
          await sleep(0.1);
        } catch (e) {
          if (e instanceof CancelledError) throw new ZeroDivisionError();
          throw e;
        }
      }
      async function main(): Promise<number> {
        const loop = getRunningLoop();
        loop.callExceptionHandler = callExcHandlerMock;
        loTask = createTask(leftover);
        await sleep(0);
        return 123;
      }
      expect(await run(main, { loopFactory: newLoop })).toBe(123);
      expectShutdownReport(callExcHandlerMock, loTask!);
    });
  });

  // JavaScript has no hook for an async generator's first iteration
  // (sys.set_asyncgen_hooks): the program registers it with trackAsyncgen.
  it('test_asyncio_run_closes_gens_after_hanging_tasks_errors', async () => {
    let spinner: AsyncGenerator<number> | null = null;
    let lazyboy: Task<void> | null = null;
    class FancyExit extends Error {}
    async function* fidget(): AsyncGenerator<number> {
      for (;;) {
        yield 1;
        await sleep(1);
      }
    }
    async function spin(): Promise<void> {
      spinner = fidget();
      (getRunningLoop() as SelectorEventLoop).trackAsyncgen(spinner);
      try {
        for await (const theMeaningOfLife of spinner) void theMeaningOfLife;
      } catch (e) {
        if (e instanceof CancelledError) throw new ZeroDivisionError();
        throw e;
      }
    }
    async function main(): Promise<void> {
      const loop = getRunningLoop();
      loop.callExceptionHandler = vi.fn();
      lazyboy = createTask(spin);
      await sleep(0);
      throw new FancyExit();
    }
    await expect(run(main, { loopFactory: newLoop })).rejects.toBeInstanceOf(FancyExit);
    expect(lazyboy!.done()).toBe(true);
    // The generator is finished (CPython: ag_frame is None, not ag_running).
    expect(await spinner!.next()).toEqual({ done: true, value: undefined });
    expect(loops.at(-1)!._asyncgens.size).toBe(0);
  }); // CPython test_runners: test_asyncio_run_closes_gens_after_hanging_tasks_errors

  // CPython patches events.set_event_loop; ES modules cannot be patched, so
  // the effect is checked: the runner's loop is the current one until close.
  it('test_asyncio_run_set_event_loop', async () => {
    async function main(): Promise<number> {
      await sleep(0);
      return 42;
    }
    const runner = new Runner();
    expect(await runner.run(main)).toBe(42);
    expect(getEventLoop()).toBe(runner.getLoop());
    await runner.close();
    expect(() => getEventLoop()).toThrow(RuntimeError);
    // With a loop factory, the current loop is left alone.
    const r2 = new Runner({ loopFactory: newLoop });
    await r2.run(main);
    expect(() => getEventLoop()).toThrow(RuntimeError);
    await r2.close();
  }); // CPython test_runners: test_asyncio_run_set_event_loop

  sigintIt(backend)('test_asyncio_run_without_uncancel', () => {
    const r = sigintScenario('test_asyncio_run_without_uncancel');
    expect(r.lines).toEqual(['run: CancelledError', 'exit']);
  }); // CPython test_runners: test_asyncio_run_without_uncancel

  it('test_asyncio_run_loop_factory', async () => {
    const loop = newLoop();
    const factory = vi.fn(() => loop);
    async function main(): Promise<void> {
      expect(getRunningLoop()).toBe(loop);
    }
    await run(main, { loopFactory: factory });
    expect(factory).toHaveBeenCalledTimes(1);
    expect(factory).toHaveBeenCalledWith();
  }); // CPython test_runners: test_asyncio_run_loop_factory

  it('test_loop_factory_default_event_loop', async () => {
    async function main(): Promise<void> {
      expect(getRunningLoop()).toBeInstanceOf(SelectorEventLoop);
    }
    await run(main, { loopFactory: () => new EventLoop() });
  }); // CPython test_runners: test_loop_factory_default_event_loop
});

describe.each(LOOPS)('Runner on %s', (backend) => {
  useLoop(backend);
  // `with asyncio.Runner() as runner:` is try/finally with close().
  it('test_non_debug', async () => {
    const runner = new Runner({ debug: false });
    try {
      expect(runner.getLoop().getDebug()).toBe(false);
    } finally {
      await runner.close();
    }
  }); // CPython test_runners: test_non_debug

  it('test_debug', async () => {
    const runner = new Runner({ debug: true });
    try {
      expect(runner.getLoop().getDebug()).toBe(true);
    } finally {
      await runner.close();
    }
  }); // CPython test_runners: test_debug

  it('test_custom_factory', async () => {
    // mock.Mock(): every method exists and returns undefined.
    const methods = new Map<PropertyKey, ReturnType<typeof vi.fn>>();
    const loop = new Proxy({} as AbstractEventLoop, {
      get(_target, prop) {
        if (prop === 'then') return undefined; // not a thenable
        if (!methods.has(prop)) methods.set(prop, vi.fn());
        return methods.get(prop);
      },
    });
    const runner = new Runner({ loopFactory: () => loop });
    try {
      expect(runner.getLoop()).toBe(loop);
    } finally {
      await runner.close();
    }
    expect(methods.get('close')).toHaveBeenCalledTimes(1);
  }); // CPython test_runners: test_custom_factory

  it('test_run', async () => {
    async function f(): Promise<string> {
      await sleep(0);
      return 'done';
    }
    const runner = new Runner();
    let loop: AbstractEventLoop;
    try {
      expect(await runner.run(f)).toBe('done');
      loop = runner.getLoop();
    } finally {
      await runner.close();
    }
    expect(() => runner.getLoop()).toThrow(new RuntimeError('Runner is closed'));
    expect(loop.isClosed()).toBe(true);
  }); // CPython test_runners: test_run

  it('test_run_non_coro', async () => {
    const runner = new Runner();
    try {
      // BUG: CPython's message; ours is "a coroutine was expected, got 123".
      await expect(runner.run(123 as never)).rejects.toThrow(/an awaitable is required/);
    } finally {
      await runner.close();
    }
  }); // CPython test_runners: test_run_non_coro

  it('test_run_future', async () => {
    const runner = new Runner();
    try {
      const fut = runner.getLoop().createFuture<string>();
      fut.setResult('done');
      expect(await runner.run(fut)).toBe('done');
    } finally {
      await runner.close();
    }
  }); // CPython test_runners: test_run_future

  // An object with __await__ is a thenable in JavaScript.
  it('test_run_awaitable', async () => {
    class MyAwaitable implements PromiseLike<string> {
      then<R1 = string, R2 = never>(
        onfulfilled?: ((value: string) => R1 | PromiseLike<R1>) | null,
        onrejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null,
      ): PromiseLike<R1 | R2> {
        return MyAwaitable.run().then(onfulfilled, onrejected);
      }
      static async run(): Promise<string> {
        return 'done';
      }
    }
    const runner = new Runner();
    try {
      expect(await runner.run(new MyAwaitable())).toBe('done');
    } finally {
      await runner.close();
    }
  }); // CPython test_runners: test_run_awaitable

  it('test_explicit_close', async () => {
    const runner = new Runner();
    const loop = runner.getLoop();
    await runner.close();
    expect(() => runner.getLoop()).toThrow(new RuntimeError('Runner is closed'));
    expect(loop.isClosed()).toBe(true);
  }); // CPython test_runners: test_explicit_close

  it('test_double_close', async () => {
    const runner = new Runner();
    const loop = runner.getLoop();
    await runner.close();
    expect(loop.isClosed()).toBe(true);
    // the second call is no-op
    await runner.close();
    expect(loop.isClosed()).toBe(true);
  }); // CPython test_runners: test_double_close

  // A second `with runner:` (which re-initialises) raises; here run() does.
  it('test_second_with_block_raises', async () => {
    const ret: number[] = [];
    async function f(arg: number): Promise<void> {
      ret.push(arg);
    }
    const runner = new Runner();
    try {
      await runner.run(() => f(1));
    } finally {
      await runner.close();
    }
    await expect(runner.run(() => f(2))).rejects.toThrow(new RuntimeError('Runner is closed'));
    expect(ret).toEqual([1]);
  }); // CPython test_runners: test_second_with_block_raises

  it('test_recursive_run', async () => {
    let gCalled = false;
    async function g(): Promise<void> {
      gCalled = true;
    }
    const runner = new Runner();
    async function f(): Promise<void> {
      await runner.run(g);
    }
    try {
      await expect(runner.run(f)).rejects.toThrow(new RuntimeError('Runner.run() cannot be called from a running event loop'));
    } finally {
      await runner.close();
    }
    // CPython warns that g() was never awaited; a function is never called.
    expect(gCalled).toBe(false);
  }); // CPython test_runners: test_recursive_run

  sigintIt(backend)('test_interrupt_call_soon', () => {
    // The only case when task is not suspended by waiting a future or another task.
    const r = sigintScenario('test_interrupt_call_soon');
    expect(r.lines).toEqual(['main: CancelledError', 'run: KeyboardInterrupt', 'exit']);
    expect(r.status).toBe(0);
  }); // CPython test_runners: test_interrupt_call_soon

  sigintIt(backend)('test_interrupt_wait', () => {
    // Interrupting when waiting a future cancels both future and main task.
    const r = sigintScenario('test_interrupt_wait');
    expect(r.lines).toEqual(['main: CancelledError', 'run: KeyboardInterrupt', 'fut cancelled: true', 'exit']);
    expect(r.status).toBe(0);
  }); // CPython test_runners: test_interrupt_wait

  sigintIt(backend)('test_interrupt_cancelled_task', () => {
    // Interrupting a cancelled main task doesn't raise KeyboardInterrupt.
    const r = sigintScenario('test_interrupt_cancelled_task');
    expect(r.lines).toEqual(['run: CancelledError', 'exit']);
    expect(r.status).toBe(0);
  }); // CPython test_runners: test_interrupt_cancelled_task

  // As test_asyncio_run_set_event_loop: the call count cannot be observed
  // without patching; the loop set on first use stays across runs.
  it('test_set_event_loop_called_once', async () => {
    async function coro(): Promise<void> {}
    const runner = new Runner();
    await runner.run(coro);
    const loop = runner.getLoop();
    expect(getEventLoop()).toBe(loop);
    await runner.run(coro);
    expect(runner.getLoop()).toBe(loop);
    expect(getEventLoop()).toBe(loop);
    await runner.close();
  }); // CPython test_runners: test_set_event_loop_called_once

  it('test_no_repr_is_call_on_the_task_result', async () => {
    // See https://github.com/python/cpython/issues/112559.
    class MyResult {
      reprCount = 0;
      toString(): string {
        this.reprCount += 1;
        return 'MyResult';
      }
      [inspect.custom](): string {
        this.reprCount += 1;
        return 'MyResult';
      }
    }
    async function coro(): Promise<MyResult> {
      return new MyResult();
    }
    const runner = new Runner();
    let result: MyResult;
    try {
      result = await runner.run(coro);
    } finally {
      await runner.close();
    }
    expect(result.reprCount).toBe(0);
  }); // CPython test_runners: test_no_repr_is_call_on_the_task_result
});

describe.each(LOOPS)('Runner and run() (aionode) on %s', (backend) => {
  useLoop(backend);
  sigintIt(backend)('Ctrl-C while main sleeps cancels main; Runner.run throws KeyboardInterrupt and removes its listener', () => {
    const r = sigintScenario('runner-main-sleeps');
    expect(r.lines).toEqual(['main: CancelledError', 'run: KeyboardInterrupt', 'listeners: 0', 'exit']);
    expect(r.status).toBe(0);
  });

  sigintIt(backend)('Ctrl-C reaches a generator main as CancelledError in its frame', () => {
    const r = sigintScenario('runner-main-sleeps-generator');
    expect(r.lines).toEqual(['main: CancelledError', 'run: KeyboardInterrupt', 'exit']);
    expect(r.status).toBe(0);
  });

  sigintIt(backend)('run(): Ctrl-C gives KeyboardInterrupt and the loop is closed', () => {
    const r = sigintScenario('run-main-sleeps');
    expect(r.lines).toEqual(['main: CancelledError', 'run: KeyboardInterrupt', 'loop closed: true', 'exit']);
    expect(r.status).toBe(0);
  });

  sigintIt(backend)('a second Ctrl-C ends the process', () => {
    const r = sigintScenario('second-sigint');
    expect(r.lines).toEqual(['main: CancelledError']);
    expect(r.status === 130 || r.signal === 'SIGINT').toBe(true);
  });

  sigintIt(backend)('a program with its own SIGINT listener keeps it; the main task is not cancelled', () => {
    const r = sigintScenario('own-listener');
    expect(r.lines).toEqual(['own listener', 'run: returned done', 'exit']);
    expect(r.status).toBe(0);
  });

  it('run() cancels leftover tasks of both kinds, which can clean up', async () => {
    const log: string[] = [];
    async function asyncLeftover(): Promise<void> {
      try {
        await sleep(10);
      } finally {
        log.push('async leftover cleaned up');
      }
    }
    function* genLeftover(): Coroutine<void> {
      try {
        yield* sleep(10);
      } finally {
        log.push('generator leftover cleaned up');
      }
    }
    const tasks: Task<void>[] = [];
    await run(
      async () => {
        tasks.push(createTask(asyncLeftover), createTask(genLeftover()));
        await sleep(0);
        return 'main done';
      },
      { loopFactory: newLoop },
    );
    expect(log.sort()).toEqual(['async leftover cleaned up', 'generator leftover cleaned up']);
    expect(tasks.every((t) => t.cancelled())).toBe(true);
  });

  it('Runner.run after close() throws "Runner is closed" without calling main', async () => {
    const runner = new Runner();
    expect(await runner.run(async () => 1)).toBe(1);
    await runner.close();
    const main = vi.fn(async () => 2);
    await expect(runner.run(main)).rejects.toThrow(new RuntimeError('Runner is closed'));
    expect(main).not.toHaveBeenCalled();
  });

  it('close() on a Runner that never made its loop is a no-op, as in asyncio', async () => {
    const runner = new Runner();
    await runner.close();
    expect(await runner.run(async () => 3)).toBe(3);
    await runner.close();
    expect(() => runner.getLoop()).toThrow(new RuntimeError('Runner is closed'));
  });

  it('Runner.run(coro, { context }) runs the main task in that context', async () => {
    const { AsyncLocalStorage } = await import('node:async_hooks');
    const als = new AsyncLocalStorage<string>();
    const context = als.run('ctx', () => AsyncLocalStorage.snapshot());
    const runner = new Runner();
    try {
      expect(
        await runner.run(
          async () => {
            await sleep(0);
            return als.getStore();
          },
          { context },
        ),
      ).toBe('ctx');
    } finally {
      await runner.close();
    }
  });
});
