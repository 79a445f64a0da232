/**
 * Event loop and event loop policy.
 *
 * Port of CPython Lib/asyncio/events.py (3.14): the abstract loop, the
 * callback handles it returns, and the running-loop bookkeeping. Policies
 * are left out (deprecated in 3.14).
 */
import { inspect } from 'node:util';
import { describeArg, RuntimeError } from './exceptions.js';
import { formatCallback } from './internal/format.js';
import type { Future } from './futures.js';
import type { AwaitableLike, AwaitedOf } from './coroutines.js';
import type { Task, TaskFactory, TaskOptions } from './tasks.js';
import type { AddrInfo, CreateConnectionOptions, CreateDatagramOptions, CreateServerOptions, Server } from './base-events.js';
import type { BaseProtocol, DatagramProtocol } from './protocols.js';
import type { DatagramTransport, Transport } from './transports.js';
import type { Socket, SockAddr } from './socket.js';
import type { LoopHandle } from './threads.js';
import type { Executor, ExecutorFn } from './executor.js';
import type { SSLTransport, StartTlsOptions } from './sslproto.js';
import type { SubprocessProtocol } from './protocols.js';
import type { ReadTransport, WriteTransport } from './transports.js';
import type { SubprocessTransport } from './base-subprocess.js';
import type { PipeLike, SubprocessOptions } from './unix-events.js';

/** A file for sendfile: an fd, a FileHandle (`fd`), or an object with `fileno()`. */
export type FileLike = number | { fd: number } | { fileno(): number };

/**
 * Runs a function inside a captured context: the value
 * `AsyncLocalStorage.snapshot()` returns is one. asyncio's
 * `contextvars.Context.run`.
 */
export type CallbackContext = <R>(fn: (...args: any[]) => R, ...args: any[]) => R;

/** Options accepted before a callback: `loop.callSoon({ context }, cb, ...args)`. */
export interface CallbackOptions {
  context?: CallbackContext;
}

/** The context handed to an exception handler (asyncio's dict). */
export interface ExceptionContext {
  message: string;
  exception?: unknown;
  future?: Future<unknown>;
  task?: Future<unknown>;
  handle?: Handle;
  protocol?: unknown;
  transport?: unknown;
  socket?: unknown;
  [key: string]: unknown;
}

export type ExceptionHandler = (loop: AbstractEventLoop, context: ExceptionContext) => void;

/**
 * formatCallback(), but an argument whose repr throws (a throwing
 * `inspect.custom`) cannot make the report of a failing callback fail too.
 */
function describeCallback(cb: (...args: any[]) => unknown, args: readonly unknown[]): string {
  try {
    return formatCallback(cb, args);
  } catch {
    let name = '<anonymous>';
    try {
      name = cb.name || name;
    } catch {
      // A throwing `name` getter: keep the placeholder.
    }
    return `${name}(<unprintable arguments>)`;
  }
}

/** Object returned by callback registration methods. */
export class Handle {
  /** @internal */ _callback: ((...args: any[]) => unknown) | null;
  /** @internal */ _args: unknown[] | null;
  /** @internal */ _cancelled = false;
  /** @internal */ readonly _loop: AbstractEventLoop;
  /** @internal */ _context: CallbackContext | undefined;
  /** @internal */ _repr: string | null = null;

  constructor(
    callback: (...args: any[]) => unknown,
    args: unknown[],
    loop: AbstractEventLoop,
    context?: CallbackContext,
  ) {
    this._callback = callback;
    this._args = args;
    this._loop = loop;
    this._context = context;
    if (loop.getDebug()) this._repr = this._describe();
  }

  /** The context the callback runs in, if one was given. */
  getContext(): CallbackContext | undefined {
    return this._context;
  }

  /** Cancels the callback; a no-op if it already ran or was cancelled. */
  cancel(): void {
    if (!this._cancelled) {
      this._cancelled = true;
      if (this._loop.getDebug()) this._repr = this._describe();
      // Drop references so a cancelled handle keeps nothing alive.
      this._callback = null;
      this._args = null;
    }
  }

  /** Whether the callback was cancelled. */
  cancelled(): boolean {
    return this._cancelled;
  }

  /** @internal Runs the callback; errors go to the loop's exception handler. */
  _run(): void {
    const cb = this._callback!;
    const args = this._args!;
    try {
      if (this._context !== undefined) this._context(cb, ...args);
      else if (args.length === 0) cb();
      else cb(...args);
    } catch (exc) {
      const message = `Exception in callback ${this._repr ?? this._describe()}`;
      this._loop.callExceptionHandler({ message, exception: exc, handle: this });
    }
  }

