/**
 * Support for tasks, coroutines and the scheduler.
 *
 * Port of CPython Lib/asyncio/tasks.py (3.14). A Task drives one coroutine:
 *   - a generator coroutine exactly as asyncio's `Task.__step` does: each
 *     step is a ready callback, a yielded Future suspends it, and
 *     cancellation throws CancelledError into the suspended frame;
 *   - an async function under AsyncLocalStorage: `Future.then` tells the
 *     task which Future it awaits (`_futWaiter`), so `cancel()` rejects that
 *     Future and CancelledError surfaces at the `await` (docs/design.md, "Two kinds of coroutine").
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { inspect } from 'node:util';
import {
  getEventLoop,
  getRunningLoop,
  _getRunningLoop,
  _setTaskLoopHook,
  type AbstractEventLoop,
  type CallbackContext,
  type TimerHandle,
} from './events.js';
import { CancelledError, InvalidStateError, RuntimeError, TimeoutError, describeArg } from './exceptions.js';
import { Future, isFuture, _setThenHook } from './futures.js';
import { isGenerator, isThenable, type AwaitableLike, type AwaitedOf, type Coroutine } from './coroutines.js';
import { logErrorSafely, logger, showException } from './log.js';
import { Timeout } from './timeouts.js';

/** Options of createTask / loop.createTask / TaskGroup.createTask. */
export interface TaskOptions {
  /** The task's name; `Task-<n>` by default. */
  name?: string;
  /** Context the task runs in (e.g. `AsyncLocalStorage.snapshot()`). */
  context?: CallbackContext;
  /** Run the coroutine at once, up to its first suspension. */
  eagerStart?: boolean;
  /** Aborting it cancels the task, with `signal.reason` as the message. */
  signal?: AbortSignal;
}

/** A task factory, as `loop.setTaskFactory` takes it. */
export type TaskFactory = (
  loop: AbstractEventLoop,
  coro: AwaitableLike<any>,
  options: TaskOptions,
) => Future<any>;

const enum Kind {
  Generator,
  AsyncFunction,
  /** A promise or Future that started outside the task. */
  Foreign,
}

// Marks "no exception" in a step: anything, undefined included, can be thrown.
const NO_EXC: unique symbol = Symbol('no exception');

let taskCounter = 0;

// Created on first use: AsyncLocalStorage installs promise hooks that cost
// every promise in the process 0.13-0.22 µs (loop-integration.md Q5), so a
// program that runs only generator tasks never pays for them.
let als: AsyncLocalStorage<Task<unknown>> | null = null;
function taskStorage(): AsyncLocalStorage<Task<unknown>> {
  if (als === null) {
    als = new AsyncLocalStorage<Task<unknown>>();
    _setThenHook(onFutureThen);
    _setTaskLoopHook(() => als!.getStore()?._loop ?? null);
  }
  return als;
}

// Called by Future.then: an async-function task is awaiting `fut`.
function onFutureThen(fut: Future<unknown>): void {
  const task = als!.getStore();
  if (task === undefined || task.done()) return;
  // Throwing from then() rejects the await that called it: the same errors
  // a generator task's step raises.
  if (task === fut) throw new RuntimeError(`Task cannot await on itself: ${task.toString()}`);
  if (fut.getLoop() !== task._loop) {
    throw new RuntimeError(`Task ${task.toString()} got Future ${fut.toString()} attached to a different loop`);
  }
  task._setWaiter(fut);
}

// The task registry behind allTasks(). The loop holds tasks only weakly, as
// asyncio does; but a WeakRef costs about 1 µs in V8, more than the whole
// life of a short task. So a new task sits in a strong set, which it leaves
// when done; every 1,024 loop passes the ones still pending there move to
// WeakRefs (_promoteTasks). A task is thus held strongly for at most its
// first 1,024 passes, and only weakly after that.
const youngTasks = new Set<Task<unknown>>();
const allTaskRefs = new Set<WeakRef<Task<unknown>>>();

function registerTask(task: Task<unknown>): void {
  youngTasks.add(task);
}

/** @internal Moves the pending young tasks to weak references (the loop calls it). */
export function _promoteTasks(): void {
  for (const t of youngTasks) allTaskRefs.add(typeof t._weakRef === 'function' ? t._weakRef() : new WeakRef(t));
  youngTasks.clear();
}

/**
 * A coroutine wrapped in a Future.
 *
 * @example
 * const task = createTask(async () => { await sleep(0.1); return 42; });
 * console.log(await task); // 42
 */
export class Task<T = unknown> extends Future<T> {
  /** @internal */ _coro: Coroutine<T> | PromiseLike<T> | (() => unknown) | null;
  /** @internal */ _kind: Kind;
  /** @internal */ _mustCancel = false;
  /** @internal */ _futWaiter: Future<unknown> | null = null;
  /** @internal */ _numCancelsRequested = 0;
  /** @internal */ _context: CallbackContext | undefined;
  #name: string | number;
  #ref: WeakRef<Task<unknown>> | null = null;
  /** @internal */ _weakRef(): WeakRef<Task<unknown>> {
    return (this.#ref ??= new WeakRef(this));
  }
  #step: ((exc: unknown) => void) | null = null;
  /** @internal The exception for the step queued as a ready item. */ _stepExc: unknown = NO_EXC;
  #wakeup: ((fut: Future<unknown>) => void) | null = null;
  #abort: AbortController | null = null;
  #unlisten: (() => void) | null = null;

  constructor(coro: AwaitableLike<T>, options: TaskOptions & { loop?: AbstractEventLoop } = {}) {
    super({ loop: options.loop });
    if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
      throw new TypeError(describeArg('signal', 'an AbortSignal', options.signal));
    }
    if (!isGenerator(coro) && !isFuture(coro) && isThenable(coro) && typeof (coro as unknown as Iterable<unknown>)[Symbol.iterator] === 'function') {
      // One of our waits (lock.acquire(), queue.get(), sleep(), ...): run it
      // as a generator inside the task, so cancelling the task cancels it.
      // Delegating lazily keeps it from starting before the task does.
      coro = delegate(coro as unknown as Iterable<Future<unknown> | undefined>) as unknown as AwaitableLike<T>;
    }
    if (isGenerator(coro)) this._kind = Kind.Generator;
    else if (typeof coro === 'function') this._kind = Kind.AsyncFunction;
    else if (isThenable(coro)) this._kind = Kind.Foreign;
    else throw new TypeError(`a coroutine was expected, got ${inspect(coro, { depth: 0 })}`);
    this._coro = coro as Task<T>['_coro'];
    this.#name = options.name === undefined ? ++taskCounter : String(options.name);
    this._context = options.context;
    this.#register();
    // A promise is followed at once: a late handler would let its rejection
    // count as unhandled meanwhile.
    if (this._kind === Kind.Foreign) this.#adopt(NO_EXC);
    else if (options.eagerStart && this._loop.isRunning() && !options.signal?.aborted) this.#eagerStart();
    else this.#schedule(NO_EXC);
    if (options.signal !== undefined && !this.done()) this.#listen(options.signal);
  }

