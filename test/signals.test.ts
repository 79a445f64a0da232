/**
 * Tests for loop.addSignalHandler / removeSignalHandler (lib/signals.ts).
 *
 * Ported from CPython 3.14 Lib/test/test_asyncio/test_unix_events.py
 * (SelectorEventLoopSignalTests), with real signals instead of mocks of
 * the signal module: this process sends itself SIGUSR1/SIGUSR2/SIGHUP
 * while our handler is installed, so nothing reaches a default action.
 * Cases that end a process (a default action restored, SIGTERM shutting a
 * server down) run in a child (test/fixtures/signals/child.cjs).
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RuntimeError, Runner, getRunningLoop, sleep, type SelectorEventLoop } from '../lib/index.js';
import { currentLoopName, LOOPS, newLoop, useLoop } from './helpers/loops.js';

const fixture = path.join(__dirname, 'fixtures', 'signals', 'child.cjs');

function child(scenario: string): { lines: string[]; status: number | null; signal: NodeJS.Signals | null } {
  const env = { ...process.env, AIONODE_LOOP: currentLoopName() ?? '' };
  const r = spawnSync(process.execPath, [fixture, scenario], { encoding: 'utf8', timeout: 15_000, env });
  if (r.error !== undefined) throw r.error;
  return { lines: r.stdout.split('\n').filter((l) => l !== ''), status: r.status, signal: r.signal };
}

/** Runs the loop until `pred()` holds or `seconds` pass. */
async function until(loop: SelectorEventLoop, pred: () => boolean, seconds = 5): Promise<void> {
  await loop.runUntilComplete(
    (function* () {
      const end = loop.time() + seconds;
      while (!pred() && loop.time() < end) yield* sleep(0.005);
    })(),
  );
}

