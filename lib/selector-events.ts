/**
 * Event loop using a selector and related classes.
 *
 * Port of CPython Lib/asyncio/selector_events.py (3.14): the selector loop
 * and its reader/writer registration. The selector's backend runs inside
 * Node's loop through the addon's NativeLoop (epoll fd in a uv_poll_t, or a
 * helper thread for poll/select), which also owns the timer heap.
 */
import { _registerLoopKinds, _setDefaultLoopFactory, fileobjToFd, Handle, type FileDescriptorLike, type FileLike } from './events.js';
import { BaseEventLoop } from './base-events.js';
import * as fs from 'node:fs';
import { ConnectionError, describeArg, OSError, RuntimeError, SendfileNotAvailableError } from './exceptions.js';
import type { Coroutine } from './coroutines.js';
import { Future, _setResultUnlessCancelled } from './futures.js';
import { logger } from './log.js';
import { BaseProtocol, BufferedProtocol, type DatagramProtocol, type Protocol } from './protocols.js';
import { FlowControlTransport, type Transport } from './transports.js';
import { constants, formatAddress, ops, socketError, Socket, type SockAddr } from './socket.js';
import type { Server } from './base-events.js';
import { NativeDriver } from './driver.js';
import {
  availableSelectors,
  BaseSelector,
  DefaultSelector,
  selectorClass,
  EVENT_READ,
  EVENT_WRITE,
  NativeBackedSelector,
  type SelectorKey,
} from './selectors.js';

type Callback = (...args: any[]) => unknown;

/**
 * asyncio's BaseEventLoop.__del__: a loop collected without close() gets a
 * ResourceWarning. Its fds are closed by the native loop's finalizer (a
 * stopped loop is only weakly held by native code, so it can be collected).
 */
const unclosedLoops = new FinalizationRegistry<string>((repr) => {
  process.emitWarning(`unclosed event loop ${repr}`, 'ResourceWarning');
});
type RW = [reader: Handle | null, writer: Handle | null];

/**
 * Selector event loop: an asyncio loop whose I/O readiness comes from one
 * of aionode's native selectors and whose timers live in a native heap.
 *
 * @example
 * const loop = new SelectorEventLoop(new PollSelector());
 * loop.callLater(0.05, () => loop.stop());
 * await loop.runForever();
 * loop.close();
 */
export class BaseSelectorEventLoop extends BaseEventLoop {
  /** @internal */ _selector: NativeBackedSelector<RW>;

  /** @param selector the backend; `new DefaultSelector()` when omitted. */
  constructor(selector?: BaseSelector<any>) {
    if (selector === undefined) selector = new DefaultSelector<RW>();
    if (!(selector instanceof NativeBackedSelector)) {
      throw new TypeError(describeArg('selector', 'one of aionode\'s selectors (EpollSelector, PollSelector, SelectSelector, DefaultSelector)', selector));
    }
    const nativeSelector = selector._native;
    if (nativeSelector === null) throw new TypeError('The selector is closed');
    // The loop object keeps its batch callback alive; the native side holds
    // it strongly only while the loop runs, so a dropped, stopped loop is
    // garbage (and its fds are closed by the native finalizer).
    super((events, onBatch) => new NativeDriver(nativeSelector, events, onBatch));
    this._selector = selector as NativeBackedSelector<RW>;
    // A registration whose fd was closed behind our back and whose number
    // came back for a new socket is dead: its callbacks must never run for
    // the new file's events.
    this._selector._onStale = (key) => {
      key.data[0]?.cancel();
      key.data[1]?.cancel();
    };
    unclosedLoops.register(this, `<${this.constructor.name} ${selector.name}>`, this);
  }

  protected override _closeIO(): void {
    unclosedLoops.unregister(this);
    this._selector.close();
  }

  protected _processEvent(token: number, events: number): void {
    const key = this._selector._tokenToKey.get(token);
    // No key: the registration changed since the backend saw the event.
    if (key === undefined) return;
    const [reader, writer] = key.data;
    if (events & EVENT_READ && reader !== null) {
      if (reader._cancelled) this.#removeReader(key.fd);
      else this._ready.push(reader);
    }
    if (events & EVENT_WRITE && writer !== null) {
      if (writer._cancelled) this.#removeWriter(key.fd);
      else this._ready.push(writer);
    }
  }

