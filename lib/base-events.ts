/**
 * Base implementation of event loop.
 *
 * Port of CPython Lib/asyncio/base_events.py (3.14). The scheduler is the
 * same; what differs is who waits: the loop lives inside Node's own libuv
 * loop ("guest mode", DESIGN.md §3), so the native layer selects, pops due
 * timers, and calls `_runOnce(n)` once per batch. The run methods therefore
 * return Promises instead of blocking.
 */
import {
  _getRunningLoop,
  _setRunningLoop,
  AbstractEventLoop,
  Handle,
  TimerHandle,
  type CallbackContext,
  type CallbackOptions,
  type ExceptionContext,
  type ExceptionHandler,
} from './events.js';
import { describeArg, RuntimeError } from './exceptions.js';
import { Future, _setRejection } from './futures.js';
import { Task, ensureFuture, _promoteTasks, type TaskFactory, type TaskOptions } from './tasks.js';
import type { AwaitableLike, AwaitedOf } from './coroutines.js';
import { logger } from './log.js';

// Over this many scheduled timers with more than this fraction cancelled,
// the timer heap is rebuilt without the cancelled ones (asyncio's values).
export const _MIN_SCHEDULED_TIMER_HANDLES = 100;
export const _MIN_CANCELLED_TIMER_HANDLES_FRACTION = 0.5;

type Callback = (...args: any[]) => unknown;

/**
 * What the ready queue holds: a Handle, or a Task whose next step is due
 * (a task is its own ready item: one allocation less per step).
 */
export interface ReadyItem {
  readonly _cancelled?: boolean;
  _run(): void;
  toString(): string;
}

function checkCallback(callback: unknown, method: string): asserts callback is Callback {
  if (typeof callback !== 'function') {
    throw new TypeError(`a callable object was expected by ${method}(), got ${describeArg('callback', 'a function', callback).split(', got ')[1]}`);
  }
  // Plain and arrow functions have Function as constructor: one identity
  // check on the hot path, the name only for the rest.
  const ctor = callback.constructor;
  if (ctor !== Function && (ctor?.name === 'AsyncFunction' || ctor?.name === 'AsyncGeneratorFunction')) {
    throw new TypeError(`coroutines cannot be used with ${method}()`);
  }
}

function checkTime(value: unknown, name: string, method: string): number {
  if (typeof value !== 'number') throw new TypeError(`${method}(): ${describeArg(name, 'a number of seconds', value)}`);
  if (Number.isNaN(value)) throw new RangeError(`${method}(): ${describeArg(name, 'a number of seconds, not NaN', value)}`);
  return value;
}

/**
 * The loop-agnostic half of asyncio's loop: the ready queue, timer
 * bookkeeping, run/stop/close, exception handling and debug mode. A
 * subclass supplies the native half (selector, timer heap, waking).
 */
export abstract class BaseEventLoop extends AbstractEventLoop {
  /** @internal Callbacks to run in the next pass, FIFO. */ _ready: ReadyItem[] = [];
  /** @internal Timer table: id -> handle, ids reused through a free list. */ _timers: (TimerHandle | undefined)[] = [];
  #freeIds: number[] = [];
  /** @internal Live timers in the heap, cancelled ones included. */ _timerCount = 0;
  /** @internal */ _timerCancelledCount = 0;
  /** @internal (token, events) / (-1, timerId) pairs, filled natively. */ _events: Int32Array;
  #inPass = false;
  #passes = 0;
  #stopping = false;
  #closed = false;
  #running = false;
  #runDone: { resolve: () => void; reject: (e: unknown) => void } | null = null;
  #debug: boolean;
  #exceptionHandler: ExceptionHandler | null = null;
  #taskFactory: TaskFactory | null = null;
  /** Callbacks running at least this many seconds are logged in debug mode. */
  slowCallbackDuration = 0.1;

  constructor(eventCapacity = 4096) {
    super();
    this._events = new Int32Array(2 * eventCapacity);
    this.#debug = Boolean(process.env.AIONODE_DEBUG);
  }

  // The native half: a timer heap, start/stop in Node's loop, and a wake-up.
  protected abstract _nativeTimerAt(id: number, when: number): void;
  protected abstract _nativeTimerIn(id: number, delay: number): number;
  protected abstract _nativeTimerRemove(id: number): void;
  protected abstract _nativeStart(kick: boolean): void;
  protected abstract _nativeStop(): void;
  protected abstract _nativeKick(): void;
  protected abstract _nativeClose(): void;
  /** Dispatches one I/O pair from the batch (selector loops queue reader/writer handles). */
  protected abstract _processEvent(token: number, events: number): void;

