/**
 * Synchronization primitives.
 *
 * Port of CPython Lib/asyncio/locks.py (3.14). Every waiting method is a
 * generator underneath, wrapped with `_suspendable`, so both kinds of
 * coroutine wait on it (`await lock.acquire()`, `yield* lock.acquire()`)
 * and see cancellation where asyncio's `async def` bodies do: a generator
 * task gets CancelledError thrown in at the wait, an async-function task
 * gets the Future it waits on cancelled. Each waiting method also takes
 * `{ signal }`: aborting it cancels that wait, with
 * `CancelledError(String(signal.reason))`. Not thread-safe, as asyncio's.
 */
import { inspect } from 'node:util';
import { getRunningLoop, type AbstractEventLoop } from './events.js';
import { BrokenBarrierError, CancelledError, RuntimeError, describeArg } from './exceptions.js';
import type { Future } from './futures.js';
import type { Coroutine } from './coroutines.js';
import { _bindSignal, _suspendable, type AsyncContextManager, type SignalOptions, type Sleep } from './tasks.js';

/**
 * Binds an object to the loop it first waits in, asyncio's
 * `mixins._LoopBoundMixin` (it belongs in lib/internal/mixins.ts).
 * @internal
 */
export class _LoopBoundMixin {
  /** @internal Set on the first wait; null until then. */ _loop: AbstractEventLoop | null = null;

  /**
   * @internal The running loop, which must be the one this object is bound to.
   * @throws RuntimeError if no loop runs, or another loop was used before.
   */
  _getLoop(): AbstractEventLoop {
    const loop = getRunningLoop();
    this._loop ??= loop;
    if (loop !== this._loop) throw new RuntimeError(`${String(this)} is bound to a different event loop`);
    return loop;
  }
}

/** @internal The signal of a waiting call's options, checked at the call. */
export function _signalOf(options: SignalOptions): AbortSignal | undefined {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(describeArg('options', 'an options object ({ signal })', options));
  }
  const signal = options.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new TypeError(describeArg('signal', 'an AbortSignal', signal));
  }
  return signal;
}

/**
 * @internal An already-aborted signal ends the wait before it starts, even
 * when it would not block, as `fetch` and `timers/promises` do.
 */
export function _throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal !== undefined && signal.aborted) throw new CancelledError(String(signal.reason));
}

/** @internal Removes the first `item` (a deque's remove()); false if absent. */
export function _remove<T>(items: T[], item: T): boolean {
  const i = items.indexOf(item);
  if (i < 0) return false;
  items.splice(i, 1);
  return true;
}

/**
 * A primitive lock: not owned by a task, either locked or unlocked.
 *
 * `acquire()` locks an unlocked lock at once, else waits until another
 * task's `release()` hands it over. Waiters are served in FIFO order, and
 * a task that arrives while a woken waiter has not yet run cannot barge in.
 * `release()` on an unlocked lock throws RuntimeError.
 *
 * @example
 * const lock = new Lock();
 * await asyncWith(lock, async () => {
 *   // only one task at a time runs here
 * });
 * // or by hand, also as `yield* lock.acquire()` in a generator coroutine:
 * await lock.acquire();
 * try {
 *   // ...
 * } finally {
 *   lock.release();
 * }
 */
export class Lock extends _LoopBoundMixin implements AsyncContextManager<void> {
  /** @internal Futures of the tasks waiting in acquire(), oldest first. */ _waiters: Future<boolean>[] | null = null;
  /** @internal */ _locked = false;

  /** Whether the lock is acquired. */
  locked(): boolean {
    return this._locked;
  }

  /**
   * Acquires the lock: at once if it is unlocked and nobody waits, else
   * after the tasks queued before this one. Resolves with true.
   * @param options `signal`: aborting it cancels the wait (the lock is not taken).
   * @throws CancelledError if the wait is cancelled or the signal aborted.
   * @throws TypeError for a `signal` that is not an AbortSignal.
   * @example
   * await lock.acquire({ signal: AbortSignal.timeout(1000) });
   */
  acquire(options: SignalOptions = {}): Sleep<true> {
    const signal = _signalOf(options);
    return _suspendable(() => this.#acquire(signal));
  }

  *#acquire(signal: AbortSignal | undefined): Coroutine<true> {
    _throwIfAborted(signal);
    // Fair scheduling: a task always waits its turn; jumping the queue when
    // every waiter is cancelled is an optimization.
    if (!this._locked && (this._waiters === null || this._waiters.every((w) => w.cancelled()))) {
      this._locked = true;
      return true;
    }
    this._waiters ??= [];
    const fut = this._getLoop().createFuture<boolean>();
    this._waiters.push(fut);
    _bindSignal(fut, signal);
    try {
      try {
        yield* fut;
      } finally {
        _remove(this._waiters, fut);
      }
    } catch (exc) {
      // Currently the only exception designed to occur here. Keep the lock
      // invariant: if the lock is not claimed (nor about to be, by us) and
      // a task waits, make sure the first one runs.
      if (exc instanceof CancelledError && !this._locked) this.#wakeUpFirst();
      throw exc;
    }
    this._locked = true;
    return true;
  }

