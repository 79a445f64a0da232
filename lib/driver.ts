/**
 * The loop's driver: what the scheduler calls to keep time, keep timers,
 * and be woken.
 *
 * aionode's loop is a scheduler + driver + I/O personality (tokio's
 * layering inside asyncio's class chain). The scheduler (`BaseEventLoop`:
 * ready queue, the JS side of timers, `_runOnce`) owns time and calls one
 * driver; the personality (`BaseSelectorEventLoop`, `BaseProactorEventLoop`)
 * decides what an I/O pair in a batch means. The driver's only way back into
 * the scheduler is the batch callback it was built with: `onBatch(n)` after
 * it has written `n` pairs into the shared `events` array — `(token, value)`
 * for I/O, `(-1, timerId)` for a due timer — returning 1 when callbacks are
 * still ready (so the driver must not let Node's poll block) and 0 when not.
 */
import { binding, type NativeLoop, type NativeLoopStats, type NativeProactor, type NativeSelector } from './native.js';

/** What `BaseEventLoop` needs from whoever waits for it. */
export interface LoopDriver {
  /** The event source's name: `'epoll'`, `'poll'`, `'select'`, `'io_uring'`. */
  readonly backend: string;
  /** Monotonic seconds: the loop's `time()`. */
  time(): number;
  /** Arms timer `id` at the absolute time `when` (seconds on `time()`'s clock). */
  timerAt(id: number, when: number): void;
  /** Arms timer `id` `delay` seconds from now; returns the absolute deadline used. */
  timerIn(id: number, delay: number): number;
  /** Disarms timer `id` (a no-op for an unknown id). */
  timerRemove(id: number): void;
  /** The loop starts running; `kick`: callbacks are already ready, run a pass soon. */
  start(kick: boolean): void;
  /** The loop stops running (nothing holds the process open any more). */
  stop(): void;
  /** Callbacks became ready outside a batch: run a pass soon. */
  kick(): void;
  /** Counters for tests and benchmarks. */
  stats(): NativeLoopStats;
  /** Releases the driver's resources; idempotent. */
  close(): void;
}

/** Builds a driver around the scheduler's shared event array and batch callback. */
export type DriverFactory = (events: Int32Array, onBatch: (count: number) => number) => LoopDriver;

/**
 * The native driver: the addon's NativeLoop hosting one event source (a
 * selector or a proactor) and the timer heap inside Node's libuv loop.
 */
export class NativeDriver implements LoopDriver {
  readonly #native: NativeLoop;
  readonly backend: string;
  // The addon's clock, called directly: time() is on callLater's hot path.
  readonly time: () => number;

  constructor(source: NativeSelector | NativeProactor, events: Int32Array, onBatch: (count: number) => number) {
    const b = binding();
    this.time = b.time;
    this.#native = new b.NativeLoop(source, events, onBatch);
    this.backend = this.#native.backend;
  }

  timerAt(id: number, when: number): void {
    this.#native.timerAt(id, when);
  }
  timerIn(id: number, delay: number): number {
    return this.#native.timerIn(id, delay);
  }
  timerRemove(id: number): void {
    this.#native.timerRemove(id);
  }
  start(kick: boolean): void {
    this.#native.start(kick);
  }
  stop(): void {
    this.#native.stop();
  }
  kick(): void {
    this.#native.kick();
  }
  stats(): NativeLoopStats {
    return this.#native.stats();
  }
  close(): void {
    this.#native.close();
  }
}
