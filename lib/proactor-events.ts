/**
 * Event loop using a proactor and related classes.
 *
 * Port of CPython Lib/asyncio/proactor_events.py (3.14), with the op layer
 * of windows_events.py's IocpProactor (recv, send, accept, connect, cancel)
 * folded in. A proactor is a "notify-on-completion" multiplexer: every
 * operation is submitted with a token, the kernel performs it, and its
 * result comes back as a `(token, result)` pair in the loop's batch. On
 * Linux the proactor is io_uring (the addon's NativeProactor), hosted in
 * Node's loop exactly as a selector is (ring fd in one uv_poll_t).
 *
 * Rules this file keeps (issue 9 item 5):
 * - One token per op, never reused while that op is live: a completion for
 *   an fd number that was closed and reused can never reach the new owner.
 * - Cancelling an op's Future asks the kernel to cancel it, but the op
 *   lives until its completion arrives; bytes (or a connection) that
 *   complete after a cancelled read are kept for the next reader.
 * - A socket with ops in flight is closed by the proactor (`closeFd`),
 *   after the kernel is done with it, so its number cannot be reused under
 *   an op still running.
 * - The sock* reads of one socket run one at a time in call order (and so
 *   do its writes): the kernel orders neither two recvs in flight on one
 *   socket nor a new recv against a cancelled one still out.
 *
 * Where the proactor and the selector loop would differ observably, the
 * transports follow the selector loop (the suites run on both): write()
 * sends at once when nothing is queued or in flight (no copy, no op; a
 * dead peer is found by the write), only the rest goes through the queue
 * and its send/writev ops; pauseReading() cancels the read in flight (what
 * it brings anyway is held) so that no more bytes leave the kernel; a read
 * is resubmitted only after its bytes were delivered.
 */
import * as fs from 'node:fs';
import { _registerLoopKinds, fileobjToFd, Handle, type FileDescriptorLike, type FileLike } from './events.js';
import { BaseEventLoop, type ReadyItem, type Server } from './base-events.js';
import type { Coroutine } from './coroutines.js';
import { ConnectionError, describeArg, makeOSError, OSError, RuntimeError, SendfileNotAvailableError } from './exceptions.js';
import { Future, _setResultUnlessCancelled } from './futures.js';
import { logger } from './log.js';
import { BaseProtocol, BufferedProtocol, type DatagramProtocol, type Protocol } from './protocols.js';
import { constants, ops, socketError, formatAddress, Socket, type SockAddr } from './socket.js';
import { FlowControlTransport, type Transport } from './transports.js';
import { binding, type NativeProactor, type NativeSocketAddress } from './native.js';
import { NativeDriver } from './driver.js';

type Callback = (...args: any[]) => unknown;

/**
 * ECANCELED: the result of a cancelled op. Not in the addon's constants;
 * io_uring is Linux-only, where it is 125 on every architecture.
 */
const ECANCELED = 125;
/** ESPIPE: sendfile(2) from something that has no offsets (a socket, a pipe). Linux value. */
const ESPIPE = 29;

/** Readiness bits of a poll op (selectors' EVENT_READ / EVENT_WRITE). */
const EVENT_READ = 1;
const EVENT_WRITE = 2;

/** asyncio's constants.LOG_THRESHOLD_FOR_CONNLOST_WRITES. */
const LOG_THRESHOLD_FOR_CONNLOST_WRITES = 5;
/** Most buffers one writev op takes (IOV_MAX on Linux). */
const IOV_MAX = 1024;
/**
 * A stream transport's read buffer (one per transport, reused for every
 * read, pinned while its read is in flight): it starts small, since every
 * idle connection holds one, and grows while reads fill it (bulk
 * transfers), up to 64 KiB. Not the selector transport's 256 KiB: that
 * is one shared scratch buffer, while here every busy connection holds its
 * own and large reads hand it over (STREAM_READ_HANDOVER), so a fresh one
 * is allocated per large read; above glibc's mmap threshold (128 KiB) each
 * is an mmap with page faults on first touch. Measured on a 100 KiB echo,
 * 100 connections: 64 KiB 17k round trips/s, 128 and 256 KiB 12k (10
 * connections: 19k vs 23k).
 */
const STREAM_READ_MIN = 16 * 1024;
const STREAM_READ_MAX = 64 * 1024;
/** Reads of at least this many bytes hand the read buffer itself to the protocol (see #handleRead). */
const STREAM_READ_HANDOVER = 32 * 1024;
/** Consecutive large (>= STREAM_READ_HANDOVER) or small (< BULK_SMALL) reads that switch bulk mode on or off. */
const BULK_AFTER = 2;
const BULK_SMALL = 4 * 1024;
/**
 * Starting-size read buffers of closed connections, reused by new ones: a
 * server with connection churn then allocates none (a buffer goes back
 * only once the kernel is done with it).
 */
const readBufPool: Buffer[] = [];
const READ_BUF_POOL_MAX = 256;

function takeReadBuf(): Buffer {
  return readBufPool.pop() ?? Buffer.allocUnsafeSlow(STREAM_READ_MIN);
}

function giveReadBuf(buf: Buffer): void {
  if (buf.length === STREAM_READ_MIN && readBufPool.length < READ_BUF_POOL_MAX) readBufPool.push(buf);
}
/**
 * The recv-many pool (multishot recv, where the kernel has it): one per
 * loop, shared by every stream transport's reads, RECV_POOL_COUNT buffers
 * of RECV_POOL_SIZE bytes. Every read lands in a buffer the kernel takes
 * from the pool's ring; the bytes are copied out in the batch that reports
 * them and the buffer goes back to the ring at the next pass, so the pool
 * stays warm (mapped, in cache) however many connections come and go,
 * where per-connection read buffers are cold for each new one. Its memory
 * is only touched as the kernel uses it.
 */
const RECV_POOL_SIZE = 16 * 1024;
const RECV_POOL_COUNT = 256;
/** A recv-many chunk's value: buffer id above, length in the low 17 bits (proactor.h PackRecvChunk). */
const RECV_LEN_BITS = 17;
const RECV_LEN_MASK = (1 << RECV_LEN_BITS) - 1;
/** The buffer of a read that brought no bytes (EOF, errors). */
const EMPTY = Buffer.alloc(0);
/** Largest datagram read, as the selector transport's. */
const DGRAM_READ_SIZE = 256 * 1024;

const unclosedLoops = new FinalizationRegistry<string>((repr) => {
  process.emitWarning(`unclosed event loop ${repr}`, 'ResourceWarning');
});

// ---------------------------------------------------------------- proactor

/**
 * The io_uring proactor: the JavaScript face of the addon's NativeProactor,
 * to hand to {@link ProactorEventLoop} (as a selector is handed to
 * SelectorEventLoop).
 * @example
 * const loop = new ProactorEventLoop(new IoUringProactor());
 * @throws OSError when the kernel refuses io_uring (ENOSYS, EPERM) or lacks a required opcode.
 */
export class IoUringProactor {
  /** @internal The addon's proactor (kept after close: `pending` still reads it). */ _native: NativeProactor;
  /** @internal The loop it serves: one loop per proactor. */ _loop: object | null = null;
  /** `'io_uring'`. */
  readonly name: string;

  /** @param entries submission queue size (the addon's default when omitted). */
  constructor(entries?: number) {
    if (entries !== undefined && (!Number.isInteger(entries) || entries <= 0)) {
      throw new RangeError(describeArg('entries', 'a positive integer', entries));
    }
    const Ctor = binding().NativeProactor;
    if (typeof Ctor !== 'function') {
      throw new RuntimeError('This build of aionode has no proactor (NativeProactor is missing from the addon)');
    }
    this._native = entries === undefined ? new Ctor('io_uring') : new Ctor('io_uring', entries);
    this.name = this._native.name;
  }

  /** What the runtime probe found (opcodes and features by name), e.g. `multishotAccept`. */
  get features(): Readonly<Record<string, boolean>> {
    return this._native.features;
  }

  /** Ops submitted whose completion has not been delivered yet; 0 after close() (every buffer freed). */
  get pending(): number {
    return this._native.pending;
  }

  get closed(): boolean {
    return this._native.closed;
  }

  /** Cancels every op, waits for the kernel, frees every pinned buffer, closes the ring. Idempotent. */
  close(): void {
    this._native.close();
  }

  toString(): string {
    return `<${this.constructor.name} ${this.name}${this._native.closed ? ' closed' : ` pending=${this._native.pending}`}>`;
  }
}

/** Which proactors this build has and this kernel allows (`['io_uring']` or `[]`). */
export function availableProactors(): string[] {
  const b = binding();
  if (typeof b.availableProactors !== 'function') return [];
  return b.availableProactors().split(',').filter((s) => s !== '');
}

// ---------------------------------------------------------------- op layer

type OpCallback = (result: number, op: Op) => void;

/**
 * One operation in flight (IocpProactor's overlapped + future, without the
 * future for transports). It is its own ready item: `_processEvent` files
 * the result and queues it, so its callback runs in the pass, in order,
 * never inside the native batch.
 * @internal
 */
export class Op implements ReadyItem {
  /** The token of the current submission (a retry after EAGAIN gets a fresh one). */
  token = 0;
  result = 0;
  /** The peer of a recvfrom/accept completion (read in the batch, as the addon requires). */
  addr: NativeSocketAddress | null = null;
  /** Set once we asked the kernel to cancel it (its completion still comes). */
  cancelled = false;
  /** Set when its socket was closed under it: -ECANCELED then means EBADF. */
  closed = false;
  /** Waiting for readiness after an -EAGAIN, before submitting again. */
  polling = false;
  /** The Future a sock* call returned, cancelled when the loop closes. */
  fut: Future<any> | null = null;
  /** A recv-many chunk's bytes (copied out of the pool), while its callback runs. */
  data: Buffer | null = null;
  /** The recv-many chunks of this batch not delivered yet (more are added to it). */
  chunks: ChunkCompletion | null = null;

  constructor(
    readonly loop: BaseProactorEventLoop,
    readonly kind: string,
    readonly fd: number,
    /** Direction to poll for before retrying after -EAGAIN (0: no retry). */
    readonly retryEvents: number,
    readonly start: (token: number) => number,
    readonly cb: OpCallback,
    readonly wantAddr = false,
    readonly multi = false,
  ) {}

