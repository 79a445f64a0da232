/**
 * Executors: running blocking functions on worker threads, asyncio's
 * `run_in_executor` / `to_thread` and concurrent.futures'
 * ThreadPoolExecutor.
 *
 * Port of CPython Lib/asyncio/base_events.py run_in_executor /
 * shutdown_default_executor, Lib/asyncio/threads.py to_thread and
 * Lib/concurrent/futures/thread.py's shutdown rules (3.14).
 *
 * The pool is piscina's. JavaScript threads share no heap, so what a job
 * carries is data: either the source text of a self-contained function
 * (`fn.toString()`, compiled once per worker) or a `{ filename, name }`
 * reference to a module export, plus structured-clonable arguments. The
 * result (or the error, class name and message kept) comes back the same
 * way. See docs/threads.md.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import type { Piscina } from 'piscina';
import type { AbstractEventLoop } from './events.js';
import { getRunningLoop } from './events.js';
import { RuntimeError, describeArg } from './exceptions.js';
import type { Future } from './futures.js';
import { packageRoot } from './native.js';
import { ConcurrentFuture, checkExportRef, unpackError, wrapFuture, type ExportRef } from './threads.js';
import type { Job, JobResult } from './executor-worker.js';

export type { ExportRef } from './threads.js';

/** What an executor runs: a self-contained function or a module export. */
export type ExecutorFn<A extends unknown[] = any[], R = unknown> = ((...args: A) => R) | ExportRef;

/** What `runInExecutor` accepts: anything with concurrent.futures' `submit`. */
export interface Executor {
  submit<T = unknown>(fn: ExecutorFn, ...args: unknown[]): ConcurrentFuture<T>;
  shutdown(options?: { wait?: boolean; cancelFutures?: boolean }): Promise<void>;
}

export interface ThreadPoolExecutorOptions {
  /** Most worker threads at once (asyncio's default: min(32, cpus + 4)). */
  maxWorkers?: number;
  /** Seconds an idle worker lives before it exits (default 10). */
  idleTimeout?: number;
  /** A name for the pool's threads (diagnostics). */
  threadNamePrefix?: string;
}

function workerFile(): string {
  // Next to this file once compiled (dist/lib); from the sources (tests
  // under a TypeScript loader) the compiled copy in dist/lib.
  const here = path.join(__dirname, 'executor-worker.js');
  if (existsSync(here)) return here;
  return path.join(packageRoot(), 'dist', 'lib', 'executor-worker.js');
}

function defaultMaxWorkers(): number {
  return Math.min(32, availableParallelism() + 4);
}

const QUEUED = 0;
const CANCELLED = 2;

/**
 * concurrent.futures.ThreadPoolExecutor over a piscina pool of worker
 * threads. Threads start on demand and exit after `idleTimeout` idle
 * seconds; idle ones never hold the process open.
 */
export class ThreadPoolExecutor implements Executor {
  #pool: Piscina | null = null;
  #shutdown = false;
  #destroyed = false;
  #drained: Promise<void> | null = null;
  readonly #maxWorkers: number;
  readonly #idleTimeout: number;
  readonly #name: string;
  readonly #pending = new Set<{ fut: ConcurrentFuture<unknown>; flag: Int32Array; abort: AbortController }>();

  constructor(options: ThreadPoolExecutorOptions = {}) {
    if (typeof options !== 'object' || options === null) throw new TypeError(describeArg('options', 'an object', options));
    const { maxWorkers, idleTimeout = 10, threadNamePrefix = 'ThreadPoolExecutor' } = options;
    if (maxWorkers !== undefined && (!Number.isInteger(maxWorkers) || maxWorkers <= 0)) {
      // concurrent.futures: ValueError("max_workers must be greater than 0").
      throw new RangeError(describeArg('maxWorkers', 'a positive integer', maxWorkers));
    }
    if (typeof idleTimeout !== 'number' || !(idleTimeout >= 0)) {
      throw new RangeError(describeArg('idleTimeout', 'a number of seconds >= 0', idleTimeout));
    }
    this.#maxWorkers = maxWorkers ?? defaultMaxWorkers();
    this.#idleTimeout = idleTimeout;
    this.#name = String(threadNamePrefix);
  }

  /** Worker threads alive now. */
  get threads(): number {
    return this.#pool?.threads.length ?? 0;
  }

  /** Jobs submitted and not yet finished (queued or running). */
  get pending(): number {
    return this.#pending.size;
  }

  get maxWorkers(): number {
    return this.#maxWorkers;
  }

