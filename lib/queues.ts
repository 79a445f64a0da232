/**
 * Queues for coordinating producer and consumer tasks.
 *
 * Port of CPython Lib/asyncio/queues.py (3.14), with shutdown() (3.13).
 * put(), get() and join() are generators underneath, wrapped with
 * `_suspendable`, so both kinds of coroutine wait on them and see
 * cancellation where asyncio's do; each also takes `{ signal }`. A Queue
 * is async-iterable (asyncio's is not): `for await` gets items until the
 * queue is shut down and empty. Not thread-safe, as asyncio's.
 */
import { inspect } from 'node:util';
import { describeArg } from './exceptions.js';
import type { Future } from './futures.js';
import type { Coroutine } from './coroutines.js';
import { _bindSignal, _suspendable, type SignalOptions, type Sleep } from './tasks.js';
import { Event, _LoopBoundMixin, _remove, _signalOf, _throwIfAborted } from './locks.js';

function named(err: Error, name: string, ctor: Function): void {
  Object.defineProperty(err, 'name', { value: name, enumerable: false, configurable: true, writable: true });
  Error.captureStackTrace?.(err, ctor);
}

/**
 * getNowait() was called on an empty Queue.
 * @example
 * try {
 *   queue.getNowait();
 * } catch (e) {
 *   if (!(e instanceof QueueEmpty)) throw e;
 * }
 */
export class QueueEmpty extends Error {
  constructor(message?: string, options?: ErrorOptions) {
    super(message, options);
    named(this, 'QueueEmpty', new.target);
  }
}

/**
 * putNowait() was called on a full Queue.
 * @example
 * try {
 *   queue.putNowait(item);
 * } catch (e) {
 *   if (!(e instanceof QueueFull)) throw e;
 *   dropped++;
 * }
 */
export class QueueFull extends Error {
  constructor(message?: string, options?: ErrorOptions) {
    super(message, options);
    named(this, 'QueueFull', new.target);
  }
}

/**
 * A put or a get on a Queue that was shut down (a get once it is empty).
 * @example
 * for (;;) {
 *   let item;
 *   try {
 *     item = await queue.get();
 *   } catch (e) {
 *     if (e instanceof QueueShutDown) break; // shut down and drained
 *     throw e;
 *   }
 *   handle(item);
 * }
 */
export class QueueShutDown extends Error {
  constructor(message?: string, options?: ErrorOptions) {
    super(message, options);
    named(this, 'QueueShutDown', new.target);
  }
}

/**
 * The storage a Queue subclass keeps its items in (`_queue`), created by
 * its `_init()`; `_put()` and `_get()` store and remove items.
 * @example
 * class RandomQueue<T> extends Queue<T> {
 *   declare _queue: T[];
 *   protected override _init(): void {
 *     this._queue = [];
 *   }
 *   protected override _put(item: T): void {
 *     this._queue.push(item);
 *   }
 *   protected override _get(): T {
 *     return this._queue.splice(Math.floor(Math.random() * this._queue.length), 1)[0];
 *   }
 * }
 */
export interface QueueStorage<T> extends Iterable<T> {
  readonly length: number;
}

/**
 * A double-ended queue on a growable ring buffer: O(1) push and shift,
 * where `Array.prototype.shift` copies the array.
 */
class Deque<T> implements QueueStorage<T> {
  #items: (T | undefined)[] = new Array(16);
  #head = 0;
  #size = 0;

  get length(): number {
    return this.#size;
  }

