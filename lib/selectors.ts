/**
 * Selectors module: high-level I/O multiplexing over the native backends.
 *
 * Port of CPython Lib/selectors.py (3.14). Each class wraps one native
 * backend of the addon (epoll, poll, select); `DefaultSelector` picks the
 * best one here (kqueue -> epoll -> poll -> select, as Python does), or the
 * one named by `AIONODE_SELECTOR`.
 */
import { inspect } from 'node:util';
import { describeArg, RuntimeError } from './exceptions.js';
import { fileobjToFd, type FileDescriptorLike } from './events.js';
import { binding, type NativeSelector } from './native.js';

/** Readable interest / event bit (Python's `selectors.EVENT_READ`). */
export const EVENT_READ = 1;
/** Writable interest / event bit (Python's `selectors.EVENT_WRITE`). */
export const EVENT_WRITE = 2;

/** Python's KeyError, raised for unknown or duplicate registrations. */
export class KeyError extends Error {
  constructor(message?: string) {
    super(message);
    Object.defineProperty(this, 'name', { value: 'KeyError', enumerable: false, configurable: true });
  }
}

/** A registration: the object, its fd, the events and the attached data. */
export class SelectorKey<D = unknown> {
  constructor(
    readonly fileobj: FileDescriptorLike,
    readonly fd: number,
    readonly events: number,
    readonly data: D,
    /** @internal The native token of this registration (fresh every time). */
    readonly _token: number,
  ) {}
  toString(): string {
    return `SelectorKey(fileobj=${inspect(this.fileobj, { depth: 0 })}, fd=${this.fd}, events=${this.events}, data=${inspect(this.data, { depth: 0 })})`;
  }
}

/** A ready pair, as Python's `select()` returns: `[key, events]`. */
export type SelectorEvent<D = unknown> = [key: SelectorKey<D>, events: number];

/**
 * Selector abstract base class: registers file objects and waits for I/O
 * readiness on them.
 */
export abstract class BaseSelector<D = unknown> {
  /** Starts watching `fileobj` for `events`; returns its new key. */
  abstract register(fileobj: FileDescriptorLike, events: number, data?: D): SelectorKey<D>;
  /** Stops watching `fileobj`; returns its old key. */
  abstract unregister(fileobj: FileDescriptorLike): SelectorKey<D>;
  /**
   * Waits until some registered file objects are ready or `timeout` seconds
   * pass (null/undefined: no limit; <= 0: poll). Blocks the calling thread,
   * as in Python.
   */
  abstract select(timeout?: number | null): SelectorEvent<D>[];
  /** Closes the selector and forgets every registration. */
  abstract close(): void;
  /** The registered file objects' keys, by fd. */
  abstract getMap(): ReadonlyMap<number, SelectorKey<D>>;

  /** Changes the events or data of a registration; returns the new key. */
  modify(fileobj: FileDescriptorLike, events: number, data?: D): SelectorKey<D> {
    this.unregister(fileobj);
    return this.register(fileobj, events, data);
  }

  /** The key of `fileobj`. @throws KeyError if it is not registered. */
  getKey(fileobj: FileDescriptorLike): SelectorKey<D> {
    const map = this.getMap();
    const fd = fileobjToFd(fileobj);
    const key = map.get(fd);
    if (key === undefined) throw new KeyError(`${inspect(fileobj, { depth: 0 })} is not registered`);
    return key;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }
}

/**
 * Every open native selector, weakly: when the kernel hands out an fd
 * number, a registration still filed under that number in any of them is
 * stale (its file was closed behind the selector's back) and is dropped,
 * so the new file starts with a fresh registration on every backend.
 */
const liveSelectors = new Set<WeakRef<NativeBackedSelector<any>>>();

/** @internal Called by aionode whenever it creates an fd (socket, accept). */
export function _fdOpened(fd: number): void {
  for (const ref of liveSelectors) {
    const sel = ref.deref();
    if (sel === undefined) liveSelectors.delete(ref);
    else sel._dropStale(fd);
  }
}

function checkEvents(events: unknown): number {
  if (typeof events !== 'number' || !Number.isInteger(events) || events < 1 || events > 3) {
    throw new RangeError(describeArg('events', 'EVENT_READ, EVENT_WRITE or both (1..3)', events));
  }
  return events;
}

