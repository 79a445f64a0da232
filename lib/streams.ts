/**
 * Stream-based networking: StreamReader, StreamWriter and the helpers that open them.
 *
 * Port of CPython Lib/asyncio/streams.py (3.14), with readuntil's several
 * separators (3.13) and drain's extra loop pass on a closing transport
 * (3.12). Every waiting method (read, readline, readexactly, readuntil,
 * drain, waitClosed, startTls, openConnection, startServer, ...) is a
 * generator underneath, wrapped with `_suspendable`, so both kinds of
 * coroutine wait on it (`await` or `yield*`) and see cancellation where
 * asyncio's do; each also takes `{ signal }`. Bytes are Node Buffers;
 * strings written or given as separators are UTF-8.
 */
import { inspect } from 'node:util';
import type { CreateConnectionOptions, CreateServerOptions, Server } from './base-events.js';
import { isCoroutine, isThenable, type Coroutine } from './coroutines.js';
import { getEventLoop, getRunningLoop, type AbstractEventLoop } from './events.js';
import {
  CancelledError,
  ConnectionResetError,
  IncompleteReadError,
  LimitOverrunError,
  RuntimeError,
  describeArg,
} from './exceptions.js';
import type { Future } from './futures.js';
import { _remove, _signalOf, _throwIfAborted } from './locks.js';
import { logger } from './log.js';
import { Protocol } from './protocols.js';
import { _bindSignal, _suspendable, sleep, type SignalOptions, type Sleep, type Task } from './tasks.js';
import type { Transport } from './transports.js';

/** The default `limit` of a StreamReader: 64 KiB (asyncio's _DEFAULT_LIMIT). */
const DEFAULT_LIMIT = 2 ** 16;

const NEWLINE = Buffer.from('\n');
const EMPTY = Buffer.alloc(0);

/** A separator for readuntil: bytes, or a string (UTF-8). */
export type Separator = Uint8Array | string;

/**
 * Called for each client of a stream server with its reader and writer.
 * A plain function runs as a callback; an async function, a generator
 * function, or a function returning a coroutine runs as a Task.
 */
export type ClientConnectedCallback = (
  reader: StreamReader,
  writer: StreamWriter,
) => void | PromiseLike<unknown> | Generator<any, unknown, any>;

/** Options shared by the stream helpers. */
export interface StreamOptions extends SignalOptions {
  /**
   * The StreamReader's limit in bytes (64 KiB by default): the longest line
   * readline/readuntil accept, and half the buffer size that pauses reading.
   */
  limit?: number;
}

/** Options of {@link openConnection}: createConnection's, plus `limit` and `signal`. */
export type OpenConnectionOptions = CreateConnectionOptions & StreamOptions;
/** Options of {@link startServer}: createServer's, plus `limit` and `signal`. */
export type StartServerOptions = CreateServerOptions & StreamOptions;
/** Options of {@link startUnixServer}: createUnixServer's, plus `limit` and `signal`. */
export type StartUnixServerOptions = CreateServerOptions & { cleanupSocket?: boolean } & StreamOptions;

function networkLoop(): AbstractEventLoop {
  return getRunningLoop();
}

/** Splits `{ limit, signal, ...rest }`, checking the options object itself. */
function splitOptions<O extends StreamOptions>(options: O): [limit: number, signal: AbortSignal | undefined, rest: Omit<O, 'limit' | 'signal'>] {
  const signal = _signalOf(options);
  const { limit = DEFAULT_LIMIT, signal: _signal, ...rest } = options;
  return [limit, signal, rest];
}

// ---------------------------------------------------------------- helpers

/**
 * A wrapper for createConnection() returning a `[reader, writer]` pair: a
 * StreamReader and a StreamWriter over one connection.
 *
 * The options are createConnection's (`ssl`, `family`, `localAddr`,
 * `happyEyeballsDelay`, ...), plus `limit` for the StreamReader and
 * `signal`, whose abort cancels the connecting.
 * @throws OSError (ConnectionRefusedError, ...) when the connection fails.
 * @example
 * const [reader, writer] = await openConnection('127.0.0.1', 8888);
 * writer.write('hello\n');
 * const line = await reader.readline();
 * writer.close();
 * await writer.waitClosed();
 */
export function openConnection(
  host?: string | null,
  port?: number | string | null,
  options: OpenConnectionOptions = {},
): Sleep<[StreamReader, StreamWriter]> {
  const [limit, signal, kwds] = splitOptions(options);
  return _suspendable(() => openGen(limit, signal, (loop, factory) => loop.createConnection(factory, host, port, kwds)));
}

/**
 * Like {@link openConnection}, over a Unix stream socket at `path` (or `options.sock`).
 * @example
 * const [reader, writer] = await openUnixConnection('/tmp/app.sock');
 */
export function openUnixConnection(path?: string | null, options: OpenConnectionOptions = {}): Sleep<[StreamReader, StreamWriter]> {
  const [limit, signal, kwds] = splitOptions(options);
  return _suspendable(() => openGen(limit, signal, (loop, factory) => loop.createUnixConnection(factory, path, kwds)));
}

