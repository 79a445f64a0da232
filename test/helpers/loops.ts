/**
 * THE list of event loops the suites run on (issue 9 item 6): one suite,
 * every loop, as uvloop's tests run one mixin on two loops and CPython's
 * test_events.py runs one on every selector.
 *
 * - selector × each backend `availableSelectors()` reports here (epoll,
 *   poll, select): `new SelectorEventLoop(new (selectorClass(name))())`;
 * - proactor × io_uring: `new ProactorEventLoop(new IoUringProactor())`,
 *   listed only when lib/index.ts exports both classes (looked up at run
 *   time, so this file works before and after the proactor lands) AND
 *   io_uring is usable here: `availableProactors()` lists it (where lib
 *   exports that), else a probe loop opens with `loop.backend === 'io_uring'`.
 *
 * Narrowing: `AIONODE_TEST_LOOPS=epoll,io_uring` keeps only the named loops
 * (comma-separated; unknown names are an error, known but unavailable ones
 * are reported and dropped). Documented in test/faults/README.md.
 *
 * Usage, around an existing body (no test body is duplicated):
 *
 *     describe.each(LOOPS)('streams on %s', (loop) => {
 *       useLoop(loop);               // newEventLoop()/run()/Runner make this loop
 *       beforeEach(() => { l = newLoop(loop); });
 *       selectorOnly(loop, 'reads the selector key table')('...', () => { ... });
 *     });
 *
 * Heavy suites (stress, fuzz) take `HEAVY_LOOPS` instead: epoll, io_uring
 * and poll (the select backend has the same readiness model as poll plus an
 * FD_SETSIZE cap, so it adds time, not coverage).
 */
import { afterAll, beforeAll, it } from 'vitest';
import * as aionode from '../../lib/index.js';
import * as events from '../../lib/events.js';

/**
 * What the suites hold. Typed as SelectorEventLoop: the public API both
 * families share (sock*, create*, addReader, `backend`, `nativeStats()`;
 * the proactor hosts its ring in the same NativeLoop a selector uses).
 * Selector internals (`_selector`) belong in selectorOnly() tests.
 */
export type TestLoop = aionode.SelectorEventLoop;
type BaseEventLoop = TestLoop;

/** A loop's kind: readiness (selector) or completion (proactor). */
export type LoopFamily = 'selector' | 'proactor';

/** One loop the suites run on. */
export interface LoopSpec {
  /** `'epoll'`, `'poll'`, `'select'` or `'io_uring'`; also `loop.backend`. */
  readonly name: string;
  readonly family: LoopFamily;
  /** A fresh, open loop (the caller closes it). */
  create(): BaseEventLoop;
}

/** Every loop name this file knows, in report order. */
export const KNOWN_LOOPS = ['epoll', 'poll', 'select', 'io_uring'] as const;

/** The order heavy suites pick from (see the module comment). */
const HEAVY_ORDER = ['epoll', 'io_uring', 'poll'];

interface ProactorExports {
  ProactorEventLoop?: new (proactor: unknown) => BaseEventLoop;
  IoUringProactor?: new () => unknown;
  availableProactors?: () => string[];
}

/** Loops known to this file but not usable here, with the reason. */
export const UNAVAILABLE_LOOPS: { name: string; reason: string }[] = [];

function selectorSpecs(): LoopSpec[] {
  return aionode.availableSelectors().map((name) => ({
    name,
    family: 'selector' as const,
    create: () => new aionode.SelectorEventLoop(new (aionode.selectorClass(name))()),
  }));
}

/**
 * The proactor loop, or null with the reason in UNAVAILABLE_LOOPS. The
 * lookup is by property on the module namespace, so it compiles and runs
 * whether or not lib/index.ts exports the proactor yet.
 */
