/**
 * Queue, LifoQueue and PriorityQueue: CPython's test_queues, with the
 * producer and consumer tasks written as async functions and as generator
 * coroutines, plus shutdown, ordering and async iteration.
 */
import { describe, expect, it } from 'vitest';
import {
  asyncWith,
  CancelledError,
  createTask,
  gather,
  getRunningLoop,
  run,
  sleep,
  TaskGroup,
  TimeoutError,
  waitFor,
  type Task,
} from '../lib/index.js';
import { eachLoop, LOOPS, useLoop } from './helpers/loops.js';
import { LifoQueue, PriorityQueue, Queue, QueueEmpty, QueueFull, QueueShutDown } from '../lib/queues.js';

// ---------------------------------------------------------------- coroutine kinds

/** One step of a coroutine: gets the previous step's value; what it returns is waited for if awaitable. */
type Step = (prev: any) => unknown;

/**
 * Writes the same coroutine as an async function (`await`) or a generator
 * coroutine (`yield*`), so one scenario runs against both kinds of task.
 * (The same helper as in locks.test.ts.)
 */
interface Kind {
  /**
   * Loop passes that stand for one asyncio pass: an async function resumes
   * in the promise jobs that run after the loop's batch, so the test body
   * needs one more pass to observe what such a task did.
   */
  passes: number;
  /** A coroutine function running `steps` in order; it returns the last value. */
  co(...steps: Step[]): (init?: unknown) => any;
  /** A step running `steps` in a loop while `cond()` holds. */
  loop(cond: () => boolean, ...steps: Step[]): Step;
}

const isThenable = (v: unknown): v is PromiseLike<unknown> =>
  typeof v === 'object' && v !== null && typeof (v as PromiseLike<unknown>).then === 'function';
/** What `yield*` waits on: a generator coroutine, or a Future or Sleep (thenable and iterable). */
const isDelegable = (v: unknown): v is Iterable<unknown> =>
  typeof v === 'object' &&
  v !== null &&
  typeof (v as Iterable<unknown>)[Symbol.iterator] === 'function' &&
  (typeof (v as Generator).next === 'function' || isThenable(v));

const asyncKind: Kind = {
  passes: 2,
  co:
    (...steps) =>
    async (init?: unknown) => {
      let v = init;
      for (const step of steps) {
        v = step(v);
        if (isThenable(v)) v = await v;
      }
      return v;
    },
  loop: (cond, ...steps) => async () => {
    while (cond()) await asyncKind.co(...steps)();
  },
};

const generatorKind: Kind = {
  passes: 1,
  co: (...steps) =>
    function* (init?: unknown): Generator<any, unknown, any> {
      let v = init;
      for (const step of steps) {
        v = step(v);
        if (isDelegable(v)) v = yield* v as Generator<any, unknown, any>;
        else if (isThenable(v)) throw new Error('test bug: a promise in a generator coroutine');
      }
      return v;
    },
  loop: (cond, ...steps) =>
    function* (): Generator<any, void, any> {
      while (cond()) yield* generatorKind.co(...steps)();
    },
};

const KINDS = [
  ['async', asyncKind],
  ['generator', generatorKind],
] as const;

/** Gives up `n` loop passes. */
async function spin(n = 1): Promise<void> {
  for (let i = 0; i < n; i++) await sleep(0);
}