function* openGen(
  limit: number,
  signal: AbortSignal | undefined,
  connect: (loop: AbstractEventLoop, factory: () => StreamReaderProtocol) => Task<[Transport, StreamReaderProtocol]>,
): Coroutine<[StreamReader, StreamWriter]> {
  _throwIfAborted(signal);
  const loop = networkLoop();
  const reader = new StreamReader({ limit, loop });
  const protocol = new StreamReaderProtocol(reader, null, { loop });
  const task = connect(loop, () => protocol);
  _bindSignal(task, signal);
  let transport: Transport;
  try {
    [transport] = yield* task;
  } catch (exc) {
    // Cancelled after the connection was already made (the inner task
    // finished, we had not resumed yet): nobody else holds the transport.
    if (task.done() && !task.cancelled() && task.exception() == null) task.result()[0].close();
    throw exc;
  }
  const writer = new StreamWriter(transport, protocol, reader, loop);
  return [reader, writer];
}

/**
 * Starts a socket server, calling `clientConnected(reader, writer)` for
 * each client. A plain function is called as a callback; an async
 * function, a generator function, or a function returning a coroutine runs
 * as a Task (an exception it ends with goes to the loop's exception handler
 * and closes the connection).
 *
 * The options are createServer's (`backlog`, `reuseAddress`, `sock`,
 * `startServing`, ...), plus `limit` for each StreamReader and `signal`.
 * @returns the Server, as createServer().
 * @example
 * const server = await startServer(async (reader, writer) => {
 *   for await (const line of reader) writer.write(line);
 *   writer.close();
 * }, '127.0.0.1', 8888);
 */
export function startServer(
  clientConnected: ClientConnectedCallback,
  host?: string | string[] | null,
  port?: number | string | null,
  options: StartServerOptions = {},
): Sleep<Server> {
  checkCallback(clientConnected);
  const [limit, signal, kwds] = splitOptions(options);
  return _suspendable(() => serveGen(clientConnected, limit, signal, (loop, factory) => loop.createServer(factory, host, port, kwds)));
}

/**
 * Like {@link startServer}, on a Unix socket `path` (or `options.sock`).
 * @example
 * const server = await startUnixServer(handle, '/tmp/app.sock');
 */
export function startUnixServer(clientConnected: ClientConnectedCallback, path?: string | null, options: StartUnixServerOptions = {}): Sleep<Server> {
  checkCallback(clientConnected);
  const [limit, signal, kwds] = splitOptions(options);
  return _suspendable(() => serveGen(clientConnected, limit, signal, (loop, factory) => loop.createUnixServer(factory, path, kwds)));
}

function checkCallback(cb: unknown): void {
  if (typeof cb !== 'function') throw new TypeError(describeArg('clientConnected', 'a function', cb));
}

function* serveGen(
  clientConnected: ClientConnectedCallback,
  limit: number,
  signal: AbortSignal | undefined,
  serve: (loop: AbstractEventLoop, factory: () => StreamReaderProtocol) => Task<Server>,
): Coroutine<Server> {
  _throwIfAborted(signal);
  const loop = networkLoop();
  // Checked now, not at the first client, as asyncio's first StreamReader would.
  checkLimit(limit);
  const factory = (): StreamReaderProtocol => {
    const reader = new StreamReader({ limit, loop });
    return new StreamReaderProtocol(reader, clientConnected, { loop });
  };
  const task = serve(loop, factory);
  _bindSignal(task, signal);
  try {
    return yield* task;
  } catch (exc) {
    // Cancelled after the server was already made: nobody else holds it.
    if (task.done() && !task.cancelled() && task.exception() == null) task.result().close();
    throw exc;
  }
}

// ---------------------------------------------------------------- protocols

/**
 * Reusable flow control logic for StreamWriter.drain(): implements
 * pauseWriting(), resumeWriting() and connectionLost(). A subclass that
 * overrides them must call the super methods. Any number of tasks may wait
 * in drain() at once (#74116).
 */
export class FlowControlMixin extends Protocol {
  /** @internal */ _loop: AbstractEventLoop;
  /** @internal */ _paused = false;
  /** @internal Futures of the tasks waiting in drain(). */ _drainWaiters: Future<void>[] = [];
  /** @internal */ _connectionLost = false;

  /** @param options `loop`: defaults to the running (or set) loop. */
  constructor(options: { loop?: AbstractEventLoop } = {}) {
    super();
    this._loop = options.loop ?? getEventLoop();
  }

  override toString(): string {
    return `<${this.constructor.name}${this._paused ? ' paused' : ''}>`;
  }

  override pauseWriting(): void {
    if (this._paused) throw new RuntimeError('pauseWriting() called while already paused');
    this._paused = true;
    if (this._loop.getDebug()) logger.debug(`${String(this)} pauses writing`);
  }

  override resumeWriting(): void {
    if (!this._paused) throw new RuntimeError('resumeWriting() called while not paused');
    this._paused = false;
    if (this._loop.getDebug()) logger.debug(`${String(this)} resumes writing`);
    for (const waiter of this._drainWaiters) if (!waiter.done()) waiter.setResult(undefined);
  }