  /**
   * Releases the lock and wakes the first waiting task, if any.
   * @throws RuntimeError 'Lock is not acquired.' if the lock is unlocked.
   * @example
   * lock.release();
   */
  release(): void {
    if (!this._locked) throw new RuntimeError('Lock is not acquired.');
    this._locked = false;
    this.#wakeUpFirst();
  }

  // Makes sure the first waiter will wake up; done() means it already will.
  #wakeUpFirst(): void {
    if (this._waiters === null || this._waiters.length === 0) return;
    const fut = this._waiters[0];
    if (!fut.done()) fut.setResult(true);
  }

  /** `async with lock`: acquires the lock; the value is undefined. */
  aenter(): Sleep<void> {
    return _suspendable(() => this.#aenter());
  }

  *#aenter(): Coroutine<void> {
    yield* this.#acquire(undefined);
  }

  /** Leaves `async with lock`: releases the lock; never suppresses the error. */
  aexit(_exc?: unknown): Sleep<boolean> {
    return _suspendable(() => releasing(this));
  }

  override toString(): string {
    let extra = this._locked ? 'locked' : 'unlocked';
    if (this._waiters !== null && this._waiters.length > 0) extra += `, waiters:${this._waiters.length}`;
    return `<${this.constructor.name} [${extra}]>`;
  }

  [inspect.custom](): string {
    return this.toString();
  }
}

// eslint-disable-next-line require-yield
function* releasing(lock: { release(): void }): Coroutine<boolean> {
  lock.release();
  return false;
}

/**
 * An event: a flag that tasks wait to become true.
 *
 * `set()` makes the flag true and wakes every waiting task; `clear()` makes
 * it false again; `wait()` returns at once while the flag is true.
 *
 * @example
 * const event = new Event();
 * createTask(async () => {
 *   await sleep(1);
 *   event.set();
 * });
 * await event.wait(); // about a second later
 */
export class Event extends _LoopBoundMixin {
  /** @internal */ _waiters: Future<boolean>[] = [];
  /** @internal */ _value = false;

  /** Whether the flag is true. */
  isSet(): boolean {
    return this._value;
  }

  /**
   * Sets the flag and wakes every waiting task. Tasks that call wait()
   * while the flag stays true do not block at all.
   */
  set(): void {
    if (this._value) return;
    this._value = true;
    for (const fut of this._waiters) if (!fut.done()) fut.setResult(true);
  }

  /** Resets the flag: wait() blocks again until the next set(). */
  clear(): void {
    this._value = false;
  }

  /**
   * Waits until the flag is true (at once if it is); resolves with true.
   * @param options `signal`: aborting it cancels the wait.
   * @throws CancelledError if the wait is cancelled or the signal aborted.
   * @example
   * await event.wait({ signal });
   */
  wait(options: SignalOptions = {}): Sleep<true> {
    const signal = _signalOf(options);
    return _suspendable(() => this.#wait(signal));
  }

  *#wait(signal: AbortSignal | undefined): Coroutine<true> {
    _throwIfAborted(signal);
    if (this._value) return true;
    const fut = this._getLoop().createFuture<boolean>();
    this._waiters.push(fut);
    _bindSignal(fut, signal);
    try {
      yield* fut;
      return true;
    } finally {
      _remove(this._waiters, fut);
    }
  }

  override toString(): string {
    let extra = this._value ? 'set' : 'unset';
    if (this._waiters.length > 0) extra += `, waiters:${this._waiters.length}`;
    return `<${this.constructor.name} [${extra}]>`;
  }

  [inspect.custom](): string {
    return this.toString();
  }
}