  _run(): void {
    this.loop._complete(this, this.result, this.addr);
  }

  toString(): string {
    return `<Op ${this.kind} fd=${this.fd} token=${this.token}${this.cancelled ? ' cancelled' : ''}>`;
  }
}

/** One completion of a multishot op (acceptMany, recvMany): several can be queued in one batch. */
class MultiCompletion implements ReadyItem {
  constructor(
    readonly op: Op,
    readonly result: number,
    readonly addr: NativeSocketAddress | null,
    readonly data: Buffer | null = null,
  ) {}
  _run(): void {
    this.op.loop._complete(this.op, this.result, this.addr, this.data);
  }
  toString(): string {
    return `<completion of ${this.op.toString()}>`;
  }
}

/**
 * The recv-many chunks of one op in one batch, as one completion. The
 * bytes are copied out of the pool when it runs: the pool buffers a batch
 * reports stay ours until that batch returns to the addon (the next pass
 * gives them back to the kernel), and `_runOnce` runs every item the
 * batch's events queued before it returns. `batch` checks that.
 */
class ChunkCompletion implements ReadyItem {
  /** (offset, length) pairs in the pool, in order. */
  readonly pieces: number[];
  constructor(
    readonly op: Op,
    readonly batch: number,
    off: number,
    public len: number,
  ) {
    this.pieces = [off, len];
  }
  _run(): void {
    const op = this.op;
    const loop = op.loop;
    if (op.chunks === this) op.chunks = null;
    if (loop._batchSeq() !== this.batch) {
      // Cannot happen (see above); were it to, the bytes are gone.
      loop._complete(op, -constants().EIO, null);
      return;
    }
    const pool = loop._recvPool!;
    const p = this.pieces;
    const data = Buffer.allocUnsafe(this.len);
    for (let i = 0, at = 0; i < p.length; i += 2) {
      pool.copy(data, at, p[i], p[i] + p[i + 1]);
      at += p[i + 1];
    }
    loop._complete(op, this.len, null, data);
  }
  toString(): string {
    return `<chunks of ${this.op.toString()}>`;
  }
}

/** The sock* calls of one socket and direction, run one at a time. */
interface SockChain {
  busy: boolean;
  queue: { fut: Future<any>; go: () => void }[];
}

/** What a cancelled read delivered after all, kept for the socket's next reader. */
type Leftover =
  | { kind: 'data'; data: Buffer }
  | { kind: 'dgram'; data: Buffer; addr: SockAddr }
  | { kind: 'conn'; sock: Socket; addr: SockAddr };

interface Watch {
  handles: [Handle | null, Handle | null];
  ops: [Op | null, Op | null];
}

// ---------------------------------------------------------------- loop

/**
 * Proactor event loop: asyncio's BaseProactorEventLoop. Sockets, transports
 * and servers run on completions of a proactor's ops; `addReader` /
 * `addWriter` run on its one-shot poll ops, re-armed after every callback
 * (level-triggered, as a selector).
 */
export class BaseProactorEventLoop extends BaseEventLoop {
  /** @internal */ _proactor: IoUringProactor;
  /** @internal The ops face. */ _p: NativeProactor;
  /** @internal Live ops by token. */ readonly _ops = new Map<number, Op>();
  /** @internal The last token handed out. */ _nextToken = 0;
  /** Live ops by fd: a socket closed with ops in flight is closed by the proactor. */
  readonly #fdOps = new Map<number, Set<Op>>();
  /** Bytes, datagrams and connections that completed after their read was cancelled. */
  readonly #leftovers = new WeakMap<Socket, Leftover[]>();
  readonly #watches = new Map<number, Watch>();
  /** @internal Transports by fd: their fds are off limits to addReader & co. */
  _transports = new Map<number, unknown>();
  /** @internal acceptMany ops of the servers, by listening socket. */
  readonly _acceptOps = new Map<Socket, Op>();
  /**
   * @internal The recv-many pool: undefined until the first stream read
   * asks for it, null where the kernel (or the test hook) has no multishot
   * recv: stream transports then read with plain recv ops.
   */
  _recvPool: Buffer | null | undefined = undefined;
  /** @internal The pool's [buffer size, count], read when it is made (tests shrink it). */
  _recvPoolShape: [number, number] = [RECV_POOL_SIZE, RECV_POOL_COUNT];
  #poolBufSize = RECV_POOL_SIZE;
  /** Counts batches: recv-many bytes are valid only in the batch that reported them. */
  #batchSeq = 0;

  /** @param proactor the completion source; a new {@link IoUringProactor} when omitted. */
  constructor(proactor?: IoUringProactor) {
    if (proactor === undefined) proactor = new IoUringProactor();
    if (!(proactor instanceof IoUringProactor)) {
      throw new TypeError(describeArg('proactor', 'an aionode proactor (IoUringProactor)', proactor));
    }
    const native = proactor._native;
    if (native.closed) throw new TypeError('The proactor is closed');
    if (proactor._loop !== null) throw new TypeError(`The proactor ${String(proactor)} already serves another loop`);
    super((events, onBatch) => new NativeDriver(native, events, onBatch));
    proactor._loop = this;
    this._proactor = proactor;
    this._p = native;
    unclosedLoops.register(this, `<${this.constructor.name} ${proactor.name}>`, this);
  }

  /** Closes the proactor: the kernel finishes every op, every pinned buffer is freed. */
  protected override _closeIO(): void {
    unclosedLoops.unregister(this);
    this._ops.clear();
    this.#fdOps.clear();
    this.#watches.clear();
    this._acceptOps.clear();
    this._proactor.close();
  }

  /**
   * Closes the loop. Ops still in flight are cancelled: the Futures of
   * sock* calls are cancelled first (their callbacks need a live loop, as
   * in asyncio's BaseProactorEventLoop.close), then the proactor waits for
   * the kernel and frees every buffer.
   */
  override close(): void {
    if (this.isRunning()) throw new RuntimeError('Cannot close a running event loop');
    if (this.isClosed()) return;
    for (const op of this._ops.values()) {
      op.cancelled = true;
      op.fut?.cancel();
    }
    for (const fut of this.#queued) fut.cancel();
    this.#queued.clear();
    super.close();
  }

  // ------------------------------------------------------------ op layer

  /** A fresh token: increasing positive int32, wrapping, skipping live ones. */
  #token(): number {
    let t = this._nextToken;
    do {
      t = t >= 0x7fffffff ? 1 : t + 1;
    } while (this._ops.has(t));
    this._nextToken = t;
    return t;
  }

  /**
   * @internal Submits an op. Its callback runs exactly once, from a later
   * pass, with the result (a submission the proactor refused completes
   * with its negative errno the same way), except multishot ops, which
   * call back once per completion until the first negative result.
   */
  _submit(
    kind: string,
    fd: number,
    retryEvents: number,
    start: (token: number) => number,
    cb: OpCallback,
    options: { wantAddr?: boolean; multi?: boolean } = {},
  ): Op {
    if (this.isClosed()) throw new RuntimeError('Event loop is closed');
    const op = new Op(this, kind, fd, retryEvents, start, cb, options.wantAddr ?? false, options.multi ?? false);
    this.#start(op, start);
    return op;
  }