  override connectionLost(exc: Error | undefined): void {
    this._connectionLost = true;
    // Wake up the writers if currently paused.
    if (!this._paused) return;
    for (const waiter of this._drainWaiters) {
      if (waiter.done()) continue;
      if (exc === undefined) waiter.setResult(undefined);
      else waiter.setException(exc);
    }
  }

  /** @internal What StreamWriter.drain() waits on once the checks are done. */
  *_drainHelper(signal?: AbortSignal): Coroutine<void> {
    if (this._connectionLost) throw new ConnectionResetError('Connection lost', { code: 'ECONNRESET' });
    if (!this._paused) return;
    const waiter = this._loop.createFuture<void>();
    this._drainWaiters.push(waiter);
    _bindSignal(waiter, signal);
    try {
      yield* waiter;
    } finally {
      _remove(this._drainWaiters, waiter);
    }
  }

  /** @internal The Future StreamWriter.waitClosed() waits on. */
  _getCloseWaiter(_stream: StreamWriter): Future<void> {
    throw new TypeError('_getCloseWaiter() is not implemented by this protocol');
  }
}

/**
 * Adapts between a Protocol and a StreamReader: data and EOF from the
 * transport go to the reader, and a server's `clientConnected` callback
 * gets its reader and writer once the connection is made. (A helper class
 * rather than making StreamReader a Protocol, so a reader's user cannot
 * call protocol methods by accident.)
 */
export class StreamReaderProtocol extends FlowControlMixin {
  /** @internal */ _streamReader: StreamReader | null;
  /** @internal */ _streamWriter: StreamWriter | null = null;
  /** @internal The client task of a server connection. */ _task: Task<unknown> | null = null;
  /** @internal */ _transport: Transport | null = null;
  /** @internal */ _clientConnected: ClientConnectedCallback | null;
  /** @internal */ _overSsl = false;
  /** @internal Resolved (or failed) when the connection is lost. */ _closed: Future<void>;

  /**
   * @param streamReader the reader fed with the connection's data.
   * @param clientConnected set for a server's connections (startServer).
   * @param options `loop`: defaults to the running (or set) loop.
   */
  constructor(
    streamReader: StreamReader | null,
    clientConnected: ClientConnectedCallback | null = null,
    options: { loop?: AbstractEventLoop } = {},
  ) {
    super(options);
    if (clientConnected !== null) checkCallback(clientConnected);
    this._streamReader = streamReader;
    this._clientConnected = clientConnected;
    this._closed = this._loop.createFuture<void>();
  }

  /** @internal After startTls: the writer now writes through a new transport. */
  _replaceWriter(writer: StreamWriter): void {
    const transport = writer.transport;
    this._streamWriter = writer;
    this._transport = transport;
    this._overSsl = transport.getExtraInfo('sslcontext') != null;
  }

  override connectionMade(transport: Transport): void {
    this._transport = transport;
    const reader = this._streamReader;
    if (reader !== null) reader.setTransport(transport);
    this._overSsl = transport.getExtraInfo('sslcontext') != null;
    const cb = this._clientConnected;
    if (cb === null) return;
    const writer = new StreamWriter(transport, this, reader, this._loop);
    this._streamWriter = writer;
    const task = runClientConnected(this._loop, cb, reader as StreamReader, writer);
    if (task === null) return;
    this._task = task;
    task.addDoneCallback((t) => {
      if (t.cancelled()) {
        transport.close();
        return;
      }
      const exc = t.exception();
      if (exc !== undefined) {
        this._loop.callExceptionHandler({
          message: 'Unhandled exception in client_connected_cb',
          exception: exc,
          transport,
        });
        transport.close();
      }
    });
  }

  override connectionLost(exc: Error | undefined): void {
    const reader = this._streamReader;
    if (reader !== null) {
      if (exc === undefined) reader.feedEof();
      else reader.setException(exc);
    }
    if (!this._closed.done()) {
      if (exc === undefined) {
        this._closed.setResult(undefined);
      } else {
        this._closed.setException(exc);
        // asyncio's __del__ retrieves it, so an error nobody waited for in
        // waitClosed() is never reported as "never retrieved".
        this._closed.exception();
      }
    }
    super.connectionLost(exc);
    this._streamReader = null;
    this._streamWriter = null;
    this._task = null;
    this._transport = null;
  }

  override dataReceived(data: Buffer): void {
    this._streamReader?.feedData(data);
  }

  override eofReceived(): boolean {
    this._streamReader?.feedEof();
    // Over TLS the transport cannot stay half-open ("returning true from
    // eof_received() has no effect when using ssl").
    return !this._overSsl;
  }

  /** @internal */
  override _getCloseWaiter(_stream: StreamWriter): Future<void> {
    return this._closed;
  }
}

/**
 * Calls a server's clientConnected: an async function is started inside
 * its task (so its awaits are cancellable), a generator function's
 * generator becomes a task, as does a coroutine a plain function returns.
 */