describe.each(LOOPS)('signal handlers on %s', (name) => {
  useLoop(name);
  let loop: SelectorEventLoop;
  const baseline = { SIGUSR1: 0, SIGUSR2: 0, SIGHUP: 0 };
  beforeEach(() => {
    loop = newLoop(name);
    for (const s of Object.keys(baseline) as (keyof typeof baseline)[]) baseline[s] = process.listenerCount(s);
  });
  afterEach(() => {
    loop.close();
    // close() removes every handler it installed: no listener is left behind.
    for (const s of Object.keys(baseline) as (keyof typeof baseline)[]) expect(process.listenerCount(s)).toBe(baseline[s]);
  });

  it('runs the callback on the loop, with its arguments, as an ordinary handle', async () => {
    const seen: unknown[] = [];
    loop.addSignalHandler('SIGUSR1', (a: number, b: string) => seen.push([a, b, loop.isRunning()]), 1, 'x');
    process.kill(process.pid, 'SIGUSR1');
    await until(loop, () => seen.length > 0);
    expect(seen).toEqual([[1, 'x', true]]);
  }); // CPython test_unix_events: test_add_signal_handler

  it('accepts a number and a name for the same signal', async () => {
    const seen: string[] = [];
    loop.addSignalHandler(12, () => seen.push('num')); // SIGUSR2 on Linux
    expect(loop.removeSignalHandler('SIGUSR2')).toBe(true);
    loop.addSignalHandler('SIGUSR2', () => seen.push('name'));
    process.kill(process.pid, 'SIGUSR2');
    await until(loop, () => seen.length > 0);
    expect(seen).toEqual(['name']);
    expect(loop.removeSignalHandler(12)).toBe(true);
  });

  it('a second add replaces the callback and keeps one process listener', async () => {
    const seen: string[] = [];
    loop.addSignalHandler('SIGHUP', () => seen.push('first'));
    loop.addSignalHandler('SIGHUP', () => seen.push('second'));
    expect(process.listenerCount('SIGHUP')).toBe(baseline.SIGHUP + 1);
    process.kill(process.pid, 'SIGHUP');
    await until(loop, () => seen.length > 0);
    expect(seen).toEqual(['second']);
  });

  it('removeSignalHandler returns true once, then false', () => {
    loop.addSignalHandler('SIGUSR1', () => {});
    expect(process.listenerCount('SIGUSR1')).toBe(baseline.SIGUSR1 + 1);
    expect(loop.removeSignalHandler('SIGUSR1')).toBe(true);
    expect(process.listenerCount('SIGUSR1')).toBe(baseline.SIGUSR1);
    expect(loop.removeSignalHandler('SIGUSR1')).toBe(false);
  }); // CPython test_unix_events: test_remove_signal_handler

  it('a signal received while the loop is stopped runs when it runs again', async () => {
    const seen: number[] = [];
    loop.addSignalHandler('SIGUSR2', () => seen.push(1));
    process.kill(process.pid, 'SIGUSR2');
    // Let Node deliver it to the listener while our loop is not running.
    await new Promise((r) => setTimeout(r, 50));
    expect(seen).toEqual([]);
    await until(loop, () => seen.length > 0);
    expect(seen).toEqual([1]);
  });

  it('an exception in the callback goes to the exception handler; the handler stays', async () => {
    const calls: { exception?: unknown }[] = [];
    loop.setExceptionHandler((_l, ctx) => calls.push(ctx));
    let n = 0;
    loop.addSignalHandler('SIGUSR1', () => {
      n++;
      throw new Error('boom');
    });
    process.kill(process.pid, 'SIGUSR1');
    await until(loop, () => n === 1 && calls.length === 1);
    expect(calls[0].exception).toBeInstanceOf(Error);
    expect((calls[0].exception as Error).message).toBe('boom');
    process.kill(process.pid, 'SIGUSR1');
    await until(loop, () => n === 2);
    expect(n).toBe(2);
  });

  it('1,000 rapid SIGUSR2: the process lives, ours and a process.on listener both run for each delivery', async () => {
    let ours = 0;
    let theirs = 0;
    const listener = (): void => {
      theirs++;
    };
    process.on('SIGUSR2', listener);
    try {
      loop.addSignalHandler('SIGUSR2', () => ours++);
      await loop.runUntilComplete(
        (function* () {
          for (let i = 0; i < 1000; i++) {
            process.kill(process.pid, 'SIGUSR2');
            if (i % 10 === 9) yield* sleep(0.001);
          }
        })(),
      );
      // Each delivery Node observes calls both listeners; ours then runs
      // as a handle on the loop. Identical pending signals coalesce.
      await until(loop, () => theirs > 0 && ours === theirs, 5);
      expect(theirs).toBeGreaterThan(0);
      expect(theirs).toBeLessThanOrEqual(1000);
      expect(ours).toBe(theirs);
    } finally {
      process.removeListener('SIGUSR2', listener);
    }
  });

  it('removing ours leaves a process.on listener in place', async () => {
    let theirs = 0;
    const listener = (): void => {
      theirs++;
    };
    process.on('SIGHUP', listener);
    try {
      loop.addSignalHandler('SIGHUP', () => {});
      expect(loop.removeSignalHandler('SIGHUP')).toBe(true);
      expect(process.listeners('SIGHUP')).toContain(listener);
      process.kill(process.pid, 'SIGHUP');
      await new Promise((r) => setTimeout(r, 50));
      expect(theirs).toBe(1);
    } finally {
      process.removeListener('SIGHUP', listener);
    }
  });

  it('SIGKILL and SIGSTOP cannot be caught: RuntimeError', () => {
    expect(() => loop.addSignalHandler('SIGKILL', () => {})).toThrow(new RuntimeError('sig 9 cannot be caught'));
    expect(() => loop.addSignalHandler(19, () => {})).toThrow(new RuntimeError('sig 19 cannot be caught'));
    expect(process.listenerCount('SIGKILL')).toBe(0);
  }); // CPython test_unix_events: test_add_signal_handler_install_error

  it('bad signals: TypeError for the type or an unknown name, RangeError for a number out of range', () => {
    const cb = (): void => {};
    expect(() => loop.addSignalHandler('SIGNOPE' as NodeJS.Signals, cb)).toThrow(TypeError);
    expect(() => loop.addSignalHandler('SIGNOPE' as NodeJS.Signals, cb)).toThrow(/sig.*SIGNOPE/);
    expect(() => loop.addSignalHandler('1' as NodeJS.Signals, cb)).toThrow(TypeError);
    expect(() => loop.addSignalHandler(1.5, cb)).toThrow(TypeError);
    expect(() => loop.addSignalHandler(null as unknown as number, cb)).toThrow(TypeError);
    expect(() => loop.addSignalHandler(0, cb)).toThrow(RangeError);
    expect(() => loop.addSignalHandler(65, cb)).toThrow(/invalid signal number 65/);
    expect(() => loop.removeSignalHandler(-1)).toThrow(RangeError);
    expect(() => loop.removeSignalHandler({} as unknown as number)).toThrow(TypeError);
  }); // CPython test_unix_events: test_check_signal

  it('a real-time signal Node cannot name is refused with RuntimeError', () => {
    expect(() => loop.addSignalHandler(40, () => {})).toThrow(RuntimeError);
    expect(() => loop.addSignalHandler(40, () => {})).toThrow(/sig 40 cannot be caught/);
  });

  it('a coroutine function or a non-function callback is a TypeError', () => {
    expect(() => loop.addSignalHandler('SIGUSR1', async () => {})).toThrow(new TypeError('coroutines cannot be used with addSignalHandler()'));
    expect(() => loop.addSignalHandler('SIGUSR1', 'nope' as unknown as () => void)).toThrow('a callable object was expected by addSignalHandler(), got "nope"');
    expect(process.listenerCount('SIGUSR1')).toBe(baseline.SIGUSR1);
  }); // CPython test_unix_events: test_add_signal_handler_coroutine_error

  it('close() removes every handler; a closed loop refuses new ones', () => {
    loop.addSignalHandler('SIGUSR1', () => {});
    loop.addSignalHandler('SIGHUP', () => {});
    loop.close();
    expect(process.listenerCount('SIGUSR1')).toBe(baseline.SIGUSR1);
    expect(process.listenerCount('SIGHUP')).toBe(baseline.SIGHUP);
    expect(() => loop.addSignalHandler('SIGUSR1', () => {})).toThrow(new RuntimeError('Event loop is closed'));
  }); // CPython test_unix_events: test_close

  it('removing the last handler restores the default action (child process)', () => {
    const r = child('restore-default');
    expect(r.lines).toEqual(['handled SIGTERM', 'removed true']);
    expect(r.signal).toBe('SIGTERM');
  }); // CPython test_unix_events: test_remove_signal_handler_2

  it('graceful shutdown on SIGTERM: the handler stops a server and run() returns (child process)', () => {
    const r = child('graceful');
    expect(r.lines).toEqual(['serving', 'SIGTERM: closing', 'closed', 'exit 0']);
    expect(r.status).toBe(0);
  });
});

