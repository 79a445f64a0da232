/**
 * The package logger (asyncio's `logging.getLogger('asyncio')`).
 *
 * Port of CPython Lib/asyncio/log.py (3.14). Replace its methods (or spy on
 * them in tests) to route messages elsewhere; by default they go to the
 * console's stderr methods.
 */
import { inspect } from 'node:util';

export const logger = {
  debug(message: string, ...rest: unknown[]): void {
    if (process.env.AIONODE_LOG_DEBUG) console.debug(message, ...rest);
  },
  info(message: string, ...rest: unknown[]): void {
    console.info(message, ...rest);
  },
  warning(message: string, ...rest: unknown[]): void {
    console.warn(message, ...rest);
  },
  error(message: string, ...rest: unknown[]): void {
    console.error(message, ...rest);
  },
};

/**
 * @internal `String(value)`, else its `inspect()`, else a placeholder. Never
 * throws: what the loop logs about a failure must not fail itself.
 */
export function showValue(value: unknown): string {
  try {
    return String(value);
  } catch {
    // Objects with a throwing toString, null-prototype objects.
  }
  try {
    return inspect(value, { depth: 1, breakLength: Infinity });
  } catch (exc) {
    let why = 'it threw';
    try {
      why = `it threw ${exc instanceof Error ? exc.name : typeof exc}`;
    } catch {
      // A Proxy exception: keep the generic reason.
    }
    return `<unprintable ${typeof value}: ${why}>`;
  }
}

/** @internal An exception's stack (which includes its message), else showValue(): never throws. */
export function showException(exc: unknown): string {
  try {
    const stack = (exc as { stack?: unknown } | null)?.stack;
    if (typeof stack === 'string') return stack;
  } catch {
    // A throwing `stack` getter or Proxy trap: fall back to the value.
  }
  return showValue(exc);
}

/**
 * @internal logger.error(message) that never throws. Python's logging
 * never raises out of logger.error (its handlers report their own failures
 * to stderr); ours is user-replaceable, and the callers (the exception
 * handler's last resort, promise reactions) have nowhere to send an error.
 */
export function logErrorSafely(message: string): void {
  try {
    logger.error(message);
  } catch {
    // Nowhere left to report it.
  }
}
