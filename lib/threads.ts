/**
 * Scheduling work on a loop from other threads: asyncio's
 * `call_soon_threadsafe`, `run_coroutine_threadsafe` and the concurrent
 * Future they hand back.
 *
 * Port of CPython Lib/asyncio/threads.py and the thread-safe parts of
 * base_events.py, tasks.py and futures.py (3.14), with
 * concurrent.futures.Future's states.
 *
 * JavaScript threads share no objects, so a callback or a coroutine cannot
 * be handed to a loop on another thread the way Python does it. What
 * crosses is a message: `loop.threadsafeHandle(onMessage)` opens a native
 * channel (native/threadsafe_channel.h) and returns a `LoopRef`, a plain
 * `{ kind, id }` that survives `postMessage` and JSON; `postToLoop(ref, msg)`
 * on any thread serializes `msg` (v8.serialize) into the channel's FIFO
 * and wakes the target thread, where `onMessage(msg)` runs as an ordinary
 * Handle of the loop. `runCoroutineThreadsafe` uses the same channel to
 * ask the target loop to run a module export as a task and to cancel it;
 * the answer comes back through a channel of the calling thread.
 *
 * See docs/threads.md.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { endianness } from 'node:os';
import * as v8 from 'node:v8';
import { getRunningLoop, type AbstractEventLoop, type Handle } from './events.js';
import {
  BrokenBarrierError,
  CancelledError,
  ExceptionGroup,
  IncompleteReadError,
  InvalidStateError,
  LimitOverrunError,
  OSError,
  RuntimeError,
  SendfileNotAvailableError,
  TimeoutError,
  describeArg,
  makeOSError,
  osErrorClass,
} from './exceptions.js';
import { Future, isFuture } from './futures.js';
import { isGenerator } from './coroutines.js';
import { logErrorSafely, showException } from './log.js';
import { binding, type NativeChannel } from './native.js';

type Deliver = (kinds: Int32Array | null, data: Buffer | null, ends: Uint32Array | null, lost?: unknown, lostCount?: number) => void;

/**
 * The channel surface this file uses beyond lib/native.ts's: calls whose
 * reply address the native channel keeps (so it can answer them when the
 * target goes), and the per-wake-up batch cap (native/channel_wrap.cc).
 */
interface CallChannel extends NativeChannel {
  /** Claims the right to answer a call drained here: true once, false once Close() answered it. */
  settle(replyTo: string, callId: number): boolean;
  /** Calls drained here and not settled yet. */
  readonly openCalls: number;
}
interface ChannelBinding {
  NativeChannel: new (onMessages: Deliver, maxBatchBytes?: number) => CallChannel;
  channelPost(id: string, kind: number, payload: Uint8Array | string | number | undefined, replyTo?: string, callId?: number): number;
}

function channelBinding(): ChannelBinding {
  return binding() as unknown as ChannelBinding;
}

// Message kinds on a channel (the native FIFO carries an int32 tag).
const KIND_MESSAGE = 0;
const KIND_CALL = 1;
const KIND_CANCEL = 2;
const KIND_REPLY = 3;
// Posted by the native channel itself (threadsafe_channel.h kAbandonedKind)
// to a caller whose call the target can no longer answer: its bytes are the
// call id (uint64 little-endian) and a reason byte.
const KIND_ABANDONED = -1;
const ABANDON_UNDELIVERABLE = 1;

// How a message's bytes are encoded, in bits 4.. of the tag. Small scalar
// messages skip v8.serialize/deserialize (about a microsecond each way).
const ENC_V8 = 0 << 4;
const ENC_UNDEFINED = 1 << 4;
const ENC_NULL = 2 << 4;
const ENC_TRUE = 3 << 4;
const ENC_FALSE = 4 << 4;
const ENC_NUMBER = 5 << 4;
const ENC_STRING = 6 << 4;
const ENC_JSON = 7 << 4;
const KIND_MASK = 0xf;

// Plain data that JSON carries exactly as structured clone would (a few
// times cheaper than v8.serialize + deserialize from JavaScript): strings,
// finite numbers other than -0, booleans, null, dense arrays and objects
// whose prototype is Object.prototype, none defining toJSON. Anything else,
// or more than JSON_MAX_NODES values, goes through v8.serialize.
const JSON_MAX_NODES = 256;

