/**
 * The subprocess transport's loop-independent half.
 *
 * Port of CPython Lib/asyncio/base_subprocess.py (3.14): a
 * BaseSubprocessTransport holds the child, connects its stdio pipes through
 * loop.connectWritePipe / connectReadPipe, queues the protocol's callbacks
 * until connectionMade has run, and calls connectionLost once the child has
 * exited AND every pipe is closed. The Unix half (spawning, exit watching)
 * is UnixSubprocessTransport in unix-events.ts.
 */
import { CancelledError, describeArg, ProcessLookupError } from './exceptions.js';
import type { AbstractEventLoop } from './events.js';
import type { Future } from './futures.js';
import { logger } from './log.js';
import { BaseProtocol, type SubprocessProtocol } from './protocols.js';
import { BaseTransport, type ReadTransport, type WriteTransport } from './transports.js';
import type { Coroutine } from './coroutines.js';
import type { Task } from './tasks.js';

/** Interface for a subprocess transport (asyncio's transports.SubprocessTransport). */
export abstract class SubprocessTransport extends BaseTransport {
  /** The child's process id. */
  abstract getPid(): number | null;
  /** The return code (-N when signal N killed it), or null while it runs. */
  abstract getReturncode(): number | null;
  /** The transport of the child's fd 0, 1 or 2 when it is a pipe, else null. */
  abstract getPipeTransport(fd: number): ReadTransport | WriteTransport | null;
  /** Sends `signal` (a number or a name such as 'SIGUSR1'); nothing once the child has exited. */
  abstract sendSignal(signal: number | NodeJS.Signals): void;
  /** SIGTERM. */
  abstract terminate(): void;
  /** SIGKILL. */
  abstract kill(): void;
}

type PipeTransport = ReadTransport | WriteTransport;

/** @internal The loop surface used here. */
interface SubprocessLoop extends AbstractEventLoop {
  connectWritePipe<P extends BaseProtocol>(factory: () => P, pipe: number): Task<[WriteTransport, P]>;
  connectReadPipe<P extends BaseProtocol>(factory: () => P, pipe: number): Task<[ReadTransport, P]>;
}

/** @internal What _start() leaves: the child and the parent's ends of its pipes. */
export interface StartedChild {
  pid: number;
  stdin: number | null;
  stdout: number | null;
  stderr: number | null;
}

/**
 * The loop-independent subprocess transport. Subclasses implement
 * `_start()` (spawn the child, return the parent's pipe ends) and
 * `_signal()`; the child watcher calls `_processExited(returncode)`.
 */
export abstract class BaseSubprocessTransport extends SubprocessTransport {
  /** @internal */ _closed = false;
  /** @internal */ _protocol: SubprocessProtocol;
  /** @internal */ _loop: SubprocessLoop;
  /** @internal */ _pid: number | null = null;
  /** @internal */ _returncode: number | null = null;
  /** @internal */ _exitWaiters: Future<number>[] | null = [];
  /** @internal Callbacks held until connectionMade (null after). */ _pendingCalls: [(...a: any[]) => unknown, unknown[]][] | null = [];
  /** @internal fd -> its pipe protocol; undefined value: not connected yet. */ _pipes = new Map<number, WriteSubprocessPipeProto | undefined>();
  /** @internal */ _finished = false;
  /** @internal Whether the child is still ours to signal (not yet reaped). */ _alive = false;
  /**
   * @internal Whether every pipe got its transport. Until then no
   * connectionLost can come (asyncio 3.13's _pipes_connected), so the exit
   * alone wakes wait(): a start cancelled half way (Runner.close() cancels
   * every task) must not leave wait() pending forever.
   */ _pipesConnected = false;

