/**
 * The older per-selector API, now a view of test/helpers/loops.ts (the one
 * list of loops). Loop-level suites use `LOOPS`/`newLoop` from there; this
 * file stays for selector-level call sites.
 */
import { newLoop, SELECTOR_LOOPS, type TestLoop } from './loops.js';

/** The selector backends compiled in and usable on this machine (after AIONODE_TEST_LOOPS), best first. */
export function availableBackends(): string[] {
  return [...SELECTOR_LOOPS];
}

/** A fresh loop of kind `name` (any name of loops.ts: a selector backend or io_uring). */
export function loopOn(name: string): TestLoop {
  return newLoop(name);
}