function jsonExact(root: unknown): boolean {
  let budget = JSON_MAX_NODES;
  const seen: object[] = [];
  const walk = (v: unknown, depth: number): boolean => {
    if (--budget < 0 || depth > 32) return false;
    switch (typeof v) {
      case 'string':
      case 'boolean':
        return true;
      case 'number':
        return Number.isFinite(v) && !Object.is(v, -0);
      case 'object': {
        if (v === null) return true;
        // A cycle or a shared node: structured clone keeps identity, JSON cannot.
        if (seen.includes(v)) return false;
        seen.push(v);
        if (Array.isArray(v)) {
          if (Object.getPrototypeOf(v) !== Array.prototype || Object.keys(v).length !== v.length) return false;
          for (let i = 0; i < v.length; i++) if (!walk(v[i], depth + 1)) return false;
          return true;
        }
        if (Object.getPrototypeOf(v) !== Object.prototype || 'toJSON' in v) return false;
        for (const k in v) {
          if (!Object.prototype.hasOwnProperty.call(v, k)) return false;
          const d = Object.getOwnPropertyDescriptor(v, k)!;
          if (d.get !== undefined || !walk(d.value, depth + 1)) return false;
        }
        return true;
      }
      default:
        return false;
    }
  };
  return walk(root, 0);
}

const ENOENT = 2;
const EPIPE = 32;
const readDouble = endianness() === 'LE' ? 'readDoubleLE' : 'readDoubleBE';

/** Decodes message bytes by their encoding tag. */
function decode(tag: number, data: Buffer, start: number, end: number): unknown {
  switch (tag & ~KIND_MASK) {
    case ENC_NUMBER:
      return data[readDouble](start);
    case ENC_STRING:
      return data.toString('utf8', start, end);
    case ENC_JSON:
      return JSON.parse(data.toString('utf8', start, end));
    case ENC_UNDEFINED:
      return undefined;
    case ENC_NULL:
      return null;
    case ENC_TRUE:
      return true;
    case ENC_FALSE:
      return false;
    default:
      return v8.deserialize(data.subarray(start, end));
  }
}

// ---------------------------------------------------------------------------
// Errors across threads

/** An error as it crosses a thread: its class name, message and stack. */
export interface PackedError {
  name: string;
  message: string;
  stack?: string;
  code?: unknown;
  errno?: unknown;
  syscall?: unknown;
}

/** @internal What an error becomes on the wire. */
export function packError(e: unknown): PackedError {
  if (e instanceof Error) {
    const ctor = (e as { constructor?: { name?: unknown } }).constructor;
    const name = typeof ctor?.name === 'string' && ctor.name !== '' ? ctor.name : String(e.name);
    const out: PackedError = { name, message: String(e.message), stack: typeof e.stack === 'string' ? e.stack : undefined };
    const o = e as unknown as Record<string, unknown>;
    for (const k of ['code', 'errno', 'syscall'] as const) {
      if (typeof o[k] === 'string' || typeof o[k] === 'number') out[k] = o[k];
    }
    return out;
  }
  return { name: 'Error', message: `non-Error thrown: ${safeString(e)}` };
}

function safeString(v: unknown): string {
  try {
    return typeof v === 'string' ? v : String(v);
  } catch {
    return Object.prototype.toString.call(v);
  }
}

const KNOWN_ERRORS: Record<string, new (message: string) => Error> = {
  Error,
  TypeError,
  RangeError,
  ReferenceError,
  SyntaxError,
  EvalError,
  URIError,
  RuntimeError,
  CancelledError,
  InvalidStateError,
  SendfileNotAvailableError,
  BrokenBarrierError,
};

/**
 * @internal Rebuilds an error on this side: the same class when it is a
 * built-in or one of aionode's (an OSError subclass by its code), else an
 * Error whose `name` is the original class name. The remote stack is kept
 * in `remoteStack`.
 */
export function unpackError(p: PackedError): Error {
  let err: Error;
  if (p.name === 'OSError' || (typeof p.code === 'string' && /Error$/.test(p.name) && osErrorClass(p.code).name === p.name)) {
    err = makeOSError(p.message, {
      code: typeof p.code === 'string' ? p.code : undefined,
      errno: typeof p.errno === 'number' ? p.errno : undefined,
      syscall: typeof p.syscall === 'string' ? p.syscall : undefined,
    } as never);
  } else if (p.name === 'TimeoutError') {
    err = new TimeoutError(p.message);
  } else if (p.name === 'IncompleteReadError' || p.name === 'LimitOverrunError' || p.name === 'ExceptionGroup') {
    // Constructors with other arguments: keep the class name and message.
    const Ctor = { IncompleteReadError, LimitOverrunError, ExceptionGroup }[p.name];
    err = Object.create(Ctor.prototype) as Error;
    Object.defineProperty(err, 'message', { value: p.message, writable: true, configurable: true });
  } else {
    const Ctor = KNOWN_ERRORS[p.name];
    err = Ctor !== undefined ? new Ctor(p.message) : new Error(p.message);
    if (Ctor === undefined) Object.defineProperty(err, 'name', { value: p.name, writable: true, configurable: true });
  }
  if (typeof p.code === 'string' && !(err instanceof OSError)) (err as { code?: string }).code = p.code;
  if (p.stack !== undefined) Object.defineProperty(err, 'remoteStack', { value: p.stack, configurable: true });
  return err;
}