/**
 * A condition variable: tasks wait until another task notifies them.
 *
 * It works on a Lock (a new one unless given): hold it to call wait(),
 * waitFor(), notify() or notifyAll(). wait() releases the lock while it
 * waits and takes it back before returning, also when it is cancelled.
 * It may return spuriously: check the state again, or use waitFor().
 *
 * @example
 * const cond = new Condition();
 * const items: string[] = [];
 * createTask(() => asyncWith(cond, async () => {
 *   items.push('x');
 *   cond.notify();
 * }));
 * await asyncWith(cond, async () => {
 *   await cond.waitFor(() => items.length > 0);
 *   console.log(items.shift());
 * });
 */
export class Condition extends _LoopBoundMixin implements AsyncContextManager<void> {
  /** @internal */ readonly _lock: Lock;
  /** @internal */ _waiters: Future<boolean>[] = [];

  /**
   * @param lock the underlying lock; a new Lock by default.
   * @throws TypeError if `lock` is not a Lock.
   */
  constructor(lock?: Lock | null) {
    super();
    if (lock !== undefined && lock !== null && !(lock instanceof Lock)) {
      throw new TypeError(describeArg('lock', 'a Lock', lock));
    }
    this._lock = lock ?? new Lock();
  }

  /** Whether the underlying lock is acquired. */
  locked(): boolean {
    return this._lock.locked();
  }

  /** Acquires the underlying lock (see {@link Lock.acquire}). */
  acquire(options: SignalOptions = {}): Sleep<true> {
    return this._lock.acquire(options);
  }

  /** Releases the underlying lock (see {@link Lock.release}). */
  release(): void {
    this._lock.release();
  }

  /**
   * Releases the lock, waits until notify() or notifyAll() wakes this
   * task, then re-acquires the lock and resolves with true. The lock is
   * re-acquired even when the wait is cancelled; a notification this task
   * may have consumed is then passed on to another waiter.
   * @param options `signal`: aborting it cancels the wait for a
   * notification (the lock is still re-acquired before CancelledError).
   * @throws RuntimeError 'cannot wait on un-acquired lock'.
   * @throws CancelledError if the wait is cancelled or the signal aborted.
   * @example
   * await cond.acquire();
   * try {
   *   while (!ready) await cond.wait();
   * } finally {
   *   cond.release();
   * }
   */
  wait(options: SignalOptions = {}): Sleep<true> {
    const signal = _signalOf(options);
    return _suspendable(() => this.#wait(signal));
  }

  *#wait(signal: AbortSignal | undefined): Coroutine<true> {
    if (!this.locked()) throw new RuntimeError('cannot wait on un-acquired lock');
    _throwIfAborted(signal);
    const fut = this._getLoop().createFuture<boolean>();
    this.release();
    try {
      try {
        this._waiters.push(fut);
        _bindSignal(fut, signal);
        try {
          yield* fut;
          return true;
        } finally {
          _remove(this._waiters, fut);
        }
      } finally {
        // Must re-acquire the lock even if the wait is cancelled. Only
        // CancelledError is retried, so other (fatal) errors cannot spin.
        let err: CancelledError | null = null;
        for (;;) {
          try {
            yield* this._lock.acquire();
            break;
          } catch (e) {
            if (!(e instanceof CancelledError)) throw e;
            err = e;
          }
        }
        // Re-raise the most recent CancelledError.
        if (err !== null) throw err;
      }
    } catch (exc) {
      // An error out of here may come after this task was notified: notify
      // another one instead. That may be a spurious wakeup, which the
      // condition variable protocol allows.
      this.#notify(1);
      throw exc;
    }
  }

  /**
   * Waits (as wait()) until `predicate()` is truthy and resolves with its
   * final value; does not wait at all if it is truthy at once.
   * @param predicate called with the lock held.
   * @param options `signal`: aborting it cancels the current wait.
   * @throws RuntimeError if it has to wait without holding the lock.
   * @throws TypeError if `predicate` is not a function.
   * @example
   * await cond.waitFor(() => queue.length > 0);
   */
  waitFor<R>(predicate: () => R, options: SignalOptions = {}): Sleep<R> {
    if (typeof predicate !== 'function') throw new TypeError(describeArg('predicate', 'a function', predicate));
    const signal = _signalOf(options);
    return _suspendable(() => this.#waitFor(predicate, signal));
  }

  *#waitFor<R>(predicate: () => R, signal: AbortSignal | undefined): Coroutine<R> {
    let result = predicate();
    while (!result) {
      yield* this.#wait(signal);
      result = predicate();
    }
    return result;
  }

