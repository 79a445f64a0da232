/**
 * Unix pipes and child processes on every loop.
 *
 * Port of the pipe and subprocess parts of CPython Lib/asyncio/unix_events.py
 * (3.14): `_UnixReadPipeTransport`, `_UnixWritePipeTransport`,
 * `_UnixSubprocessTransport`, and the child watchers, reduced to the two
 * this project needs: a pidfd per child where the kernel has pidfd_open
 * (Linux 5.3), else a SIGCHLD listener that polls only our own pids.
 *
 * Everything here is written once, on the loop's `_addReader` /
 * `_addWriter` (a selector key on the selector loops, a re-armed poll op on
 * the io_uring proactor) and the addon's plain read(2)/write(2), so one
 * implementation serves every loop. See docs/subprocess.md.
 */
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { AbstractEventLoop } from './events.js';
import { BrokenPipeError, describeArg, makeOSError, OSError, RuntimeError } from './exceptions.js';
import { _setResultUnlessCancelled, type Future } from './futures.js';
import { logger } from './log.js';
import { binding } from './native.js';
import type { BaseProtocol, Protocol, SubprocessProtocol } from './protocols.js';
import { BaseSubprocessTransport, type StartedChild, type SubprocessTransport } from './base-subprocess.js';
import type { Coroutine } from './coroutines.js';
import type { Task } from './tasks.js';
import { FlowControlTransport, ReadTransport, WriteTransport } from './transports.js';

/** asyncio's constants.LOG_THRESHOLD_FOR_CONNLOST_WRITES. */
const LOG_THRESHOLD_FOR_CONNLOST_WRITES = 5;

/**
 * What connectReadPipe / connectWritePipe take: an fd number, or an object
 * holding one (`fd`, as a node:fs FileHandle, or `fileno()`). The transport
 * owns it from then on and closes it when the connection is lost: through
 * the object's own `close()` when it has one (so a FileHandle never closes
 * a number the kernel has since reused), else the fd itself.
 */
export type PipeLike = number | { readonly fd: number; close?(): unknown } | { fileno(): number; close?(): unknown };

/** @internal The loop surface the transports use (both loop families have it). */
export interface PipeLoop extends AbstractEventLoop {
  _addReader(fd: number, callback: (...args: any[]) => unknown, ...args: unknown[]): unknown;
  _removeReader(fd: number): boolean;
  _addWriter(fd: number, callback: (...args: any[]) => unknown, ...args: unknown[]): unknown;
  _removeWriter(fd: number): boolean;
}

/** The kinds of file a pipe transport accepts (as asyncio: no regular files, they never block). */
type PipeKind = 'fifo' | 'socket' | 'char';

/**
 * @internal One owner of a pipe's fd: `close()` releases it exactly once,
 * through the caller's object when it had a close() of its own.
 */
export class PipeHandle {
  #fd: number;
  readonly kind: PipeKind;
  /** What the caller passed (the `pipe` extra info). */
  readonly object: unknown;
  #closer: (() => unknown) | null;

  constructor(pipe: PipeLike, name = 'pipe') {
    const fd = pipeFd(pipe, name);
    this.kind = pipeKind(fd);
    this.object = pipe;
    const close = typeof pipe === 'object' && pipe !== null ? (pipe as { close?: unknown }).close : undefined;
    this.#closer = typeof close === 'function' ? () => (close as () => unknown).call(pipe) : null;
    // Non-blocking (asyncio's os.set_blocking(fd, False)), close-on-exec,
    // and owned by this environment so a terminating worker closes it.
    const b = binding();
    b.setBlocking(fd, false);
    b.adopt(fd);
    this.#fd = fd;
  }

  /** The fd, or -1 once closed. */
  get fd(): number {
    return this.#fd;
  }

  /** Closes the fd, once, through closeWatchedFd (`loop` watched it). */
  close(loop: PipeLoop): void {
    const fd = this.#fd;
    if (fd < 0) return;
    this.#fd = -1;
    const closer = this.#closer;
    closeWatchedFd(loop, fd, () => {
      const b = binding();
      if (closer === null) {
        b.close(fd);
        return;
      }
      b.release(fd);
      const r = closer() as { catch?: (f: (e: unknown) => void) => unknown } | undefined;
      // FileHandle.close() is a promise: a failure there has nobody to
      // report to but the log.
      if (r !== undefined && r !== null && typeof r.catch === 'function') {
        r.catch((exc) => logger.warning(`closing pipe fd ${fd} failed: ${String(exc)}`));
      }
    });
  }
}

/** @internal What a loop may add to take over the close of an fd it watched (see closeWatchedFd). */
interface FdClosingHook {
  _fdClosing?(fd: number, close: () => void): boolean;
}

/**
 * @internal The one place an fd the loop watched (a pipe end, a pidfd) is
 * closed, after its _removeReader / _removeWriter. On the selector loops
 * removing the key is all the kernel needs, so close(2) follows at once.
 * A loop with operations still in flight on the fd (the io_uring proactor's
 * poll ops) must not see the number reused under them: it defines
 * `_fdClosing(fd, close)`, and returning true means it runs `close` itself
 * once nothing of its own refers to the fd any more.
 */
export function closeWatchedFd(loop: PipeLoop | null, fd: number, close: () => void = () => binding().close(fd)): void {
  const hook = (loop as FdClosingHook | null)?._fdClosing;
  if (typeof hook === 'function' && hook.call(loop, fd, close) === true) return;
  try {
    close();
  } catch (exc) {
    logger.warning(`closing fd ${fd} failed: ${String(exc)}`);
  }
}

