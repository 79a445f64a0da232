/**
 * Structured concurrency: a group of tasks that finish together.
 *
 * Port of CPython Lib/asyncio/taskgroups.py (3.14, adapted with permission
 * from the EdgeDB project). The first failing task cancels the others and
 * the body; every failure then surfaces in one ExceptionGroup.
 */
import { inspect } from 'node:util';
import { getRunningLoop, type AbstractEventLoop } from './events.js';
import { CancelledError, ExceptionGroup, RuntimeError } from './exceptions.js';
import type { Future } from './futures.js';
import type { AwaitableLike, AwaitedOf, Coroutine } from './coroutines.js';
import { currentTask, _suspendable, type AsyncContextManager, type Sleep, type Task, type TaskOptions } from './tasks.js';

/** Python's KeyboardInterrupt and SystemExit: errors a TaskGroup never swallows into a group. */
export class KeyboardInterrupt extends Error {
  constructor(message?: string) {
    super(message);
    Object.defineProperty(this, 'name', { value: 'KeyboardInterrupt', enumerable: false, configurable: true });
  }
}

/**
 * A group of tasks: leaving it waits for all of them. Any error other than
 * CancelledError in a task cancels the rest and the body, and the errors
 * are thrown together as an ExceptionGroup.
 * @example
 * await asyncWith(new TaskGroup(), async (tg) => {
 *   tg.createTask(() => fetchOne());
 *   tg.createTask(() => fetchTwo());
 * });
 * // both tasks are done here
 */
export class TaskGroup implements AsyncContextManager<TaskGroup> {
  #entered = false;
  #exiting = false;
  #aborting = false;
  #loop: AbstractEventLoop | null = null;
  #parentTask: Task<unknown> | null = null;
  #parentCancelRequested = false;
  #tasks = new Set<Task<unknown>>();
  #errors: unknown[] = [];
  #baseError: unknown = undefined;
  #onCompletedFut: Future<boolean> | null = null;
  #cancelOnEnter = false;
  #onTaskDone = (task: Task<unknown>): void => this.#taskDone(task);