  /**
   * @internal Called by a Socket this loop watches just before its fd is
   * closed or detached: drop the registration while the number still names
   * this socket, then let every waiter run once more. They ask the Socket
   * for its fd, get -1, and settle with EBADF: a sock* call, a connect or a
   * sendfile in flight ends instead of waiting forever, and none of them
   * can touch the number again (reliability F1/F2).
   */
  readonly #onSocketClose = (fd: number): void => {
    if (this.isClosed()) return;
    const key = this._selector.getMap().get(fd) as SelectorKey<RW> | undefined;
    if (key === undefined) return;
    this._selector.unregister(fd);
    const [reader, writer] = key.data;
    if (reader !== null && !reader._cancelled) this._addReady(reader);
    if (writer !== null && !writer._cancelled) this._addReady(writer);
  };

  /** @internal Watches `sock`: its close() first drops its registration here. */
  _watch(sock: Socket): void {
    sock._onClose(this.#onSocketClose);
  }

  #checkClosedForIo(): void {
    if (this.isClosed()) throw new RuntimeError('Event loop is closed');
  }

  /** @internal Transports by fd: their fds are off limits to addReader & co. */
  _transports = new Map<number, unknown>();

  #ensureFdNoTransport(fd: number): void {
    const transport = this._transports.get(fd) as { isClosing(): boolean } | undefined;
    if (transport !== undefined && !transport.isClosing()) {
      throw new RuntimeError(`File descriptor ${fd} is used by transport ${String(transport)}`);
    }
  }

  /** @internal addReader without the transport check (asyncio's _add_reader). */
  _addReader(fd: number, callback: Callback, ...args: unknown[]): Handle {
    return this.#add(fd, 0, callback, args);
  }
  /** @internal */
  _removeReader(fd: number): boolean {
    return this.#remove(fd, 0);
  }
  /** @internal */
  _addWriter(fd: number, callback: Callback, ...args: unknown[]): Handle {
    return this.#add(fd, 1, callback, args);
  }
  /** @internal */
  _removeWriter(fd: number): boolean {
    return this.#remove(fd, 1);
  }

  #add(fd: number, which: 0 | 1, callback: Callback, args: unknown[]): Handle {
    this.#checkClosedForIo();
    if (typeof callback !== 'function') {
      throw new TypeError(describeArg('callback', `a callable object for ${which === 0 ? 'addReader' : 'addWriter'}()`, callback));
    }
    const handle = new Handle(callback, args, this);
    const mask = which === 0 ? EVENT_READ : EVENT_WRITE;
    const key = this._selector.getMap().get(fd) as SelectorKey<RW> | undefined;
    if (key === undefined) {
      const data: RW = which === 0 ? [handle, null] : [null, handle];
      this._selector.register(fd, mask, data);
    } else {
      const old = key.data[which];
      const data: RW = which === 0 ? [handle, key.data[1]] : [key.data[0], handle];
      // Always a native call with a fresh token, even when the interest is
      // unchanged: if the fd was closed and its number reused, this is what
      // makes the new file watched (epoll had dropped the old one).
      this._selector._refile(fd, key.events | mask, data);
      old?.cancel();
    }
    return handle;
  }

  #remove(fd: number, which: 0 | 1): boolean {
    if (this.isClosed()) return false;
    const key = this._selector.getMap().get(fd) as SelectorKey<RW> | undefined;
    if (key === undefined) return false;
    const mask = (which === 0 ? EVENT_READ : EVENT_WRITE);
    const handle = key.data[which];
    const rest = key.events & ~mask;
    if (rest === 0) {
      this._selector.unregister(fd);
    } else {
      const data: RW = which === 0 ? [null, key.data[1]] : [key.data[0], null];
      this._selector.modify(fd, rest, data);
    }
    if (handle !== null) {
      handle.cancel();
      return true;
    }
    return false;
  }

  #removeReader(fd: number): boolean {
    return this.#remove(fd, 0);
  }

  #removeWriter(fd: number): boolean {
    return this.#remove(fd, 1);
  }

  /**
   * Calls `callback(...args)` whenever `fd` is readable; replaces an
   * earlier reader of the same fd.
   * @throws OSError (EBADF) for a closed fd; RangeError for a negative one.
   */
  addReader(fd: FileDescriptorLike, callback: Callback, ...args: unknown[]): Handle {
    const n = fileobjToFd(fd);
    if (fd instanceof Socket) this._watch(fd);
    this.#ensureFdNoTransport(n);
    return this.#add(n, 0, callback, args);
  }

  /** Stops watching `fd` for reading; returns whether a reader was registered. */
  removeReader(fd: FileDescriptorLike): boolean {
    const n = fileobjToFd(fd);
    this.#ensureFdNoTransport(n);
    return this.#removeReader(n);
  }

  /** Calls `callback(...args)` whenever `fd` is writable. */
  addWriter(fd: FileDescriptorLike, callback: Callback, ...args: unknown[]): Handle {
    const n = fileobjToFd(fd);
    if (fd instanceof Socket) this._watch(fd);
    this.#ensureFdNoTransport(n);
    return this.#add(n, 1, callback, args);
  }

  /** Stops watching `fd` for writing; returns whether a writer was registered. */
  removeWriter(fd: FileDescriptorLike): boolean {
    const n = fileobjToFd(fd);
    this.#ensureFdNoTransport(n);
    return this.#removeWriter(n);
  }
  // ------------------------------------------------------------ sockets

  /** @internal asyncio's _make_socket_transport. */
  _makeSocketTransport(
    sock: Socket,
    protocol: BaseProtocol,
    waiter?: Future<void> | null,
    extra?: Record<string, unknown>,
    server?: Server | null,
  ): SelectorSocketTransport {
    this.#ensureFdNoTransport(sock.fileno());
    return new SelectorSocketTransport(this, sock, protocol, waiter, extra, server);
  }

  /** @internal asyncio's _make_datagram_transport. */
  _makeDatagramTransport(
    sock: Socket,
    protocol: DatagramProtocol,
    address?: SockAddr,
    waiter?: Future<void> | null,
    extra?: Record<string, unknown>,
  ): SelectorDatagramTransport {
    this.#ensureFdNoTransport(sock.fileno());
    return new SelectorDatagramTransport(this, sock, protocol, address, waiter, extra);
  }

  // The sock* methods: one Future each, completed from reader/writer
  // callbacks. Cancelling the Future (or the task awaiting it) removes the
  // callback, so nothing of a cancelled call runs later.

  #sockOp<T>(sock: Socket, which: 0 | 1, attempt: () => T | typeof AGAIN): Future<T> {
    const fd = liveFd(sock);
    this.#ensureFdNoTransport(fd);
    this._watch(sock);
    const fut = this.createFuture<T>();
    // Try at once (the data may already be there), then on readiness.
    let first: T | typeof AGAIN;
    try {
      first = attempt();
    } catch (exc) {
      fut.setException(exc);
      return fut;
    }
    if (first !== AGAIN) {
      fut.setResult(first);
      return fut;
    }
    const tryOnce = (): void => {
      if (fut.done()) return;
      // Woken because the socket was closed under us: fail, never retry.
      if (sock.fileno() < 0) {
        fut.setException(socketError(-constants().EBADF, which === 0 ? 'recv' : 'send'));
        return;
      }
      let r: T | typeof AGAIN;
      try {
        r = attempt();
      } catch (exc) {
        fut.setException(exc);
        return;
      }
      if (r !== AGAIN) fut.setResult(r);
    };
    const handle = which === 0 ? this._addReader(fd, tryOnce) : this._addWriter(fd, tryOnce);
    // Remove our reader/writer only if it is still ours: a later sock* call
    // on the same fd may have replaced it (asyncio's _sock_read_done).
    fut.addDoneCallback(() => this.#removeIfOurs(fd, which, handle));
    return fut;
  }

  #removeIfOurs(fd: number, which: 0 | 1, handle: Handle): void {
    const key = this._selector.getMap().get(fd) as SelectorKey<RW> | undefined;
    if (key === undefined || key.data[which] !== handle) return;
    if (which === 0) this._removeReader(fd);
    else this._removeWriter(fd);
  }

  /** Receives up to `nbytes` (EOF: an empty Buffer). */
  sockRecv(sock: Socket, nbytes: number): Future<Buffer> {
    if (!Number.isInteger(nbytes) || nbytes < 0) throw new RangeError(describeArg('nbytes', 'a non-negative integer', nbytes));
    const buf = Buffer.allocUnsafe(nbytes);
    return this.#sockOp(sock, 0, () => {
      const n = ops().recv(sock.fileno(), buf, 0, nbytes);
      if (n === -constants().EAGAIN || n === -constants().EINTR) return AGAIN;
      if (n < 0) throw socketError(n, 'recv');
      return buf.subarray(0, n);
    });
  }

  /** Receives into `buf`; resolves with the byte count (0 at EOF). */
  sockRecvInto(sock: Socket, buf: Uint8Array): Future<number> {
    if (!(buf instanceof Uint8Array)) throw new TypeError(describeArg('buf', 'a Uint8Array', buf));
    return this.#sockOp(sock, 0, () => {
      const n = ops().recv(sock.fileno(), buf, 0, buf.length);
      if (n === -constants().EAGAIN || n === -constants().EINTR) return AGAIN;
      if (n < 0) throw socketError(n, 'recv');
      return n;
    });
  }

  /** Sends all of `data`, waiting for room as needed. */
  sockSendall(sock: Socket, data: Uint8Array | string): Future<void> {
    const bytes = toBytes(data);
    let sent = 0;
    return this.#sockOp(sock, 1, () => {
      while (sent < bytes.length) {
        const n = ops().send(sock.fileno(), bytes, sent, bytes.length - sent);
        if (n === -constants().EAGAIN || n === -constants().EINTR) return AGAIN;
        if (n < 0) throw socketError(n, 'send');
        sent += n;
      }
      return undefined;
    });
  }

  /** Receives one datagram of up to `bufsize` bytes: `[data, addr]`. */
  sockRecvfrom(sock: Socket, bufsize: number): Future<[Buffer, SockAddr]> {
    if (!Number.isInteger(bufsize) || bufsize <= 0) throw new RangeError(describeArg('bufsize', 'a positive integer', bufsize));
    const buf = Buffer.allocUnsafe(bufsize);
    const addrOut: unknown[] = [];
    return this.#sockOp(sock, 0, () => {
      const n = ops().recvfrom(sock.fileno(), buf, addrOut);
      if (n === -constants().EAGAIN || n === -constants().EINTR) return AGAIN;
      if (n < 0) throw socketError(n, 'recvfrom');
      const addr = (addrOut.length === 1 ? addrOut[0] : addrOut.slice()) as SockAddr;
      return [buf.subarray(0, n), addr] as [Buffer, SockAddr];
    });
  }

  /** Sends one datagram to `addr`; resolves with the bytes sent. */
  sockSendto(sock: Socket, data: Uint8Array | string, addr: SockAddr): Future<number> {
    const bytes = toBytes(data);
    return this.#sockOp(sock, 1, () => {
      const n = ops().sendto(sock.fileno(), bytes, addr);
      if (n === -constants().EAGAIN || n === -constants().EINTR) return AGAIN;
      if (n < 0) throw socketError(n, 'sendto', addr);
      return n;
    });
  }

  /**
   * Connects `sock` to a numeric address (resolve names first with
   * getaddrinfo). Node's message shape: `connect ECONNREFUSED 127.0.0.1:8080`.
   */
  sockConnect(sock: Socket, address: SockAddr): Future<void> {
    const fd = liveFd(sock);
    this.#ensureFdNoTransport(fd);
    this._watch(sock);
    const fut = this.createFuture<void>();
    const rc = ops().connect(fd, address);
    if (rc === 0) {
      fut.setResult(undefined);
      return fut;
    }
    if (rc !== -constants().EINPROGRESS && rc !== -constants().EAGAIN && rc !== -constants().EINTR) {
      fut.setException(socketError(rc, 'connect', address));
      return fut;
    }
    // Writable means connected, or failed: SO_ERROR tells which.
    const handle = this._addWriter(fd, () => {
      if (fut.done()) return;
      let err: number;
      try {
        err = sock.getsockopt(constants().SOL_SOCKET, constants().SO_ERROR);
      } catch (exc) {
        // Closed behind our back: the Future gets the error (EBADF).
        fut.setException(exc);
        return;
      }
      if (err !== 0) fut.setException(socketError(-err, 'connect', address));
      else fut.setResult(undefined);
    });
    fut.addDoneCallback(() => this.#removeIfOurs(fd, 1, handle));
    return fut;
  }

  /** Accepts one connection: `[socket, peer address]`. */
  sockAccept(sock: Socket): Future<[Socket, SockAddr]> {
    return this.#sockOp(sock, 0, () => {
      const fd = ops().accept(sock.fileno());
      if (fd === -constants().EAGAIN || fd === -constants().EINTR) return AGAIN;
      if (fd < 0) throw socketError(fd, 'accept');
      const conn = new Socket(sock.family, sock.type, fd);
      let addr: SockAddr;
      try {
        addr = conn.getpeername();
      } catch {
        addr = '';
      }
      return [conn, addr] as [Socket, SockAddr];
    });
  }

  /**
   * Sends a file over a stream socket with sendfile(2) (zero copy); resolves
   * with the bytes sent. `file` is an fd, or an object with `fd` (a
   * `fs.promises.FileHandle`) or `fileno()`. Without `count`, up to EOF.
   * When sendfile cannot be used and `fallback` is true (the default), the
   * file is read and sent instead.
   * @throws SendfileNotAvailableError when it cannot be used and `fallback` is false.
   */
  sockSendfile(sock: Socket, file: FileLike, offset = 0, count?: number, fallback = true): Future<number> {
    liveFd(sock);
    const inFd = fileFd(file);
    checkSendfileArgs(offset, count);
    if (sock.type !== constants().SOCK_STREAM) throw new RangeError('only SOCK_STREAM type sockets are supported');
    this._watch(sock);
    return this.createTask(sendfileGen(this, sock, inFd, offset, count, fallback));
  }

  /**
   * Sends a file over a transport (asyncio's loop.sendfile): waits for the
   * write buffer to drain, pauses reading, then uses sockSendfile.
   */
  sendfile(transport: Transport, file: FileLike, offset = 0, count?: number, fallback = true): Future<number> {
    if (!(transport instanceof SelectorSocketTransport)) {
      if (!fallback) throw new SendfileNotAvailableError(`sendfile is not available for transport ${String(transport)}`);
      checkSendfileArgs(offset, count);
      return this.createTask(sendfileFallbackGen(this, null, transport, fileFd(file), offset, count));
    }
    if (transport.isClosing()) throw new RuntimeError('Transport is closing');
    checkSendfileArgs(offset, count);
    const inFd = fileFd(file);
    const loop = this;
    return this.createTask((function* () {
      const resumeReading = transport.isReading();
      transport.pauseReading();
      try {
        yield* transport._makeEmptyWaiter();
        const sock = transport._sock;
        if (sock === null || transport.isClosing()) throw new ConnectionError('Connection is closed by peer');
        const fd = transport._sockFd;
        loop._transports.delete(fd);
        try {
          return yield* sendfileGen(loop, sock, inFd, offset, count, fallback);
        } catch (exc) {
          // abort()/close() while the file was going out: say so, rather
          // than the bare EBADF of a socket closed under sendfile(2).
          if (transport._sock === null || transport.isClosing()) {
            throw new ConnectionError('sendfile: the transport was closed while the file was being sent', { cause: exc });
          }
          throw exc;
        } finally {
          // Back under its fd only if it still owns it: once closed, the
          // number may already belong to another connection.
          if (transport._sock !== null && !loop._transports.has(fd)) loop._transports.set(fd, transport);
        }
      } finally {
        transport._resetEmptyWaiter();
        if (resumeReading) transport.resumeReading();
      }
    })());
  }

  /** @internal Starts accepting on a listening socket for a Server. */
  _startServing(protocolFactory: () => BaseProtocol, sock: Socket, server: Server, backlog: number, sslWrap?: SslWrap): void {
    this._watch(sock);
    this._addReader(sock.fileno(), () => this.#acceptConnection(protocolFactory, sock, server, backlog, sslWrap));
  }

  /** @internal */
  _stopServing(sock: Socket): void {
    this._removeReader(sock.fileno());
    sock.close();
  }

  #acceptConnection(protocolFactory: () => BaseProtocol, sock: Socket, server: Server, backlog: number, sslWrap?: SslWrap): void {
    // Accept up to `backlog` connections per readiness, as asyncio does,
    // so a burst of clients costs one wakeup.
    for (let i = 0, n = Math.max(1, backlog); i < n; i++) {
      const fd = ops().accept(sock.fileno());
      if (fd === -constants().EAGAIN || fd === -constants().EINTR || fd === -constants().ECONNABORTED) return;
      if (fd < 0) {
        const exc = socketError(fd, 'accept');
        const code = exc.code;
        if (code === 'EMFILE' || code === 'ENFILE' || code === 'ENOBUFS' || code === 'ENOMEM') {
          // Out of fds: stop accepting for a second instead of spinning;
          // the listener stays open (reliability.md F3).
          this.callExceptionHandler({ message: 'socket.accept() out of system resource', exception: exc, socket: sock });
          this._removeReader(sock.fileno());
          this.callLater(1, () => {
            if (server.isServing() && sock.fileno() >= 0) this._startServing(protocolFactory, sock, server, backlog, sslWrap);
          });
          return;
        }
        this.callExceptionHandler({ message: 'Error on accepting a connection', exception: exc, socket: sock });
        return;
      }
      const conn = new Socket(sock.family, sock.type, fd);
      let peer: SockAddr | undefined;
      try {
        peer = conn.getpeername();
      } catch {
        peer = undefined;
      }
      const extra = { peername: peer };
      try {
        const protocol = protocolFactory();
        if (sslWrap !== undefined) sslWrap(conn, protocol, extra, server);
        else this._makeSocketTransport(conn, protocol, null, extra, server);
      } catch (exc) {
        conn.close();
        this.callExceptionHandler({ message: 'Error on transport creation for incoming connection', exception: exc, socket: sock });
      }
    }
  }
}