/**
 * A selector backed by one native backend. Tokens, not fds, identify
 * registrations in the native layer: every registration gets a fresh one,
 * so a late event for a closed-and-reused fd can never reach the new owner.
 */
export class NativeBackedSelector<D = unknown> extends BaseSelector<D> {
  /** @internal */ _native: NativeSelector | null;
  #fdToKey = new Map<number, SelectorKey<D>>();
  /** @internal token -> key, for the loop's event dispatch. */ _tokenToKey = new Map<number, SelectorKey<D>>();
  #nextToken = 0;
  #out: Int32Array = new Int32Array(2 * 256);
  readonly #name: string;
  readonly #ref: WeakRef<NativeBackedSelector<any>>;
  /** Stale registrations dropped because their fd number was reused (tests, T1). */
  staleDropped = 0;
  /** @internal Told about every stale registration dropped (the loop cancels its handles). */
  _onStale: ((key: SelectorKey<D>) => void) | null = null;

  constructor(name: string) {
    super();
    this._native = new (binding().NativeSelector)(name);
    this.#name = this._native.name;
    this.#ref = new WeakRef(this);
    liveSelectors.add(this.#ref);
  }

  /** @internal A new file got number `fd`: forget what was registered under it. */
  _dropStale(fd: number): void {
    const key = this.#fdToKey.get(fd);
    if (key === undefined || this._native === null) return;
    this.#fdToKey.delete(fd);
    this._tokenToKey.delete(key._token);
    // The number now names the new file, which is not registered: epoll
    // answers ENOENT, poll/select just forget the slot. Either way the old
    // token can no longer be reported.
    this._native.unregister(fd);
    this.staleDropped++;
    this._onStale?.(key);
  }

  /**
   * @internal Re-files a registration under a fresh token with a native
   * call even when nothing changed: on epoll this re-adds an fd whose file
   * was closed and whose number was reused (the kernel dropped the old
   * registration by itself; EPOLL_CTL_MOD then says ENOENT and the backend
   * adds it anew), so a re-added reader is never silently unwatched.
   */
  _refile(fileobj: FileDescriptorLike, events: number, data: D): SelectorKey<D> {
    const native = this.#live();
    checkEvents(events);
    const fd = fileobjToFd(fileobj);
    const old = this.#fdToKey.get(fd);
    if (old === undefined) return this.register(fileobj, events, data);
    const key = new SelectorKey<D>(fileobj, fd, events, data, this.#token());
    native.modify(fd, key._token, events);
    this._tokenToKey.delete(old._token);
    this.#fdToKey.set(fd, key);
    this._tokenToKey.set(key._token, key);
    return key;
  }

  /** The backend's name: `'epoll'`, `'poll'`, `'select'`. */
  get name(): string {
    return this.#name;
  }

  #live(): NativeSelector {
    if (this._native === null) throw new RuntimeError('Selector is closed');
    return this._native;
  }

  #token(): number {
    // Tokens stay positive int32 and skip any still in use after wrapping.
    do {
      this.#nextToken = (this.#nextToken + 1) & 0x7fffffff;
    } while (this._tokenToKey.has(this.#nextToken));
    return this.#nextToken;
  }

  register(fileobj: FileDescriptorLike, events: number, data?: D): SelectorKey<D> {
    const native = this.#live();
    checkEvents(events);
    const fd = fileobjToFd(fileobj);
    if (this.#fdToKey.has(fd)) throw new KeyError(`${inspect(fileobj, { depth: 0 })} (FD ${fd}) is already registered`);
    const key = new SelectorKey<D>(fileobj, fd, events, data as D, this.#token());
    native.register(fd, key._token, events);
    this.#fdToKey.set(fd, key);
    this._tokenToKey.set(key._token, key);
    return key;
  }

  unregister(fileobj: FileDescriptorLike): SelectorKey<D> {
    const native = this.#live();
    const fd = fileobjToFd(fileobj);
    const key = this.#fdToKey.get(fd);
    if (key === undefined) throw new KeyError(`${inspect(fileobj, { depth: 0 })} is not registered`);
    this.#fdToKey.delete(fd);
    this._tokenToKey.delete(key._token);
    native.unregister(fd);
    return key;
  }

  override modify(fileobj: FileDescriptorLike, events: number, data?: D): SelectorKey<D> {
    const native = this.#live();
    checkEvents(events);
    const fd = fileobjToFd(fileobj);
    const old = this.#fdToKey.get(fd);
    if (old === undefined) throw new KeyError(`${inspect(fileobj, { depth: 0 })} is not registered`);
    if (events === old.events && data === old.data) return old;
    // Same interest, new data: no syscall, keep the token (Python does the same).
    const token = events === old.events ? old._token : this.#token();
    const key = new SelectorKey<D>(fileobj, fd, events, data as D, token);
    if (events !== old.events) native.modify(fd, token, events);
    this._tokenToKey.delete(old._token);
    this.#fdToKey.set(fd, key);
    this._tokenToKey.set(token, key);
    return key;
  }

  select(timeout?: number | null): SelectorEvent<D>[] {
    const native = this.#live();
    let t: number;
    if (timeout === undefined || timeout === null) t = -1;
    else if (typeof timeout !== 'number' || Number.isNaN(timeout)) {
      throw new TypeError(describeArg('timeout', 'a number of seconds, null or undefined', timeout));
    } else t = timeout <= 0 ? 0 : timeout;
    const want = Math.max(this.#fdToKey.size, 1);
    if (this.#out.length < 2 * want) this.#out = new Int32Array(2 * want);
    const n = native.select(t, this.#out);
    const ready: SelectorEvent<D>[] = [];
    for (let i = 0; i < n; i++) {
      const key = this._tokenToKey.get(this.#out[2 * i]);
      if (key !== undefined) ready.push([key, this.#out[2 * i + 1] & key.events]);
    }
    return ready;
  }

  close(): void {
    if (this._native !== null) {
      this._native.close();
      this._native = null;
      liveSelectors.delete(this.#ref);
    }
    this.#fdToKey.clear();
    this._tokenToKey.clear();
  }

  getMap(): ReadonlyMap<number, SelectorKey<D>> {
    if (this._native === null) throw new RuntimeError('Selector is closed');
    return this.#fdToKey;
  }

  override toString(): string {
    return `<${this.constructor.name} ${this.#name} fds=${this.#fdToKey.size}${this._native ? '' : ' closed'}>`;
  }
}

/** Linux epoll(7). */
export class EpollSelector<D = unknown> extends NativeBackedSelector<D> {
  constructor() {
    super('epoll');
  }
}

/** poll(2), driven from Node's loop by a helper thread. */
export class PollSelector<D = unknown> extends NativeBackedSelector<D> {
  constructor() {
    super('poll');
  }
}

/** select(2); fds at or above FD_SETSIZE (1024) are refused. */
export class SelectSelector<D = unknown> extends NativeBackedSelector<D> {
  constructor() {
    super('select');
  }
}

const selectorClasses: Record<string, new () => NativeBackedSelector<any>> = {
  epoll: EpollSelector,
  poll: PollSelector,
  select: SelectSelector,
};

/** Backend names compiled into the addon and usable here, best first. */
export function availableSelectors(): string[] {
  return binding()
    .availableSelectors()
    .split(',')
    .filter((n) => n.length > 0);
}

/** The class for a backend name. @throws Error naming what is available. */
export function selectorClass(name: string): new () => NativeBackedSelector<any> {
  const cls = selectorClasses[name];
  const available = availableSelectors();
  if (cls === undefined || !available.includes(name)) {
    throw new Error(`Selector "${name}" is not available here; available: ${available.join(', ')}`);
  }
  return cls;
}

/**
 * The best selector here (kqueue -> epoll -> poll -> select), or the one
 * named by the `AIONODE_SELECTOR` environment variable. As in Python,
 * `new DefaultSelector()` is an instance of that concrete class.
 */
export const DefaultSelector: new <D = unknown>() => NativeBackedSelector<D> = function DefaultSelector() {
  const forced = process.env.AIONODE_SELECTOR;
  const name = forced !== undefined && forced !== '' ? forced : availableSelectors()[0];
  return new (selectorClass(name))();
} as unknown as new <D = unknown>() => NativeBackedSelector<D>;