  /**
   * One iteration of the loop: asyncio's `_run_once`. The native layer has
   * already selected with timeout 0 and popped the due timers; this queues
   * their callbacks and runs exactly the callbacks that were ready when the
   * pass began (asyncio's fairness rule). Returns 1 when callbacks are left
   * for the next pass, so the native side keeps Node's poll from blocking.
   */
  /** @internal */
  _runOnce(nevents: number): number {
    const ev = this._events;
    for (let i = 0; i < 2 * nevents; i += 2) {
      if (ev[i] === -1) this.#timerDue(ev[i + 1]);
      else this._processEvent(ev[i], ev[i + 1]);
    }
    if (
      this._timerCount > _MIN_SCHEDULED_TIMER_HANDLES &&
      this._timerCancelledCount / this._timerCount > _MIN_CANCELLED_TIMER_HANDLES_FRACTION
    ) {
      this.#compactTimers();
    }
    // Callbacks queued while these run wait for the next pass.
    const batch = this._ready;
    this._ready = [];
    this.#inPass = true;
    try {
      for (let i = 0; i < batch.length; i++) {
        const handle = batch[i];
        if (handle._cancelled === true) continue;
        if (this.#debug) this.#runTimed(handle);
        else handle._run();
      }
    } finally {
      this.#inPass = false;
    }
    if ((++this.#passes & 1023) === 0) _promoteTasks();
    if (this.#stopping) {
      this.#finishRun();
      return 0;
    }
    return this._ready.length > 0 ? 1 : 0;
  }

  #runTimed(handle: ReadyItem): void {
    const t0 = this.time();
    handle._run();
    const dt = this.time() - t0;
    if (dt >= this.slowCallbackDuration) {
      logger.warning(`Executing ${handle.toString()} took ${dt.toFixed(3)} seconds`);
    }
  }

  #timerDue(id: number): void {
    const handle = this._timers[id];
    if (handle === undefined) return;
    this.#releaseTimer(handle);
    if (handle._cancelled) this._timerCancelledCount--;
    else this._ready.push(handle);
  }

  #releaseTimer(handle: TimerHandle): void {
    this._timers[handle._id] = undefined;
    this.#freeIds.push(handle._id);
    handle._scheduled = false;
    handle._id = -1;
    this._timerCount--;
  }