  #start(op: Op, start: (token: number) => number): void {
    const token = this.#token();
    op.token = token;
    const rc = start(token);
    if (rc < 0) {
      // Refused (bad fd, ring full, ...): nothing queued, nothing pinned.
      // Reported like a completion, from the next pass, so every caller
      // has one path.
      op.result = rc;
      op.addr = null;
      this._addReady(op);
      return;
    }
    this._ops.set(token, op);
    let set = this.#fdOps.get(op.fd);
    if (set === undefined) this.#fdOps.set(op.fd, (set = new Set()));
    set.add(op);
  }

  #forget(op: Op): void {
    this._ops.delete(op.token);
    const set = this.#fdOps.get(op.fd);
    // An fd's set stays when it empties: a transport's next read comes
    // right after (a new Set per read was measurable on the echo path);
    // the socket's close drops it.
    if (set !== undefined) set.delete(op);
  }

  /** @internal */
  override _runOnce(nevents: number): number {
    this.#batchSeq++;
    return super._runOnce(nevents);
  }

  /** @internal The current batch's number (ChunkCompletion's check). */
  _batchSeq(): number {
    return this.#batchSeq;
  }

  /** @internal Whether stream reads use recv-many ops (sets the pool up on first call). */
  _recvManyReady(): boolean {
    let pool = this._recvPool;
    if (pool === undefined) {
      pool = null;
      const f = this._p.features;
      if (f.multishotRecv && f.providedBufferRing && !this._p.closed) {
        const [size, count] = this._recvPoolShape;
        const buf = Buffer.allocUnsafeSlow(size * count);
        // A refusal (memory limits on the ring) leaves the plain path.
        if (this._p.providePool(buf, size) === 0) {
          pool = buf;
          this.#poolBufSize = size;
        }
      }
      this._recvPool = pool;
    }
    return pool !== null;
  }

  /** @internal Whether `op` is still waiting for its (final) completion. */
  _isLive(op: Op): boolean {
    return this._ops.get(op.token) === op;
  }

  /**
   * @internal Asks the kernel to cancel `op` (its completion still comes,
   * maybe with data). False when it had already completed.
   */
  _cancelOp(op: Op): boolean {
    if (op.cancelled) return this._isLive(op);
    op.cancelled = true;
    if (!this._isLive(op) || this.isClosed()) return false;
    return this._p.cancel(op.token) === 0;
  }

  /** @internal Submits `op` again (a partial send, the rest of a sendall) with a new token. */
  _again(op: Op): void {
    op.polling = false;
    this.#start(op, op.start);
  }

  protected _processEvent(token: number, result: number): void {
    const op = this._ops.get(token);
    // No op: a stale pair (cannot happen with unique tokens, but a token
    // is only trusted while its op is live).
    if (op === undefined) return;
    if (op.multi) {
      if (op.kind === 'recvMany') {
        if (result > 0) {
          // The bytes are ours only in this batch: copied now.
          // Where the bytes are; copied out when the completion runs, in
          // this same batch (see ChunkCompletion). Chunks of one op in one
          // batch are delivered as one, up to a plain read's size (flow
          // control and stream limits see reads of the size they expect).
          const len = result & RECV_LEN_MASK;
          const off = (result >>> RECV_LEN_BITS) * this.#poolBufSize;
          const c = op.chunks;
          if (c !== null && c.batch === this.#batchSeq && c.len + len <= STREAM_READ_MAX) {
            c.pieces.push(off, len);
            c.len += len;
          } else {
            this._ready.push((op.chunks = new ChunkCompletion(op, this.#batchSeq, off, len)));
          }
          return;
        }
      } else if (result >= 0) {
        this._ready.push(new MultiCompletion(op, result, op.wantAddr ? this._p.address(token) : null));
        return;
      }
    }
    const addr = op.wantAddr && result >= 0 ? this._p.address(token) : null;
    this.#forget(op);
    op.result = result;
    op.addr = addr;
    this._ready.push(op);
  }

  /** @internal Runs a completion (from the ready queue). */
  _complete(op: Op, result: number, addr: NativeSocketAddress | null, data: Buffer | null = null): void {
    if (this.isClosed()) return;
    const c = constants();
    if (op.polling) {
      // The readiness wait of a retry: now submit the op itself again.
      op.polling = false;
      if (result >= 0 && !op.cancelled && !op.closed) {
        this.#start(op, op.start);
        return;
      }
      if (result >= 0) result = -ECANCELED;
    } else if (result === -c.EAGAIN && op.retryEvents !== 0 && !op.cancelled && !op.closed) {
      // A non-blocking socket may make the kernel answer EAGAIN instead of
      // waiting: wait for readiness with a poll op, then try again.
      op.polling = true;
      this.#start(op, (t) => this._p.poll(t, op.fd, op.retryEvents));
      return;
    }
    if (result === -ECANCELED && op.closed) result = -c.EBADF;
    op.addr = addr;
    op.data = data;
    try {
      op.cb(result, op);
    } catch (exc) {
      this.callExceptionHandler({ message: `Exception in the completion of ${op.toString()}`, exception: exc });
    } finally {
      op.data = null;
    }
  }

  /**
   * @internal Called by a Socket this loop uses just before its fd is
   * closed or detached. Poll registrations on it are dropped and their
   * callbacks run once more (they see fd -1, as on the selector loop). Ops
   * in flight are cancelled; on close, the proactor closes the fd once the
   * kernel has finished with them, so the number stays taken until no
   * completion can name it.
   */
  readonly #onSocketClose = (fd: number, closing: boolean): boolean => {
    if (this.isClosed() || this._p.closed) return false;
    const w = this.#watches.get(fd);
    if (w !== undefined) {
      this.#watches.delete(fd);
      for (const which of [0, 1] as const) {
        const op = w.ops[which];
        if (op !== null) this._cancelOp(op);
        const h = w.handles[which];
        if (h !== null && !h._cancelled) this._addReady(h);
      }
    }
    const set = this.#fdOps.get(fd);
    if (set === undefined) return false;
    if (set.size === 0) {
      this.#fdOps.delete(fd);
      return false;
    }
    for (const op of set) {
      op.closed = true;
      op.cancelled = true;
    }
    if (!closing) {
      this._p.cancelFd(fd);
      return false;
    }
    try {
      this._p.closeFd(fd);
      return true;
    } catch {
      // The proactor would not take it (not an fd it may close): the ops
      // are cancelled and the Socket closes it itself, as without ops.
      this._p.cancelFd(fd);
      return false;
    }
  };

  /**
   * @internal A pipe or a pidfd (unix-events.ts) is about to be closed by
   * its owner. Its poll ops are cancelled, and the owner closes it at once
   * (false): the owner's close may be a FileHandle's, which the proactor
   * cannot run, and a poll op holds the file itself, not the number, while
   * its late completion carries its own token, which no later op reuses,
   * so a reused number cannot receive it.
   */
  override _fdClosing(fd: number): boolean {
    this.#onSocketClose(fd, false);
    return false;
  }

  /** @internal Watches `sock`: its close() goes through this loop first. */
  _watch(sock: Socket): void {
    sock._onClose(this.#onSocketClose);
  }

  /** @internal Takes what cancelled reads of `sock` delivered late. */
  _takeLeftover<K extends Leftover['kind']>(sock: Socket, kind: K): Extract<Leftover, { kind: K }> | undefined {
    const list = this.#leftovers.get(sock);
    if (list === undefined) return undefined;
    const i = list.findIndex((l) => l.kind === kind);
    if (i < 0) return undefined;
    const [item] = list.splice(i, 1);
    if (list.length === 0) this.#leftovers.delete(sock);
    return item as Extract<Leftover, { kind: K }>;
  }

  /** @internal Keeps what a cancelled read delivered for the next reader of `sock`. */
  _keepLeftover(sock: Socket, item: Leftover): void {
    if (sock.fileno() < 0) {
      if (item.kind === 'conn') item.sock.close();
      return;
    }
    let list = this.#leftovers.get(sock);
    if (list === undefined) this.#leftovers.set(sock, (list = []));
    list.push(item);
  }

  /** @internal Puts bytes back in front of `sock`'s next read (a read that took more than asked). */
  _unread(sock: Socket, data: Buffer): void {
    let list = this.#leftovers.get(sock);
    if (list === undefined) this.#leftovers.set(sock, (list = []));
    list.unshift({ kind: 'data', data });
  }

  #checkClosedForIo(): void {
    if (this.isClosed()) throw new RuntimeError('Event loop is closed');
  }

  #ensureFdNoTransport(fd: number): void {
    const transport = this._transports.get(fd) as { isClosing(): boolean } | undefined;
    if (transport !== undefined && !transport.isClosing()) {
      throw new RuntimeError(`File descriptor ${fd} is used by transport ${String(transport)}`);
    }
  }

  // ------------------------------------------------------------ readers and writers

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
    let w = this.#watches.get(fd);
    if (w === undefined) {
      // A poll op on a bad fd would only fail in its completion: check
      // now, so a closed fd is a clear error at once, as with a selector.
      checkOpenFd(fd);
    }
    const handle = new Handle(callback, args, this);
    if (w === undefined) this.#watches.set(fd, (w = { handles: [null, null], ops: [null, null] }));
    const old = w.handles[which];
    w.handles[which] = handle;
    old?.cancel();
    if (w.ops[which] === null) this.#arm(fd, w, which);
    return handle;
  }

  /** One poll op per fd and direction, re-armed after each callback while registered. */
  #arm(fd: number, w: Watch, which: 0 | 1): void {
    const events = which === 0 ? EVENT_READ : EVENT_WRITE;
    const op = this._submit('poll', fd, 0, (t) => this._p.poll(t, fd, events), (result, done) => {
      if (this.#watches.get(fd) !== w || w.ops[which] !== done) return;
      w.ops[which] = null;
      const handle = w.handles[which];
      if (handle === null || handle._cancelled) return;
      if (result === -ECANCELED) return;
      handle._run();
      // Level-triggered: watch again unless the callback removed or
      // replaced the registration. After an error (EBADF: the fd was
      // closed behind our back) the callback ran once and is not re-armed:
      // polling a dead fd would spin.
      if (result >= 0 && this.#watches.get(fd) === w && w.handles[which] === handle && !handle._cancelled && w.ops[which] === null) {
        this.#arm(fd, w, which);
      }
    });
    w.ops[which] = op;
  }

  #remove(fd: number, which: 0 | 1): boolean {
    if (this.isClosed()) return false;
    const w = this.#watches.get(fd);
    if (w === undefined) return false;
    const handle = w.handles[which];
    const op = w.ops[which];
    w.handles[which] = null;
    w.ops[which] = null;
    if (op !== null) this._cancelOp(op);
    if (w.handles[0] === null && w.handles[1] === null) this.#watches.delete(fd);
    if (handle !== null) {
      handle.cancel();
      return true;
    }
    return false;
  }

  /**
   * Calls `callback(...args)` whenever `fd` is readable (a poll op, re-armed
   * after each call); replaces an earlier reader of the same fd.
   */
  addReader(fd: FileDescriptorLike, callback: Callback, ...args: unknown[]): Handle {
    const n = fileobjToFd(fd);
    if (fd instanceof Socket) this._watch(fd);
    this.#ensureFdNoTransport(n);
    return this.#add(n, 0, callback, args);
  }

  /** Stops watching `fd` for reading (cancels its poll op); returns whether a reader was registered. */
  removeReader(fd: FileDescriptorLike): boolean {
    const n = fileobjToFd(fd);
    this.#ensureFdNoTransport(n);
    return this.#remove(n, 0);
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
    return this.#remove(n, 1);
  }

  // ------------------------------------------------------------ transports

  /** @internal asyncio's _make_socket_transport. */
  _makeSocketTransport(
    sock: Socket,
    protocol: BaseProtocol,
    waiter?: Future<void> | null,
    extra?: Record<string, unknown>,
    server?: Server | null,
  ): ProactorSocketTransport {
    this.#checkClosedForIo();
    this.#ensureFdNoTransport(liveFd(sock));
    return new ProactorSocketTransport(this, sock, protocol, waiter, extra, server);
  }

  /** @internal asyncio's _make_datagram_transport. */
  _makeDatagramTransport(
    sock: Socket,
    protocol: DatagramProtocol,
    address?: SockAddr,
    waiter?: Future<void> | null,
    extra?: Record<string, unknown>,
  ): ProactorDatagramTransport {
    this.#checkClosedForIo();
    this.#ensureFdNoTransport(liveFd(sock));
    return new ProactorDatagramTransport(this, sock, protocol, address, waiter, extra);
  }

  // ------------------------------------------------------------ sock* methods
  //
  // One op and one Future each. Cancelling the Future cancels the op; what
  // the op still delivers (bytes, a datagram, a connection) is kept for the
  // socket's next reader instead of being lost. Reads of one socket run one
  // at a time in call order, and so do writes: the kernel does not order
  // two recvs (or two sends) in flight on one socket, and a read issued
  // right after cancelling another must not overtake the bytes the
  // cancelled one may still bring.

  #chains = new WeakMap<Socket, [SockChain, SockChain]>();
  /** Futures of sock* calls waiting for their turn (cancelled when the loop closes). */
  readonly #queued = new Set<Future<any>>();

  #chain(sock: Socket, dir: 0 | 1): SockChain {
    let pair = this.#chains.get(sock);
    if (pair === undefined) this.#chains.set(sock, (pair = [{ busy: false, queue: [] }, { busy: false, queue: [] }]));
    return pair[dir];
  }

  /** The next queued call of `chain` gets its turn (skipping cancelled ones). */
  #next(chain: SockChain): void {
    chain.busy = false;
    while (!chain.busy && chain.queue.length > 0) {
      const turn = chain.queue.shift()!;
      this.#queued.delete(turn.fut);
      if (turn.fut.done()) continue;
      chain.busy = true;
      turn.go();
    }
  }

  /**
   * @internal Runs `fn` once the reads of `sock` in flight are done (a
   * transport made on a socket whose cancelled sockRecv is still out).
   */
  _afterReads(sock: Socket, fn: () => void): void {
    const chain = this.#chain(sock, 0);
    if (!chain.busy) {
      fn();
      return;
    }
    const fut = this.createFuture<void>();
    this.#queued.add(fut);
    chain.queue.push({
      fut,
      go: () => {
        fut.setResult(undefined);
        this.#next(chain);
        fn();
      },
    });
  }

  /**
   * The Future of one op on `sock`, run in its turn (`dir`: 0 read, 1
   * write, null: no turn). `leftover` may settle the call from what a
   * cancelled read left (asked when its turn comes); `onResult` maps a
   * completion to the result (or throws); `onLate` takes a completion whose
   * Future was already cancelled.
   */
  #sockOp<T>(
    sock: Socket,
    kind: string,
    retryEvents: number,
    dir: 0 | 1 | null,
    start: (token: number, fd: number) => number,
    onResult: (result: number, op: Op) => T,
    onLate?: (result: number, op: Op) => void,
    options: { wantAddr?: boolean; leftover?: () => T | undefined } = {},
  ): Future<T> {
    this.#checkClosedForIo();
    this.#ensureFdNoTransport(liveFd(sock));
    this._watch(sock);
    const fut = this.createFuture<T>();
    const chain = dir === null ? null : this.#chain(sock, dir);
    const finished = (): void => {
      if (chain !== null) this.#next(chain);
    };
    const go = (): void => {
      // Asked again at its turn: the socket may have closed meanwhile.
      const fd = sock.fileno();
      if (fd < 0 || this.isClosed()) {
        fut.setException(socketError(-constants().EBADF, kind));
        finished();
        return;
      }
      const left = options.leftover?.();
      if (left !== undefined) {
        fut.setResult(left);
        finished();
        return;
      }
      const op = this._submit(kind, fd, retryEvents, (t) => start(t, fd), (result, done) => {
        if (fut.done()) {
          if (result >= 0) onLate?.(result, done);
          finished();
          return;
        }
        let value: T;
        try {
          value = onResult(result, done);
        } catch (exc) {
          // AGAIN_SIGNAL: the op went again (the rest of a sendall, the
          // readiness wait of a connect); the Future stays pending.
          if (exc === AGAIN_SIGNAL) return;
          fut.setException(exc);
          finished();
          return;
        }
        fut.setResult(value);
        finished();
      }, { wantAddr: options.wantAddr ?? false });
      op.fut = fut;
      fut.addDoneCallback(() => {
        if (fut.cancelled()) this._cancelOp(op);
      });
    };
    if (chain === null) go();
    else if (chain.busy) {
      this.#queued.add(fut);
      chain.queue.push({ fut, go });
    } else {
      chain.busy = true;
      go();
    }
    return fut;
  }

  /** Receives up to `nbytes` (EOF: an empty Buffer). */
  sockRecv(sock: Socket, nbytes: number): Future<Buffer> {
    if (!Number.isInteger(nbytes) || nbytes < 0) throw new RangeError(describeArg('nbytes', 'a non-negative integer', nbytes));
    const buf = Buffer.allocUnsafe(nbytes);
    return this.#sockOp(
      sock,
      'recv',
      EVENT_READ,
      0,
      (t, fd) => this._p.recv(t, fd, buf, 0, nbytes),
      (n) => {
        if (n < 0) throw socketError(n, 'recv');
        return buf.subarray(0, n);
      },
      (n) => {
        if (n > 0) this._keepLeftover(sock, { kind: 'data', data: buf.subarray(0, n) });
      },
      {
        leftover: () => {
          const left = this._takeLeftover(sock, 'data');
          if (left === undefined) return undefined;
          if (left.data.length > nbytes) this._unread(sock, left.data.subarray(nbytes));
          return left.data.subarray(0, nbytes);
        },
      },
    );
  }

  /**
   * Receives into `buf`; resolves with the byte count (0 at EOF). The
   * kernel writes straight into `buf`: after cancelling the Future, bytes
   * that still arrive are copied out and kept for the next read.
   */
  sockRecvInto(sock: Socket, buf: Uint8Array, nbytes?: number): Future<number> {
    if (!(buf instanceof Uint8Array)) throw new TypeError(describeArg('buf', 'a Uint8Array', buf));
    const len = nbytes === undefined || nbytes === 0 ? buf.length : nbytes;
    if (!Number.isInteger(len) || len < 0 || len > buf.length) throw new RangeError(describeArg('nbytes', `an integer in [0, ${buf.length}]`, nbytes));
    return this.#sockOp(
      sock,
      'recv',
      EVENT_READ,
      0,
      (t, fd) => this._p.recv(t, fd, buf, 0, len),
      (n) => {
        if (n < 0) throw socketError(n, 'recv');
        return n;
      },
      (n) => {
        if (n > 0) this._keepLeftover(sock, { kind: 'data', data: Buffer.from(buf.subarray(0, n)) });
      },
      {
        leftover: () => {
          const left = this._takeLeftover(sock, 'data');
          if (left === undefined) return undefined;
          const n = Math.min(len, left.data.length);
          buf.set(left.data.subarray(0, n));
          if (left.data.length > n) this._unread(sock, left.data.subarray(n));
          return n;
        },
      },
    );
  }

  /** Receives one datagram of up to `bufsize` bytes: `[data, addr]`. */
  sockRecvfrom(sock: Socket, bufsize: number): Future<[Buffer, SockAddr]> {
    if (!Number.isInteger(bufsize) || bufsize <= 0) throw new RangeError(describeArg('bufsize', 'a positive integer', bufsize));
    const buf = Buffer.allocUnsafe(bufsize);
    return this.#sockOp(
      sock,
      'recvfrom',
      EVENT_READ,
      0,
      (t, fd) => this._p.recvfrom(t, fd, buf, 0, bufsize),
      (n, op) => {
        if (n < 0) throw socketError(n, 'recvfrom');
        return [buf.subarray(0, n), toSockAddr(op.addr)] as [Buffer, SockAddr];
      },
      (n, op) => this._keepLeftover(sock, { kind: 'dgram', data: buf.subarray(0, n), addr: toSockAddr(op.addr) }),
      {
        wantAddr: true,
        leftover: () => {
          const left = this._takeLeftover(sock, 'dgram');
          return left === undefined ? undefined : ([left.data.subarray(0, bufsize), left.addr] as [Buffer, SockAddr]);
        },
      },
    );
  }

  /** Receives one datagram into `buf`: `[nbytes, addr]`. */
  sockRecvfromInto(sock: Socket, buf: Uint8Array, nbytes = 0): Future<[number, SockAddr]> {
    if (!(buf instanceof Uint8Array)) throw new TypeError(describeArg('buf', 'a Uint8Array', buf));
    const len = nbytes === 0 ? buf.length : nbytes;
    if (!Number.isInteger(len) || len < 0 || len > buf.length) throw new RangeError(describeArg('nbytes', `an integer in [0, ${buf.length}]`, nbytes));
    return this.#sockOp(
      sock,
      'recvfrom',
      EVENT_READ,
      0,
      (t, fd) => this._p.recvfrom(t, fd, buf, 0, len),
      (n, op) => {
        if (n < 0) throw socketError(n, 'recvfrom');
        return [n, toSockAddr(op.addr)] as [number, SockAddr];
      },
      (n, op) => this._keepLeftover(sock, { kind: 'dgram', data: Buffer.from(buf.subarray(0, n)), addr: toSockAddr(op.addr) }),
      {
        wantAddr: true,
        leftover: () => {
          const left = this._takeLeftover(sock, 'dgram');
          if (left === undefined) return undefined;
          const n = Math.min(len, left.data.length);
          buf.set(left.data.subarray(0, n));
          return [n, left.addr] as [number, SockAddr];
        },
      },
    );
  }

  /** Sends all of `data` (one send op at a time until all of it went). */
  sockSendall(sock: Socket, data: Uint8Array | string): Future<void> {
    // A copy: the caller may reuse its buffer before the kernel is done.
    const bytes = Buffer.from(toBytes(data));
    let sent = 0;
    return this.#sockOp<void>(
      sock,
      'send',
      EVENT_WRITE,
      1,
      (t, fd) => this._p.send(t, fd, bytes, sent, bytes.length - sent),
      (n, op) => {
        if (n < 0) throw socketError(n, 'send');
        sent += n;
        if (sent < bytes.length) {
          // Not done: the same op goes again for the rest, under the same Future.
          this._again(op);
          throw AGAIN_SIGNAL;
        }
        return undefined;
      },
      undefined,
    );
  }

  /** Sends one datagram to `addr`; resolves with the bytes sent. */
  sockSendto(sock: Socket, data: Uint8Array | string, addr: SockAddr): Future<number> {
    const bytes = Buffer.from(toBytes(data));
    return this.#sockOp(
      sock,
      'sendto',
      EVENT_WRITE,
      1,
      (t, fd) => this._p.sendto(t, fd, bytes, 0, bytes.length, addr),
      (n) => {
        if (n < 0) throw socketError(n, 'sendto', addr);
        return n;
      },
    );
  }

  /**
   * Connects `sock` to a numeric address (resolve names first with
   * getaddrinfo). Node's message shape: `connect ECONNREFUSED 127.0.0.1:8080`.
   */
  sockConnect(sock: Socket, address: SockAddr): Future<void> {
    const c = constants();
    let waiting = false;
    return this.#sockOp<void>(
      sock,
      'connect',
      0,
      1,
      (t, fd) => (waiting ? this._p.poll(t, fd, EVENT_WRITE) : this._p.connect(t, fd, address)),
      (r, op) => {
        if (waiting) {
          // Writable: connected or failed, SO_ERROR tells which.
          if (r < 0) throw socketError(r, 'connect', address);
          const err = sock.getsockopt(c.SOL_SOCKET, c.SO_ERROR);
          if (err !== 0) throw socketError(-err, 'connect', address);
          return undefined;
        }
        if (r === -c.EINPROGRESS || r === -c.EALREADY || r === -c.EAGAIN || r === -c.EINTR) {
          waiting = true;
          this._again(op);
          throw AGAIN_SIGNAL;
        }
        if (r < 0) throw socketError(r, 'connect', address);
        return undefined;
      },
    );
  }

  /** Accepts one connection: `[socket, peer address]`. */
  sockAccept(sock: Socket): Future<[Socket, SockAddr]> {
    const accepted = (fd: number, op: Op): [Socket, SockAddr] => {
      const conn = new Socket(sock.family, sock.type, fd);
      return [conn, peerOf(conn, op.addr)];
    };
    return this.#sockOp(
      sock,
      'accept',
      EVENT_READ,
      0,
      (t, fd) => this._p.accept(t, fd),
      (fd, op) => {
        if (fd < 0) throw socketError(fd, 'accept');
        return accepted(fd, op);
      },
      (fd, op) => {
        const [conn, addr] = accepted(fd, op);
        this._keepLeftover(sock, { kind: 'conn', sock: conn, addr });
      },
      {
        wantAddr: true,
        leftover: () => {
          const left = this._takeLeftover(sock, 'conn');
          return left === undefined ? undefined : ([left.sock, left.addr] as [Socket, SockAddr]);
        },
      },
    );
  }

  /**
   * Sends a file over a stream socket with sendfile(2) (zero copy); resolves
   * with the bytes sent. io_uring has no sendfile op: a poll op waits for
   * room, then the addon's non-blocking sendfile(2) sends what fits. When
   * sendfile cannot be used and `fallback` is true (the default), the file
   * is read and sent instead.
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
   * write buffer to drain, then uses sockSendfile.
   */
  sendfile(transport: Transport, file: FileLike, offset = 0, count?: number, fallback = true): Future<number> {
    if (!(transport instanceof ProactorSocketTransport)) {
      if (!fallback) throw new SendfileNotAvailableError(`sendfile is not available for transport ${String(transport)}`);
      checkSendfileArgs(offset, count);
      return this.createTask(sendfileFallbackGen(this, null, transport, fileFd(file), offset, count));
    }
    if (transport.isClosing()) throw new RuntimeError('Transport is closing');
    checkSendfileArgs(offset, count);
    const inFd = fileFd(file);
    const loop = this;
    return this.createTask(
      (function* () {
        const resumeReading = transport.isReading();
        transport.pauseReading();
        try {
          yield* transport._makeEmptyWaiter();
          const sock = transport._sock;
          if (sock === null || transport.isClosing()) throw new ConnectionError('Connection is closed by peer');
          // The sock* calls refuse an fd a transport owns: step aside
          // while the file goes out.
          const fd = transport._sockFd;
          loop._transports.delete(fd);
          try {
            return yield* sendfileGen(loop, sock, inFd, offset, count, fallback, () => transport._heldError());
          } catch (exc) {
            if (transport._sock === null || transport.isClosing()) {
              throw new ConnectionError('sendfile: the transport was closed while the file was being sent', { cause: exc });
            }
            throw exc;
          } finally {
            if (transport._sock !== null && !loop._transports.has(fd)) loop._transports.set(fd, transport);
          }
        } finally {
          transport._resetEmptyWaiter();
          if (resumeReading) transport.resumeReading();
        }
      })(),
    );
  }

  /** @internal A Future resolved when `sock` is writable (one poll op). */
  _waitWritable(sock: Socket): Future<void> {
    return this.#sockOp<void>(
      sock,
      'poll',
      0,
      null,
      (t, fd) => this._p.poll(t, fd, EVENT_WRITE),
      (r) => {
        if (r < 0) throw socketError(r, 'poll');
        return undefined;
      },
    );
  }

  // ------------------------------------------------------------ servers

  /** @internal Starts accepting on a listening socket for a Server: one acceptMany op. */
  _startServing(protocolFactory: () => BaseProtocol, sock: Socket, server: Server, backlog: number, sslWrap?: SslWrap): void {
    if (this._acceptOps.has(sock)) return;
    const fd = liveFd(sock);
    this._watch(sock);
    const op = this._submit(
      'acceptMany',
      fd,
      0,
      (t) => this._p.acceptMany(t, fd),
      (result, done) => this.#accepted(result, done, protocolFactory, sock, server, backlog, sslWrap),
      { multi: true, wantAddr: true },
    );
    this._acceptOps.set(sock, op);
  }

  /** @internal */
  _stopServing(sock: Socket): void {
    const op = this._acceptOps.get(sock);
    if (op !== undefined) {
      this._acceptOps.delete(sock);
      this._cancelOp(op);
    }
    sock.close();
  }

  #accepted(result: number, op: Op, protocolFactory: () => BaseProtocol, sock: Socket, server: Server, backlog: number, sslWrap?: SslWrap): void {
    const ours = this._acceptOps.get(sock) === op;
    if (result >= 0) {
      const conn = new Socket(sock.family, sock.type, result);
      // Accepted after the server stopped: nobody will serve it.
      if (!ours || op.cancelled || !server.isServing()) {
        conn.close();
        return;
      }
      const extra = { peername: peerOf(conn, op.addr) };
      try {
        const protocol = protocolFactory();
        if (sslWrap !== undefined) sslWrap(conn, protocol, extra, server);
        else this._makeSocketTransport(conn, protocol, null, extra, server);
      } catch (exc) {
        conn.close();
        this.callExceptionHandler({ message: 'Error on transport creation for incoming connection', exception: exc, socket: sock });
      }
      return;
    }
    // A negative result ends the op.
    if (ours) this._acceptOps.delete(sock);
    if (!ours || op.cancelled || result === -ECANCELED || sock.fileno() < 0) return;
    const exc = socketError(result, 'accept');
    const code = exc.code;
    if (code === 'EMFILE' || code === 'ENFILE' || code === 'ENOBUFS' || code === 'ENOMEM') {
      // Out of fds: stop accepting for a second instead of spinning; the
      // listener stays open (reliability.md F3).
      this.callExceptionHandler({ message: 'socket.accept() out of system resource', exception: exc, socket: sock });
      this.callLater(1, () => {
        if (server.isServing() && sock.fileno() >= 0) this._startServing(protocolFactory, sock, server, backlog, sslWrap);
      });
      return;
    }
    if (code !== 'ECONNABORTED' && code !== 'EAGAIN' && code !== 'EINTR' && code !== 'EPROTO') {
      this.callExceptionHandler({ message: 'Error on accepting a connection', exception: exc, socket: sock });
    }
    if (server.isServing()) this._startServing(protocolFactory, sock, server, backlog, sslWrap);
  }

  override toString(): string {
    return super.toString().replace(/>$/, ` proactor=${this._proactor.name}>`);
  }
}