  #register(): void {
    registerTask(this);
  }

  #listen(signal: AbortSignal): void {
    if (!(signal instanceof AbortSignal)) throw new TypeError(describeArg('signal', 'an AbortSignal', signal));
    const onAbort = (): void => {
      this.cancel(String(signal.reason));
    };
    if (signal.aborted) {
      // Cancelled before its first step: it never runs, as in asyncio.
      this.cancel(String(signal.reason));
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
    this.#unlisten = () => signal.removeEventListener('abort', onAbort);
  }

  // A step is a ready callback, as asyncio's call_soon(self.__step). Without
  // a context the task queues itself (see _run): at most one step is ever
  // pending, so one field holds its argument.
  #schedule(exc: unknown): void {
    if (this._context === undefined) {
      this._stepExc = exc;
      this._loop._addReady(this);
      return;
    }
    this.#step ??= (e: unknown) => this.#runStep(e);
    this._loop.callSoon({ context: this._context }, this.#step, exc);
  }

  /** @internal Runs the queued step (the task as a ready item). */
  _run(): void {
    const exc = this._stepExc;
    this._stepExc = NO_EXC;
    try {
      this.#runStep(exc);
    } catch (err) {
      this._loop.callExceptionHandler({ message: `Exception in callback ${this.toString()}.__step()`, exception: err, task: this });
    }
  }

  #eagerStart(): void {
    const loop = this._loop;
    const prev = loop._currentTask;
    loop._currentTask = this;
    try {
      // An eager step runs inside the creator's call; keep the creator's
      // AsyncLocalStorage task out of it.
      const step = (): void => {
        if (als !== null) als.exit(() => this.#stepRunAndHandleResult(NO_EXC));
        else this.#stepRunAndHandleResult(NO_EXC);
      };
      if (this._context !== undefined) this._context(step);
      else step();
    } finally {
      loop._currentTask = prev;
    }
  }

  /** @internal Called when the task is done, however it ended. */
  override _scheduleCallbacks(): void {
    if (!youngTasks.delete(this) && this.#ref !== null) allTaskRefs.delete(this.#ref);
    this.#unlisten?.();
    this.#unlisten = null;
    this._futWaiter = null;
    if (this.#abort !== null) this.#abort.abort(this.#abortReason());
    super._scheduleCallbacks();
  }

  #abortReason(): unknown {
    if (this.cancelled()) return this._cancelledExc ?? new CancelledError(this._cancelMessage);
    return new RuntimeError(`${this.toString()} is done`);
  }

  /**
   * An AbortSignal aborted when this task finishes or is cancelled: hand it
   * to `fetch`, `fs`, `timers/promises` to tie their work to the task.
   */
  get signal(): AbortSignal {
    if (this.#abort === null) {
      this.#abort = new AbortController();
      if (this.done()) this.#abort.abort(this.#abortReason());
    }
    return this.#abort.signal;
  }

  /** The task's name. */
  getName(): string {
    return typeof this.#name === 'number' ? `Task-${this.#name}` : this.#name;
  }

  /** Renames the task. */
  setName(value: unknown): void {
    this.#name = String(value);
  }

  /** The wrapped coroutine (null once an eager task finished). */
  getCoro(): Coroutine<T> | PromiseLike<T> | (() => unknown) | null {
    return this._coro;
  }

  /** The context the task runs in, if one was given. */
  getContext(): CallbackContext | undefined {
    return this._context;
  }

  /**
   * The frames of the task's coroutine. JavaScript hides suspended frames:
   * this is the creation stack recorded in debug mode, else empty.
   */
  getStack(options: { limit?: number } = {}): string[] {
    const lines = (this._sourceTraceback ?? []).map(([file, line, name]) => `  at ${name} (${file}:${line})`);
    return options.limit === undefined ? lines : lines.slice(0, options.limit);
  }

  /** Prints getStack() and the exception, if any, to `file` (stderr). */
  printStack(options: { limit?: number; file?: NodeJS.WritableStream } = {}): void {
    const out = options.file ?? process.stderr;
    const stack = this.getStack(options);
    out.write(stack.length > 0 ? `Stack for ${this.toString()} (creation, debug mode):\n${stack.join('\n')}\n` : `No stack for ${this.toString()}\n`);
    if (this.done() && !this.cancelled() && this._exception !== undefined) {
      const e = this._exception as Error;
      out.write(`${e?.stack ?? String(e)}\n`);
    }
  }

  /**
   * Requests cancellation: the next step sees CancelledError at the point
   * the coroutine waits. Returns false if the task is already done. For a
   * task made from an already-started promise, the task itself is cancelled
   * at once and the promise keeps running (debug mode says so).
   */
  override cancel(msg?: string): boolean {
    this._clearLogTraceback();
    if (this.done()) return false;
    this._numCancelsRequested++;
    if (this._kind === Kind.Foreign && this._futWaiter === null) {
      if (this._loop.getDebug()) {
        logger.warning(
          `${this.toString()} was cancelled, but its promise started outside the task and keeps running; ` +
            'pass a function (createTask(() => fn())) to make it cancellable',
        );
      }
      return super.cancel(msg);
    }
    if (this._futWaiter !== null && this._futWaiter.cancel(msg)) {
      // The task is woken up with CancelledError at once.
      return true;
    }
    this._mustCancel = true;
    this._cancelMessage = msg;
    return true;
  }

  /** Number of pending cancellation requests (cancel() calls minus uncancel() calls). */
  cancelling(): number {
    return this._numCancelsRequested;
  }

  /** Decrements the pending cancellation count; returns what is left. */
  uncancel(): number {
    if (this._numCancelsRequested > 0) {
      this._numCancelsRequested--;
      if (this._numCancelsRequested === 0) this._mustCancel = false;
    }
    return this._numCancelsRequested;
  }

  /** Tasks end by their coroutine only. @throws RuntimeError always. */
  override setResult(_result: T): never {
    throw new RuntimeError('Task does not support set_result operation');
  }

  /** Tasks end by their coroutine only. @throws RuntimeError always. */
  override setException(_exception: unknown): never {
    throw new RuntimeError('Task does not support set_exception operation');
  }

  /** @internal An async-function task awaits `fut` (from Future.then). */
  _setWaiter(fut: Future<unknown>): void {
    this._futWaiter = fut;
    if (this._mustCancel && fut.cancel(this._cancelMessage)) this._mustCancel = false;
  }

  #runStep(exc: unknown): void {
    if (this.done()) {
      throw new InvalidStateError(`__step(): already done: ${this.toString()}, ${String(exc === NO_EXC ? 'None' : exc)}`);
    }
    if (this._mustCancel) {
      if (!(exc instanceof CancelledError)) exc = this._makeCancelledError();
      this._mustCancel = false;
    }
    this._futWaiter = null;
    _enterTask(this._loop, this);
    try {
      this.#stepRunAndHandleResult(exc);
    } finally {
      _leaveTask(this._loop, this);
    }
  }

  #stepRunAndHandleResult(exc: unknown): void {
    if (this._kind === Kind.AsyncFunction) {
      this.#start(exc);
      return;
    }
    if (this._kind === Kind.Foreign) {
      this.#adopt(exc);
      return;
    }
    const coro = this._coro as Coroutine<T>;
    let r: IteratorResult<unknown, T>;
    try {
      r = exc === NO_EXC ? coro.next() : coro.throw(exc);
    } catch (e) {
      this.#fail(e);
      return;
    }
    if (r.done) {
      this.#finish(r.value);
      return;
    }
    const result = r.value;
    if (isFuture(result)) {
      const blocking = result._asyncioFutureBlocking;
      if (result.getLoop() !== this._loop) {
        this.#schedule(new RuntimeError(`Task ${this.toString()} got Future ${result.toString()} attached to a different loop`));
      } else if (!blocking) {
        this.#schedule(new RuntimeError(`yield was used instead of yield* in task ${this.toString()} with ${result.toString()}`));
      } else if (result === this) {
        this.#schedule(new RuntimeError(`Task cannot await on itself: ${this.toString()}`));
      } else {
        result._asyncioFutureBlocking = false;
        this.#wakeup ??= (f: Future<unknown>) => this.#onWakeup(f);
        result.addDoneCallback(this.#wakeup, { context: this._context });
        this._futWaiter = result;
        if (this._mustCancel && result.cancel(this._cancelMessage)) this._mustCancel = false;
      }
    } else if (result === undefined) {
      // A bare yield gives up one loop pass (sleep(0)).
      this.#schedule(NO_EXC);
    } else if (isGenerator(result)) {
      this.#schedule(new RuntimeError(`yield was used instead of yield* for generator in task ${this.toString()} with ${inspect(result)}`));
    } else {
      this.#schedule(new RuntimeError(`Task got bad yield: ${inspect(result, { depth: 0 })}`));
    }
  }

  #onWakeup(fut: Future<unknown>): void {
    try {
      fut.result();
    } catch (exc) {
      this.#runStep(exc);
      return;
    }
    this.#runStep(NO_EXC);
  }

  #finish(value: T): void {
    if (this._mustCancel) {
      // Cancelled right before the coroutine returned.
      this._mustCancel = false;
      super.cancel(this._cancelMessage);
    } else {
      Future.prototype.setResult.call(this, value);
    }
  }

  #fail(exc: unknown): void {
    // JS can throw or reject with undefined; a Future's exception cannot be.
    if (exc === undefined) exc = new Error('coroutine threw undefined');
    if (exc instanceof CancelledError) {
      // Keep the original error so awaiting the task rethrows that one.
      this._cancelledExc = exc;
      super.cancel();
    } else {
      Future.prototype.setException.call(this, exc);
    }
  }

  // First step of an async-function task: call the function inside the
  // task's AsyncLocalStorage context, then follow its promise. A returned
  // generator object makes this a generator task from here on.
  #start(exc: unknown): void {
    if (exc !== NO_EXC) {
      // Cancelled (or failed) before it started: the function never runs.
      this.#fail(exc);
      return;
    }
    const fn = this._coro as () => unknown;
    const storage = taskStorage();
    storage.run(this, () => {
      let r: unknown;
      try {
        r = fn();
      } catch (e) {
        this.#fail(e);
        return;
      }
      if (!isGenerator(r) && !isFuture(r) && isThenable(r) && typeof (r as unknown as Iterable<unknown>)[Symbol.iterator] === 'function') {
        // One of our suspendables (startServer(), lock.acquire(), ...): run
        // it inside this task as the constructor does, so a cancel reaches
        // it wherever it waits instead of only dropping its result.
        r = delegate(r as unknown as Iterable<Future<unknown> | undefined>);
      }
      if (isGenerator(r)) {
        this._coro = r as Coroutine<T>;
        this._kind = Kind.Generator;
        this.#stepRunAndHandleResult(NO_EXC);
      } else if (isThenable(r)) {
        this._coro = r as PromiseLike<T>;
        this.#follow(r as PromiseLike<T>);
      } else {
        this.#fail(new TypeError(`a coroutine was expected from ${fn.name || 'the function'}(), got ${inspect(r, { depth: 0 })}`));
      }
    });
  }

  // A promise or Future given as is: the task waits on it. A Future is
  // cancelled with the task; a promise cannot be (cancel() rejects the task).
  #adopt(exc: unknown): void {
    if (exc !== NO_EXC) {
      this.#fail(exc);
      return;
    }
    const p = this._coro as PromiseLike<T>;
    if (isFuture(p)) {
      if (p.getLoop() !== this._loop) {
        this.#fail(new RuntimeError(`Task ${this.toString()} got Future ${p.toString()} attached to a different loop`));
        return;
      }
      this._futWaiter = p;
      p.addDoneCallback((f) => {
        if (this.done()) return;
        if (f.cancelled()) this.#fail(f._makeCancelledError());
        else if (f.exception() !== undefined) this.#fail(f.exception());
        else this.#finish(f.result() as T);
      });
      return;
    }
    // A thenable's then() may await Futures: that waiting is this task's,
    // not its creator's.
    if (als !== null) als.run(this, () => this.#follow(p));
    else this.#follow(p);
  }

  // Ends the task with the promise's outcome, unless the loop was closed
  // meanwhile (issue 8 item 9). asyncio would never run that step: its
  // call_soon raises on a closed loop, and a Task's done callbacks need
  // callSoon here too, so ending the task would reject this reaction into
  // an unhandled rejection. The task stays pending and the outcome is
  // dropped; a failure is logged, since nothing else can see it any more.
  #follow(p: PromiseLike<T>): void {
    p.then(
      (v) => {
        if (!this.done() && !this._loop.isClosed()) this.#finish(v);
      },
      (e) => {
        if (this.done()) return;
        if (!this._loop.isClosed()) this.#fail(e);
        else if (!(e instanceof CancelledError)) {
          logErrorSafely(`${this.toString()} failed after its event loop was closed; the exception is dropped\n${showException(e)}`);
        }
      },
    );
  }

  protected override _reprInfo(): string[] {
    const info = super._reprInfo();
    if (this._numCancelsRequested > 0 && !this.done()) info[0] = 'cancelling';
    info.splice(1, 0, `name='${this.getName().replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`);
    const coro = this._coro;
    const coroName =
      coro === null ? 'None' : typeof coro === 'function' ? `${coro.name || '<anonymous>'}()` : isGenerator(coro) ? '<generator>' : '<promise>';
    info.splice(2, 0, `coro=${coroName}`);
    if (this._futWaiter !== null) info.push(`wait_for=${this._futWaiter.toString()}`);
    return info;
  }
}