function runClientConnected(loop: AbstractEventLoop, cb: ClientConnectedCallback, reader: StreamReader, writer: StreamWriter): Task<unknown> | null {
  if (cb.constructor?.name === 'AsyncFunction') return loop.createTask(() => cb(reader, writer) as PromiseLike<unknown>);
  const res = cb(reader, writer);
  if (isCoroutine(res)) return loop.createTask(res as Coroutine<unknown>);
  return null;
}

// ---------------------------------------------------------------- writer

/** What the finalizer of a dropped writer needs; startTls updates the transport. */
interface WriterState {
  transport: Transport;
  loop: AbstractEventLoop;
}

// asyncio's StreamWriter.__del__: a writer dropped without close() closes
// its transport and warns (ResourceWarning).
const unclosedWriters = new FinalizationRegistry<WriterState>(({ transport, loop }) => {
  try {
    if (transport.isClosing()) return;
    if (loop.isClosed()) {
      process.emitWarning('loop is closed', 'ResourceWarning');
      return;
    }
    transport.close();
    process.emitWarning(`unclosed <StreamWriter transport=${String(transport)}>`, 'ResourceWarning');
  } catch {
    // A finalizer must not throw.
  }
});

/**
 * Wraps a Transport: write(), writelines(), writeEof(), canWriteEof(),
 * getExtraInfo() and close(), plus drain() to wait for flow control and
 * waitClosed() to wait for the connection to end. `transport` is the
 * Transport itself.
 * @example
 * writer.write(data);
 * await writer.drain();
 */
export class StreamWriter {
  /** @internal */ _transport: Transport;
  /** @internal */ _protocol: FlowControlMixin;
  /** @internal */ _reader: StreamReader | null;
  /** @internal */ _loop: AbstractEventLoop;
  // Held by the finalization registry: it must not refer to the writer.
  #state: WriterState;