/**
 * @internal Wraps an accepted connection in TLS (set by sslproto.ts): makes
 * the transport and attaches it to `server`.
 */
type SslWrap = (sock: Socket, protocol: BaseProtocol, extra: Record<string, unknown>, server: Server | null) => void;

/**
 * The proactor loop for this platform: io_uring on Linux. Never the
 * default loop; opt in with `new ProactorEventLoop()` or a loop factory.
 * @example
 * await run(main(), { loopFactory: () => new ProactorEventLoop() });
 */
export class ProactorEventLoop extends BaseProactorEventLoop {}

// AIONODE_LOOP=io_uring (asked lazily: importing aionode loads no addon).
_registerLoopKinds((kinds) => {
  if (availableProactors().includes('io_uring')) kinds.set('io_uring', () => new ProactorEventLoop(new IoUringProactor()));
});

/** Internal signal: the op was submitted again, the Future stays pending. */
const AGAIN_SIGNAL: unique symbol = Symbol('again');


// ---------------------------------------------------------------- helpers

/** @throws OSError EBADF (syscall 'register', the selector loop's shape) for an fd that is not open. */
function checkOpenFd(fd: number): void {
  try {
    fs.fstatSync(fd);
  } catch (exc) {
    if ((exc as NodeJS.ErrnoException).code === 'EBADF') {
      throw makeOSError(`register EBADF fd ${fd}`, { errno: constants().EBADF, code: 'EBADF', syscall: 'register' });
    }
    throw exc;
  }
}