function* delegate<T>(aw: Iterable<Future<unknown> | undefined>): Coroutine<T> {
  return (yield* aw as Generator<Future<unknown> | undefined, T, unknown>) as T;
}

/** @internal asyncio's _enter_task. */
export function _enterTask(loop: AbstractEventLoop, task: Task<unknown>): void {
  const current = loop._currentTask;
  if (current !== null) {
    throw new RuntimeError(`Cannot enter into task ${task.toString()} while another task ${current.toString()} is being executed.`);
  }
  loop._currentTask = task;
}

/** @internal asyncio's _leave_task. */
export function _leaveTask(loop: AbstractEventLoop, task: Task<unknown>): void {
  const current = loop._currentTask;
  if (current !== task) {
    throw new RuntimeError(`Leaving task ${task.toString()} does not match the current task ${String(current)}.`);
  }
  loop._currentTask = null;
}

/** @internal asyncio's _register_task, for custom Task classes. */
export function _registerTask(task: Task<unknown>): void {
  registerTask(task);
}

/** @internal asyncio's _unregister_task. */
export function _unregisterTask(task: Task<unknown>): void {
  if (youngTasks.delete(task)) return;
  for (const ref of allTaskRefs) if (ref.deref() === task) allTaskRefs.delete(ref);
}