function proactorSpec(): LoopSpec | null {
  const mod = aionode as unknown as ProactorExports;
  const Loop = mod.ProactorEventLoop;
  const Ring = mod.IoUringProactor;
  if (typeof Loop !== 'function' || typeof Ring !== 'function') {
    UNAVAILABLE_LOOPS.push({ name: 'io_uring', reason: 'lib/index.ts exports no ProactorEventLoop/IoUringProactor' });
    return null;
  }
  const create = (): BaseEventLoop => new Loop(new Ring());
  // Ask lib when it can tell (build + kernel probe, no loop made: a probe
  // loop would hold fds across the suites' fd baselines if closing it ever
  // leaked); else open and close one.
  if (typeof mod.availableProactors === 'function') {
    let have: string[];
    try {
      have = mod.availableProactors();
    } catch (e) {
      UNAVAILABLE_LOOPS.push({ name: 'io_uring', reason: `availableProactors() threw: ${(e as Error)?.message ?? String(e)}` });
      return null;
    }
    if (!have.includes('io_uring')) {
      UNAVAILABLE_LOOPS.push({ name: 'io_uring', reason: 'io_uring is not usable here (availableProactors() does not list it)' });
      return null;
    }
    return { name: 'io_uring', family: 'proactor', create };
  }
  let probe: BaseEventLoop | null = null;
  try {
    probe = create();
    const backend = (probe as unknown as { backend?: unknown }).backend;
    if (backend !== 'io_uring') {
      UNAVAILABLE_LOOPS.push({ name: 'io_uring', reason: `a ProactorEventLoop opened with backend ${String(backend)}` });
      return null;
    }
  } catch (e) {
    UNAVAILABLE_LOOPS.push({ name: 'io_uring', reason: `io_uring is not usable here: ${(e as Error)?.message ?? String(e)}` });
    return null;
  } finally {
    try {
      probe?.close();
    } catch {
      // A probe that cannot close is reported by the suites themselves.
    }
  }
  return { name: 'io_uring', family: 'proactor', create };
}

/** Applies AIONODE_TEST_LOOPS to the loops found here. */
function narrow(found: LoopSpec[], env: string | undefined): LoopSpec[] {
  if (env === undefined || env.trim() === '') return found;
  const wanted = env
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const unknown = wanted.filter((w) => !(KNOWN_LOOPS as readonly string[]).includes(w));
  if (unknown.length > 0) {
    throw new Error(
      `Expected "AIONODE_TEST_LOOPS" to list loops among ${KNOWN_LOOPS.join(', ')}, got ${JSON.stringify(env)} ` +
        `(unknown: ${unknown.join(', ')})`,
    );
  }
  for (const w of wanted) {
    if (!found.some((s) => s.name === w)) {
      const why = UNAVAILABLE_LOOPS.find((u) => u.name === w)?.reason ?? 'not compiled in';
      console.warn(`AIONODE_TEST_LOOPS: ${w} is not available here (${why}); skipped`);
    }
  }
  const kept = found.filter((s) => wanted.includes(s.name));
  if (kept.length === 0) {
    throw new Error(
      `AIONODE_TEST_LOOPS=${env} leaves no loop to run; available here: ${found.map((s) => s.name).join(', ')}`,
    );
  }
  return kept;
}

const ALL_SPECS: LoopSpec[] = [...selectorSpecs(), ...[proactorSpec()].filter((s): s is LoopSpec => s !== null)];

/** The loops of this run, after AIONODE_TEST_LOOPS. */
export const LOOP_SPECS: readonly LoopSpec[] = narrow(ALL_SPECS, process.env.AIONODE_TEST_LOOPS);

/** Their names, ready for `describe.each(LOOPS)('... on %s', (loop) => ...)`. */
export const LOOPS: readonly string[] = LOOP_SPECS.map((s) => s.name);

/** The selector loops of this run (selector-level suites: selectors, registration tables). */
export const SELECTOR_LOOPS: readonly string[] = LOOP_SPECS.filter((s) => s.family === 'selector').map((s) => s.name);

/**
 * The loops heavy suites (stress, fuzz, storms) run on: epoll, io_uring and
 * poll where present in this run, else the first loop of the run.
 */
export const HEAVY_LOOPS: readonly string[] = (() => {
  const heavy = LOOPS.filter((n) => HEAVY_ORDER.includes(n));
  return heavy.length > 0 ? heavy : LOOPS.slice(0, 1);
})();

/**
 * One loop per family, the first selector loop and the proactor (epoll and
 * io_uring here): for soaks whose subject does not depend on the readiness
 * backend (task memory, say), where each extra loop only adds minutes.
 */
export const FAMILY_LOOPS: readonly string[] = (['selector', 'proactor'] as const)
  .map((f) => LOOP_SPECS.find((s) => s.family === f)?.name)
  .filter((n): n is string => n !== undefined);

/** The spec of loop `name` (one of LOOPS). */
export function loopSpec(name: string): LoopSpec {
  const spec = LOOP_SPECS.find((s) => s.name === name);
  if (spec === undefined) {
    throw new Error(`Expected "loop" to be one of ${LOOPS.join(', ')} (this run), got ${JSON.stringify(name)}`);
  }
  return spec;
}

/** A fresh loop of kind `name` (one of LOOPS); the caller closes it. */
export function newLoop(name: string): BaseEventLoop {
  return loopSpec(name).create();
}

