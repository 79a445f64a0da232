/**
 * A Future class similar to the one in PEP 3148.
 *
 * Port of CPython Lib/asyncio/futures.py (3.14). One class serves both
 * kinds of coroutine: it is `PromiseLike<T>` (`await fut`) and iterable
 * (`yield* fut` in a generator coroutine), and it stays covariant in T.
 */
import { inspect } from 'node:util';
import { AbstractEventLoop, getEventLoop, type CallbackContext, type ExceptionContext } from './events.js';
import { CancelledError, InvalidStateError, RuntimeError, describeArg } from './exceptions.js';
import { formatCallback } from './internal/format.js';

const PENDING = 'PENDING';
const CANCELLED = 'CANCELLED';
const FINISHED = 'FINISHED';
type State = typeof PENDING | typeof CANCELLED | typeof FINISHED;

/** One frame of a debug-mode creation stack: file, line, function (asyncio's FrameSummary). */
type FrameSummary = [filename: string, lineno: number, name: string];

/** What a never-retrieved exception report needs; must not reference the Future. */
interface Unretrieved {
  loop: AbstractEventLoop;
  exception: unknown;
  className: string;
  sourceTraceback: FrameSummary[] | null;
}

// A Future whose exception nobody looked at is reported once, when it is
// garbage collected, through its loop's exception handler (asyncio's
// __del__), never as a Node unhandledRejection. Unlike asyncio's, the
// context cannot carry the Future itself: it is gone by then.
//
// The held value must never reach the Future, or the registry keeps its
// own target alive and neither the report nor the collection ever happens.
// See dropCallSites() for the one path that used to reach it.
const neverRetrieved = new FinalizationRegistry<Unretrieved>((held) => {
  const context: ExceptionContext = {
    message: `${held.className} exception was never retrieved`,
    exception: held.exception,
  };
  if (held.sourceTraceback !== null) context.sourceTraceback = held.sourceTraceback;
  try {
    held.loop.callExceptionHandler(context);
  } catch {
    // callExceptionHandler never throws; a loop subclass's might. Nothing
    // can be done with it here, and it must not become an uncaught error.
  }
});

/**
 * Formats the stack of `exc` and of the errors it carries (`cause`,
 * AggregateError / ExceptionGroup `errors`), so that they no longer
 * reference the frames they were raised in.
 *
 * V8 keeps an Error's structured call sites (each frame's receiver and
 * function) until `stack` is first read; reading it stores the formatted
 * string and drops them. An error raised inside a Task's step has the Task
 * among those receivers, so an unformatted exception held by the registry
 * kept every failed, dropped Task alive forever (issue 8 item 5).
 *
 * Formatting costs about as much again as creating the Error, so a Future
 * whose done callbacks will probably look at the exception (a waiting
 * Task, gather) defers it: see UnretrievedCheck.
 */
function dropCallSites(exc: unknown): void {
  const todo: unknown[] = [exc];
  // Bounded: a pathological exception graph costs at most 32 reads.
  for (let seen = 0; todo.length > 0 && seen < 32; seen++) {
    const e = todo.pop();
    if (typeof e !== 'object' || e === null) continue;
    try {
      void (e as { stack?: unknown }).stack;
      const { cause, errors } = e as { cause?: unknown; errors?: unknown };
      if (cause !== undefined) todo.push(cause);
      if (Array.isArray(errors)) todo.push(...errors.slice(0, 32));
    } catch {
      // A throwing getter or Proxy trap: nothing more can be done with it.
    }
  }
}

const FRAME_LINE = /^\s*at (?:(.*?) \()?(.+?):(\d+):\d+\)?$/;

/**
 * The stack below `fn` (the constructor called), oldest frame first, as
 * asyncio's `format_helpers.extract_stack`; depth is `Error.stackTraceLimit`.
 */
function extractStack(fn: Function): FrameSummary[] {
  const holder: { stack?: string } = {};
  Error.captureStackTrace(holder, fn);
  const frames: FrameSummary[] = [];
  for (const line of (holder.stack ?? '').split('\n')) {
    const m = FRAME_LINE.exec(line);
    if (m !== null) frames.push([m[2], Number(m[3]), m[1] ?? '<anonymous>']);
  }
  return frames.reverse();
}