  constructor(
    loop: AbstractEventLoop,
    protocol: SubprocessProtocol,
    pipes: { stdin: boolean; stdout: boolean; stderr: boolean },
    waiter: Future<void> | null,
    extra: Record<string, unknown> | undefined,
    start: (self: BaseSubprocessTransport) => StartedChild,
  ) {
    super(extra);
    this._protocol = protocol;
    this._loop = loop as SubprocessLoop;
    if (pipes.stdin) this._pipes.set(0, undefined);
    if (pipes.stdout) this._pipes.set(1, undefined);
    if (pipes.stderr) this._pipes.set(2, undefined);
    let child: StartedChild;
    try {
      child = start(this);
    } catch (exc) {
      this.close();
      throw exc;
    }
    this._pid = child.pid;
    this._alive = true;
    this._extra.subprocess = child.pid;
    if (this._loop.getDebug()) logger.debug(`process created: pid ${child.pid}`);
    const connecting = this._loop.createTask(this.#connectPipes(child, waiter));
    // A task cancelled before its first step never enters the generator's
    // try (Runner.close() cancels every task at once): its catch cannot run.
    connecting.addDoneCallback(() => {
      if (connecting.cancelled()) this.#connectFailed(child, waiter, new CancelledError());
    });
  }

  override toString(): string {
    const info = [this.constructor.name];
    if (this._closed) info.push('closed');
    if (this._pid !== null) info.push(`pid=${this._pid}`);
    if (this._returncode !== null) info.push(`returncode=${this._returncode}`);
    else if (this._pid !== null) info.push('running');
    else info.push('not started');
    for (const [fd, name] of [[0, 'stdin'], [1, 'stdout'], [2, 'stderr']] as const) {
      const p = this._pipes.get(fd);
      if (p?.pipe != null) info.push(`${name}=${String(p.pipe)}`);
    }
    return `<${info.join(' ')}>`;
  }

  setProtocol(protocol: BaseProtocol): void {
    this._protocol = protocol as SubprocessProtocol;
  }

  getProtocol(): BaseProtocol {
    return this._protocol;
  }

  isClosing(): boolean {
    return this._closed;
  }

  /**
   * Closes the pipes and, if the child still runs, kills it (SIGKILL), as
   * asyncio does; connectionLost follows once it is reaped.
   */
  close(): void {
    if (this._closed) return;
    this._closed = true;
    for (const proto of this._pipes.values()) proto?.pipe?.close();
    if (this._pid !== null && this._returncode === null && this._alive) {
      if (this._loop?.getDebug()) logger.warning(`Close running child process: kill ${String(this)}`);
      try {
        this._signal('SIGKILL');
      } catch {
        // Already gone, or not ours to signal (setuid): nothing to do.
      }
    }
  }

  getPid(): number | null {
    return this._pid;
  }

  getReturncode(): number | null {
    return this._returncode;
  }

  getPipeTransport(fd: number): PipeTransport | null {
    return this._pipes.get(fd)?.pipe ?? null;
  }

  /** @throws ProcessLookupError once the transport has finished (asyncio's _check_proc). */
  #checkProc(): void {
    if (this._finished || this._pid === null) throw new ProcessLookupError('the child process has finished', { code: 'ESRCH', errno: 3 });
  }

  sendSignal(signal: number | NodeJS.Signals): void {
    if (typeof signal !== 'number' && typeof signal !== 'string') {
      throw new TypeError(describeArg('signal', 'a signal number or name', signal));
    }
    this.#checkProc();
    // Reaped, not yet reported: the pid may already name another process.
    if (!this._alive) return;
    try {
      this._signal(signal);
    } catch (exc) {
      // asyncio ignores ProcessLookupError (the child exited meanwhile).
      if ((exc as { code?: string })?.code !== 'ESRCH') throw exc;
    }
  }

  terminate(): void {
    this.sendSignal('SIGTERM');
  }

  kill(): void {
    this.sendSignal('SIGKILL');
  }

  /** @internal Signals the child (process.kill semantics: throws ESRCH when gone). */
  abstract _signal(signal: number | NodeJS.Signals): void;

  /**
   * @internal Closes a parent pipe end that no pipe transport took (the
   * connection failed or was cancelled first): nobody else would.
   */
  abstract _closeParentFd(fd: number): void;

  /**
   * Which pipes a connect task got as far as wrapping (its protocol factory
   * runs right before the transport takes the fd): from then on that
   * transport owns the fd and closes it when it is closed.
   */
  #taken = new Set<number>();
  #connectEnded = false;

