/**
 * Running a coroutine as a program's main entry point.
 *
 * Port of CPython Lib/asyncio/runners.py (3.14). Both return Promises: the
 * loop runs inside Node's own loop and cannot block its thread.
 */
import { isMainThread } from 'node:worker_threads';
import { _getRunningLoop, newEventLoop, setEventLoop, type AbstractEventLoop, type CallbackContext } from './events.js';
import { CancelledError, RuntimeError, describeArg } from './exceptions.js';
import { isGenerator, isThenable, type AwaitableLike, type AwaitedOf } from './coroutines.js';
import { allTasks, gather, type Task } from './tasks.js';
import { KeyboardInterrupt } from './taskgroups.js';

/** asyncio's constants.THREAD_JOIN_TIMEOUT: how long run() waits for the default executor. */
const THREAD_JOIN_TIMEOUT = 300;

const enum State {
  CREATED,
  INITIALIZED,
  CLOSED,
}

/** Options of run() and Runner. */
export interface RunnerOptions {
  /** Sets the loop's debug mode (undefined: leave it). */
  debug?: boolean;
  /** Makes the loop; `newEventLoop()` by default (then also set as current). */
  loopFactory?: () => AbstractEventLoop;
}

/**
 * Runs several top-level coroutines in one loop, then closes it.
 * @example
 * const runner = new Runner();
 * try {
 *   await runner.run(main);
 *   await runner.run(other);
 * } finally {
 *   await runner.close();
 * }
 */
export class Runner {
  #state = State.CREATED;
  #debug: boolean | undefined;
  #loopFactory: (() => AbstractEventLoop) | undefined;
  #loop: AbstractEventLoop | null = null;
  #setEventLoop = false;
  #interruptCount = 0;

  constructor(options: RunnerOptions = {}) {
    if (options.loopFactory !== undefined && typeof options.loopFactory !== 'function') {
      throw new TypeError(describeArg('loopFactory', 'a function returning an event loop', options.loopFactory));
    }
    this.#debug = options.debug;
    this.#loopFactory = options.loopFactory;
  }

  /** Closes the loop: cancels leftover tasks, closes async generators. */
  async close(): Promise<void> {
    if (this.#state !== State.INITIALIZED) return;
    const loop = this.#loop!;
    try {
      await cancelAllTasks(loop);
      await loop.runUntilComplete(() => loop.shutdownAsyncgens());
      // asyncio 3.12: bounded by constants.THREAD_JOIN_TIMEOUT (300 s).
      await loop.runUntilComplete(() => loop.shutdownDefaultExecutor(THREAD_JOIN_TIMEOUT));
    } finally {
      if (this.#setEventLoop) setEventLoop(null);
      loop.close();
      this.#loop = null;
      this.#state = State.CLOSED;
    }
  }

  /** The runner's loop (created on first use). */
  getLoop(): AbstractEventLoop {
    this.#lazyInit();
    return this.#loop!;
  }

  /**
   * Runs `coro` (a coroutine, a promise, or a function returning one) as a
   * task to completion and returns its result. SIGINT (Ctrl-C) cancels it
   * the first time and throws KeyboardInterrupt the second.
   * @throws RuntimeError when called from a running loop, or after close().
   */
  async run<A extends AwaitableLike<any>>(coro: A, options: { context?: CallbackContext } = {}): Promise<AwaitedOf<A>> {
    if (_getRunningLoop() !== null) throw new RuntimeError('Runner.run() cannot be called from a running event loop');
    if (!isGenerator(coro) && typeof coro !== 'function' && !isThenable(coro)) {
      throw new TypeError('An asyncio.Future, a coroutine or an awaitable is required');
    }
    this.#lazyInit();
    const loop = this.#loop!;
    const task = loop.createTask(coro, { context: options.context });
    // Only when nobody else handles SIGINT, as asyncio only replaces
    // Python's default handler; through the loop's own signal handlers,
    // so Ctrl-C is an ordinary handle on the loop like any other signal.
    let onSigint: (() => void) | null = null;
    if (process.listenerCount('SIGINT') === 0 && isMainThread) {
      onSigint = () => this.#onSigint(task);
      loop.addSignalHandler('SIGINT', onSigint);
    }
    this.#interruptCount = 0;
    try {
      return await loop.runUntilComplete(task);
    } catch (exc) {
      // A task from a custom factory may lack uncancel() (gh-95097).
      const uncancel = (task as { uncancel?: () => number }).uncancel;
      if (exc instanceof CancelledError && this.#interruptCount > 0 && typeof uncancel === 'function' && uncancel.call(task) === 0) {
        throw new KeyboardInterrupt();
      }
      throw exc;
    } finally {
      // Only if it is still ours: main may have installed its own (asyncio
      // restores only its own handler too).
      if (onSigint !== null && !loop.isClosed()) {
        const current = signalCallback(loop);
        if (current === undefined || current === onSigint) loop.removeSignalHandler('SIGINT');
      }
    }
  }

  #lazyInit(): void {
    if (this.#state === State.CLOSED) throw new RuntimeError('Runner is closed');
    if (this.#state === State.INITIALIZED) return;
    if (this.#loopFactory === undefined) {
      this.#loop = newEventLoop();
      if (!this.#setEventLoop) {
        setEventLoop(this.#loop);
        this.#setEventLoop = true;
      }
    } else {
      this.#loop = this.#loopFactory();
    }
    if (this.#debug !== undefined) this.#loop.setDebug(this.#debug);
    this.#state = State.INITIALIZED;
  }

  #onSigint(mainTask: Task<unknown>): void {
    // The handler is a handle on the loop, so it runs a little after the
    // signal (Python's runs at once): main may have ended meanwhile, and
    // run() is returning its outcome anyway.
    if (mainTask.done()) return;
    this.#interruptCount++;
    if (this.#interruptCount === 1) {
      mainTask.cancel();
      return;
    }
    // Second Ctrl-C: behave as if nobody handled it.
    process.exit(130);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** The loop's SIGINT callback where it can say (aionode's loops), else undefined. */
function signalCallback(loop: AbstractEventLoop): unknown {
  const get = (loop as { _signalCallback?: (sig: string) => unknown })._signalCallback;
  return typeof get === 'function' ? get.call(loop, 'SIGINT') : undefined;
}

async function cancelAllTasks(loop: AbstractEventLoop): Promise<void> {
  const toCancel = allTasks(loop);
  if (toCancel.size === 0) return;
  for (const task of toCancel) task.cancel();
  await loop.runUntilComplete(gather([...toCancel], { returnExceptions: true }));
  for (const task of toCancel) {
    if (task.cancelled()) continue;
    if (task.exception() !== undefined) {
      loop.callExceptionHandler({
        message: 'unhandled exception during asyncio.run() shutdown',
        exception: task.exception(),
        task,
      });
    }
  }
}

/**
 * Runs `main` (a coroutine function, a coroutine, or a promise) in a new
 * loop, cancels what is left, closes the loop, and returns main's result.
 * `run(main)` is the cancellable form for an async function; `run(main())`
 * works too.
 * @throws RuntimeError when called from a running loop.
 * @example
 * await run(async () => {
 *   await sleep(1);
 *   console.log('hello');
 * });
 */
export async function run<A extends AwaitableLike<any>>(main: A, options: RunnerOptions = {}): Promise<AwaitedOf<A>> {
  if (_getRunningLoop() !== null) throw new RuntimeError('asyncio.run() cannot be called from a running event loop');
  const runner = new Runner(options);
  try {
    return await runner.run(main);
  } finally {
    await runner.close();
  }
}