/**
 * Queued behind a failed Future's done callbacks (FIFO, same pass): if none
 * of them retrieved the exception, the Future is registered for its
 * "never retrieved" report then. A Task awaiting a failing child thus
 * never pays for formatting a stack. It keeps the Future alive one pass
 * longer, as its callbacks do anyway.
 */
class UnretrievedCheck {
  constructor(readonly fut: Future<unknown>) {}
  _run(): void {
    this.fut._registerUnretrieved();
  }
  /** The loop closes with this still queued: register now, or never. */
  _loopClosing(): void {
    this.fut._registerUnretrieved();
  }
  toString(): string {
    return `<UnretrievedCheck ${this.fut.toString()}>`;
  }
}

/** `cb=[first(), <n more>, last()]`, asyncio's `_format_callbacks`. */
function formatCallbacks(callbacks: DoneCallback[]): string {
  const n = callbacks.length;
  const first = formatCallback(callbacks[0][0], []);
  if (n === 1) return `cb=[${first}]`;
  const last = formatCallback(callbacks[n - 1][0], []);
  return n === 2 ? `cb=[${first}, ${last}]` : `cb=[${first}, <${n - 2} more>, ${last}]`;
}

// Set by tasks.ts once an async-function Task exists: told of every then(),
// it records which Future the current Task awaits (docs/design.md, "Two kinds of coroutine").
let thenHook: ((fut: Future<unknown>) => void) | null = null;

/**
 * @internal Installs the function `Future.then` calls with its Future
 * before waiting (null removes it); tasks.ts uses it to cancel
 * async-function Tasks at their `await`.
 */
export function _setThenHook(hook: ((fut: Future<unknown>) => void) | null): void {
  thenHook = hook;
}

/** A done callback as stored: the function and its optional context. */
type DoneCallback = [fn: (fut: any) => unknown, context: CallbackContext | undefined];

// Most Futures never get a done callback: they share this empty list until
// their first one (it is frozen, so nothing can push to it by mistake).
const NO_CALLBACKS: DoneCallback[] = Object.freeze([]) as unknown as DoneCallback[];

/**
 * The hand-written iterator behind `yield* fut`: a class is 65–80 ns per
 * step cheaper than a generator method (loop-integration.md Q4).
 */
class FutureIterator<T> {
  // Null once finished: like a generator, it then only reports done.
  #fut: Future<T> | null;
  #yielded = false;
  constructor(fut: Future<T>) {
    this.#fut = fut;
  }
  next(): IteratorResult<Future<unknown>, T> {
    const fut = this.#fut;
    if (fut === null) return { done: true, value: undefined as T };
    if (fut._state === PENDING) {
      if (!this.#yielded) {
        this.#yielded = true;
        fut._asyncioFutureBlocking = true;
        return { done: false, value: fut };
      }
      this.#fut = null;
      throw new RuntimeError("await wasn't used with future");
    }
    this.#fut = null;
    return { done: true, value: fut.result() };
  }
  throw(exc: unknown): IteratorResult<Future<unknown>, T> {
    this.#fut = null;
    throw exc;
  }
  return(value: T): IteratorResult<Future<unknown>, T> {
    this.#fut = null;
    return { done: true, value };
  }
  [Symbol.iterator](): this {
    return this;
  }
}

/** Options for `new Future()`. */
export interface FutureOptions {
  /** The loop; defaults to `getEventLoop()`. */
  loop?: AbstractEventLoop;
}

/**
 * A Future: a result that will be available later.
 *
 * Differences from a Promise, as in asyncio: `result()` and `exception()`
 * read the outcome synchronously; `cancel()` exists; done callbacks are
 * scheduled with `loop.callSoon` and receive the Future.
 *
 * @example
 * const fut = loop.createFuture<number>();
 * loop.callLater(0.1, () => fut.setResult(42));
 * console.log(await fut); // 42
 */