/** The error `aw` rejects with (fails if it resolves). */
async function rejection(aw: PromiseLike<unknown>): Promise<any> {
  try {
    await aw;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

// ---------------------------------------------------------------- Queue

describe.each(LOOPS)('Queue on %s', (backend) => {
  useLoop(backend);
  it('shows getters, putters and items in toString()', async () => {
    await run(async () => {
      const q = new Queue<number>();
      expect(String(q)).toBe('<Queue maxsize=0>');
      await asyncWith(new TaskGroup(), async (tg) => {
        // A task that waits to get.
        tg.createTask(() => q.get());
        await spin();
        expect(String(q)).toContain('_getters[1]');
        q.putNowait(0);
      });

      const q2 = new Queue<number>(1);
      let putter: Task<void> | null = null;
      await asyncWith(new TaskGroup(), async (tg) => {
        q2.putNowait(1);
        putter = tg.createTask(() => q2.put(2));
        await spin();
        expect(String(q2)).toContain('_putters[1]');
        q2.getNowait();
      });
      expect(putter!.done()).toBe(true);

      const q3 = new Queue<number>();
      q3.putNowait(1);
      expect(String(q3)).toContain('_queue=[1]');
      expect(String(q3)).toBe('<Queue maxsize=0 _queue=[1] tasks=1>');
      q3.putNowait('two' as never);
      expect(q3._format()).toBe("maxsize=0 _queue=[1, 'two'] tasks=2");
    });
  }); // CPython test_queues: test_repr, test_str

  it('empty() tells whether it holds items', async () => {
    await run(async () => {
      const q = new Queue<number>();
      expect(q.empty()).toBe(true);
      await q.put(1);
      expect(q.empty()).toBe(false);
      expect(await q.get()).toBe(1);
      expect(q.empty()).toBe(true);
    });
  }); // CPython test_queues: test_empty

  it('full() tells whether it holds maxsize items; never unbounded', async () => {
    await run(async () => {
      const q = new Queue<number>();
      expect(q.full()).toBe(false);
      const q1 = new Queue<number>(1);
      await q1.put(1);
      expect(q1.full()).toBe(true);
    });
  }); // CPython test_queues: test_full

  it('gives items out in FIFO order', async () => {
    await run(async () => {
      const q = new Queue<number>();
      for (const i of [1, 3, 2]) await q.put(i);
      const items = [await q.get(), await q.get(), await q.get()];
      expect(items).toEqual([1, 3, 2]);
    });
  }); // CPython test_queues: test_order

  it('keeps FIFO order across its ring buffer growing and wrapping', () => {
    const q = new Queue<number>();
    const expected: number[] = [];
    const got: number[] = [];
    let next = 0;
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 7; i++) {
        q.putNowait(next);
        expected.push(next++);
      }
      for (let i = 0; i < 5; i++) got.push(q.getNowait());
    }
    while (!q.empty()) got.push(q.getNowait());
    expect(got).toEqual(expected);
    expect(q.qsize()).toBe(0);
  });

  it('getNowait() returns a queued item', () => {
    const q = new Queue<number>();
    q.putNowait(1);
    expect(q.getNowait()).toBe(1);
  }); // CPython test_queues: test_nonblocking_get, test_nonblocking_put

  it('getNowait() on an empty queue throws QueueEmpty', () => {
    const q = new Queue<number>();
    expect(() => q.getNowait()).toThrow(QueueEmpty);
    try {
      q.getNowait();
    } catch (e) {
      expect((e as Error).name).toBe('QueueEmpty');
      expect(e).toBeInstanceOf(Error);
    }
  }); // CPython test_queues: test_nonblocking_get_exception

  it('putNowait() on a full queue throws QueueFull', () => {
    const q = new Queue<number>(1);
    q.putNowait(1);
    expect(() => q.putNowait(2)).toThrow(QueueFull);
    expect(q.qsize()).toBe(1);
  }); // CPython test_queues: test_nonblocking_put_exception

  it('get() of a queued item does not wait', async () => {
    await run(async () => {
      const q = new Queue<number>();
      q.putNowait(1);
      expect(await q.get()).toBe(1);
    });
  }); // CPython test_queues: test_blocking_get

  it('put() on an unbounded queue does not wait', async () => {
    await run(async () => {
      const q = new Queue<number>();
      await q.put(1);
      expect(await q.get()).toBe(1);
    });
  }); // CPython test_queues: test_blocking_put

  it('get() wakes a waiting putter', async () => {
    await run(async () => {
      const q = new Queue<number>(1);
      await q.put(1);
      const waiter = getRunningLoop().createFuture<void>();
      q._putters.push(waiter);
      expect(await q.get()).toBe(1);
      expect(waiter.done()).toBe(true);
      expect(waiter.result()).toBeUndefined();
    });
  }); // CPython test_queues: test_get_with_putters

  it('drops a getter that timed out', async () => {
    await run(async () => {
      const queue = new Queue<number>(5);
      expect(await rejection(waitFor(() => queue.get(), 0.05))).toBeInstanceOf(TimeoutError);
      expect(queue._getters.length).toBe(0);
    });
  }); // CPython test_queues: test_cancelled_getters_not_being_held_in_self_getters

  it('refuses a float, negative or non-number maxsize', () => {
    expect(() => new Queue(1.3)).toThrow(RangeError);
    expect(() => new Queue(1.3)).toThrow(/^Expected "maxsize" to be a non-negative integer \(0: unbounded\), got 1.3$/);
    expect(() => new Queue(-1)).toThrow(/got -1$/);
    expect(() => new Queue(Number.POSITIVE_INFINITY)).toThrow(RangeError);
    expect(() => new Queue('2' as never)).toThrow(TypeError);
    expect(() => new LifoQueue(-2)).toThrow(RangeError);
    expect(() => new PriorityQueue(0.5)).toThrow(RangeError);
    expect(new Queue(0).maxsize).toBe(0);
  }); // CPython test_queues: test_float_maxsize (asyncio accepts 1.3; aionode refuses it)

  it('refuses a signal that is not an AbortSignal', () => {
    const q = new Queue<number>();
    expect(() => q.get({ signal: 'x' as never })).toThrow(/^Expected "signal" to be an AbortSignal, got "x"$/);
    expect(() => q.put(1, { signal: {} as never })).toThrow(TypeError);
    expect(() => q.join({ signal: 1 as never })).toThrow(TypeError);
    expect(() => q.get(null as never)).toThrow(TypeError);
  });

  it('taskDone() more often than items were put throws RangeError', () => {
    const q = new Queue<number>();
    q.putNowait(1);
    q.taskDone();
    expect(() => q.taskDone()).toThrow(RangeError);
    expect(() => q.taskDone()).toThrow(/^task_done\(\) called too many times$/);
    expect(q._unfinishedTasks).toBe(0);
  });

  it('shutdown() refuses a non-boolean immediate', () => {
    const q = new Queue<number>();
    expect(() => q.shutdown('yes' as never)).toThrow(TypeError);
    expect(q._isShutdown).toBe(false);
  });

  it('the exception classes are Errors with their names', () => {
    for (const [Cls, name] of [
      [QueueEmpty, 'QueueEmpty'],
      [QueueFull, 'QueueFull'],
      [QueueShutDown, 'QueueShutDown'],
    ] as const) {
      const e = new Cls('m');
      expect(e).toBeInstanceOf(Error);
      expect(e.name).toBe(name);
      expect(e.message).toBe('m');
      expect(Object.keys(e)).toEqual([]);
      expect(String(e)).toBe(`${name}: m`);
    }
  });
});

