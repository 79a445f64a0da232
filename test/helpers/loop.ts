/** Loop helpers shared by the suites (CPython's test_utils, trimmed). */
import { readdirSync } from 'node:fs';
import type { BaseEventLoop } from '../../lib/index.js';

/**
 * Runs the loop for `passes` iterations and returns (test_utils.run_briefly):
 * a callback that stops the loop is queued `passes - 1` passes deep.
 */
export async function runBriefly(loop: BaseEventLoop, passes = 2): Promise<void> {
  let left = passes;
  const step = (): void => {
    if (--left <= 0) loop.stop();
    else loop.callSoon(step);
  };
  loop.callSoon(step);
  await loop.runForever();
}

/** Runs the loop until `cond()` holds, for at most `timeout` seconds. */
export async function runUntil(loop: BaseEventLoop, cond: () => boolean, timeout = 5): Promise<void> {
  const deadline = loop.time() + timeout;
  const check = (): void => {
    if (cond() || loop.time() > deadline) loop.stop();
    else loop.callLater(0.001, check);
  };
  loop.callSoon(check);
  await loop.runForever();
  if (!cond()) throw new Error(`runUntil: condition not met within ${timeout}s`);
}

/** Number of open fds of this process (Linux). */
export function fdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

/** Percentile (0..100) of a sorted numeric array, nearest rank. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}