/**
 * @internal Wraps an accepted connection in TLS (set by sslproto.ts): makes
 * the transport and attaches it to `server`.
 */
export type SslWrap = (sock: Socket, protocol: BaseProtocol, extra: Record<string, unknown>, server: Server | null) => void;



/** The selector loop for this platform (CPython's unix_events.SelectorEventLoop). */
export class SelectorEventLoop extends BaseSelectorEventLoop {}

/** The default loop class, as `asyncio.EventLoop`. */
export const EventLoop = SelectorEventLoop;

_setDefaultLoopFactory(() => new SelectorEventLoop());
_registerLoopKinds((kinds) => {
  for (const name of availableSelectors()) kinds.set(name, () => new SelectorEventLoop(new (selectorClass(name))()));
});

// ---------------------------------------------------------------- transports

/** "Try again when ready" from a sock* attempt. */
const AGAIN: unique symbol = Symbol('again');

/** asyncio's constants.LOG_THRESHOLD_FOR_CONNLOST_WRITES. */
const LOG_THRESHOLD_FOR_CONNLOST_WRITES = 5;
/** Most buffers one writev(2) takes (IOV_MAX on Linux). */
const IOV_MAX = 1024;
/** Largest single read, as asyncio's _SelectorTransport.max_size. */
const MAX_READ = 256 * 1024;
/**
 * Every read lands in one scratch buffer, reused for the life of the
 * process, and the protocol gets an exact-size copy. Reading into fresh
 * pool memory instead (Node's net hands out slices of a pool) costs a page
 * fault per 4 KiB touched: at 100 KiB messages that, not the copy, was the
 * bottleneck. The copy is what asyncio does too (recv() returns new bytes).
 */