describe.each(eachLoop(KINDS))('[%s] Queue with %s tasks', (backend, kind, K) => {
  useLoop(backend);
  const tick = (n = 1) => spin(n * K.passes);

  it('put() waits while the queue holds maxsize items', async () => {
    await run(async () => {
      const q = new Queue<number>(2);
      expect(q.maxsize).toBe(2);
      const haveBeenPut: number[] = [];
      let i = 0;
      const t = createTask(
        K.co(
          K.loop(
            () => i < 3,
            () => q.put(i),
            () => void haveBeenPut.push(i++),
          ),
          () => true,
        ),
      );
      await tick(2);
      // The putter is blocked after putting two items.
      expect(haveBeenPut).toEqual([0, 1]);
      expect(await q.get()).toBe(0);

      // Let the putter resume and put the last item.
      await tick();
      expect(haveBeenPut).toEqual([0, 1, 2]);
      expect(await q.get()).toBe(1);
      expect(await q.get()).toBe(2);
      expect(t.done()).toBe(true);
      expect(t.result()).toBe(true);
    });
  }); // CPython test_queues: test_maxsize

  it('get() waits for an item', async () => {
    await run(async () => {
      const q = new Queue<number>();
      let finished = false;
      const started = createTask(K.co(() => q.get(), (res) => ((finished = true), res)));
      await tick();
      expect(finished).toBe(false);
      getRunningLoop().callLater(0.01, () => q.putNowait(1));
      expect(await started).toBe(1);
      expect(finished).toBe(true);
    });
  }); // CPython test_queues: test_blocking_get_wait

  it('a cancelled getter does not take the next item', async () => {
    await run(async () => {
      const q = new Queue<string>();
      const t1 = createTask(K.co(() => q.get()));
      const t2 = createTask(K.co(() => q.get()));
      await tick();
      t1.cancel();
      await tick();
      expect(t1.done()).toBe(true);
      await q.put('a');
      await tick();
      expect(await t2).toBe('a');
    });
  }); // CPython test_queues: test_get_cancelled_race

  it('get() takes items from waiting putters in order', async () => {
    await run(async () => {
      const q = new Queue<string>(1);
      createTask(K.co(() => q.put('a')));
      createTask(K.co(() => q.put('b')));
      expect(await q.get()).toBe('a');
      expect(await q.get()).toBe('b');
    });
  }); // CPython test_queues: test_get_with_waiting_putters

  it('a producer and a consumer run to the end through a queue of 1', async () => {
    await run(async () => {
      const q = new Queue<number>(1);
      let got = 0;
      let put = 0;
      await asyncWith(new TaskGroup(), async (tg) => {
        tg.createTask(K.co(K.loop(() => put < 5, () => q.put(put++))));
        tg.createTask(K.co(K.loop(() => got < 5, () => q.get(), () => void got++)));
      });
      expect([put, got]).toEqual([5, 5]);
    });
  }); // CPython test_queues: test_why_are_getters_waiting

  it('put() waits for a free slot', async () => {
    await run(async () => {
      const q = new Queue<number>(1);
      let finished = false;
      const t = createTask(
        K.co(
          () => q.put(1),
          () => q.put(2),
          () => void (finished = true),
        ),
      );
      await tick();
      // Scheduled once the task holds the slot, so a stalled box cannot
      // run it first (getNowait on an empty queue).
      expect(q.full()).toBe(true);
      getRunningLoop().callLater(0.01, () => q.getNowait());
      await tick();
      expect(finished).toBe(false);
      await t;
      expect(finished).toBe(true);
    });
  }); // CPython test_queues: test_blocking_put_wait

  it('a getter cancelled after it was woken leaves the item for the next', async () => {
    await run(async () => {
      const q = new Queue<number>();
      let reader = createTask(K.co(() => q.get()));
      await tick();
      q.putNowait(1);
      q.putNowait(2);
      reader.cancel();
      try {
        await reader;
      } catch (e) {
        expect(e).toBeInstanceOf(CancelledError);
        // Try again.
        reader = createTask(K.co(() => q.get()));
        await reader;
      }
      // asyncio exactly, for both kinds: if we got 2, 1 was dropped.
      expect(reader.result()).toBe(1);
    });
  }); // CPython test_queues: test_get_cancel_drop_one_pending_reader

  it('cancelling one of several woken getters loses no item', async () => {
    await run(async () => {
      const q = new Queue<number>();
      let reader2: Task<unknown> | null = null;
      let reader3: Task<unknown> | null = null;
      let cancelledGot: unknown = 'nothing';
      await asyncWith(new TaskGroup(), async (tg) => {
        const reader1 = tg.createTask(K.co(() => q.get(), (v) => (cancelledGot = v)));
        reader2 = tg.createTask(K.co(() => q.get()));
        reader3 = tg.createTask(K.co(() => q.get()));
        await tick();
        q.putNowait(1);
        q.putNowait(2);
        reader1.cancel();
        expect(await rejection(reader1)).toBeInstanceOf(CancelledError);
        await reader3;
      });
      // In which order concurrent readers receive items is undefined.
      const got = new Set([reader2!.result(), reader3!.result()]);
      expect(got).toEqual(new Set([1, 2]));
      expect(cancelledGot).toBe('nothing');
    });
  }); // CPython test_queues: test_get_cancel_drop_many_pending_readers

  it('a putter cancelled after it was woken does not put', async () => {
    await run(async () => {
      const q = new Queue<number>(1);
      q.putNowait(1);
      // A second item has to wait (qsize 1).
      let writer = createTask(K.co(() => q.put(2)));
      await tick();
      expect(q.getNowait()).toBe(1);
      writer.cancel();
      expect(await rejection(writer)).toBeInstanceOf(CancelledError);
      // asyncio exactly, for both kinds: the cancelled put() did not put; try again.
      expect(q.qsize()).toBe(0);
      writer = createTask(K.co(() => q.put(2)));
      await writer;
      expect(q.getNowait()).toBe(2);
      expect(q.qsize()).toBe(0);
    });
  }); // CPython test_queues: test_put_cancel_drop

  it('a putter cancelled after it was woken passes the slot to the next', async () => {
    await run(async () => {
      const q = new Queue<string>(1);
      q.putNowait('x');
      const p1 = createTask(K.co(() => q.put('p1')));
      const p2 = createTask(K.co(() => q.put('p2')));
      await tick();
      expect(q._putters.length).toBe(2);
      expect(q.getNowait()).toBe('x'); // wakes p1
      p1.cancel(); // before p1 runs
      expect(await rejection(p1)).toBeInstanceOf(CancelledError);
      // asyncio exactly, for both kinds: p1 hands its wakeup to p2.
      await p2;
      expect(q.getNowait()).toBe('p2');
      expect(q.empty()).toBe(true);
    });
  });

  it('put() of an unbounded queue completes at once', async () => {
    await run(async () => {
      const q = new Queue<number>();
      const t = createTask(K.co(() => q.put(1), () => true));
      expect(await q.get()).toBe(1);
      await tick();
      expect(t.done()).toBe(true);
      expect(t.result()).toBe(true);
    });
  }); // CPython test_queues: test_put_cancelled

  it('a cancelled putter does not hold back the next one', async () => {
    await run(async () => {
      const q = new Queue<string>(1);
      const putA = createTask(K.co(() => q.put('a')));
      const putB = createTask(K.co(() => q.put('b')));
      const putC = createTask(K.co(() => q.put('X')));
      await tick();
      expect(putA.done()).toBe(true);
      expect(putB.done()).toBe(false);

      putC.cancel();
      await tick();
      expect(putC.done()).toBe(true);
      expect(q.getNowait()).toBe('a');
      await tick();
      expect(q.getNowait()).toBe('b');
      await putB;
    });
  }); // CPython test_queues: test_put_cancelled_race

  it('put() hands the item to a waiting getter', async () => {
    await run(async () => {
      const q = new Queue<string>();
      const t = createTask(K.co(() => q.get()));
      await tick();
      await q.put('a');
      expect(await t).toBe('a');
    });
  }); // CPython test_queues: test_put_with_waiting_getters

  it('putters blocked on a full queue all get in', async () => {
    await run(async () => {
      const queue = new Queue<number>(2);
      await asyncWith(new TaskGroup(), async (tg) => {
        tg.createTask(
          K.co(
            () => sleep(0),
            () => {
              const num = queue.qsize();
              for (let i = 0; i < num; i++) queue.getNowait();
            },
          ),
        );
        for (const item of [0, 1, 2, 3]) tg.createTask(K.co(() => queue.put(item)));
      });
      expect(queue.qsize()).toBe(2);
    });
  }); // CPython test_queues: test_why_are_putters_waiting

  it('removes a cancelled putter', async () => {
    await run(async () => {
      const queue = new Queue<number>(1);
      queue.putNowait(1);
      const putTask = createTask(K.co(() => queue.put(1)));
      await tick();
      expect(queue._putters.length).toBe(1);
      putTask.cancel();
      expect(await rejection(putTask)).toBeInstanceOf(CancelledError);
      expect(queue._putters.length).toBe(0);
    });
  }); // CPython test_queues: test_cancelled_puts_not_being_held_in_self_putters

  it('a cancelled putter already removed by getNowait() just ends cancelled', async () => {
    await run(async () => {
      const queue = new Queue<number>(1);
      queue.putNowait(1);
      const putTask = createTask(K.co(() => queue.put(1)));
      await tick();
      // getNowait() removes put_task's Future from _putters; the cancelled
      // put() must not fail removing it again.
      queue.getNowait();
      putTask.cancel();
      expect(await rejection(putTask)).toBeInstanceOf(CancelledError);
      expect(queue._putters.length).toBe(0);
    });
  }); // CPython test_queues: test_cancelled_put_silence_value_error_exception

  it('aborting the signal cancels a waiting get() and put()', async () => {
    await run(async () => {
      const q = new Queue<number>(1);
      const ac = new AbortController();
      const getter = createTask(K.co(() => q.get({ signal: ac.signal })));
      await tick();
      ac.abort('stop getting');
      const err = await rejection(getter);
      expect(err).toBeInstanceOf(CancelledError);
      expect(err.message).toBe('stop getting');
      expect(q._getters.length).toBe(0);
      q.putNowait(1); // nobody took it
      expect(q.qsize()).toBe(1);

      const ac2 = new AbortController();
      const putter = createTask(K.co(() => q.put(2, { signal: ac2.signal })));
      await tick();
      expect(q._putters.length).toBe(1);
      ac2.abort('stop putting');
      expect((await rejection(putter)).message).toBe('stop putting');
      expect(q._putters.length).toBe(0);
      expect(q.getNowait()).toBe(1);
      expect(q.empty()).toBe(true); // 2 never went in
    });
  });

  it('an aborted signal passes the wakeup on to the next getter', async () => {
    await run(async () => {
      const q = new Queue<number>();
      const ac = new AbortController();
      const first = createTask(K.co(() => q.get({ signal: ac.signal })));
      const second = createTask(K.co(() => q.get()));
      await tick();
      ac.abort();
      q.putNowait(7);
      expect(await rejection(first)).toBeInstanceOf(CancelledError);
      expect(await second).toBe(7);
    });
  });

  it('an already-aborted signal throws even when an item is there', async () => {
    await run(async () => {
      const q = new Queue<number>();
      q.putNowait(1);
      const t = createTask(K.co(() => q.get({ signal: AbortSignal.abort('no') })));
      expect((await rejection(t)).message).toBe('no');
      expect(q.qsize()).toBe(1);
      const p = createTask(K.co(() => q.put(2, { signal: AbortSignal.abort('no') })));
      expect(await rejection(p)).toBeInstanceOf(CancelledError);
      expect(q.qsize()).toBe(1);
    });
  });

  it('aborting the signal cancels join()', async () => {
    await run(async () => {
      const q = new Queue<number>();
      q.putNowait(1);
      const ac = new AbortController();
      const joiner = createTask(K.co(() => q.join({ signal: ac.signal })));
      await tick();
      expect(joiner.done()).toBe(false);
      ac.abort('enough');
      expect((await rejection(joiner)).message).toBe('enough');
      expect(q._finished._waiters.length).toBe(0);
    });
  });

  it('shutdown() wakes blocked getters and putters with QueueShutDown', async () => {
    await run(async () => {
      const empty = new Queue<number>();
      const getters = [1, 2].map(() => createTask(K.co(() => empty.get())));
      const full = new Queue<number>(1);
      full.putNowait(0);
      const putters = [1, 2].map((i) => createTask(K.co(() => full.put(i))));
      await tick();
      empty.shutdown();
      full.shutdown();
      for (const t of [...getters, ...putters]) expect(await rejection(t)).toBeInstanceOf(QueueShutDown);
      expect(empty._getters).toEqual([]);
      expect(full._putters).toEqual([]);
      // A shut-down queue still gives out what it holds.
      expect(full.getNowait()).toBe(0);
    });
  });
});

