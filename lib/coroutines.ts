/**
 * Coroutine types and checks.
 *
 * Port of CPython Lib/asyncio/coroutines.py (3.14). JavaScript has two kinds
 * of coroutine: generator objects (`function*` using `yield* future`), which
 * start lazily and take CancelledError thrown into their suspended frame,
 * and promises returned by async functions, which start eagerly.
 */
import type { Future } from './futures.js';

/**
 * A generator coroutine: it yields the Futures it waits on (through
 * `yield* fut`) or `undefined` (a bare yield: give up one loop pass) and
 * returns T.
 */
export type Coroutine<T = unknown> = Generator<Future<unknown> | undefined, T, unknown>;

/** Anything a Task can wait on: a Future, a promise, a generator coroutine. */
export type Awaitable<T = unknown> = Future<T> | PromiseLike<T> | Coroutine<T>;

/**
 * What createTask, ensureFuture, gather, wait, waitFor, shield, asCompleted
 * and TaskGroup.createTask accept: an awaitable, or a function returning
 * one. A function is called inside the new task, which is what makes an
 * async function cancellable at its awaits.
 */
export type AwaitableLike<T = unknown> = Awaitable<T> | (() => Awaitable<T>);

/** The value an AwaitableLike resolves to. */
export type AwaitedOf<A> = A extends () => infer R
  ? AwaitedOf<R>
  : A extends Generator<any, infer T, any>
    ? T
    : A extends PromiseLike<infer T>
      ? Awaited<T>
      : never;

/** Whether `obj` is a generator object (a generator coroutine). */
export function isGenerator(obj: unknown): obj is Coroutine<unknown> {
  return (
    typeof obj === 'object' &&
    obj !== null &&
    typeof (obj as Generator).next === 'function' &&
    typeof (obj as Generator).throw === 'function' &&
    typeof (obj as Generator)[Symbol.iterator] === 'function'
  );
}

/** Whether `obj` is a thenable. */
export function isThenable(obj: unknown): obj is PromiseLike<unknown> {
  return (
    (typeof obj === 'object' || typeof obj === 'function') &&
    obj !== null &&
    typeof (obj as PromiseLike<unknown>).then === 'function'
  );
}

/**
 * Whether `obj` is a coroutine: a generator object, or a promise (calling
 * an async function returns one; JavaScript cannot tell the two apart).
 */
export function isCoroutine(obj: unknown): boolean {
  return isGenerator(obj) || obj instanceof Promise;
}
