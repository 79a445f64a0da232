/**
 * Shared helpers of the fault suite (test/faults/): the list of loops every
 * fault test runs on, exact callback counters (Node's common.mustCall),
 * fd accounting, a per-test harness with the teardown invariants, and
 * child-process runners for tests that need their own rlimits or a clean
 * process.
 *
 * Teardown invariants checked by `faultHarness()` after every test:
 *  - the loop closes (after letting already scheduled callbacks run);
 *  - no exception-handler call the test did not expect (a test that
 *    expects some takes them out of `h.errors` itself);
 *  - every mustCall counter hit its exact count;
 *  - the /proc/self/fd count is back at its beforeEach baseline.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { fstatSync, mkdtempSync, openSync, closeSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, expect } from 'vitest';
import type { ExceptionContext } from '../../lib/index.js';
import { HEAVY_LOOPS, LOOPS, newLoop, useLoop, type TestLoop } from './loops.js';
import { fdCount } from './loop.js';
import { drainAndClose, fdTable, fdsOpenedSince, settleFds } from './net.js';

/** AIONODE_TEST_TIMEOUT_MULTIPLIER (×3 under ASan, ×10 under valgrind). */
export const MULT = Number(process.env.AIONODE_TEST_TIMEOUT_MULTIPLIER ?? '1') || 1;

/** Milliseconds scaled by the timeout multiplier. */
export const ms = (n: number): number => n * MULT;

/**
 * Under AddressSanitizer (the sanitizer pass of `npm test` preloads
 * libasan) freed memory sits in ASan's quarantine, so RSS says nothing
 * about leaks there; heap, external memory and fd checks still hold.
 */
export const SANITIZED = /libasan/.test(process.env.LD_PRELOAD ?? '');

/** An RSS growth bound in MiB, lifted under a sanitizer (see SANITIZED). */
export const rssBoundMiB = (n: number): number => (SANITIZED ? Infinity : n);

export const KiB = 1024;
export const MiB = 1024 * KiB;

/** One loop the fault suite runs on: a name for the report and a factory. */
export interface LoopKind {
  readonly name: string;
  make(): TestLoop;
}

/**
 * Every loop a fault test runs on: the loops of test/helpers/loops.ts (the
 * selector backends epoll, poll, select, and the io_uring proactor where it
 * is available; AIONODE_TEST_LOOPS narrows them). With `{ heavy: true }`,
 * only HEAVY_LOOPS (epoll, io_uring, poll): for storms, soaks and timing
 * suites, where select adds minutes, not coverage.
 */
export function loopKinds(opts: { heavy?: boolean } = {}): LoopKind[] {
  return (opts.heavy === true ? HEAVY_LOOPS : LOOPS).map((name) => ({
    name,
    make: () => newLoop(name),
    toString: () => name,
  }));
}

/** Exact callback counting, as Node's common.mustCall / mustNotCall. */
export class Calls {
  readonly #checks: { name: string; want: number | [number, number]; got: () => number }[] = [];

  /** Wraps `fn`; at check time it must have run exactly `n` times. */
  mustCall<A extends unknown[], R>(name: string, fn: (...a: A) => R, n = 1): (...a: A) => R {
    let got = 0;
    this.#checks.push({ name, want: n, got: () => got });
    return (...a: A) => {
      got++;
      return fn(...a);
    };
  }

  /** Wraps `fn`; at check time it must have run between `lo` and `hi` times. */
  mustCallRange<A extends unknown[], R>(name: string, fn: (...a: A) => R, lo: number, hi: number): (...a: A) => R {
    let got = 0;
    this.#checks.push({ name, want: [lo, hi], got: () => got });
    return (...a: A) => {
      got++;
      return fn(...a);
    };
  }

  mustNotCall(name: string): (...a: unknown[]) => never {
    return this.mustCall(
      name,
      () => {
        throw new Error(`${name} must not be called`);
      },
      0,
    ) as (...a: unknown[]) => never;
  }

  /** Lines for every counter that is off. */
  violations(): string[] {
    const out: string[] = [];
    for (const c of this.#checks) {
      const got = c.got();
      const ok = Array.isArray(c.want) ? got >= c.want[0] && got <= c.want[1] : got === c.want;
      if (!ok) out.push(`${c.name}: called ${got} times, expected ${Array.isArray(c.want) ? c.want.join('..') : c.want}`);
    }
    return out;
  }
}

/** What a fault test sees of its harness (fields are reset before each test). */
export interface FaultHarness {
  loop: TestLoop;
  /** Exception-handler calls; must be empty at teardown (splice out the expected ones). */
  errors: ExceptionContext[];
  calls: Calls;
  fdsBefore: number;
  /** Runs `body` as a task on the loop until it completes. */
  run<T>(body: () => Promise<T>): Promise<T>;
  /** Extra teardown steps (closing servers, killing children), run before the invariants. */
  defer(fn: () => unknown): void;
}

/**
 * beforeEach/afterEach for one `describe.each(loopKinds())` block: a fresh
 * loop per test, an exception handler that records, and the teardown
 * invariants listed at the top of this file.
 */