export class Future<T = unknown> implements PromiseLike<T> {
  /** @internal */ _state: State = PENDING;
  /** @internal */ _result: T | undefined = undefined;
  /** @internal */ _exception: unknown = undefined;
  /** @internal */ _loop: AbstractEventLoop;
  /** @internal */ _cancelMessage: string | undefined = undefined;
  /** @internal */ _cancelledExc: CancelledError | undefined = undefined;
  /** @internal Callbacks typed loosely so Future stays covariant in T. */ _callbacks: DoneCallback[] = NO_CALLBACKS;
  /** @internal Promise resolvers waiting in then(); settled directly on completion. */ _thens: any[] | null = null;
  /** @internal True while a Task waits on this Future (duck-typed by isFuture). */
  _asyncioFutureBlocking = false;
  /** @internal Where it was created, oldest frame first; only in debug mode. */
  _sourceTraceback: FrameSummary[] | null = null;
  #logTraceback = false;
  // Whether neverRetrieved holds this Future (registered at most once).
  #registered = false;

  /**
   * @param options `loop`: the loop; defaults to `getEventLoop()`.
   * @throws TypeError if `options` is not an options object (`new Future(loop)`).
   * @throws RuntimeError if no loop is given and none is running or set.
   */
  constructor(options: FutureOptions = {}) {
    if (typeof options !== 'object' || options === null || options instanceof AbstractEventLoop) {
      throw new TypeError(describeArg('options', 'an options object ({ loop })', options));
    }
    this._loop = options.loop ?? getEventLoop();
    if (this._loop.getDebug()) this._sourceTraceback = extractStack(new.target);
  }

  /**
   * @internal Whether a never-retrieved exception will be reported. It can
   * only be cleared (asyncio's `_log_traceback`).
   */
  get _logTraceback(): boolean {
    return this.#logTraceback;
  }
  set _logTraceback(value: boolean) {
    if (value) throw new TypeError('_logTraceback can only be set to false');
    this._clearLogTraceback();
  }

  /** The loop this Future is bound to. */
  getLoop(): AbstractEventLoop {
    return this._loop;
  }

  /** @internal The CancelledError to raise; a stored one is handed out once. */
  _makeCancelledError(): CancelledError {
    if (this._cancelledExc !== undefined) {
      const exc = this._cancelledExc;
      this._cancelledExc = undefined;
      return exc;
    }
    return new CancelledError(this._cancelMessage);
  }

  /**
   * Cancels the Future and schedules its callbacks. Returns false if it is
   * already done or cancelled.
   * @param msg message of the CancelledError its waiters get.
   */
  cancel(msg?: string): boolean {
    this._clearLogTraceback();
    if (this._state !== PENDING) return false;
    this._state = CANCELLED;
    this._cancelMessage = msg;
    this._scheduleCallbacks();
    return true;
  }

  /** @internal Runs done callbacks through callSoon and settles then() waiters. */
  _scheduleCallbacks(): void {
    const callbacks = this._callbacks;
    if (callbacks.length > 0) {
      this._callbacks = NO_CALLBACKS;
      for (const [fn, context] of callbacks) {
        if (context === undefined) this._loop.callSoon(fn, this);
        else this._loop.callSoon({ context }, fn, this);
      }
    }
    const thens = this._thens;
    if (thens !== null) {
      this._thens = null;
      if (this._state === FINISHED && this._exception === undefined) {
        for (let i = 0; i < thens.length; i += 2) thens[i](this._result);
      } else {
        this._clearLogTraceback();
        const exc = this._state === CANCELLED ? this._makeCancelledError() : this._exception;
        for (let i = 1; i < thens.length; i += 2) thens[i](exc);
      }
    }
  }

  /** Whether the Future was cancelled. */
  cancelled(): boolean {
    return this._state === CANCELLED;
  }

  /** Whether the Future is done: it has a result, an exception, or was cancelled. */
  done(): boolean {
    return this._state !== PENDING;
  }

  /**
   * The result.
   * @throws CancelledError if cancelled; InvalidStateError "Result is not
   * ready." if pending; the exception if one was set.
   */
  result(): T {
    if (this._state === CANCELLED) throw this._makeCancelledError();
    if (this._state !== FINISHED) throw new InvalidStateError('Result is not ready.');
    this._clearLogTraceback();
    if (this._exception !== undefined) throw this._exception;
    return this._result as T;
  }