/**
 * The task running now: the one whose step runs, or the async-function
 * task this code was started in. Null outside any task.
 */
export function currentTask(loop?: AbstractEventLoop): Task<unknown> | null {
  loop ??= getRunningLoop();
  const stepping = loop._currentTask;
  if (stepping !== null) return stepping as Task<unknown>;
  const t = als?.getStore();
  return t !== undefined && t._loop === loop && !t.done() ? t : null;
}

/** The set of not-yet-done tasks of `loop` (the running loop by default). */
export function allTasks(loop?: AbstractEventLoop): Set<Task<unknown>> {
  loop ??= getRunningLoop();
  const out = new Set<Task<unknown>>();
  for (const t of youngTasks) if (t._loop === loop && !t.done()) out.add(t);
  for (const ref of allTaskRefs) {
    const t = ref.deref();
    if (t === undefined) allTaskRefs.delete(ref);
    else if (t._loop === loop && !t.done()) out.add(t);
  }
  return out;
}

/**
 * Schedules a coroutine on the running loop and returns its Task.
 * `createTask(() => fn())` (or `createTask(fn)`) is the fully cancellable
 * form for async functions; a generator object is exact as written.
 * @throws RuntimeError "no running event loop"; TypeError for a non-coroutine.
 */
export function createTask<A extends AwaitableLike<any>>(coro: A, options: TaskOptions = {}): Task<AwaitedOf<A>> {
  const loop = getRunningLoop();
  return loop.createTask(coro, options) as Task<AwaitedOf<A>>;
}

/**
 * A Future for `obj`: a Future itself, else a new Task of `loop` (or the
 * current loop).
 */
export function ensureFuture<A extends AwaitableLike<any>>(obj: A, options: { loop?: AbstractEventLoop } = {}): Future<AwaitedOf<A>> {
  if (isFuture(obj)) {
    if (options.loop !== undefined && options.loop !== obj.getLoop()) {
      throw new RangeError('The future belongs to a different loop than the one specified as the loop argument');
    }
    return obj as Future<AwaitedOf<A>>;
  }
  if (!isGenerator(obj) && typeof obj !== 'function' && !isThenable(obj)) {
    throw new TypeError(`An asyncio.Future, a coroutine or an awaitable is required, got ${inspect(obj, { depth: 0 })}`);
  }
  const loop = options.loop ?? getEventLoop();
  return loop.createTask(obj, {}) as Future<AwaitedOf<A>>;
}

/** A task factory that starts every task eagerly (asyncio 3.12). */
export const eagerTaskFactory: TaskFactory = (loop, coro, options) => new Task(coro, { ...options, loop, eagerStart: true });

/** A task factory that builds `customTaskConstructor` tasks eagerly. */
export function createEagerTaskFactory(
  customTaskConstructor: new (coro: AwaitableLike<any>, options: TaskOptions & { loop?: AbstractEventLoop }) => Future<any>,
): TaskFactory {
  return (loop, coro, options) => new customTaskConstructor(coro, { ...options, loop, eagerStart: true });
}

// ---------------------------------------------------------------- sleep

/** What sleep() returns: awaitable (`await`) and delegatable (`yield*`). */
export interface Sleep<T> extends PromiseLike<T> {
  [Symbol.iterator](): Generator<Future<unknown> | undefined, T, unknown>;
}

/**
 * sleep(0): in a generator task a bare yield (exactly one loop pass, as
 * asyncio's `__sleep0`); awaited, a Future resolved on the next pass, so an
 * async-function task can be cancelled at it.
 */
class Sleep0<T> implements Sleep<T> {
  constructor(readonly result: T) {}
  then<R1 = T, R2 = never>(
    onfulfilled?: ((value: T) => R1 | PromiseLike<R1>) | null,
    onrejected?: ((reason: any) => R2 | PromiseLike<R2>) | null,
  ): PromiseLike<R1 | R2> {
    const loop = getRunningLoop();
    const fut = loop.createFuture<T>();
    loop.callSoon(setResultUnlessCancelled, fut, this.result);
    return fut.then(onfulfilled, onrejected);
  }
  [Symbol.iterator](): Generator<Future<unknown> | undefined, T, unknown> {
    return new Sleep0Iterator(this.result) as unknown as Generator<Future<unknown> | undefined, T, unknown>;
  }
}

