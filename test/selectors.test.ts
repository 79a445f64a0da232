/**
 * lib/selectors.ts used directly, as Python's selectors module: the same
 * suite on every backend.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  DefaultSelector,
  EpollSelector,
  EVENT_READ,
  EVENT_WRITE,
  KeyError,
  availableSelectors,
  selectorClass,
  type NativeBackedSelector,
} from '../lib/selectors.js';
import { RuntimeError } from '../lib/exceptions.js';
import { availableBackends } from './helpers/backends.js';
import { fdCount } from './helpers/loop.js';
import { sockets } from './helpers/sockets.js';

describe.each(availableBackends())('%s selector', (backend) => {
  let sel: NativeBackedSelector<string>;
  let open: number[];
  let fdsBefore: number;

  beforeEach(() => {
    fdsBefore = fdCount();
    sel = new (selectorClass(backend))();
    open = [];
  });
  afterEach(() => {
    sel.close();
    sockets.close(...open);
    expect(fdCount()).toBe(fdsBefore);
  });
  function pair(): [number, number] {
    const p = sockets.pair();
    open.push(...p);
    return p;
  }

  it('registers, reports readiness with the key and data, and unregisters', () => {
    const [a, b] = pair();
    const key = sel.register(a, EVENT_READ, 'data-a');
    expect(key.fd).toBe(a);
    expect(key.events).toBe(EVENT_READ);
    expect(key.data).toBe('data-a');
    expect(sel.select(0)).toEqual([]);
    sockets.write(b, 'x');
    const ready = sel.select(1);
    expect(ready).toHaveLength(1);
    expect(ready[0][0]).toBe(key);
    expect(ready[0][1]).toBe(EVENT_READ);
    expect(sel.unregister(a)).toBe(key);
    expect(sel.select(0)).toEqual([]);
  }); // CPython test_selectors: test_register / test_unregister

  it('masks events by interest and reports writability', () => {
    const [a] = pair();
    sel.register(a, EVENT_READ | EVENT_WRITE);
    expect(sel.select(0)).toEqual([[sel.getKey(a), EVENT_WRITE]]);
    sel.modify(a, EVENT_READ);
    expect(sel.select(0)).toEqual([]);
  }); // CPython test_selectors: test_select

  it('modifies data without changing the key events', () => {
    const [a] = pair();
    const k1 = sel.register(a, EVENT_READ, 'one');
    const k2 = sel.modify(a, EVENT_READ, 'two');
    expect(k2).not.toBe(k1);
    expect(k2.data).toBe('two');
    expect(sel.getKey(a)).toBe(k2);
  }); // CPython test_selectors: test_modify_data

  it('raises KeyError for duplicates and unknown fds', () => {
    const [a, b] = pair();
    sel.register(a, EVENT_READ);
    expect(() => sel.register(a, EVENT_READ)).toThrow(KeyError);
    expect(() => sel.unregister(b)).toThrow(KeyError);
    expect(() => sel.modify(b, EVENT_READ)).toThrow(KeyError);
    expect(() => sel.getKey(b)).toThrow(KeyError);
  }); // CPython test_selectors: test_register / test_unregister / test_modify_unregister

  it('rejects invalid events and fds', () => {
    const [a] = pair();
    expect(() => sel.register(a, 0)).toThrow(/Expected "events" to be EVENT_READ, EVENT_WRITE or both/);
    expect(() => sel.register(a, 4)).toThrow(RangeError);
    expect(() => sel.register(-1, EVENT_READ)).toThrow('Invalid file descriptor: -1');
    expect(sel.getMap().size).toBe(0);
  }); // CPython test_selectors: test_register (ValueError cases)

  it('reports EBADF for a closed fd', () => {
    const [a, b] = sockets.pair();
    sockets.close(a, b);
    expect(() => sel.register(a, EVENT_READ)).toThrow(expect.objectContaining({ code: 'EBADF' }));
    expect(sel.getMap().size).toBe(0);
  });

  it('unregisters an fd that was closed behind its back', () => {
    const [a, b] = sockets.pair();
    sel.register(a, EVENT_READ);
    sockets.close(a, b);
    expect(sel.unregister(a).fd).toBe(a);
    expect(sel.getMap().size).toBe(0);
  }); // CPython test_selectors: test_unregister_after_fd_close

  it('blocks in select(timeout) for about the timeout, never less', () => {
    const [a] = pair();
    sel.register(a, EVENT_READ);
    const t0 = process.hrtime.bigint();
    expect(sel.select(0.05)).toEqual([]);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    expect(ms).toBeGreaterThanOrEqual(50);
    expect(ms).toBeLessThan(1000);
  }); // CPython test_selectors: test_timeout

  it('returns at once when something is ready, even with no timeout', () => {
    const [a, b] = pair();
    sel.register(a, EVENT_READ);
    sockets.write(b, 'x');
    expect(sel.select()).toHaveLength(1);
    expect(sel.select(null)).toHaveLength(1);
  });

  it('reports many ready fds in one select', () => {
    const pairs = Array.from({ length: 40 }, () => pair());
    for (const [a, b] of pairs) {
      sel.register(a, EVENT_READ, String(a));
      sockets.write(b, 'x');
    }
    const ready = sel.select(0);
    expect(ready.map(([k]) => k.fd).sort((x, y) => x - y)).toEqual(pairs.map(([a]) => a).sort((x, y) => x - y));
  });

  it('is unusable after close, with asyncio\'s message', () => {
    sel.close();
    expect(() => sel.getMap()).toThrow(new RuntimeError('Selector is closed'));
    expect(() => sel.register(0, EVENT_READ)).toThrow('Selector is closed');
    expect(() => sel.select(0)).toThrow('Selector is closed');
    sel.close();
  }); // CPython test_selectors: test_close
});

describe('DefaultSelector', () => {
  it('is the best backend here (epoll on Linux), or AIONODE_SELECTOR', () => {
    const names = availableSelectors();
    expect(names.length).toBeGreaterThan(0);
    const sel = new DefaultSelector();
    expect(sel.name).toBe(process.env.AIONODE_SELECTOR || names[0]);
    if (process.platform === 'linux' && !process.env.AIONODE_SELECTOR) {
      expect(names).toEqual(['epoll', 'poll', 'select']);
      expect(sel).toBeInstanceOf(EpollSelector);
    }
    sel.close();
    const prev = process.env.AIONODE_SELECTOR;
    process.env.AIONODE_SELECTOR = 'select';
    try {
      const s2 = new DefaultSelector();
      expect(s2.name).toBe('select');
      s2.close();
      process.env.AIONODE_SELECTOR = 'nonesuch';
      expect(() => new DefaultSelector()).toThrow(/Selector "nonesuch" is not available here; available: epoll/);
    } finally {
      if (prev === undefined) delete process.env.AIONODE_SELECTOR;
      else process.env.AIONODE_SELECTOR = prev;
    }
  });
});

describe.runIf(availableBackends().includes('select'))('select backend', () => {
  it('refuses fds at or above FD_SETSIZE with a RangeError', () => {
    const sel = new (selectorClass('select'))();
    try {
      expect(() => sel.register(1024, EVENT_READ)).toThrow(/out of range for the select selector \(FD_SETSIZE cap\)/);
      expect(sel.getMap().size).toBe(0);
    } finally {
      sel.close();
    }
  });
});