/** Whether loop `name` is a SelectorEventLoop (readiness-based). */
export function isSelectorLoop(name: string): boolean {
  return loopSpec(name).family === 'selector';
}

/**
 * `describe.each` rows for LOOPS × `cases`, the loop name first (a case that
 * is not an array counts as a one-element row):
 * `describe.each(eachLoop(KINDS))('[%s] Lock with %s tasks', (loop, kind, K) => ...)`.
 */
export function eachLoop<T>(
  cases: readonly T[],
  loops: readonly string[] = LOOPS,
): [string, ...(T extends readonly unknown[] ? T : [T])][] {
  type Row = [string, ...(T extends readonly unknown[] ? T : [T])];
  return loops.flatMap((loop) => cases.map((c) => (Array.isArray(c) ? [loop, ...c] : [loop, c]) as Row));
}

/** The defaults newEventLoop() falls back to outside useLoop(). */
const defaultFactory = (): BaseEventLoop => new aionode.EventLoop();

let current: string | null = null;

/** `_resetForcedLoop` where lib/events.ts has AIONODE_LOOP (looked up, not imported). */
function resetForcedLoop(): void {
  (events as unknown as { _resetForcedLoop?: () => void })._resetForcedLoop?.();
}

/**
 * For the enclosing describe: `newEventLoop()`, and so `run()`, `Runner`
 * and every helper built on them, make loop `name`. AIONODE_LOOP, which
 * would override the default factory, is set aside meanwhile. Restored
 * afterwards.
 */
export function useLoop(name: string): void {
  const spec = loopSpec(name);
  let savedEnv: string | undefined;
  beforeAll(() => {
    current = name;
    savedEnv = process.env.AIONODE_LOOP;
    delete process.env.AIONODE_LOOP;
    resetForcedLoop();
    events._setDefaultLoopFactory(spec.create);
  });
  afterAll(() => {
    current = null;
    if (savedEnv !== undefined) process.env.AIONODE_LOOP = savedEnv;
    resetForcedLoop();
    events._setDefaultLoopFactory(defaultFactory);
  });
}

/** The loop useLoop() selected for the running describe, or null. */
export function currentLoopName(): string | null {
  return current;
}

/**
 * `it` on selector loops; on the others the test is registered skipped,
 * with `reason` in its name so reports say why. Use it for tests that are
 * selector-specific by nature (selector internals, `addReader` on a
 * selector key, stale-registration purge, `nativeStats` timer sources):
 *
 *     selectorOnly(loop, 'counts selector keys')('purges stale keys', () => { ... });
 */
export function selectorOnly(loop: string, reason: string): TestFn {
  if (reason.trim() === '') throw new TypeError('selectorOnly: give the reason the test is selector-only');
  if (isSelectorLoop(loop)) return it as unknown as TestFn;
  return (name, ...rest) => (it.skip as unknown as TestFn)(`${name} [selector-only: ${reason}]`, ...rest);
}

/** `it`'s call shape: a name, then a body and/or options. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type TestFn = (name: string, ...rest: any[]) => void;

interface Internals {
  _selector?: { getMap(): Map<number, unknown> };
  _proactor?: { pending: number };
}

/**
 * What the loop still waits on: selector keys on a selector loop, ops in
 * flight (completion not yet delivered) on a proactor loop. 0 when idle.
 */
export function registrations(loop: aionode.BaseEventLoop): number {
  const l = loop as unknown as Internals;
  if (l._selector !== undefined) return l._selector.getMap().size;
  if (l._proactor !== undefined) return l._proactor.pending;
  throw new Error(`registrations: ${String(loop)} has neither a selector nor a proactor`);
}

/**
 * Whether the loop is waiting on `fd`: a selector key for it, or (proactor)
 * any op in flight; the tests that ask drive one socket at a time.
 */
export function watches(loop: aionode.BaseEventLoop, fd: number): boolean {
  const l = loop as unknown as Internals;
  if (l._selector !== undefined) return l._selector.getMap().has(fd);
  return registrations(loop) > 0;
}

/**
 * Whether the loop stopped waiting on `fd` after a cancel or close: checked
 * at once on a selector (unregistering is synchronous); on a proactor the
 * cancelled op ends when its completion arrives, so this waits for that,
 * up to `passes` short sleeps of the running loop.
 */
export async function stopsWatching(loop: aionode.BaseEventLoop, fd: number, passes = 200): Promise<boolean> {
  if ((loop as unknown as Internals)._selector !== undefined) return !watches(loop, fd);
  for (let i = 0; i < passes && watches(loop, fd); i++) await aionode.sleep(0.001);
  return !watches(loop, fd);
}