class Sleep0Iterator<T> {
  #yielded = false;
  constructor(readonly result: T) {}
  next(): IteratorResult<undefined, T> {
    if (this.#yielded) return { done: true, value: this.result };
    this.#yielded = true;
    return { done: false, value: undefined };
  }
  throw(exc: unknown): never {
    throw exc;
  }
  return(value: T): IteratorResult<undefined, T> {
    return { done: true, value };
  }
  [Symbol.iterator](): this {
    return this;
  }
}

/** A Future whose timer is cancelled with it, so the heap does not keep it. */
class SleepFuture<T> extends Future<T> {
  /** @internal */ _handle: TimerHandle | null = null;
  override cancel(msg?: string): boolean {
    this._handle?.cancel();
    return super.cancel(msg);
  }
}

function setResultUnlessCancelled<T>(fut: Future<T>, result: T): void {
  if (!fut.done()) fut.setResult(result);
}

/** Options of every waiting call. */
export interface SignalOptions {
  /** Aborting it cancels the wait with CancelledError(signal.reason). */
  signal?: AbortSignal;
}

/**
 * Cancels `fut` when `signal` aborts; the listener goes away with `fut`.
 * @internal
 */
export function _bindSignal(fut: Future<unknown>, signal: AbortSignal | undefined): void {
  if (signal === undefined) return;
  if (!(signal instanceof AbortSignal)) throw new TypeError(describeArg('signal', 'an AbortSignal', signal));
  if (signal.aborted) {
    fut.cancel(String(signal.reason));
    return;
  }
  const onAbort = (): void => {
    fut.cancel(String(signal.reason));
  };
  signal.addEventListener('abort', onAbort, { once: true });
  fut.addDoneCallback(() => signal.removeEventListener('abort', onAbort));
}

/**
 * sleep(delay > 0): the Future and its timer are made on first use, not at
 * the call, so `run(main())` works even though an async function runs up to
 * its first `await sleep()` before `run()` has started the loop.
 */
class LazySleep<T> implements Sleep<T> {
  #fut: SleepFuture<T> | null = null;
  constructor(
    readonly delay: number,
    readonly result: T,
    readonly signal: AbortSignal | undefined,
  ) {}
  #future(): SleepFuture<T> {
    if (this.#fut === null) {
      const loop = getRunningLoop();
      const fut = new SleepFuture<T>({ loop });
      fut._handle = loop.callLater(this.delay, setResultUnlessCancelled, fut, this.result);
      _bindSignal(fut, this.signal);
      this.#fut = fut;
    }
    return this.#fut;
  }
  then<R1 = T, R2 = never>(
    onfulfilled?: ((value: T) => R1 | PromiseLike<R1>) | null,
    onrejected?: ((reason: any) => R2 | PromiseLike<R2>) | null,
  ): PromiseLike<R1 | R2> {
    return this.#future().then(onfulfilled, onrejected);
  }
  [Symbol.iterator](): Generator<Future<unknown> | undefined, T, unknown> {
    return this.#future()[Symbol.iterator]();
  }
}

/**
 * Suspends for `delay` seconds and then gives `result`. `sleep(0)` gives up
 * exactly one loop pass. Works with `await` and with `yield*`.
 * @throws TypeError / RangeError for a non-number or NaN delay.
 * @example
 * await sleep(0.5);                 // in an async function
 * const v = yield* sleep(0.5, 'v'); // in a generator coroutine
 */
export function sleep(delay: number): Sleep<undefined>;
export function sleep<T>(delay: number, result: T, options?: SignalOptions): Sleep<T>;
export function sleep<T>(delay: number, result?: T, options: SignalOptions = {}): Sleep<T | undefined> {
  if (typeof delay !== 'number') throw new TypeError(describeArg('delay', 'a number of seconds', delay));
  if (Number.isNaN(delay)) throw new RangeError(describeArg('delay', 'a number of seconds, not NaN', delay));
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
    throw new TypeError(describeArg('signal', 'an AbortSignal', options.signal));
  }
  if (delay <= 0 && options.signal === undefined) return new Sleep0(result);
  return new LazySleep(delay, result, options.signal);
}

// ---------------------------------------------------------------- gather

class GatheringFuture<T> extends Future<T> {
  /** @internal */ _cancelRequested = false;
  constructor(
    readonly _children: Future<unknown>[],
    loop: AbstractEventLoop,
  ) {
    super({ loop });
  }
  override cancel(msg?: string): boolean {
    if (this.done()) return false;
    let ret = false;
    for (const child of this._children) if (child.cancel(msg)) ret = true;
    // A child actually cancelled: propagate cancellation whatever
    // returnExceptions says (bpo-32684).
    if (ret) this._cancelRequested = true;
    return ret;
  }
}

type GatherResults<A extends readonly unknown[]> = { -readonly [K in keyof A]: AwaitedOf<A[K]> };

/**
 * Runs awaitables concurrently; resolves with their results in order. The
 * first exception rejects it unless `returnExceptions`, which puts
 * exceptions in the results. Cancelling it cancels every child.
 */
export function gather<const A extends readonly AwaitableLike<any>[]>(
  aws: A,
  options?: { returnExceptions?: false },
): Future<GatherResults<A>>;
export function gather<const A extends readonly AwaitableLike<any>[]>(
  aws: A,
  options: { returnExceptions: boolean },
): Future<{ -readonly [K in keyof A]: AwaitedOf<A[K]> | Error }>;
export function gather(aws: readonly AwaitableLike<any>[], options: { returnExceptions?: boolean } = {}): Future<unknown[]> {
  if (!Array.isArray(aws)) throw new TypeError(describeArg('aws', 'an array of awaitables', aws));
  const returnExceptions = options.returnExceptions ?? false;
  if (aws.length === 0) {
    const outer = getEventLoop().createFuture<unknown[]>();
    outer.setResult([]);
    return outer;
  }
  const argToFut = new Map<unknown, Future<unknown>>();
  const children: Future<unknown>[] = [];
  let loop: AbstractEventLoop | undefined;
  let nfuts = 0;
  let nfinished = 0;
  let outer: GatheringFuture<unknown[]> | null = null;

  const doneCallback = (fut: Future<unknown>): void => {
    nfinished++;
    if (outer === null || outer.done()) {
      if (!fut.cancelled()) fut.exception(); // mark it retrieved
      return;
    }
    if (!returnExceptions) {
      if (fut.cancelled()) {
        outer._setExceptionUnchecked(fut._makeCancelledError());
        return;
      }
      const exc = fut.exception();
      if (exc !== undefined) {
        outer.setException(exc);
        return;
      }
    }
    if (nfinished === nfuts) {
      const results = children.map((f) => {
        if (f.cancelled()) return new CancelledError(f._cancelMessage ?? '');
        const exc = f.exception();
        return exc !== undefined ? exc : f.result();
      });
      if (outer._cancelRequested) outer._setExceptionUnchecked(fut._makeCancelledError());
      else outer.setResult(results);
    }
  };

  for (const arg of aws) {
    let fut = argToFut.get(arg);
    if (fut === undefined) {
      fut = ensureFuture(arg, { loop });
      loop ??= fut.getLoop();
      nfuts++;
      argToFut.set(arg, fut);
      fut.addDoneCallback(doneCallback);
    }
    children.push(fut);
  }
  outer = new GatheringFuture<unknown[]>(children, loop!);
  return outer;
}