  /**
   * The exception set on the Future, or undefined if it has a result.
   * @throws CancelledError if cancelled; InvalidStateError "Exception is not set." if pending.
   */
  exception(): unknown {
    if (this._state === CANCELLED) throw this._makeCancelledError();
    if (this._state !== FINISHED) throw new InvalidStateError('Exception is not set.');
    this._clearLogTraceback();
    return this._exception;
  }

  /**
   * Adds a callback run (through `loop.callSoon`) with this Future once it
   * is done; at once (still through callSoon) if it already is.
   */
  addDoneCallback(fn: (fut: this) => unknown, options?: { context?: CallbackContext }): void {
    if (typeof fn !== 'function') throw new TypeError(describeArg('fn', 'a function', fn));
    const context = options?.context;
    if (this._state !== PENDING) {
      if (context === undefined) this._loop.callSoon(fn, this);
      else this._loop.callSoon({ context }, fn, this);
    } else {
      if (this._callbacks === NO_CALLBACKS) this._callbacks = [];
      this._callbacks.push([fn, context]);
    }
  }

  /** Removes every registration of `fn`; returns how many were removed. */
  removeDoneCallback(fn: (fut: this) => unknown): number {
    const kept = this._callbacks.filter(([f]) => f !== fn);
    const removed = this._callbacks.length - kept.length;
    if (removed) this._callbacks = kept.length > 0 ? kept : NO_CALLBACKS;
    return removed;
  }

  /**
   * Marks the Future done with a result and schedules its callbacks.
   * @throws InvalidStateError if it is already done.
   */
  setResult(result: T): void {
    if (this._state !== PENDING) throw new InvalidStateError(`${this._state}: ${this.toString()}`);
    this._result = result;
    this._state = FINISHED;
    this._scheduleCallbacks();
  }

  /**
   * Marks the Future done with an exception and schedules its callbacks.
   * An Error class is instantiated first, as asyncio does with a type.
   * @throws InvalidStateError if it is already done; TypeError for a
   * CancelledError or an undefined exception.
   */
  setException(exception: unknown): void {
    if (this._state !== PENDING) throw new InvalidStateError(`${this._state}: ${this.toString()}`);
    if (typeof exception === 'function' && (exception === Error || exception.prototype instanceof Error)) {
      exception = new (exception as new () => Error)();
    }
    if (exception instanceof CancelledError) {
      throw new TypeError('CancelledError cannot be set on a Future; call cancel() instead');
    }
    this._setExceptionUnchecked(exception);
  }