export function faultHarness(kind: LoopKind, opts: { fdSettleMs?: number } = {}): FaultHarness {
  const h = {} as FaultHarness & { _deferred: (() => unknown)[]; _table: Map<string, string> };
  // run(), newEventLoop() and Runner inside the tests make this kind too.
  useLoop(kind.name);
  beforeEach(() => {
    h.fdsBefore = fdCount();
    h._table = fdTable();
    h.loop = kind.make();
    h.errors = [];
    h.calls = new Calls();
    h._deferred = [];
    h.loop.setExceptionHandler((_l, ctx) => h.errors.push(ctx));
    h.run = <T>(body: () => Promise<T>) => h.loop.runUntilComplete(body) as Promise<T>;
    h.defer = (fn) => h._deferred.push(fn);
  });
  afterEach(async () => {
    for (const fn of h._deferred.reverse()) {
      try {
        await fn();
      } catch {
        // Teardown of something the test already closed.
      }
    }
    await drainAndClose(h.loop);
    expect(h.loop.isClosed()).toBe(true);
    expect(h.errors.map((e) => `${e.message}: ${String(e.exception)}`), 'unexpected exception-handler calls').toEqual([]);
    expect(h.calls.violations()).toEqual([]);
    const n = await settleFds(h.fdsBefore, opts.fdSettleMs ?? 3000);
    expect(n, `fds leaked: ${fdsOpenedSince(h._table).join(', ')}`).toBe(h.fdsBefore);
  });
  return h;
}

/** Number of open fds of this process (Linux /proc/self/fd). */
export { fdCount };

/**
 * Opens `n` fds on one private temp file and returns a checker: every fd
 * must still be open on that same file (same dev/ino). A double close by
 * the code under test would have closed one of them (EBADF) or, after
 * reuse of the number, left it pointing at a socket (other ino).
 */
export function openSentinels(n: number): { fds: number[]; check(): string[]; close(): void } {
  const dir = mkdtempSync(path.join(tmpdir(), 'aionode-sentinel-'));
  const file = path.join(dir, 'sentinel');
  writeFileSync(file, 'sentinel');
  const fds: number[] = [];
  for (let i = 0; i < n; i++) fds.push(openSync(file, 'r'));
  const { ino, dev } = fstatSync(fds[0]);
  return {
    fds,
    check(): string[] {
      const bad: string[] = [];
      for (const fd of fds) {
        try {
          const st = fstatSync(fd);
          if (st.ino !== ino || st.dev !== dev) bad.push(`fd ${fd} now points at another file (ino ${st.ino})`);
        } catch (e) {
          bad.push(`fd ${fd}: ${(e as NodeJS.ErrnoException).code}`);
        }
      }
      return bad;
    },
    close(): void {
      for (const fd of fds) {
        try {
          closeSync(fd);
        } catch {
          // Reported by check().
        }
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Whether an executable is on PATH (e.g. `prlimit` from util-linux). */
export function which(cmd: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    const p = path.join(dir, cmd);
    if (dir !== '' && existsSync(p)) return p;
  }
  return null;
}

/** Absolute path of a fault fixture script. */
export function fixture(name: string): string {
  return path.resolve(__dirname, '..', 'fixtures', 'faults', name);
}

/** The repository root (children import dist/lib/index.js from there). */
export const ROOT = path.resolve(__dirname, '..', '..');

/** Result of a child run. */
export interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/**
 * Runs `cmd args` to completion, killed (SIGKILL) after `timeoutMs`.
 * Never rejects: the caller asserts on the result.
 */
export function runChild(cmd: string, args: string[], timeoutMs: number, options: SpawnOptions = {}): Promise<ChildResult> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
  });
}

/**
 * A long-running child that talks JSON lines on stdout: `next()` resolves
 * with the next parsed line (bounded by `timeoutMs`); `kill()` ends it.
 */
export class JsonChild {
  readonly proc: ChildProcess;
  stderr = '';
  #lines: unknown[] = [];
  #waiters: ((v: unknown) => void)[] = [];
  #buf = '';
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(cmd: string, args: string[], options: SpawnOptions = {}) {
    this.proc = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], ...options });
    this.proc.stdout!.on('data', (d: Buffer) => {
      this.#buf += d.toString();
      let i: number;
      while ((i = this.#buf.indexOf('\n')) >= 0) {
        const line = this.#buf.slice(0, i);
        this.#buf = this.#buf.slice(i + 1);
        let v: unknown;
        try {
          v = JSON.parse(line);
        } catch {
          v = { raw: line };
        }
        const w = this.#waiters.shift();
        if (w) w(v);
        else this.#lines.push(v);
      }
    });
    this.proc.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((resolve) => this.proc.on('close', (code, signal) => resolve({ code, signal })));
  }

  /** The next JSON line from the child. */
  next<T = any>(timeoutMs: number): Promise<T> {
    if (this.#lines.length > 0) return Promise.resolve(this.#lines.shift() as T);
    return new Promise<T>((resolve, reject) => {
      const t = setTimeout(() => {
        this.#waiters.splice(this.#waiters.indexOf(w), 1);
        reject(new Error(`child said nothing for ${timeoutMs} ms; stderr: ${this.stderr.slice(-2000)}`));
      }, timeoutMs);
      const w = (v: unknown): void => {
        clearTimeout(t);
        resolve(v as T);
      };
      this.#waiters.push(w);
    });
  }

  /** Sends one line to the child's stdin (a string as is, anything else as JSON). */
  send(msg: unknown): void {
    this.proc.stdin!.write((typeof msg === 'string' ? msg : JSON.stringify(msg)) + '\n');
  }

  kill(): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
  }
}

/** Forces two full GCs (needs --expose-gc, which vitest.config.mts passes). */
export function gcTwice(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('run with --expose-gc');
  gc();
  gc();
}

/** A deterministic PRNG (LCG) with its seed, printed by tests that use it. */
export function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}