  protected _describeParts(): string[] {
    const info: string[] = [];
    if (this._cancelled) info.push('cancelled');
    if (this._callback !== null) info.push(describeCallback(this._callback, this._args ?? []));
    return info;
  }

  /** @internal */
  _describe(): string {
    return `<${this.constructor.name} ${this._describeParts().join(' ')}>`.replace(' >', '>');
  }

  toString(): string {
    return this._repr ?? this._describe();
  }

  [inspect.custom](): string {
    return this.toString();
  }
}

/** Object returned by timed callback registration methods. */
export class TimerHandle extends Handle {
  /** @internal */ readonly _when: number;
  /** @internal Whether it still sits in the loop's timer heap. */ _scheduled = false;
  /** @internal Slot in the loop's timer table (the native heap's id). */ _id = -1;
  /** @internal Scheduling order in its loop: ties between equal deadlines. */ _seq = 0;

  constructor(
    when: number,
    callback: (...args: any[]) => unknown,
    args: unknown[],
    loop: AbstractEventLoop,
    context?: CallbackContext,
  ) {
    super(callback, args, loop, context);
    this._when = when;
  }

  /** The absolute time (loop.time() seconds) the callback is scheduled for. */
  when(): number {
    return this._when;
  }

  override cancel(): void {
    if (!this._cancelled) this._loop._timerHandleCancelled(this);
    super.cancel();
  }

  protected override _describeParts(): string[] {
    const info = super._describeParts();
    info.splice(this._cancelled ? 1 : 0, 0, `when=${this._when}`);
    return info;
  }
}

/** Abstract event loop: the interface every loop implements. */
export abstract class AbstractEventLoop {
  /** @internal The task whose step runs now (asyncio's _current_tasks[loop]). */
  _currentTask: Future<unknown> | null = null;

  // Running and stopping the loop. The run methods return Promises: a loop
  // inside Node cannot block its thread (docs/design.md, "Living inside Node's loop").
  abstract runForever(): Promise<void>;
  abstract runUntilComplete(future: any): Promise<any>;
  abstract stop(): void;
  abstract isRunning(): boolean;
  abstract isClosed(): boolean;
  abstract close(): void;

  // Methods scheduling callbacks. All these return Handles.
  abstract callSoon(callback: (...args: any[]) => unknown, ...args: unknown[]): Handle;
  abstract callSoon(options: CallbackOptions, callback: (...args: any[]) => unknown, ...args: unknown[]): Handle;
  abstract callLater(delay: number, callback: (...args: any[]) => unknown, ...args: unknown[]): TimerHandle;
  abstract callAt(when: number, callback: (...args: any[]) => unknown, ...args: unknown[]): TimerHandle;
  abstract time(): number;
  abstract createFuture<T = unknown>(): Future<T>;
  /** Schedules a coroutine (or a function returning an awaitable) and returns its Task. */
  abstract createTask<A extends AwaitableLike<any>>(coro: A, options?: TaskOptions): Task<AwaitedOf<A>>;
  /** A Future of this loop that follows a foreign promise (a cancellable await of it). */
  abstract wrap<T>(promise: PromiseLike<T>): Future<T>;
  abstract setTaskFactory(factory: TaskFactory | null): void;
  abstract getTaskFactory(): TaskFactory | null;
  abstract shutdownAsyncgens(): Promise<void>;
  abstract shutdownDefaultExecutor(timeout?: number | null): Promise<void>;

  // Threads and executors (lib/threads.ts, lib/executor.ts).
  abstract callSoonThreadsafe(callback: (...args: any[]) => unknown, ...args: unknown[]): Handle;
  abstract callSoonThreadsafe(options: CallbackOptions, callback: (...args: any[]) => unknown, ...args: unknown[]): Handle;
  abstract threadsafeHandle(onMessage?: ((message: any) => unknown) | null): LoopHandle;
  abstract runInExecutor<T = unknown>(executor: Executor | null, fn: ExecutorFn, ...args: unknown[]): Future<T>;
  abstract setDefaultExecutor(executor: Executor): void;