// ---------------------------------------------------------------- subclasses

describe.each(LOOPS)('LifoQueue on %s', (backend) => {
  useLoop(backend);
  it('gives out the newest item first', async () => {
    await run(async () => {
      const q = new LifoQueue<number>();
      for (const i of [1, 3, 2]) await q.put(i);
      expect([await q.get(), await q.get(), await q.get()]).toEqual([2, 3, 1]);
    });
  }); // CPython test_queues: LifoQueueTests.test_order
});

describe.each(LOOPS)('PriorityQueue on %s', (backend) => {
  useLoop(backend);
  it('gives out the lowest item first', async () => {
    await run(async () => {
      const q = new PriorityQueue<number>();
      for (const i of [1, 3, 2]) await q.put(i);
      expect([await q.get(), await q.get(), await q.get()]).toEqual([1, 2, 3]);
    });
  }); // CPython test_queues: PriorityQueueTests.test_order

  it('orders arrays element-wise, as Python tuples', () => {
    const q = new PriorityQueue<unknown[]>();
    const items: unknown[][] = [
      [2, 'b'],
      [1, 'z'],
      [2, 'a'],
      [1, 'z', 0],
      [0],
      [1, 'y', 5],
      [-1n, 'big'],
      [1.5, ''],
      [true, 'one'], // true == 1, as in Python
    ];
    for (const item of items) q.putNowait(item);
    const out: unknown[][] = [];
    while (!q.empty()) out.push(q.getNowait());
    expect(out).toEqual([[-1n, 'big'], [0], [true, 'one'], [1, 'y', 5], [1, 'z'], [1, 'z', 0], [1.5, ''], [2, 'a'], [2, 'b']]);
  });

  it('pops in sorted order for many random items (heap invariant)', () => {
    const q = new PriorityQueue<[number, number]>();
    const items: [number, number][] = [];
    let seed = 12345;
    const rand = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % 100;
    for (let i = 0; i < 500; i++) items.push([rand(), i]);
    const out: [number, number][] = [];
    for (const item of items) {
      q.putNowait(item);
      if (item[1] % 3 === 0) out.push(q.getNowait());
    }
    while (!q.empty()) out.push(q.getNowait());
    expect(out.length).toBe(500);
    // Every pop was the minimum of what the queue held at the time.
    const held: [number, number][] = [];
    let k = 0;
    for (const item of items) {
      held.push(item);
      if (item[1] % 3 === 0) {
        held.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
        expect(out[k++]).toEqual(held.shift());
      }
    }
    held.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    expect(out.slice(k)).toEqual(held);
  });

  it('orders strings and Dates', () => {
    const q = new PriorityQueue<string>();
    for (const s of ['pear', 'apple', 'Zebra', 'apple pie']) q.putNowait(s);
    expect([q.getNowait(), q.getNowait(), q.getNowait(), q.getNowait()]).toEqual(['Zebra', 'apple', 'apple pie', 'pear']);
    const d = new PriorityQueue<Date>();
    d.putNowait(new Date(2000, 1, 1));
    d.putNowait(new Date(1990, 1, 1));
    expect(d.getNowait().getFullYear()).toBe(1990);
  });

  it('throws TypeError, as Python, for items it cannot order, and stays intact', () => {
    const q = new PriorityQueue<unknown>();
    q.putNowait([1, { task: 'a' }]);
    expect(() => q.putNowait([1, { task: 'b' }])).toThrow(TypeError);
    expect(() => q.putNowait([1, { task: 'b' }])).toThrow(/^'<' not supported between instances of 'Object' and 'Object'$/);
    expect(() => q.putNowait('1')).toThrow(/'<' not supported between instances of 'string' and 'Array'/);
    // The failed puts changed nothing.
    expect(q.qsize()).toBe(1);
    expect(q._unfinishedTasks).toBe(1);
    q.putNowait([0, { task: 'c' }]); // decided by the first element
    expect(q.getNowait()).toEqual([0, { task: 'c' }]);
    expect(q.getNowait()).toEqual([1, { task: 'a' }]);
  });

  it('orders by a comparator when given one', () => {
    const q = new PriorityQueue<{ prio: number; name: string }>(0, { comparator: (a, b) => b.prio - a.prio });
    for (const [prio, name] of [
      [1, 'low'],
      [9, 'high'],
      [5, 'mid'],
    ] as const) {
      q.putNowait({ prio, name });
    }
    expect([q.getNowait().name, q.getNowait().name, q.getNowait().name]).toEqual(['high', 'mid', 'low']);
  });

  it('gives out items that tie in heapq order', () => {
    // Not a stability promise: heapq's sift order, reproduced exactly.
    const q = new PriorityQueue<[number, string]>(0, { comparator: (a, b) => a[0] - b[0] });
    for (const name of ['a', 'b', 'c']) q.putNowait([1, name]);
    expect([q.getNowait()[1], q.getNowait()[1], q.getNowait()[1]]).toEqual(['a', 'b', 'c']);
    const r = new PriorityQueue<[number, string]>(0, { comparator: (a, b) => a[0] - b[0] });
    for (const item of [[2, 'a'], [1, 'b'], [2, 'c'], [1, 'd'], [2, 'e']] as [number, string][]) r.putNowait(item);
    const out: string[] = [];
    while (!r.empty()) out.push(r.getNowait()[1]);
    // What CPython's heapq gives for the same pushes, compared on priority only.
    expect(out).toEqual(['b', 'd', 'c', 'a', 'e']);
  });

  it('refuses a comparator that is not a function', () => {
    expect(() => new PriorityQueue(0, { comparator: 'desc' as never })).toThrow(/^Expected "comparator" to be a function, got "desc"$/);
    expect(() => new PriorityQueue(0, null as never)).toThrow(TypeError);
  });
});