  /**
   * Wakes up to `n` tasks waiting on this condition. They return from
   * wait() only once they re-acquire the lock, which the caller holds.
   * @param n how many waiters to wake (1 by default).
   * @throws RuntimeError 'cannot notify on un-acquired lock'.
   * @throws TypeError if `n` is not a number.
   * @example
   * await asyncWith(cond, async () => cond.notify(2));
   */
  notify(n = 1): void {
    if (typeof n !== 'number' || Number.isNaN(n)) throw new TypeError(describeArg('n', 'a number', n));
    if (!this.locked()) throw new RuntimeError('cannot notify on un-acquired lock');
    this.#notify(n);
  }

  #notify(n: number): void {
    let idx = 0;
    for (const fut of this._waiters) {
      if (idx >= n) break;
      if (!fut.done()) {
        idx++;
        fut.setResult(false);
      }
    }
  }

  /**
   * Wakes every task waiting on this condition.
   * @throws RuntimeError 'cannot notify on un-acquired lock'.
   * @example
   * await asyncWith(cond, async () => cond.notifyAll());
   */
  notifyAll(): void {
    this.notify(this._waiters.length);
  }

  /** `async with cond`: acquires the underlying lock. */
  aenter(): Sleep<void> {
    return this._lock.aenter();
  }

  /** Leaves `async with cond`: releases the underlying lock. */
  aexit(exc?: unknown): Sleep<boolean> {
    return this._lock.aexit(exc);
  }

  override toString(): string {
    let extra = this.locked() ? 'locked' : 'unlocked';
    if (this._waiters.length > 0) extra += `, waiters:${this._waiters.length}`;
    return `<${this.constructor.name} [${extra}]>`;
  }

  [inspect.custom](): string {
    return this.toString();
  }
}

/**
 * A semaphore: a counter that acquire() decrements and release()
 * increments. It never goes below zero: acquire() waits while it is zero.
 * Waiters are served in FIFO order.
 *
 * @example
 * const sem = new Semaphore(2); // at most two downloads at once
 * await gather(urls.map((url) => () => asyncWith(sem, () => download(url))));
 */
export class Semaphore extends _LoopBoundMixin implements AsyncContextManager<void> {
  /** @internal */ _waiters: Future<boolean>[] | null = null;
  /** @internal */ _value: number;

  /**
   * @param value the initial counter (1 by default).
   * @throws RangeError 'Semaphore initial value must be >= 0, got <value>'.
   * @throws TypeError if `value` is not an integer.
   */
  constructor(value = 1) {
    super();
    checkInteger('value', value);
    if (value < 0) throw new RangeError(`Semaphore initial value must be >= 0, got ${value}`);
    this._value = value;
  }

  /**
   * Whether acquire() would wait: the counter is zero, or tasks that are
   * not cancelled wait already (FIFO: they go first).
   */
  locked(): boolean {
    return this._value === 0 || (this._waiters !== null && this._waiters.some((w) => !w.cancelled()));
  }

  /**
   * Decrements the counter, first waiting while it is zero or earlier
   * waiters are queued. Resolves with true.
   * @param options `signal`: aborting it cancels the wait (nothing is taken).
   * @throws CancelledError if the wait is cancelled or the signal aborted.
   * @example
   * await sem.acquire();
   * try {
   *   await work();
   * } finally {
   *   sem.release();
   * }
   */
  acquire(options: SignalOptions = {}): Sleep<true> {
    const signal = _signalOf(options);
    return _suspendable(() => this.#acquire(signal));
  }

  *#acquire(signal: AbortSignal | undefined): Coroutine<true> {
    _throwIfAborted(signal);
    if (!this.locked()) {
      // Maintain FIFO: wait for others to start even if the value is > 0.
      this._value--;
      return true;
    }
    this._waiters ??= [];
    const fut = this._getLoop().createFuture<boolean>();
    this._waiters.push(fut);
    _bindSignal(fut, signal);
    try {
      try {
        yield* fut;
      } finally {
        _remove(this._waiters, fut);
      }
    } catch (exc) {
      // Our Future was set by _wakeUpNext(), but we will not acquire: undo
      // the bookkeeping done for us, so someone else is woken up below.
      if (exc instanceof CancelledError && fut.done() && !fut.cancelled()) this._value++;
      throw exc;
    } finally {
      // New waiters may have arrived but had to wait due to FIFO: wake up
      // as many as are allowed.
      while (this._value > 0) {
        if (!this._wakeUpNext()) break;
      }
    }
    return true;
  }