// ---------------------------------------------------------------------------
// The concurrent Future

type State = 'PENDING' | 'RUNNING' | 'CANCELLED' | 'FINISHED';

/**
 * The caller's side of work running elsewhere (another loop, another
 * thread): concurrent.futures.Future's states and `cancel()` semantics, and
 * a thenable so it can be awaited from anywhere (an async function without
 * a loop, or a task through `wrapFuture`).
 *
 * `cancel()` succeeds (returns true) unless the work finished already or is
 * running and cannot be interrupted (an executor job); a cancelled future
 * rejects with CancelledError at once, as concurrent.futures does.
 */
export class ConcurrentFuture<T = unknown> implements PromiseLike<T> {
  #state: State = 'PENDING';
  #result: T | undefined;
  #exception: unknown = undefined;
  #hasException = false;
  #callbacks: ((f: ConcurrentFuture<T>) => void)[] = [];
  #promise: Promise<T> | null = null;
  #settle: { resolve: (v: T) => void; reject: (e: unknown) => void } | null = null;
  /** @internal Asked on cancel(): true when the work was stopped (or can be). */
  _onCancel: (() => boolean) | null = null;

  /** Whether the work finished, failed or was cancelled. */
  done(): boolean {
    return this.#state === 'CANCELLED' || this.#state === 'FINISHED';
  }
  cancelled(): boolean {
    return this.#state === 'CANCELLED';
  }
  running(): boolean {
    return this.#state === 'RUNNING';
  }

