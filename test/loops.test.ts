/**
 * The loop list itself (test/helpers/loops.ts): every suite trusts it, so
 * it gets its own checks: each loop is what its name says, useLoop() really
 * redirects newEventLoop()/run(), and selectorOnly() skips exactly the
 * non-selector loops.
 */
import { describe, expect, it } from 'vitest';
import { availableSelectors, getRunningLoop, newEventLoop, run } from '../lib/index.js';
import { availableBackends, loopOn } from './helpers/backends.js';
import {
  eachLoop,
  HEAVY_LOOPS,
  isSelectorLoop,
  KNOWN_LOOPS,
  LOOPS,
  newLoop,
  SELECTOR_LOOPS,
  selectorOnly,
  UNAVAILABLE_LOOPS,
  useLoop,
  type TestLoop,
} from './helpers/loops.js';

describe('the loop list', () => {
  it('lists every selector compiled in, then io_uring when usable, unless narrowed', () => {
    if (process.env.AIONODE_TEST_LOOPS === undefined) {
      expect(SELECTOR_LOOPS).toEqual(availableSelectors());
      expect(LOOPS.includes('io_uring')).toBe(!UNAVAILABLE_LOOPS.some((u) => u.name === 'io_uring'));
    }
    for (const name of LOOPS) expect(KNOWN_LOOPS).toContain(name);
    if (UNAVAILABLE_LOOPS.length > 0) console.log(`loops not run here: ${UNAVAILABLE_LOOPS.map((u) => `${u.name} (${u.reason})`).join('; ')}`);
  });

  it('picks the heavy-suite loops from the run', () => {
    expect(HEAVY_LOOPS.length).toBeGreaterThan(0);
    for (const name of HEAVY_LOOPS) expect(LOOPS).toContain(name);
    if (LOOPS.some((n) => n !== 'select')) expect(HEAVY_LOOPS).not.toContain('select');
  });

  it('crosses cases with loops, loop first', () => {
    expect(eachLoop([['a', 1], ['b', 2]] as const, ['x', 'y'])).toEqual([
      ['x', 'a', 1],
      ['x', 'b', 2],
      ['y', 'a', 1],
      ['y', 'b', 2],
    ]);
    expect(eachLoop(['k'], ['x'])).toEqual([['x', 'k']]);
  });

  it('names the argument, the expectation and the value for an unknown loop', () => {
    expect(() => newLoop('kqueue-ish')).toThrow(/Expected "loop" to be one of .*, got "kqueue-ish"/);
  });

  it('keeps the old backends.ts API as a view of the list', () => {
    expect(availableBackends()).toEqual([...SELECTOR_LOOPS]);
    const loop = loopOn(LOOPS[0]);
    try {
      expect(loop.backend).toBe(LOOPS[0]);
    } finally {
      loop.close();
    }
  });
});

describe.each(LOOPS)('loop %s', (name) => {
  useLoop(name);

  it('is the loop its name says', () => {
    const loop = newLoop(name);
    try {
      expect(loop.backend).toBe(name);
      expect(loop.constructor.name).toBe(isSelectorLoop(name) ? 'SelectorEventLoop' : 'ProactorEventLoop');
    } finally {
      loop.close();
    }
  });

  it('is what newEventLoop() and run() make inside useLoop()', async () => {
    const loop = newEventLoop() as TestLoop;
    try {
      expect(loop.backend).toBe(name);
    } finally {
      loop.close();
    }
    expect(await run(async () => (getRunningLoop() as TestLoop).backend)).toBe(name);
  });
});

describe('selectorOnly', () => {
  const seen: string[] = [];
  for (const name of LOOPS) {
    selectorOnly(name, 'checks the helper itself')(`runs on ${name} only if it is a selector loop`, () => {
      seen.push(name);
    });
  }
  it('ran the selector-only rows on the selector loops only', () => {
    expect(seen).toEqual(LOOPS.filter(isSelectorLoop));
  });
  it('wants a reason', () => {
    expect(() => selectorOnly(LOOPS[0], ' ')).toThrow(/reason/);
  });
});