  /**
   * Increments the counter and wakes the first waiting task, if any.
   * @example
   * sem.release();
   */
  release(): void {
    this._value++;
    this._wakeUpNext();
  }

  /** Wakes the first waiter that is not done, taking its unit; false if none. */
  protected _wakeUpNext(): boolean {
    if (this._waiters === null) return false;
    for (const fut of this._waiters) {
      if (!fut.done()) {
        this._value--;
        fut.setResult(true);
        return true;
      }
    }
    return false;
  }

  /** `async with sem`: acquires the semaphore. */
  aenter(): Sleep<void> {
    return _suspendable(() => this.#aenter());
  }

  *#aenter(): Coroutine<void> {
    yield* this.#acquire(undefined);
  }

  /** Leaves `async with sem`: releases it; never suppresses the error. */
  aexit(_exc?: unknown): Sleep<boolean> {
    return _suspendable(() => releasing(this));
  }

  override toString(): string {
    let extra = this.locked() ? 'locked' : `unlocked, value:${this._value}`;
    if (this._waiters !== null && this._waiters.length > 0) extra += `, waiters:${this._waiters.length}`;
    return `<${this.constructor.name} [${extra}]>`;
  }

  [inspect.custom](): string {
    return this.toString();
  }
}

/**
 * A semaphore that refuses to be released above its initial value.
 *
 * @example
 * const sem = new BoundedSemaphore(1);
 * sem.release(); // RangeError: BoundedSemaphore released too many times
 */
export class BoundedSemaphore extends Semaphore {
  /** @internal */ readonly _boundValue: number;

  /**
   * @param value the initial counter and its maximum (1 by default).
   * @throws RangeError 'Semaphore initial value must be >= 0, got <value>'.
   */
  constructor(value = 1) {
    super(value);
    this._boundValue = value;
  }

  /**
   * Increments the counter, as Semaphore.release().
   * @throws RangeError 'BoundedSemaphore released too many times'.
   */
  override release(): void {
    if (this._value >= this._boundValue) throw new RangeError('BoundedSemaphore released too many times');
    super.release();
  }
}

const enum BarrierState {
  FILLING = 'filling',
  DRAINING = 'draining',
  RESETTING = 'resetting',
  BROKEN = 'broken',
}

/**
 * A barrier: `parties` tasks wait() until all of them have arrived, then
 * all go on together. Each gets a distinct index from 0 to parties - 1.
 * reset() and abort() make current waiters throw BrokenBarrierError.
 *
 * @example
 * const barrier = new Barrier(3);
 * await gather([1, 2, 3].map(() => async () => {
 *   const index = await barrier.wait(); // all three resume together
 *   console.log(index);
 * }));
 */
export class Barrier extends _LoopBoundMixin implements AsyncContextManager<number> {
  // Notifies every task when the state changes.
  /** @internal */ readonly _cond = new Condition();
  /** @internal */ readonly _parties: number;
  /** @internal */ _state: BarrierState = BarrierState.FILLING;
  /** @internal Tasks inside wait(). */ _count = 0;

  /**
   * @param parties how many tasks must wait() to release them.
   * @throws RangeError 'parties must be >= 1, got <parties>'.
   * @throws TypeError if `parties` is not an integer.
   */
  constructor(parties: number) {
    super();
    checkInteger('parties', parties);
    if (parties < 1) throw new RangeError(`parties must be >= 1, got ${parties}`);
    this._parties = parties;
  }

  /** `async with barrier`: waits on it; the value is the index. */
  aenter(): Sleep<number> {
    return this.wait();
  }

  /** Leaves `async with barrier`: nothing to do. */
  aexit(_exc?: unknown): Sleep<boolean> {
    return _suspendable(nothing);
  }

  /**
   * Waits until `parties` tasks are waiting, then releases them all.
   * Resolves with this task's index, from 0 to parties - 1.
   * @param options `signal`: aborting it cancels this task's wait; the
   * others keep waiting.
   * @throws BrokenBarrierError if the barrier is broken, or is reset or
   * aborted while this task waits.
   * @throws CancelledError if the wait is cancelled or the signal aborted.
   * @example
   * const index = await barrier.wait();
   */
  wait(options: SignalOptions = {}): Sleep<number> {
    const signal = _signalOf(options);
    return _suspendable(() => this.#wait(signal));
  }

  *#wait(signal: AbortSignal | undefined): Coroutine<number> {
    yield* this._cond.acquire({ signal });
    try {
      yield* this.#block(signal); // Block while the barrier drains or resets.
      try {
        const index = this._count;
        this._count++;
        if (index + 1 === this._parties) this.#release();
        else yield* this.#waitReleased(signal);
        return index;
      } finally {
        this._count--;
        // Wake up any tasks waiting for the barrier to drain.
        this.#exit();
      }
    } finally {
      this._cond.release();
    }
  }