// ---------------------------------------------------------------- join and shutdown

const CLASSES = [
  ['Queue', Queue],
  ['LifoQueue', LifoQueue],
  ['PriorityQueue', PriorityQueue],
] as const;

describe.each(eachLoop(CLASSES))('[%s] %s join', (backend, name, Cls) => {
  useLoop(backend);
  it('taskDone() without an unfinished item throws RangeError', () => {
    const q = new Cls<number>();
    expect(() => q.taskDone()).toThrow(RangeError);
  }); // CPython test_queues: test_task_done_underflow

  it.each(KINDS)('join() waits until every item is done (%s workers)', async (_kind, K) => {
    await run(async () => {
      const q = new Cls<number>();
      for (let i = 0; i < 100; i++) q.putNowait(i);
      let accumulator = 0;
      // Two workers get items and call taskDone() after each.
      let running = true;
      const worker = K.co(
        K.loop(
          () => running,
          () => q.get(),
          (item: number) => {
            accumulator += item;
            q.taskDone();
          },
        ),
      );
      await asyncWith(new TaskGroup(), async (tg) => {
        const tasks = [tg.createTask(worker), tg.createTask(worker)];
        await q.join();
        expect(accumulator).toBe(4950);
        // End the workers.
        running = false;
        for (let i = 0; i < tasks.length; i++) q.putNowait(0);
      });
    });
  }); // CPython test_queues: test_task_done

  it('join() of an empty queue returns at once', async () => {
    await run(async () => {
      const q = new Cls<number>();
      await q.join();
      await q.join();
    });
  }); // CPython test_queues: test_join_empty_queue

  it('_format() shows the unfinished tasks', () => {
    const q = new Cls<number>();
    expect(q._format()).toBe('maxsize=0');
    q._unfinishedTasks = 2;
    expect(q._format()).toBe('maxsize=0 tasks=2');
    expect(String(q)).toBe(`<${name} maxsize=0 tasks=2>`);
  }); // CPython test_queues: test_format
});

