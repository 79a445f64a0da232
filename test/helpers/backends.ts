/** The selector backends compiled in and usable on this machine, best first. */
import { availableSelectors, selectorClass, SelectorEventLoop } from '../../lib/index.js';

export function availableBackends(): string[] {
  return availableSelectors();
}

/** A SelectorEventLoop on the named backend. */
export function loopOn(name: string): SelectorEventLoop {
  return new SelectorEventLoop(new (selectorClass(name))());
}
