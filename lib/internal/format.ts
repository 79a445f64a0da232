/**
 * Helpers for object representations in messages.
 *
 * Port of CPython Lib/asyncio/format_helpers.py (3.14), trimmed to what JS
 * can tell about a callable.
 */
import { inspect } from 'node:util';

/** `name(arg, ...)` for a callback and its arguments, as asyncio's reprs show. */
export function formatCallback(cb: Function, args: readonly unknown[]): string {
  const name = cb.name || '<anonymous>';
  const shown = args.map(showArg).join(', ');
  return `${name}(${shown})`;
}

/** One argument for a repr: never throws (a hostile inspect.custom or Proxy). */
function showArg(a: unknown): string {
  try {
    return inspect(a, { depth: 0, breakLength: Infinity });
  } catch {
    return '<unprintable>';
  }
}