function pipeFd(pipe: unknown, name: string): number {
  let fd: unknown = pipe;
  if (typeof pipe === 'object' && pipe !== null) {
    const o = pipe as { fd?: unknown; fileno?: unknown };
    fd = typeof o.fileno === 'function' ? (o.fileno as () => unknown).call(pipe) : o.fd;
  }
  if (typeof fd !== 'number' || !Number.isInteger(fd) || fd < 0) {
    throw new TypeError(describeArg(name, 'a file descriptor, a FileHandle or an object with fd or fileno()', pipe));
  }
  return fd;
}

function pipeKind(fd: number): PipeKind {
  let st: fs.Stats;
  try {
    st = fs.fstatSync(fd);
  } catch (exc) {
    const e = exc as NodeJS.ErrnoException;
    throw makeOSError(`fstat ${e.code ?? 'EBADF'}`, { errno: Math.abs(e.errno ?? 9), code: e.code ?? 'EBADF', syscall: 'fstat' });
  }
  if (st.isFIFO()) return 'fifo';
  if (st.isSocket()) return 'socket';
  if (st.isCharacterDevice()) return 'char';
  // asyncio: ValueError("Pipe transport is for pipes/sockets only.").
  throw new RangeError(`Pipe transport is for pipes, sockets and character devices only (fd ${fd} is not one)`);
}