  /**
   * Cancels the work: false if it is done or running and cannot be
   * stopped; else the future becomes cancelled and true is returned.
   */
  cancel(): boolean {
    if (this.#state === 'FINISHED') return false;
    if (this.#state === 'CANCELLED') return true;
    if (this._onCancel !== null && !this._onCancel()) return false;
    this.#state = 'CANCELLED';
    this.#finish();
    return true;
  }

  /** The result; throws the exception, CancelledError, or InvalidStateError while pending. */
  result(): T {
    if (this.#state === 'CANCELLED') throw new CancelledError();
    if (this.#state !== 'FINISHED') throw new InvalidStateError('Result is not ready.');
    if (this.#hasException) throw this.#exception;
    return this.#result as T;
  }

  /** The exception (undefined for a result); throws CancelledError or InvalidStateError as result() does. */
  exception(): unknown {
    if (this.#state === 'CANCELLED') throw new CancelledError();
    if (this.#state !== 'FINISHED') throw new InvalidStateError('Exception is not set.');
    return this.#hasException ? this.#exception : undefined;
  }

  /** Runs `fn(this)` once done (at once if done already), on whatever thread settles it. */
  addDoneCallback(fn: (f: ConcurrentFuture<T>) => void): void {
    if (typeof fn !== 'function') throw new TypeError(describeArg('fn', 'a function', fn));
    if (this.done()) fn(this);
    else this.#callbacks.push(fn);
  }

  /** @internal Marks the work started (a running job cannot be cancelled). */
  setRunningOrNotifyCancel(): boolean {
    if (this.#state === 'CANCELLED') return false;
    if (this.#state === 'PENDING') this.#state = 'RUNNING';
    return true;
  }

  /** @internal */
  setResult(value: T): void {
    if (this.done()) return;
    this.#result = value;
    this.#state = 'FINISHED';
    this.#finish();
  }

  /** @internal */
  setException(exc: unknown): void {
    if (this.done()) return;
    this.#exception = exc;
    this.#hasException = true;
    this.#state = 'FINISHED';
    this.#finish();
  }

  #finish(): void {
    const settle = this.#settle;
    if (settle !== null) {
      this.#settle = null;
      if (this.#state === 'CANCELLED') settle.reject(new CancelledError());
      else if (this.#hasException) settle.reject(this.#exception);
      else settle.resolve(this.#result as T);
    }
    const cbs = this.#callbacks;
    this.#callbacks = [];
    for (const cb of cbs) {
      try {
        cb(this);
      } catch (e) {
        // concurrent.futures logs and carries on: the other callbacks still run.
        logErrorSafely(`exception calling callback for ${this.toString()}: ${showException(e)}`);
      }
    }
  }

  #asPromise(): Promise<T> {
    if (this.#promise === null) {
      this.#promise = new Promise<T>((resolve, reject) => {
        this.#settle = { resolve, reject };
      });
      if (this.done()) {
        const s = this.#settle!;
        this.#settle = null;
        if (this.#state === 'CANCELLED') s.reject(new CancelledError());
        else if (this.#hasException) s.reject(this.#exception);
        else s.resolve(this.#result as T);
      }
    }
    return this.#promise;
  }

  then<R1 = T, R2 = never>(
    onfulfilled?: ((value: T) => R1 | PromiseLike<R1>) | null,
    onrejected?: ((reason: any) => R2 | PromiseLike<R2>) | null,
  ): Promise<R1 | R2> {
    return this.#asPromise().then(onfulfilled, onrejected);
  }

  catch<R = never>(onrejected?: ((reason: any) => R | PromiseLike<R>) | null): Promise<T | R> {
    return this.#asPromise().catch(onrejected);
  }

  finally(onfinally?: (() => void) | null): Promise<T> {
    return this.#asPromise().finally(onfinally);
  }

  toString(): string {
    return `<ConcurrentFuture state=${this.#state}>`;
  }
}

// ---------------------------------------------------------------------------
// wrapFuture

/**
 * asyncio's `wrap_future`: a Future of `loop` (default: the running loop)
 * that follows a ConcurrentFuture or a promise. Cancelling the returned
 * Future cancels a ConcurrentFuture (a queued executor job is dropped, a
 * running one runs to its end), as `_chain_future` does; a promise cannot
 * be cancelled, its outcome is then dropped. An aionode Future is returned
 * as is.
 */
export function wrapFuture<T>(
  future: ConcurrentFuture<T> | PromiseLike<T> | Future<T>,
  options: { loop?: AbstractEventLoop } = {},
): Future<T> {
  if (isFuture(future)) return future as Future<T>;
  const loop = options.loop ?? getRunningLoop();
  if (future instanceof ConcurrentFuture) {
    const dest = loop.createFuture<T>();
    chainConcurrent(future, dest, loop);
    return dest;
  }
  if (future === null || typeof (future as PromiseLike<T>)?.then !== 'function') {
    throw new TypeError(describeArg('future', 'a ConcurrentFuture, a promise or a Future', future));
  }
  return loop.wrap(future as PromiseLike<T>);
}

/** @internal `_chain_future(source, dest)` for a ConcurrentFuture source. */
export function chainConcurrent<T>(source: ConcurrentFuture<T>, dest: Future<T>, loop: AbstractEventLoop): void {
  dest.addDoneCallback(() => {
    if (dest.cancelled()) source.cancel();
  });
  source.addDoneCallback(() => {
    // A closed destination loop drops the outcome (asyncio does the same).
    if (loop.isClosed() || dest.done()) return;
    if (source.cancelled()) dest.cancel();
    else {
      const exc = source.exception();
      if (exc !== undefined) dest.setException(exc);
      else dest.setResult(source.result());
    }
  });
}

// ---------------------------------------------------------------------------
// Loop references and channels

/** What `loop.threadsafeHandle()` returns once it has crossed a thread: plain data. */
export interface LoopRef {
  readonly kind: 'aionode.LoopRef';
  /** The channel id: a decimal uint64, unique in the process, never reused. */
  readonly id: string;
}

const REF_KIND = 'aionode.LoopRef';

/**
 * A reference to a loop that any thread may post to. Its own enumerable
 * properties are plain data (`{ kind, id }`), so it survives
 * `worker.postMessage`, `workerData` and JSON; on the other side
 * `LoopHandle.fromJSON(value)` (or `postToLoop`, which does it for you)
 * checks it. `close()` is only meaningful on the loop's own thread.
 */
export class LoopHandle implements LoopRef {
  readonly kind = REF_KIND as 'aionode.LoopRef';
  readonly id: string;
  #channel: LoopChannel | null;

  /** @internal */
  constructor(id: string, channel: LoopChannel | null) {
    this.id = id;
    this.#channel = channel;
  }

  /** Stops accepting messages: posts then fail with RuntimeError on the sender. Idempotent. */
  close(): void {
    this.#channel?.close();
    this.#channel = null;
  }

  /** Whether this handle (on the loop's own thread) was closed, or its loop was. */
  get closed(): boolean {
    return this.#channel === null || this.#channel.closed;
  }

  toJSON(): LoopRef {
    return { kind: REF_KIND, id: this.id };
  }

  /**
   * Checks a cloned or parsed reference.
   * @throws TypeError naming the value when it is not a loop reference.
   */
  static fromJSON(value: unknown): LoopRef {
    const v = value as { kind?: unknown; id?: unknown } | null;
    if (typeof v !== 'object' || v === null || v.kind !== REF_KIND || typeof v.id !== 'string' || !/^[1-9][0-9]{0,19}$/.test(v.id)) {
      throw new TypeError(describeArg('loopRef', 'a loop reference from loop.threadsafeHandle()', value));
    }
    return { kind: REF_KIND, id: v.id };
  }
}

interface CallRequest {
  callId: number;
  replyTo: string;
  filename: string;
  name: string;
  args: unknown[];
}

interface Reply {
  callId: number;
  ok?: boolean;
  value?: unknown;
  error?: PackedError;
  cancelled?: boolean;
}

/** The loop's side of one channel. */
class LoopChannel {
  readonly native: CallChannel;
  readonly loop: AbstractEventLoop;
  readonly onMessage: ((msg: any) => unknown) | null;
  // Remote calls received here and not answered yet: `${replyTo}:${callId}`
  // -> their task, or null while the call waits for the loop to start it.
  readonly calls = new Map<string, Future<unknown> | null>();
  // Held strongly here; the native side holds it weakly (a dropped loop is collected).
  readonly #deliver: Deliver;

  constructor(loop: AbstractEventLoop, onMessage: ((msg: any) => unknown) | null) {
    this.loop = loop;
    this.onMessage = onMessage;
    this.#deliver = (kinds, data, ends, lost, lostCount) => {
      if (kinds === null || data === null || ends === null) this.#onLost(lost, lostCount ?? 0);
      else this.#onMessages(kinds, data, ends);
    };
    this.native = new (channelBinding().NativeChannel)(this.#deliver);
  }

  // A batch the native side could not hand over (its calls were answered there).
  #onLost(exc: unknown, count: number): void {
    if (this.loop.isClosed()) return;
    this.loop.callExceptionHandler({
      message: `threadsafe handle: ${count} message(s) could not be delivered and were dropped`,
      exception: exc,
    });
  }

  get closed(): boolean {
    return this.native.closed;
  }

  #onMessages(kinds: Int32Array, data: Buffer, ends: Uint32Array): void {
    let start = 0;
    for (let i = 0; i < kinds.length; i++) {
      const end = ends[i];
      const from = start;
      start = end;
      if (this.loop.isClosed()) return;
      let msg: unknown;
      try {
        msg = decode(kinds[i], data, from, end);
      } catch (exc) {
        this.loop.callExceptionHandler({ message: 'threadsafe handle: undecodable message dropped', exception: exc });
        continue;
      }
      switch (kinds[i] & KIND_MASK) {
        case KIND_MESSAGE:
          if (this.onMessage !== null) this.loop.callSoon(this.onMessage, msg);
          else this.loop.callExceptionHandler({ message: 'a message was posted to a threadsafe handle without onMessage: dropped' });
          break;
        case KIND_CALL: {
          const req = msg as CallRequest;
          this.calls.set(`${req.replyTo}:${req.callId}`, null);
          this.loop.callSoon(() => this.#startCall(req));
          break;
        }
        case KIND_CANCEL: {
          const m = msg as { callId: number; replyTo: string };
          const key = `${m.replyTo}:${m.callId}`;
          const task = this.calls.get(key);
          if (task === null) {
            // Not started yet: it never will be (asyncio cancels the task before its first step).
            this.calls.delete(key);
            this.#answer(m.replyTo, { callId: m.callId, cancelled: true });
          } else if (task !== undefined) {
            this.loop.callSoon(() => task.cancel());
          }
          break;
        }
        default:
          break;
      }
    }
  }

  #startCall(req: CallRequest): void {
    const key = `${req.replyTo}:${req.callId}`;
    // Cancelled (or answered by close()) before it could start.
    if (this.calls.get(key) !== null) return;
    let task: Future<unknown>;
    try {
      const fn = loadExport(req.filename, req.name);
      const call = { [req.name]: () => fn(...req.args) }[req.name];
      task = this.loop.createTask(call as never);
    } catch (exc) {
      this.calls.delete(key);
      this.#answer(req.replyTo, { callId: req.callId, ok: false, error: packError(exc) });
      return;
    }
    this.calls.set(key, task);
    task.addDoneCallback(() => {
      this.calls.delete(key);
      if (task.cancelled()) {
        this.#answer(req.replyTo, { callId: req.callId, cancelled: true });
        return;
      }
      const exc = task.exception();
      if (exc !== undefined) this.#answer(req.replyTo, { callId: req.callId, ok: false, error: packError(exc) });
      else this.#answer(req.replyTo, { callId: req.callId, ok: true, value: task.result() });
    });
  }

  // Only the first answer counts: the native channel may have answered the
  // call already (closed under it), then the caller has its RuntimeError.
  #answer(replyTo: string, r: Reply): void {
    if (this.native.settle(replyTo, r.callId)) reply(replyTo, r);
  }

  close(): void {
    if (this.native.closed) return;
    // Callers still waiting (calls queued in the native FIFO, drained and
    // not started, or running) are answered by the native close itself
    // with RuntimeError('Event loop is closed'): the same path serves a
    // thread that exits or is terminated, where no JavaScript runs.
    this.native.close();
    const set = channelsOf.get(this.loop);
    set?.delete(this);
    // A handle closed on a live loop: nobody waits for those tasks any more.
    if (!this.loop.isClosed()) for (const task of this.calls.values()) task?.cancel();
    this.calls.clear();
  }
}

const channelsOf = new WeakMap<AbstractEventLoop, Set<LoopChannel>>();

/**
 * @internal `loop.threadsafeHandle(onMessage)`: opens a channel to `loop`.
 * Messages posted to it run `onMessage(message)` as ordinary Handles of
 * the loop, in the order each sender posted them.
 */
export function openThreadsafeHandle(loop: AbstractEventLoop, onMessage?: ((msg: any) => unknown) | null): LoopHandle {
  if (loop.isClosed()) throw new RuntimeError('Event loop is closed');
  if (onMessage !== undefined && onMessage !== null && typeof onMessage !== 'function') {
    throw new TypeError(describeArg('onMessage', 'a function or null', onMessage));
  }
  const ch = new LoopChannel(loop, onMessage ?? null);
  let set = channelsOf.get(loop);
  if (set === undefined) channelsOf.set(loop, (set = new Set()));
  set.add(ch);
  return new LoopHandle(ch.native.id, ch);
}

/** @internal Closes every channel of `loop` (loop.close()). */
export function closeThreadsafeHandles(loop: AbstractEventLoop): void {
  const set = channelsOf.get(loop);
  if (set === undefined) return;
  for (const ch of [...set]) ch.close();
  channelsOf.delete(loop);
}

function serialize(value: unknown, what: string): Buffer {
  try {
    return v8.serialize(value);
  } catch (exc) {
    throw new TypeError(`${what} must be structured-clonable (${(exc as Error)?.message ?? safeString(exc)})`);
  }
}

let nativeBinding: ChannelBinding | null = null;

function post(id: string, kind: number, payload: Uint8Array | string | number | undefined, replyTo?: string, callId?: number): void {
  const rc = (nativeBinding ??= channelBinding()).channelPost(id, kind, payload, replyTo, callId);
  if (rc === -EPIPE || rc === -ENOENT) throw new RuntimeError('Event loop is closed');
  if (rc !== 0) throw new RuntimeError(`postToLoop failed (errno ${-rc})`);
}

/**
 * Posts `message` (anything structured-clonable) to the loop behind
 * `loopRef`, from any thread, worker or not. The loop runs its handle's
 * `onMessage(message)` as an ordinary Handle; messages from one thread
 * arrive in the order they were posted.
 * @throws RuntimeError 'Event loop is closed' when the loop or its handle
 * is closed (or its thread has exited); TypeError for a bad reference or a
 * message that cannot be cloned (a function, say).
 */
export function postToLoop(loopRef: LoopRef | LoopHandle, message: unknown): void {
  const id = refId(loopRef);
  switch (typeof message) {
    case 'number':
      return post(id, KIND_MESSAGE | ENC_NUMBER, message);
    case 'string':
      // The native side encodes UTF-8, which has no lone surrogates (they
      // would become U+FFFD); structured clone keeps them, so such a string
      // takes the v8.serialize path.
      if (!(message as unknown as { isWellFormed(): boolean }).isWellFormed()) {
        return post(id, KIND_MESSAGE | ENC_V8, serialize(message, 'message'));
      }
      return post(id, KIND_MESSAGE | ENC_STRING, message);
    case 'undefined':
      return post(id, KIND_MESSAGE | ENC_UNDEFINED, undefined);
    case 'boolean':
      return post(id, KIND_MESSAGE | (message ? ENC_TRUE : ENC_FALSE), undefined);
    default:
      if (message === null) return post(id, KIND_MESSAGE | ENC_NULL, undefined);
      if (jsonExact(message)) return post(id, KIND_MESSAGE | ENC_JSON, JSON.stringify(message));
      return post(id, KIND_MESSAGE | ENC_V8, serialize(message, 'message'));
  }
}

// References already checked: a sender posting in a loop checks its
// reference once.
const checkedRefs = new WeakMap<object, string>();

function refId(loopRef: unknown): string {
  if (typeof loopRef === 'object' && loopRef !== null) {
    const id = checkedRefs.get(loopRef);
    // The id is read again: a plain object may have been changed since.
    if (id !== undefined && (loopRef as LoopRef).id === id) return id;
  }
  const { id } = LoopHandle.fromJSON(loopRef);
  checkedRefs.set(loopRef as object, id);
  return id;
}

// ---------------------------------------------------------------------------
// Module exports as work

/** A function exported by a module, named so another thread can load it. */
export interface ExportRef {
  /** Absolute path or file: URL of a CommonJS or ES module (ES: no top-level await). */
  filename: string;
  /** The export's name (default: `'default'`). */
  name?: string;
}

/** @internal Validates `{ filename, name }`; returns the normalised pair. */
export function checkExportRef(ref: unknown, argName: string): { filename: string; name: string } {
  const r = ref as { filename?: unknown; name?: unknown } | null;
  if (typeof r !== 'object' || r === null || typeof r.filename !== 'string' || r.filename === '') {
    throw new TypeError(describeArg(argName, 'a function or a { filename, name } module reference', ref));
  }
  let filename = r.filename;
  if (filename.startsWith('file:')) filename = new URL(filename).pathname;
  if (!path.isAbsolute(filename)) {
    throw new TypeError(describeArg(`${argName}.filename`, 'an absolute path or a file: URL', r.filename));
  }
  if (r.name !== undefined && (typeof r.name !== 'string' || r.name === '')) {
    throw new TypeError(describeArg(`${argName}.name`, 'an export name (a non-empty string)', r.name));
  }
  return { filename, name: r.name ?? 'default' };
}

const requireHere = createRequire(__filename);

/**
 * @internal Loads `filename` and returns export `name`: CommonJS, or an ES
 * module through require(esm) (Node >= 20.19; not one with top-level await).
 */
export function loadExport(filename: string, name: string): (...args: unknown[]) => unknown {
  const mod = requireHere(filename) as Record<string, unknown>;
  const fn = name === 'default' && typeof mod === 'function' ? mod : mod?.[name];
  if (typeof fn !== 'function') {
    throw new TypeError(`${path.basename(filename)} has no function export ${JSON.stringify(name)} (got ${typeof fn})`);
  }
  return fn as (...args: unknown[]) => unknown;
}

// ---------------------------------------------------------------------------
// runCoroutineThreadsafe

interface Pending {
  fut: ConcurrentFuture<unknown>;
}

let replyChannel: CallChannel | null = null;
let replyDeliver: Deliver | null = null;
const pendingCalls = new Map<number, Pending>();
let nextCallId = 1;

function reply(replyTo: string, r: Reply): void {
  let bytes: Buffer;
  try {
    bytes = v8.serialize(r);
  } catch (exc) {
    bytes = v8.serialize({
      callId: r.callId,
      ok: false,
      error: packError(new TypeError(`the coroutine's result must be structured-clonable (${(exc as Error).message})`)),
    });
  }
  // A caller whose thread has gone cannot be told: nothing to do.
  binding().channelPost(replyTo, KIND_REPLY, bytes);
}

function onReplies(kinds: Int32Array | null, data: Buffer | null, ends: Uint32Array | null, lost?: unknown): void {
  if (kinds === null || data === null || ends === null) {
    // Replies lost for want of memory: the futures they settle stay pending; say so.
    logErrorSafely(`runCoroutineThreadsafe: replies could not be delivered: ${showException(lost)}`);
    return;
  }
  let start = 0;
  for (let i = 0; i < kinds.length; i++) {
    const bytes = data.subarray(start, ends[i]);
    start = ends[i];
    if (kinds[i] === KIND_ABANDONED && bytes.length === 9) {
      const callId = Number(bytes.readBigUInt64LE(0));
      const p = pendingCalls.get(callId);
      if (p === undefined) continue;
      pendingCalls.delete(callId);
      p.fut.setException(
        bytes[8] === ABANDON_UNDELIVERABLE
          ? new RuntimeError('the call could not be delivered to the target loop (out of memory)')
          : new RuntimeError('Event loop is closed'),
      );
      continue;
    }
    if (kinds[i] !== KIND_REPLY) continue;
    let r: Reply;
    try {
      r = v8.deserialize(bytes) as Reply;
    } catch (e) {
      // Only our own replies arrive here; one that cannot be read is a bug, not a reason to crash.
      logErrorSafely(`runCoroutineThreadsafe: unreadable reply dropped: ${showException(e)}`);
      continue;
    }
    const p = pendingCalls.get(r.callId);
    if (p === undefined) continue;
    pendingCalls.delete(r.callId);
    if (r.cancelled === true) p.fut.cancel();
    else if (r.ok === true) p.fut.setResult(r.value);
    else p.fut.setException(unpackError(r.error ?? { name: 'Error', message: 'unknown error' }));
  }
  if (pendingCalls.size === 0) replyChannel?.unref();
}

function ensureReplyChannel(): CallChannel {
  if (replyChannel === null || replyChannel.closed) {
    replyDeliver = onReplies;
    replyChannel = new (channelBinding().NativeChannel)(replyDeliver);
  }
  return replyChannel;
}

/**
 * asyncio's `run_coroutine_threadsafe`: submits work to `loop` and returns
 * a ConcurrentFuture for its outcome, awaitable from anywhere.
 *
 * - `loop` is an event loop object (this thread): `coro` is a coroutine (a
 *   generator object, a promise) or a function returning one; the task is
 *   created inside `loop` through `callSoonThreadsafe`. Cancelling the
 *   returned future cancels the task.
 * - `loop` is a loop reference (`loop.threadsafeHandle()`, sent to this
 *   thread): coroutines cannot cross threads, so `coro` names one:
 *   `{ filename, name, args }`, a function exported by a CommonJS module
 *   that the target thread loads and runs as a task of its loop
 *   (`fn(...args)`: an async function or a generator function). Its result
 *   comes back structured-cloned; an error keeps its class name and message;
 *   cancelling the returned future cancels the task over there.
 * @throws TypeError for anything else; RuntimeError 'Event loop is closed'
 * when the target cannot take it.
 */
export function runCoroutineThreadsafe<T = unknown>(
  coro: unknown,
  loop: AbstractEventLoop | LoopRef | LoopHandle,
): ConcurrentFuture<T> {
  if (isLoopObject(loop)) return runLocal<T>(coro, loop);
  if (typeof loop === 'object' && loop !== null && (loop as { kind?: unknown }).kind === REF_KIND) {
    return runRemote<T>(coro, LoopHandle.fromJSON(loop));
  }
  throw new TypeError(describeArg('loop', 'an event loop or a loop reference from loop.threadsafeHandle()', loop));
}

function isLoopObject(v: unknown): v is AbstractEventLoop {
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof (v as AbstractEventLoop).callSoon === 'function' &&
    typeof (v as AbstractEventLoop).createTask === 'function'
  );
}

function runLocal<T>(coro: unknown, loop: AbstractEventLoop): ConcurrentFuture<T> {
  // asyncio: `if not coroutines.iscoroutine(coro): raise TypeError(...)`.
  if (!isGenerator(coro) && !(coro instanceof Promise) && typeof coro !== 'function') {
    throw new TypeError(`A coroutine object is required, got ${describeArg('coro', '', coro).split(', got ')[1]}`);
  }
  const fut = new ConcurrentFuture<T>();
  let task: Future<T> | null = null;
  fut._onCancel = () => {
    if (task !== null && !loop.isClosed()) {
      const t = task;
      threadsafe(loop, () => t.cancel());
    }
    return true;
  };
  threadsafe(loop, () => {
    if (fut.cancelled()) return;
    try {
      task = loop.createTask(coro as never) as Future<T>;
    } catch (exc) {
      fut.setException(exc);
      throw exc;
    }
    const t = task;
    t.addDoneCallback(() => {
      if (t.cancelled()) fut.cancel();
      else {
        const exc = t.exception();
        if (exc !== undefined) fut.setException(exc);
        else fut.setResult(t.result());
      }
    });
  });
  return fut;
}

function threadsafe(loop: AbstractEventLoop, cb: () => void): Handle {
  const l = loop as AbstractEventLoop & { callSoonThreadsafe?: (cb: () => void) => Handle };
  return typeof l.callSoonThreadsafe === 'function' ? l.callSoonThreadsafe(cb) : loop.callSoon(cb);
}

function runRemote<T>(coro: unknown, ref: LoopRef): ConcurrentFuture<T> {
  const spec = coro as { filename?: unknown; name?: unknown; args?: unknown } | null;
  const { filename, name } = checkExportRef(coro, 'coro');
  const args = spec?.args ?? [];
  if (!Array.isArray(args)) throw new TypeError(describeArg('coro.args', 'an array', args));
  const ch = ensureReplyChannel();
  const callId = nextCallId++;
  const req: CallRequest = { callId, replyTo: ch.id, filename, name, args };
  const bytes = serialize(req, 'coro.args');
  const fut = new ConcurrentFuture<T>();
  // The reply address rides natively too: if the target goes before it
  // answers, its channel answers for it.
  post(ref.id, KIND_CALL, bytes, ch.id, callId);
  pendingCalls.set(callId, { fut: fut as ConcurrentFuture<unknown> });
  ch.ref();
  fut._onCancel = () => {
    pendingCalls.delete(callId);
    if (pendingCalls.size === 0) ch.unref();
    // The target may be gone already: then there is nothing to cancel.
    binding().channelPost(ref.id, KIND_CANCEL, v8.serialize({ callId, replyTo: ch.id }));
    return true;
  };
  return fut;
}
