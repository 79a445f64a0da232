/**
 * Fault suite, exception handlers (issue 8 item 6, reliability T15).
 *
 * asyncio's call_exception_handler never lets a handler's own failure
 * escape: a throwing custom handler is reported through the default one
 * ("Unhandled error in exception handler"), a throwing default handler is
 * logged ("Exception in default exception handler"), and if even logging
 * fails the failure is swallowed. Here that means: nothing reaches Node's
 * uncaughtException, and the callbacks after the failing one in the same
 * pass still run.
 */
import { inspect } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { logger, type BaseEventLoop, type ExceptionContext } from '../../lib/index.js';
import { LOOPS, newLoop as loopNamed, useLoop } from '../helpers/loops.js';
import { allowExceptionHandlerCalls } from '../helpers/exception-handler.js';

const loops: BaseEventLoop[] = [];
let uncaught: unknown[] = [];
const onUncaught = (exc: unknown): void => {
  uncaught.push(exc);
};
const savedError = logger.error;
let logged: string[] = [];

beforeEach(() => {
  // Every case here provokes the default handler on purpose (test/setup.ts).
  allowExceptionHandlerCalls();
  uncaught = [];
  logged = [];
  process.on('uncaughtException', onUncaught);
});

afterEach(() => {
  process.off('uncaughtException', onUncaught);
  logger.error = savedError;
  for (const loop of loops.splice(0)) if (!loop.isClosed()) loop.close();
});

/** A logger that records, as the default one would print. */
function recordingLogger(): void {
  logger.error = (message: string, ...rest: unknown[]) => {
    logged.push([message, ...rest.map((r) => inspect(r))].join(' '));
  };
}

/** A logger that formats like a JSON log shipper: it throws on circular values. */
function jsonLogger(): void {
  logger.error = (message: string, ...rest: unknown[]) => {
    logged.push(JSON.stringify({ message, rest }));
  };
}

/** A logger that always fails. */
function brokenLogger(): void {
  logger.error = () => {
    throw new Error('logger is down');
  };
}

function circular(): Record<string, unknown> {
  const o: Record<string, unknown> = { name: 'circular' };
  o.self = o;
  return o;
}

/** Values no formatter likes. Each is made fresh. */
const NASTY: Record<string, () => unknown> = {
  'a circular object': circular,
  'an object whose toString throws': () => ({
    toString() {
      throw new Error('toString failed');
    },
  }),
  'an object whose toString throws a circular object': () => ({
    toString() {
      throw circular();
    },
  }),
  'an error whose stack getter throws': () => {
    const e = new Error('bad stack');
    Object.defineProperty(e, 'stack', {
      get() {
        throw circular();
      },
    });
    return e;
  },
  'an object whose inspect.custom throws': () => ({
    [inspect.custom]() {
      throw new Error('inspect failed');
    },
    toString() {
      throw new Error('toString failed');
    },
  }),
  'a null-prototype object': () => Object.create(null),
  'a Proxy whose every trap throws': () =>
    new Proxy(
      {},
      {
        get() {
          throw new Error('get trap');
        },
        getPrototypeOf() {
          throw new Error('getPrototypeOf trap');
        },
        ownKeys() {
          throw new Error('ownKeys trap');
        },
        getOwnPropertyDescriptor() {
          throw new Error('getOwnPropertyDescriptor trap');
        },
        has() {
          throw new Error('has trap');
        },
      },
    ),
  'a symbol': () => Symbol('sym'),
  undefined: () => undefined,
};

/**
 * Runs one pass in which the first callback calls `first` and the second
 * records that it ran; the loop is stopped by a guard if that pass is lost.
 */
async function passWith(loop: BaseEventLoop, first: () => void): Promise<{ later: boolean; stillRunning: boolean }> {
  let later = false;
  loop.callSoon(first);
  loop.callSoon(() => {
    later = true;
  });
  loop.callSoon(() => loop.stop());
  const guard = setTimeout(() => loop.stop(), 2000);
  try {
    await loop.runForever();
  } finally {
    clearTimeout(guard);
  }
  // The loop still works afterwards.
  let again = false;
  loop.callSoon(() => {
    again = true;
    loop.stop();
  });
  await loop.runForever();
  return { later, stillRunning: again };
}