  push(item: T): void {
    if (this.#size === this.#items.length) this.#grow();
    this.#items[(this.#head + this.#size) & (this.#items.length - 1)] = item;
    this.#size++;
  }

  shift(): T {
    const item = this.#items[this.#head] as T;
    this.#items[this.#head] = undefined;
    this.#head = (this.#head + 1) & (this.#items.length - 1);
    this.#size--;
    return item;
  }

  #grow(): void {
    const items = new Array<T | undefined>(this.#items.length * 2);
    for (let i = 0; i < this.#size; i++) items[i] = this.#items[(this.#head + i) & (this.#items.length - 1)];
    this.#items = items;
    this.#head = 0;
  }

  *[Symbol.iterator](): Iterator<T> {
    for (let i = 0; i < this.#size; i++) yield this.#items[(this.#head + i) & (this.#items.length - 1)] as T;
  }
}

/**
 * A first in, first out queue.
 *
 * With `maxsize` 0 (the default) it is unbounded; otherwise put() waits
 * while it holds `maxsize` items. Unlike a thread queue, qsize() is exact:
 * nothing runs between reading it and acting on it.
 *
 * @example
 * const queue = new Queue<number>(10);
 * createTask(async () => {
 *   for (let i = 0; i < 3; i++) await queue.put(i);
 *   queue.shutdown();
 * });
 * for await (const item of queue) console.log(item); // 0, 1, 2
 */
export class Queue<T> extends _LoopBoundMixin implements AsyncIterable<T> {
  /** @internal */ readonly _maxsize: number;
  /** @internal Futures of the tasks waiting in get(), oldest first. */ _getters: Future<void>[] = [];
  /** @internal Futures of the tasks waiting in put(), oldest first. */ _putters: Future<void>[] = [];
  /** @internal */ _unfinishedTasks = 0;
  /** @internal */ readonly _finished = new Event();
  /** @internal */ _isShutdown = false;
  /** @internal The items; its type is the subclass's choice (see _init). */ _queue!: QueueStorage<T>;

  /**
   * @param maxsize the most items it holds; 0 (the default) for no limit.
   * @throws TypeError / RangeError unless `maxsize` is a non-negative integer.
   */
  constructor(maxsize = 0) {
    super();
    if (typeof maxsize !== 'number') {
      throw new TypeError(describeArg('maxsize', 'a non-negative integer (0: unbounded)', maxsize));
    }
    if (!Number.isInteger(maxsize) || maxsize < 0) {
      throw new RangeError(describeArg('maxsize', 'a non-negative integer (0: unbounded)', maxsize));
    }
    this._maxsize = maxsize;
    this._finished.set();
    this._init(maxsize);
  }

  // These three are overridable in subclasses.

  /** Creates the item storage in `_queue`. */
  protected _init(_maxsize: number): void {
    this._queue = new Deque<T>();
  }

  /** Removes and returns the next item. */
  protected _get(): T {
    return (this._queue as Deque<T>).shift();
  }

  /** Stores an item. */
  protected _put(item: T): void {
    (this._queue as Deque<T>).push(item);
  }

  // End of the overridable methods.

  // Wakes up the next waiter (if any) that isn't cancelled.
  #wakeupNext(waiters: Future<void>[]): void {
    while (waiters.length > 0) {
      const waiter = waiters.shift()!;
      if (!waiter.done()) {
        waiter.setResult(undefined);
        break;
      }
    }
  }

  /** @internal The state part of toString(), asyncio's `_format`. */
  _format(): string {
    let result = `maxsize=${this._maxsize}`;
    if (this._queue.length > 0) {
      const items = [...this._queue].map((item) => inspect(item, { depth: 1, breakLength: Infinity }));
      result += ` _queue=[${items.join(', ')}]`;
    }
    if (this._getters.length > 0) result += ` _getters[${this._getters.length}]`;
    if (this._putters.length > 0) result += ` _putters[${this._putters.length}]`;
    if (this._unfinishedTasks) result += ` tasks=${this._unfinishedTasks}`;
    if (this._isShutdown) result += ' shutdown';
    return result;
  }

  override toString(): string {
    return `<${this.constructor.name} ${this._format()}>`;
  }

  [inspect.custom](): string {
    return this.toString();
  }

  /** The number of items in the queue. */
  qsize(): number {
    return this._queue.length;
  }

  /** The most items the queue holds (0: no limit). */
  get maxsize(): number {
    return this._maxsize;
  }

  /** Whether the queue holds no item. */
  empty(): boolean {
    return this._queue.length === 0;
  }

  /** Whether the queue holds `maxsize` items; never with maxsize 0. */
  full(): boolean {
    return this._maxsize > 0 && this.qsize() >= this._maxsize;
  }

  /**
   * Puts an item into the queue, first waiting for a free slot if it is full.
   * @param options `signal`: aborting it cancels the wait (nothing is put).
   * @throws QueueShutDown if the queue is shut down (also while waiting).
   * @throws CancelledError if the wait is cancelled or the signal aborted.
   * @example
   * await queue.put(item, { signal: AbortSignal.timeout(1000) });
   */
  put(item: T, options: SignalOptions = {}): Sleep<void> {
    const signal = _signalOf(options);
    return _suspendable(() => this.#put(item, signal));
  }

  *#put(item: T, signal: AbortSignal | undefined): Coroutine<void> {
    _throwIfAborted(signal);
    while (this.full()) {
      if (this._isShutdown) throw new QueueShutDown();
      const putter = this._getLoop().createFuture<void>();
      this._putters.push(putter);
      _bindSignal(putter, signal);
      let woken = false;
      try {
        yield* putter;
        woken = true;
      } finally {
        if (!woken) {
          putter.cancel(); // Just in case putter is not done yet.
          // getNowait() or shutdown() may have removed it already.
          _remove(this._putters, putter);
          // We were woken up by getNowait() but cannot take the slot: wake
          // up the next in line. This can happen when the putter is set,
          // then the wait cancelled.
          if (!this.full() && !putter.cancelled()) this.#wakeupNext(this._putters);
        }
      }
    }
    this.putNowait(item);
  }

  /**
   * Puts an item into the queue without waiting.
   * @throws QueueShutDown if the queue is shut down.
   * @throws QueueFull if it is full.
   * @example
   * queue.putNowait(item);
   */
  putNowait(item: T): void {
    if (this._isShutdown) throw new QueueShutDown();
    if (this.full()) throw new QueueFull();
    this._put(item);
    this._unfinishedTasks++;
    this._finished.clear();
    this.#wakeupNext(this._getters);
  }

  /**
   * Removes and returns an item, first waiting for one if it is empty.
   * @param options `signal`: aborting it cancels the wait (nothing is taken).
   * @throws QueueShutDown if the queue is shut down and empty (also while
   * waiting), or was shut down with `immediate`.
   * @throws CancelledError if the wait is cancelled or the signal aborted.
   * @example
   * const item = await queue.get();
   */
  get(options: SignalOptions = {}): Sleep<T> {
    const signal = _signalOf(options);
    return _suspendable(() => this.#get(signal));
  }

  *#get(signal: AbortSignal | undefined): Coroutine<T> {
    _throwIfAborted(signal);
    while (this.empty()) {
      if (this._isShutdown) throw new QueueShutDown();
      const getter = this._getLoop().createFuture<void>();
      this._getters.push(getter);
      _bindSignal(getter, signal);
      let woken = false;
      try {
        yield* getter;
        woken = true;
      } finally {
        if (!woken) {
          getter.cancel(); // Just in case getter is not done yet.
          // putNowait() or shutdown() may have removed it already.
          _remove(this._getters, getter);
          // We were woken up by putNowait() but cannot take the item: wake
          // up the next in line. This can happen when the getter is set,
          // then the wait cancelled.
          if (!this.empty() && !getter.cancelled()) this.#wakeupNext(this._getters);
        }
      }
    }
    return this.getNowait();
  }

  /**
   * Removes and returns an item without waiting.
   * @throws QueueShutDown if the queue is empty and shut down.
   * @throws QueueEmpty if it is empty.
   * @example
   * const item = queue.getNowait();
   */
  getNowait(): T {
    if (this.empty()) {
      if (this._isShutdown) throw new QueueShutDown();
      throw new QueueEmpty();
    }
    const item = this._get();
    this.#wakeupNext(this._putters);
    return item;
  }

  /**
   * Tells the queue that the processing of an item from get() is complete.
   * join() resolves once every item put has been marked so.
   * @throws RangeError 'task_done() called too many times'.
   * @example
   * const item = await queue.get();
   * try {
   *   await handle(item);
   * } finally {
   *   queue.taskDone();
   * }
   */
  taskDone(): void {
    if (this._unfinishedTasks <= 0) throw new RangeError('task_done() called too many times');
    this._unfinishedTasks--;
    if (this._unfinishedTasks === 0) this._finished.set();
  }

  /**
   * Waits until every item put into the queue has been gotten and marked
   * done with taskDone().
   * @param options `signal`: aborting it cancels the wait.
   * @throws CancelledError if the wait is cancelled or the signal aborted.
   * @example
   * await queue.join(); // every item processed
   */
  join(options: SignalOptions = {}): Sleep<void> {
    const signal = _signalOf(options);
    return _suspendable(() => this.#join(signal));
  }

  *#join(signal: AbortSignal | undefined): Coroutine<void> {
    _throwIfAborted(signal);
    if (this._unfinishedTasks > 0) yield* this._finished.wait({ signal });
  }

  /**
   * Shuts the queue down: put() and putNowait() throw QueueShutDown from
   * now on, and get() and getNowait() do once the queue is empty. Every
   * task waiting in put() or get() is woken to find out.
   * @param immediate also drop the queued items (each counts as done for
   * join()), so gets throw at once.
   * @example
   * queue.shutdown();     // consumers drain what is left, then stop
   * queue.shutdown(true); // consumers stop now
   */
  shutdown(immediate = false): void {
    if (typeof immediate !== 'boolean') throw new TypeError(describeArg('immediate', 'a boolean', immediate));
    this._isShutdown = true;
    if (immediate) {
      while (!this.empty()) {
        this._get();
        if (this._unfinishedTasks > 0) this._unfinishedTasks--;
      }
      // Release every task blocked in join().
      if (this._unfinishedTasks === 0) this._finished.set();
    }
    // Every getter must check again whether the queue is empty, to throw.
    for (const getter of this._getters.splice(0)) if (!getter.done()) getter.setResult(undefined);
    for (const putter of this._putters.splice(0)) if (!putter.done()) putter.setResult(undefined);
  }

  /**
   * `for await (const item of queue)`: each step is a get(), and the loop
   * ends when get() throws QueueShutDown. It does not call taskDone().
   * Generator coroutines loop on `yield* queue.get()` instead.
   */
  [Symbol.asyncIterator](): AsyncIterator<T, undefined> {
    return {
      // A Sleep, not a promise: an async-function task stays cancellable here.
      next: () => _suspendable(() => this.#next()) as unknown as Promise<IteratorResult<T, undefined>>,
    };
  }

  *#next(): Coroutine<IteratorResult<T, undefined>> {
    try {
      return { done: false, value: yield* this.#get(undefined) };
    } catch (exc) {
      if (exc instanceof QueueShutDown) return { done: true, value: undefined };
      throw exc;
    }
  }
}

/**
 * Options of a PriorityQueue.
 * @example
 * const jobs = new PriorityQueue<Job>(0, { comparator: (a, b) => a.deadline - b.deadline });
 */
export interface PriorityQueueOptions<T> {
  /**
   * Orders items: negative when `a` comes out first. By default items
   * compare as Python values: numbers, bigints and booleans by value,
   * strings by code unit, Dates by time, and arrays element-wise as tuples.
   */
  comparator?: (a: T, b: T) => number;
}

/**
 * A Queue that gives out the lowest item first (a binary heap, as
 * `heapq`). Items are typically `[priority, data]` tuples; without a
 * comparator, two items whose comparison reaches elements that cannot be
 * ordered (two distinct objects) throw TypeError, as in Python: add a
 * sequence number (`[priority, seq, data]`) or pass a comparator.
 *
 * @example
 * const queue = new PriorityQueue<[number, string]>();
 * queue.putNowait([2, 'later']);
 * queue.putNowait([1, 'first']);
 * console.log(queue.getNowait()); // [1, 'first']
 */
export class PriorityQueue<T> extends Queue<T> {
  /** @internal */ _compare: (a: T, b: T) => number = pythonCompare;
  declare _queue: T[];

  /**
   * @param maxsize the most items it holds; 0 (the default) for no limit.
   * @param options `comparator`: the order; Python's by default.
   * @throws TypeError if `comparator` is not a function.
   */
  constructor(maxsize = 0, options: PriorityQueueOptions<T> = {}) {
    super(maxsize);
    if (typeof options !== 'object' || options === null) {
      throw new TypeError(describeArg('options', 'an options object ({ comparator })', options));
    }
    if (options.comparator !== undefined) {
      if (typeof options.comparator !== 'function') {
        throw new TypeError(describeArg('comparator', 'a function', options.comparator));
      }
      this._compare = options.comparator;
    }
  }

  protected override _init(_maxsize: number): void {
    this._queue = [];
  }

  // heapq.heappush, comparing before it moves anything: an item that cannot
  // be ordered leaves the heap as it was.
  protected override _put(item: T): void {
    const heap = this._queue;
    let pos = heap.length;
    while (pos > 0) {
      const parentpos = (pos - 1) >> 1;
      if (!(this._compare(item, heap[parentpos]) < 0)) break;
      pos = parentpos;
    }
    let i = heap.length;
    heap.push(item);
    while (i > pos) {
      const parentpos = (i - 1) >> 1;
      heap[i] = heap[parentpos];
      i = parentpos;
    }
    heap[pos] = item;
  }

  // heapq.heappop: _siftup to a leaf, then _siftdown.
  protected override _get(): T {
    const heap = this._queue;
    const lastelt = heap.pop()!;
    if (heap.length === 0) return lastelt;
    const returnitem = heap[0];
    const endpos = heap.length;
    let pos = 0;
    let childpos = 1;
    while (childpos < endpos) {
      const rightpos = childpos + 1;
      if (rightpos < endpos && !(this._compare(heap[childpos], heap[rightpos]) < 0)) childpos = rightpos;
      heap[pos] = heap[childpos];
      pos = childpos;
      childpos = 2 * pos + 1;
    }
    while (pos > 0) {
      const parentpos = (pos - 1) >> 1;
      const parent = heap[parentpos];
      if (!(this._compare(lastelt, parent) < 0)) break;
      heap[pos] = parent;
      pos = parentpos;
    }
    heap[pos] = lastelt;
    return returnitem;
  }
}

/**
 * A Queue that gives out the most recently added item first.
 *
 * @example
 * const stack = new LifoQueue<number>();
 * stack.putNowait(1);
 * stack.putNowait(2);
 * console.log(stack.getNowait()); // 2
 */
export class LifoQueue<T> extends Queue<T> {
  declare _queue: T[];

  protected override _init(_maxsize: number): void {
    this._queue = [];
  }

  protected override _put(item: T): void {
    this._queue.push(item);
  }

  protected override _get(): T {
    return this._queue.pop()!;
  }
}

/**
 * Python's ordering of two values (`a < b`), as heapq applies it: negative,
 * zero or positive. Tuples (arrays) compare element-wise: the first pair of
 * elements that differ decides, else the shorter one is first.
 * @throws TypeError "'<' not supported between instances of ..." for
 * values Python could not order.
 */
function pythonCompare(a: unknown, b: unknown): number {
  if (a === b) return 0;
  const ka = kindOf(a);
  const kb = kindOf(b);
  if (ka === 'number' && kb === 'number') {
    const x = typeof a === 'boolean' ? Number(a) : (a as number | bigint);
    const y = typeof b === 'boolean' ? Number(b) : (b as number | bigint);
    // Mixed number/bigint comparisons are exact in JavaScript. NaN is
    // neither less nor greater: it ties, as every Python comparison with it is false.
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (ka === 'string' && kb === 'string') return (a as string) < (b as string) ? -1 : 1;
  if (ka === 'date' && kb === 'date') {
    const x = (a as Date).getTime();
    const y = (b as Date).getTime();
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (ka === 'array' && kb === 'array') {
    const x = a as readonly unknown[];
    const y = b as readonly unknown[];
    const n = Math.min(x.length, y.length);
    for (let i = 0; i < n; i++) {
      const c = pythonCompare(x[i], y[i]);
      if (c !== 0) return c;
    }
    return x.length - y.length;
  }
  throw new TypeError(`'<' not supported between instances of '${typeName(a)}' and '${typeName(b)}'`);
}

function kindOf(v: unknown): string {
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return 'number';
  if (typeof v === 'string') return 'string';
  if (Array.isArray(v)) return 'array';
  if (v instanceof Date) return 'date';
  return 'other';
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'object') return (v as object).constructor?.name ?? 'Object';
  return typeof v;
}