function toSockAddr(addr: NativeSocketAddress | null): SockAddr {
  if (addr === null) return '';
  return (Array.isArray(addr) ? addr.slice() : addr) as SockAddr;
}

function peerOf(conn: Socket, addr: NativeSocketAddress | null): SockAddr {
  if (addr !== null && (typeof addr === "string" ? addr !== '' : (addr as unknown[]).length > 0)) return toSockAddr(addr);
  try {
    return conn.getpeername();
  } catch {
    return '';
  }
}

function toBytes(data: unknown, what = 'data'): Uint8Array {
  if (data instanceof Uint8Array) return data;
  if (typeof data === 'string') return Buffer.from(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  throw new TypeError(`${what} argument must be a bytes-like object, not ${data === null ? 'null' : typeof data === 'object' ? (data as object).constructor?.name ?? 'object' : typeof data}`);
}

/** The fd of an open Socket. @throws OSError EBADF for a closed one, as Python's socket calls do. */
function liveFd(sock: Socket): number {
  if (!(sock instanceof Socket)) throw new TypeError(describeArg('sock', 'an aionode Socket', sock));
  const fd = sock.fileno();
  if (fd < 0) throw socketError(-constants().EBADF, 'socket');
  return fd;
}

function fileFd(file: FileLike): number {
  const fd =
    typeof file === 'number'
      ? file
      : typeof (file as { fd?: unknown })?.fd === 'number'
        ? (file as { fd: number }).fd
        : typeof (file as { fileno?: unknown })?.fileno === 'function'
          ? (file as { fileno(): number }).fileno()
          : NaN;
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

function* sendfileGen(
  loop: BaseProactorEventLoop,
  sock: Socket,
  inFd: number,
  offset: number,
  count: number | undefined,
  fallback: boolean,
  heldError: () => OSError | null = () => null,
): Coroutine<number> {
  let sent = 0;
  for (;;) {
    const want = count === undefined ? SENDFILE_CHUNK : Math.min(SENDFILE_CHUNK, count - sent);
    if (want <= 0) return sent;
    // A reset the transport's read already took: sendfile(2) would only
    // get EPIPE now (and raise SIGPIPE: it has no MSG_NOSIGNAL).
    const held = heldError();
    if (held !== null) throw held;
    // Asked anew every round: after a close the socket says -1, never a
    // number that may since belong to another connection.
    const outFd = sock.fileno();
    const n = outFd < 0 ? -constants().EBADF : ops().sendfile(outFd, inFd, offset + sent, want);
    if (n > 0) {
      sent += n;
      continue;
    }
    if (n === 0) return sent; // EOF
    if (n === -constants().EAGAIN || n === -constants().EINTR) {
      yield* loop._waitWritable(sock);
      continue;
    }
    // Not a file sendfile(2) can read (a pipe, a socket: EINVAL, ESPIPE):
    // asyncio falls back.
    if (sent === 0 && (n === -constants().EINVAL || n === -constants().ENOSYS || n === -constants().EOPNOTSUPP || n === -ESPIPE)) {
      if (!fallback) throw new SendfileNotAvailableError(`os.sendfile call failed: ${socketError(n, 'sendfile').message}`);
      return yield* sendfileFallbackGen(loop, sock, null, inFd, offset, count);
    }
    throw socketError(n, 'sendfile');
  }
}

function* sendfileFallbackGen(loop: BaseProactorEventLoop, sock: Socket | null, transport: Transport | null, inFd: number, offset: number, count: number | undefined): Coroutine<number> {
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
      if (transport!.isClosing()) throw new ConnectionError('sendfile: the transport was closed while the file was being sent');
      transport!.write(data);
      if (transport!.getWriteBufferSize() > 0 && transport instanceof ProactorSocketTransport) {
        yield* transport._makeEmptyWaiter();
        transport._resetEmptyWaiter();
      }
    }
    sent += n;
  }
}

