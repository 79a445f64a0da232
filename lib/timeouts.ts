/**
 * Timeouts as async context managers.
 *
 * Port of CPython Lib/asyncio/timeouts.py (3.14). On expiry the Timeout
 * cancels the current task; on exit it turns that cancellation into
 * TimeoutError, using the task's `uncancel()` count to tell its own
 * cancellation from one that came from outside.
 */
import { inspect } from 'node:util';
import { getRunningLoop, type Handle } from './events.js';
import { CancelledError, ExceptionGroup, RuntimeError, TimeoutError, describeArg } from './exceptions.js';
import type { Coroutine } from './coroutines.js';
import { currentTask, _suspendable, type AsyncContextManager, type Sleep, type Task } from './tasks.js';

const enum State {
  CREATED = 'created',
  ENTERED = 'active',
  EXPIRING = 'expiring',
  EXPIRED = 'expired',
  EXITED = 'finished',
}

/**
 * A deadline for the code run inside it (with {@link asyncWith}, or
 * `aenter()`/`aexit()` by hand). Use {@link timeout} / {@link timeoutAt}.
 */
export class Timeout implements AsyncContextManager<Timeout> {
  #state: State = State.CREATED;
  #handle: Handle | null = null;
  #task: Task<unknown> | null = null;
  #when: number | null;
  #cancelling = 0;

  /** @param when absolute loop time (loop.time() seconds), or null for none. */
  constructor(when: number | null) {
    if (when !== null && (typeof when !== 'number' || Number.isNaN(when))) {
      throw new TypeError(describeArg('when', 'a loop time in seconds or null', when));
    }
    this.#when = when;
  }

  /** The deadline, or null. */
  when(): number | null {
    return this.#when;
  }

  /**
   * Moves the deadline (null: none).
   * @throws RuntimeError unless the Timeout is active.
   */
  reschedule(when: number | null): void {
    if (this.#state !== State.ENTERED) {
      if (this.#state === State.CREATED) throw new RuntimeError('Timeout has not been entered');
      throw new RuntimeError(`Cannot change state of ${this.#state} Timeout`);
    }
    if (when !== null && (typeof when !== 'number' || Number.isNaN(when))) {
      throw new TypeError(describeArg('when', 'a loop time in seconds or null', when));
    }
    this.#when = when;
    this.#handle?.cancel();
    if (when === null) {
      this.#handle = null;
    } else {
      const loop = getRunningLoop();
      this.#handle = when <= loop.time() ? loop.callSoon(() => this.#onTimeout()) : loop.callAt(when, () => this.#onTimeout());
    }
  }

  /** Whether the deadline passed (the task was cancelled by this Timeout). */
  expired(): boolean {
    return this.#state === State.EXPIRING || this.#state === State.EXPIRED;
  }

  /**
   * Enters the Timeout in the current task.
   * @throws RuntimeError if entered twice or used outside a task.
   */
  aenter(): Sleep<Timeout> {
    return _suspendable(() => this.#aenter());
  }

  // eslint-disable-next-line require-yield
  *#aenter(): Coroutine<Timeout> {
    if (this.#state !== State.CREATED) throw new RuntimeError('Timeout has already been entered');
    const task = currentTask();
    if (task === null) throw new RuntimeError('Timeout should be used inside a task');
    this.#state = State.ENTERED;
    this.#task = task;
    this.#cancelling = task.cancelling();
    this.reschedule(this.#when);
    return this;
  }

  /**
   * Leaves the Timeout: if it expired and `exc` is the cancellation it
   * caused, throws TimeoutError (with the CancelledError as cause).
   */
  aexit(exc?: unknown): Sleep<boolean> {
    return _suspendable(() => this.#aexit(exc));
  }

  // eslint-disable-next-line require-yield
  *#aexit(exc: unknown): Coroutine<boolean> {
    if (this.#state !== State.ENTERED && this.#state !== State.EXPIRING) {
      throw new RuntimeError(`Timeout ${this.toString()} is not active`);
    }
    this.#handle?.cancel();
    this.#handle = null;
    if (this.#state === State.EXPIRING) {
      this.#state = State.EXPIRED;
      if (this.#task!.uncancel() <= this.#cancelling && exc !== undefined) {
        // No new cancel requests: this cancellation is ours to handle.
        if (exc instanceof CancelledError) throw new TimeoutError(undefined, { cause: exc });
        insertTimeoutError(exc);
        if (exc instanceof ExceptionGroup) for (const e of exc.exceptions) insertTimeoutError(e);
      }
    } else {
      this.#state = State.EXITED;
    }
    return false;
  }

  #onTimeout(): void {
    this.#task!.cancel();
    this.#state = State.EXPIRING;
    this.#handle = null;
  }

  toString(): string {
    let info = '';
    if (this.#state === State.ENTERED) {
      // Python's round(when, 3): at most 3 decimals, no trailing zeros.
      info = ` when=${this.#when === null ? 'None' : String(Math.round(this.#when * 1000) / 1000)}`;
    }
    return `<Timeout [${this.#state}]${info}>`;
  }

  [inspect.custom](): string {
    return this.toString();
  }
}

// asyncio chains a TimeoutError into the context of an error raised while
// the cancellation was being handled; JS has `cause`, set when free.
function insertTimeoutError(exc: unknown): void {
  let e = exc as { cause?: unknown } | null;
  while (e !== null && typeof e === 'object') {
    if (e.cause instanceof CancelledError) {
      e.cause = new TimeoutError(undefined, { cause: e.cause });
      return;
    }
    e = (e.cause ?? null) as { cause?: unknown } | null;
  }
}

/**
 * A Timeout `delay` seconds from now (null: none). Use it with asyncWith:
 * @example
 * try {
 *   await asyncWith(timeout(10), async () => { await longRunningTask(); });
 * } catch (e) {
 *   if (e instanceof TimeoutError) console.log('took too long');
 * }
 */
export function timeout(delay: number | null): Timeout {
  if (delay !== null && (typeof delay !== 'number' || Number.isNaN(delay))) {
    throw new TypeError(describeArg('delay', 'a number of seconds or null', delay));
  }
  const loop = getRunningLoop();
  return new Timeout(delay === null ? null : loop.time() + delay);
}

/** A Timeout at absolute loop time `when` (null: none). */
export function timeoutAt(when: number | null): Timeout {
  return new Timeout(when);
}