describe.each(eachLoop(CLASSES))('[%s] %s shutdown', (backend, name, Cls) => {
  useLoop(backend);
  it('_format() shows it', () => {
    const q = new Cls<number>();
    q.shutdown();
    expect(q._format()).toBe('maxsize=0 shutdown');
  }); // CPython test_queues: _QueueShutdownTestMixin.test_format

  it('of an empty queue: getters and later puts and gets throw QueueShutDown', async () => {
    await run(async () => {
      const q = new Cls<string>();
      const getTask = createTask(() => q.get());
      await spin(); // the get task waits before the shutdown
      q.shutdown(false); // unfinished tasks: 0 -> 0
      expect(q.qsize()).toBe(0);
      await q.join();
      await spin();
      expect(getTask.done()).toBe(true);
      expect(await rejection(getTask)).toBeInstanceOf(QueueShutDown);

      expect(await rejection(q.put('data'))).toBeInstanceOf(QueueShutDown);
      expect(() => q.putNowait('data')).toThrow(QueueShutDown);
      expect(await rejection(q.get())).toBeInstanceOf(QueueShutDown);
      expect(() => q.getNowait()).toThrow(QueueShutDown);
    });
  }); // CPython test_queues: test_shutdown_empty

  it('of a non-empty queue: items can still be gotten', async () => {
    await run(async () => {
      const q = new Cls<string>(1);
      q.putNowait('data');
      const joinTask = createTask(() => q.join());
      const putTask = createTask(() => q.put('data2'));
      await spin(2);
      expect(putTask.done()).toBe(false);

      q.shutdown(false); // unfinished tasks: 1 -> 1
      expect(q.qsize()).toBe(1);
      await spin(2);
      expect(putTask.done()).toBe(true);
      expect(await rejection(putTask)).toBeInstanceOf(QueueShutDown);

      // The queued item can still be gotten.
      expect(await q.get()).toBe('data');
      await spin(2);
      expect(joinTask.done()).toBe(false);

      expect(await rejection(q.put('data'))).toBeInstanceOf(QueueShutDown);
      expect(() => q.putNowait('data')).toThrow(QueueShutDown);
      expect(await rejection(q.get())).toBeInstanceOf(QueueShutDown);
      expect(() => q.getNowait()).toThrow(QueueShutDown);

      // One unfinished task: join() returns once it is done.
      q.taskDone();
      await spin(2);
      expect(joinTask.done()).toBe(true);
      await joinTask;
      expect(() => q.taskDone()).toThrow(RangeError);
    });
  }); // CPython test_queues: test_shutdown_nonempty

  it('immediate: drops the items and releases join()', async () => {
    await run(async () => {
      const q = new Cls<string>();
      q.putNowait('data');
      const joinTask = createTask(() => q.join());
      q.shutdown(true); // unfinished tasks: 1 -> 0
      expect(q.qsize()).toBe(0);
      await spin(2);
      expect(joinTask.done()).toBe(true);
      await joinTask;

      expect(await rejection(q.put('data'))).toBeInstanceOf(QueueShutDown);
      expect(() => q.putNowait('data')).toThrow(QueueShutDown);
      expect(await rejection(q.get())).toBeInstanceOf(QueueShutDown);
      expect(() => q.getNowait()).toThrow(QueueShutDown);
      expect(() => q.taskDone()).toThrow(RangeError);
    });
  }); // CPython test_queues: test_shutdown_immediate

  it('immediate: releases a join() that is waiting already', async () => {
    await run(async () => {
      const q = new Cls<string>();
      q.putNowait('a');
      q.putNowait('b');
      const joinTask = createTask(() => q.join());
      await spin(2);
      expect(joinTask.done()).toBe(false);
      q.shutdown(true); // unfinished tasks: 2 -> 0
      await spin(2);
      expect(joinTask.done()).toBe(true);
      expect(q._unfinishedTasks).toBe(0);
    });
  });

  it('immediate with an item still being processed: join() waits for it', async () => {
    await run(async () => {
      const q = new Cls<string>();
      q.putNowait('data');
      q.putNowait('data');
      const joinTask = createTask(() => q.join());
      expect(await q.get()).toBe('data');

      q.shutdown(true); // unfinished tasks: 2 -> 1
      expect(q.qsize()).toBe(0);
      await spin(2);
      expect(joinTask.done()).toBe(false);

      expect(await rejection(q.put('data'))).toBeInstanceOf(QueueShutDown);
      expect(() => q.putNowait('data')).toThrow(QueueShutDown);
      expect(await rejection(q.get())).toBeInstanceOf(QueueShutDown);
      expect(() => q.getNowait()).toThrow(QueueShutDown);

      // One unfinished task.
      q.taskDone();
      expect(() => q.taskDone()).toThrow(RangeError);
      await spin(2);
      expect(joinTask.done()).toBe(true);
      await joinTask;
    });
  }); // CPython test_queues: test_shutdown_immediate_with_unfinished
});

