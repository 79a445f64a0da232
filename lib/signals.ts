/**
 * Unix signal handlers on the loop: `addSignalHandler` /
 * `removeSignalHandler`.
 *
 * Port of CPython Lib/asyncio/unix_events.py (3.14), the signal part of
 * _UnixSelectorEventLoop.
 *
 * Why on top of `process.on(signal)` and not a signalfd or our own
 * `sigaction`: Node already owns the process's signal dispositions (libuv
 * installs one handler per signal and fans it out through a self-pipe to
 * every `uv_signal_t`). A second owner would steal signals from Node's
 * listeners or lose them when Node re-installs its handler. Riding on
 * Node's listener gives asyncio's contract — the callback runs later, on
 * the loop, as an ordinary handle — and keeps both worlds working: a
 * `process.on` listener and ours each run for every signal Node observes,
 * and removing ours restores whatever Node does without it (the default
 * action when no listener is left). Coalescing is the kernel's: two
 * identical signals that arrive before either is handled are one.
 */
import { constants } from 'node:os';
import { isMainThread } from 'node:worker_threads';
import { describeArg, RuntimeError } from './exceptions.js';
import { Handle } from './events.js';
import type { AbstractEventLoop } from './events.js';

/** A signal as the API accepts it: a number (`15`) or a name (`'SIGTERM'`). */
export type SignalLike = number | NodeJS.Signals;

// Linux's NSIG - 1; the real-time signals (32..64) have no Node name.
const MAX_SIGNAL = 64;

const numberToName = new Map<number, NodeJS.Signals>();
for (const [name, num] of Object.entries(constants.signals) as [NodeJS.Signals, number][]) {
  // Aliases (SIGIOT = SIGABRT, SIGPOLL = SIGIO) keep the first, canonical name.
  if (!numberToName.has(num)) numberToName.set(num, name);
}

/**
 * The signal's number and Node's name for it. asyncio's checks, with its
 * ValueError as RangeError (a number out of range) or TypeError (an
 * unknown name), as everywhere in aionode; a real signal that
 * cannot be caught (SIGKILL, SIGSTOP, the real-time range Node cannot
 * name) is a RuntimeError, raised where the handler is installed.
 */
export function checkSignal(sig: unknown, method: string): { num: number; name: NodeJS.Signals | undefined } {
  if (typeof sig === 'string') {
    const num = (constants.signals as Record<string, number>)[sig];
    if (num === undefined) throw new TypeError(`${method}(): ${describeArg('sig', 'a signal number or a name such as "SIGTERM"', sig)}: no such signal`);
    return { num, name: numberToName.get(num) };
  }
  if (typeof sig !== 'number' || !Number.isInteger(sig)) {
    throw new TypeError(`${method}(): ${describeArg('sig', 'an integer signal number or a signal name', sig)}`);
  }
  if (sig < 1 || sig > MAX_SIGNAL) throw new RangeError(`${method}(): invalid signal number ${sig} (expected 1..${MAX_SIGNAL})`);
  return { num: sig, name: numberToName.get(sig) };
}

interface Entry {
  handle: Handle;
  readonly name: NodeJS.Signals;
  readonly listener: () => void;
}

/** One loop's signal handlers (the `_signal_handlers` dict of unix_events.py). */
export class SignalHandlers {
  readonly #loop: AbstractEventLoop;
  readonly #entries = new Map<number, Entry>();

  constructor(loop: AbstractEventLoop) {
    this.#loop = loop;
  }

  get size(): number {
    return this.#entries.size;
  }

  add(sig: unknown, callback: (...args: any[]) => unknown, args: unknown[]): void {
    const { num, name } = checkSignal(sig, 'addSignalHandler');
    // Python raises this from signal.set_wakeup_fd(); Node silently never
    // delivers a signal to a worker's process.on, which would be worse.
    if (!isMainThread) throw new RuntimeError('addSignalHandler() works only in the main thread: Node.js delivers signals to the main thread only');
    if (name === undefined) throw new RuntimeError(`sig ${num} cannot be caught: Node.js cannot listen for real-time signals`);
    const handle = new Handle(callback, args, this.#loop, undefined);
    const existing = this.#entries.get(num);
    if (existing !== undefined) {
      existing.handle = handle;
      return;
    }
    const entry: Entry = { handle, name, listener: () => this.#deliver(num) };
    try {
      process.on(name, entry.listener);
    } catch (exc) {
      // Node refuses SIGKILL and SIGSTOP with EINVAL, as sigaction does.
      if ((exc as NodeJS.ErrnoException).code === 'EINVAL') throw new RuntimeError(`sig ${num} cannot be caught`);
      throw exc;
    }
    this.#entries.set(num, entry);
  }

  remove(sig: unknown): boolean {
    const { num } = checkSignal(sig, 'removeSignalHandler');
    const entry = this.#entries.get(num);
    if (entry === undefined) return false;
    this.#entries.delete(num);
    process.removeListener(entry.name, entry.listener);
    return true;
  }

  /** The callback installed for `sig`, or null. */
  callback(sig: unknown): ((...args: any[]) => unknown) | null {
    return this.#entries.get(checkSignal(sig, 'signalCallback').num)?.handle._callback ?? null;
  }

  /** Removes every handler (the loop is closing). */
  clear(): void {
    for (const num of [...this.#entries.keys()]) this.remove(num);
  }

  #deliver(num: number): void {
    const entry = this.#entries.get(num);
    if (entry === undefined) return;
    // asyncio's _handle_signal: a cancelled handle uninstalls itself.
    if (entry.handle.cancelled()) {
      this.remove(num);
      return;
    }
    if (this.#loop.isClosed()) return;
    this.#loop._addReady(entry.handle);
  }
}
