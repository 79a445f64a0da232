/**
 * Base implementation of event loop.
 *
 * Port of CPython Lib/asyncio/base_events.py (3.14). The scheduler is the
 * same; what differs is who waits: the loop lives inside Node's own libuv
 * loop ("guest mode", docs/design.md), so its driver (lib/driver.ts) waits,
 * pops due timers, and calls `_runOnce(n)` once per batch. The run methods
 * therefore return Promises instead of blocking.
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
import { logger, logErrorSafely, showException, showValue } from './log.js';
import * as dns from 'node:dns/promises';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { CancelledError, ExceptionGroup, OSError, makeOSError } from './exceptions.js';
import type { BaseProtocol, DatagramProtocol } from './protocols.js';
import type { DatagramTransport, Transport } from './transports.js';
import { Socket, constants as socketConstants, formatAddress, type SockAddr } from './socket.js';
import { sleep, wait, FIRST_COMPLETED } from './tasks.js';
import type { Coroutine } from './coroutines.js';
import type { SSLTransport, StartTlsOptions } from './sslproto.js';
import type { DriverFactory, LoopDriver } from './driver.js';
import type { NativeLoopStats } from './native.js';
import { SignalHandlers } from './signals.js';
import type { SubprocessProtocol } from './protocols.js';
import type { ReadTransport, WriteTransport } from './transports.js';
import type { SubprocessTransport } from './base-subprocess.js';
import {
  connectReadPipe as unixConnectReadPipe,
  connectWritePipe as unixConnectWritePipe,
  subprocessExec as unixSubprocessExec,
  subprocessShell as unixSubprocessShell,
  type PipeLike,
  type SubprocessOptions,
  _orphanChildren,
} from './unix-events.js';
import { closeThreadsafeHandles, openThreadsafeHandle, type LoopHandle } from './threads.js';
import { getDefaultExecutor, runInExecutor, setDefaultExecutor, shutdownDefaultExecutor, type Executor, type ExecutorFn } from './executor.js';

// Over this many scheduled timers with more than this fraction cancelled,
// the timer heap is rebuilt without the cancelled ones (asyncio's values).
export const _MIN_SCHEDULED_TIMER_HANDLES = 100;
export const _MIN_CANCELLED_TIMER_HANDLES_FRACTION = 0.5;
// A timer table longer than this and at most 1/16 live is renumbered to
// the live timers only, so memory follows them down after a burst
// (reliability T13); below it the slack is not worth a sweep. The table
// costs a few bytes a slot against 100+ per live timer, so only a mostly
// empty one is worth the renumbering's native calls (about 2 per live
// timer, at most 1/8 call per timer released since the last one).
export const _MIN_TIMER_TABLE_TO_SHRINK = 4096;
const _TIMER_TABLE_SPARSE_SHIFT = 4;

type Callback = (...args: any[]) => unknown;

// The deadline (s) the native side returns for a timer it will never fire:
// INT64_MAX - 1 ns. No monotonic clock gets near it (292 years of uptime).
const _NATIVE_NEVER = 9.2e9;

/**
 * What the ready queue holds: a Handle, or a Task whose next step is due
 * (a task is its own ready item: one allocation less per step).
 */
export interface ReadyItem {
  readonly _cancelled?: boolean;
  _run(): void;
  /** Called instead of `_run` when the loop is closed with the item queued. */
  _loopClosing?(): void;
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

// The last resort of callExceptionHandler: preformatted text, then silence.
function logLastResort(message: string, exc: unknown): void {
  logErrorSafely(`${message}\n${showException(exc)}`);
}

function checkTime(value: unknown, name: string, method: string): number {
  if (typeof value !== 'number') throw new TypeError(`${method}(): ${describeArg(name, 'a number of seconds', value)}`);
  if (Number.isNaN(value)) throw new RangeError(`${method}(): ${describeArg(name, 'a number of seconds, not NaN', value)}`);
  return value;
}

/**
 * The scheduler of asyncio's loop: the ready queue, timer bookkeeping,
 * run/stop/close, exception handling and debug mode, plus base_events.py's
 * networking over whatever transports the subclass makes. Who waits is the
 * driver (lib/driver.ts: time, the timer heap, start/stop in Node's loop,
 * wake-ups); what an I/O pair means is the subclass's personality
 * (selector-events.ts: readiness; proactor-events.ts: completions).
 */
export abstract class BaseEventLoop extends AbstractEventLoop {
  /** @internal Callbacks to run in the next pass, FIFO. */ _ready: ReadyItem[] = [];
  /** @internal Timer table: id -> handle, ids reused through a free list. */ _timers: (TimerHandle | undefined)[] = [];
  #freeIds: number[] = [];
  // Scheduling order, for renumbering timers without reordering equal deadlines.
  #timerSeq = 0;
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

  /** @internal Who waits for this loop: time, the timer heap, start/stop in Node's loop, wake-ups. */
  readonly _driver: LoopDriver;
  /** @internal The batch callback handed to the driver (the loop keeps it alive). */ readonly _onBatch: (n: number) => number;

  /**
   * @param driver builds the driver around this loop's event array and
   * batch callback (a personality passes e.g. a NativeDriver over its
   * selector or proactor).
   */
  constructor(driver: DriverFactory, eventCapacity = 4096) {
    super();
    this._events = new Int32Array(2 * eventCapacity);
    this.#debug = Boolean(process.env.AIONODE_DEBUG);
    this._onBatch = (n: number) => this._runOnce(n);
    this._driver = driver(this._events, this._onBatch);
  }

  /**
   * Dispatches one I/O pair from the batch: a selector loop's
   * `(token, events)` queues reader/writer handles, a proactor loop's
   * `(token, result)` settles the operation with that token.
   */
  protected abstract _processEvent(token: number, value: number): void;

  /** Releases the personality's I/O resources; `close()` calls it after the driver is closed. */
  protected _closeIO(): void {}

  /** Which event source runs this loop: `'epoll'`, `'poll'`, `'select'`, `'io_uring'`. */
  get backend(): string {
    return this._driver.backend;
  }

  /** Counters of the driver (batches, passes, timer arms), for tests and benchmarks. */
  nativeStats(): NativeLoopStats {
    return this._driver.stats();
  }

  time(): number {
    return this._driver.time();
  }

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
      (this._timerCount > _MIN_SCHEDULED_TIMER_HANDLES &&
        this._timerCancelledCount / this._timerCount > _MIN_CANCELLED_TIMER_HANDLES_FRACTION) ||
      (this._timers.length > _MIN_TIMER_TABLE_TO_SHRINK && this._timerCount < this._timers.length >>> _TIMER_TABLE_SPARSE_SHIFT)
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
        try {
          if (this.#debug) this.#runTimed(handle);
          else handle._run();
        } catch (exc) {
          // Items report their own errors; one that still throws (a
          // subclass's _run) must not cost the rest of the pass.
          this.callExceptionHandler({ message: `Exception in callback ${showValue(handle)}`, exception: exc });
        }
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
      try {
        logger.warning(`Executing ${showValue(handle)} took ${dt.toFixed(3)} seconds`);
      } catch {
        // A failing logger must not cost the rest of the pass.
      }
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

  /**
   * Drops every cancelled timer from the native heap (asyncio's heap
   * rebuild); then, if the table is mostly empty slots, renumbers the live
   * timers so that it shrinks.
   */
  #compactTimers(): void {
    const live: TimerHandle[] = [];
    for (const handle of this._timers) {
      if (handle === undefined) continue;
      if (handle._cancelled) {
        this._driver.timerRemove(handle._id);
        this.#releaseTimer(handle);
      } else {
        live.push(handle);
      }
    }
    this._timerCancelledCount = 0;
    if (this._timers.length > _MIN_TIMER_TABLE_TO_SHRINK && live.length < this._timers.length >>> _TIMER_TABLE_SPARSE_SHIFT) {
      this.#renumberTimers(live);
    }
  }

