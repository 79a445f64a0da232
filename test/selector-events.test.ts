/**
 * Reader/writer registration (addReader/addWriter), on every loop of
 * test/helpers/loops.ts: the selector backends, and the io_uring proactor,
 * which serves readers and writers with poll ops. "Nothing registered" is
 * `registrations(loop) === 0` (selector keys, or proactor ops in flight).
 */
import { openSync, closeSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { OSError, SelectorEventLoop, EpollSelector, type ExceptionContext } from '../lib/index.js';
import { availableBackends } from './helpers/backends.js';
import { LOOPS, newLoop, registrations, useLoop, type TestLoop } from './helpers/loops.js';
import { fdCount, runBriefly, runUntil } from './helpers/loop.js';
import { EAGAIN, sockets } from './helpers/sockets.js';

describe.each(LOOPS)('readers and writers on %s', (backend) => {
  useLoop(backend);
  let loop: TestLoop;
  let errors: ExceptionContext[];
  let fdsBefore: number;
  let open: number[];

  beforeEach(() => {
    fdsBefore = fdCount();
    loop = newLoop(backend);
    errors = [];
    open = [];
    loop.setExceptionHandler((_l, ctx) => errors.push(ctx));
  });

  afterEach(() => {
    loop.close();
    sockets.close(...open);
    expect(errors).toEqual([]);
    expect(fdCount()).toBe(fdsBefore);
  });

  function pair(): [number, number] {
    const p = sockets.pair();
    open.push(...p);
    return p;
  }

  it('calls a reader when data arrives and stops after removeReader', async () => {
    const [a, b] = pair();
    const got: string[] = [];
    loop.addReader(a, (tag: string) => {
      const data = sockets.read(a);
      if (typeof data !== 'number') got.push(`${tag}:${data.toString()}`);
    }, 'r');
    loop.callLater(0.005, () => sockets.write(b, 'hello'));
    await runUntil(loop, () => got.length === 1);
    expect(got).toEqual(['r:hello']);
    expect(loop.removeReader(a)).toBe(true);
    expect(loop.removeReader(a)).toBe(false);
    sockets.write(b, 'ignored');
    loop.callLater(0.01, () => loop.stop());
    await loop.runForever();
    expect(got).toEqual(['r:hello']);
    expect(loop.nativeStats().registered).toBe(0);
  }); // CPython test_selector_events: test_add_reader / test_remove_reader

  it('calls a writer while the socket is writable and stops after removeWriter', async () => {
    const [a, b] = pair();
    let calls = 0;
    loop.addWriter(a, () => {
      calls++;
      if (calls === 3) loop.removeWriter(a);
    });
    await runUntil(loop, () => calls >= 3);
    // A few more passes: a removed writer is never called again.
    await runBriefly(loop, 5);
    expect(calls).toBe(3);
    expect(sockets.read(b)).toBe(-EAGAIN);
  }); // CPython test_selector_events: test_add_writer / test_remove_writer

  it('keeps reader and writer on one fd independent', async () => {
    const [a, b] = pair();
    const log: string[] = [];
    loop.addReader(a, () => {
      sockets.read(a);
      log.push('read');
      loop.removeReader(a);
    });
    loop.addWriter(a, () => {
      log.push('write');
      loop.removeWriter(a);
    });
    sockets.write(b, 'x');
    await runUntil(loop, () => log.length === 2);
    expect(log.sort()).toEqual(['read', 'write']);
    expect(registrations(loop)).toBe(0);
  }); // CPython test_selector_events: test_add_reader_existing_writer

  it('replaces an existing reader and cancels the old handle', async () => {
    const [a, b] = pair();
    const first = loop.addReader(a, () => {
      throw new Error('old reader must not run');
    });
    const got: string[] = [];
    loop.addReader(a, () => {
      const d = sockets.read(a);
      if (typeof d !== 'number') got.push(d.toString());
    });
    expect(first.cancelled()).toBe(true);
    sockets.write(b, 'new');
    await runUntil(loop, () => got.length === 1);
    expect(got).toEqual(['new']);
    loop.removeReader(a);
  }); // CPython test_selector_events: test_add_reader_existing

  it('moves data both ways through a reader/writer echo', async () => {
    const [a, b] = pair();
    const rounds = 500;
    let received = 0;
    loop.addReader(b, () => {
      const d = sockets.read(b);
      if (typeof d !== 'number') sockets.write(b, d);
    });
    loop.addReader(a, () => {
      const d = sockets.read(a);
      if (typeof d === 'number') return;
      received += d.length;
      if (received < rounds * 4) sockets.write(a, 'ping');
    });
    sockets.write(a, 'ping');
    await runUntil(loop, () => received >= rounds * 4);
    expect(received).toBe(rounds * 4);
    loop.removeReader(a);
    loop.removeReader(b);
  });

  it('reports EOF to the reader when the peer closes', async () => {
    const [a, b] = pair();
    let eof = false;
    loop.addReader(a, () => {
      if (sockets.read(a) instanceof Buffer && (sockets.read(a) as Buffer).length === 0) eof = true;
      const d = sockets.read(a);
      if (typeof d !== 'number' && d.length === 0) {
        eof = true;
        loop.removeReader(a);
      }
    });
    sockets.close(b);
    open.splice(open.indexOf(b), 1);
    await runUntil(loop, () => eof);
    expect(eof).toBe(true);
  });

  it('gives a clear error for a closed fd and registers nothing', () => {
    const [a, b] = sockets.pair();
    sockets.close(a, b);
    let err: unknown;
    try {
      loop.addReader(a, () => {});
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(OSError);
    expect((err as OSError).code).toBe('EBADF');
    expect((err as OSError).syscall).toBe('register');
    expect((err as OSError).message).toBe(`register EBADF fd ${a}`);
    expect(registrations(loop)).toBe(0);
  }); // CPython test_selector_events: test_add_reader (closed fd -> OSError)

  it('rejects a negative fd, a non-fd and a non-function callback', () => {
    expect(() => loop.addReader(-1, () => {})).toThrow(new RangeError('Invalid file descriptor: -1'));
    expect(() => loop.addReader('3' as never, () => {})).toThrow(/Expected "fd" to be an integer file descriptor/);
    expect(() => loop.addWriter(1.5, () => {})).toThrow(TypeError);
    const [a] = pair();
    expect(() => loop.addReader(a, null as never)).toThrow(/Expected "callback" to be a callable object for addReader\(\), got null/);
    expect(registrations(loop)).toBe(0);
  });

  it('accepts an object with fileno()', async () => {
    const [a, b] = pair();
    let ran = false;
    const fileobj = { fileno: () => a };
    loop.addReader(fileobj, () => {
      ran = true;
      sockets.read(a);
      loop.removeReader(fileobj);
    });
    sockets.write(b, 'x');
    await runUntil(loop, () => ran);
    expect(ran).toBe(true);
  });

  it('survives a reader that closes its own fd while events are pending', async () => {
    const [a, b] = pair();
    const [c, d] = pair();
    let aRuns = 0;
    let cRuns = 0;
    loop.addReader(a, () => {
      aRuns++;
      // Unregister and close c from inside the batch that also reports c.
      loop.removeReader(c);
      sockets.close(c);
      open.splice(open.indexOf(c), 1);
      loop.removeReader(a);
    });
    loop.addReader(c, () => cRuns++);
    sockets.write(b, 'x');
    sockets.write(d, 'y');
    await runUntil(loop, () => aRuns === 1);
    await runBriefly(loop, 4);
    expect(aRuns).toBe(1);
    // c may have run before a in the same batch, never after its removal.
    expect(cRuns).toBeLessThanOrEqual(1);
  }); // reliability.md T1 (stale events for a closed fd)
});

describe.runIf(availableBackends().includes('epoll'))('epoll specifics', () => {
  it('refuses a regular file with EPERM, as epoll_ctl(2) does', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'aionode-'));
    const fd = openSync(path.join(dir, 'f'), 'w');
    const loop = new SelectorEventLoop(new EpollSelector());
    try {
      expect(() => loop.addReader(fd, () => {})).toThrow(expect.objectContaining({ code: 'EPERM', syscall: 'register' }));
      expect(loop._selector.getMap().size).toBe(0);
    } finally {
      loop.close();
      closeSync(fd);
      rmSync(dir, { recursive: true });
    }
  });
});