// ---------------------------------------------------------------- shield

/**
 * Waits for `aw`, shielding it from cancellation: cancelling the caller
 * (or the returned Future) does not cancel the inner task.
 */
export function shield<A extends AwaitableLike<any>>(aw: A): Future<AwaitedOf<A>> {
  const inner = ensureFuture(aw);
  if (inner.done()) return inner;
  const outer = inner.getLoop().createFuture<AwaitedOf<A>>();
  const innerDone = (f: Future<AwaitedOf<A>>): void => {
    if (outer.cancelled()) {
      if (!f.cancelled()) f.exception(); // mark it retrieved
      return;
    }
    if (f.cancelled()) outer.cancel();
    else {
      const exc = f.exception();
      if (exc !== undefined) outer.setException(exc);
      else outer.setResult(f.result());
    }
  };
  inner.addDoneCallback(innerDone);
  outer.addDoneCallback(() => {
    if (!inner.done()) {
      inner.removeDoneCallback(innerDone);
      // Nobody waits for it any more: report a later failure (3.14), once
      // even when several cancelled shields cover the same inner Future.
      inner.removeDoneCallback(logOnException);
      inner.addDoneCallback(logOnException);
    }
  });
  return outer;
}

function logOnException(fut: Future<unknown>): void {
  if (fut.cancelled()) return;
  const exc = fut.exception();
  if (exc === undefined) return;
  const name = (exc as Error)?.constructor?.name ?? 'Error';
  fut.getLoop().callExceptionHandler({ message: `${name} exception in shielded future`, exception: exc, future: fut });
}

// ---------------------------------------------------------------- wait

export const FIRST_COMPLETED = 'FIRST_COMPLETED';
export const FIRST_EXCEPTION = 'FIRST_EXCEPTION';
export const ALL_COMPLETED = 'ALL_COMPLETED';
export type ReturnWhen = typeof FIRST_COMPLETED | typeof FIRST_EXCEPTION | typeof ALL_COMPLETED;

/**
 * Waits for the awaitables until `returnWhen` holds or `timeout` seconds
 * pass; resolves with `[done, pending]` Sets. Does not cancel anything on
 * timeout. Non-Future awaitables are wrapped in tasks first (the sets then
 * hold those tasks).
 * @throws RangeError for an empty list or a bad returnWhen.
 */
export function wait<T>(
  aws: Iterable<AwaitableLike<T>>,
  options: { timeout?: number | null; returnWhen?: ReturnWhen } & SignalOptions = {},
): Future<[Set<Future<T>>, Set<Future<T>>]> {
  if (isFuture(aws) || isGenerator(aws) || aws === null || typeof (aws as Iterable<unknown>)?.[Symbol.iterator] !== 'function') {
    throw new TypeError(`expect an iterable of futures, not ${inspect(aws, { depth: 0 })}`);
  }
  const returnWhen = options.returnWhen ?? ALL_COMPLETED;
  if (returnWhen !== FIRST_COMPLETED && returnWhen !== FIRST_EXCEPTION && returnWhen !== ALL_COMPLETED) {
    throw new RangeError(`Invalid return_when value: ${String(returnWhen)}`);
  }
  const loop = getRunningLoop();
  const fs = new Set<Future<T>>();
  for (const aw of new Set(aws)) fs.add(ensureFuture(aw, { loop }) as Future<T>);
  if (fs.size === 0) throw new RangeError('Set of Tasks/Futures is empty.');
  const outer = loop.createFuture<[Set<Future<T>>, Set<Future<T>>]>();
  let counter = fs.size;
  let timeoutHandle: TimerHandle | null = null;
  const finish = (): void => {
    if (outer.done()) return;
    const done = new Set<Future<T>>();
    const pending = new Set<Future<T>>();
    for (const f of fs) (f.done() ? done : pending).add(f);
    outer.setResult([done, pending]);
  };
  const onCompletion = (f: Future<T>): void => {
    counter--;
    if (
      counter <= 0 ||
      returnWhen === FIRST_COMPLETED ||
      (returnWhen === FIRST_EXCEPTION && !f.cancelled() && f.exception() !== undefined)
    ) {
      timeoutHandle?.cancel();
      // Collect in a later pass, as asyncio does after its waiter resolves,
      // so futures completing in this same pass are counted as done.
      loop.callSoon(finish);
    }
  };
  for (const f of fs) f.addDoneCallback(onCompletion);
  if (options.timeout !== undefined && options.timeout !== null) {
    timeoutHandle = loop.callLater(checkTimeout(options.timeout), finish);
  }
  outer.addDoneCallback(() => {
    timeoutHandle?.cancel();
    for (const f of fs) f.removeDoneCallback(onCompletion);
  });
  _bindSignal(outer, options.signal);
  return outer;
}

function checkTimeout(timeout: unknown): number {
  if (typeof timeout !== 'number' || Number.isNaN(timeout)) {
    throw new TypeError(describeArg('timeout', 'a number of seconds or null', timeout));
  }
  return timeout;
}

// ---------------------------------------------------------------- waitFor

/**
 * Waits for `aw` with a timeout in seconds (null: none). On timeout it
 * cancels `aw`, waits for the cancellation to finish, and rejects with
 * TimeoutError. Cancelling the caller cancels `aw` and waits for it too.
 * Runs as a task of its own (started at once), as asyncio's `wait_for`
 * runs inside the caller's task.
 */