// ---------------------------------------------------------------- transports

/** The transport behind proactor stream and datagram connections (asyncio's _ProactorBasePipeTransport). */
abstract class ProactorBaseTransport extends FlowControlTransport {
  /** @internal */ declare _loop: BaseProactorEventLoop;
  /** @internal */ _sock: Socket | null;
  /** @internal The fd at creation: the _transports key and repr only. */ _sockFd: number;
  /** @internal */ _protocol: BaseProtocol;
  /** @internal */ _protocolConnected = false;
  /** @internal */ _server: Server | null;
  /** @internal Bytes queued, the ones in flight included. */ _bufferSize = 0;
  /** @internal Set when connectionLost is scheduled (then counts writes after it). */ _connLost = 0;
  /** @internal */ _closing = false;
  /** @internal */ _paused = false;
  /** @internal Writes dropped because close() was called (warned about once). */ _writesAfterClose = 0;
  /** @internal The read op in flight. */ _readOp: Op | null = null;
  /** @internal The write op in flight (one at a time). */ _writeOp: Op | null = null;

  constructor(loop: BaseProactorEventLoop, sock: Socket, protocol: BaseProtocol, extra?: Record<string, unknown>, server?: Server | null) {
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

  pauseReading(): void {
    if (this._closing || this._paused) return;
    this._paused = true;
    // Stop taking bytes from the kernel now, as a selector transport does
    // (flow control, and a peer's close with data unread must still reset
    // the connection): the read in flight is cancelled. Its op lives on
    // until its completion, and bytes it brought anyway are held until
    // resumeReading(), never lost (a datagram transport holds the one
    // datagram such a read brings).
    const op = this._readOp;
    if (op !== null) this._loop._cancelOp(op);
  }

  override toString(): string {
    const info = [this.constructor.name];
    if (this._sock === null) info.push('closed');
    else if (this._closing) info.push('closing');
    info.push(`fd=${this._sockFd}`);
    if (this._readOp !== null) info.push('read=pending');
    if (this._writeOp !== null) info.push('write=pending');
    info.push(`write=<bufsize=${this._bufferSize}>`);
    return `<${info.join(' ')}>`;
  }

  /** @internal The fd to operate on: -1 once the socket is closed. */
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
    return !this._closing && !this._paused;
  }

  getWriteBufferSize(): number {
    return this._bufferSize;
  }

  /** Closes at once: every op in flight is cancelled, queued data dropped; connectionLost(undefined) follows. */
  abort(): void {
    this._forceClose(undefined);
  }

  /** @internal Cancels the read op (its completion is ignored from now on). */
  _cancelRead(): void {
    const op = this._readOp;
    if (op !== null) {
      this._readOp = null;
      this._loop._cancelOp(op);
    }
  }

  /** @internal Cancels the write op. */
  _cancelWrite(): void {
    const op = this._writeOp;
    if (op !== null) {
      this._writeOp = null;
      this._loop._cancelOp(op);
    }
  }

  /** @internal Drops queued data. */
  abstract _clearBuffer(): void;

  /**
   * Closes the transport: reading stops at once (the read op is
   * cancelled), queued data is still sent, then connectionLost(undefined)
   * and the socket is closed.
   */
  close(): void {
    if (this._closing) return;
    this._closing = true;
    this._cancelRead();
    if (this._bufferSize === 0 && this._writeOp === null) {
      this._connLost++;
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
    this._closing = true;
    this._cancelRead();
    this._cancelWrite();
    this._clearBuffer();
    this._connLost++;
    this._loop.callSoon(() => this._callConnectionLost(exc));
  }

  /** @internal Exactly once per connection: tell the protocol, close the socket. */
  _callConnectionLost(exc: Error | undefined): void {
    if (this._sock === null) return;
    if (this._connLost === 0) this._connLost = 1;
    try {
      if (this._protocolConnected) this._protocol.connectionLost(exc);
    } finally {
      if (this._loop._transports.get(this._sockFd) === this) this._loop._transports.delete(this._sockFd);
      // Ops still in flight (a cancelled read) keep the fd: the proactor
      // closes it once their completions are in (the loop's close hook).
      this._cancelRead();
      this._cancelWrite();
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
}

/** A TCP or Unix stream connection (asyncio's _ProactorSocketTransport). */
export class ProactorSocketTransport extends ProactorBaseTransport {
  /** @internal Pending writes: the ones in flight first. */ _buffer: Uint8Array[] = [];
  /** @internal writeEof() was called. */ _eof = false;
  /** @internal Resolved when the buffer empties (sendfile). */ _emptyWaiter: Future<void> | null = null;
  /** The per-transport read buffer (non-buffered protocols). */
  #readBuf: Buffer | null = null;
  /** A read into #readBuf is in flight (the kernel may still write into it). */
  #readBufBusy = false;
  /** A read that completed while reading was paused: delivered on resume. */
  #pending: { buf: Uint8Array; n: number; owner: BaseProtocol | null } | null = null;
  /**
   * Chunks a recv-many op brought while reading was paused (the kernel
   * reads on until the cancel lands), delivered in order on resume, before
   * a #pending end (EOF, error) of that op.
   */
  #held: Buffer[] = [];
  /** SO_LINGER 0 was set: the close resets (see #resetOnClose). */
  #resetAsked = false;
  /** #scheduleHeld's callback is queued. */
  #heldScheduled = false;
  /** The batch of the last chunk delivered (see #onChunk). */
  #lastChunkBatch = -1;
  /**
   * Bulk mode: reads use plain recv ops into a buffer handed to the
   * protocol (STREAM_READ_HANDOVER) instead of recv-many. Large reads out
   * of the pool cost a second copy into fresh (cold) memory, which is what
   * the handover avoids; small ones are where recv-many saves. Entered after
   * BULK_AFTER large chunks in a row, left after BULK_AFTER small reads.
   */
  #bulk = false;
  /** Consecutive reads on the other side of the bulk threshold. */
  #streak = 0;
  #eofReceived = false;

  constructor(
    loop: BaseProactorEventLoop,
    sock: Socket,
    protocol: BaseProtocol,
    waiter?: Future<void> | null,
    extra?: Record<string, unknown>,
    server?: Server | null,
  ) {
    super(loop, sock, protocol, extra, server);
    const c = constants();
    if (sock.type === c.SOCK_STREAM && (sock.family === c.AF_INET || sock.family === c.AF_INET6)) {
      try {
        sock.setsockopt(c.IPPROTO_TCP, c.TCP_NODELAY, 1);
      } catch {
        // Not fatal: e.g. the peer is already gone.
      }
    }
    this._loop.callSoon(() => this._protocol.connectionMade(this));
    // Start reading once connectionMade() has run; bytes a cancelled
    // sockRecv left behind come first.
    this._loop.callSoon(() => {
      if (this._sock === null) return;
      const sock = this._sock;
      // A cancelled sockRecv may still be out: its bytes come first.
      this._loop._afterReads(sock, () => {
        const left = this._loop._takeLeftover(sock, 'data');
        if (left !== undefined && !this._closing) this.#deliver(left.data, left.data.length, null);
        this._loopReading();
      });
    });
    if (waiter) this._loop.callSoon(() => _setResultUnlessCancelled(waiter, undefined));
  }

  resumeReading(): void {
    if (this._closing || !this._paused) return;
    this._paused = false;
    this.#scheduleHeld();
  }

  /**
   * Delivers what is held from the next pass on: one chunk per pass, then
   * a held end (EOF, error), then reads again. Paused again (or closed)
   * before it runs: what is held stays held.
   */
  #scheduleHeld(): void {
    if (this.#heldScheduled) return;
    this.#heldScheduled = true;
    this._loop.callSoon(() => {
      this.#heldScheduled = false;
      if (this._paused || this._closing) return;
      const data = this.#held.shift();
      if (data !== undefined) {
        this.#lastChunkBatch = this._loop._batchSeq();
        this.#deliver(data, data.length, null);
        if (this.#held.length > 0 || this.#pending !== null) {
          if (!this._paused && !this._closing) this.#scheduleHeld();
        } else {
          this._loopReading();
        }
        return;
      }
      const pending = this.#pending;
      this.#pending = null;
      if (pending !== null) this.#handleRead(pending.n, pending.buf, pending.owner);
      else this._loopReading();
    });
  }

  /** @internal Submits the next read unless one is in flight, reading is paused, or EOF came. */
  _loopReading(): void {
    if (this._readOp !== null || this._closing || this._paused || this.#eofReceived || this.#pending !== null || this.#held.length > 0) return;
    const fd = this._fd;
    if (fd < 0) return;
    let buf: Uint8Array;
    let owner: BaseProtocol | null = null;
    const protocol = this._protocol;
    if (!this.#bulk && !(protocol instanceof BufferedProtocol) && this._loop._recvManyReady()) {
      this.#loopReadingMany(fd);
      return;
    }
    if (protocol instanceof BufferedProtocol) {
      // Zero copy: the kernel writes straight into the protocol's buffer.
      try {
        buf = protocol.getBuffer(-1);
        if (!(buf instanceof Uint8Array) || buf.length === 0) throw new RuntimeError('get_buffer() returned an empty buffer');
      } catch (exc) {
        this._fatalError(exc, 'Fatal error: protocol.get_buffer() call failed.');
        return;
      }
      owner = protocol;
    } else {
      buf = this.#readBuf ??= takeReadBuf();
      this.#readBufBusy = true;
    }
    const p = this._loop._p;
    const own = owner === null;
    const op = this._loop._submit('recv', fd, EVENT_READ, (t) => p.recv(t, fd, buf, 0, buf.length), (n, done) => {
      if (own) {
        // The kernel is done with our buffer: once the connection is gone
        // it can serve another one.
        this.#readBufBusy = false;
        if (this._sock === null) this.#releaseReadBuf();
      }
      if (this._readOp !== done) return; // cancelled by close()/abort(): its bytes are not wanted
      this._readOp = null;
      if (n < 0 && done.cancelled) {
        // Cancelled by pauseReading() before it took anything: read again
        // if reading was resumed meanwhile.
        this._loopReading();
        return;
      }
      this.#onRead(n, buf, owner);
    });
    this._readOp = op;
  }

  /**
   * Reads with one recv-many op (multishot recv into the loop's pool) until
   * EOF, an error, pauseReading() or close(): a completion per chunk, no
   * resubmission per read. A BufferedProtocol keeps plain recv ops into its
   * own buffer (zero copy), as without the pool.
   */
  #loopReadingMany(fd: number): void {
    const p = this._loop._p;
    this._readOp = this._loop._submit(
      'recvMany',
      fd,
      0,
      (t) => p.recvMany(t, fd),
      (n, done) => {
        if (this._readOp !== done) {
          // Cancelled by close()/abort(): its bytes are not wanted. The fd
          // is still open (the proactor closes it after this op's end).
          if (n > 0) this.#resetOnClose(done.fd);
          return;
        }
        if (n > 0) {
          if (n < STREAM_READ_HANDOVER) this.#streak = 0;
          else if (++this.#streak >= BULK_AFTER && !done.cancelled) {
            // Bulk transfer: plain reads once this op has ended.
            this.#bulk = true;
            this.#streak = 0;
            this._loop._cancelOp(done);
          }
          this.#onChunk(done.data!);
          return;
        }
        this._readOp = null;
        if (n < 0 && done.cancelled) {
          // Ended by pauseReading()'s cancel: read again if reading was
          // resumed meanwhile (and nothing is held).
          this._loopReading();
          return;
        }
        this.#onRead(n, EMPTY, null);
      },
      { multi: true },
    );
  }

  #onChunk(data: Buffer): void {
    if (this._closing) return;
    const batch = this._loop._batchSeq();
    if (this._paused || this.#held.length > 0 || this.#lastChunkBatch === batch) {
      // Taken by the kernel before the cancel landed, behind chunks still
      // held, or a second chunk in this pass: kept, in order. One chunk
      // per pass, as one plain read per pass would bring: a protocol whose
      // flow control acts a tick later (a Duplex, node:tls) gets the chance
      // to pause before the kernel's read-ahead floods it.
      this.#held.push(data);
      if (!this._paused) this.#scheduleHeld();
      return;
    }
    this.#lastChunkBatch = batch;
    this.#deliver(data, data.length, null);
  }

  /**
   * Bytes the kernel handed over that the protocol will never get: with
   * plain reads they would still sit unread in the socket, and closing it
   * would reset the connection (RST), which tells the peer its data was
   * not taken. recv-many reads ahead, so the same is asked for explicitly
   * (SO_LINGER 0: close sends RST). Once per connection.
   */
  #resetOnClose(fd: number): void {
    if (this.#resetAsked) return;
    this.#resetAsked = true;
    try {
      ops().setsockopt(fd, constants().SOL_SOCKET, constants().SO_LINGER, 0);
    } catch {
      // Already gone (the peer reset it first): nothing to tell.
    }
  }

  #releaseReadBuf(): void {
    const buf = this.#readBuf;
    this.#readBuf = null;
    if (buf !== null) giveReadBuf(buf);
  }

  #onRead(n: number, buf: Uint8Array, owner: BaseProtocol | null): void {
    if (this._closing) return;
    if (n === 0) this.#eofReceived = true;
    if (this._paused || this.#held.length > 0) {
      // Held until resumeReading(), EOF and errors included: a paused
      // protocol hears nothing (as on the selector loop, where a paused
      // transport does not read at all; a reset is then found by a write).
      // Chunks still held (a resume not run yet) go first.
      this.#pending = { buf, n, owner };
      if (!this._paused) this.#scheduleHeld();
      return;
    }
    this.#handleRead(n, buf, owner);
  }