  *#connectPipes(child: StartedChild, waiter: Future<void> | null): Coroutine<void> {
    const taken = this.#taken;
    try {
      const loop = this._loop;
      const ends = [child.stdin, child.stdout, child.stderr];
      for (let fd = 0; fd < 3; fd++) {
        const end = ends[fd];
        if (end === null) continue;
        const factory = (): WriteSubprocessPipeProto => {
          taken.add(fd);
          return fd === 0 ? new WriteSubprocessPipeProto(this, fd) : new ReadSubprocessPipeProto(this, fd);
        };
        const [, proto] = fd === 0 ? yield* loop.connectWritePipe(factory, end) : yield* loop.connectReadPipe(factory, end);
        this._pipes.set(fd, proto);
        // close() ran while this pipe was connecting, so it could not reach it.
        if (this._closed) proto.pipe?.close();
      }
      loop.callSoon(() => this._protocol.connectionMade(this as unknown as BaseTransport));
      for (const [cb, args] of this._pendingCalls ?? []) loop.callSoon(cb, ...args);
      this._pendingCalls = null;
    } catch (exc) {
      this.#connectFailed(child, waiter, exc);
      return;
    }
    this.#connectEnded = true;
    this._pipesConnected = true;
    if (waiter !== null && !waiter.done()) waiter.setResult(undefined);
  }

  /** The pipes will never all connect: close what no transport took, fail the waiter, let the exit alone finish. */
  #connectFailed(child: StartedChild, waiter: Future<void> | null, exc: unknown): void {
    if (this.#connectEnded) return;
    this.#connectEnded = true;
    ([child.stdin, child.stdout, child.stderr] as const).forEach((fd, i) => {
      if (fd !== null && !this.#taken.has(i)) this._closeParentFd(fd);
    });
    if (waiter !== null && !waiter.done()) {
      // setException refuses a CancelledError: cancel() is how one is set.
      if (exc instanceof CancelledError) waiter.cancel();
      else waiter.setException(exc);
    }
    // As asyncio 3.13: with no connectionLost to come, _tryFinish wakes
    // the exit waiters at the exit instead.
    this._tryFinish();
  }

  /** @internal */
  _call(cb: (...args: any[]) => unknown, ...args: unknown[]): void {
    if (this._pendingCalls !== null) this._pendingCalls.push([cb, args]);
    else this._loop.callSoon(cb, ...args);
  }

  /** @internal */
  _pipeConnectionLost(fd: number, exc: Error | undefined): void {
    this._call((f: number, e: Error | undefined) => this._protocol.pipeConnectionLost(f, e), fd, exc);
    this._tryFinish();
  }

  /** @internal */
  _pipeDataReceived(fd: number, data: Buffer): void {
    this._call((f: number, d: Buffer) => this._protocol.pipeDataReceived(f, d), fd, data);
  }

  /** @internal From the child watcher, once, with the child already reaped. */
  _processExited(returncode: number): void {
    if (this._returncode !== null) return;
    if (this._loop.getDebug()) logger.info(`${String(this)} exited with return code ${returncode}`);
    this._returncode = returncode;
    this._alive = false;
    this._call(() => this._protocol.processExited());
    this._tryFinish();
  }

  /** @internal Resolves with the return code once the child has exited (Process.wait). */
  *_wait(): Coroutine<number> {
    if (this._returncode !== null) return this._returncode;
    const waiter = this._loop.createFuture<number>();
    (this._exitWaiters ??= []).push(waiter);
    return yield* waiter;
  }

  /** @internal */
  _tryFinish(): void {
    if (this._finished || this._returncode === null) return;
    if (!this._pipesConnected) this.#wakeExitWaiters();
    for (const p of this._pipes.values()) if (p === undefined || !p.disconnected) return;
    this._finished = true;
    this._call((e: Error | undefined) => this._callConnectionLost(e), undefined);
  }

  /** @internal */
  _callConnectionLost(exc: Error | undefined): void {
    try {
      this._protocol.connectionLost(exc);
    } finally {
      this.#wakeExitWaiters();
      this._exitWaiters = null;
    }
  }

  /** Resolves the tasks in wait() with the return code. */
  #wakeExitWaiters(): void {
    const waiters = this._exitWaiters ?? [];
    if (this._exitWaiters !== null) this._exitWaiters = [];
    for (const waiter of waiters) {
      if (!waiter.done()) waiter.setResult(this._returncode as number);
    }
  }
}

/** The protocol of the child's stdin pipe: relays loss and flow control to the transport's protocol. */
export class WriteSubprocessPipeProto extends BaseProtocol {
  proc: BaseSubprocessTransport | null;
  readonly fd: number;
  pipe: PipeTransport | null = null;
  disconnected = false;

  constructor(proc: BaseSubprocessTransport, fd: number) {
    super();
    this.proc = proc;
    this.fd = fd;
  }

  override connectionMade(transport: BaseTransport): void {
    this.pipe = transport as PipeTransport;
  }

  override toString(): string {
    return `<${this.constructor.name} fd=${this.fd} pipe=${String(this.pipe)}>`;
  }

  override connectionLost(exc: Error | undefined): void {
    this.disconnected = true;
    this.proc?._pipeConnectionLost(this.fd, exc);
    this.proc = null;
  }

  override pauseWriting(): void {
    this.proc?._protocol.pauseWriting();
  }

  override resumeWriting(): void {
    this.proc?._protocol.resumeWriting();
  }
}

/** The protocol of the child's stdout / stderr pipe. */
export class ReadSubprocessPipeProto extends WriteSubprocessPipeProto {
  dataReceived(data: Buffer): void {
    this.proc?._pipeDataReceived(this.fd, data);
  }

  eofReceived(): boolean | void {
    return undefined;
  }
}