export function waitFor<A extends AwaitableLike<any>>(
  aw: A,
  timeout: number | null | undefined,
  options: SignalOptions = {},
): Task<AwaitedOf<A>> {
  if (timeout !== null && timeout !== undefined) checkTimeout(timeout);
  const t = timeout ?? null;
  if (typeof aw === 'function') {
    // Called inside waitFor's own (async-function) task: its awaits are that
    // task's, so a timeout or a cancel reaches them, as in asyncio where
    // wait_for awaits the coroutine inline.
    const loop = getEventLoop();
    const fn = aw as () => unknown;
    return loop.createTask(() => waitForFn(loop, fn, t), { eagerStart: true, signal: options.signal }) as Task<AwaitedOf<A>>;
  }
  // A generator runs inline in waitFor's task; anything else is waited on as a Future.
  const inner = isGenerator(aw) ? aw : ensureFuture(aw, {});
  // The caller's loop when one runs (a Future of another loop then fails as
  // in asyncio), else the awaitable's.
  const loop = _getRunningLoop() ?? (isFuture(inner) ? inner.getLoop() : getEventLoop());
  return loop.createTask(waitForGen(loop, inner as Future<AwaitedOf<A>> | Coroutine<AwaitedOf<A>>, t), { eagerStart: true, signal: options.signal }) as Task<AwaitedOf<A>>;
}

async function waitForFn<T>(loop: AbstractEventLoop, fn: () => unknown, timeout: number | null): Promise<T> {
  const call = (): Promise<T> => {
    const r = fn();
    if (isGenerator(r)) return drive(r as Coroutine<T>);
    return Promise.resolve(r as T | PromiseLike<T>);
  };
  if (timeout === null) return await call();
  if (timeout <= 0) {
    const inner = ensureFuture(fn as () => PromiseLike<T>);
    if (inner.done()) return inner.result();
    await drive(cancelAndWait(inner));
    try {
      return inner.result();
    } catch (exc) {
      if (exc instanceof CancelledError) throw new TimeoutError(undefined, { cause: exc });
      throw exc;
    }
  }
  return (await asyncWith(new Timeout(loop.time() + timeout), call)) as T;
}

function* waitForGen<T>(loop: AbstractEventLoop, inner: Future<T> | Coroutine<T>, timeout: number | null): Coroutine<T> {
  if (timeout === null) return yield* inner;
  if (timeout <= 0) {
    const fut = isFuture(inner) ? inner : ensureFuture(inner, { loop });
    if (fut.done()) return fut.result();
    yield* cancelAndWait(fut);
    try {
      return fut.result();
    } catch (exc) {
      if (exc instanceof CancelledError) throw new TimeoutError(undefined, { cause: exc });
      throw exc;
    }
  }
  const cm = new Timeout(loop.time() + timeout);
  yield* cm.aenter();
  let result: T;
  try {
    result = yield* inner;
  } catch (exc) {
    yield* cm.aexit(exc);
    throw exc;
  }
  yield* cm.aexit(undefined);
  return result;
}

/** Cancels `fut` and waits until it is done, whatever its outcome. */
function* cancelAndWait(fut: Future<unknown>): Coroutine<void> {
  const waiter = fut.getLoop().createFuture<void>();
  const onDone = (): void => {
    if (!waiter.done()) waiter.setResult(undefined);
  };
  fut.addDoneCallback(onDone);
  try {
    fut.cancel();
    yield* waiter;
  } finally {
    fut.removeDoneCallback(onDone);
  }
}

// ---------------------------------------------------------------- asCompleted

/**
 * What asCompleted() returns: iterate it (`for (const next of ...) await
 * next`) for the results in completion order, or iterate it with `for
 * await` for the original Futures/Tasks as they complete (3.13).
 */
