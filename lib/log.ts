/**
 * The package logger (asyncio's `logging.getLogger('asyncio')`).
 *
 * Port of CPython Lib/asyncio/log.py (3.14). Replace its methods (or spy on
 * them in tests) to route messages elsewhere; by default they go to the
 * console's stderr methods.
 */
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