  constructor(transport: Transport, protocol: FlowControlMixin, reader: StreamReader | null, loop: AbstractEventLoop) {
    // drain() expects that the reader has an exception() method.
    if (reader !== null && !(reader instanceof StreamReader)) {
      throw new TypeError(describeArg('reader', 'a StreamReader or null', reader));
    }
    this._transport = transport;
    this._protocol = protocol;
    this._reader = reader;
    this._loop = loop;
    this.#state = { transport, loop };
    unclosedWriters.register(this, this.#state);
  }

  toString(): string {
    const info = ['StreamWriter', `transport=${String(this._transport)}`];
    if (this._reader !== null) info.push(`reader=${this._reader.toString()}`);
    return `<${info.join(' ')}>`;
  }

  [inspect.custom](): string {
    return this.toString();
  }

  /** The underlying transport. */
  get transport(): Transport {
    return this._transport;
  }

  /** Writes bytes (a string is UTF-8 encoded); never blocks: see drain(). */
  write(data: Uint8Array | string): void {
    this._transport.write(data);
  }

  /** Writes several buffers, gathered into one send when possible. */
  writelines(data: Iterable<Uint8Array | string>): void {
    this._transport.writelines(data);
  }

  /** Half-closes: the peer reads EOF once the buffer is flushed. */
  writeEof(): void {
    this._transport.writeEof();
  }

  /** Whether the transport supports writeEof(). */
  canWriteEof(): boolean {
    return this._transport.canWriteEof();
  }

  /** Closes the transport once its buffer is flushed; see waitClosed(). */
  close(): void {
    this._transport.close();
  }

  /** Whether the transport is closing or closed. */
  isClosing(): boolean {
    return this._transport.isClosing();
  }

  /**
   * Waits until the connection is closed (`connectionLost` ran); throws the
   * error it was lost with, if any.
   * @param options `signal`: aborting it ends this wait (CancelledError).
   * @example
   * writer.close();
   * await writer.waitClosed();
   */
  waitClosed(options: SignalOptions = {}): Sleep<void> {
    const signal = _signalOf(options);
    return _suspendable(() => this.#waitClosed(signal));
  }

  *#waitClosed(signal: AbortSignal | undefined): Coroutine<void> {
    _throwIfAborted(signal);
    const closed = this._protocol._getCloseWaiter(this);
    if (signal === undefined) {
      // As asyncio: the waiting task waits on the shared Future itself.
      yield* closed;
      return;
    }
    // An abort must end this wait only, not the shared Future.
    const waiter = this._loop.createFuture<void>();
    const follow = (f: Future<void>): void => {
      if (waiter.done()) return;
      if (f.cancelled()) waiter.cancel();
      else if (f.exception() !== undefined) waiter.setException(f.exception());
      else waiter.setResult(undefined);
    };
    closed.addDoneCallback(follow);
    _bindSignal(waiter, signal);
    try {
      yield* waiter;
    } finally {
      closed.removeDoneCallback(follow);
    }
  }

  /** Optional transport information: `peername`, `sockname`, `socket`, `sslcontext`, ... */
  getExtraInfo<T = unknown>(name: string, defaultValue?: T): T | undefined {
    return this._transport.getExtraInfo<T>(name, defaultValue);
  }

  /**
   * Waits until it is appropriate to resume writing: returns at once unless
   * the transport's buffer is over its high-water mark, then waits until it
   * drains to the low-water mark. Throws the reader's exception, or the
   * error the connection was lost with (ConnectionResetError "Connection
   * lost" once it is gone). On a closing transport it first gives the loop
   * one pass, so that `write(); await drain()` in a loop sees the loss.
   * @param options `signal`: aborting it cancels the wait.
   * @example
   * for (const chunk of chunks) {
   *   writer.write(chunk);
   *   await writer.drain();
   * }
   */
  drain(options: SignalOptions = {}): Sleep<void> {
    const signal = _signalOf(options);
    return _suspendable(() => this.#drain(signal));
  }

  *#drain(signal: AbortSignal | undefined): Coroutine<void> {
    _throwIfAborted(signal);
    if (this._reader !== null) {
      const exc = this._reader.exception();
      if (exc != null) throw exc;
    }
    if (this._transport.isClosing()) {
      // Wait for protocol.connectionLost(): without this pass, drain()
      // would return at once, and code that calls `write(); await drain()`
      // in a loop would never see connectionLost, nor the error.
      yield* sleep(0);
    }
    yield* this._protocol._drainHelper(signal);
  }

  /**
   * Upgrades the connection to TLS (after a drain()): the writer then writes
   * through the new transport, and the reader gets decrypted data. The
   * server side of startServer's connections is the TLS server.
   * @param sslcontext TLS context (as `loop.startTls` takes it).
   * @throws RuntimeError when TLS support is not loaded.
   */
  startTls(
    sslcontext: unknown,
    options: { serverHostname?: string; sslHandshakeTimeout?: number; sslShutdownTimeout?: number } & SignalOptions = {},
  ): Sleep<void> {
    const signal = _signalOf(options);
    return _suspendable(() => this.#startTls(sslcontext, options, signal));
  }

  *#startTls(
    sslcontext: unknown,
    options: { serverHostname?: string; sslHandshakeTimeout?: number; sslShutdownTimeout?: number },
    signal: AbortSignal | undefined,
  ): Coroutine<void> {
    const protocol = this._protocol as StreamReaderProtocol;
    const serverSide = protocol._clientConnected != null;
    yield* this.#drain(signal);
    const loop = this._loop;
    // Every AbstractEventLoop declares startTls; a duck-typed foreign loop may not have it.
    if (typeof (loop as Partial<AbstractEventLoop>).startTls !== 'function') throw new RuntimeError('TLS support is not loaded');
    const started = loop.startTls(this._transport, protocol, sslcontext, {
      serverSide,
      serverHostname: options.serverHostname,
      sslHandshakeTimeout: options.sslHandshakeTimeout,
      sslShutdownTimeout: options.sslShutdownTimeout,
    });
    const fut = asFuture(loop, started);
    _bindSignal(fut, signal);
    const newTransport = yield* fut;
    this._transport = newTransport;
    this.#state.transport = newTransport;
    protocol._replaceWriter(this);
  }
}

function asFuture<T>(loop: AbstractEventLoop, aw: PromiseLike<T> | Future<T>): Future<T> {
  if (typeof (aw as Future<T>).addDoneCallback === 'function' && typeof (aw as Future<T>)[Symbol.iterator] === 'function') {
    return aw as Future<T>;
  }
  if (!isThenable(aw)) throw new TypeError(describeArg('loop.startTls()', 'to return an awaitable', aw));
  const fut = loop.createFuture<T>();
  // A promise that settles after loop.close() is dropped: settling the
  // Future would schedule its callbacks on a closed loop (issue 8 item 9).
  aw.then(
    (v) => {
      if (!fut.done() && !loop.isClosed()) fut.setResult(v);
    },
    (e) => {
      if (fut.done() || loop.isClosed()) return;
      if (e instanceof CancelledError) fut.cancel(e.message);
      else fut.setException(e);
    },
  );
  return fut;
}

// ---------------------------------------------------------------- reader

/** Options of `new StreamReader()`. */
export interface StreamReaderOptions {
  /**
   * Bytes (64 KiB by default): the longest line readline()/readuntil()
   * return; a buffer over twice this pauses the transport's reading.
   */
  limit?: number;
  /** The loop; defaults to the running (or set) loop. */
  loop?: AbstractEventLoop;
}

function checkLimit(limit: unknown): number {
  if (typeof limit !== 'number' || Number.isNaN(limit)) throw new TypeError(describeArg('limit', 'a number of bytes', limit));
  if (limit <= 0) throw new RangeError('Limit cannot be <= 0');
  return limit;
}

function toSeparator(sep: unknown): Buffer {
  if (typeof sep === 'string') return Buffer.from(sep);
  if (sep instanceof Uint8Array) return Buffer.from(sep.buffer, sep.byteOffset, sep.byteLength);
  throw new TypeError(describeArg('separator', 'bytes (a Uint8Array or a string)', sep));
}

function checkCount(n: unknown, name: string): number {
  if (typeof n !== 'number' || !Number.isInteger(n)) throw new TypeError(describeArg(name, 'an integer', n));
  return n;
}

/**
 * The reading end of a stream: a buffer fed by its protocol
 * (`feedData`/`feedEof`/`setException`) and read by coroutines with
 * read(), readline(), readexactly() and readuntil(). Only one read may wait
 * at a time. `for await (const line of reader)` iterates over lines until
 * EOF.
 *
 * The `limit` is a security feature: readline() and readuntil() refuse a
 * line longer than it, and reading is paused while more than twice it is
 * buffered.
 * @example
 * const reader = new StreamReader({ limit: 1024 });
 * reader.feedData(Buffer.from('a\nb'));
 * reader.feedEof();
 * await reader.readline(); // <Buffer 61 0a>
 * await reader.read();     // <Buffer 62>
 */
export class StreamReader implements AsyncIterable<Buffer> {
  /** @internal */ _limit: number;
  /** @internal */ _loop: AbstractEventLoop;
  /** @internal Whether feedEof() was called. */ _eof = false;
  /** @internal The Future a read waits on for data (asyncio's _wait_for_data). */ _waiter: Future<void> | null = null;
  /** @internal */ _exception: unknown = undefined;
  /** @internal */ _transport: Transport | null = null;
  /** @internal Whether this reader paused the transport's reading. */ _paused = false;
  // The buffer: bytes #start..#end of #buf are unread.
  #buf: Buffer = EMPTY;
  #start = 0;
  #end = 0;