const scratch = Buffer.allocUnsafeSlow(MAX_READ);

function toBytes(data: unknown, what = 'data'): Uint8Array {
  if (data instanceof Uint8Array) return data;
  if (typeof data === 'string') return Buffer.from(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  throw new TypeError(`${what} argument must be a bytes-like object, not ${data === null ? 'null' : typeof data === 'object' ? (data as object).constructor?.name ?? 'object' : typeof data}`);
}

export type { FileLike } from './events.js';

function fileFd(file: FileLike): number {
  const fd = typeof file === 'number' ? file : typeof (file as { fd?: unknown })?.fd === 'number' ? (file as { fd: number }).fd : typeof (file as { fileno?: unknown })?.fileno === 'function' ? (file as { fileno(): number }).fileno() : NaN;
  if (!Number.isInteger(fd) || fd < 0) throw new TypeError(describeArg('file', 'an fd, a FileHandle or an object with fileno()', file));
  return fd;
}

function checkSendfileArgs(offset: unknown, count: unknown): void {
  if (typeof offset !== 'number' || !Number.isInteger(offset) || offset < 0) {
    throw new RangeError(describeArg('offset', 'a non-negative integer', offset));
  }
  if (count !== undefined && (typeof count !== 'number' || !Number.isInteger(count) || count <= 0)) {
    throw new RangeError(describeArg('count', 'a positive integer', count));
  }
}

const SENDFILE_CHUNK = 1 << 30;

function* sendfileGen(loop: BaseSelectorEventLoop, sock: Socket, inFd: number, offset: number, count: number | undefined, fallback: boolean): Coroutine<number> {
  let sent = 0;
  for (;;) {
    const want = count === undefined ? SENDFILE_CHUNK : Math.min(SENDFILE_CHUNK, count - sent);
    if (want <= 0) return sent;
    // Asked anew every round: after a close the socket says -1, never a
    // number that may have been handed to another connection meanwhile.
    const outFd = sock.fileno();
    const n = outFd < 0 ? -constants().EBADF : ops().sendfile(outFd, inFd, offset + sent, want);
    if (n > 0) {
      sent += n;
      continue;
    }
    if (n === 0) return sent; // EOF
    if (n === -constants().EAGAIN || n === -constants().EINTR) {
      yield* waitWritable(loop, sock);
      continue;
    }
    // Not a file sendfile(2) can read (a pipe, a socket): asyncio falls back.
    if (sent === 0 && (n === -constants().EINVAL || n === -constants().ENOSYS || n === -95 /* EOPNOTSUPP */)) {
      if (!fallback) throw new SendfileNotAvailableError(`os.sendfile call failed: ${socketError(n, 'sendfile').message}`);
      return yield* sendfileFallbackGen(loop, sock, null, inFd, offset, count);
    }
    throw socketError(n, 'sendfile');
  }
}

function* waitWritable(loop: BaseSelectorEventLoop, sock: Socket): Coroutine<void> {
  const fd = liveFd(sock);
  loop._watch(sock);
  const fut = loop.createFuture<void>();
  const handle = loop._addWriter(fd, () => {
    if (!fut.done()) fut.setResult(undefined);
  });
  try {
    yield* fut;
  } finally {
    const key = loop._selector.getMap().get(fd) as SelectorKey<RW> | undefined;
    if (key !== undefined && key.data[1] === handle) loop._removeWriter(fd);
  }
}

function* sendfileFallbackGen(loop: BaseSelectorEventLoop, sock: Socket | null, transport: Transport | null, inFd: number, offset: number, count: number | undefined): Coroutine<number> {
  const chunk = Buffer.allocUnsafe(Math.min(count ?? 256 * 1024, 256 * 1024));
  let sent = 0;
  for (;;) {
    const want = count === undefined ? chunk.length : Math.min(chunk.length, count - sent);
    if (want <= 0) return sent;
    const n = fs.readSync(inFd, chunk, 0, want, offset + sent);
    if (n === 0) return sent;
    const data = Buffer.from(chunk.subarray(0, n));
    if (sock !== null) yield* loop.sockSendall(sock, data);
    else {
      // write() drops data once the transport closes: stop, don't count it as sent.
      if (transport!.isClosing()) throw new ConnectionError('sendfile: the transport was closed while the file was being sent');
      transport!.write(data);
      // Wait until the buffer drains below the low-water mark, as drain() would.
      if (transport!.getWriteBufferSize() > 0 && transport instanceof SelectorSocketTransport) {
        yield* transport._makeEmptyWaiter();
        transport._resetEmptyWaiter();
      }
    }
    sent += n;
  }
}

/** The fd of an open Socket. @throws OSError EBADF for a closed one, as Python's socket calls do. */
function liveFd(sock: Socket): number {
  if (!(sock instanceof Socket)) throw new TypeError(describeArg('sock', 'an aionode Socket', sock));
  const fd = sock.fileno();
  if (fd < 0) throw socketError(-constants().EBADF, 'socket');
  return fd;
}

/** The transport behind selector-based stream and datagram connections (asyncio's _SelectorTransport). */
abstract class SelectorTransport extends FlowControlTransport {
  /** @internal */ declare _loop: BaseSelectorEventLoop;
  /** @internal */ _sock: Socket | null;
  /** @internal The fd at creation: the _transports key and repr only, never an operand (see _fd). */ _sockFd: number;
  /** @internal */ _protocol: BaseProtocol;
  /** @internal */ _protocolConnected = false;
  /** @internal */ _server: Server | null;
  /** @internal Pending writes. */ _buffer: Uint8Array[] = [];
  /** @internal Bytes in _buffer. */ _bufferSize = 0;
  /** @internal Set when connectionLost is scheduled (then counts writes after it). */ _connLost = 0;
  /** @internal */ _closing = false;
  /** @internal */ _paused = false;
  /** @internal Writes dropped because close() was called (warned about once). */ _writesAfterClose = 0;

  constructor(loop: BaseSelectorEventLoop, sock: Socket, protocol: BaseProtocol, extra?: Record<string, unknown>, server?: Server | null) {
    super(extra, loop);
    this._extra.socket = sock;
    try {
      this._extra.sockname = sock.getsockname();
    } catch {
      this._extra.sockname = undefined;
    }
    if (!('peername' in this._extra)) {
      try {
        this._extra.peername = sock.getpeername();
      } catch {
        this._extra.peername = undefined;
      }
    }
    this._sock = sock;
    this._sockFd = sock.fileno();
    loop._watch(sock);
    this._protocol = protocol;
    this.setProtocol(protocol);
    this._server = server ?? null;
    this._server?._attach(this);
    loop._transports.set(this._sockFd, this);
  }

  override toString(): string {
    const info = [this.constructor.name];
    if (this._sock === null) info.push('closed');
    else if (this._closing) info.push('closing');
    info.push(`fd=${this._sockFd}`);
    info.push(`write=<bufsize=${this._bufferSize}>`);
    return `<${info.join(' ')}>`;
  }

  /**
   * @internal The fd to operate on, asked of the socket every time: -1 once
   * it is closed, never a number that may since name another connection.
   */
  get _fd(): number {
    const sock = this._sock;
    return sock === null ? -1 : sock.fileno();
  }

  /** @internal write() after close(): dropped, as asyncio does, with one warning. */
  _dropWrite(): void {
    if (++this._writesAfterClose === LOG_THRESHOLD_FOR_CONNLOST_WRITES) {
      logger.warning(`${String(this)}: ${LOG_THRESHOLD_FOR_CONNLOST_WRITES} writes after close() were dropped`);
    }
  }

  abort(): void {
    this._forceClose(undefined);
  }

  setProtocol(protocol: BaseProtocol): void {
    this._protocol = protocol;
    this._protocolConnected = true;
  }

  getProtocol(): BaseProtocol {
    return this._protocol;
  }

  isClosing(): boolean {
    return this._closing;
  }

  isReading(): boolean {
    return !this.isClosing() && !this._paused;
  }

  pauseReading(): void {
    if (!this.isReading()) return;
    this._paused = true;
    this._loop._removeReader(this._fd);
  }

  resumeReading(): void {
    if (this._closing || !this._paused) return;
    this._paused = false;
    this._addReaderIfReading();
  }

  /** @internal (Re)starts watching for reads. */
  abstract _addReaderIfReading(): void;

  close(): void {
    if (this._closing) return;
    this._closing = true;
    this._loop._removeReader(this._fd);
    if (this._bufferSize === 0) {
      this._connLost++;
      this._loop._removeWriter(this._fd);
      this._loop.callSoon(() => this._callConnectionLost(undefined));
    }
  }

  /** @internal */
  _fatalError(exc: unknown, message = 'Fatal error on transport'): void {
    // OS errors (resets, broken pipes) are the peer's doing, not a bug: they
    // reach the protocol through connectionLost only.
    if (!(exc instanceof OSError)) {
      this._loop.callExceptionHandler({ message, exception: exc, transport: this, protocol: this._protocol });
    }
    this._forceClose(exc as Error);
  }

  /** @internal */
  _forceClose(exc: Error | undefined): void {
    if (this._connLost) return;
    if (this._bufferSize > 0) {
      this._buffer = [];
      this._bufferSize = 0;
      this._loop._removeWriter(this._fd);
    }
    if (!this._closing) {
      this._closing = true;
      this._loop._removeReader(this._fd);
    }
    this._connLost++;
    this._loop.callSoon(() => this._callConnectionLost(exc));
  }

  /** @internal Exactly once per connection: tell the protocol, close the socket. */
  _callConnectionLost(exc: Error | undefined): void {
    if (this._sock === null) return;
    // From here on the connection is lost whichever path got here (a
    // flushed close() calls this directly): abort() and write() see it.
    if (this._connLost === 0) this._connLost = 1;
    try {
      if (this._protocolConnected) this._protocol.connectionLost(exc);
    } finally {
      if (this._loop._transports.get(this._sockFd) === this) this._loop._transports.delete(this._sockFd);
      // Socket.close() drops the registrations while the fd is still ours,
      // then closes it; _sock goes first so nothing re-enters with it.
      const sock = this._sock;
      this._sock = null;
      sock.close();
      const server = this._server;
      if (server !== null) {
        server._detach(this);
        this._server = null;
      }
    }
  }

  getWriteBufferSize(): number {
    return this._bufferSize;
  }
}

/** A TCP or Unix stream connection (asyncio's _SelectorSocketTransport). */
export class SelectorSocketTransport extends SelectorTransport {
  /** @internal */ _eof = false;
  /** @internal Resolved when the buffer empties (sendfile, drain helpers). */ _emptyWaiter: Future<void> | null = null;
  // Set by setProtocol, which the base constructor already calls: declared,
  // not initialized, so the field initializers do not reset it.
  /** @internal */ declare _buffered: boolean;
  #readHandle: () => void;
  #writeHandle: () => void;

  constructor(
    loop: BaseSelectorEventLoop,
    sock: Socket,
    protocol: BaseProtocol,
    waiter?: Future<void> | null,
    extra?: Record<string, unknown>,
    server?: Server | null,
  ) {
    super(loop, sock, protocol, extra, server);
    this.#readHandle = () => this._readReady();
    this.#writeHandle = () => this._writeReady();
    // Disable Nagle: small writes go out at once (asyncio does the same).
    const c = constants();
    if (sock.type === c.SOCK_STREAM && (sock.family === c.AF_INET || sock.family === c.AF_INET6)) {
      try {
        sock.setsockopt(c.IPPROTO_TCP, c.TCP_NODELAY, 1);
      } catch {
        // Not fatal: e.g. the peer is already gone.
      }
    }
    this._loop.callSoon(() => this._protocol.connectionMade(this));
    // Start reading only once connectionMade() has run.
    this._loop.callSoon(() => this._addReaderIfReading());
    if (waiter) this._loop.callSoon(() => _setResultUnlessCancelled(waiter, undefined));
  }

  override setProtocol(protocol: BaseProtocol): void {
    this._buffered = protocol instanceof BufferedProtocol;
    super.setProtocol(protocol);
  }

  /** @internal */
  _addReaderIfReading(): void {
    if (!this.isReading() || this._fd < 0) return;
    try {
      this._loop._addReader(this._fd, this.#readHandle);
    } catch (exc) {
      // E.g. an accepted fd over select's FD_SETSIZE: end this connection
      // cleanly rather than leave it open and unwatched.
      this._fatalError(exc, 'Fatal error: cannot watch the socket for reading');
    }
  }

  /** @internal */
  _readReady(): void {
    if (this._connLost) return;
    if (this._buffered) this.#readIntoBuffer();
    else this.#readData();
  }

  #readData(): void {
    const fd = this._fd;
    const n = fd < 0 ? -constants().EBADF : ops().recv(fd, scratch, 0, MAX_READ);
    if (n < 0) {
      if (n === -constants().EAGAIN || n === -constants().EINTR) return;
      this._fatalError(socketError(n, 'read'), 'Fatal read error on socket transport');
      return;
    }
    if (n === 0) {
      this.#onEof();
      return;
    }
    const data = Buffer.allocUnsafe(n);
    scratch.copy(data, 0, 0, n);
    try {
      (this._protocol as Protocol).dataReceived(data);
    } catch (exc) {
      this._fatalError(exc, 'Fatal error: protocol.data_received() call failed.');
    }
  }

  #readIntoBuffer(): void {
    let buf: Uint8Array;
    try {
      buf = (this._protocol as BufferedProtocol).getBuffer(-1);
      if (!(buf instanceof Uint8Array) || buf.length === 0) throw new RuntimeError('get_buffer() returned an empty buffer');
    } catch (exc) {
      this._fatalError(exc, 'Fatal error: protocol.get_buffer() call failed.');
      return;
    }
    const fd = this._fd;
    const n = fd < 0 ? -constants().EBADF : ops().recv(fd, buf, 0, buf.length);
    if (n < 0) {
      if (n === -constants().EAGAIN || n === -constants().EINTR) return;
      this._fatalError(socketError(n, 'read'), 'Fatal read error on socket transport');
      return;
    }
    if (n === 0) {
      this.#onEof();
      return;
    }
    try {
      (this._protocol as BufferedProtocol).bufferUpdated(n);
    } catch (exc) {
      this._fatalError(exc, 'Fatal error: protocol.buffer_updated() call failed.');
    }
  }

  #onEof(): void {
    let keepOpen: unknown;
    try {
      keepOpen = (this._protocol as Protocol).eofReceived();
    } catch (exc) {
      this._fatalError(exc, 'Fatal error: protocol.eof_received() call failed.');
      return;
    }
    // Kept open: the protocol may still write, but nothing more can be read.
    if (keepOpen) this._loop._removeReader(this._fd);
    else this.close();
  }

  /**
   * Writes data: sent at once when nothing is buffered, the rest buffered
   * and sent when the socket is writable. Strings are UTF-8 encoded.
   * @throws TypeError for non-bytes; RuntimeError after writeEof().
   */
  write(data: Uint8Array | string): void {
    const bytes = toBytes(data);
    if (this._eof) throw new RuntimeError('Cannot call write() after write_eof()');
    if (this._emptyWaiter !== null) throw new RuntimeError('unable to write; sendfile is in progress');
    if (bytes.length === 0) return;
    if (this._connLost) {
      if (this._connLost >= LOG_THRESHOLD_FOR_CONNLOST_WRITES) logger.warning('socket.send() raised exception.');
      this._connLost++;
      return;
    }
    // After close() nothing more is accepted: what was buffered before it
    // still goes out, to this socket only.
    if (this._closing) {
      this._dropWrite();
      return;
    }
    let rest = bytes;
    if (this._bufferSize === 0) {
      // Try to send now: usually it all goes and nothing is buffered.
      const fd = this._fd;
      const n = fd < 0 ? -constants().EBADF : ops().send(fd, bytes, 0, bytes.length);
      if (n < 0) {
        if (n !== -constants().EAGAIN && n !== -constants().EINTR) {
          this._fatalError(socketError(n, 'write'), 'Fatal write error on socket transport');
          return;
        }
      } else {
        if (n === bytes.length) return;
        rest = bytes.subarray(n);
      }
      this._loop._addWriter(fd, this.#writeHandle);
    }
    // The caller may reuse its buffer after write() returns: keep a copy.
    this._buffer.push(rest === bytes ? Buffer.from(bytes) : Buffer.from(rest));
    this._bufferSize += rest.length;
    this._maybePauseProtocol();
  }

  /** Writes several buffers; gathered into one writev(2) when possible. */
  override writelines(list: Iterable<Uint8Array | string>): void {
    if (this._eof) throw new RuntimeError('Cannot call writelines() after write_eof()');
    if (this._emptyWaiter !== null) throw new RuntimeError('unable to writelines; sendfile is in progress');
    // Convert everything first: a bad item must not leave half a list buffered.
    const items = [...list].map((d) => toBytes(d));
    if (this._closing && !this._connLost) {
      if (items.some((b) => b.length > 0)) this._dropWrite();
      return;
    }
    let added = 0;
    const wasEmpty = this._bufferSize === 0;
    for (const b of items) {
      if (b.length === 0) continue;
      this._buffer.push(Buffer.from(b));
      this._bufferSize += b.length;
      added++;
    }
    if (added === 0) return;
    if (this._connLost) {
      this._buffer = [];
      this._bufferSize = 0;
      this._connLost++;
      return;
    }
    if (wasEmpty) {
      this._writeReady();
      if (this._bufferSize > 0 && !this._connLost) this._loop._addWriter(this._fd, this.#writeHandle);
    }
    this._maybePauseProtocol();
  }

  /** @internal The socket is writable: flush as much of the buffer as it takes. */
  _writeReady(): void {
    if (this._connLost || this._bufferSize === 0) return;
    const batch = this._buffer.length > IOV_MAX ? this._buffer.slice(0, IOV_MAX) : this._buffer;
    const fd = this._fd;
    const n = fd < 0 ? -constants().EBADF : batch.length === 1 ? ops().send(fd, batch[0], 0, batch[0].length) : ops().writev(fd, batch);
    if (n < 0) {
      if (n === -constants().EAGAIN || n === -constants().EINTR) return;
      this._loop._removeWriter(fd);
      this._buffer = [];
      this._bufferSize = 0;
      const exc = socketError(n, 'write');
      this._fatalError(exc, 'Fatal write error on socket transport');
      if (this._emptyWaiter !== null) this._emptyWaiter.setException(exc);
      return;
    }
    this.#consume(n);
    this._maybeResumeProtocol(); // may write more
    if (this._bufferSize === 0) {
      this._loop._removeWriter(fd);
      if (this._emptyWaiter !== null) this._emptyWaiter.setResult(undefined);
      if (this._closing) this._callConnectionLost(undefined);
      else if (this._eof) this.#shutdownWrite();
    }
  }

  #consume(n: number): void {
    this._bufferSize -= n;
    const buf = this._buffer;
    let i = 0;
    while (n > 0) {
      const b = buf[i];
      if (b.length <= n) {
        n -= b.length;
        i++;
      } else {
        buf[i] = b.subarray(n);
        n = 0;
      }
    }
    if (i > 0) buf.splice(0, i);
  }

  #shutdownWrite(): void {
    try {
      this._sock?.shutdown(constants().SHUT_WR);
    } catch {
      // The peer may already be gone; connectionLost reports what matters.
    }
  }

  /** Half-closes once the buffer is flushed: the peer reads EOF. */
  writeEof(): void {
    if (this._closing || this._eof) return;
    this._eof = true;
    if (this._bufferSize === 0) this.#shutdownWrite();
  }

  canWriteEof(): boolean {
    return true;
  }

  /** @internal A Future resolved once the write buffer is empty. */
  _makeEmptyWaiter(): Future<void> {
    if (this._emptyWaiter !== null) throw new RuntimeError('Empty waiter is already set');
    this._emptyWaiter = this._loop.createFuture<void>();
    if (this._bufferSize === 0) this._emptyWaiter.setResult(undefined);
    return this._emptyWaiter;
  }

  /** @internal */
  _resetEmptyWaiter(): void {
    this._emptyWaiter = null;
  }

  override _callConnectionLost(exc: Error | undefined): void {
    super._callConnectionLost(exc);
    // A sendfile waiting for the buffer to drain must not wait forever.
    const waiter = this._emptyWaiter;
    if (waiter !== null && !waiter.done()) waiter.setException(new ConnectionError('Connection is closed by peer'));
  }

  override close(): void {
    super.close();
  }
}