  #handleRead(n: number, buf: Uint8Array, owner: BaseProtocol | null): void {
    if (n < 0) {
      const exc = socketError(n, 'read');
      if (exc.code === 'ECONNRESET' || exc.code === 'ECONNABORTED' || exc.code === 'EPIPE') this._forceClose(exc);
      else this._fatalError(exc, 'Fatal read error on socket transport');
      return;
    }
    if (n === 0) {
      this.#onEof();
      return;
    }
    if (this.#bulk) {
      if (n >= BULK_SMALL) this.#streak = 0;
      else if (++this.#streak >= BULK_AFTER) {
        this.#bulk = false;
        this.#streak = 0;
      }
    }
    if (owner === null) {
      const grow = n === buf.length && buf.length < STREAM_READ_MAX;
      let data: Buffer;
      if (n >= STREAM_READ_HANDOVER && buf === this.#readBuf) {
        // A large read: the protocol gets the read buffer itself and the
        // next read a fresh one. Copying it instead costs a buffer of n
        // bytes anyway, plus the memcpy through a cold destination (the
        // largest user-space cost of a bulk echo).
        data = (buf as Buffer).subarray(0, n);
        this.#readBuf = Buffer.allocUnsafeSlow(grow ? buf.length * 4 : buf.length);
      } else {
        // The protocol gets its own copy: the buffer is reused by the next read.
        data = Buffer.allocUnsafe(n);
        (buf as Buffer).copy(data, 0, 0, n);
        if (grow) {
          giveReadBuf(buf as Buffer);
          this.#readBuf = Buffer.allocUnsafeSlow(buf.length * 4);
        }
      }
      this.#deliver(data, n, null);
    } else {
      this.#deliver(buf, n, owner);
    }
    // Read again only after delivering: a protocol that pauses reading in
    // dataReceived leaves the rest in the kernel, as on a selector. (It
    // costs nothing: submissions reach the kernel once per loop pass.)
    this._loopReading();
  }

  /**
   * Hands `n` bytes of `buf` to the protocol. `owner` is the buffered
   * protocol whose getBuffer() gave `buf` (null: our bytes). If the
   * protocol changed meanwhile (startTls), the bytes are copied to the
   * current one as asyncio's _data_received does.
   */
  #deliver(buf: Uint8Array, n: number, owner: BaseProtocol | null): void {
    const protocol = this._protocol;
    if (owner !== null && owner === protocol) {
      try {
        (protocol as BufferedProtocol).bufferUpdated(n);
      } catch (exc) {
        this._fatalError(exc, 'Fatal error: protocol.buffer_updated() call failed.');
      }
      return;
    }
    let data = buf.subarray(0, n);
    if (owner !== null) data = Buffer.from(data);
    if (protocol instanceof BufferedProtocol) {
      try {
        let off = 0;
        while (off < n) {
          const target = protocol.getBuffer(n - off);
          if (!(target instanceof Uint8Array) || target.length === 0) throw new RuntimeError('get_buffer() returned an empty buffer');
          const k = Math.min(target.length, n - off);
          target.set(data.subarray(off, off + k));
          off += k;
          protocol.bufferUpdated(k);
        }
      } catch (exc) {
        this._fatalError(exc, 'Fatal error: protocol.buffer_updated() call failed.');
      }
      return;
    }
    try {
      (protocol as Protocol).dataReceived(data instanceof Buffer ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    } catch (exc) {
      this._fatalError(exc, 'Fatal error: protocol.data_received() call failed.');
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
    // Kept open: the protocol may still write; nothing more is read.
    if (!keepOpen) this.close();
  }

  override setProtocol(protocol: BaseProtocol): void {
    super.setProtocol(protocol);
  }

  /**
   * Writes data: queued (a copy) and sent by one send/writev op at a time.
   * Strings are UTF-8 encoded.
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
    if (this._closing) {
      this._dropWrite();
      return;
    }
    let rest = bytes;
    if (this._bufferSize === 0 && this._writeOp === null) {
      // Nothing queued, nothing in flight: try the send at once (as the
      // selector transport and uvloop do). The common small write then
      // costs no copy and no op, and a dead peer is found now; only what
      // the kernel does not take goes through the queue and its ops.
      const fd = this._fd;
      const n = fd < 0 ? -constants().EBADF : ops().send(fd, bytes, 0, bytes.length);
      if (n < 0) {
        if (n !== -constants().EAGAIN && n !== -constants().EINTR) {
          this.#writeFailed(socketError(n, 'write'));
          return;
        }
      } else {
        if (n === bytes.length) return;
        rest = bytes.subarray(n);
      }
    }
    // The caller may reuse its buffer after write() returns: keep a copy.
    this._buffer.push(Buffer.from(rest));
    this._bufferSize += rest.length;
    if (this._writeOp === null) this._loopWriting();
    this._maybePauseProtocol();
  }

  /** Writes several buffers; gathered into one writev op. */
  override writelines(list: Iterable<Uint8Array | string>): void {
    if (this._eof) throw new RuntimeError('Cannot call writelines() after write_eof()');
    if (this._emptyWaiter !== null) throw new RuntimeError('unable to writelines; sendfile is in progress');
    const items = [...list].map((d) => toBytes(d));
    if (this._closing && !this._connLost) {
      if (items.some((b) => b.length > 0)) this._dropWrite();
      return;
    }
    if (this._connLost) {
      if (items.some((b) => b.length > 0)) this._connLost++;
      return;
    }
    let bufs = items.filter((b) => b.length > 0);
    if (bufs.length === 0) return;
    if (this._bufferSize === 0 && this._writeOp === null) {
      // Idle: one gathering send at once, as write() does; the rest is queued.
      const fd = this._fd;
      const batch = bufs.length > IOV_MAX ? bufs.slice(0, IOV_MAX) : bufs;
      const n = fd < 0 ? -constants().EBADF : batch.length === 1 ? ops().send(fd, batch[0], 0, batch[0].length) : ops().writev(fd, batch);
      if (n < 0) {
        if (n !== -constants().EAGAIN && n !== -constants().EINTR) {
          this.#writeFailed(socketError(n, 'write'));
          return;
        }
      } else {
        let left = n;
        let i = 0;
        while (i < bufs.length && left >= bufs[i].length) left -= bufs[i++].length;
        bufs = bufs.slice(i);
        if (left > 0) bufs[0] = bufs[0].subarray(left);
        if (bufs.length === 0) return;
      }
    }
    // Copies: the caller may reuse its buffers after writelines() returns.
    for (const b of bufs) {
      this._buffer.push(Buffer.from(b));
      this._bufferSize += b.length;
    }
    if (this._writeOp === null) this._loopWriting();
    this._maybePauseProtocol();
  }

  /** @internal Sends the queue's head (up to IOV_MAX buffers) with one op. */
  _loopWriting(): void {
    const fd = this._fd;
    if (this._bufferSize === 0 || this._writeOp !== null) return;
    if (fd < 0) {
      this.#writeFailed(socketError(-constants().EBADF, 'write'));
      return;
    }
    const batch = this._buffer.slice(0, IOV_MAX);
    const p = this._loop._p;
    const op = this._loop._submit(
      batch.length === 1 ? 'send' : 'writev',
      fd,
      EVENT_WRITE,
      (t) => (batch.length === 1 ? p.send(t, fd, batch[0], 0, batch[0].length) : p.writev(t, fd, batch)),
      (n, done) => {
        if (this._writeOp !== done) return; // aborted
        this._writeOp = null;
        this.#onWrite(n);
      },
    );
    this._writeOp = op;
  }

  #onWrite(n: number): void {
    if (n < 0) {
      this.#writeFailed(socketError(n, 'write'));
      return;
    }
    this.#consume(n);
    this._maybeResumeProtocol(); // may write more
    if (this._bufferSize > 0) {
      if (this._writeOp === null) this._loopWriting();
      return;
    }
    if (this._writeOp !== null) return;
    if (this._emptyWaiter !== null && !this._emptyWaiter.done()) this._emptyWaiter.setResult(undefined);
    if (this._closing) {
      if (!this._connLost) {
        this._connLost++;
        this._callConnectionLost(undefined);
      }
    } else if (this._eof) this.#shutdownWrite();
  }

  #writeFailed(exc: OSError): void {
    this._clearBuffer();
    const waiter = this._emptyWaiter;
    if (exc.code === 'ECONNRESET' || exc.code === 'EPIPE' || exc.code === 'ECONNABORTED') this._forceClose(exc);
    else this._fatalError(exc, 'Fatal write error on socket transport');
    if (waiter !== null && !waiter.done()) waiter.setException(exc);
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

  /** @internal */
  _clearBuffer(): void {
    this._buffer = [];
    this._bufferSize = 0;
  }

  #shutdownWrite(): void {
    try {
      this._sock?.shutdown(constants().SHUT_WR);
    } catch {
      // The peer may already be gone; connectionLost reports what matters.
    }
  }

  /** Half-closes once the queue is flushed: the peer reads EOF. */
  writeEof(): void {
    if (this._closing || this._eof) return;
    this._eof = true;
    if (this._bufferSize === 0 && this._writeOp === null) this.#shutdownWrite();
  }

  canWriteEof(): boolean {
    return true;
  }

  /**
   * @internal The read error held while reading is paused (sendfile pauses
   * reading): the read in flight may have taken the socket's pending error
   * (ECONNRESET), so sendfile(2) must not try the socket again.
   */
  _heldError(): OSError | null {
    const p = this.#pending;
    return p !== null && p.n < 0 ? socketError(p.n, 'read') : null;
  }

  /** @internal A Future resolved once the write queue is empty. */
  _makeEmptyWaiter(): Future<void> {
    if (this._emptyWaiter !== null) throw new RuntimeError('Empty waiter is already set');
    this._emptyWaiter = this._loop.createFuture<void>();
    if (this._bufferSize === 0 && this._writeOp === null) this._emptyWaiter.setResult(undefined);
    return this._emptyWaiter;
  }

  /** @internal */
  _resetEmptyWaiter(): void {
    this._emptyWaiter = null;
  }

  override _callConnectionLost(exc: Error | undefined): void {
    const sock = this._sock;
    if (sock !== null && (this.#held.length > 0 || (this.#pending !== null && this.#pending.n > 0))) {
      this.#resetOnClose(sock.fileno());
    }
    super._callConnectionLost(exc);
    if (!this.#readBufBusy) this.#releaseReadBuf();
    const waiter = this._emptyWaiter;
    if (waiter !== null && !waiter.done()) waiter.setException(new ConnectionError('Connection is closed by peer'));
  }
}

/** A UDP or Unix datagram endpoint (asyncio's _ProactorDatagramTransport). */
export class ProactorDatagramTransport extends ProactorBaseTransport {
  /** @internal */ _address: SockAddr | undefined;
  #queue: [Buffer, SockAddr | undefined][] = [];
  #readBuf: Buffer | null = null;

  constructor(
    loop: BaseProactorEventLoop,
    sock: Socket,
    protocol: DatagramProtocol,
    address?: SockAddr,
    waiter?: Future<void> | null,
    extra?: Record<string, unknown>,
  ) {
    super(loop, sock, protocol, extra);
    this._address = address;
    this._loop.callSoon(() => this._protocol.connectionMade(this as unknown as Transport));
    this._loop.callSoon(() => this._loopReading());
    if (waiter) this._loop.callSoon(() => _setResultUnlessCancelled(waiter, undefined));
  }

  resumeReading(): void {
    if (this._closing || !this._paused) return;
    this._paused = false;
    this._loop.callSoon(() => {
      if (this._paused || this._closing) return;
      const held = this.#held;
      this.#held = null;
      if (held !== null) this.#received(held[0], held[1]);
      this._loopReading();
    });
  }

  /** A datagram that arrived while reading was paused. */
  #held: [Buffer, SockAddr] | null = null;

  /** @internal */
  _loopReading(): void {
    if (this._readOp !== null || this._closing || this._paused || this.#held !== null) return;
    const fd = this._fd;
    if (fd < 0) return;
    const sock = this._sock!;
    const left = this._loop._takeLeftover(sock, 'dgram');
    if (left !== undefined) {
      this.#received(left.data, left.addr);
      this._loop.callSoon(() => this._loopReading());
      return;
    }
    const buf = (this.#readBuf ??= Buffer.allocUnsafeSlow(DGRAM_READ_SIZE));
    const p = this._loop._p;
    this._readOp = this._loop._submit(
      'recvfrom',
      fd,
      EVENT_READ,
      (t) => p.recvfrom(t, fd, buf, 0, buf.length),
      (n, done) => {
        if (this._readOp !== done) return;
        this._readOp = null;
        if (this._closing) return;
        if (n < 0 && done.cancelled) {
          // Cancelled by pauseReading() before a datagram came.
          this._loopReading();
          return;
        }
        if (n >= 0 && this._paused) {
          this.#held = [Buffer.from(buf.subarray(0, n)), toSockAddr(done.addr)];
          return;
        }
        if (n < 0) {
          const exc = socketError(n, 'recvfrom');
          try {
            (this._protocol as DatagramProtocol).errorReceived(exc);
          } catch (e) {
            this._fatalError(e, 'Fatal read error on datagram transport');
            return;
          }
        } else {
          // A copy: the buffer is reused by the next read.
          this.#received(Buffer.from(buf.subarray(0, n)), toSockAddr(done.addr));
        }
        this._loopReading();
      },
      { wantAddr: true },
    );
  }

  #received(data: Buffer, addr: SockAddr): void {
    try {
      (this._protocol as DatagramProtocol).datagramReceived(data, addr);
    } catch (exc) {
      this._fatalError(exc, 'Fatal error: protocol.datagram_received() call failed.');
    }
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
    this.#queue.push([Buffer.from(bytes), target]);
    this._bufferSize += bytes.length + 8;
    if (this._writeOp === null) this.#loopWriting();
    this._maybePauseProtocol();
  }

  #loopWriting(): void {
    if (this.#queue.length === 0 || this._writeOp !== null) return;
    const fd = this._fd;
    const [data, addr] = this.#queue[0];
    if (fd < 0) {
      this._forceClose(socketError(-constants().EBADF, 'sendto'));
      return;
    }
    const p = this._loop._p;
    this._writeOp = this._loop._submit(
      addr === undefined ? 'send' : 'sendto',
      fd,
      EVENT_WRITE,
      (t) => (addr === undefined ? p.send(t, fd, data, 0, data.length) : p.sendto(t, fd, data, 0, data.length, addr)),
      (n, done) => {
        if (this._writeOp !== done) return;
        this._writeOp = null;
        this.#queue.shift();
        this._bufferSize -= data.length + 8;
        // A failed datagram (EMSGSIZE, ECONNREFUSED from an earlier ICMP
        // error, ...) is the protocol's to hear of; the endpoint stays open.
        if (n < 0) this.#errorReceived(socketError(n, 'sendto', addr));
        if (this._connLost) return;
        this._maybeResumeProtocol();
        if (this.#queue.length > 0) this.#loopWriting();
        else if (this._closing) {
          this._connLost++;
          this._callConnectionLost(undefined);
        }
      },
    );
  }

  /** @internal */
  _clearBuffer(): void {
    this.#queue = [];
    this._bufferSize = 0;
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