describe.each(LOOPS)('%s', (backend) => {
  useLoop(backend);
  function newLoop(): BaseEventLoop {
    const loop = loopNamed(backend);
    loops.push(loop);
    return loop;
  }

  it('T15: a throwing callSoon callback goes to the handler with {message, exception, handle}; the pass goes on', async () => {
    const loop = newLoop();
    const seen: ExceptionContext[] = [];
    loop.setExceptionHandler((_l, ctx) => {
      seen.push(ctx);
    });
    const exc = new Error('from a callback');
    const r = await passWith(loop, function thrower() {
      throw exc;
    });
    expect(r).toEqual({ later: true, stillRunning: true });
    expect(seen).toHaveLength(1);
    expect(seen[0].message).toMatch(/^Exception in callback <Handle thrower\(\)>/);
    expect(seen[0].exception).toBe(exc);
    expect(seen[0].handle?.toString()).toMatch(/thrower/);
    expect(uncaught).toEqual([]);
  }); // CPython test_base_events: test_run_once_in_executor... (call_soon + raise: test_default_exc_handler_callback)

  describe('a custom handler that throws', () => {
    it('is reported through the default handler as "Unhandled error in exception handler"', async () => {
      recordingLogger();
      const loop = newLoop();
      const handlerExc = new Error('handler failed');
      loop.setExceptionHandler(() => {
        throw handlerExc;
      });
      const r = await passWith(loop, () => {
        throw new Error('from a callback');
      });
      expect(r).toEqual({ later: true, stillRunning: true });
      expect(logged).toHaveLength(1);
      expect(logged[0]).toMatch(/^Unhandled error in exception handler\n/);
      expect(logged[0]).toMatch(/Error: handler failed/);
      expect(uncaught).toEqual([]);
    }); // CPython test_base_events: test_set_exc_handler_broken

    for (const [what, make] of Object.entries(NASTY)) {
      it(`throwing ${what}, with a JSON logger, escapes nowhere`, async () => {
        jsonLogger();
        const loop = newLoop();
        loop.setExceptionHandler(() => {
          throw make();
        });
        const r = await passWith(loop, () => {
          throw make();
        });
        expect(r).toEqual({ later: true, stillRunning: true });
        expect(uncaught).toEqual([]);
      });
    }

    it('and a logger that fails too: swallowed', async () => {
      brokenLogger();
      const loop = newLoop();
      loop.setExceptionHandler(() => {
        throw circular();
      });
      const r = await passWith(loop, () => {
        throw new Error('from a callback');
      });
      expect(r).toEqual({ later: true, stillRunning: true });
      expect(uncaught).toEqual([]);
    });
  });

  describe('the default handler with nasty values', () => {
    for (const [what, make] of Object.entries(NASTY)) {
      it(`${what} as the exception of a throwing callback, with a JSON logger`, async () => {
        jsonLogger();
        const loop = newLoop();
        const r = await passWith(loop, () => {
          throw make();
        });
        expect(r).toEqual({ later: true, stillRunning: true });
        expect(uncaught).toEqual([]);
        // Something was logged, whatever the value was.
        expect(logged.length).toBeGreaterThanOrEqual(1);
      });

      it(`${what} as a context value and as the exception, with the console logger`, async () => {
        recordingLogger();
        const loop = newLoop();
        const r = await passWith(loop, () => {
          loop.callExceptionHandler({ message: 'nasty context', exception: make(), extra: make() });
        });
        expect(r).toEqual({ later: true, stillRunning: true });
        expect(uncaught).toEqual([]);
        expect(logged).toHaveLength(1);
        expect(logged[0]).toMatch(/^nasty context\nextra: /);
      });

      it(`${what} as an argument of a throwing callback (its repr)`, async () => {
        recordingLogger();
        const loop = newLoop();
        const arg = make();
        let later = false;
        loop.callSoon((_a: unknown) => {
          throw new Error('with a nasty argument');
        }, arg);
        loop.callSoon(() => {
          later = true;
          loop.stop();
        });
        const guard = setTimeout(() => loop.stop(), 2000);
        await loop.runForever();
        clearTimeout(guard);
        expect(later).toBe(true);
        expect(uncaught).toEqual([]);
        expect(logged).toHaveLength(1);
        expect(logged[0]).toMatch(/^Exception in callback /);
      });
    }

    it('a logger that always fails: swallowed, the pass goes on', async () => {
      brokenLogger();
      const loop = newLoop();
      const r = await passWith(loop, () => {
        throw circular();
      });
      expect(r).toEqual({ later: true, stillRunning: true });
      expect(uncaught).toEqual([]);
    });

    it('a context whose properties throw: still logged', async () => {
      recordingLogger();
      const loop = newLoop();
      const context = { message: 'getter context' } as ExceptionContext;
      Object.defineProperty(context, 'bad', {
        enumerable: true,
        get() {
          throw circular();
        },
      });
      const r = await passWith(loop, () => loop.callExceptionHandler(context));
      expect(r).toEqual({ later: true, stillRunning: true });
      expect(uncaught).toEqual([]);
      expect(logged).toHaveLength(1);
      expect(logged[0]).toMatch(/^getter context\nbad: <unprintable: /);
    });
  });
});