  // Network I/O methods returning Futures.
  abstract getaddrinfo(
    host: string | null | undefined,
    port: number | string | null | undefined,
    options?: { family?: number; type?: number; proto?: number; flags?: number },
  ): Future<AddrInfo[]>;
  abstract getnameinfo(sockaddr: [string, number], flags?: number): Future<[string, string]>;
  abstract createConnection<P extends BaseProtocol>(
    protocolFactory: () => P,
    host?: string | null,
    port?: number | string | null,
    options?: CreateConnectionOptions,
  ): Task<[Transport, P]>;
  abstract createServer(
    protocolFactory: () => BaseProtocol,
    host?: string | string[] | null,
    port?: number | string | null,
    options?: CreateServerOptions,
  ): Task<Server>;
  abstract sendfile(transport: Transport, file: FileLike, offset?: number, count?: number, fallback?: boolean): Future<number>;
  abstract startTls(transport: Transport, protocol: BaseProtocol, sslcontext: unknown, options?: StartTlsOptions): Task<SSLTransport>;
  abstract createUnixConnection<P extends BaseProtocol>(protocolFactory: () => P, path?: string | null, options?: CreateConnectionOptions): Task<[Transport, P]>;
  abstract createUnixServer(
    protocolFactory: () => BaseProtocol,
    path?: string | null,
    options?: CreateServerOptions & { cleanupSocket?: boolean },
  ): Task<Server>;
  abstract connectAcceptedSocket<P extends BaseProtocol>(
    protocolFactory: () => P,
    sock: Socket,
    options?: { ssl?: unknown; sslHandshakeTimeout?: number; sslShutdownTimeout?: number },
  ): Task<[Transport, P]>;
  abstract createDatagramEndpoint<P extends DatagramProtocol>(protocolFactory: () => P, options?: CreateDatagramOptions): Task<[DatagramTransport, P]>;

  // Pipes and subprocesses (unix-events.ts).
  abstract connectReadPipe<P extends BaseProtocol>(protocolFactory: () => P, pipe: PipeLike): Task<[ReadTransport, P]>;
  abstract connectWritePipe<P extends BaseProtocol>(protocolFactory: () => P, pipe: PipeLike): Task<[WriteTransport, P]>;
  abstract subprocessExec<P extends SubprocessProtocol>(protocolFactory: () => P, program: string, args?: readonly string[], options?: SubprocessOptions): Task<[SubprocessTransport, P]>;
  abstract subprocessShell<P extends SubprocessProtocol>(protocolFactory: () => P, cmd: string, options?: SubprocessOptions): Task<[SubprocessTransport, P]>;

  // Low-level socket operations (sock_*): the socket must be non-blocking.
  abstract sockRecv(sock: Socket, nbytes: number): Future<Buffer>;
  abstract sockRecvInto(sock: Socket, buf: Uint8Array): Future<number>;
  abstract sockRecvfrom(sock: Socket, bufsize: number): Future<[Buffer, SockAddr]>;
  abstract sockSendall(sock: Socket, data: Uint8Array | string): Future<void>;
  abstract sockSendto(sock: Socket, data: Uint8Array | string, addr: SockAddr): Future<number>;
  abstract sockConnect(sock: Socket, address: SockAddr): Future<void>;
  abstract sockAccept(sock: Socket): Future<[Socket, SockAddr]>;
  abstract sockSendfile(sock: Socket, file: FileLike, offset?: number, count?: number, fallback?: boolean): Future<number>;

  /** @internal Queues an object with `_run()` for the next pass (tasks use it for their steps). */
  abstract _addReady(item: { _run(): void }): void;

  /** @internal Notification that a TimerHandle was cancelled. */
  abstract _timerHandleCancelled(handle: TimerHandle): void;

  // Ready-based callback registration methods.
  abstract addReader(fd: FileDescriptorLike, callback: (...args: any[]) => unknown, ...args: unknown[]): Handle;
  abstract removeReader(fd: FileDescriptorLike): boolean;
  abstract addWriter(fd: FileDescriptorLike, callback: (...args: any[]) => unknown, ...args: unknown[]): Handle;
  abstract removeWriter(fd: FileDescriptorLike): boolean;

  // Signal handling.
  abstract addSignalHandler(sig: number | NodeJS.Signals, callback: (...args: any[]) => unknown, ...args: unknown[]): void;
  abstract removeSignalHandler(sig: number | NodeJS.Signals): boolean;

  // Error handlers.
  abstract getExceptionHandler(): ExceptionHandler | null;
  abstract setExceptionHandler(handler: ExceptionHandler | null): void;
  abstract defaultExceptionHandler(context: ExceptionContext): void;
  abstract callExceptionHandler(context: ExceptionContext): void;

  // Debug flag management.
  abstract getDebug(): boolean;
  abstract setDebug(enabled: boolean): void;
}

/** An fd number or an object with a `fileno()` method (Python's file object). */
export type FileDescriptorLike = number | { fileno(): number };