/** A UDP or Unix datagram endpoint (asyncio's _SelectorDatagramTransport). */
export class SelectorDatagramTransport extends SelectorTransport {
  /** @internal */ _address: SockAddr | undefined;
  #dgBuffer: [Uint8Array, SockAddr | undefined][] = [];
  #readHandle: () => void;
  #writeHandle: () => void;
  #addrOut: unknown[] = [];

  constructor(
    loop: BaseSelectorEventLoop,
    sock: Socket,
    protocol: DatagramProtocol,
    address?: SockAddr,
    waiter?: Future<void> | null,
    extra?: Record<string, unknown>,
  ) {
    super(loop, sock, protocol, extra);
    this._address = address;
    this.#readHandle = () => this._readReady();
    this.#writeHandle = () => this._sendtoReady();
    this._loop.callSoon(() => this._protocol.connectionMade(this as unknown as Transport));
    this._loop.callSoon(() => this._addReaderIfReading());
    if (waiter) this._loop.callSoon(() => _setResultUnlessCancelled(waiter, undefined));
  }

  /** @internal */
  _addReaderIfReading(): void {
    if (!this.isReading() || this._fd < 0) return;
    this._loop._addReader(this._fd, this.#readHandle);
  }

  /** @internal */
  _readReady(): void {
    if (this._connLost) return;
    const buf = Buffer.allocUnsafe(MAX_READ);
    const fd = this._fd;
    const n = fd < 0 ? -constants().EBADF : ops().recvfrom(fd, buf, this.#addrOut);
    if (n < 0) {
      if (n === -constants().EAGAIN || n === -constants().EINTR) return;
      const exc = socketError(n, 'recvfrom');
      try {
        (this._protocol as DatagramProtocol).errorReceived(exc);
      } catch (e) {
        this._fatalError(e, 'Fatal read error on datagram transport');
      }
      return;
    }
    const addr = (this.#addrOut.length === 1 ? this.#addrOut[0] : this.#addrOut.slice()) as SockAddr;
    try {
      (this._protocol as DatagramProtocol).datagramReceived(Buffer.from(buf.subarray(0, n)), addr);
    } catch (exc) {
      this._fatalError(exc, 'Fatal error: protocol.datagram_received() call failed.');
    }
  }

  override getWriteBufferSize(): number {
    return this._bufferSize;
  }

  #errorReceived(exc: OSError): void {
    try {
      (this._protocol as DatagramProtocol).errorReceived(exc);
    } catch (e) {
      this._fatalError(e, 'Fatal error: protocol.error_received() call failed.');
    }
  }

  /**
   * Sends one datagram to `addr`, or to the connected peer.
   * @throws RangeError when `addr` differs from the connected address.
   */
  sendto(data: Uint8Array | string, addr?: SockAddr): void {
    const bytes = toBytes(data);
    if (this._address !== undefined && addr !== undefined && formatAddress(addr) !== formatAddress(this._address)) {
      throw new RangeError(`Invalid address: must be undefined or ${formatAddress(this._address)}`);
    }
    if (this._connLost) {
      if (this._connLost >= LOG_THRESHOLD_FOR_CONNLOST_WRITES) logger.warning('socket.send() raised exception.');
      this._connLost++;
      return;
    }
    if (this._closing) {
      this._dropWrite();
      return;
    }
    const target = this._address === undefined ? addr : undefined;
    if (this.#dgBuffer.length === 0) {
      const fd = this._fd;
      const n = fd < 0 ? -constants().EBADF : target === undefined ? ops().send(fd, bytes, 0, bytes.length) : ops().sendto(fd, bytes, target);
      if (n >= 0) return;
      if (n !== -constants().EAGAIN && n !== -constants().EINTR) {
        // A failed datagram (EMSGSIZE, ECONNREFUSED from an earlier ICMP
        // error, ...) is the protocol's to hear of; the endpoint stays open.
        this.#errorReceived(socketError(n, 'sendto', target));
        return;
      }
      this._loop._addWriter(this._fd, this.#writeHandle);
    }
    this.#dgBuffer.push([Buffer.from(bytes), target]);
    this._bufferSize += bytes.length + 8;
    this._maybePauseProtocol();
  }

  /** @internal */
  _sendtoReady(): void {
    while (this.#dgBuffer.length > 0) {
      const [data, addr] = this.#dgBuffer[0];
      const fd = this._fd;
      const n = fd < 0 ? -constants().EBADF : addr === undefined ? ops().send(fd, data, 0, data.length) : ops().sendto(fd, data, addr);
      if (n < 0) {
        if (n === -constants().EAGAIN || n === -constants().EINTR) return;
        this.#dgBuffer.shift();
        this._bufferSize -= data.length + 8;
        this.#errorReceived(socketError(n, 'sendto', addr));
        continue;
      }
      this.#dgBuffer.shift();
      this._bufferSize -= data.length + 8;
    }
    this._maybeResumeProtocol();
    this._loop._removeWriter(this._fd);
    if (this._closing) this._callConnectionLost(undefined);
  }

  // Datagram transports have no stream half-close.
  write(): void {
    throw new RuntimeError('Use sendto() on a datagram transport');
  }
  writeEof(): void {
    throw new RuntimeError('Datagram transports do not support writeEof()');
  }
  canWriteEof(): boolean {
    return false;
  }
}