  /** Enters the group in the current task. */
  aenter(): Sleep<TaskGroup> {
    return _suspendable(() => this.#aenter());
  }

  // eslint-disable-next-line require-yield
  *#aenter(): Coroutine<TaskGroup> {
    if (this.#entered) throw new RuntimeError(`TaskGroup ${this.toString()} has already been entered`);
    this.#loop ??= getRunningLoop();
    this.#parentTask = currentTask(this.#loop);
    if (this.#parentTask === null) throw new RuntimeError(`TaskGroup ${this.toString()} cannot determine the parent task`);
    this.#entered = true;
    if (this.#cancelOnEnter) this.cancel();
    return this;
  }

  /** Leaves the group: waits for every task, then throws what failed. */
  aexit(exc?: unknown): Sleep<boolean> {
    return _suspendable(() => this.#aexitOuter(exc));
  }

  *#aexitOuter(exc: unknown): Coroutine<boolean> {
    try {
      return yield* this.#aexit(exc);
    } finally {
      this.#parentTask = null;
      this.#errors = [];
      this.#baseError = undefined;
    }
  }

  *#aexit(exc: unknown): Coroutine<boolean> {
    this.#exiting = true;
    const hasExc = exc !== undefined;
    if (hasExc && isBaseError(exc) && this.#baseError === undefined) this.#baseError = exc;
    let propagateCancellationError: unknown = exc instanceof CancelledError ? exc : undefined;
    // Our parent task is being cancelled, or the body raised: stop the rest.
    if (hasExc && !this.#aborting) this.#abort();

    // A loop, because the waiter can be cancelled several times if our
    // parent task is cancelled repeatedly.
    let pendingCancellationError: unknown = undefined;
    while (this.#tasks.size > 0) {
      this.#onCompletedFut ??= this.#loop!.createFuture<boolean>();
      try {
        yield* this.#onCompletedFut;
      } catch (ex) {
        if (!(ex instanceof CancelledError)) throw ex;
        pendingCancellationError = ex;
        if (!this.#aborting) {
          // The body's task is cancelled while our tasks still run.
          propagateCancellationError = ex;
          this.#abort();
        }
      }
      this.#onCompletedFut = null;
    }

    if (this.#baseError !== undefined) {
      // A KeyboardInterrupt/SystemExit ends the group: report the other
      // task errors instead of losing them (gh-135736).
      for (const suppressed of this.#errors) {
        this.#loop!.callExceptionHandler({
          message: 'TaskGroup task exception was not propagated because the TaskGroup body is being closed with a BaseException',
          exception: suppressed,
          task_group: this,
        });
      }
      throw this.#baseError;
    }

    if (this.#parentCancelRequested) {
      // We cancelled the parent ourselves: take that request back.
      if (this.#parentTask!.uncancel() === 0) propagateCancellationError = undefined;
      else if (propagateCancellationError === undefined) propagateCancellationError = pendingCancellationError;
    }
    // CancelledError propagates unless other errors have priority.
    if (propagateCancellationError !== undefined && this.#errors.length === 0) throw propagateCancellationError;

    if (hasExc && !(exc instanceof CancelledError)) this.#errors.push(exc);
    if (this.#errors.length > 0) {
      // Keep the parent's cancel count stable if it is being cancelled from outside.
      if (this.#parentTask!.cancelling()) {
        this.#parentTask!.uncancel();
        this.#parentTask!.cancel();
      }
      throw new ExceptionGroup('unhandled errors in a TaskGroup', [...this.#errors]);
    }
    // Nothing left to raise: suppress the body's CancelledError handled above.
    return true;
  }

  /**
   * Creates a task in this group (same arguments as createTask).
   * @throws RuntimeError if the group is not entered, finished, or shutting down.
   */
  createTask<A extends AwaitableLike<any>>(coro: A, options: TaskOptions = {}): Task<AwaitedOf<A>> {
    if (!this.#entered) {
      closeCoro(coro);
      throw new RuntimeError(`TaskGroup ${this.toString()} has not been entered`);
    }
    if (this.#exiting && this.#tasks.size === 0) {
      closeCoro(coro);
      throw new RuntimeError(`TaskGroup ${this.toString()} is finished`);
    }
    if (this.#aborting) {
      closeCoro(coro);
      throw new RuntimeError(`TaskGroup ${this.toString()} is shutting down`);
    }
    const task = this.#loop!.createTask(coro, options);
    // Even an eagerly finished task goes through the done callback, so its
    // error cannot cancel the body too early (gh-128550).
    this.#tasks.add(task);
    task.addDoneCallback(this.#onTaskDone);
    if (this.#aborting && !task.done()) task.cancel();
    return task;
  }

  /**
   * Cancels the group: its tasks and its body; leaving the group then
   * raises no CancelledError. Before entering, the group is cancelled on
   * entry. Idempotent.
   */
  cancel(): void {
    if (!this.#entered) {
      this.#cancelOnEnter = true;
      return;
    }
    if (this.#exiting && this.#tasks.size === 0) return;
    if (!this.#aborting) {
      this.#abort();
      if (this.#parentTask !== null && !this.#parentCancelRequested) {
        this.#parentCancelRequested = true;
        this.#parentTask.cancel();
      }
    }
  }

  #abort(): void {
    this.#aborting = true;
    for (const t of this.#tasks) if (!t.done()) t.cancel();
  }

  #taskDone(task: Task<unknown>): void {
    this.#tasks.delete(task);
    if (this.#onCompletedFut !== null && this.#tasks.size === 0 && !this.#onCompletedFut.done()) {
      this.#onCompletedFut.setResult(true);
    }
    if (task.cancelled()) return;
    const exc = task.exception();
    if (exc === undefined) return;
    this.#errors.push(exc);
    if (isBaseError(exc) && this.#baseError === undefined) this.#baseError = exc;
    if (this.#parentTask!.done()) {
      this.#loop!.callExceptionHandler({
        message: `Task ${task.toString()} has errored out but its parent task ${this.#parentTask!.toString()} is already completed`,
        exception: exc,
        task,
      });
      return;
    }
    if (!this.#aborting && !this.#parentCancelRequested) {
      // Cancel the body (the parent task) to abort whatever it awaits, and
      // take that cancellation back in aexit().
      this.#abort();
      this.#parentCancelRequested = true;
      this.#parentTask!.cancel();
    }
  }

  toString(): string {
    const info: string[] = [];
    if (this.#tasks.size > 0) info.push(`tasks=${this.#tasks.size}`);
    if (this.#errors.length > 0) info.push(`errors=${this.#errors.length}`);
    if (this.#aborting) info.push('cancelling');
    else if (this.#entered) info.push('entered');
    return `<TaskGroup${info.map((i) => ' ' + i).join('')}>`;
  }

  [inspect.custom](): string {
    return this.toString();
  }
}

function isBaseError(exc: unknown): boolean {
  return exc instanceof KeyboardInterrupt || (exc as { name?: string } | null)?.name === 'SystemExit';
}

function closeCoro(coro: unknown): void {
  // A generator that never started is closed, as asyncio closes the coroutine.
  const gen = coro as { return?: (v?: unknown) => unknown; next?: unknown; throw?: unknown };
  if (typeof gen?.next === 'function' && typeof gen.throw === 'function' && typeof gen.return === 'function') gen.return();
}