  /**
   * @internal setException() that accepts a CancelledError, as asyncio's
   * does: gather() ends its outer Future with one when a child is cancelled.
   */
  _setExceptionUnchecked(exception: unknown): void {
    if (this._state !== PENDING) throw new InvalidStateError(`${this._state}: ${this.toString()}`);
    if (exception === undefined) {
      throw new TypeError(describeArg('exception', 'an exception (not undefined)', exception));
    }
    this._exception = exception;
    this._state = FINISHED;
    this.#logTraceback = true;
    const hasCallbacks = this._callbacks.length > 0;
    // Settles then() waiters at once, which retrieves the exception.
    this._scheduleCallbacks();
    if (!this.#logTraceback) return;
    if (hasCallbacks && this._loop.isRunning()) this._loop._addReady(new UnretrievedCheck(this));
    else this._registerUnretrieved();
  }

  /** @internal Registers a still unretrieved exception for its report at collection. */
  _registerUnretrieved(): void {
    if (!this.#logTraceback || this.#registered) return;
    this.#registered = true;
    const exception = this._exception;
    dropCallSites(exception);
    neverRetrieved.register(
      this,
      { loop: this._loop, exception, className: this.constructor.name, sourceTraceback: this._sourceTraceback },
      this,
    );
  }

  /** @internal The exception was looked at: no "never retrieved" report. */
  _clearLogTraceback(): void {
    if (this.#logTraceback) {
      this.#logTraceback = false;
      if (this.#registered) neverRetrieved.unregister(this);
    }
  }

  /**
   * PromiseLike: `await fut` resolves with the result or rejects with the
   * exception (a CancelledError if cancelled).
   */
  then<R1 = T, R2 = never>(
    onfulfilled?: ((value: T) => R1 | PromiseLike<R1>) | null,
    onrejected?: ((reason: any) => R2 | PromiseLike<R2>) | null,
  ): Promise<R1 | R2> {
    if (thenHook !== null) thenHook(this);
    const p = new Promise<T>((resolve, reject) => {
      if (this._state === PENDING) {
        (this._thens ??= []).push(resolve, reject);
      } else {
        try {
          resolve(this.result());
        } catch (exc) {
          reject(exc);
        }
      }
    });
    return onfulfilled == null && onrejected == null ? (p as Promise<any>) : p.then(onfulfilled, onrejected);
  }

  /** Promise-style catch: `fut.catch(fn)`. */
  catch<R = never>(onrejected?: ((reason: any) => R | PromiseLike<R>) | null): Promise<T | R> {
    return this.then(undefined, onrejected);
  }

  /** Promise-style finally. */
  finally(onfinally?: (() => void) | null): Promise<T> {
    return this.then().finally(onfinally);
  }

  /**
   * `yield* fut` inside a generator coroutine: suspends the Task until the
   * Future is done, then evaluates to its result (or throws).
   */
  [Symbol.iterator](): Generator<Future<unknown>, T, unknown> {
    return new FutureIterator(this) as unknown as Generator<Future<unknown>, T, unknown>;
  }

  /** @internal Parts of the repr, asyncio's `_future_repr_info`. */
  protected _reprInfo(): string[] {
    const info = [this._state.toLowerCase()];
    if (this._state === FINISHED) {
      const e = this._exception;
      // A repr is used in error reports: a value whose own repr throws
      // must not make them fail.
      try {
        if (e === undefined) {
          info.push(`result=${inspect(this._result, { depth: 0, breakLength: Infinity }).slice(0, 80)}`);
        } else if (e instanceof Error) {
          info.push(`exception=${e.name}(${e.message === '' ? '' : inspect(e.message)})`);
        } else {
          info.push(`exception=${inspect(e, { depth: 0, breakLength: Infinity })}`);
        }
      } catch {
        info.push(e === undefined ? 'result=<unprintable>' : 'exception=<unprintable>');
      }
    }
    if (this._callbacks.length > 0) info.push(formatCallbacks(this._callbacks));
    const tb = this._sourceTraceback;
    if (tb !== null && tb.length > 0) info.push(`created at ${tb[tb.length - 1][0]}:${tb[tb.length - 1][1]}`);
    return info;
  }

  toString(): string {
    return `<${this.constructor.name} ${this._reprInfo().join(' ')}>`;
  }

  [inspect.custom](): string {
    return this.toString();
  }
}

/**
 * @internal Settles `fut` from a foreign promise's rejection reason: a
 * CancelledError cancels it, and a rejection with `undefined` (legal in JS,
 * impossible in Python) becomes an Error that says so, since a Future's
 * exception cannot be undefined.
 */
export function _setRejection(fut: Future<unknown>, reason: unknown): void {
  if (fut.done()) return;
  if (reason instanceof CancelledError) fut.cancel(reason.message || undefined);
  else fut.setException(reason === undefined ? new Error('promise rejected with undefined') : reason);
}

/**
 * Whether `obj` is a Future (any class following asyncio's Future
 * protocol: it has a boolean `_asyncioFutureBlocking`).
 */
export function isFuture(obj: unknown): obj is Future<unknown> {
  return (
    typeof obj === 'object' &&
    obj !== null &&
    typeof (obj as { _asyncioFutureBlocking?: unknown })._asyncioFutureBlocking === 'boolean'
  );
}

/** @internal Sets the result unless the Future was cancelled (asyncio's `_set_result_unless_cancelled`). */
export function _setResultUnlessCancelled<T>(fut: Future<T>, result: T): void {
  if (fut.cancelled()) return;
  fut.setResult(result);
}

/** @internal The loop of a Future-like object. */
export function _getLoop(fut: Future<unknown>): AbstractEventLoop {
  return fut.getLoop();
}

/** @internal Copies the outcome of `source` onto `dest` (asyncio's _copy_future_state). */
export function _copyFutureState(source: Future<unknown>, dest: Future<unknown>): void {
  if (dest.cancelled()) return;
  if (source.cancelled()) {
    dest.cancel(source._cancelMessage);
    return;
  }
  const exc = source.exception();
  if (exc !== undefined) dest.setException(exc);
  else dest.setResult(source.result());
}
