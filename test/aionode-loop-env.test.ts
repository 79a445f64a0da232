/**
 * AIONODE_LOOP picks the loop newEventLoop() (and so run() and Runner)
 * makes, read once; an unknown name is an error naming the variable, the
 * loops usable here and the value (issue 9 item 3: io_uring is opt-in).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { availableLoops, availableSelectors, newEventLoop, run, getRunningLoop } from '../lib/index.js';
import { _resetForcedLoop } from '../lib/events.js';

const saved = process.env.AIONODE_LOOP;

afterEach(() => {
  if (saved === undefined) delete process.env.AIONODE_LOOP;
  else process.env.AIONODE_LOOP = saved;
  _resetForcedLoop();
});

describe('AIONODE_LOOP', () => {
  it('lists every selector usable here among the loops', () => {
    for (const name of availableSelectors()) expect(availableLoops()).toContain(name);
  });

  it.each(availableSelectors())('AIONODE_LOOP=%s makes that loop', (name) => {
    process.env.AIONODE_LOOP = name;
    _resetForcedLoop();
    const loop = newEventLoop();
    try {
      expect(loop.backend).toBe(name);
    } finally {
      loop.close();
    }
  });

  it('is read once: changing it later does not change the loop kind', () => {
    const [first, second] = [availableSelectors()[0], availableSelectors().at(-1)!];
    process.env.AIONODE_LOOP = second;
    _resetForcedLoop();
    newEventLoop().close();
    process.env.AIONODE_LOOP = first;
    const loop = newEventLoop();
    try {
      expect(loop.backend).toBe(second);
    } finally {
      loop.close();
    }
  });

  it('run() uses it', async () => {
    process.env.AIONODE_LOOP = 'poll';
    _resetForcedLoop();
    const backend = await run(async () => getRunningLoop().backend);
    expect(backend).toBe('poll');
  });

  it('an unknown name is an error naming the variable, the choices and the value', () => {
    process.env.AIONODE_LOOP = 'nosuchloop';
    _resetForcedLoop();
    expect(() => newEventLoop()).toThrow(/AIONODE_LOOP.*one of .*epoll.*nosuchloop/);
  });

  it('empty means the default loop', () => {
    process.env.AIONODE_LOOP = '';
    _resetForcedLoop();
    const loop = newEventLoop();
    try {
      expect(loop.backend).toBe(availableSelectors()[0]);
    } finally {
      loop.close();
    }
  });
});