  /** Drops every cancelled timer from the native heap (asyncio's heap rebuild). */
  #compactTimers(): void {
    for (const handle of this._timers) {
      if (handle !== undefined && handle._cancelled) {
        this._nativeTimerRemove(handle._id);
        this.#releaseTimer(handle);
      }
    }
    this._timerCancelledCount = 0;
  }

  /** @internal */
  _timerHandleCancelled(handle: TimerHandle): void {
    if (handle._scheduled) this._timerCancelledCount++;
  }

  #allocTimer(handle: TimerHandle): number {
    const id = this.#freeIds.length > 0 ? this.#freeIds.pop()! : this._timers.length;
    this._timers[id] = handle;
    handle._id = id;
    handle._scheduled = true;
    this._timerCount++;
    return id;
  }

  #checkClosed(): void {
    if (this.#closed) throw new RuntimeError('Event loop is closed');
  }

  #checkRunning(): void {
    if (this.#running) throw new RuntimeError('This event loop is already running');
    if (_getRunningLoop() !== null) {
      throw new RuntimeError('Cannot run the event loop while another loop is running');
    }
  }

  /**
   * Runs until `stop()` is called. Returns a Promise that resolves when the
   * loop has stopped (it cannot block Node's thread).
   * @throws RuntimeError (synchronously) if closed or already running.
   */
  runForever(): Promise<void> {
    this.#checkClosed();
    this.#checkRunning();
    this.#running = true;
    _setRunningLoop(this);
    return new Promise<void>((resolve, reject) => {
      this.#runDone = { resolve, reject };
      try {
        this._nativeStart(this._ready.length > 0 || this.#stopping);
      } catch (exc) {
        this.#finishRun();
        reject(exc);
      }
    });
  }

  #finishRun(): void {
    this.#stopping = false;
    this.#running = false;
    if (_getRunningLoop() === this) _setRunningLoop(null);
    this._nativeStop();
    const done = this.#runDone;
    this.#runDone = null;
    done?.resolve();
  }

  /**
   * Runs until `future` is done and returns its result (or throws its
   * exception). A coroutine, a promise or a function returning one is
   * wrapped in a Task of this loop first.
   * @throws RuntimeError "Event loop stopped before Future completed." if
   * `stop()` came first.
   */
  runUntilComplete<A extends AwaitableLike<any>>(future: A): Promise<AwaitedOf<A>> {
    this.#checkClosed();
    this.#checkRunning();
    const fut = ensureFuture(future, { loop: this });
    const onDone = (): void => this.stop();
    fut.addDoneCallback(onDone);
    return this.runForever().then(
      () => {
        fut.removeDoneCallback(onDone);
        if (!fut.done()) throw new RuntimeError('Event loop stopped before Future completed.');
        return fut.result();
      },
      (exc) => {
        fut.removeDoneCallback(onDone);
        throw exc;
      },
    );
  }

  /**
   * Schedules a coroutine (generator object, promise, or a function
   * returning one) and returns its Task; goes through the task factory if
   * one is set.
   */
  createTask<A extends AwaitableLike<any>>(coro: A, options: TaskOptions = {}): Task<AwaitedOf<A>> {
    this.#checkClosed();
    if (this.#taskFactory !== null) {
      const task = this.#taskFactory(this, coro, options) as Task<AwaitedOf<A>>;
      if (options.name !== undefined && typeof task.setName === 'function') task.setName(options.name);
      return task;
    }
    return new Task<AwaitedOf<A>>(coro as AwaitableLike<AwaitedOf<A>>, { ...options, loop: this });
  }

  /**
   * A Future of this loop that follows a foreign promise: awaiting it from
   * an async-function task makes the wait cancellable (the promise itself
   * keeps running; its outcome is then dropped).
   * @example
   * const body = await loop.wrap(fetch(url).then((r) => r.text()));
   */
  wrap<T>(promise: PromiseLike<T>): Future<T> {
    if (promise === null || typeof (promise as PromiseLike<T>)?.then !== 'function') {
      throw new TypeError(describeArg('promise', 'a promise or thenable', promise));
    }
    const fut = this.createFuture<T>();
    promise.then(
      (v) => {
        if (!fut.done()) fut.setResult(v);
      },
      (e) => _setRejection(fut, e),
    );
    return fut;
  }

  /** @internal Async generators to close at shutdown (asyncio's _asyncgens). */
  _asyncgens = new Set<AsyncGenerator<unknown, unknown, unknown>>();

  /**
   * Tracks an async generator so shutdownAsyncgens() closes it. JavaScript
   * has no hook for an async generator's first iteration (Python's
   * sys.set_asyncgen_hooks), so aionode's own async iterators register
   * themselves and user code may do the same.
   */
  trackAsyncgen(agen: AsyncGenerator<unknown, unknown, unknown>): void {
    if (typeof agen?.return !== 'function') throw new TypeError(describeArg('agen', 'an async generator', agen));
    this._asyncgens.add(agen);
  }

  /** @internal Forgets a tracked async generator that finished by itself. */
  _untrackAsyncgen(agen: AsyncGenerator<unknown, unknown, unknown>): void {
    this._asyncgens.delete(agen);
  }

  /**
   * Closes every tracked async generator (`return()`), reporting failures
   * through the exception handler.
   */
  shutdownAsyncgens(): Promise<void> {
    const agens = [...this._asyncgens];
    this._asyncgens.clear();
    return Promise.allSettled(agens.map((ag) => ag.return(undefined))).then((results) => {
      results.forEach((r, i) => {
        if (r.status === 'rejected') {
          this.callExceptionHandler({
            message: 'an error occurred during closing of asynchronous generator',
            exception: r.reason,
            asyncgen: agens[i],
          });
        }
      });
    });
  }

  /**
   * Shuts down the default executor. aionode has no thread-pool executor
   * yet (runInExecutor is a later feature), so there is nothing to wait for.
   */
  shutdownDefaultExecutor(_timeout?: number | null): Promise<void> {
    return Promise.resolve();
  }

  /** Sets the factory createTask uses; null restores the default. */
  setTaskFactory(factory: TaskFactory | null): void {
    if (factory !== null && typeof factory !== 'function') {
      throw new TypeError(describeArg('factory', 'a function or null', factory));
    }
    this.#taskFactory = factory;
  }

  /** The task factory, or null for the default. */
  getTaskFactory(): TaskFactory | null {
    return this.#taskFactory;
  }

  /**
   * Stops the loop after the current pass; before `runForever()`, the next
   * run does one pass and stops.
   */
  stop(): void {
    this.#stopping = true;
    if (this.#running && !this.#inPass) this._nativeKick();
  }

  isRunning(): boolean {
    return this.#running;
  }

  isClosed(): boolean {
    return this.#closed;
  }

  /**
   * Closes the loop: drops pending callbacks and timers and releases the
   * native resources. Idempotent.
   * @throws RuntimeError "Cannot close a running event loop".
   */
  close(): void {
    if (this.#running) throw new RuntimeError('Cannot close a running event loop');
    if (this.#closed) return;
    if (this.#debug) logger.debug(`Close ${this.toString()}`);
    this.#closed = true;
    this._ready = [];
    this._timers = [];
    this.#freeIds = [];
    this._timerCount = 0;
    this._timerCancelledCount = 0;
    this._nativeClose();
  }

  /** Creates a Future attached to this loop. */
  createFuture<T = unknown>(): Future<T> {
    return new Future<T>({ loop: this });
  }

  callSoon(callback: Callback, ...args: unknown[]): Handle;
  callSoon(options: CallbackOptions, callback: Callback, ...args: unknown[]): Handle;
  /**
   * Arranges for `callback(...args)` to run in the next pass. Callbacks run
   * in the order they are registered.
   */
  callSoon(first: Callback | CallbackOptions, ...rest: unknown[]): Handle {
    let context: CallbackContext | undefined;
    let callback: unknown = first;
    if (typeof first === 'object' && first !== null) {
      context = (first as CallbackOptions).context;
      callback = rest.shift();
    }
    this.#checkClosed();
    checkCallback(callback, 'callSoon');
    const handle = new Handle(callback, rest, this, context);
    this._addReady(handle);
    return handle;
  }

  /** @internal Queues a ready item for the next pass. */
  _addReady(item: ReadyItem): void {
    this._ready.push(item);
    // Inside a pass the native side learns from _runOnce's return value.
    if (this._ready.length === 1 && !this.#inPass && this.#running) this._nativeKick();
  }

  /**
   * Arranges for `callback(...args)` to run after `delay` seconds. A
   * negative delay means "as soon as possible"; `Infinity` never fires.
   * Timers with the same deadline run in the order they were scheduled.
   */
  callLater(delay: number, callback: Callback, ...args: unknown[]): TimerHandle {
    checkTime(delay, 'delay', 'callLater');
    this.#checkClosed();
    checkCallback(callback, 'callLater');
    // One crossing: the native side reads the clock and returns `when`.
    const handle = new TimerHandle(0, callback, args, this);
    const id = this.#allocTimer(handle);
    (handle as { _when: number })._when = this._nativeTimerIn(id, delay < 0 ? 0 : delay);
    return handle;
  }

  /** Arranges for `callback(...args)` to run at absolute loop time `when`. */
  callAt(when: number, callback: Callback, ...args: unknown[]): TimerHandle {
    checkTime(when, 'when', 'callAt');
    this.#checkClosed();
    checkCallback(callback, 'callAt');
    const handle = new TimerHandle(when, callback, args, this);
    this._nativeTimerAt(this.#allocTimer(handle), when);
    return handle;
  }

  getExceptionHandler(): ExceptionHandler | null {
    return this.#exceptionHandler;
  }

  /** Sets the handler called with `(loop, context)`; null restores the default. */
  setExceptionHandler(handler: ExceptionHandler | null): void {
    if (handler !== null && typeof handler !== 'function') {
      throw new TypeError(`A callable object or None is expected, got ${describeArg('handler', 'a function', handler).split(', got ')[1]}`);
    }
    this.#exceptionHandler = handler;
  }

  /**
   * Logs the context's message and exception (asyncio's default handler).
   */
  defaultExceptionHandler(context: ExceptionContext): void {
    const message = context.message || 'Unhandled exception in event loop';
    const lines = [message];
    for (const key of Object.keys(context).sort()) {
      if (key === 'message' || key === 'exception') continue;
      lines.push(`${key}: ${String(context[key])}`);
    }
    const exc = context.exception as Error | undefined;
    if (exc !== undefined) lines.push(exc?.stack ?? String(exc));
    logger.error(lines.join('\n'));
  }

  /**
   * Calls the exception handler with `context` (the default one if none is
   * set). Never throws: a failing handler is logged.
   */
  callExceptionHandler(context: ExceptionContext): void {
    const handler = this.#exceptionHandler;
    if (handler === null) {
      try {
        this.defaultExceptionHandler(context);
      } catch (exc) {
        logger.error('Exception in default exception handler', exc);
      }
      return;
    }
    try {
      handler(this, context);
    } catch (exc) {
      try {
        this.defaultExceptionHandler({
          message: 'Unhandled error in exception handler',
          exception: exc,
          context,
        });
      } catch (exc2) {
        logger.error('Exception in default exception handler while handling an unexpected error in custom exception handler', exc2);
      }
    }
  }

  getDebug(): boolean {
    return this.#debug;
  }

  setDebug(enabled: boolean): void {
    this.#debug = Boolean(enabled);
  }

  override toString(): string {
    return `<${this.constructor.name} running=${this.#running} closed=${this.#closed} debug=${this.#debug}>`;
  }
}