  #getPool(): Piscina {
    if (this.#pool === null) {
      // Loaded on first use: importing aionode must not cost piscina's load.
      const { Piscina: Pool } = createRequire(__filename)('piscina') as typeof import('piscina');
      this.#pool = new Pool({
        filename: workerFile(),
        minThreads: 0,
        maxThreads: this.#maxWorkers,
        idleTimeout: this.#idleTimeout * 1000,
        name: 'default',
      });
    }
    return this.#pool;
  }

  /**
   * Schedules `fn(...args)` on a worker thread.
   * @throws RuntimeError after shutdown(); TypeError for a function whose
   * source cannot be shipped or a bad module reference.
   */
  submit<T = unknown>(fn: ExecutorFn, ...args: unknown[]): ConcurrentFuture<T> {
    if (this.#shutdown) throw new RuntimeError('cannot schedule new futures after shutdown');
    const job = makeJob(fn, args);
    const fut = new ConcurrentFuture<T>();
    const entry = { fut: fut as ConcurrentFuture<unknown>, flag: job.flag, abort: new AbortController() };
    // A queued job is claimed by the first of: a worker starting it (0 -> 1)
    // or cancel() (0 -> 2). Only a job still queued can be cancelled.
    fut._onCancel = () => {
      if (Atomics.compareExchange(entry.flag, 0, QUEUED, CANCELLED) !== QUEUED) return false;
      this.#pending.delete(entry);
      entry.abort.abort();
      return true;
    };
    this.#pending.add(entry);
    let run: Promise<JobResult>;
    try {
      run = this.#getPool().run(job, { signal: entry.abort.signal }) as Promise<JobResult>;
    } catch (e) {
      this.#pending.delete(entry);
      throw e;
    }
    run.then(
      (r) => {
        this.#pending.delete(entry);
        if ('skipped' in r) return;
        if (r.ok) fut.setResult(r.value as T);
        else fut.setException(unpackError(r.error));
      },
      (e: unknown) => {
        this.#pending.delete(entry);
        if (fut.done()) return;
        if (this.#destroyed) {
          fut.setException(new RuntimeError('the executor was terminated (shutdownDefaultExecutor timed out): its worker thread was stopped'));
        } else if ((e as { name?: string })?.name === 'DataCloneError') {
          fut.setException(new TypeError(`arguments must be structured-clonable (${(e as Error).message})`));
        } else {
          fut.setException(e);
        }
      },
    );
    return fut;
  }

  /**
   * concurrent.futures' `shutdown(wait, cancel_futures)`: stops accepting
   * jobs. `cancelFutures`: the jobs still queued are cancelled first.
   * Every other job, running or queued, runs to its end either way:
   * `wait` (default true) resolves once they have and the threads are
   * gone; `wait: false` resolves at once and the pool is destroyed in the
   * background when the last of them settles. Meanwhile, as at a Python
   * interpreter's exit, those jobs hold the process open (a busy worker
   * thread is ref'd, an idle one is not); nothing else does.
   */
  async shutdown(options: { wait?: boolean; cancelFutures?: boolean } = {}): Promise<void> {
    const { wait = true, cancelFutures = false } = options ?? {};
    this.#shutdown = true;
    if (cancelFutures) for (const e of [...this.#pending]) e.fut.cancel();
    if (this.#pool === null) return;
    if (this.#drained === null) {
      this.#drained = this.#destroyWhenDrained();
      // Nobody may await it (wait: false): a failed destroy must not become an unhandled rejection.
      this.#drained.catch(() => {});
    }
    if (wait) await this.#drained;
  }

  async #destroyWhenDrained(): Promise<void> {
    // Jobs are only removed from #pending once settled, and none can be added after shutdown.
    while (this.#pending.size > 0) {
      await Promise.allSettled([...this.#pending].map((e) => e.fut.then(undefined, () => undefined)));
    }
    const pool = this.#pool;
    if (pool === null || this.#destroyed) return;
    this.#destroyed = true;
    this.#pool = null;
    await pool.destroy();
  }

  /**
   * @internal Terminates the worker threads now (the timeout path of
   * `shutdownDefaultExecutor`; a JavaScript thread can be stopped, unlike
   * a Python one): running jobs fail with RuntimeError, queued ones are
   * cancelled.
   */
  async _terminate(): Promise<void> {
    this.#shutdown = true;
    for (const e of [...this.#pending]) e.fut.cancel();
    const pool = this.#pool;
    if (pool === null || this.#destroyed) return;
    this.#destroyed = true;
    this.#pool = null;
    await pool.destroy();
  }

  toString(): string {
    return `<ThreadPoolExecutor ${this.#name} max_workers=${this.#maxWorkers} pending=${this.#pending.size}${this.#shutdown ? ' shutdown' : ''}>`;
  }
}

function makeJob(fn: unknown, args: unknown[]): Job {
  const flag = new Int32Array(new SharedArrayBuffer(4));
  if (typeof fn === 'function') {
    const ctor = (fn as { constructor?: { name?: string } }).constructor?.name;
    if (ctor === 'AsyncFunction' || ctor === 'AsyncGeneratorFunction' || ctor === 'GeneratorFunction') {
      // asyncio: "coroutines cannot be used with run_in_executor()".
      throw new TypeError(`coroutines cannot be used with runInExecutor(): ${JSON.stringify(fn.name || '<anonymous>')} is a ${ctor}`);
    }
    const src = Function.prototype.toString.call(fn);
    if (/\{\s*\[native code\]\s*\}\s*$/.test(src)) {
      throw new TypeError(
        `function ${JSON.stringify(fn.name || '<anonymous>')} is native or bound: its source cannot be shipped to a ` +
          `worker thread; use a self-contained function or a { filename, name } module reference`,
      );
    }
    return { src, fnName: fn.name, args, flag };
  }
  const { filename, name } = checkExportRef(fn, 'fn');
  return { filename, name, args, flag };
}

// ---------------------------------------------------------------------------
// The loop's default executor (asyncio's _default_executor).

interface LoopExecutorState {
  executor: Executor | null;
  shutdownCalled: boolean;
}

const states = new WeakMap<AbstractEventLoop, LoopExecutorState>();

function stateOf(loop: AbstractEventLoop): LoopExecutorState {
  let s = states.get(loop);
  if (s === undefined) states.set(loop, (s = { executor: null, shutdownCalled: false }));
  return s;
}

function isExecutor(v: unknown): v is Executor {
  return typeof v === 'object' && v !== null && typeof (v as Executor).submit === 'function';
}

/**
 * @internal `loop.runInExecutor(executor, fn, ...args)`: a Future of
 * `loop` for `fn(...args)` on `executor` (null: the loop's default,
 * created on first use).
 */
export function runInExecutor<T = unknown>(
  loop: AbstractEventLoop,
  executor: Executor | null | undefined,
  fn: ExecutorFn,
  ...args: unknown[]
): Future<T> {
  if (loop.isClosed()) throw new RuntimeError('Event loop is closed');
  if (typeof fn !== 'function') checkExportRef(fn, 'fn');
  let ex: Executor;
  if (executor === null || executor === undefined) {
    const s = stateOf(loop);
    if (s.shutdownCalled) throw new RuntimeError('Executor shutdown has been called');
    if (s.executor === null) s.executor = new ThreadPoolExecutor({ threadNamePrefix: 'asyncio' });
    ex = s.executor;
  } else if (isExecutor(executor)) {
    ex = executor;
  } else {
    throw new TypeError(describeArg('executor', 'an executor (an object with submit()) or null', executor));
  }
  return wrapFuture(ex.submit<T>(fn, ...args), { loop });
}

/** @internal `loop.setDefaultExecutor(executor)`. */
export function setDefaultExecutor(loop: AbstractEventLoop, executor: Executor): void {
  // asyncio: "executor must be ThreadPoolExecutor".
  if (!(executor instanceof ThreadPoolExecutor)) {
    throw new TypeError(describeArg('executor', 'a ThreadPoolExecutor', executor));
  }
  stateOf(loop).executor = executor;
}

/** @internal The loop's default executor, if one was made or set. */
export function getDefaultExecutor(loop: AbstractEventLoop): Executor | null {
  return states.get(loop)?.executor ?? null;
}

/**
 * @internal `loop.shutdownDefaultExecutor(timeout)`, asyncio 3.12's: no new
 * work for the default executor; waits for what it runs, up to `timeout`
 * seconds (null: no limit); past it, warns (RuntimeWarning, asyncio's text)
 * and terminates the pool's threads.
 */
export async function shutdownDefaultExecutor(loop: AbstractEventLoop, timeout: number | null = null): Promise<void> {
  if (timeout !== null && timeout !== undefined) {
    if (typeof timeout !== 'number') throw new TypeError(describeArg('timeout', 'a number of seconds or null', timeout));
    if (Number.isNaN(timeout)) throw new RangeError(describeArg('timeout', 'a number of seconds or null', timeout));
  }
  const s = stateOf(loop);
  s.shutdownCalled = true;
  const ex = s.executor;
  if (ex === null) return;
  const joined = ex.shutdown({ wait: true });
  if (timeout === null || timeout === undefined || timeout === Infinity) {
    await joined;
    return;
  }
  let timer: NodeJS.Timeout | undefined;
  const timedOut = await Promise.race([
    joined.then(() => false),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), Math.max(0, timeout) * 1000);
    }),
  ]);
  clearTimeout(timer);
  if (timedOut) {
    process.emitWarning(`The executor did not finishing joining its threads within ${timeout} seconds.`, 'RuntimeWarning');
    if (ex instanceof ThreadPoolExecutor) await ex._terminate();
    else await ex.shutdown({ wait: false });
  }
}

/**
 * asyncio's `to_thread`: runs `fn(...args)` on the running loop's default
 * executor and returns a Future of that loop. Python also copies the
 * caller's contextvars into the thread; nothing of a JavaScript context
 * can cross to another thread, so `fn` sees none (pass what it needs as
 * arguments).
 * @throws RuntimeError "no running event loop".
 */
export function toThread<T = unknown>(fn: ExecutorFn, ...args: unknown[]): Future<T> {
  const loop = getRunningLoop() as AbstractEventLoop & {
    runInExecutor?: (e: null, fn: ExecutorFn, ...a: unknown[]) => Future<T>;
  };
  if (typeof loop.runInExecutor === 'function') return loop.runInExecutor(null, fn, ...args);
  return runInExecutor<T>(loop, null, fn, ...args);
}