  // Blocks until the barrier is ready for us: not draining nor resetting.
  *#block(signal: AbortSignal | undefined): Coroutine<void> {
    yield* this._cond.waitFor(
      () => this._state !== BarrierState.DRAINING && this._state !== BarrierState.RESETTING,
      { signal },
    );
    if (this._state === BarrierState.BROKEN) throw new BrokenBarrierError('Barrier aborted');
  }

  // The last task arrived: drain, and block new waiters until done.
  #release(): void {
    this._state = BarrierState.DRAINING;
    this._cond.notifyAll();
  }

  // Waits until released; throws if the barrier is reset or broken.
  *#waitReleased(signal: AbortSignal | undefined): Coroutine<void> {
    yield* this._cond.waitFor(() => this._state !== BarrierState.FILLING, { signal });
    if (this._state === BarrierState.BROKEN || this._state === BarrierState.RESETTING) {
      throw new BrokenBarrierError('Abort or reset of barrier');
    }
  }

  // The last task out of the barrier wakes the tasks waiting for the drain.
  #exit(): void {
    if (this._count === 0) {
      if (this._state === BarrierState.RESETTING || this._state === BarrierState.DRAINING) {
        this._state = BarrierState.FILLING;
      }
      this._cond.notifyAll();
    }
  }

  /**
   * Resets the barrier to its initial state; tasks waiting in it throw
   * BrokenBarrierError.
   * @param options `signal`: aborting it cancels the wait for the internal lock.
   * @example
   * await barrier.reset();
   */
  reset(options: SignalOptions = {}): Sleep<void> {
    const signal = _signalOf(options);
    return _suspendable(() => this.#reset(signal));
  }

  *#reset(signal: AbortSignal | undefined): Coroutine<void> {
    yield* this._cond.acquire({ signal });
    try {
      if (this._count > 0) {
        // Reset the barrier, waking up the tasks.
        this._state = BarrierState.RESETTING;
      } else {
        this._state = BarrierState.FILLING;
      }
      this._cond.notifyAll();
    } finally {
      this._cond.release();
    }
  }

  /**
   * Breaks the barrier: waiting tasks and later wait() calls throw
   * BrokenBarrierError until reset().
   * @param options `signal`: aborting it cancels the wait for the internal lock.
   * @example
   * try {
   *   await step();
   * } catch (e) {
   *   await barrier.abort(); // the other parties do not wait forever
   *   throw e;
   * }
   */
  abort(options: SignalOptions = {}): Sleep<void> {
    const signal = _signalOf(options);
    return _suspendable(() => this.#abort(signal));
  }

  *#abort(signal: AbortSignal | undefined): Coroutine<void> {
    yield* this._cond.acquire({ signal });
    try {
      this._state = BarrierState.BROKEN;
      this._cond.notifyAll();
    } finally {
      this._cond.release();
    }
  }

  /** The number of tasks required to pass the barrier. */
  get parties(): number {
    return this._parties;
  }

  /** The number of tasks waiting at the barrier while it fills. */
  get nWaiting(): number {
    return this._state === BarrierState.FILLING ? this._count : 0;
  }

  /** Whether the barrier is broken (by abort()). */
  get broken(): boolean {
    return this._state === BarrierState.BROKEN;
  }

  override toString(): string {
    let extra: string = this._state;
    if (!this.broken) extra += `, waiters:${this.nWaiting}/${this._parties}`;
    return `<${this.constructor.name} [${extra}]>`;
  }

  [inspect.custom](): string {
    return this.toString();
  }
}

// eslint-disable-next-line require-yield
function* nothing(): Coroutine<boolean> {
  return false;
}

function checkInteger(name: string, value: unknown): asserts value is number {
  if (typeof value !== 'number') throw new TypeError(describeArg(name, 'an integer', value));
  if (!Number.isInteger(value)) throw new RangeError(describeArg(name, 'an integer', value));
}
