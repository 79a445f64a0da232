/**
 * Event loop using a selector and related classes.
 *
 * Port of CPython Lib/asyncio/selector_events.py (3.14): the selector loop
 * and its reader/writer registration. The selector's backend runs inside
 * Node's loop through the addon's NativeLoop (epoll fd in a uv_poll_t, or a
 * helper thread for poll/select), which also owns the timer heap.
 */
import { _setDefaultLoopFactory, fileobjToFd, Handle, type FileDescriptorLike } from './events.js';
import { BaseEventLoop } from './base-events.js';
import { describeArg, RuntimeError } from './exceptions.js';
import { binding, type NativeLoop, type NativeLoopStats } from './native.js';
import {
  BaseSelector,
  DefaultSelector,
  EVENT_READ,
  EVENT_WRITE,
  NativeBackedSelector,
  type SelectorKey,
} from './selectors.js';

type Callback = (...args: any[]) => unknown;
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
  #native: NativeLoop;
  readonly #time: () => number;

  /** @param selector the backend; `new DefaultSelector()` when omitted. */
  constructor(selector?: BaseSelector<any>) {
    super();
    if (selector === undefined) selector = new DefaultSelector<RW>();
    if (!(selector instanceof NativeBackedSelector)) {
      throw new TypeError(describeArg('selector', 'one of aionode\'s selectors (EpollSelector, PollSelector, SelectSelector, DefaultSelector)', selector));
    }
    const nativeSelector = selector._native;
    if (nativeSelector === null) throw new TypeError('The selector is closed');
    this._selector = selector as NativeBackedSelector<RW>;
    const b = binding();
    this.#time = b.time;
    this.#native = new b.NativeLoop(nativeSelector, this._events, (n) => this._runOnce(n));
  }

  /** Which selector backend runs this loop: `'epoll'`, `'poll'`, `'select'`. */
  get backend(): string {
    return this._selector.name;
  }

  /** Counters of the native side (batches, passes, timer arms), for tests and benchmarks. */
  nativeStats(): NativeLoopStats {
    return this.#native.stats();
  }

  time(): number {
    return this.#time();
  }

  protected _nativeTimerAt(id: number, when: number): void {
    this.#native.timerAt(id, when);
  }
  protected _nativeTimerIn(id: number, delay: number): number {
    return this.#native.timerIn(id, delay);
  }
  protected _nativeTimerRemove(id: number): void {
    this.#native.timerRemove(id);
  }
  protected _nativeStart(kick: boolean): void {
    this.#native.start(kick);
  }
  protected _nativeStop(): void {
    this.#native.stop();
  }
  protected _nativeKick(): void {
    this.#native.kick();
  }
  protected _nativeClose(): void {
    this.#native.close();
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

  #checkClosedForIo(): void {
    if (this.isClosed()) throw new RuntimeError('Event loop is closed');
  }

  #add(fd: number, which: 0 | 1, callback: Callback, args: unknown[]): Handle {
    this.#checkClosedForIo();
    if (typeof callback !== 'function') {
      throw new TypeError(`a callable object was expected by ${which === 0 ? 'addReader' : 'addWriter'}(), got ${typeof callback}`);
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
      this._selector.modify(fd, key.events | mask, data);
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
    return this.#add(fileobjToFd(fd), 0, callback, args);
  }

  /** Stops watching `fd` for reading; returns whether a reader was registered. */
  removeReader(fd: FileDescriptorLike): boolean {
    return this.#removeReader(fileobjToFd(fd));
  }

  /** Calls `callback(...args)` whenever `fd` is writable. */
  addWriter(fd: FileDescriptorLike, callback: Callback, ...args: unknown[]): Handle {
    return this.#add(fileobjToFd(fd), 1, callback, args);
  }

  /** Stops watching `fd` for writing; returns whether a writer was registered. */
  removeWriter(fd: FileDescriptorLike): boolean {
    return this.#removeWriter(fileobjToFd(fd));
  }
}

/** The selector loop for this platform (CPython's unix_events.SelectorEventLoop). */
export class SelectorEventLoop extends BaseSelectorEventLoop {}

/** The default loop class, as `asyncio.EventLoop`. */
export const EventLoop = SelectorEventLoop;

_setDefaultLoopFactory(() => new SelectorEventLoop());