  /** @throws RangeError "Limit cannot be <= 0". */
  constructor(options: StreamReaderOptions = {}) {
    if (typeof options !== 'object' || options === null) {
      throw new TypeError(describeArg('options', 'an options object ({ limit, loop })', options));
    }
    this._limit = checkLimit(options.limit ?? DEFAULT_LIMIT);
    this._loop = options.loop ?? getEventLoop();
  }

  toString(): string {
    const info = ['StreamReader'];
    const n = this.#end - this.#start;
    if (n > 0) info.push(`${n} bytes`);
    if (this._eof) info.push('eof');
    if (this._limit !== DEFAULT_LIMIT) info.push(`limit=${this._limit}`);
    if (this._waiter !== null) info.push(`waiter=${this._waiter.toString()}`);
    if (this._exception != null) info.push(`exception=${reprError(this._exception)}`);
    if (this._transport !== null) info.push(`transport=${String(this._transport)}`);
    if (this._paused) info.push('paused');
    return `<${info.join(' ')}>`;
  }

  [inspect.custom](): string {
    return this.toString();
  }

  /** @internal The unread bytes (a view: valid until the next feed or read). */
  get _buffer(): Buffer {
    return this.#buf.subarray(this.#start, this.#end);
  }

  /** The exception set with setException(), or undefined. */
  exception(): unknown {
    return this._exception;
  }

  /** Makes every later read throw `exc`; a waiting read throws it at once. */
  setException(exc: unknown): void {
    this._exception = exc;
    const waiter = this._waiter;
    if (waiter !== null) {
      this._waiter = null;
      if (!waiter.cancelled()) waiter.setException(exc);
    }
  }

  /** Wakes up the read waiting for data or EOF. */
  #wakeupWaiter(): void {
    const waiter = this._waiter;
    if (waiter !== null) {
      this._waiter = null;
      if (!waiter.cancelled()) waiter.setResult(undefined);
    }
  }

  /** Sets the transport whose reading this reader pauses and resumes. */
  setTransport(transport: Transport): void {
    if (this._transport !== null) throw new RuntimeError('Transport already set');
    this._transport = transport;
  }

  /** @internal Resumes the transport once the buffer is at or under the limit. */
  _maybeResumeTransport(): void {
    if (this._paused && this.#end - this.#start <= this._limit) {
      this._paused = false;
      this._transport!.resumeReading();
    }
  }

  /** Marks the end of the stream: reads then return what is left. */
  feedEof(): void {
    this._eof = true;
    this.#wakeupWaiter();
  }

  /** Whether the buffer is empty and feedEof() was called. */
  atEof(): boolean {
    return this._eof && this.#end === this.#start;
  }

  /**
   * Appends bytes (the protocol's dataReceived calls it); pauses the
   * transport's reading while more than twice the limit is buffered.
   * @throws RuntimeError after feedEof().
   */
  feedData(data: Uint8Array): void {
    if (this._eof) throw new RuntimeError('feed_data after feed_eof');
    if (!(data instanceof Uint8Array)) throw new TypeError(describeArg('data', 'a Uint8Array', data));
    if (data.length === 0) return;
    this.#append(data);
    this.#wakeupWaiter();
    if (this._transport !== null && !this._paused && this.#end - this.#start > 2 * this._limit) {
      if (typeof this._transport.pauseReading !== 'function') {
        // The transport can't be paused: buffer everything, and forget the
        // transport so as not to keep trying.
        this._transport = null;
      } else {
        this._transport.pauseReading();
        this._paused = true;
      }
    }
  }