describe.each(LOOPS)('the runner and SIGINT on %s', (name) => {
  useLoop(name);

  it("Runner.run() installs a SIGINT handler for its main task and removes it after, but not one main installed", async () => {
    const runner = new Runner();
    try {
      const before = process.listenerCount('SIGINT');
      const seen = await runner.run(async () => process.listenerCount('SIGINT') - before);
      expect(seen).toBe(1);
      expect(process.listenerCount('SIGINT')).toBe(before);
      const mine = (): void => {};
      await runner.run(async () => {
        getRunningLoop().addSignalHandler('SIGINT', mine);
      });
      const loop = runner.getLoop() as SelectorEventLoop;
      expect(loop._signalCallback('SIGINT')).toBe(mine);
      expect(process.listenerCount('SIGINT')).toBe(before + 1);
    } finally {
      await runner.close();
    }
    expect(process.listenerCount('SIGINT')).toBe(0);
  }); // CPython runners.py Runner.run: restores the SIGINT handler only if it is still its own
});

describe('signal handlers outside the main thread', () => {
  it('addSignalHandler in a worker thread is a RuntimeError', async () => {
    const code = `
      const { parentPort } = require('node:worker_threads');
      const aionode = require(${JSON.stringify(path.join(__dirname, '..', 'dist', 'lib', 'index.js'))});
      const loop = aionode.newEventLoop();
      try { loop.addSignalHandler('SIGUSR1', () => {}); parentPort.postMessage('no error'); }
      catch (e) { parentPort.postMessage(e.name + ': ' + e.message); }
      finally { loop.close(); }`;
    const w = new Worker(code, { eval: true });
    const msg = await new Promise((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    });
    await w.terminate();
    expect(msg).toBe('RuntimeError: addSignalHandler() works only in the main thread: Node.js delivers signals to the main thread only');
  });
});
