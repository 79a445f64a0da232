/**
 * Calls of the loops' default exception handler during the current test
 * (issue 8, Deliver 5: "the suites' afterEach should fail on unexpected
 * exception-handler calls"). test/setup.ts wraps
 * BaseEventLoop.prototype.defaultExceptionHandler to record here and fails
 * the test in afterEach when a call happened that the test did not opt into.
 *
 * A test that provokes the default handler on purpose says so:
 *
 *   expectExceptionHandlerCalls(/Task exception was never retrieved/);
 *   // ... afterEach fails unless at least one call's message matched
 *
 *   allowExceptionHandlerCalls(); // any number, including none
 */
import type { ExceptionContext } from '../../lib/index.js';

export interface HandlerCall {
  message: string;
  context: ExceptionContext;
}

interface State {
  calls: HandlerCall[];
  allowed: boolean;
  expected: (RegExp | string)[];
}

const state: State = { calls: [], allowed: false, expected: [] };

/** @internal For test/setup.ts. */
export function _handlerState(): State {
  return state;
}

/** @internal For test/setup.ts: forget the previous test's calls and opt-ins. */
export function _resetHandlerState(): void {
  state.calls = [];
  state.allowed = false;
  state.expected = [];
}

/** The default exception handler's calls so far in this test. */
export function exceptionHandlerCalls(): readonly HandlerCall[] {
  return state.calls;
}

/** This test may call the default exception handler any number of times. */
export function allowExceptionHandlerCalls(): void {
  state.allowed = true;
}

/**
 * This test calls the default exception handler on purpose: every call is
 * allowed, and afterEach fails unless, for each pattern given, some call's
 * message matches it (a string matches as a substring). With no pattern, at
 * least one call must happen.
 */
export function expectExceptionHandlerCalls(...patterns: (RegExp | string)[]): void {
  state.allowed = true;
  state.expected.push(...(patterns.length > 0 ? patterns : ['']));
}