// ---------------------------------------------------------------- async iteration

describe.each(LOOPS)('Queue async iteration on %s', (backend) => {
  useLoop(backend);
  it('gets items until the queue is shut down and drained', async () => {
    await run(async () => {
      const q = new Queue<number>(2);
      createTask(async () => {
        for (let i = 0; i < 5; i++) await q.put(i);
        q.shutdown();
      });
      const got: number[] = [];
      for await (const item of q) {
        got.push(item);
        q.taskDone();
      }
      expect(got).toEqual([0, 1, 2, 3, 4]);
      expect(q._unfinishedTasks).toBe(0);
    });
  });

  it('stops at once after shutdown(true)', async () => {
    await run(async () => {
      const q = new Queue<number>();
      for (let i = 0; i < 5; i++) q.putNowait(i);
      const got: number[] = [];
      for await (const item of q) {
        got.push(item);
        if (item === 1) q.shutdown(true);
      }
      expect(got).toEqual([0, 1]);
      expect(q.empty()).toBe(true);
    });
  });

  it('a task waiting in the loop can be cancelled', async () => {
    await run(async () => {
      const q = new Queue<number>();
      const got: number[] = [];
      const consumer = createTask(async () => {
        for await (const item of q) got.push(item);
        return 'ended';
      });
      await spin();
      q.putNowait(1);
      await spin(2);
      expect(got).toEqual([1]);
      consumer.cancel();
      expect(await rejection(consumer)).toBeInstanceOf(CancelledError);
      expect(q._getters.length).toBe(0);
      q.putNowait(2);
      expect(q.getNowait()).toBe(2); // the cancelled loop took nothing
    });
  });

  it('a QueueShutDown from get() ends the loop, other errors propagate', async () => {
    await run(async () => {
      const q = new Queue<number>();
      q.shutdown();
      const it = q[Symbol.asyncIterator]();
      expect(await it.next()).toEqual({ done: true, value: undefined });
      const q2 = new Queue<number>();
      q2._getLoop = () => {
        throw new RangeError('boom');
      };
      expect(await rejection(q2[Symbol.asyncIterator]().next())).toBeInstanceOf(RangeError);
    });
  });

  it('the producer-consumer pattern of the asyncio docs', async () => {
    await run(async () => {
      const queue = new Queue<number>();
      const delays = [0.003, 0.001, 0.002, 0.001, 0.002, 0.003];
      for (const d of delays) queue.putNowait(d);
      let total = 0;
      const worker = async (): Promise<void> => {
        for (;;) {
          const d = await queue.get();
          await sleep(d);
          total += d;
          queue.taskDone();
        }
      };
      const tasks = [1, 2, 3].map(() => createTask(worker));
      await queue.join();
      for (const t of tasks) t.cancel();
      const results = await gather(tasks, { returnExceptions: true });
      expect(results.every((r) => r instanceof CancelledError)).toBe(true);
      expect(total).toBeCloseTo(0.012, 6);
    });
  });
});