/** Turns a file object into an fd, as `selectors._fileobj_to_fd` does. */
export function fileobjToFd(fileobj: FileDescriptorLike): number {
  let fd: unknown = fileobj;
  if (typeof fileobj === 'object' && fileobj !== null && typeof fileobj.fileno === 'function') {
    fd = fileobj.fileno();
  }
  if (typeof fd !== 'number' || !Number.isInteger(fd)) {
    throw new TypeError(describeArg('fd', 'an integer file descriptor or an object with fileno()', fileobj));
  }
  if (fd < 0) throw new RangeError(`Invalid file descriptor: ${fd}`);
  return fd;
}

let runningLoop: AbstractEventLoop | null = null;
let currentLoop: AbstractEventLoop | null = null;

/**
 * The running event loop, or null. Unlike {@link getRunningLoop} it never
 * throws.
 */
export function _getRunningLoop(): AbstractEventLoop | null {
  return runningLoop;
}

/** @internal Sets the running loop; only loops call this. */
export function _setRunningLoop(loop: AbstractEventLoop | null): void {
  runningLoop = loop;
}

/**
 * The running event loop.
 * @throws RuntimeError "no running event loop" when none runs.
 */
export function getRunningLoop(): AbstractEventLoop {
  if (runningLoop !== null) return runningLoop;
  // An async-function task resumed by a microtask after its loop stopped
  // (its first step ran in the loop's last pass) still belongs to that loop:
  // in asyncio it would simply be suspended until the loop runs again.
  const taskLoop = taskLoopHook?.() ?? null;
  if (taskLoop !== null && !taskLoop.isClosed()) return taskLoop;
  throw new RuntimeError('no running event loop');
}

let taskLoopHook: (() => AbstractEventLoop | null) | null = null;

/** @internal tasks.ts tells which loop the current async-function task belongs to. */
export function _setTaskLoopHook(hook: () => AbstractEventLoop | null): void {
  taskLoopHook = hook;
}

/**
 * The running loop, else the one set with {@link setEventLoop}. As in
 * Python 3.14 it never creates one.
 * @throws RuntimeError when there is neither.
 */
export function getEventLoop(): AbstractEventLoop {
  if (runningLoop !== null) return runningLoop;
  if (currentLoop === null) {
    throw new RuntimeError('There is no current event loop');
  }
  return currentLoop;
}

/** Sets the current loop returned by {@link getEventLoop} when none runs. */
export function setEventLoop(loop: AbstractEventLoop | null): void {
  if (loop !== null && !(loop instanceof AbstractEventLoop)) {
    throw new TypeError(describeArg('loop', 'an AbstractEventLoop or null', loop));
  }
  currentLoop = loop;
}

let loopFactory: (() => AbstractEventLoop) | null = null;

/** @internal selector-events registers the default loop class here. */
export function _setDefaultLoopFactory(factory: () => AbstractEventLoop): void {
  loopFactory = factory;
}

type LoopKinds = Map<string, () => AbstractEventLoop>;
const loopProviders: ((kinds: LoopKinds) => void)[] = [];
let loopKinds: LoopKinds | null = null;
let forcedLoop: string | undefined;

/**
 * @internal A loop module tells which loops it can make by name (`'epoll'`,
 * `'io_uring'`, ...), for `AIONODE_LOOP`. Asked lazily, on the first
 * `newEventLoop()`, so importing aionode never loads the addon.
 */
export function _registerLoopKinds(provider: (kinds: LoopKinds) => void): void {
  loopProviders.push(provider);
  loopKinds = null;
}

function kinds(): LoopKinds {
  if (loopKinds === null) {
    loopKinds = new Map();
    for (const provide of loopProviders) provide(loopKinds);
  }
  return loopKinds;
}

/** The loop names `AIONODE_LOOP` accepts here: the selectors and proactors usable on this machine. */
export function availableLoops(): string[] {
  return [...kinds().keys()];
}

/**
 * Creates a new event loop: the one `AIONODE_LOOP` names (read once, on
 * the first call: `epoll`, `poll`, `select`, `io_uring`), else the default
 * kind (SelectorEventLoop on the best selector).
 * @throws Error naming AIONODE_LOOP, the loops available and the value,
 * for an unknown or unusable name.
 */
export function newEventLoop(): AbstractEventLoop {
  forcedLoop ??= process.env.AIONODE_LOOP ?? '';
  if (forcedLoop !== '') {
    const factory = kinds().get(forcedLoop);
    if (factory === undefined) {
      throw new Error(describeArg('AIONODE_LOOP', `one of ${availableLoops().join(', ')} (the loops usable here)`, forcedLoop));
    }
    return factory();
  }
  if (loopFactory === null) throw new RuntimeError('no event loop implementation is registered');
  return loopFactory();
}

/** @internal Tests: forget the AIONODE_LOOP value read so far. */
export function _resetForcedLoop(): void {
  forcedLoop = undefined;
}
