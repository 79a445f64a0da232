/**
 * One test body, both kinds of coroutine (docs/design.md, "Two kinds of coroutine").
 *
 * A case is written once as a generator function that waits with `yield*`.
 * The generator kind hands the generator object to the Task, which is the
 * asyncio-exact path. The async-function kind runs the same body from an
 * async function that `await`s each Future the body yields, inside the task
 * (the `createTask(() => fn())` form): it waits, and is cancelled, exactly
 * where an `await` would be, through `Future.then`.
 */
import { sleep, type AwaitableLike, type Coroutine } from '../../lib/index.js';

/** A generator coroutine function: the body of a test case. */
export type CoroFn<T, A extends unknown[]> = (...args: A) => Coroutine<T>;

/**
 * Drives `gen` from an async function: every Future it yields is awaited,
 * a bare yield is `await sleep(0)`. What the await throws (CancelledError
 * included) is thrown back into the generator at its `yield*`, so
 * try/catch/finally in the body behave as around an `await`.
 */
export async function awaitEach<T>(gen: Coroutine<T>): Promise<T> {
  let r = gen.next();
  while (!r.done) {
    const waitOn = r.value;
    let value: unknown;
    try {
      value = waitOn === undefined ? await sleep(0) : await waitOn;
    } catch (exc) {
      r = gen.throw(exc);
      continue;
    }
    r = gen.next(value);
  }
  return r.value;
}

/** How a suite turns a body into what createTask (or gather, wait, ...) takes. */
export interface CoroKind {
  readonly name: string;
  readonly isGenerator: boolean;
  /** `fn(...args)` as this kind of coroutine, ready for createTask. */
  task<T, A extends unknown[]>(fn: CoroFn<T, A>, ...args: A): AwaitableLike<T>;
}

/** Generator coroutines: the Task steps the generator object itself. */
export const GENERATOR: CoroKind = {
  name: 'generator',
  isGenerator: true,
  task: (fn, ...args) => fn(...args),
};

/** Async functions, in the cancellable form: called inside the task. */
export const ASYNC_FUNCTION: CoroKind = {
  name: 'async function',
  isGenerator: false,
  task:
    (fn, ...args) =>
    () =>
      awaitEach(fn(...args)),
};

/** Both kinds, for `describe.each(COROUTINE_KINDS)('$name', ...)`. */
export const COROUTINE_KINDS: readonly CoroKind[] = [GENERATOR, ASYNC_FUNCTION];