  #append(data: Uint8Array): void {
    const n = data.length;
    if (this.#buf.length - this.#end < n) {
      const live = this.#end - this.#start;
      const needed = live + n;
      if (needed > this.#buf.length >>> 1) {
        // Grow: at least double, so appends cost O(1) amortized.
        const next = Buffer.allocUnsafe(Math.max(needed * 2, 4096));
        this.#buf.copy(next, 0, this.#start, this.#end);
        this.#buf = next;
      } else {
        // Compact: at least half the buffer is free afterwards.
        this.#buf.copy(this.#buf, 0, this.#start, this.#end);
      }
      this.#start = 0;
      this.#end = live;
    }
    this.#buf.set(data, this.#end);
    this.#end += n;
  }

  /** Removes and returns (a copy of) the first `n` buffered bytes. */
  #take(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    this.#buf.copy(out, 0, this.#start, this.#start + n);
    this.#discard(n);
    return out;
  }

  #discard(n: number): void {
    this.#start += n;
    if (this.#start === this.#end) {
      this.#start = this.#end = 0;
      // Let a buffer that grew for a burst go (one limit's worth is kept).
      if (this.#buf.length > 4 * this._limit && this.#buf.length > 65536) this.#buf = EMPTY;
    }
  }

  /**
   * @internal Waits until feedData() or feedEof() is called; resumes a
   * paused transport first (waiting while paused would deadlock, e.g. a
   * readexactly(n) with n over the limit).
   * @throws RuntimeError if another read is already waiting.
   */
  *_waitForData(funcName: string, signal?: AbortSignal): Coroutine<void> {
    // One Future links feedData() to one read: with two reads waiting it
    // would be unknowable which one gets the next data.
    if (this._waiter !== null) {
      throw new RuntimeError(`${funcName}() called while another coroutine is already waiting for incoming data`);
    }
    if (this._eof) throw new RuntimeError('_wait_for_data after EOF');
    if (this._paused) {
      this._paused = false;
      this._transport!.resumeReading();
    }
    const waiter = this._loop.createFuture<void>();
    this._waiter = waiter;
    _bindSignal(waiter, signal);
    try {
      yield* waiter;
    } finally {
      this._waiter = null;
    }
  }

  /**
   * Reads one line, up to and including `\n`. At EOF, returns the partial
   * line without newline, or an empty Buffer when nothing is left.
   *
   * A line over the limit throws RangeError (asyncio's ValueError; `cause`
   * is the LimitOverrunError): the line is removed from the buffer if its
   * newline was found, else the whole buffer is cleared.
   * @param options `signal`: aborting it cancels the wait.
   * @throws RangeError over the limit; the reader's exception, if set.
   * @example
   * const line = await reader.readline();
   */
  readline(options: SignalOptions = {}): Sleep<Buffer> {
    const signal = _signalOf(options);
    return _suspendable(() => this.#readline(signal));
  }

  *#readline(signal: AbortSignal | undefined): Coroutine<Buffer> {
    const seplen = NEWLINE.length;
    try {
      return yield* this.#readuntil(NEWLINE, signal);
    } catch (e) {
      if (e instanceof IncompleteReadError) return e.partial as Buffer;
      if (e instanceof LimitOverrunError) {
        if (this._buffer.subarray(e.consumed, e.consumed + seplen).equals(NEWLINE)) this.#discard(e.consumed + seplen);
        else this.#discard(this.#end - this.#start);
        this._maybeResumeTransport();
        throw new RangeError(e.message, { cause: e });
      }
      throw e;
    }
  }

  /**
   * Reads until `separator` is found; returns the data with the separator
   * at the end, both removed from the buffer.
   *
   * With several separators, the result is the shortest possible one that
   * ends with any of them; for LimitOverrunError the shortest separator
   * counts as the one that matched.
   *
   * If EOF comes first, IncompleteReadError is thrown and the buffer is
   * reset; its `partial` may end with part of the separator. If the data
   * before the separator exceeds the limit, LimitOverrunError is thrown and
   * the data stays in the buffer, to be read some other way.
   * @param separator bytes or a string (UTF-8), or an array of them; `\n` by default.
   * @param options `signal`: aborting it cancels the wait.
   * @throws TypeError for an empty separator or list; IncompleteReadError;
   * LimitOverrunError; the reader's exception, if set.
   * @example
   * const header = await reader.readuntil('\r\n\r\n');
   * const token = await reader.readuntil([',', ';']);
   */
  readuntil(separator: Separator | readonly Separator[] = NEWLINE, options: SignalOptions = {}): Sleep<Buffer> {
    const signal = _signalOf(options);
    return _suspendable(() => this.#readuntil(separator, signal));
  }

  *#readuntil(separator: Separator | readonly Separator[], signal: AbortSignal | undefined): Coroutine<Buffer> {
    _throwIfAborted(signal);
    // Sorted by length (a stable sort, as Python's): the shortest match wins a tie.
    const seps = Array.isArray(separator)
      ? (separator as readonly Separator[]).map(toSeparator).sort((a, b) => a.length - b.length)
      : [toSeparator(separator)];
    if (seps.length === 0) throw new TypeError('Separator should contain at least one element');
    const minSeplen = seps[0].length;
    const maxSeplen = seps[seps.length - 1].length;
    if (minSeplen === 0) throw new TypeError('Separator should be at least one-byte string');
    if (this._exception != null) throw this._exception;

    // Everything but the last maxSeplen - 1 bytes of the buffer is scanned
    // only once: a separator may still end in the bytes yet to come. (For a
    // buffer ending in the first byte of a long separator this rescans a
    // little; real separators are short enough for that not to matter.)
    // `offset` is how many leading bytes are known to hold no separator.
    let offset = 0;
    let matchStart = -1;
    let matchEnd = -1;
    for (;;) {
      const buflen = this.#end - this.#start;
      if (buflen - offset >= minSeplen) {
        const buf = this._buffer;
        for (const sep of seps) {
          const isep = buf.indexOf(sep, offset);
          if (isep !== -1) {
            const end = isep + sep.length;
            if (matchEnd === -1 || end < matchEnd) {
              matchEnd = end;
              matchStart = isep;
            }
          }
        }
        if (matchEnd !== -1) break;
        offset = Math.max(0, buflen + 1 - maxSeplen);
        if (offset > this._limit) {
          throw new LimitOverrunError('Separator is not found, and chunk exceed the limit', offset);
        }
      }
      // The last chunk may complete a separator even with EOF set: so EOF
      // is checked only after the buffer.
      if (this._eof) throw new IncompleteReadError(this.#take(buflen), null);
      // _waitForData() resumes reading if the stream was paused.
      yield* this._waitForData('readuntil', signal);
    }
    if (matchStart > this._limit) {
      throw new LimitOverrunError('Separator is found, but chunk is longer than limit', matchStart);
    }
    const chunk = this.#take(matchEnd);
    this._maybeResumeTransport();
    return chunk;
  }

  /**
   * Reads up to `n` bytes. With `n` negative (the default), reads until EOF
   * and returns everything; with 0, returns an empty Buffer at once; else
   * returns at most `n` bytes as soon as any are buffered (an empty Buffer
   * at EOF). Not bounded by the limit.
   * @param options `signal`: aborting it cancels the wait.
   * @throws the reader's exception, if set.
   * @example
   * const rest = await reader.read();
   * const some = await reader.read(4096);
   */
  read(n = -1, options: SignalOptions = {}): Sleep<Buffer> {
    const signal = _signalOf(options);
    return _suspendable(() => this.#read(n, signal));
  }

  *#read(n: number, signal: AbortSignal | undefined): Coroutine<Buffer> {
    _throwIfAborted(signal);
    checkCount(n, 'n');
    if (this._exception != null) throw this._exception;
    if (n === 0) return Buffer.alloc(0);
    if (n < 0) {
      // Reading the limit at a time, rather than waiting for everything to
      // be buffered, which would deadlock once the transport is paused.
      const blocks: Buffer[] = [];
      for (;;) {
        const block = yield* this.#read(this._limit, signal);
        if (block.length === 0) break;
        blocks.push(block);
      }
      return blocks.length === 1 ? blocks[0] : Buffer.concat(blocks);
    }
    if (this.#end === this.#start && !this._eof) yield* this._waitForData('read', signal);
    const data = this.#take(Math.min(n, this.#end - this.#start));
    this._maybeResumeTransport();
    return data;
  }

  /**
   * Reads exactly `n` bytes. Not bounded by the limit.
   * @param options `signal`: aborting it cancels the wait.
   * @throws IncompleteReadError if EOF comes first (`partial` holds what
   * was read, and the buffer is emptied); RangeError for a negative `n`.
   * @example
   * const header = await reader.readexactly(8);
   */
  readexactly(n: number, options: SignalOptions = {}): Sleep<Buffer> {
    const signal = _signalOf(options);
    return _suspendable(() => this.#readexactly(n, signal));
  }

  *#readexactly(n: number, signal: AbortSignal | undefined): Coroutine<Buffer> {
    _throwIfAborted(signal);
    checkCount(n, 'n');
    if (n < 0) throw new RangeError('readexactly size can not be less than zero');
    if (this._exception != null) throw this._exception;
    if (n === 0) return Buffer.alloc(0);
    while (this.#end - this.#start < n) {
      if (this._eof) throw new IncompleteReadError(this.#take(this.#end - this.#start), n);
      yield* this._waitForData('readexactly', signal);
    }
    const data = this.#take(n);
    this._maybeResumeTransport();
    return data;
  }

  /**
   * `for await (const line of reader)`: each step is a readline(), and the
   * loop ends at EOF (an empty line). Generator coroutines loop on
   * `yield* reader.readline()` instead.
   */
  [Symbol.asyncIterator](): AsyncIterator<Buffer, undefined> {
    return {
      // A Sleep, not a promise: an async-function task stays cancellable here.
      next: () => _suspendable(() => this.#next()) as unknown as Promise<IteratorResult<Buffer, undefined>>,
    };
  }

  *#next(): Coroutine<IteratorResult<Buffer, undefined>> {
    const value = yield* this.#readline(undefined);
    if (value.length === 0) return { done: true, value: undefined };
    return { done: false, value };
  }
}

function reprError(e: unknown): string {
  if (e instanceof Error) return `${e.name}(${e.message === '' ? '' : inspect(e.message)})`;
  return inspect(e, { depth: 0, breakLength: Infinity });
}