export class AsCompleted<T> implements Iterable<Sleep<T>>, AsyncIterable<Future<T>> {
  #loop: AbstractEventLoop;
  #todo = new Set<Future<T>>();
  #done: (Future<T> | null)[] = [];
  #waiters: Future<Future<T> | null>[] = [];
  #left: number;
  #handle: TimerHandle | null = null;
  #onDone = (f: Future<T>): void => {
    if (!this.#todo.delete(f)) return;
    this.#push(f);
    if (this.#todo.size === 0) this.#handle?.cancel();
  };

  constructor(aws: Iterable<AwaitableLike<T>>, timeout: number | null | undefined) {
    this.#loop = getEventLoop();
    for (const aw of new Set(aws)) this.#todo.add(ensureFuture(aw, { loop: this.#loop }) as Future<T>);
    this.#left = this.#todo.size;
    for (const f of [...this.#todo]) f.addDoneCallback(this.#onDone);
    if (timeout !== null && timeout !== undefined && this.#todo.size > 0) {
      this.#handle = this.#loop.callLater(checkTimeout(timeout), () => {
        for (const f of this.#todo) {
          f.removeDoneCallback(this.#onDone);
          this.#push(null);
        }
        this.#todo.clear();
      });
    }
  }

  #push(f: Future<T> | null): void {
    const w = this.#waiters.shift();
    if (w !== undefined) w.setResult(f);
    else this.#done.push(f);
  }

  #nextDone(): Future<Future<T> | null> {
    const fut = this.#loop.createFuture<Future<T> | null>();
    if (this.#done.length > 0) fut.setResult(this.#done.shift()!);
    else this.#waiters.push(fut);
    return fut;
  }

  /**
   * Awaitables resolving to the next result in completion order. Each one
   * takes its result when it is first awaited, as asyncio's `_wait_for_one`
   * coroutines do, not when it is handed out.
   */
  *[Symbol.iterator](): Iterator<Sleep<T>> {
    while (this.#left > 0) {
      this.#left--;
      let out: Future<T> | null = null;
      const take = (): Future<T> => {
        if (out !== null) return out;
        const next = this.#nextDone();
        const fut = this.#loop.createFuture<T>();
        next.addDoneCallback((n) => {
          if (fut.done()) return;
          if (n.cancelled()) return void fut.cancel();
          const f = n.result();
          if (f === null) fut.setException(new TimeoutError());
          else if (f.cancelled()) fut.cancel(f._cancelMessage);
          else if (f.exception() !== undefined) fut.setException(f.exception());
          else fut.setResult(f.result());
        });
        fut.addDoneCallback((o) => {
          if (o.cancelled()) next.cancel();
        });
        return (out = fut);
      };
      yield {
        then: (onfulfilled, onrejected) => take().then(onfulfilled, onrejected),
        [Symbol.iterator]: () => take()[Symbol.iterator](),
      };
    }
  }

  /**
   * The original Futures (or the Tasks wrapping coroutines) as they
   * complete. Hand-written rather than an async generator, which would
   * await each yielded Future and hand out its result instead.
   */
  [Symbol.asyncIterator](): AsyncIterator<Future<T>> {
    return {
      // A Future, not a promise, so a task waiting here stays cancellable;
      // never `await` a Future whose result is a Future: the await would
      // adopt the inner one and hand out its result.
      next: (): Promise<IteratorResult<Future<T>>> => {
        const out = this.#loop.createFuture<IteratorResult<Future<T>>>();
        if (this.#left <= 0) {
          out.setResult({ done: true, value: undefined });
          return out as unknown as Promise<IteratorResult<Future<T>>>;
        }
        this.#left--;
        const next = this.#nextDone();
        next.addDoneCallback((n) => {
          if (out.done()) return;
          if (n.cancelled()) return void out.cancel();
          const f = n.result();
          if (f === null) out.setException(new TimeoutError());
          else out.setResult({ done: false, value: f });
        });
        out.addDoneCallback((o) => {
          if (o.cancelled()) next.cancel();
        });
        return out as unknown as Promise<IteratorResult<Future<T>>>;
      },
    };
  }
}

/**
 * Runs the awaitables concurrently and gives them back in completion order.
 * @throws TimeoutError (when iterated) once `timeout` seconds pass.
 */
export function asCompleted<T>(aws: Iterable<AwaitableLike<T>>, options: { timeout?: number | null } = {}): AsCompleted<T> {
  if (isFuture(aws) || isGenerator(aws) || aws === null || typeof (aws as Iterable<unknown>)?.[Symbol.iterator] !== 'function') {
    throw new TypeError(`expect an iterable of futures, not ${inspect(aws, { depth: 0 })}`);
  }
  return new AsCompleted(aws, options.timeout);
}

// ---------------------------------------------------------------- coroutine helpers

/**
 * Wraps a generator coroutine factory so callers of either kind can wait
 * on it inside their own task: `yield*` delegates to a fresh generator (the
 * exact path), `await` drives one from the awaiting async function, whose
 * Future waits then stay cancellable. Used for the `aenter`/`aexit` of
 * Timeout and TaskGroup and for asyncWith.
 * @internal
 */
export function _suspendable<T>(make: () => Coroutine<T>): Sleep<T> {
  return {
    then(onfulfilled, onrejected) {
      // Run up to the first suspension right here: most reads, drains and
      // lock acquisitions never wait, and then cost one promise, not a drive.
      const gen = make();
      let r: IteratorResult<Future<unknown> | undefined, T>;
      try {
        r = gen.next();
      } catch (exc) {
        return Promise.reject(exc).then(onfulfilled, onrejected);
      }
      if (r.done) return Promise.resolve(r.value).then(onfulfilled, onrejected);
      return drive(gen, r).then(onfulfilled, onrejected);
    },
    [Symbol.iterator]: make,
  };
}

async function drive<T>(gen: Coroutine<T>, first?: IteratorResult<Future<unknown> | undefined, T>): Promise<T> {
  let r = first ?? gen.next();
  while (!r.done) {
    const waitOn = r.value;
    let failed = false;
    let exc: unknown;
    try {
      await (waitOn === undefined ? new Sleep0(undefined) : waitOn);
    } catch (e) {
      failed = true;
      exc = e;
    }
    // A cancel() that came after the wait was woken but before we resumed
    // found nothing to cancel: throw it in here, at the resumption point,
    // exactly where a generator task's next step would (asyncio's
    // _must_cancel), so e.g. a woken lock waiter hands the lock on.
    const task = als?.getStore();
    if (task !== undefined && task._mustCancel && !task.done()) {
      task._mustCancel = false;
      r = gen.throw(task._makeCancelledError());
      continue;
    }
    // A Future's own iterator reads its outcome; a bare yield gets the error thrown in.
    r = failed && waitOn === undefined ? gen.throw(exc) : gen.next();
  }
  return r.value;
}

/** An async context manager (`async with`): Timeout, TaskGroup, Lock, ... */
export interface AsyncContextManager<T> {
  aenter(): PromiseLike<T> | Sleep<T>;
  /** Gets the body's error (undefined if none); a truthy result suppresses it. */
  aexit(exc?: unknown): PromiseLike<boolean | void> | Sleep<boolean | void>;
}

const NO_ERROR: unique symbol = Symbol('no error');

/**
 * `async with cm as v: body(v)`. With an async (or plain) body it returns a
 * Promise; with a generator-function body it returns a generator to
 * `yield*` from a generator coroutine. Unlike `await using`, the context
 * manager sees the body's error, as Timeout and TaskGroup need.
 * @example
 * await asyncWith(timeout(1), async () => { await sleep(10); }); // TimeoutError
 * yield* asyncWith(new TaskGroup(), function* (tg) { tg.createTask(work()); });
 */
export function asyncWith<T, R>(cm: AsyncContextManager<T>, body: (value: T) => Generator<any, R, any>): Coroutine<R | undefined>;
export function asyncWith<T, R>(cm: AsyncContextManager<T>, body: (value: T) => R | PromiseLike<R>): Promise<Awaited<R> | undefined>;
export function asyncWith<T, R>(cm: AsyncContextManager<T>, body: (value: T) => unknown): unknown {
  if (typeof cm?.aenter !== 'function' || typeof cm?.aexit !== 'function') {
    throw new TypeError(describeArg('cm', 'an async context manager (with aenter and aexit)', cm));
  }
  if (typeof body !== 'function') throw new TypeError(describeArg('body', 'a function', body));
  if (body.constructor?.name === 'GeneratorFunction') return asyncWithGen(cm, body as (v: T) => Coroutine<R>);
  return asyncWithAsync(cm, body as (v: T) => R | PromiseLike<R>);
}

function* asyncWithGen<T, R>(cm: AsyncContextManager<T>, body: (v: T) => Coroutine<R>): Coroutine<R | undefined> {
  const value = (yield* toIterable(cm.aenter())) as T;
  let result: R;
  try {
    result = yield* body(value);
  } catch (exc) {
    if (yield* toIterable(cm.aexit(exc))) return undefined;
    throw exc;
  }
  yield* toIterable(cm.aexit(undefined));
  return result;
}

async function asyncWithAsync<T, R>(cm: AsyncContextManager<T>, body: (v: T) => R | PromiseLike<R>): Promise<Awaited<R> | undefined> {
  const value = (await cm.aenter()) as T;
  let result: Awaited<R> | typeof NO_ERROR = NO_ERROR;
  try {
    result = await body(value);
  } catch (exc) {
    if (await cm.aexit(exc)) return undefined;
    throw exc;
  }
  await cm.aexit(undefined);
  return result;
}

function toIterable<T>(aw: PromiseLike<T> | Sleep<T>): Generator<Future<unknown> | undefined, T, unknown> {
  const it = (aw as Sleep<T>)[Symbol.iterator];
  if (typeof it === 'function') return it.call(aw);
  // A plain promise from a user-written context manager: wait on it as a Future.
  const loop = getRunningLoop();
  return loop.wrap(aw)[Symbol.iterator]();
}
