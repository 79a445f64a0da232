/**
 * The loop suite: asyncio's BaseEventLoop behaviour, run unchanged on every
 * loop of test/helpers/loops.ts (the selector backends epoll, poll, select,
 * and the io_uring proactor where it is available).
 */
import { existsSync, mkdtempSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  Protocol,
  Socket,
  socketConstants,
  getRunningLoop,
  getEventLoop,
  setEventLoop,
  _getRunningLoop,
  logger,
  RuntimeError,
  TimerHandle,
  type ExceptionContext,
} from '../lib/index.js';
import { LOOPS, newLoop, useLoop, type TestLoop } from './helpers/loops.js';
import { fdCount, percentile, runBriefly } from './helpers/loop.js';
import { sockets } from './helpers/sockets.js';

describe.each(LOOPS)('BaseEventLoop on %s', (backend) => {
  useLoop(backend);
  let loop: TestLoop;
  let errors: ExceptionContext[];
  let fdsBefore: number;

  beforeEach(() => {
    fdsBefore = fdCount();
    loop = newLoop(backend);
    errors = [];
    loop.setExceptionHandler((_l, ctx) => errors.push(ctx));
  });

  afterEach(() => {
    if (loop.isRunning()) loop.stop();
    loop.close();
    expect(fdCount()).toBe(fdsBefore);
  });

  it('runs on the requested backend', () => {
    expect(loop.backend).toBe(backend);
    // poll and select have no pollable fd: a helper thread waits for them.
    expect(loop.nativeStats().helperThread).toBe(backend === 'poll' || backend === 'select');
  });

  it('runs callSoon callbacks in FIFO order with their arguments', async () => {
    const calls: unknown[] = [];
    for (let i = 0; i < 100; i++) loop.callSoon((a: number, b: string) => calls.push([a, b]), i, 'x');
    await runBriefly(loop, 1);
    expect(calls).toEqual(Array.from({ length: 100 }, (_, i) => [i, 'x']));
  }); // CPython test_base_events: test_call_soon

  it('runs a callback scheduled during a pass in the next pass (fairness)', async () => {
    const calls: string[] = [];
    let pass = 0;
    const marker = (): void => {
      pass++;
    };
    loop.callSoon(() => {
      calls.push(`a@${pass}`);
      loop.callSoon(() => calls.push(`c@${pass}`));
    });
    loop.callSoon(() => calls.push(`b@${pass}`));
    loop.callSoon(marker);
    await runBriefly(loop, 3);
    expect(calls).toEqual(['a@0', 'b@0', 'c@1']);
  }); // CPython test_base_events: test__run_once_schedule_handle

  it('lets timers and I/O run while a callback reschedules itself forever', async () => {
    let spins = 0;
    const spin = (): void => {
      spins++;
      loop.callSoon(spin);
    };
    loop.callSoon(spin);
    const [a, b] = sockets.pair();
    let readable = false;
    loop.addReader(a, () => {
      readable = true;
      loop.removeReader(a);
    });
    sockets.write(b, 'x');
    loop.callLater(0.02, () => loop.stop());
    await loop.runForever();
    sockets.close(a, b);
    expect(readable).toBe(true);
    expect(spins).toBeGreaterThan(10);
  });

  it('fires timers with equal deadlines in scheduling order', async () => {
    const when = loop.time() + 0.01;
    const order: number[] = [];
    for (let i = 0; i < 500; i++) loop.callAt(when, () => order.push(i));
    loop.callAt(when + 0.001, () => loop.stop());
    await loop.runForever();
    expect(order).toEqual(Array.from({ length: 500 }, (_, i) => i));
  });

  it('fires timers in deadline order, never before their time', async () => {
    const fired: number[] = [];
    let early = 0;
    const handles: TimerHandle[] = [0.03, 0.01, 0.02, 0].map((d, i) =>
      loop.callLater(d, () => {
        if (loop.time() < handles[i].when()) early++;
        fired.push(d);
      }),
    );
    loop.callLater(0.04, () => loop.stop());
    await loop.runForever();
    // Deadline order is `when` order; on an unloaded machine that is the
    // delays' order, but a preempted test may schedule them far apart.
    const byWhen = [...handles].sort((a, b) => a.when() - b.when()).map((t) => [0.03, 0.01, 0.02, 0][handles.indexOf(t)]);
    expect(fired).toEqual(byWhen);
    expect(early).toBe(0);
  }); // CPython test_base_events: test_call_later

  it('fires zero of 10,000 random 0-50 ms timers early', async () => {
    const n = 10_000;
    const targets = new Array<bigint>(n);
    const fired = new Array<bigint>(n);
    let count = 0;
    let notBeforeWhen = 0;
    let seed = 0x9e3779b9;
    const rand = (): number => {
      seed = (seed * 1664525 + 1013904223) >>> 0;
      return seed / 2 ** 32;
    };
    for (let i = 0; i < n; i++) {
      const delay = rand() * 0.05;
      targets[i] = process.hrtime.bigint() + BigInt(Math.ceil(delay * 1e9));
      const handle = loop.callLater(delay, () => {
        fired[i] = process.hrtime.bigint();
        if (loop.time() < handle.when()) notBeforeWhen++;
        if (++count === n) loop.stop();
      });
    }
    // Timers due while the loop was still being filled cannot be on time:
    // lateness counts from the later of the deadline and the loop's start.
    const started = process.hrtime.bigint();
    await loop.runForever();
    let early = 0;
    const lateness: number[] = [];
    for (let i = 0; i < n; i++) {
      if (fired[i] < targets[i]) early++;
      const from = targets[i] > started ? targets[i] : started;
      lateness.push(Number(fired[i] - from) / 1e6);
    }
    lateness.sort((a, b) => a - b);
    console.log(
      `[${backend}] timer lateness over ${n} timers: p50 ${percentile(lateness, 50).toFixed(3)} ms, ` +
        `p99 ${percentile(lateness, 99).toFixed(3)} ms, max ${lateness[n - 1].toFixed(3)} ms, early ${early}`,
    );
    expect(count).toBe(n);
    expect(early).toBe(0);
    expect(notBeforeWhen).toBe(0);
  });

  it('never runs a cancelled timer or callback', async () => {
    const ran: string[] = [];
    const t = loop.callLater(0.001, () => ran.push('timer'));
    const s = loop.callSoon(() => ran.push('soon'));
    t.cancel();
    s.cancel();
    expect(t.cancelled()).toBe(true);
    loop.callLater(0.01, () => loop.stop());
    await loop.runForever();
    expect(ran).toEqual([]);
  }); // CPython test_events: test_handle_cancel

  it('compacts the timer heap by asyncio thresholds', async () => {
    // 200 scheduled, 100 cancelled: exactly half is not "more than half".
    const handles = Array.from({ length: 200 }, () => loop.callLater(100, () => {}));
    for (const h of handles.slice(0, 100)) h.cancel();
    await runBriefly(loop);
    expect(loop.nativeStats().timers).toBe(200);
    expect(loop._timerCancelledCount).toBe(100);
    // One more cancelled tips the fraction over 0.5: the heap is rebuilt.
    handles[100].cancel();
    await runBriefly(loop);
    expect(loop.nativeStats().timers).toBe(99);
    expect(loop._timerCancelledCount).toBe(0);
    // At or under 100 scheduled timers nothing is rebuilt.
    for (const h of handles.slice(101, 150)) h.cancel();
    await runBriefly(loop);
    expect(loop.nativeStats().timers).toBe(99);
    expect(loop._timerCancelledCount).toBe(49);
  }); // CPython test_base_events: test__run_once (cancelled timer heap)

  it('reports a callback exception to the handler and goes on', async () => {
    const boom = new Error('boom');
    const after: string[] = [];
    loop.callSoon(function failing() {
      throw boom;
    });
    loop.callSoon(() => after.push('next'));
    loop.callLater(0, () => {
      throw new TypeError('timer boom');
    });
    loop.callLater(0.005, () => loop.stop());
    await loop.runForever();
    expect(after).toEqual(['next']);
    expect(errors).toHaveLength(2);
    expect(errors[0].exception).toBe(boom);
    expect(errors[0].message).toMatch(/^Exception in callback <Handle failing\(\)>/);
    expect(errors[0].handle).toBeDefined();
    expect(errors[1].exception).toBeInstanceOf(TypeError);
  }); // CPython test_base_events: test_default_exc_handler_callback

  it('logs with the default handler and survives a failing custom handler', async () => {
    const spy = vi.spyOn(logger, 'error').mockImplementation(() => {});
    loop.setExceptionHandler(() => {
      throw new Error('handler broke');
    });
    loop.callSoon(() => {
      throw new Error('cb broke');
    });
    await runBriefly(loop, 1);
    expect(spy).toHaveBeenCalledTimes(1);
    expect(String(spy.mock.calls[0][0])).toMatch(/Unhandled error in exception handler/);
    loop.setExceptionHandler(null);
    expect(loop.getExceptionHandler()).toBeNull();
    loop.callExceptionHandler({ message: 'plain message' });
    expect(String(spy.mock.calls[1][0])).toMatch(/^plain message/);
    spy.mockRestore();
  }); // CPython test_base_events: test_set_exc_handler_broken

  it('resolves runUntilComplete with the result or rejects with the exception', async () => {
    const fut = loop.createFuture<number>();
    loop.callLater(0.002, () => fut.setResult(42));
    await expect(loop.runUntilComplete(fut)).resolves.toBe(42);
    const bad = loop.createFuture<number>();
    loop.callSoon(() => bad.setException(new RangeError('nope')));
    await expect(loop.runUntilComplete(bad)).rejects.toThrow(RangeError);
    expect(loop.isRunning()).toBe(false);
  }); // CPython test_base_events: test_run_until_complete

  it('completes runUntilComplete from Node callbacks and promises', async () => {
    const fut = loop.createFuture<string>();
    setTimeout(() => fut.setResult('from setTimeout'), 5);
    await expect(loop.runUntilComplete(fut)).resolves.toBe('from setTimeout');
    await expect(loop.runUntilComplete(Promise.resolve('promise'))).resolves.toBe('promise');
  });

  it('rejects runUntilComplete when the loop stops first', async () => {
    const fut = loop.createFuture();
    loop.callSoon(() => loop.stop());
    await expect(loop.runUntilComplete(fut)).rejects.toThrow('Event loop stopped before Future completed.');
  }); // CPython test_base_events: test_run_until_complete_loop_orphan_future_close_loop

  it('does one pass when stopped before runForever', async () => {
    const calls: string[] = [];
    loop.callSoon(() => calls.push('one'));
    loop.stop();
    await loop.runForever();
    expect(calls).toEqual(['one']);
    // The stop was consumed: the next run needs another stop.
    loop.callSoon(() => loop.stop());
    await loop.runForever();
  }); // CPython test_base_events: test_run_forever_pre_stopped

  it('stops after the current pass, keeping later callbacks queued', async () => {
    const calls: string[] = [];
    loop.callSoon(() => {
      loop.stop();
      loop.callSoon(() => calls.push('next run'));
    });
    loop.callSoon(() => calls.push('same pass'));
    await loop.runForever();
    expect(calls).toEqual(['same pass']);
    await runBriefly(loop, 1);
    expect(calls).toEqual(['same pass', 'next run']);
  }); // CPython test_base_events: test_run_once_in_executor (stop semantics)

  it('is the running loop inside callbacks and only then', async () => {
    expect(_getRunningLoop()).toBeNull();
    expect(() => getRunningLoop()).toThrow(new RuntimeError('no running event loop'));
    let seen: unknown;
    loop.callSoon(() => {
      seen = getRunningLoop();
    });
    await runBriefly(loop, 1);
    expect(seen).toBe(loop);
    expect(() => getEventLoop()).toThrow(RuntimeError);
    setEventLoop(loop);
    expect(getEventLoop()).toBe(loop);
    setEventLoop(null);
  }); // CPython test_events: test_get_running_loop

  it('refuses to run twice, to run beside another loop, and to close while running', async () => {
    const other = newLoop(backend);
    loop.callSoon(() => {
      expect(() => loop.runForever()).toThrow('This event loop is already running');
      expect(() => other.runForever()).toThrow('Cannot run the event loop while another loop is running');
      expect(() => loop.close()).toThrow('Cannot close a running event loop');
      loop.stop();
    });
    await loop.runForever();
    other.close();
  }); // CPython test_base_events: test_run_forever_keyboard_interrupt (running checks)

  it('gives a clear error for use after close', () => {
    loop.close();
    expect(loop.isClosed()).toBe(true);
    expect(() => loop.callSoon(() => {})).toThrow(new RuntimeError('Event loop is closed'));
    expect(() => loop.callLater(1, () => {})).toThrow('Event loop is closed');
    expect(() => loop.callAt(1, () => {})).toThrow('Event loop is closed');
    expect(() => loop.runForever()).toThrow('Event loop is closed');
    expect(() => loop.addReader(0, () => {})).toThrow('Event loop is closed');
    loop.close(); // idempotent
  }); // CPython test_base_events: test_close

  it('rejects bad callbacks and times with messages naming the argument', () => {
    expect(() => loop.callSoon(42 as never)).toThrow(/a callable object was expected by callSoon\(\), got 42/);
    expect(() => loop.callLater(1, 'x' as never)).toThrow(TypeError);
    expect(() => loop.callSoon(async () => {})).toThrow('coroutines cannot be used with callSoon()');
    expect(() => loop.callLater(NaN, () => {})).toThrow(/Expected "delay" to be a number of seconds, not NaN, got NaN/);
    expect(() => loop.callLater('1' as never, () => {})).toThrow(/Expected "delay" to be a number of seconds, got "1"/);
    expect(() => loop.callAt(NaN, () => {})).toThrow(/"when"/);
    expect(loop.nativeStats().timers).toBe(0);
  }); // CPython test_base_events: test_check_callback

  it('runs negative delays as soon as possible and never runs Infinity', async () => {
    const calls: string[] = [];
    loop.callLater(-5, () => calls.push('negative'));
    const inf = loop.callLater(Infinity, () => calls.push('infinity'));
    expect(inf.when()).toBeGreaterThan(loop.time() + 1e9);
    loop.callLater(0.005, () => loop.stop());
    await loop.runForever();
    expect(calls).toEqual(['negative']);
    expect(loop.nativeStats().timers).toBe(1);
  });

  it('keeps time() monotonic with sub-millisecond resolution', () => {
    const a = loop.time();
    let b = loop.time();
    while (b === a) b = loop.time();
    expect(b).toBeGreaterThan(a);
    expect(b - a).toBeLessThan(0.001);
  }); // CPython test_base_events: test_time_and_call_at

  it('warns about slow callbacks in debug mode only', async () => {
    const spy = vi.spyOn(logger, 'warning').mockImplementation(() => {});
    const busy = (): void => {
      const end = Date.now() + 20;
      while (Date.now() < end);
    };
    loop.slowCallbackDuration = 0.01;
    loop.callSoon(busy);
    await runBriefly(loop, 1);
    expect(spy).not.toHaveBeenCalled();
    loop.setDebug(true);
    expect(loop.getDebug()).toBe(true);
    loop.callSoon(busy);
    await runBriefly(loop, 1);
    expect(spy).toHaveBeenCalledTimes(1);
    expect(String(spy.mock.calls[0][0])).toMatch(/^Executing <Handle busy\(\)> took 0\.0\d\d seconds$/);
    spy.mockRestore();
  }); // CPython test_base_events: test_log_slow_callbacks

  it('keeps Node timers and a node:net echo working while the loop is busy', async () => {
    const net = await import('node:net');
    let ticks = 0;
    const interval = setInterval(() => ticks++, 5);
    const server = net.createServer((s) => s.pipe(s));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const client = net.connect(port, '127.0.0.1');
    let rounds = 0;
    client.on('data', () => {
      if (++rounds < 200) client.write('ping');
      else client.end();
    });
    client.write('ping');
    // Busy: a callback that keeps rescheduling itself for 300 ms.
    const start = loop.time();
    const end = start + 0.3;
    const spin = (): void => {
      if (loop.time() < end) loop.callSoon(spin);
      else loop.stop();
    };
    loop.callSoon(spin);
    await loop.runForever();
    const elapsedMs = (loop.time() - start) * 1000;
    const roundsWhileBusy = rounds;
    clearInterval(interval);
    // Let the echo finish (bounded) before closing it.
    for (let i = 0; i < 250 && rounds < 200; i++) await new Promise((r) => setTimeout(r, 20));
    await new Promise<void>((r) => server.close(() => r()));
    client.destroy();
    expect(roundsWhileBusy).toBeGreaterThan(10);
    expect(rounds).toBe(200);
    // A starved Node would tick 0 times; allow for a loaded CI machine.
    expect(ticks).toBeGreaterThanOrEqual(Math.max(3, Math.floor((elapsedMs / 5) * 0.2)));
  });

  it('runs promise continuations after every batch', async () => {
    const order: string[] = [];
    loop.callSoon(() => {
      order.push('cb1');
      Promise.resolve().then(() => order.push('micro1'));
      process.nextTick(() => order.push('tick1'));
      loop.callSoon(() => {
        order.push('cb2');
        loop.stop();
      });
    });
    await loop.runForever();
    expect(order).toEqual(['cb1', 'tick1', 'micro1', 'cb2']);
  });

  // ------------------------------------------------------------ Unix socket paths (issue 8 item 12)

  describe('Unix socket paths', () => {
    let tmp: string | null = null;
    function tmpPath(name: string): string {
      tmp ??= mkdtempSync(path.join(tmpdir(), 'aionode-be-'));
      return path.join(tmp, name);
    }
    afterAll(() => {
      if (tmp !== null) rmSync(tmp, { recursive: true, force: true });
    });

    /** Runs `body` as a task of the loop, bounded. */
    async function inLoop<T>(body: () => Promise<T>): Promise<T> {
      const guard = loop.callLater(10, () => loop.stop());
      try {
        return await loop.runUntilComplete(() => body());
      } finally {
        guard.cancel();
      }
    }

    /** The error `aw` fails with, or undefined. */
    async function failure(aw: PromiseLike<unknown>): Promise<unknown> {
      try {
        await inLoop(async () => aw);
      } catch (e) {
        return e;
      }
      return undefined;
    }

    it('createUnixServer refuses a path with an embedded NUL, binding nothing', async () => {
      const p = tmpPath('sock');
      const evil = `${p}\0evil`;
      const exc = await failure(loop.createUnixServer(() => new Protocol(), evil));
      expect(exc).toBeInstanceOf(TypeError);
      expect((exc as Error).message).toBe(
        `Expected "path" to be a socket path without NUL bytes (only an abstract name starts with one), got ${JSON.stringify(evil.length > 40 ? evil.slice(0, 40) + '…' : evil)}`,
      );
      expect((exc as Error).message).toContain('\\u0000');
      // Before the fix the server served on the truncated path.
      expect(existsSync(p)).toBe(false);
    }); // Python: ValueError: embedded null byte

    it('createUnixConnection refuses a path with an embedded NUL', async () => {
      // A server on the truncated path: before the fix the connection went there.
      const p = tmpPath('target.sock');
      const accepted: unknown[] = [];
      const server = await inLoop(() =>
        loop.createUnixServer(() => {
          const proto = new Protocol();
          accepted.push(proto);
          return proto;
        }, p),
      );
      const exc = await failure(loop.createUnixConnection(() => new Protocol(), `${p}\0x`));
      expect(exc).toBeInstanceOf(TypeError);
      expect((exc as Error).message).toMatch(/^Expected "path" to be a socket path without NUL bytes.*, got ".*\\u0000x"$/);
      await runBriefly(loop, 3);
      expect(accepted).toEqual([]);
      server.close();
      await inLoop(() => server.waitClosed());
    });

    it('close() removes the socket file it bound', async () => {
      const p = tmpPath('removed.sock');
      const server = await inLoop(() => loop.createUnixServer(() => new Protocol(), p));
      expect(existsSync(p)).toBe(true);
      server.close();
      expect(existsSync(p)).toBe(false);
      await inLoop(() => server.waitClosed());
    }); // CPython test_unix_events: test_create_unix_server_cleanup_socket (3.13)

    it('close() leaves a socket file that replaced its own alone (compared by inode)', async () => {
      const p = tmpPath('replaced.sock');
      const s1 = await inLoop(() => loop.createUnixServer(() => new Protocol(), p));
      // Someone removed s1's file and another server now listens there.
      unlinkSync(p);
      const s2 = await inLoop(() => loop.createUnixServer(() => new Protocol(), p));
      s1.close();
      expect(existsSync(p)).toBe(true);
      s2.close();
      expect(existsSync(p)).toBe(false);
      await inLoop(() => Promise.all([s1.waitClosed(), s2.waitClosed()]));
    }); // CPython test_unix_events: test_create_unix_server_cleanup_replaced (3.13)

    it('close() tolerates a socket file removed by someone else', async () => {
      const p = tmpPath('gone.sock');
      const logged = vi.spyOn(logger, 'error').mockImplementation(() => {});
      try {
        const server = await inLoop(() => loop.createUnixServer(() => new Protocol(), p));
        unlinkSync(p);
        server.close();
        await inLoop(() => server.waitClosed());
        expect(logged).not.toHaveBeenCalled();
      } finally {
        logged.mockRestore();
      }
    }); // CPython test_unix_events: test_create_unix_server_cleanup_gone (3.13)

    it('cleans up the file of a bound socket passed as sock, unless cleanupSocket is false', async () => {
      for (const cleanupSocket of [true, false]) {
        const p = tmpPath(`given-${cleanupSocket}.sock`);
        const sock = new Socket(socketConstants().AF_UNIX, socketConstants().SOCK_STREAM);
        sock.bind(p);
        const server = await inLoop(() => loop.createUnixServer(() => new Protocol(), null, { sock, cleanupSocket }));
        server.close();
        expect(existsSync(p)).toBe(!cleanupSocket);
        await inLoop(() => server.waitClosed());
      }
    }); // CPython test_unix_events: test_create_unix_server_cleanup_sock (3.13)
  });
});