  /**
   * Gives the live timers ids 0..n-1 and drops the rest of the table and
   * the free list. The table never shrinks otherwise: a live timer with a
   * high id pins its length, and the native heap indexes by id too. Each
   * timer is re-added at its own deadline (the native side rounds up, so
   * never earlier), in (when, seq) order so that equal deadlines keep the
   * order they were scheduled in. Amortized: a renumbering of n slots
   * follows at least 15n/16 releases.
   */
  #renumberTimers(live: TimerHandle[]): void {
    if (live.length > 0) live.sort((a, b) => a._when - b._when || a._seq - b._seq);
    for (const handle of live) this._driver.timerRemove(handle._id);
    for (let id = 0; id < live.length; id++) {
      live[id]._id = id;
      this._driver.timerAt(id, live[id]._when);
    }
    this._timers = live;
    this.#freeIds = [];
  }

  /** @internal */
  _timerHandleCancelled(handle: TimerHandle): void {
    if (handle._scheduled) this._timerCancelledCount++;
  }

  #allocTimer(handle: TimerHandle): number {
    const id = this.#freeIds.length > 0 ? this.#freeIds.pop()! : this._timers.length;
    this._timers[id] = handle;
    handle._id = id;
    handle._seq = this.#timerSeq++;
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
        this._driver.start(this._ready.length > 0 || this.#stopping);
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
    this._driver.stop();
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
    // After close() the outcome is dropped, as asyncio's _chain_future drops
    // a state for a closed destination loop: settling the Future would run
    // callSoon on a closed loop and reject this reaction (an unhandled
    // rejection, issue 8 item 9).
    promise.then(
      (v) => {
        if (!fut.done() && !this.#closed) fut.setResult(v);
      },
      (e) => {
        if (!this.#closed) _setRejection(fut, e);
      },
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
   * Shuts down the default executor (asyncio 3.12): no new jobs; waits for
   * the running ones up to `timeout` seconds (null: no limit), then warns
   * (RuntimeWarning) and terminates its threads. See lib/executor.ts.
   */
  shutdownDefaultExecutor(timeout: number | null = null): Promise<void> {
    return shutdownDefaultExecutor(this, timeout);
  }

  // ---- threads and executors (issue 10 item 4: lib/threads.ts, lib/executor.ts) ----

  callSoonThreadsafe(callback: Callback, ...args: unknown[]): Handle;
  callSoonThreadsafe(options: CallbackOptions, callback: Callback, ...args: unknown[]): Handle;
  /**
   * asyncio's `call_soon_threadsafe` on the loop's own thread: callSoon
   * that also wakes the loop, whatever it is waiting in. From another
   * thread (a worker), post through `threadsafeHandle()` instead: a
   * function cannot cross threads.
   */
  callSoonThreadsafe(first: Callback | CallbackOptions, ...rest: unknown[]): Handle {
    const handle = this.#queueHandle(first, rest, 'callSoonThreadsafe');
    // asyncio's _write_to_self: wake the loop even when the queue was not empty.
    if (this.#running && !this.#inPass) this._driver.kick();
    return handle;
  }

  /**
   * A reference other threads can post to (`postToLoop(ref, message)`):
   * plain data, so it crosses `postMessage`. Each message runs
   * `onMessage(message)` here as an ordinary Handle, FIFO per sender; the
   * reference also accepts `runCoroutineThreadsafe` calls. Closed with the
   * loop (or `ref.close()`): senders then get RuntimeError.
   */
  threadsafeHandle(onMessage?: ((message: any) => unknown) | null): LoopHandle {
    return openThreadsafeHandle(this, onMessage);
  }

  /**
   * asyncio's `run_in_executor`: `fn(...args)` on a worker thread of
   * `executor` (null: the loop's default ThreadPoolExecutor). `fn` is a
   * self-contained function (its source is shipped) or a `{ filename, name }`
   * module export; arguments and result are structured-cloned.
   */
  runInExecutor<T = unknown>(executor: Executor | null, fn: ExecutorFn, ...args: unknown[]): Future<T> {
    return runInExecutor<T>(this, executor, fn, ...args);
  }

  /** Sets the executor runInExecutor(null, ...) uses (a ThreadPoolExecutor). */
  setDefaultExecutor(executor: Executor): void {
    setDefaultExecutor(this, executor);
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

  #signals: SignalHandlers | null = null;

  /**
   * Runs `callback(...args)` on this loop, as an ordinary handle, each time
   * the process receives `sig` (a number or a name such as `'SIGTERM'`).
   * A second call for the same signal replaces the callback. Listeners that
   * others added with `process.on(sig)` keep running too (lib/signals.ts).
   * @throws TypeError for a coroutine function, a non-function, a
   *   malformed `sig` or an unknown name; RangeError for a number that is
   *   no signal; RuntimeError for a signal that cannot be caught (SIGKILL,
   *   SIGSTOP), outside the main thread, or on a closed loop.
   */
  addSignalHandler(sig: number | NodeJS.Signals, callback: Callback, ...args: unknown[]): void {
    checkCallback(callback, 'addSignalHandler');
    this.#checkClosed();
    (this.#signals ??= new SignalHandlers(this)).add(sig, callback, args);
  }

  /**
   * Removes the handler for `sig`; Node's own behaviour for it (its other
   * listeners, or the default action) is what remains.
   * @returns true if a handler was removed, false if none was set.
   */
  removeSignalHandler(sig: number | NodeJS.Signals): boolean {
    return (this.#signals ??= new SignalHandlers(this)).remove(sig);
  }

  /** @internal The callback handling `sig` on this loop, or null (the runner checks its own is still there). */
  _signalCallback(sig: number | NodeJS.Signals): ((...args: any[]) => unknown) | null {
    return this.#signals?.callback(sig) ?? null;
  }

  /**
   * Stops the loop after the current pass; before `runForever()`, the next
   * run does one pass and stops.
   */
  stop(): void {
    this.#stopping = true;
    if (this.#running && !this.#inPass) this._driver.kick();
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
    this.#signals?.clear();
    // While the loop still accepts _removeReader: the pidfds it watches go.
    _orphanChildren(this);
    this.#closed = true;
    // A never-retrieved check still queued (futures.ts) must register its
    // Future now: dropped, it would leave that Future unreported.
    for (const item of this._ready) item._loopClosing?.();
    this._ready = [];
    this._timers = [];
    this.#freeIds = [];
    this._timerCount = 0;
    this._timerCancelledCount = 0;
    // Threads: senders now get RuntimeError; the default executor stops (asyncio: shutdown(wait=False)).
    closeThreadsafeHandles(this);
    void getDefaultExecutor(this)?.shutdown({ wait: false });
    try {
      this._driver.close();
    } finally {
      this._closeIO();
    }
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
    return this.#queueHandle(first, rest, 'callSoon');
  }

  /** callSoon's body: `[options,] callback, ...args` checked, queued. */
  #queueHandle(first: Callback | CallbackOptions, rest: unknown[], method: string): Handle {
    let context: CallbackContext | undefined;
    let callback: unknown = first;
    if (typeof first === 'object' && first !== null) {
      context = (first as CallbackOptions).context;
      callback = rest.shift();
    }
    this.#checkClosed();
    checkCallback(callback, method);
    const handle = new Handle(callback, rest, this, context);
    this._addReady(handle);
    return handle;
  }

  /**
   * @internal The owner of an fd this loop may watch (a pipe, a pidfd) is
   * about to close it (unix-events.ts closeWatchedFd). Returns true when
   * the loop takes the close over and runs `close` itself later; the
   * selector loops have nothing in flight and the proactor cancels its
   * poll ops: both say false, and the owner closes at once.
   */
  _fdClosing(_fd: number, _close?: () => void): boolean {
    return false;
  }

  /** @internal Queues a ready item for the next pass. */
  _addReady(item: ReadyItem): void {
    this._ready.push(item);
    // Inside a pass the native side learns from _runOnce's return value.
    if (this._ready.length === 1 && !this.#inPass && this.#running) this._driver.kick();
  }

  /**
   * Arranges for `callback(...args)` to run after `delay` seconds. Timers
   * with the same deadline run in the order they were scheduled.
   *
   * Edge values (reliability T12): `0` runs on the next pass; a negative
   * delay (down to `-Infinity`) is `0`; `Infinity` and anything beyond
   * about 292 years never fire (`when()` still reports now + delay); large
   * delays such as `2**31` seconds never wrap around to fire early.
   * @throws TypeError for a non-number delay; RangeError for NaN (asyncio
   * would accept it and run the callback at once).
   */
  callLater(delay: number, callback: Callback, ...args: unknown[]): TimerHandle {
    checkTime(delay, 'delay', 'callLater');
    this.#checkClosed();
    checkCallback(callback, 'callLater');
    // One crossing: the native side reads the clock and returns `when`.
    const handle = new TimerHandle(0, callback, args, this);
    const id = this.#allocTimer(handle);
    let when = this._driver.timerIn(id, delay < 0 ? 0 : delay);
    // Past the native clock's range (int64 ns, about 292 years) the native
    // side clamps to "never"; when() still tells what was asked, as asyncio.
    if (when >= _NATIVE_NEVER) when = delay === Infinity ? Infinity : this.time() + delay;
    (handle as { _when: number })._when = when;
    return handle;
  }

  /**
   * Arranges for `callback(...args)` to run at absolute loop time `when`;
   * a past `when` (`0`, `-1`, `-Infinity`) runs on the next pass,
   * `Infinity` never. @throws RangeError for NaN.
   */
  callAt(when: number, callback: Callback, ...args: unknown[]): TimerHandle {
    checkTime(when, 'when', 'callAt');
    this.#checkClosed();
    checkCallback(callback, 'callAt');
    const handle = new TimerHandle(when, callback, args, this);
    this._driver.timerAt(this.#allocTimer(handle), when);
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
   * Values that cannot be turned into text are shown as `<unprintable ...>`.
   */
  defaultExceptionHandler(context: ExceptionContext): void {
    const message = context.message || 'Unhandled exception in event loop';
    const lines = [String(message)];
    for (const key of Object.keys(context).sort()) {
      if (key === 'message' || key === 'exception') continue;
      let value: unknown;
      try {
        value = context[key];
      } catch (exc) {
        lines.push(`${key}: <unprintable: reading it threw ${showValue(exc)}>`);
        continue;
      }
      lines.push(`${key}: ${showValue(value)}`);
    }
    const exc = context.exception;
    if (exc !== undefined) lines.push(showException(exc));
    logger.error(lines.join('\n'));
  }

  /**
   * Calls the exception handler with `context` (the default one if none is
   * set). Never throws, as asyncio's: a failing custom handler is reported
   * through the default one, a failing default handler is logged, and if
   * even the logger fails the failure is dropped. An error escaping here
   * would leave the loop's pass half done.
   */
  callExceptionHandler(context: ExceptionContext): void {
    const handler = this.#exceptionHandler;
    if (handler === null) {
      try {
        this.defaultExceptionHandler(context);
      } catch (exc) {
        logLastResort('Exception in default exception handler', exc);
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
        logLastResort('Exception in default exception handler while handling an unexpected error in custom exception handler', exc2);
      }
    }
  }

  getDebug(): boolean {
    return this.#debug;
  }

  setDebug(enabled: boolean): void {
    this.#debug = Boolean(enabled);
  }

  // ------------------------------------------------------------ networking
  //
  // Ports of base_events.py's create_connection, create_server and friends.
  // Each is a generator coroutine run as a Task of this loop, so callers of
  // either coroutine kind can await or yield* it, and cancelling the caller
  // cancels the operation at its current wait (sockets made so far closed).

  // The selector half (selector-events.ts) supplies these.
  /** @internal */ abstract _makeSocketTransport(sock: Socket, protocol: BaseProtocol, waiter?: Future<void> | null, extra?: Record<string, unknown>, server?: Server | null): Transport;
  /** @internal */ abstract _makeDatagramTransport(sock: Socket, protocol: DatagramProtocol, address?: SockAddr, waiter?: Future<void> | null, extra?: Record<string, unknown>): DatagramTransport;
  /** @internal */ abstract _startServing(protocolFactory: () => BaseProtocol, sock: Socket, server: Server, backlog: number, sslWrap?: (sock: Socket, protocol: BaseProtocol, extra: Record<string, unknown>, server: Server | null) => void): void;
  /** @internal */ abstract _stopServing(sock: Socket): void;

  /**
   * Resolves `host`/`port` off the loop thread (node:dns, on libuv's thread
   * pool); numeric hosts skip DNS. Entries: `[family, type, proto,
   * canonname, sockaddr]`, as Python's socket.getaddrinfo.
   */
  override getaddrinfo(
    host: string | null | undefined,
    port: number | string | null | undefined,
    options: { family?: number; type?: number; proto?: number; flags?: number } = {},
  ): Future<AddrInfo[]> {
    return this.createTask(getaddrinfoGen(this, host, port, options));
  }

  /** Reverse lookup: `[host, service]` for a `[host, port]` address (node:dns.lookupService). */
  getnameinfo(sockaddr: [string, number], _flags = 0): Future<[string, string]> {
    if (!Array.isArray(sockaddr) || typeof sockaddr[0] !== 'string' || !Number.isInteger(sockaddr[1])) {
      throw new TypeError(describeArg('sockaddr', 'a [host, port] pair', sockaddr));
    }
    return this.wrap(dns.lookupService(sockaddr[0], sockaddr[1]).then((r) => [r.hostname, r.service] as [string, string]));
  }

  /**
   * Opens a stream connection to `host`:`port` and wraps it in a transport
   * and a protocol made by `protocolFactory`: resolves with `[transport,
   * protocol]` once `connectionMade` has run.
   * @example
   * const [transport, protocol] = await loop.createConnection(() => new MyProtocol(), '127.0.0.1', 8080);
   */
  createConnection<P extends BaseProtocol>(
    protocolFactory: () => P,
    host?: string | null,
    port?: number | string | null,
    options: CreateConnectionOptions = {},
  ): Task<[Transport, P]> {
    checkFactory(protocolFactory);
    return this.createTask(createConnectionGen(this, protocolFactory, host, port, options)) as Task<[Transport, P]>;
  }

  /** createConnection over a Unix stream socket at `path` (or `options.sock`). */
  createUnixConnection<P extends BaseProtocol>(protocolFactory: () => P, path?: string | null, options: CreateConnectionOptions = {}): Task<[Transport, P]> {
    checkFactory(protocolFactory);
    return this.createTask(createUnixConnectionGen(this, protocolFactory, path, options)) as Task<[Transport, P]>;
  }

  /**
   * Listens on `host` (a name, a list of names, or all interfaces when
   * null/''/undefined) and `port` (0: pick one); each accepted connection
   * gets a protocol from `protocolFactory`. Resolves with the Server, already
   * accepting unless `startServing: false`.
   * @example
   * const server = await loop.createServer(() => new Echo(), '127.0.0.1', 0);
   * console.log(server.sockets[0].getsockname());
   */
  createServer(
    protocolFactory: () => BaseProtocol,
    host?: string | string[] | null,
    port?: number | string | null,
    options: CreateServerOptions = {},
  ): Task<Server> {
    checkFactory(protocolFactory);
    return this.createTask(createServerGen(this, protocolFactory, host, port, options));
  }

  /**
   * createServer on a Unix socket path (a stale socket file there is removed
   * first). With `cleanupSocket` (the default, as asyncio 3.13) `close()`
   * removes the socket file, if the path still names the socket it bound.
   * The Task fails with a TypeError for a path with an embedded NUL,
   * before anything is bound.
   */
  createUnixServer(protocolFactory: () => BaseProtocol, path?: string | null, options: CreateServerOptions & { cleanupSocket?: boolean } = {}): Task<Server> {
    checkFactory(protocolFactory);
    return this.createTask(createUnixServerGen(this, protocolFactory, path, options));
  }

  /** Wraps an already connected stream socket (e.g. from sockAccept) in a transport. */
  connectAcceptedSocket<P extends BaseProtocol>(protocolFactory: () => P, sock: Socket, options: { ssl?: unknown; sslHandshakeTimeout?: number; sslShutdownTimeout?: number } = {}): Task<[Transport, P]> {
    checkFactory(protocolFactory);
    checkStreamSocket(sock);
    return this.createTask(createConnectionTransport(this, sock, protocolFactory, options.ssl, undefined, true, options)) as Task<[Transport, P]>;
  }

  /**
   * Upgrades an open stream transport to TLS (asyncio's start_tls): resolves
   * with the new transport once the handshake is done; the old one must not
   * be used any more.
   */
  startTls(transport: Transport, protocol: BaseProtocol, sslcontext: unknown, options: StartTlsOptions = {}): Task<SSLTransport> {
    return (_tls.startTls ?? tlsNotReady)(this, transport, protocol, sslcontext, options);
  }

  /**
   * Makes a datagram endpoint: bound to `localAddr`, connected to
   * `remoteAddr`, or on a given `sock`. Resolves with `[transport, protocol]`.
   */
  createDatagramEndpoint<P extends DatagramProtocol>(protocolFactory: () => P, options: CreateDatagramOptions = {}): Task<[DatagramTransport, P]> {
    checkFactory(protocolFactory);
    return this.createTask(createDatagramEndpointGen(this, protocolFactory, options)) as Task<[DatagramTransport, P]>;
  }

  // ------------------------------------------------------------ pipes and subprocesses (unix-events.ts)

  /**
   * Wraps the read end of a pipe, FIFO, character device or socket (an fd,
   * a FileHandle, or an object with `fd`/`fileno()`; the transport owns and
   * closes it) in a read transport and a protocol from `protocolFactory`.
   * @example
   * const reader = new StreamReader();
   * await loop.connectReadPipe(() => new StreamReaderProtocol(reader), 0);
   */
  connectReadPipe<P extends BaseProtocol>(protocolFactory: () => P, pipe: PipeLike): Task<[ReadTransport, P]> {
    return unixConnectReadPipe(this, protocolFactory, pipe);
  }

  /** As connectReadPipe, for the write end: a write transport with flow control. */
  connectWritePipe<P extends BaseProtocol>(protocolFactory: () => P, pipe: PipeLike): Task<[WriteTransport, P]> {
    return unixConnectWritePipe(this, protocolFactory, pipe);
  }

  /**
   * Runs `program` with `args` (no shell); resolves with `[transport,
   * protocol]` once the child's pipes are connected.
   * @throws FileNotFoundError (code 'ENOENT') through the Task when the program is missing.
   */
  subprocessExec<P extends SubprocessProtocol>(protocolFactory: () => P, program: string, args?: readonly string[], options?: SubprocessOptions): Task<[SubprocessTransport, P]> {
    return unixSubprocessExec(this, protocolFactory, program, args, options);
  }

  /** Runs `cmd` through /bin/sh -c; as subprocessExec. */
  subprocessShell<P extends SubprocessProtocol>(protocolFactory: () => P, cmd: string, options?: SubprocessOptions): Task<[SubprocessTransport, P]> {
    return unixSubprocessShell(this, protocolFactory, cmd, options);
  }

  override toString(): string {
    return `<${this.constructor.name} running=${this.#running} closed=${this.#closed} debug=${this.#debug}>`;
  }
}

// ---------------------------------------------------------------- networking helpers

/** One getaddrinfo result: `[family, type, proto, canonname, sockaddr]`. */
export type AddrInfo = [family: number, type: number, proto: number, canonname: string, sockaddr: SockAddr];

/** Options of createConnection / createUnixConnection. */
export interface CreateConnectionOptions {
  /** TLS: `true` or a `tls.SecureContext`/tls options object (see README "TLS"). */
  ssl?: unknown;
  family?: number;
  proto?: number;
  flags?: number;
  /** An already made socket to connect over (then no host/port). */
  sock?: Socket;
  /** `[host, port]` to bind the local end to. */
  localAddr?: [string, number];
  serverHostname?: string;
  sslHandshakeTimeout?: number;
  sslShutdownTimeout?: number;
  /** Happy Eyeballs (RFC 8305): seconds to wait before racing the next address. */
  happyEyeballsDelay?: number;
  /** Interleave address families (1 by default with happyEyeballsDelay). */
  interleave?: number;
  /** Throw an ExceptionGroup of every attempt's error instead of one error. */
  allErrors?: boolean;
}

/** Options of createServer / createUnixServer. */
export interface CreateServerOptions {
  family?: number;
  flags?: number;
  sock?: Socket;
  backlog?: number;
  ssl?: unknown;
  /** SO_REUSEADDR; true by default on POSIX, as asyncio. */
  reuseAddress?: boolean;
  reusePort?: boolean;
  keepAlive?: boolean;
  sslHandshakeTimeout?: number;
  sslShutdownTimeout?: number;
  startServing?: boolean;
}

/** Options of createDatagramEndpoint. */
export interface CreateDatagramOptions {
  localAddr?: SockAddr;
  remoteAddr?: SockAddr;
  family?: number;
  proto?: number;
  flags?: number;
  reusePort?: boolean;
  allowBroadcast?: boolean;
  sock?: Socket;
}

function checkFactory(f: unknown): void {
  if (typeof f !== 'function') throw new TypeError(describeArg('protocolFactory', 'a function returning a protocol', f));
}

/**
 * Refuses a filesystem socket path with an embedded NUL: the kernel would
 * stop at it and bind or connect to a shorter path (Python: "ValueError:
 * embedded null byte"). A leading NUL names a Linux abstract socket, whose
 * name may hold any byte.
 */
function checkUnixPath(path: unknown): void {
  if (typeof path === 'string' && !path.startsWith('\0') && path.includes('\0')) {
    throw new TypeError(describeArg('path', 'a socket path without NUL bytes (only an abstract name starts with one)', path));
  }
}

function checkStreamSocket(sock: unknown): asserts sock is Socket {
  if (!(sock instanceof Socket)) throw new TypeError(describeArg('sock', 'an aionode Socket', sock));
  if (sock.type !== sockConsts().SOCK_STREAM) throw new RangeError(`A Stream Socket was expected, got ${sock.toString()}`);
}

function sockConsts(): Readonly<Record<string, number>> {
  return socketConstants();
}

function checkPort(port: unknown): number | undefined {
  if (port === undefined || port === null) return undefined;
  const n = typeof port === 'string' && /^\d+$/.test(port) ? Number(port) : port;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 65535) {
    throw new RangeError(describeArg('port', 'an integer from 0 to 65535', port));
  }
  return n;
}

function* getaddrinfoGen(
  loop: BaseEventLoop,
  host: string | null | undefined,
  port: number | string | null | undefined,
  options: { family?: number; type?: number; proto?: number; flags?: number },
): Coroutine<AddrInfo[]> {
  const c = sockConsts();
  const p = checkPort(port) ?? 0;
  const type = options.type ?? c.SOCK_STREAM;
  const proto = options.proto ?? 0;
  const wantFamily = options.family ?? 0;
  if (host !== null && host !== undefined && typeof host !== 'string') {
    throw new TypeError(describeArg('host', 'a host name or address string', host));
  }
  const toInfo = (address: string, fam: number): AddrInfo => {
    const af = fam === 6 ? c.AF_INET6 : c.AF_INET;
    return [af, type, proto, '', af === c.AF_INET6 ? [address, p, 0, 0] : [address, p]];
  };
  const famNum = wantFamily === c.AF_INET ? 4 : wantFamily === c.AF_INET6 ? 6 : 0;
  if (host === null || host === undefined || host === '') {
    // Passive (server) use: all interfaces, as getaddrinfo(None, port, AI_PASSIVE).
    const infos: AddrInfo[] = [];
    if (famNum !== 6) infos.push(toInfo('0.0.0.0', 4));
    if (famNum !== 4) infos.push(toInfo('::', 6));
    return infos;
  }
  const ipv = net.isIP(host);
  if (ipv !== 0) {
    if (famNum !== 0 && famNum !== ipv) {
      throw makeOSError(`getaddrinfo EAI_ADDRFAMILY ${host}`, { code: 'EAI_ADDRFAMILY', syscall: 'getaddrinfo' });
    }
    return [toInfo(host, ipv)];
  }
  // Node resolves on libuv's thread pool: never on the loop thread.
  const found = yield* loop.wrap(dns.lookup(host, { all: true, family: famNum, verbatim: true }).catch((e: NodeJS.ErrnoException) => {
    throw makeOSError(`getaddrinfo ${e.code ?? 'EAI_FAIL'} ${host}`, { code: e.code, syscall: 'getaddrinfo' });
  }));
  return found.map((a) => toInfo(a.address, a.family));
}

function interleaveAddrinfos(infos: AddrInfo[], firstAddressFamilyCount = 1): AddrInfo[] {
  // RFC 8305: alternate families, starting with `count` of the first one.
  const byFamily = new Map<number, AddrInfo[]>();
  for (const info of infos) {
    const list = byFamily.get(info[0]) ?? [];
    list.push(info);
    byFamily.set(info[0], list);
  }
  const lists = [...byFamily.values()];
  const out: AddrInfo[] = [];
  if (lists.length > 0 && firstAddressFamilyCount > 1) {
    out.push(...lists[0].splice(0, firstAddressFamilyCount - 1));
  }
  for (let i = 0; lists.some((l) => i < l.length); i++) {
    for (const l of lists) if (i < l.length) out.push(l[i]);
  }
  return out;
}

function* connectSock(loop: BaseEventLoop, exceptions: unknown[], info: AddrInfo, localInfos: AddrInfo[] | null): Coroutine<Socket> {
  const [family, type, , , address] = info;
  let sock: Socket | null = null;
  try {
    sock = new Socket(family, type);
    if (localInfos !== null) {
      let bound = false;
      for (const [lfam, , , , laddr] of localInfos) {
        if (lfam !== family) continue;
        try {
          sock.bind(laddr);
          bound = true;
          break;
        } catch (exc) {
          const e = exc as OSError;
          exceptions.push(makeOSError(`error while attempting to bind on address ${formatAddress(laddr)}: ${e.strerror ?? e.message}`, { errno: e.errno, code: e.code, syscall: 'bind' }));
        }
      }
      if (!bound) throw exceptions.pop() ?? new OSError(`no matching local address with family=${family} found`);
    }
    yield* loop.sockConnect(sock, address);
    return sock;
  } catch (exc) {
    if (!(exc instanceof CancelledError)) exceptions.push(exc);
    sock?.close();
    throw exc;
  }
}

function* staggeredConnect(loop: BaseEventLoop, infos: AddrInfo[], localInfos: AddrInfo[] | null, delay: number, exceptions: unknown[][]): Coroutine<Socket | null> {
  // Happy Eyeballs: start the next attempt after `delay` seconds, or at once
  // when the previous one fails; the first connected socket wins.
  const running = new Set<Future<Socket>>();
  let next = 0;
  let winner: Socket | null = null;
  try {
    for (;;) {
      if (next < infos.length) {
        const excs: unknown[] = [];
        exceptions.push(excs);
        running.add(loop.createTask(connectSock(loop, excs, infos[next++], localInfos)));
      }
      if (running.size === 0) return null;
      const [done] = yield* wait(running, { timeout: next < infos.length ? delay : null, returnWhen: FIRST_COMPLETED });
      for (const t of done) {
        running.delete(t);
        if (winner === null && !t.cancelled() && t.exception() === undefined) winner = t.result();
      }
      if (winner !== null) return winner;
    }
  } finally {
    // Losers (or everything, if the caller was cancelled) are cancelled; a
    // socket that connected anyway is closed.
    for (const t of running) {
      t.cancel();
      t.addDoneCallback((f) => {
        if (!f.cancelled() && f.exception() === undefined) f.result().close();
      });
    }
  }
}

function* createConnectionGen<P extends BaseProtocol>(
  loop: BaseEventLoop,
  protocolFactory: () => P,
  host: string | null | undefined,
  port: number | string | null | undefined,
  o: CreateConnectionOptions,
): Coroutine<[Transport, P]> {
  const c = sockConsts();
  if (o.serverHostname !== undefined && !o.ssl) throw new RangeError('server_hostname is only meaningful with ssl');
  if (o.sslHandshakeTimeout !== undefined && !o.ssl) throw new RangeError('ssl_handshake_timeout is only meaningful with ssl');
  if (o.sslShutdownTimeout !== undefined && !o.ssl) throw new RangeError('ssl_shutdown_timeout is only meaningful with ssl');
  let serverHostname = o.serverHostname;
  if (o.ssl && serverHostname === undefined) {
    if (!host) throw new RangeError('You must set server_hostname when using ssl without a host');
    serverHostname = host;
  }
  let sock: Socket | null = null;
  if (o.sock === undefined) {
    if ((host === null || host === undefined) && (port === null || port === undefined)) {
      throw new RangeError('host and port was not specified and no sock specified');
    }
    const infos = yield* getaddrinfoGen(loop, host, port, { family: o.family, type: c.SOCK_STREAM, proto: o.proto, flags: o.flags });
    if (infos.length === 0) throw new OSError('getaddrinfo() returned empty list');
    let localInfos: AddrInfo[] | null = null;
    if (o.localAddr !== undefined) {
      localInfos = yield* getaddrinfoGen(loop, o.localAddr[0], o.localAddr[1], { family: o.family, type: c.SOCK_STREAM });
      if (localInfos.length === 0) throw new OSError('getaddrinfo() returned empty list');
    }
    let interleave = o.interleave;
    if (o.happyEyeballsDelay !== undefined && interleave === undefined) interleave = 1;
    const ordered = interleave ? interleaveAddrinfos(infos, interleave) : infos;
    const exceptions: unknown[][] = [];
    if (o.happyEyeballsDelay === undefined) {
      for (const info of ordered) {
        const excs: unknown[] = [];
        exceptions.push(excs);
        try {
          sock = yield* connectSock(loop, excs, info, localInfos);
          break;
        } catch (exc) {
          if (exc instanceof CancelledError) throw exc;
        }
      }
    } else {
      sock = yield* staggeredConnect(loop, ordered, localInfos, o.happyEyeballsDelay, exceptions);
    }
    if (sock === null) {
      const flat = exceptions.flat();
      if (o.allErrors) throw new ExceptionGroup('create_connection failed', flat);
      if (flat.length === 1) throw flat[0];
      const first = String((flat[0] as Error)?.message);
      if (flat.every((e) => String((e as Error)?.message) === first)) throw flat[0];
      throw new OSError(`Multiple exceptions: ${flat.map((e) => String((e as Error)?.message)).join(', ')}`);
    }
  } else {
    if ((host !== null && host !== undefined) || (port !== null && port !== undefined)) {
      throw new RangeError('host/port and sock can not be specified at the same time');
    }
    checkStreamSocket(o.sock);
    sock = o.sock;
  }
  return yield* createConnectionTransport(loop, sock, protocolFactory, o.ssl, serverHostname, false, o);
}

function* createUnixConnectionGen<P extends BaseProtocol>(loop: BaseEventLoop, protocolFactory: () => P, path: string | null | undefined, o: CreateConnectionOptions): Coroutine<[Transport, P]> {
  const c = sockConsts();
  if (o.ssl && o.serverHostname === undefined) throw new RangeError('you have to pass server_hostname when using ssl');
  let sock: Socket;
  if (path !== null && path !== undefined) {
    if (o.sock !== undefined) throw new RangeError('path and sock can not be specified at the same time');
    if (typeof path !== 'string') throw new TypeError(describeArg('path', 'a socket path string', path));
    checkUnixPath(path);
    sock = new Socket(c.AF_UNIX, c.SOCK_STREAM);
    try {
      yield* loop.sockConnect(sock, path);
    } catch (exc) {
      sock.close();
      throw exc;
    }
  } else {
    if (o.sock === undefined) throw new RangeError('no path and sock were specified');
    if (o.sock.family !== c.AF_UNIX || o.sock.type !== c.SOCK_STREAM) throw new RangeError(`A UNIX Domain Stream Socket was expected, got ${o.sock.toString()}`);
    sock = o.sock;
  }
  return yield* createConnectionTransport(loop, sock, protocolFactory, o.ssl, o.serverHostname, false, o);
}

/** @internal The TLS layer registers itself here (sslproto.ts). */
export const _tls: {
  startTls?: (loop: BaseEventLoop, transport: Transport, protocol: BaseProtocol, sslcontext: unknown, options?: StartTlsOptions) => Task<SSLTransport>;
  wrapClient?: (loop: BaseEventLoop, sock: Socket, protocol: BaseProtocol, ssl: unknown, serverHostname: string | undefined, waiter: Future<void>, o: { sslHandshakeTimeout?: number; sslShutdownTimeout?: number }) => Transport;
  wrapServer?: (loop: BaseEventLoop, ssl: unknown, o: { sslHandshakeTimeout?: number; sslShutdownTimeout?: number }) => (sock: Socket, protocol: BaseProtocol, extra: Record<string, unknown>, server: Server | null) => void;
  wrapAccepted?: (loop: BaseEventLoop, sock: Socket, protocol: BaseProtocol, ssl: unknown, waiter: Future<void>, o: { sslHandshakeTimeout?: number; sslShutdownTimeout?: number }) => Transport;
} = {};

function tlsNotReady(): never {
  throw new RuntimeError('TLS support is not loaded');
}

function* createConnectionTransport<P extends BaseProtocol>(
  loop: BaseEventLoop,
  sock: Socket,
  protocolFactory: () => P,
  ssl: unknown,
  serverHostname: string | undefined,
  serverSide: boolean,
  o: { sslHandshakeTimeout?: number; sslShutdownTimeout?: number },
): Coroutine<[Transport, P]> {
  let protocol: P;
  try {
    protocol = protocolFactory();
  } catch (exc) {
    // Python closes the socket when it is collected; ours must be closed here.
    sock.close();
    throw exc;
  }
  const waiter = loop.createFuture<void>();
  let transport: Transport;
  try {
    if (ssl) {
      transport = serverSide
        ? (_tls.wrapAccepted ?? tlsNotReady)(loop, sock, protocol, ssl, waiter, o)
        : (_tls.wrapClient ?? tlsNotReady)(loop, sock, protocol, ssl, serverHostname, waiter, o);
    } else {
      transport = loop._makeSocketTransport(sock, protocol, waiter);
    }
  } catch (exc) {
    sock.close();
    throw exc;
  }
  try {
    yield* waiter;
  } catch (exc) {
    transport.close();
    throw exc;
  }
  return [transport, protocol];
}

function* createServerGen(
  loop: BaseEventLoop,
  protocolFactory: () => BaseProtocol,
  host: string | string[] | null | undefined,
  port: number | string | null | undefined,
  o: CreateServerOptions,
): Coroutine<Server> {
  const c = sockConsts();
  if (o.sslHandshakeTimeout !== undefined && !o.ssl) throw new RangeError('ssl_handshake_timeout is only meaningful with ssl');
  if (o.sslShutdownTimeout !== undefined && !o.ssl) throw new RangeError('ssl_shutdown_timeout is only meaningful with ssl');
  const backlog = checkBacklog(o.backlog);
  let sockets: Socket[] = [];
  if (o.sock === undefined) {
    const hosts = host === null || host === undefined || host === '' ? [null] : typeof host === 'string' ? [host] : [...host];
    checkPort(port);
    const reuseAddress = o.reuseAddress ?? true;
    const seen = new Set<string>();
    const infos: AddrInfo[] = [];
    for (const h of hosts) {
      for (const info of yield* getaddrinfoGen(loop, h, port, { family: o.family, type: c.SOCK_STREAM, flags: o.flags })) {
        const key = `${info[0]} ${formatAddress(info[4])}`;
        if (!seen.has(key)) {
          seen.add(key);
          infos.push(info);
        }
      }
    }
    try {
      for (const [af, type, , , sa] of infos) {
        const sock = new Socket(af, type);
        sockets.push(sock);
        if (reuseAddress) sock.setsockopt(c.SOL_SOCKET, c.SO_REUSEADDR, 1);
        if (o.reusePort) sock.setsockopt(c.SOL_SOCKET, c.SO_REUSEPORT, 1);
        if (o.keepAlive) sock.setsockopt(c.SOL_SOCKET, c.SO_KEEPALIVE, 1);
        // Keep IPv6 sockets IPv6-only so '::' and '0.0.0.0' can both bind.
        if (af === c.AF_INET6) sock.setsockopt(c.IPPROTO_IPV6, c.IPV6_V6ONLY, 1);
        try {
          sock.bind(sa);
        } catch (exc) {
          const e = exc as OSError;
          throw makeOSError(`error while attempting to bind on address ${formatAddress(sa)}: ${e.strerror ?? e.message}`, {
            errno: e.errno,
            code: e.code,
            syscall: 'bind',
            address: Array.isArray(sa) ? sa[0] : sa,
            port: Array.isArray(sa) ? sa[1] : undefined,
          });
        }
      }
    } catch (exc) {
      for (const s of sockets) s.close();
      throw exc;
    }
  } else {
    if ((host !== null && host !== undefined) || (port !== null && port !== undefined)) {
      throw new RangeError('host/port and sock can not be specified at the same time');
    }
    checkStreamSocket(o.sock);
    sockets = [o.sock];
  }
  const server = new Server(loop, sockets, protocolFactory, o.ssl, backlog, o);
  if (o.startServing ?? true) {
    try {
      server._startServing();
    } catch (exc) {
      server.close();
      throw exc;
    }
    // Let the loop run once so the server starts accepting (asyncio does the same).
    yield* startedServing(server);
  }
  return server;
}

/**
 * The pass that lets a new server start accepting. Cancelled there, the
 * server was never handed to anyone: close it (asyncio relies on the GC
 * to close such a socket; here nothing would).
 */
function* startedServing(server: Server): Coroutine<void> {
  try {
    yield* sleep(0);
  } catch (exc) {
    server.close();
    throw exc;
  }
}

function checkBacklog(backlog: unknown): number {
  if (backlog === undefined) return 100;
  if (typeof backlog !== 'number' || !Number.isInteger(backlog) || backlog < 0) {
    throw new RangeError(describeArg('backlog', 'a non-negative integer', backlog));
  }
  return backlog;
}

function* createUnixServerGen(loop: BaseEventLoop, protocolFactory: () => BaseProtocol, path: string | null | undefined, o: CreateServerOptions & { cleanupSocket?: boolean }): Coroutine<Server> {
  const c = sockConsts();
  const backlog = checkBacklog(o.backlog);
  let sock: Socket;
  if (path !== null && path !== undefined) {
    if (o.sock !== undefined) throw new RangeError('path and sock can not be specified at the same time');
    if (typeof path !== 'string') throw new TypeError(describeArg('path', 'a socket path string', path));
    checkUnixPath(path);
    // A stale socket file from an earlier run would make bind fail.
    if (!path.startsWith('\0')) {
      try {
        if (fs.statSync(path).isSocket()) fs.unlinkSync(path);
      } catch {
        // Nothing there.
      }
    }
    sock = new Socket(c.AF_UNIX, c.SOCK_STREAM);
    try {
      sock.bind(path);
    } catch (exc) {
      sock.close();
      const e = exc as OSError;
      if (e.code === 'EADDRINUSE') throw makeOSError(`Address ${path} is already in use`, { errno: e.errno, code: e.code, syscall: 'bind', address: path });
      throw exc;
    }
  } else {
    if (o.sock === undefined) throw new RangeError('path was not specified, and no sock specified');
    if (o.sock.family !== c.AF_UNIX || o.sock.type !== c.SOCK_STREAM) throw new RangeError(`A UNIX Domain Stream Socket was expected, got ${o.sock.toString()}`);
    sock = o.sock;
  }
  const server = new Server(loop, [sock], protocolFactory, o.ssl, backlog, o);
  if (o.cleanupSocket ?? true) server._watchUnixSocket(sock);
  if (o.startServing ?? true) {
    try {
      server._startServing();
    } catch (exc) {
      server.close();
      throw exc;
    }
    yield* startedServing(server);
  }
  return server;
}

/** A datagram endpoint address option: a path, or `[host, port, ...]`. */
function checkDatagramAddr(name: string, addr: unknown): void {
  if (addr === undefined || addr === null || typeof addr === 'string') return;
  if (Array.isArray(addr) && addr.length >= 2 && typeof addr[0] === 'string') return;
  throw new TypeError(describeArg(name, 'a path string or a [host, port] array', addr));
}

function* createDatagramEndpointGen<P extends DatagramProtocol>(loop: BaseEventLoop, protocolFactory: () => P, o: CreateDatagramOptions): Coroutine<[DatagramTransport, P]> {
  const c = sockConsts();
  checkDatagramAddr('localAddr', o.localAddr);
  checkDatagramAddr('remoteAddr', o.remoteAddr);
  let sock: Socket | null = null;
  let remote: SockAddr | undefined;
  if (o.sock !== undefined) {
    if (o.sock.type !== c.SOCK_DGRAM) throw new RangeError(`A datagram socket was expected, got ${o.sock.toString()}`);
    if (o.localAddr || o.remoteAddr || o.family || o.proto || o.flags || o.reusePort || o.allowBroadcast) {
      throw new RangeError('socket modifier keyword arguments can not be used when sock is specified.');
    }
    sock = o.sock;
  } else {
    if (o.localAddr === undefined && o.remoteAddr === undefined && !o.family) throw new RangeError('unexpected address family');
    const unix = typeof o.localAddr === 'string' || typeof o.remoteAddr === 'string' || o.family === c.AF_UNIX;
    let local: SockAddr | undefined;
    let family: number;
    if (unix) {
      family = c.AF_UNIX;
      local = o.localAddr;
      remote = o.remoteAddr;
    } else {
      const lInfos = o.localAddr ? yield* getaddrinfoGen(loop, (o.localAddr as [string, number])[0], (o.localAddr as [string, number])[1], { family: o.family, type: c.SOCK_DGRAM }) : [];
      const rInfos = o.remoteAddr ? yield* getaddrinfoGen(loop, (o.remoteAddr as [string, number])[0], (o.remoteAddr as [string, number])[1], { family: o.family, type: c.SOCK_DGRAM }) : [];
      const pick = (rInfos[0] ?? lInfos[0]);
      if (pick === undefined) throw new OSError('getaddrinfo() returned empty list');
      family = pick[0];
      local = lInfos.find((i) => i[0] === family)?.[4];
      remote = rInfos.find((i) => i[0] === family)?.[4];
      if (o.localAddr && local === undefined) throw new RangeError('can not get address information');
    }
    sock = new Socket(family, c.SOCK_DGRAM);
    try {
      if (o.reusePort) sock.setsockopt(c.SOL_SOCKET, c.SO_REUSEPORT, 1);
      if (o.allowBroadcast) sock.setsockopt(c.SOL_SOCKET, c.SO_BROADCAST, 1);
      if (local !== undefined) sock.bind(local);
      if (remote !== undefined) yield* loop.sockConnect(sock, remote);
    } catch (exc) {
      sock.close();
      throw exc;
    }
  }
  let protocol: P;
  try {
    protocol = protocolFactory();
  } catch (exc) {
    sock.close();
    throw exc;
  }
  const waiter = loop.createFuture<void>();
  const transport = loop._makeDatagramTransport(sock, protocol, remote, waiter);
  try {
    yield* waiter;
  } catch (exc) {
    transport.close();
    throw exc;
  }
  return [transport, protocol];
}

/**
 * A listening server (asyncio's base_events.Server): `close()` stops
 * accepting, `waitClosed()` waits for its connections to end.
 */
export class Server {
  /** @internal */ _loop: BaseEventLoop;
  #sockets: Socket[] | null;
  #protocolFactory: () => BaseProtocol;
  #ssl: unknown;
  #backlog: number;
  #options: CreateServerOptions;
  #serving = false;
  #servingForever: Future<void> | null = null;
  #waiters: Future<void>[] | null = [];
  #clients = new Set<Transport>();
  /** @internal A Unix socket file to remove on close. */ _unixPath: string | null = null;
  // Which file _unixPath was when bound: only that one is removed.
  #unixId: { dev: bigint; ino: bigint } | null = null;

  /** @internal Made by createServer / createUnixServer. */
  constructor(loop: BaseEventLoop, sockets: Socket[], protocolFactory: () => BaseProtocol, ssl: unknown, backlog: number, options: CreateServerOptions) {
    this._loop = loop;
    this.#sockets = sockets;
    this.#protocolFactory = protocolFactory;
    this.#ssl = ssl;
    this.#backlog = backlog;
    this.#options = options;
  }

  toString(): string {
    return `<Server sockets=${this.#sockets === null ? '()' : `(${this.#sockets.map((s) => s.toString()).join(', ')})`}>`;
  }

  /**
   * @internal Remembers the socket file `sock` is bound to, to remove it on
   * close (asyncio 3.13 `cleanup_socket`): by inode, so a file that
   * replaced it meanwhile (another server's) is left alone.
   */
  _watchUnixSocket(sock: Socket): void {
    let path: SockAddr;
    try {
      path = sock.getsockname();
    } catch {
      return;
    }
    if (typeof path !== 'string' || path === '' || path.startsWith('\0')) return;
    try {
      const st = fs.statSync(path, { bigint: true });
      this._unixPath = path;
      this.#unixId = { dev: st.dev, ino: st.ino };
    } catch {
      // Gone already: nothing to clean up.
    }
  }

  #removeUnixSocket(): void {
    const path = this._unixPath;
    const id = this.#unixId;
    this._unixPath = null;
    this.#unixId = null;
    if (path === null || id === null) return;
    try {
      const st = fs.statSync(path, { bigint: true });
      if (st.ino === id.ino && st.dev === id.dev) fs.unlinkSync(path);
    } catch (exc) {
      if ((exc as { code?: string }).code !== 'ENOENT') {
        logErrorSafely(`Unable to clean up listening UNIX socket ${JSON.stringify(path)}: ${showValue(exc)}`);
      }
    }
  }

  /** @internal */
  _attach(transport: Transport): void {
    this.#clients.add(transport);
  }

  /** @internal */
  _detach(transport: Transport): void {
    this.#clients.delete(transport);
    if (this.#clients.size === 0 && this.#sockets === null) this.#wakeup();
  }

  #wakeup(): void {
    const waiters = this.#waiters;
    this.#waiters = null;
    for (const w of waiters ?? []) if (!w.done()) w.setResult(undefined);
  }

  /** @internal */
  _startServing(): void {
    if (this.#serving || this.#sockets === null) return;
    // Before listening: a bad ssl option must not leave listeners behind.
    const sslWrap = this.#ssl ? (_tls.wrapServer ?? tlsNotReady)(this._loop, this.#ssl, this.#options) : undefined;
    this.#serving = true;
    for (const sock of this.#sockets) {
      sock.listen(this.#backlog);
      this._loop._startServing(this.#protocolFactory, sock, this, this.#backlog, sslWrap);
    }
  }

  getLoop(): BaseEventLoop {
    return this._loop;
  }

  /** Whether the server accepts new connections. */
  isServing(): boolean {
    return this.#serving;
  }

  /** The listening sockets (empty once closed). */
  get sockets(): readonly Socket[] {
    return this.#sockets === null ? [] : [...this.#sockets];
  }

  /**
   * Stops listening: closes the listening sockets. Open connections stay
   * (closeClients/abortClients end them); waitClosed() waits for them.
   */
  close(): void {
    const sockets = this.#sockets;
    if (sockets === null) return;
    this.#sockets = null;
    for (const sock of sockets) this._loop._stopServing(sock);
    this.#serving = false;
    this.#removeUnixSocket();
    if (this.#servingForever !== null && !this.#servingForever.done()) {
      this.#servingForever.cancel();
      this.#servingForever = null;
    }
    if (this.#clients.size === 0) this.#wakeup();
  }

  /** Closes every open connection gracefully (buffers are flushed). */
  closeClients(): void {
    for (const t of [...this.#clients]) t.close();
  }

  /** Aborts every open connection (buffers are dropped). */
  abortClients(): void {
    for (const t of [...this.#clients]) t.abort();
  }

  /** Starts accepting (when made with `startServing: false`). */
  startServing(): Future<void> {
    this._startServing();
    return this._loop.createTask(function* () {
      yield* sleep(0);
    }());
  }

  /**
   * Serves until cancelled or until close(): cancelling it closes the
   * server and waits for it to be closed.
   * @throws RuntimeError if already served forever, or closed.
   */
  serveForever(): Future<void> {
    if (this.#servingForever !== null) throw new RuntimeError(`server ${this.toString()} is already being awaited on serve_forever()`);
    if (this.#sockets === null) throw new RuntimeError(`server ${this.toString()} is closed`);
    this._startServing();
    const fut = this._loop.createFuture<void>();
    this.#servingForever = fut;
    const self = this;
    return this._loop.createTask(function* () {
      try {
        yield* fut;
      } catch (exc) {
        if (exc instanceof CancelledError) {
          try {
            self.close();
            yield* self.waitClosed();
          } finally {
            // eslint-disable-next-line no-unsafe-finally
            throw exc;
          }
        }
        throw exc;
      } finally {
        self.#servingForever = null;
      }
    }());
  }

  /** Resolves once the server is closed and every connection has ended. */
  waitClosed(): Future<void> {
    const fut = this._loop.createFuture<void>();
    if (this.#waiters === null) fut.setResult(undefined);
    else this.#waiters.push(fut);
    return fut;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
    await this.waitClosed();
  }
}