function toBytes(data: unknown): Uint8Array {
  if (data instanceof Uint8Array) return data;
  if (typeof data === 'string') return Buffer.from(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  throw new TypeError(describeArg('data', 'a bytes-like object (Uint8Array, Buffer) or a string', data));
}

/** The addon's read/write return a negative number (-EAGAIN) when they would block, and throw every other error. */
function wouldBlock(n: number): boolean {
  return n < 0;
}

// ---------------------------------------------------------------- read pipe

/** Bytes read per call at most (asyncio's max_size). */
const MAX_READ = 256 * 1024;
/** A fresh slab once fewer bytes than this are left in the current one. */
const MIN_READ = 64 * 1024;

/**
 * The read end of a pipe, FIFO, character device or socket: asyncio's
 * _UnixReadPipeTransport. dataReceived for each chunk; at EOF
 * eofReceived, then connectionLost(undefined); the fd is closed after
 * connectionLost.
 */
export class UnixReadPipeTransport extends ReadTransport {
  /** @internal */ _loop: PipeLoop;
  /** @internal */ _pipe: PipeHandle | null;
  /** @internal */ _fileno: number;
  /** @internal */ _protocol: Protocol;
  /** @internal */ _closing = false;
  /** @internal */ _paused = false;
  #lostScheduled = false;
  // Reads land in a shared slab; each chunk handed on is a view of it.
  #slab: Buffer = Buffer.alloc(0);
  #slabPos = 0;
  readonly #readReady = (): void => this._readReady();

  constructor(loop: PipeLoop, pipe: PipeHandle, protocol: Protocol, waiter?: Future<void> | null, extra?: Record<string, unknown>) {
    super(extra);
    this._extra.pipe = pipe.object;
    this._loop = loop;
    this._pipe = pipe;
    this._fileno = pipe.fd;
    this._protocol = protocol;
    // Protocol.connectionMade is typed for a Transport; a pipe protocol gets this one.
    loop.callSoon(() => (this._protocol as BaseProtocol).connectionMade(this));
    // Only start reading once connectionMade() has run.
    loop.callSoon(() => {
      if (this.isReading()) this._loop._addReader(this._fileno, this.#readReady);
    });
    if (waiter != null) loop.callSoon(_setResultUnlessCancelled, waiter, undefined);
  }

  override toString(): string {
    const info = [this.constructor.name];
    if (this._pipe === null) info.push('closed');
    else if (this._closing) info.push('closing');
    info.push(`fd=${this._fileno}`);
    if (this._pipe !== null) info.push(this.isReading() ? 'polling' : 'idle');
    return `<${info.join(' ')}>`;
  }

  /** @internal */
  _readReady(): void {
    const fd = this._pipe?.fd ?? -1;
    if (fd < 0 || this._closing) return;
    if (this.#slab.length - this.#slabPos < MIN_READ) {
      this.#slab = Buffer.allocUnsafe(MAX_READ);
      this.#slabPos = 0;
    }
    const start = this.#slabPos;
    let n: number;
    try {
      n = binding().read(fd, this.#slab.subarray(start));
    } catch (exc) {
      this._fatalError(exc, 'Fatal read error on pipe transport');
      return;
    }
    if (wouldBlock(n)) return;
    if (n > 0) {
      this.#slabPos += n;
      this._protocol.dataReceived(this.#slab.subarray(start, start + n));
      return;
    }
    if (this._loop.getDebug()) logger.info(`${String(this)} was closed by peer`);
    this._closing = true;
    this._loop._removeReader(fd);
    this._loop.callSoon(() => this._protocol.eofReceived());
    this.#scheduleLost(undefined);
  }

  isReading(): boolean {
    return !this._paused && !this._closing;
  }

  pauseReading(): void {
    if (!this.isReading()) return;
    this._paused = true;
    this._loop._removeReader(this._fileno);
    if (this._loop.getDebug()) logger.debug(`${String(this)} pauses reading`);
  }

  resumeReading(): void {
    if (this._closing || !this._paused) return;
    this._paused = false;
    this._loop._addReader(this._fileno, this.#readReady);
    if (this._loop.getDebug()) logger.debug(`${String(this)} resumes reading`);
  }

  setProtocol(protocol: BaseProtocol): void {
    this._protocol = protocol as Protocol;
  }

  getProtocol(): BaseProtocol {
    return this._protocol;
  }

  isClosing(): boolean {
    return this._closing;
  }

  close(): void {
    if (!this._closing) this._close(undefined);
  }

  /** @internal */
  _fatalError(exc: unknown, message = 'Fatal error on pipe transport'): void {
    // EIO is how a tty's read end reports its other side went away.
    if (exc instanceof OSError && exc.code === 'EIO') {
      if (this._loop.getDebug()) logger.debug(`${String(this)}: ${message}: ${String(exc)}`);
    } else {
      this._loop.callExceptionHandler({ message, exception: exc, transport: this, protocol: this._protocol });
    }
    this._close(exc as Error);
  }

  /** @internal */
  _close(exc: Error | undefined): void {
    this._closing = true;
    this._loop._removeReader(this._fileno);
    this.#scheduleLost(exc);
  }

  #scheduleLost(exc: Error | undefined): void {
    if (this.#lostScheduled) return;
    this.#lostScheduled = true;
    this._loop.callSoon(() => this._callConnectionLost(exc));
  }

  /** @internal Exactly once: tell the protocol, then close the fd. */
  _callConnectionLost(exc: Error | undefined): void {
    const pipe = this._pipe;
    if (pipe === null) return;
    try {
      this._protocol.connectionLost(exc);
    } finally {
      this._pipe = null;
      pipe.close(this._loop);
    }
  }
}

// ---------------------------------------------------------------- write pipe

const flow = FlowControlTransport.prototype;

/**
 * The write end of a pipe, FIFO, character device or socket: asyncio's
 * _UnixWritePipeTransport. Flow control and water marks as the socket
 * transports (FlowControlTransport's, shared); writeEof() closes the fd
 * once the buffer is flushed. The reader going away is seen at once on a
 * pipe, FIFO or socket (the fd is also watched for reading, where only an
 * error or hang-up can show): connectionLost(undefined), or a
 * BrokenPipeError when data was still buffered. A write into a pipe whose
 * reader is gone fails with EPIPE (Node ignores SIGPIPE):
 * connectionLost(BrokenPipeError).
 */
export class UnixWritePipeTransport extends WriteTransport {
  /** @internal */ _loop: PipeLoop;
  /** @internal */ _pipe: PipeHandle | null;
  /** @internal */ _fileno: number;
  /** @internal */ _protocol: BaseProtocol;
  /** @internal */ _closing = false;
  /** @internal */ _connLost = 0;
  /** @internal */ _buffer: Uint8Array[] = [];
  /** @internal */ _bufferSize = 0;
  /** @internal */ _protocolPaused = false;
  /** @internal */ _highWater = 64 * 1024;
  /** @internal */ _lowWater = 16 * 1024;
  #lostScheduled = false;
  readonly #writeReady = (): void => this._writeReady();
  readonly #readReady = (): void => this._readReady();

  constructor(loop: PipeLoop, pipe: PipeHandle, protocol: BaseProtocol, waiter?: Future<void> | null, extra?: Record<string, unknown>) {
    super(extra);
    this._extra.pipe = pipe.object;
    this._loop = loop;
    this._pipe = pipe;
    this._fileno = pipe.fd;
    this._protocol = protocol;
    loop.callSoon(() => this._protocol.connectionMade(this));
    // The reader trick: a character device (a tty) can be readable in its
    // own right, so only pipes, FIFOs and sockets are watched this way.
    if (pipe.kind !== 'char') {
      loop.callSoon(() => {
        if (this._pipe !== null && !this._closing) this._loop._addReader(this._fileno, this.#readReady);
      });
    }
    if (waiter != null) loop.callSoon(_setResultUnlessCancelled, waiter, undefined);
  }

  override toString(): string {
    const info = [this.constructor.name];
    if (this._pipe === null) info.push('closed');
    else if (this._closing) info.push('closing');
    info.push(`fd=${this._fileno}`);
    if (this._pipe !== null) {
      info.push(this._bufferSize > 0 ? 'polling' : 'idle');
      info.push(`bufsize=${this._bufferSize}`);
    }
    return `<${info.join(' ')}>`;
  }

  getWriteBufferSize(): number {
    return this._bufferSize;
  }

  /** @internal */ _maybePauseProtocol(): void {
    flow._maybePauseProtocol.call(this as unknown as FlowControlTransport);
  }
  /** @internal */ _maybeResumeProtocol(): void {
    flow._maybeResumeProtocol.call(this as unknown as FlowControlTransport);
  }
  getWriteBufferLimits(): [low: number, high: number] {
    return flow.getWriteBufferLimits.call(this as unknown as FlowControlTransport);
  }
  setWriteBufferLimits(high?: number, low?: number): void {
    flow.setWriteBufferLimits.call(this as unknown as FlowControlTransport, high, low);
  }

  /** @internal The read end was closed (only an error or hang-up makes this fd readable). */
  _readReady(): void {
    if (this._loop.getDebug()) logger.info(`${String(this)} was closed by peer`);
    if (this._bufferSize > 0) this._close(new BrokenPipeError('Broken pipe', { errno: 32, code: 'EPIPE', syscall: 'write' }));
    else this._close(undefined);
  }

  write(data: Uint8Array | string): void {
    this._write(toBytes(data), true);
  }

  /**
   * @internal write() without the defensive copy of what cannot go at
   * once, for callers that own `bytes` until it is flushed (communicate()).
   */
  _write(bytes: Uint8Array, copy: boolean): void {
    if (bytes.length === 0) return;
    if (this._connLost || this._closing) {
      if (this._connLost >= LOG_THRESHOLD_FOR_CONNLOST_WRITES) {
        logger.warning('pipe closed by peer or os.write(pipe, data) raised exception.');
      }
      this._connLost++;
      return;
    }
    let rest = bytes;
    if (this._bufferSize === 0) {
      // Try at once: usually it all goes and nothing is buffered.
      let n: number;
      try {
        n = binding().write(this._fileno, bytes);
      } catch (exc) {
        this._connLost++;
        this._fatalError(exc, 'Fatal write error on pipe transport');
        return;
      }
      if (n === bytes.length) return;
      if (n > 0) rest = bytes.subarray(n);
      this._loop._addWriter(this._fileno, this.#writeReady);
    }
    // The caller may reuse its buffer after write() returns: keep a copy.
    this._buffer.push(copy ? Buffer.from(rest) : rest);
    this._bufferSize += rest.length;
    this._maybePauseProtocol();
  }

  /** @internal */
  _writeReady(): void {
    const b = binding();
    while (this._buffer.length > 0) {
      // Small chunks go together, as asyncio's b''.join: one write(2).
      if (this._buffer.length > 1 && this._buffer[0].length < MIN_READ) {
        const parts: Uint8Array[] = [];
        let size = 0;
        while (this._buffer.length > 0 && size < MIN_READ) {
          const p = this._buffer.shift()!;
          parts.push(p);
          size += p.length;
        }
        this._buffer.unshift(Buffer.concat(parts, size));
      }
      const head = this._buffer[0];
      let n: number;
      try {
        n = b.write(this._fileno, head);
      } catch (exc) {
        this._connLost++;
        // _fatalError does not remove the writer once the buffer is empty.
        this._loop._removeWriter(this._fileno);
        this._buffer = [];
        this._bufferSize = 0;
        this._fatalError(exc, 'Fatal write error on pipe transport');
        return;
      }
      if (n < 0) return; // full: wait for the next writable
      this._bufferSize -= n;
      if (n < head.length) {
        this._buffer[0] = head.subarray(n);
        this._maybeResumeProtocol();
        return;
      }
      this._buffer.shift();
    }
    this._loop._removeWriter(this._fileno);
    this._maybeResumeProtocol(); // may write more
    if (this._bufferSize === 0 && this._closing) {
      this._loop._removeReader(this._fileno);
      this._callConnectionLost(undefined);
    }
  }

  canWriteEof(): boolean {
    return true;
  }

  /** Closes the pipe once the buffer is flushed: the reader sees EOF. */
  writeEof(): void {
    if (this._closing) return;
    if (this._pipe === null) throw new RuntimeError('writeEof() on a closed pipe transport');
    this._closing = true;
    if (this._bufferSize === 0) {
      this._loop._removeReader(this._fileno);
      this.#scheduleLost(undefined);
    }
  }

  setProtocol(protocol: BaseProtocol): void {
    this._protocol = protocol;
  }

  getProtocol(): BaseProtocol {
    return this._protocol;
  }

  isClosing(): boolean {
    return this._closing;
  }

  /** Flushes the buffer, then closes: writeEof() is all a pipe needs. */
  close(): void {
    if (this._pipe !== null && !this._closing) this.writeEof();
  }

  /** Closes at once, dropping buffered data; connectionLost(undefined) follows. */
  abort(): void {
    this._close(undefined);
  }

  /** @internal */
  _fatalError(exc: unknown, message = 'Fatal error on pipe transport'): void {
    // OS errors (EPIPE: the reader went away) are the peer's doing: they
    // reach the protocol through connectionLost only.
    if (exc instanceof OSError) {
      if (this._loop.getDebug()) logger.debug(`${String(this)}: ${message}: ${String(exc)}`);
    } else {
      this._loop.callExceptionHandler({ message, exception: exc, transport: this, protocol: this._protocol });
    }
    this._close(exc as Error);
  }

  /** @internal */
  _close(exc: Error | undefined): void {
    if (this._pipe === null) return;
    this._closing = true;
    if (this._bufferSize > 0) this._loop._removeWriter(this._fileno);
    this._buffer = [];
    this._bufferSize = 0;
    this._loop._removeReader(this._fileno);
    this.#scheduleLost(exc);
  }

  #scheduleLost(exc: Error | undefined): void {
    if (this.#lostScheduled) return;
    this.#lostScheduled = true;
    this._loop.callSoon(() => this._callConnectionLost(exc));
  }

  /** @internal Exactly once: tell the protocol, then close the fd. */
  _callConnectionLost(exc: Error | undefined): void {
    const pipe = this._pipe;
    if (pipe === null) return;
    this.#lostScheduled = true;
    try {
      this._protocol.connectionLost(exc);
    } finally {
      this._pipe = null;
      pipe.close(this._loop);
    }
  }
}

// ---------------------------------------------------------------- loop methods

function checkFactory(f: unknown): void {
  if (typeof f !== 'function') throw new TypeError(describeArg('protocolFactory', 'a function returning a protocol', f));
}

function checkPipeArg(pipe: unknown): void {
  pipeFd(pipe, 'pipe');
}

/**
 * @internal loop.connectReadPipe: wraps the read end of `pipe` in a
 * UnixReadPipeTransport and a protocol from `protocolFactory`; resolves with
 * `[transport, protocol]` once connectionMade has run.
 */
export function connectReadPipe<P extends BaseProtocol>(loop: AbstractEventLoop, protocolFactory: () => P, pipe: PipeLike): Task<[UnixReadPipeTransport, P]> {
  checkFactory(protocolFactory);
  checkPipeArg(pipe);
  return loop.createTask(connectGen(loop as PipeLoop, protocolFactory, pipe, 'read')) as Task<[UnixReadPipeTransport, P]>;
}

/** @internal loop.connectWritePipe: as connectReadPipe, for the write end. */
export function connectWritePipe<P extends BaseProtocol>(loop: AbstractEventLoop, protocolFactory: () => P, pipe: PipeLike): Task<[UnixWritePipeTransport, P]> {
  checkFactory(protocolFactory);
  checkPipeArg(pipe);
  return loop.createTask(connectGen(loop as PipeLoop, protocolFactory, pipe, 'write')) as Task<[UnixWritePipeTransport, P]>;
}

function* connectGen<P extends BaseProtocol>(loop: PipeLoop, protocolFactory: () => P, pipe: PipeLike, which: 'read' | 'write'): Coroutine<[UnixReadPipeTransport | UnixWritePipeTransport, P]> {
  const protocol = protocolFactory();
  const waiter = loop.createFuture<void>();
  const handle = new PipeHandle(pipe);
  const transport =
    which === 'read'
      ? new UnixReadPipeTransport(loop, handle, protocol as unknown as Protocol, waiter)
      : new UnixWritePipeTransport(loop, handle, protocol, waiter);
  try {
    yield* waiter;
  } catch (exc) {
    transport.close();
    throw exc;
  }
  return [transport, protocol];
}

// ---------------------------------------------------------------- child watching

/**
 * Tells `onExit(returncode)` on `loop` once child `pid` has exited, the
 * child already reaped. Reaping is always waitpid(pid, WNOHANG) for that
 * pid alone: node:child_process's children are libuv's to reap.
 *
 * - pidfd (Linux 5.3+): the pidfd is watched for reading on the loop
 *   itself (a selector key, or a poll op on io_uring); readable = exited.
 * - Fallback, where pidfd_open fails (ENOSYS, or EPERM under a seccomp
 *   filter) or AIONODE_TEST_NO_PIDFD=1: the process-wide SIGCHLD listener
 *   below plus a slow safety poll.
 */
function watchChild(loop: PipeLoop, pid: number, onExit: (returncode: number) => void): void {
  const b = binding();
  const pidfd = process.env.AIONODE_TEST_NO_PIDFD === '1' ? -38 /* ENOSYS */ : b.pidfdOpen(pid);
  if (pidfd < 0) {
    fallback.add(loop, pid, onExit);
    return;
  }
  let mine = pidfdChildren.get(loop);
  if (mine === undefined) pidfdChildren.set(loop, (mine = new Map()));
  const onReady = (): void => {
    const rc = reapOne(pid);
    if (rc === null) return; // not yet (spurious wakeup): stay registered
    loop._removeReader(pidfd);
    closeWatchedFd(loop, pidfd);
    mine.delete(pid);
    onExit(rc);
  };
  mine.set(pid, pidfd);
  loop._addReader(pidfd, onReady);
}

// Children watched through a pidfd on each loop: pid -> pidfd.
const pidfdChildren = new WeakMap<PipeLoop, Map<number, number>>();

/**
 * @internal The loop is closing: its children that still run are handed to
 * the process-wide fallback watcher, which reaps them when they exit (and
 * tells no one: their loop is gone), so a loop closed before its children
 * leaves no zombie. asyncio leaves them to Popen's finalizer.
 */
export function _orphanChildren(loop: AbstractEventLoop): void {
  const mine = pidfdChildren.get(loop as PipeLoop);
  if (mine === undefined) return;
  pidfdChildren.delete(loop as PipeLoop);
  const b = binding();
  for (const [pid, pidfd] of mine) {
    (loop as PipeLoop)._removeReader(pidfd);
    closeWatchedFd(loop as PipeLoop, pidfd);
    fallback.add(loop, pid, () => {});
  }
}

/** The child's return code once reaped, null while it runs; 255 (logged) if someone else reaped it. */
function reapOne(pid: number): number | null {
  try {
    return binding().reap(pid);
  } catch (exc) {
    // asyncio's watchers do the same when the status was taken elsewhere.
    logger.warning(`Unknown child process pid ${pid}, will report returncode 255 (${String(exc)})`);
    return 255;
  }
}

interface FallbackEntry {
  loop: AbstractEventLoop;
  onExit: (returncode: number) => void;
}

/**
 * The SIGCHLD watcher: asyncio's SafeChildWatcher. On each SIGCHLD
 * (Node's process.on, which runs beside libuv's own SIGCHLD handling for
 * node:child_process) every one of OUR live pids is polled with
 * waitpid(pid, WNOHANG); never waitpid(-1). SIGCHLDs coalesce, which a
 * sweep of every pid absorbs. A safety poll every 100 ms covers what a
 * signal cannot: worker threads (process.on signals reach the main thread
 * only) and a child that exits between spawn and registration (the sweep
 * at registration covers that too). Listener and timer exist only while
 * fallback children live.
 */
const fallback = {
  children: new Map<number, FallbackEntry>(),
  listener: null as (() => void) | null,
  timer: null as NodeJS.Timeout | null,

  add(loop: AbstractEventLoop, pid: number, onExit: (returncode: number) => void): void {
    this.children.set(pid, { loop, onExit });
    if (this.listener === null) {
      this.listener = () => this.sweep();
      try {
        process.on('SIGCHLD', this.listener);
      } catch {
        // No signal delivery here (some workers): the safety poll does it.
      }
      this.timer = setInterval(() => this.sweep(), 100);
      this.timer.unref();
    }
    this.sweep();
  },

  sweep(): void {
    for (const [pid, entry] of this.children) {
      const rc = reapOne(pid);
      if (rc === null) continue;
      this.children.delete(pid);
      // At once, as the pidfd path does: from the reap on, the pid may name
      // another process, and the transport must stop signalling it now.
      // (onExit only queues the protocol's callbacks on the loop.)
      if (entry.loop.isClosed()) continue;
      try {
        entry.onExit(rc);
      } catch (exc) {
        entry.loop.callExceptionHandler({ message: 'Unknown exception in SIGCHLD handler', exception: exc });
      }
    }
    if (this.children.size === 0 && this.listener !== null) {
      process.removeListener('SIGCHLD', this.listener);
      this.listener = null;
      if (this.timer !== null) clearInterval(this.timer);
      this.timer = null;
    }
  },
};

/** @internal For tests: how many children the SIGCHLD fallback watches, and whether its listener is installed. */
export function _fallbackWatcherState(): { children: number; listening: boolean } {
  return { children: fallback.children.size, listening: fallback.listener !== null };
}

// ---------------------------------------------------------------- subprocess transport

/** subprocess.PIPE: a new pipe to the child. */
export const PIPE = -1;
/** subprocess.STDOUT: stderr goes where stdout goes. */
export const STDOUT = -2;
/** subprocess.DEVNULL: /dev/null. */
export const DEVNULL = -3;

/** One of the child's stdio: inherit (undefined/null), PIPE, STDOUT (stderr only), DEVNULL, an fd, or an object holding one. */
export type StdioOption = null | undefined | number | { readonly fd: number } | { fileno(): number };

/** Options of subprocessExec / subprocessShell (and of createSubprocessExec / createSubprocessShell). */
export interface SubprocessOptions {
  stdin?: StdioOption;
  stdout?: StdioOption;
  stderr?: StdioOption;
  /** The child's working directory (a string or URL path). */
  cwd?: string | URL | null;
  /** The child's environment (values must be strings); default: process.env. */
  env?: Record<string, string | undefined> | null;
  /** Further fds (>= 3) the child inherits at the same numbers; every other fd >= 3 is closed in it. */
  passFds?: readonly number[];
  /** setsid() in the child: a new session (and process group). */
  startNewSession?: boolean;
  /** setpgid(0, processGroup) in the child: 0 makes a new group led by the child. */
  processGroup?: number | null;
  // Accepted only with asyncio's fixed values (bytes only, unbuffered):
  universalNewlines?: boolean;
  text?: boolean;
  encoding?: null;
  errors?: null;
  bufsize?: number;
  shell?: boolean;
}

const KNOWN_OPTIONS = new Set([
  'stdin', 'stdout', 'stderr', 'cwd', 'env', 'passFds', 'startNewSession', 'processGroup',
  'universalNewlines', 'text', 'encoding', 'errors', 'bufsize', 'shell',
]);

/**
 * asyncio's checks in subprocess_exec / subprocess_shell (ValueError
 * there: RangeError here, with the same text), plus unknown option names
 * (Popen's TypeError for an unexpected keyword).
 */
export function _checkSubprocessOptions(options: unknown, shell: boolean, extra: readonly string[] = []): SubprocessOptions {
  if (options === undefined || options === null) return {};
  if (typeof options !== 'object') throw new TypeError(describeArg('options', 'an options object', options));
  for (const key of Object.keys(options)) {
    if (!KNOWN_OPTIONS.has(key) && !extra.includes(key)) {
      throw new TypeError(`Unknown subprocess option ${JSON.stringify(key)} (known: ${[...KNOWN_OPTIONS, ...extra].join(', ')})`);
    }
  }
  const o = options as SubprocessOptions;
  if (o.universalNewlines) throw new RangeError('universal_newlines must be False');
  if (o.shell !== undefined && o.shell !== shell) throw new RangeError(shell ? 'shell must be True' : 'shell must be False');
  if (o.bufsize !== undefined && o.bufsize !== 0) throw new RangeError('bufsize must be 0');
  if (o.text) throw new RangeError('text must be False');
  if (o.encoding != null) throw new RangeError('encoding must be None');
  if (o.errors != null) throw new RangeError('errors must be None');
  return o;
}

/** The parent's view of a spawn in progress: fds to close after it, the parent's pipe ends. */
interface StdioPlan {
  child: [number, number, number];
  /** Close the child-side fds this process opened, once the child has them (pipe ends are the addon's, /dev/null is node:fs's). */
  closers: (() => void)[];
  parent: { stdin: number | null; stdout: number | null; stderr: number | null };
}

/** EBADF naming the option when `fd` is not open (the same error native/spawn.cc's own check gives). */
function checkOpen(fd: number, name: string): void {
  try {
    fs.fstatSync(fd);
  } catch (exc) {
    if ((exc as NodeJS.ErrnoException).code !== 'EBADF') throw exc;
    throw makeOSError(`${name}: fd ${fd} is not open`, { errno: 9, code: 'EBADF', syscall: 'fcntl' });
  }
}

function stdioFd(value: unknown, name: string): number {
  if (typeof value === 'number') {
    if (!Number.isInteger(value) || value < 0) {
      throw new RangeError(describeArg(name, 'PIPE, STDOUT (stderr only), DEVNULL, a file descriptor or an object with fd', value));
    }
    return value;
  }
  return pipeFd(value, name);
}

/**
 * The capacity asked for the child's pipes: 1 MiB (Linux' default
 * fs.pipe-max-size) instead of 64 KiB moves a megabyte per loop pass
 * instead of 64 KiB. Pages are only allocated as data is buffered.
 */
const CHILD_PIPE_SIZE = 1 << 20;

function planStdio(o: SubprocessOptions): StdioPlan {
  const b = binding();
  const plan: StdioPlan = { child: [-1, -1, -1], closers: [], parent: { stdin: null, stdout: null, stderr: null } };
  let devnull = -1;
  const openDevnull = (): number => {
    if (devnull < 0) {
      devnull = fs.openSync('/dev/null', 'r+');
      const fd = devnull;
      plan.closers.push(() => fs.closeSync(fd));
    }
    return devnull;
  };
  const names = ['stdin', 'stdout', 'stderr'] as const;
  // The caller's own fds first, before any pipe is made: a closed number
  // given here would otherwise be reused by one of our pipes, and the
  // child would get our pipe instead of an error.
  const given = names.map((name) => {
    const v = o[name];
    if (v == null || v === PIPE || v === DEVNULL || v === STDOUT) return -1;
    const fd = stdioFd(v, name);
    checkOpen(fd, name);
    return fd;
  });
  try {
    for (let i = 0; i < 3; i++) {
      const name = names[i];
      const v = o[name];
      if (given[i] >= 0) {
        plan.child[i] = given[i];
      } else if (v === PIPE) {
        // The child reads from its stdin and writes to the other two.
        const [r, w] = b.pipe(CHILD_PIPE_SIZE);
        const [mine, theirs] = i === 0 ? [w, r] : [r, w];
        plan.child[i] = theirs;
        plan.closers.push(() => b.close(theirs));
        plan.parent[name] = mine;
      } else if (v === DEVNULL) {
        plan.child[i] = openDevnull();
      } else if (v === STDOUT) {
        if (i !== 2) throw new RangeError(describeArg(name, 'PIPE, DEVNULL, a file descriptor or an object with fd (STDOUT is for stderr)', v));
        // An inherited stdout (-1) means the parent's own fd 1.
        plan.child[2] = plan.child[1] >= 0 ? plan.child[1] : 1;
      }
    }
  } catch (exc) {
    closePlan(plan, true);
    throw exc;
  }
  return plan;
}

/** Closes the child-side fds (after the spawn), and with `all` the parent's ends too (spawn failed). */
function closePlan(plan: StdioPlan, all: boolean): void {
  for (const close of plan.closers) {
    try {
      close();
    } catch {
      // Closing an fd we opened a moment ago cannot fail in a way anyone could act on.
    }
  }
  plan.closers = [];
  if (!all) return;
  const b = binding();
  for (const fd of [plan.parent.stdin, plan.parent.stdout, plan.parent.stderr]) {
    if (fd !== null) b.close(fd);
  }
  plan.parent = { stdin: null, stdout: null, stderr: null };
}

function checkString(v: unknown, name: string): string {
  if (typeof v !== 'string') throw new TypeError(describeArg(name, 'a string', v));
  if (v.includes('\0')) throw new RangeError(describeArg(name, 'a string without NUL characters', v));
  return v;
}

function envList(env: SubprocessOptions['env']): string[] {
  const source = env ?? process.env;
  if (typeof source !== 'object') throw new TypeError(describeArg('env', 'an object of strings', env));
  const out: string[] = [];
  for (const [k, v] of Object.entries(source)) {
    if (v === undefined) continue;
    if (typeof v !== 'string') throw new TypeError(describeArg(`env.${k}`, 'a string', v));
    if (k === '' || k.includes('=') || k.includes('\0')) throw new RangeError(`illegal environment variable name ${JSON.stringify(k)}`);
    if (v.includes('\0')) throw new RangeError(describeArg(`env.${k}`, 'a string without NUL characters', v));
    out.push(`${k}=${v}`);
  }
  return out;
}

/** The paths execve tries: the program itself when it has a '/', else each PATH entry (the child's PATH, as Python). */
function execCandidates(program: string, env: SubprocessOptions['env']): string[] {
  if (program.includes('/')) return [program];
  const source = env ?? process.env;
  const path = typeof source.PATH === 'string' ? source.PATH : '/bin:/usr/bin';
  return path.split(':').map((dir) => (dir === '' ? program : `${dir.replace(/\/+$/, '')}/${program}`));
}

/**
 * The error of a failed spawn. `index` says which input the failure is
 * about: the stdio slot (0..2) for 'dup2', the passFds entry for 'fcntl'.
 */
function spawnError(errno: number, step: string, index: number, program: string, argv: readonly string[], cwd: string | null, stdio: readonly number[], passFds: readonly number[]): OSError {
  const code = binding().errnoName(errno);
  let err: OSError;
  // EBADF with an index: the parent's check before the fork found an fd
  // the caller named closed (or never open).
  let badFd: [string, number | undefined] | null = null;
  if (code === 'EBADF' && index >= 0 && step === 'dup2') badFd = [['stdin', 'stdout', 'stderr'][index], stdio[index]];
  if (code === 'EBADF' && index >= 0 && step === 'fcntl') badFd = ['passFds', passFds[index]];
  if (badFd !== null && badFd[1] !== undefined) {
    err = makeOSError(`${badFd[0]}: fd ${badFd[1]} is not open`, { errno, code, syscall: 'fcntl' });
  } else if (step === 'chdir') {
    err = makeOSError(`spawn ${program} ${code}: cannot change to directory ${JSON.stringify(cwd)}`, { errno, code, syscall: 'chdir' });
    Object.assign(err, { path: cwd, filename: cwd });
  } else if (step === 'execve') {
    // Node's own wording for the same failure.
    err = makeOSError(`spawn ${program} ${code}`, { errno, code, syscall: `spawn ${program}` });
    Object.assign(err, { path: program, filename: program });
  } else if (step === 'fork' || step === 'spawn') {
    err = makeOSError(`spawn ${program} ${code}`, { errno, code, syscall: 'spawn' });
  } else {
    err = makeOSError(`spawn ${program} ${code}: ${step} failed in the child`, { errno, code, syscall: step });
  }
  Object.assign(err, { spawnargs: argv.slice(1) });
  return err;
}

/** @internal Spawns `argv` as `_start` of UnixSubprocessTransport does: the child and the parent's pipe ends. */
function spawnChild(argv: readonly string[], candidates: readonly string[], o: SubprocessOptions): StartedChild {
  const env = envList(o.env);
  let cwd: string | null = null;
  if (o.cwd != null) cwd = o.cwd instanceof URL ? fileURLToPathSafe(o.cwd) : checkString(o.cwd, 'cwd');
  const passFds = o.passFds ?? [];
  if (!Array.isArray(passFds)) throw new TypeError(describeArg('passFds', 'an array of file descriptors', passFds));
  passFds.forEach((fd, i) => {
    if (!Number.isInteger(fd) || fd < 3) throw new RangeError(describeArg(`passFds[${i}]`, 'a file descriptor >= 3', fd));
  });
  for (const fd of passFds) checkOpen(fd, 'passFds');
  // The child keeps them in a fixed table (it may not allocate).
  if (passFds.length > 255) throw new RangeError(describeArg('passFds', 'at most 255 file descriptors', `${passFds.length} of them`));
  const newSession = o.startNewSession ?? false;
  if (typeof newSession !== 'boolean') throw new TypeError(describeArg('startNewSession', 'a boolean', newSession));
  const group = o.processGroup ?? -1;
  if (!Number.isInteger(group) || group < -1) throw new RangeError(describeArg('processGroup', 'a process group id (0: a new group)', o.processGroup));
  const plan = planStdio(o);
  const failure: unknown[] = [];
  let pid: number;
  try {
    pid = binding().spawn(candidates, argv, env, cwd, plan.child, passFds, newSession, group, failure);
  } catch (exc) {
    closePlan(plan, true);
    throw exc;
  }
  if (pid < 0) {
    closePlan(plan, true);
    throw spawnError(-pid, String(failure[0]), Number(failure[1]), argv[0], argv, cwd, plan.child, passFds);
  }
  closePlan(plan, false);
  return { pid, ...plan.parent };
}

function fileURLToPathSafe(u: URL): string {
  if (u.protocol !== 'file:') throw new TypeError(describeArg('cwd', 'a path string or a file: URL', u.href));
  return fileURLToPath(u);
}

/**
 * asyncio's _UnixSubprocessTransport: a child spawned natively (see
 * native/spawn.cc), watched through its pidfd or the SIGCHLD fallback.
 */
export class UnixSubprocessTransport extends BaseSubprocessTransport {
  constructor(
    loop: PipeLoop,
    protocol: SubprocessProtocol,
    argv: readonly string[],
    candidates: readonly string[],
    options: SubprocessOptions,
    waiter: Future<void> | null,
    extra?: Record<string, unknown>,
  ) {
    const o = options;
    super(loop, protocol, { stdin: o.stdin === PIPE, stdout: o.stdout === PIPE, stderr: o.stderr === PIPE }, waiter, extra, () =>
      spawnChild(argv, candidates, o),
    );
  }

  /** @internal */
  _signal(signal: number | NodeJS.Signals): void {
    process.kill(this._pid as number, signal);
  }

  /** @internal A parent pipe end no loop ever watched: a plain close. */
  _closeParentFd(fd: number): void {
    try {
      binding().close(fd);
    } catch (exc) {
      logger.warning(`closing pipe fd ${fd} failed: ${String(exc)}`);
    }
  }
}

function* makeSubprocessTransport<P extends SubprocessProtocol>(
  loop: PipeLoop,
  protocolFactory: () => P,
  argv: string[],
  candidates: string[],
  options: SubprocessOptions,
): Coroutine<[SubprocessTransport, P]> {
  const protocol = protocolFactory();
  const waiter = loop.createFuture<void>();
  const transport = new UnixSubprocessTransport(loop, protocol, argv, candidates, options, waiter);
  watchChild(loop, transport.getPid() as number, (rc) => transport._processExited(rc));
  try {
    yield* waiter;
  } catch (exc) {
    transport.close();
    yield* transport._wait();
    throw exc;
  }
  return [transport, protocol];
}

/**
 * @internal loop.subprocessExec: runs `program` with `args` (argv[0] is
 * `program`); resolves with `[transport, protocol]` once the pipes are
 * connected and connectionMade has run.
 */
export function subprocessExec<P extends SubprocessProtocol>(
  loop: AbstractEventLoop,
  protocolFactory: () => P,
  program: string,
  args: readonly string[] = [],
  options?: SubprocessOptions,
): Task<[SubprocessTransport, P]> {
  checkFactory(protocolFactory);
  checkString(program, 'program');
  if (!Array.isArray(args)) throw new TypeError(describeArg('args', 'an array of strings', args));
  args.forEach((a, i) => checkString(a, `args[${i}]`));
  const o = _checkSubprocessOptions(options, false);
  const argv = [program, ...args];
  return loop.createTask(makeSubprocessTransport(loop as PipeLoop, protocolFactory, argv, execCandidates(program, o.env), o)) as Task<[SubprocessTransport, P]>;
}

/** @internal loop.subprocessShell: runs `cmd` with /bin/sh -c. */
export function subprocessShell<P extends SubprocessProtocol>(
  loop: AbstractEventLoop,
  protocolFactory: () => P,
  cmd: string,
  options?: SubprocessOptions,
): Task<[SubprocessTransport, P]> {
  checkFactory(protocolFactory);
  // asyncio: ValueError("cmd must be a string"); a TypeError in JS terms.
  if (typeof cmd !== 'string') throw new TypeError(describeArg('cmd', 'a string', cmd));
  if (cmd.includes('\0')) throw new RangeError(describeArg('cmd', 'a string without NUL characters', cmd));
  const o = _checkSubprocessOptions(options, true);
  const argv = ['/bin/sh', '-c', cmd];
  return loop.createTask(makeSubprocessTransport(loop as PipeLoop, protocolFactory, argv, ['/bin/sh'], o)) as Task<[SubprocessTransport, P]>;
}
