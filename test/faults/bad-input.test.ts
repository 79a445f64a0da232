/**
 * Bad input everywhere (issue 8, Deliver 3; reliability.md F9, T17).
 *
 * Every public function and method is called with wrong types, NaN,
 * ±Infinity, negative and huge numbers, empty and NUL-byte strings, closed
 * and non-socket fds (a regular file, a FIFO) and objects whose fileno()
 * returns garbage. Each call must end, within a bound, in either
 *   - a clear error: the class, and a message that names the argument
 *     and/or shows the value (`Expected "<arg>" to be <...>, got <value>`),
 *   - or asyncio's documented behaviour, which the row names and checks;
 * never a crash, a hang or a silent no-op.
 *
 * Rows are tables (`it.each`), so they are countable. Rows that touch the
 * loop or a selector run on every backend. A row marked `fails` is a known
 * bug in a file owned by another session (see its BUG comment); it runs as
 * `it.fails` until fixed.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readdirSync, rmSync, constants as fsc, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  Barrier,
  BoundedSemaphore,
  Condition,
  Event,
  Future,
  InvalidStateError,
  KeyError,
  LifoQueue,
  Lock,
  OSError,
  PriorityQueue,
  Queue,
  QueueEmpty,
  QueueFull,
  RuntimeError,
  SelectorEventLoop,
  Semaphore,
  StreamReader,
  TaskGroup,
  TimeoutError,
  CancelledError,
  EVENT_READ,
  EVENT_WRITE,
  asCompleted,
  gather,
  isCoroutine,
  isFuture,
  openConnection,
  openUnixConnection,
  selectorClass,
  shield,
  sleep,
  startServer,
  startUnixServer,
  timeout,
  timeoutAt,
  wait,
  waitFor,
  type BaseSelector,
} from '../../lib/index.js';
import { Protocol, DatagramProtocol } from '../../lib/protocols.js';
import { Socket, constants } from '../../lib/socket.js';
import { availableBackends } from '../helpers/backends.js';
import { LOOPS, newLoop, useLoop } from '../helpers/loops.js';
import { runBriefly } from '../helpers/loop.js';
import { sockets } from '../helpers/sockets.js';

const C = constants();
/** Seconds any one call may take to settle. */
const BOUND = 2;

// ------------------------------------------------------------- harness

interface Env {
  backend: string;
  loop: SelectorEventLoop;
  dir: string;
  /** A regular file's fd (not a socket). */
  fileFd: number;
  /** A FIFO's fd, opened read-write and non-blocking (a pipe, not a socket). */
  fifoFd: number;
  /** A number that was an fd a moment ago and is closed now. */
  closedFd: number;
  /** A connected AF_UNIX stream pair (raw fds). */
  pair: [number, number];
  /** A fresh, unconnected TCP Socket. */
  tcp: Socket;
  /** Resources a row made, closed after it. */
  cleanup: (() => void)[];
}

type Settled = { ok: true; value: unknown } | { ok: false; error: unknown; sync: boolean };

type Spec =
  | { kind: 'throws'; cls: abstract new (...a: never[]) => unknown; arg?: string; show?: string }
  | { kind: 'doc'; doc: string; check: (r: Settled, env: Env) => void | Promise<void> };

/** A clear error of class `cls`; the message must contain `arg` (the argument's name) and `show` (the value as shown), when given. */
function E(cls: abstract new (...a: never[]) => unknown, arg?: string, show?: string): Spec {
  return { kind: 'throws', cls, arg, show };
}

/** asyncio's documented behaviour, described by `doc` and verified by `check`. */
function doc(text: string, check: (r: Settled, env: Env) => void | Promise<void>): Spec {
  return { kind: 'doc', doc: text, check };
}

/** A row: label, call, expectation (or one per backend), and whether it is a known bug. */
interface Row {
  label: string;
  call: (env: Env) => unknown;
  spec: Spec | ((backend: string) => Spec);
  /** Known bug in a file owned by another session: `it.fails`. */
  fails?: boolean | ((backend: string) => boolean);
}

function row(label: string, call: (env: Env) => unknown, spec: Row['spec'], fails?: Row['fails']): Row {
  return { label, call, spec, fails };
}

function ok(r: Settled): unknown {
  if (!r.ok) throw new Error(`expected success, got ${String((r.error as Error)?.stack ?? r.error)}`);
  return r.value;
}

function isAwaitable(v: unknown): boolean {
  return isFuture(v) || isCoroutine(v) || (typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function');
}

/** Calls `fn`; an awaitable result is awaited on the loop, bounded by BOUND seconds. */
/** For calls that must not run inside a running loop: called directly, a thenable awaited (bounded by a Node timer). */
const OUTSIDE = Symbol('outside');
function outside(fn: (env: Env) => unknown): (env: Env) => unknown {
  return Object.assign(fn, { [OUTSIDE]: true });
}

async function settleOutside(env: Env, fn: (env: Env) => unknown): Promise<Settled> {
  let r: unknown;
  try {
    r = fn(env);
  } catch (error) {
    return { ok: false, error, sync: true };
  }
  if (typeof (r as { then?: unknown })?.then !== 'function') return { ok: true, value: r };
  let timer: NodeJS.Timeout | undefined;
  try {
    const value = await Promise.race([
      r as Promise<unknown>,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new HungError(`the call did not settle within ${BOUND}s`)), BOUND * 1000);
      }),
    ]);
    return { ok: true, value };
  } catch (error) {
    return { ok: false, error, sync: false };
  } finally {
    clearTimeout(timer);
  }
}

async function settle(env: Env, fn: (env: Env) => unknown): Promise<Settled> {
  if ((fn as { [OUTSIDE]?: boolean })[OUTSIDE]) return settleOutside(env, fn);
  // The call runs inside a task of the env's loop (asyncio's functions need
  // a running loop); an awaitable result is awaited there, bounded.
  let sync = true;
  const task = env.loop.createTask(async () => {
    const r = fn(env);
    sync = false;
    if (!isAwaitable(r)) return r;
    return await waitFor(r as never, BOUND);
  });
  // A Node timer bounds it too: the loop's own timers may be what is broken.
  const run = env.loop.runUntilComplete(task);
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<'hung'>((resolve) => {
    timer = setTimeout(() => resolve('hung'), (BOUND + 1) * 1000);
  });
  try {
    const first = await Promise.race([run, hung]);
    if (first === 'hung') {
      task.cancel();
      env.loop.stop();
      await Promise.race([run.catch(() => undefined), new Promise((r) => setTimeout(r, 1000))]);
      return { ok: false, error: new HungError(`the call did not settle within ${BOUND + 1}s of Node time (the loop's timers did not fire)`), sync: false };
    }
    keep(env, first);
    return { ok: true, value: first };
  } catch (error) {
    return { ok: false, error, sync };
  } finally {
    clearTimeout(timer);
  }
}

class HungError extends Error {}

/** Closes what a call that (wrongly or rightly) succeeded left open: servers, transports. */
function keep(env: Env, value: unknown): void {
  for (const v of Array.isArray(value) ? value : [value]) {
    if (typeof v === 'object' && v !== null && typeof (v as { close?: unknown }).close === 'function' && !(v instanceof Socket)) {
      env.cleanup.push(() => (v as { close(): void }).close());
    }
  }
}

async function checkRow(env: Env, r: Row): Promise<void> {
  const spec = typeof r.spec === 'function' ? r.spec(env.backend) : r.spec;
  const got = await settle(env, r.call);
  if (spec.kind === 'doc') {
    await spec.check(got, env);
    return;
  }
  if (got.ok) throw new Error(`expected ${spec.cls.name}, but the call returned ${String(got.value)} (a silent no-op)`);
  const err = got.error as Error;
  if (err instanceof HungError) throw new Error(`expected ${spec.cls.name}, but ${err.message}`);
  if (err instanceof TimeoutError && !got.sync && spec.cls !== TimeoutError) {
    throw new Error(`expected ${spec.cls.name}, but the call hung for ${BOUND}s`);
  }
  expect(err, `${String(err?.stack ?? err)}`).toBeInstanceOf(spec.cls);
  const msg = String(err.message);
  // The message names the argument and/or shows the value.
  const wants = [spec.arg, spec.show].filter((w): w is string => w !== undefined);
  if (wants.length > 0) expect(wants.some((w) => msg.includes(w)), `message ${JSON.stringify(msg)} names none of ${JSON.stringify(wants)}`).toBe(true);
}

let fifoSeq = 0;
function makeEnv(backend: string): Env {
  const dir = mkdtempSync(path.join(tmpdir(), 'aionode-bad-'));
  const file = path.join(dir, 'plain.txt');
  writeFileSync(file, 'plain file contents\n');
  const fileFd = openSync(file, 'r');
  const fifo = path.join(dir, `fifo${fifoSeq++}`);
  execFileSync('mkfifo', [fifo]);
  const fifoFd = openSync(fifo, fsc.O_RDWR | fsc.O_NONBLOCK);
  const pair = sockets.pair();
  const tcp = new Socket(C.AF_INET, C.SOCK_STREAM);
  const loop = newLoop(backend);
  // A number no fd of this process has (below FD_SETSIZE, so select takes
  // it): what a closed fd is to the kernel, without the race of another
  // open (a selector's own epoll fd, say) taking a just-closed number.
  const open = readdirSync('/proc/self/fd').map(Number);
  const tmp = Math.min(1000, Math.max(...open) + 200);
  expect(open).not.toContain(tmp);
  return { backend, loop, dir, fileFd, fifoFd, closedFd: tmp, pair, tcp, cleanup: [] };
}

async function freeEnv(env: Env): Promise<void> {
  for (const f of env.cleanup.reverse()) {
    try {
      f();
    } catch {
      // best effort
    }
  }
  const loop = env.loop;
  if (!loop.isClosed()) {
    if (loop.isRunning()) loop.stop();
    await runBriefly(loop, 3);
    for (const f of env.cleanup.splice(0).reverse()) f();
    await runBriefly(loop, 3);
    loop.close();
  }
  env.tcp.close();
  sockets.close(...env.pair);
  closeSync(env.fileFd);
  closeSync(env.fifoFd);
  rmSync(env.dir, { recursive: true, force: true });
}

/** Registers the table `rows` as one `it` per row under the current describe. */
function table(backend: string, rows: Row[]): void {
  useLoop(backend);
  let env: Env;
  beforeEach(() => {
    env = makeEnv(backend);
  });
  afterEach(async () => {
    await freeEnv(env);
  });
  for (const r of rows) {
    // AIONODE_SHOW_KNOWN_BUGS=1 runs the known-bug rows as plain tests, to see why they fail.
    const fails = !process.env.AIONODE_SHOW_KNOWN_BUGS && (typeof r.fails === 'function' ? r.fails(backend) : r.fails === true);
    const spec = typeof r.spec === 'function' ? r.spec(backend) : r.spec;
    const raw = `${r.label} -> ${spec.kind === 'throws' ? `${spec.cls.name}${spec.arg ? ` naming "${spec.arg}"` : ''}` : spec.doc}`;
    // Control bytes (a NUL in "a\0b") shown escaped: raw, they make the
    // test log binary to grep.
    const title = raw.replace(/[\x00-\x08\x0b-\x1f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
    (fails ? it.fails : it)(title, async () => {
      await checkRow(env, r);
    });
  }
}

const noop = (): void => {};

/** A listening AF_UNIX socket at `p`; returns its closer. */
function unixListener(p: string): () => void {
  const s = new Socket(C.AF_UNIX, C.SOCK_STREAM);
  s.bind(p);
  s.listen(8);
  return () => s.close();
}
/** Objects whose fileno() returns garbage or throws. */
const badFileno = {
  nan: { fileno: () => NaN },
  neg: { fileno: () => -1 },
  str: { fileno: () => '3' },
  throws: {
    fileno: (): number => {
      throw new RangeError('fileno exploded');
    },
  },
};
class Proto extends Protocol {}
class DProto extends DatagramProtocol {}

// --------------------------------------------------------- loop methods

const loopRows: Row[] = [
  // callSoon / callLater / callAt
  row('callSoon(5)', ({ loop }) => loop.callSoon(5 as never), E(TypeError, 'callback', 'got 5')),
  row('callSoon(null)', ({ loop }) => loop.callSoon(null as never), E(TypeError, 'callback', 'got null')),
  row('callLater(NaN, f)', ({ loop }) => loop.callLater(NaN, noop), E(RangeError, 'delay', 'NaN')),
  row('callLater("1", f)', ({ loop }) => loop.callLater('1' as never, noop), E(TypeError, 'delay', '"1"')),
  row('callLater(1n, f)', ({ loop }) => loop.callLater(1n as never, noop), E(TypeError, 'delay')),
  row('callLater(0.01, 5)', ({ loop }) => loop.callLater(0.01, 5 as never), E(TypeError, 'callback', 'got 5')),
  row(
    'callLater(-1, f)',
    ({ loop }) => {
      const fut = loop.createFuture<boolean>();
      loop.callLater(-1, () => fut.setResult(true));
      return fut;
    },
    doc('a negative delay is due at once: runs in the next pass', (r) => expect(ok(r)).toBe(true)),
  ),
  row(
    'callLater(Infinity, f)',
    ({ loop }) => loop.callLater(Infinity, noop),
    doc('scheduled at the end of the clock (when() clamped to 2^63 ns), never due; cancel() works', (r) => {
      const h = ok(r) as { when(): number; cancel(): void; cancelled(): boolean };
      expect(h.when()).toBeGreaterThan(9e9);
      h.cancel();
      expect(h.cancelled()).toBe(true);
    }),
  ),
  row(
    'callLater(-Infinity, f)',
    ({ loop }) => {
      const fut = loop.createFuture<boolean>();
      loop.callLater(-Infinity, () => fut.setResult(true));
      return fut;
    },
    doc('due at once: runs in the next pass', (r) => expect(ok(r)).toBe(true)),
  ),
  row(
    'callLater(1e300, f) then callLater(0.01, g)',
    ({ loop }) => {
      loop.callLater(1e300, noop);
      const fut = loop.createFuture<boolean>();
      loop.callLater(0.01, () => fut.setResult(true));
      return fut;
    },
    doc('a huge delay never fires and does not stall earlier timers', (r) => expect(ok(r)).toBe(true)),
  ),
  row('callAt(NaN, f)', ({ loop }) => loop.callAt(NaN, noop), E(RangeError, 'when', 'NaN')),
  row('callAt(null, f)', ({ loop }) => loop.callAt(null as never, noop), E(TypeError, 'when', 'null')),
  // Issue 8 item 4: after callAt(0) or callAt(-1) the loop used to stall until something else woke it.
  row(
    'callAt(-1, f) then callLater(0.02, g)',
    ({ loop }) => {
      let first = false;
      loop.callAt(-1, () => (first = true));
      const fut = loop.createFuture<boolean>();
      loop.callLater(0.02, () => fut.done() || fut.setResult(first));
      return fut;
    },
    doc('a past deadline is due at once, and later timers still fire (issue 8 item 4)', (r) => expect(ok(r)).toBe(true)),
  ),
  row(
    'callAt(0, f) then callLater(0.02, g)',
    ({ loop }) => {
      let first = false;
      loop.callAt(0, () => (first = true));
      const fut = loop.createFuture<boolean>();
      loop.callLater(0.02, () => fut.done() || fut.setResult(first));
      return fut;
    },
    doc('deadline 0 is due at once, and later timers still fire (issue 8 item 4)', (r) => expect(ok(r)).toBe(true)),
  ),
  row(
    'callAt(1, f) (a past loop time > 0) then callLater(0.02, g)',
    ({ loop }) => {
      let first = false;
      loop.callAt(1, () => (first = true));
      const fut = loop.createFuture<boolean>();
      loop.callLater(0.02, () => fut.done() || fut.setResult(first));
      return fut;
    },
    doc('a past deadline is due at once, and later timers still fire', (r) => expect(ok(r)).toBe(true)),
  ),
  // tasks and running
  row('createTask(5)', ({ loop }) => loop.createTask(5 as never), E(TypeError)),
  row('createTask(null)', ({ loop }) => loop.createTask(null as never), E(TypeError)),
  row('runUntilComplete(5)', outside(({ loop }) => loop.runUntilComplete(5 as never)), E(TypeError, '5')),
  row('runUntilComplete("x")', outside(({ loop }) => loop.runUntilComplete('x' as never)), E(TypeError, "'x'")),
  row('runUntilComplete(null)', outside(({ loop }) => loop.runUntilComplete(null as never)), E(TypeError, 'null')),
  row('runUntilComplete(f) while running', ({ loop }) => loop.runUntilComplete(loop.createFuture()), E(RuntimeError, 'already running')),
  row('setTaskFactory(5)', ({ loop }) => loop.setTaskFactory(5 as never), E(TypeError, 'factory')),
  row('setExceptionHandler("h")', ({ loop }) => loop.setExceptionHandler('h' as never), E(TypeError, '"h"')),
  row('new SelectorEventLoop(5)', () => new SelectorEventLoop(5 as never), E(TypeError, 'selector')),
  row('wrap(5)', ({ loop }) => loop.wrap(5 as never), E(TypeError, 'promise')),
  // readers and writers
  row('addReader(NaN, f)', ({ loop }) => loop.addReader(NaN, noop), E(TypeError, 'fd', 'NaN')),
  row('addReader(-1, f)', ({ loop }) => loop.addReader(-1, noop), E(RangeError, '-1')),
  row('addReader("3", f)', ({ loop }) => loop.addReader('3' as never, noop), E(TypeError, 'fd', '"3"')),
  row('addReader(1.5, f)', ({ loop }) => loop.addReader(1.5, noop), E(TypeError, 'fd', '1.5')),
  row('addReader(Infinity, f)', ({ loop }) => loop.addReader(Infinity, noop), E(TypeError, 'fd', 'Infinity')),
  row('addReader(2**31, f)', ({ loop }) => loop.addReader(2 ** 31, noop), E(RangeError, 'fd', '2147483648')),
  row('addReader({fileno: NaN}, f)', ({ loop }) => loop.addReader(badFileno.nan as never, noop), E(TypeError, 'fd')),
  row('addReader({fileno: -1}, f)', ({ loop }) => loop.addReader(badFileno.neg as never, noop), E(RangeError, '-1')),
  row('addReader({fileno: "3"}, f)', ({ loop }) => loop.addReader(badFileno.str as never, noop), E(TypeError, 'fd')),
  row('addReader({fileno throws}, f)', ({ loop }) => loop.addReader(badFileno.throws as never, noop), doc('fileno()\'s own error propagates unchanged', (r) => {
    expect(r.ok).toBe(false);
    expect((r as { error: Error }).error).toBeInstanceOf(RangeError);
    expect((r as { error: Error }).error.message).toBe('fileno exploded');
  })),
  row('addReader(fd, 5)', ({ loop, pair }) => loop.addReader(pair[0], 5 as never), E(TypeError, 'callback', 'got 5')),
  row(
    'addReader(closed fd, f)',
    ({ loop, closedFd }) => loop.addReader(closedFd, noop),
    (b) =>
      b === 'epoll'
        ? E(OSError, 'EBADF')
        : doc('poll/select accept the number; the first select reports it (POLLNVAL/EBADF) and the reader runs', () => {}),
  ),
  row(
    'addReader(regular file, f)',
    ({ loop, fileFd }) => {
      const fut = loop.createFuture<string>();
      loop.addReader(fileFd, () => {
        loop.removeReader(fileFd);
        fut.setResult('ran');
      });
      return fut;
    },
    (b) =>
      b === 'epoll'
        ? E(OSError, 'EPERM')
        : doc('poll/select: a regular file is always readable, the reader runs (as Python\'s selectors)', (r) => expect(ok(r)).toBe('ran')),
  ),
  row(
    'addReader(FIFO, f) + data',
    ({ loop, fifoFd }) => {
      const fut = loop.createFuture<string>();
      loop.addReader(fifoFd, () => {
        loop.removeReader(fifoFd);
        fut.setResult('ran');
      });
      writeFileSync(`/proc/self/fd/${fifoFd}`, 'x');
      return fut;
    },
    doc('a pipe is watched like a socket: the reader runs when data arrives', (r) => expect(ok(r)).toBe('ran')),
  ),
  row('removeReader(NaN)', ({ loop }) => loop.removeReader(NaN), E(TypeError, 'fd')),
  row('removeReader(fd never added)', ({ loop, pair }) => loop.removeReader(pair[0]), doc('returns false (asyncio)', (r) => expect(ok(r)).toBe(false))),
  row('addWriter({fileno: NaN}, f)', ({ loop }) => loop.addWriter(badFileno.nan as never, noop), E(TypeError, 'fd')),
  row('addWriter(-5, f)', ({ loop }) => loop.addWriter(-5, noop), E(RangeError, '-5')),
  row('removeWriter("x")', ({ loop }) => loop.removeWriter('x' as never), E(TypeError, 'fd')),
  // sock* methods
  row('sockRecv(5, 10)', ({ loop }) => loop.sockRecv(5 as never, 10), E(TypeError, 'sock')),
  row('sockRecv(fd number, 10)', ({ loop, pair }) => loop.sockRecv(pair[0] as never, 10), E(TypeError, 'sock')),
  row('sockRecv(sock, -1)', ({ loop, pair }) => loop.sockRecv(new Socket(C.AF_UNIX, C.SOCK_STREAM, pair[0]), -1), E(RangeError, 'nbytes', '-1')),
  row('sockRecv(sock, NaN)', ({ loop, pair }) => loop.sockRecv(new Socket(C.AF_UNIX, C.SOCK_STREAM, pair[0]), NaN), E(RangeError, 'nbytes', 'NaN')),
  row('sockRecv(sock, Infinity)', ({ loop, pair }) => loop.sockRecv(new Socket(C.AF_UNIX, C.SOCK_STREAM, pair[0]), Infinity), E(RangeError, 'nbytes', 'Infinity')),
  row(
    'sockRecv(sock, 2**40)',
    ({ loop, pair }) => {
      sockets.write(pair[1], 'hi');
      return loop.sockRecv(new Socket(C.AF_UNIX, C.SOCK_STREAM, pair[0]), 2 ** 40);
    },
    // Node's Buffer.alloc refuses it, showing the value.
    E(RangeError, 'nbytes', '1_099_511_627_776'),
  ),
  row('sockRecv(closed Socket, 10)', ({ loop }) => {
    const s = new Socket(C.AF_INET, C.SOCK_STREAM);
    s.close();
    return loop.sockRecv(s, 10);
  }, E(OSError, 'EBADF')),
  row('sockRecvInto(sock, "buf")', ({ loop, pair }) => loop.sockRecvInto(new Socket(C.AF_UNIX, C.SOCK_STREAM, pair[0]), 'buf' as never), E(TypeError, 'buf')),
  row('sockSendall(sock, 5)', ({ loop, pair }) => loop.sockSendall(new Socket(C.AF_UNIX, C.SOCK_STREAM, pair[0]), 5 as never), E(TypeError, 'data')),
  row('sockSendall(sock, null)', ({ loop, pair }) => loop.sockSendall(new Socket(C.AF_UNIX, C.SOCK_STREAM, pair[0]), null as never), E(TypeError, 'data')),
  row(
    'sockSendall(sock, "")',
    ({ loop, pair }) => loop.sockSendall(new Socket(C.AF_UNIX, C.SOCK_STREAM, pair[0]), ''),
    doc('empty data: returns at once (asyncio)', (r) => expect(ok(r)).toBeUndefined()),
  ),
  row('sockConnect(inet sock, "nonsense")', ({ loop, tcp }) => loop.sockConnect(tcp, 'nonsense'), E(OSError, 'nonsense')),
  row('sockConnect(sock, ["127.0.0.1", -1])', ({ loop, tcp }) => loop.sockConnect(tcp, ['127.0.0.1', -1]), E(RangeError, 'port')),
  row('sockConnect(sock, ["127.0.0.1", 70000])', ({ loop, tcp }) => loop.sockConnect(tcp, ['127.0.0.1', 70000]), E(RangeError, 'port')),
  row('sockConnect(sock, ["127.0.0.1", NaN])', ({ loop, tcp }) => loop.sockConnect(tcp, ['127.0.0.1', NaN]), E(RangeError, 'port')),
  row('sockConnect(sock, ["", 80])', ({ loop, tcp }) => loop.sockConnect(tcp, ['', 80]), E(TypeError, 'addr[0]')),
  row('sockConnect(sock, ["a\\0b", 80])', ({ loop, tcp }) => loop.sockConnect(tcp, ['a\0b', 80]), E(TypeError, 'addr[0]')),
  row('sockConnect(unix sock, "dir/sock\\0evil") with dir/sock listening', ({ loop, dir, cleanup }) => {
    cleanup.push(unixListener(path.join(dir, 'sock')));
    const s = new Socket(C.AF_UNIX, C.SOCK_STREAM);
    cleanup.push(() => s.close());
    return loop.sockConnect(s, path.join(dir, 'sock\0evil'));
  }, E(TypeError, 'NUL')),
  row('sockAccept(unbound sock)', ({ loop, tcp }) => loop.sockAccept(tcp), E(OSError, 'EINVAL')),
  row('sockAccept(5)', ({ loop }) => loop.sockAccept(5 as never), E(TypeError, 'sock')),
  row('sockRecvfrom(sock, -1)', ({ loop, tcp }) => loop.sockRecvfrom(tcp, -1), E(RangeError, 'bufsize', '-1')),
  row('sockRecvfrom(sock, 0)', ({ loop, tcp }) => loop.sockRecvfrom(tcp, 0), E(RangeError, 'bufsize', '0')),
  row('sockSendto(sock, "x", 5)', ({ loop }) => {
    const s = new Socket(C.AF_INET, C.SOCK_DGRAM);
    try {
      return loop.sockSendto(s, Buffer.from('x'), 5 as never);
    } finally {
      s.close();
    }
  }, E(TypeError)),
  row('sockSendfile(sock, "not a file")', ({ loop, pair }) => loop.sockSendfile(new Socket(C.AF_UNIX, C.SOCK_STREAM, pair[0]), 'not a file' as never), E(TypeError, 'file')),
  row('sockSendfile(sock, file, -1)', ({ loop, pair, fileFd }) => loop.sockSendfile(new Socket(C.AF_UNIX, C.SOCK_STREAM, pair[0]), fileFd, -1), E(RangeError, 'offset', '-1')),
  row('sockSendfile(sock, file, 0, 0)', ({ loop, pair, fileFd }) => loop.sockSendfile(new Socket(C.AF_UNIX, C.SOCK_STREAM, pair[0]), fileFd, 0, 0), E(RangeError, 'count', '0')),
  row('sockSendfile(sock, file, NaN)', ({ loop, pair, fileFd }) => loop.sockSendfile(new Socket(C.AF_UNIX, C.SOCK_STREAM, pair[0]), fileFd, NaN), E(RangeError, 'offset', 'NaN')),
  row('sockSendfile(sock, closed fd)', ({ loop, pair, closedFd }) => loop.sockSendfile(new Socket(C.AF_UNIX, C.SOCK_STREAM, pair[0]), closedFd), E(OSError, 'EBADF')),
  // networking
  row('createConnection(5, host, port)', ({ loop }) => loop.createConnection(5 as never, '127.0.0.1', 1), E(TypeError, 'protocolFactory')),
  row('createConnection(f, "127.0.0.1", -1)', ({ loop }) => loop.createConnection(() => new Proto(), '127.0.0.1', -1), E(RangeError, 'port', '-1')),
  row('createConnection(f, "127.0.0.1", 65536)', ({ loop }) => loop.createConnection(() => new Proto(), '127.0.0.1', 65536), E(RangeError, 'port', '65536')),
  row('createConnection(f, "127.0.0.1", NaN)', ({ loop }) => loop.createConnection(() => new Proto(), '127.0.0.1', NaN), E(RangeError, 'port', 'NaN')),
  row('createConnection(f, "127.0.0.1", 1.5)', ({ loop }) => loop.createConnection(() => new Proto(), '127.0.0.1', 1.5), E(RangeError, 'port', '1.5')),
  row('createConnection(f, 5, 80)', ({ loop }) => loop.createConnection(() => new Proto(), 5 as never, 80), E(TypeError, 'host', '5')),
  row('createConnection(f, "a\\0b", 80)', ({ loop }) => loop.createConnection(() => new Proto(), 'a\0b', 80), E(OSError, 'a\0b')),
  row('createConnection(f, { sock: 5 })', ({ loop }) => loop.createConnection(() => new Proto(), null, null, { sock: 5 as never }), E(TypeError, 'sock')),
  row('createServer(f, "127.0.0.1", -1)', ({ loop }) => loop.createServer(() => new Proto(), '127.0.0.1', -1), E(RangeError, 'port', '-1')),
  row('createServer(f, "127.0.0.1", 0, { backlog: -1 })', ({ loop }) => loop.createServer(() => new Proto(), '127.0.0.1', 0, { backlog: -1 }), E(RangeError, 'backlog', '-1')),
  row('createServer(f, "127.0.0.1", 0, { backlog: NaN })', ({ loop }) => loop.createServer(() => new Proto(), '127.0.0.1', 0, { backlog: NaN }), E(RangeError, 'backlog', 'NaN')),
  row('createServer(f, "a\\0b", 0)', ({ loop }) => loop.createServer(() => new Proto(), 'a\0b', 0), E(OSError, 'a\0b')),
  row('createServer(null, "127.0.0.1", 0)', ({ loop }) => loop.createServer(null as never, '127.0.0.1', 0), E(TypeError, 'protocolFactory')),
  row(
    'createUnixServer(f, "dir/sock\\0evil")',
    ({ loop, dir }) => loop.createUnixServer(() => new Proto(), path.join(dir, 'sock\0evil')),
    E(TypeError, 'NUL'),
  ),
  row('createUnixServer(f, 5)', ({ loop }) => loop.createUnixServer(() => new Proto(), 5 as never), E(TypeError, 'path', '5')),
  row('createUnixServer(f, "")', ({ loop }) => loop.createUnixServer(() => new Proto(), ''), doc('Linux autobinds an abstract address for an empty path (as Python\'s bind(\'\'))', (r) => {
    expect(String(ok(r))).toContain('Server');
  })),
  row('createUnixConnection(f, "dir/sock\\0evil") with dir/sock listening', ({ loop, dir, cleanup }) => {
    cleanup.push(unixListener(path.join(dir, 'sock')));
    return loop.createUnixConnection(() => new Proto(), path.join(dir, 'sock\0evil'));
  }, E(TypeError, 'NUL')),
  row('createUnixConnection(f, "/nonexistent/x")', ({ loop }) => loop.createUnixConnection(() => new Proto(), '/nonexistent/x'), E(OSError, 'ENOENT')),
  row('createDatagramEndpoint(5)', ({ loop }) => loop.createDatagramEndpoint(5 as never, { localAddr: ['127.0.0.1', 0] }), E(TypeError, 'protocolFactory')),
  row('createDatagramEndpoint(f, { localAddr: 5 })', ({ loop }) => loop.createDatagramEndpoint(() => new DProto(), { localAddr: 5 as never }), E(TypeError, 'localAddr')),
  row('createDatagramEndpoint(f, { localAddr: ["127.0.0.1", 70000] })', ({ loop }) => loop.createDatagramEndpoint(() => new DProto(), { localAddr: ['127.0.0.1', 70000] }), E(RangeError, 'port')),
  row('getaddrinfo("a\\0b", 80)', ({ loop }) => loop.getaddrinfo('a\0b', 80), E(OSError, 'a\0b')),
  row('getaddrinfo(5, 80)', ({ loop }) => loop.getaddrinfo(5 as never, 80), E(TypeError, 'host')),
  row('getaddrinfo("127.0.0.1", -1)', ({ loop }) => loop.getaddrinfo('127.0.0.1', -1), E(RangeError, 'port')),
  row('getnameinfo(5)', ({ loop }) => loop.getnameinfo(5 as never), E(TypeError, 'sockaddr')),
  row('getnameinfo(["127.0.0.1", NaN])', ({ loop }) => loop.getnameinfo(['127.0.0.1', NaN]), E(TypeError, 'sockaddr')),
  row('sendfile(5, file)', ({ loop, fileFd }) => loop.sendfile(5 as never, fileFd), E(TypeError, 'transport')),
  row('connectAcceptedSocket(f, 5)', ({ loop }) => loop.connectAcceptedSocket(() => new Proto(), 5 as never), E(TypeError, 'sock')),
  row('closed loop: callSoon(f)', ({ backend }) => {
    const l = newLoop(backend);
    l.close();
    return l.callSoon(noop);
  }, E(RuntimeError, 'closed')),
  row('closed loop: createTask(coro)', ({ backend }) => {
    const l = newLoop(backend);
    l.close();
    return l.createTask(async () => 1);
  }, E(RuntimeError, 'closed')),
];

describe.each(LOOPS)('bad input: loop methods [%s]', (backend) => {
  table(backend, loopRows);
});

// ------------------------------------------------------------- selectors

function withSel(env: Env, f: (sel: BaseSelector) => unknown): unknown {
  const sel = new (selectorClass(env.backend))();
  env.cleanup.push(() => sel.close());
  return f(sel);
}

const selectorRows: Row[] = [
  row('register(NaN, READ)', (env) => withSel(env, (s) => s.register(NaN, EVENT_READ)), E(TypeError, 'fd', 'NaN')),
  row('register(-1, READ)', (env) => withSel(env, (s) => s.register(-1, EVENT_READ)), E(RangeError, '-1')),
  row('register("3", READ)', (env) => withSel(env, (s) => s.register('3' as never, EVENT_READ)), E(TypeError, 'fd', '"3"')),
  row('register({fileno: NaN}, READ)', (env) => withSel(env, (s) => s.register(badFileno.nan as never, EVENT_READ)), E(TypeError, 'fd')),
  row('register({fileno: -1}, READ)', (env) => withSel(env, (s) => s.register(badFileno.neg as never, EVENT_READ)), E(RangeError, '-1')),
  row('register({fileno: "3"}, READ)', (env) => withSel(env, (s) => s.register(badFileno.str as never, EVENT_READ)), E(TypeError, 'fd')),
  row('register({fileno throws}, READ)', (env) => withSel(env, (s) => s.register(badFileno.throws as never, EVENT_READ)), doc('fileno()\'s own error propagates unchanged', (r) => {
    expect(r.ok).toBe(false);
    expect((r as { error: Error }).error.message).toBe('fileno exploded');
  })),
  row('register(fd, 0)', (env) => withSel(env, (s) => s.register(env.pair[0], 0)), E(RangeError, 'events', '0')),
  row('register(fd, 4)', (env) => withSel(env, (s) => s.register(env.pair[0], 4)), E(RangeError, 'events', '4')),
  row('register(fd, NaN)', (env) => withSel(env, (s) => s.register(env.pair[0], NaN)), E(RangeError, 'events', 'NaN')),
  row('register(fd, "1")', (env) => withSel(env, (s) => s.register(env.pair[0], '1' as never)), E(RangeError, 'events', '"1"')),
  row('register(fd, READ) twice', (env) => withSel(env, (s) => {
    s.register(env.pair[0], EVENT_READ);
    s.register(env.pair[0], EVENT_READ);
  }), E(KeyError, 'already registered')),
  row('register(closed fd, READ)', (env) => withSel(env, (s) => s.register(env.closedFd, EVENT_READ)), (b) =>
    b === 'epoll' ? E(OSError, 'EBADF') : doc('poll/select take the number (Python\'s selectors do too); select() then reports it', () => {})),
  row('register(regular file, READ)', (env) => withSel(env, (s) => {
    s.register(env.fileFd, EVENT_READ);
    return s.select(0).length;
  }), (b) => (b === 'epoll' ? E(OSError, 'EPERM') : doc('poll/select: a regular file is always ready', (r) => expect(ok(r)).toBe(1)))),
  row('register(FIFO, READ) + data', (env) => withSel(env, (s) => {
    const k = s.register(env.fifoFd, EVENT_READ);
    const before = s.select(0).length;
    writeFileSync(`/proc/self/fd/${env.fifoFd}`, 'x');
    const after = s.select(0);
    return [before, after.length, after[0]?.[0] === k];
  }), doc('a pipe is watched like a socket', (r) => expect(ok(r)).toEqual([0, 1, true]))),
  row('register(2**31 - 1, READ)', (env) => withSel(env, (s) => s.register(2 ** 31 - 1, EVENT_READ)), (b) => (b === 'select' ? E(Error, 'FD_SETSIZE') : E(OSError, 'EBADF'))),
  row('register(2**31, READ)', (env) => withSel(env, (s) => s.register(2 ** 31, EVENT_READ)), E(Error)),
  row('unregister(fd never registered)', (env) => withSel(env, (s) => s.unregister(env.pair[0])), E(KeyError, 'not registered')),
  row('unregister(NaN)', (env) => withSel(env, (s) => s.unregister(NaN)), E(TypeError, 'fd')),
  row('modify(fd never registered, READ)', (env) => withSel(env, (s) => s.modify(env.pair[0], EVENT_READ)), E(KeyError, 'not registered')),
  row('modify(fd, 0)', (env) => withSel(env, (s) => {
    s.register(env.pair[0], EVENT_READ);
    return s.modify(env.pair[0], 0);
  }), E(RangeError, 'events', '0')),
  row('modify(fd, 8)', (env) => withSel(env, (s) => {
    s.register(env.pair[0], EVENT_READ);
    return s.modify(env.pair[0], 8);
  }), E(RangeError, 'events', '8')),
  row('select(NaN)', (env) => withSel(env, (s) => s.select(NaN)), E(TypeError, 'timeout', 'NaN')),
  row('select("1")', (env) => withSel(env, (s) => s.select('1' as never)), E(TypeError, 'timeout', '"1"')),
  row('select(-1)', (env) => withSel(env, (s) => s.select(-1)), doc('a negative timeout polls (as 0)', (r) => expect(ok(r)).toEqual([]))),
  row('select(-Infinity)', (env) => withSel(env, (s) => s.select(-Infinity)), doc('polls (as 0)', (r) => expect(ok(r)).toEqual([]))),
  row('select(Infinity) with a writable fd', (env) => withSel(env, (s) => {
    s.register(env.pair[0], EVENT_WRITE);
    return s.select(Infinity).length;
  }), doc('waits without a deadline; returns the ready fd', (r) => expect(ok(r)).toBe(1))),
  row('select(1e300) with a writable fd', (env) => withSel(env, (s) => {
    s.register(env.pair[0], EVENT_WRITE);
    return s.select(1e300).length;
  }), doc('a huge timeout is no timeout; returns the ready fd', (r) => expect(ok(r)).toBe(1))),
  row('select(0.0000001) empty', (env) => withSel(env, (s) => s.select(1e-7)), doc('a sub-millisecond timeout returns (rounded up, not a busy 0 or a hang)', (r) => expect(ok(r)).toEqual([]))),
  row('closed selector: register', (env) => withSel(env, (s) => {
    s.close();
    return s.register(env.pair[0], EVENT_READ);
  }), E(RuntimeError, 'closed')),
  row('closed selector: select', (env) => withSel(env, (s) => {
    s.close();
    return s.select(0);
  }), E(RuntimeError, 'closed')),
  row('getKey(fd never registered)', (env) => withSel(env, (s) => s.getKey(env.pair[0])), E(KeyError, 'not registered')),
  row('selectorClass("kqueue-nope")', () => selectorClass('kqueue-nope'), E(Error, 'kqueue-nope')),
];

// Selector-level: bare selectors of each backend (availableBackends()).
describe.each(availableBackends())('bad input: selectors [%s]', (backend) => {
  table(backend, selectorRows);
});

// ---------------------------------------------------------------- Socket

const socketRows: Row[] = [
  row('new Socket(AF_INET, SOCK_STREAM, -1)', () => new Socket(C.AF_INET, C.SOCK_STREAM, -1), E(RangeError, 'fd', '-1')),
  row('new Socket(AF_INET, SOCK_STREAM, NaN)', () => new Socket(C.AF_INET, C.SOCK_STREAM, NaN), E(RangeError, 'fd', 'NaN')),
  row('new Socket(AF_INET, SOCK_STREAM, "3")', () => new Socket(C.AF_INET, C.SOCK_STREAM, '3' as never), E(RangeError, 'fd', '"3"')),
  row('new Socket(9999, SOCK_STREAM)', () => new Socket(9999, C.SOCK_STREAM), E(RangeError, 'family', '9999')),
  row('new Socket(NaN, NaN)', () => new Socket(NaN, NaN), E(RangeError, 'family')),
  row('new Socket("x", SOCK_STREAM)', () => new Socket('x' as never, C.SOCK_STREAM), E(TypeError, 'family')),
  row('bind(["127.0.0.1", 70000])', ({ tcp }) => tcp.bind(['127.0.0.1', 70000]), E(RangeError, 'port')),
  row('bind(["127.0.0.1", NaN])', ({ tcp }) => tcp.bind(['127.0.0.1', NaN]), E(RangeError, 'port')),
  row('bind(["127.0.0.1", -1])', ({ tcp }) => tcp.bind(['127.0.0.1', -1]), E(RangeError, 'port')),
  row('bind(["not an ip", 0])', ({ tcp }) => tcp.bind(['not an ip', 0]), E(Error, 'not an ip')),
  row('bind(5)', ({ tcp }) => tcp.bind(5 as never), E(TypeError)),
  row('bind("path") on AF_INET', ({ tcp }) => tcp.bind('/tmp/x'), E(Error)),
  row('unix bind("dir/sock\\0evil")', ({ dir, cleanup }) => {
    const s = new Socket(C.AF_UNIX, C.SOCK_STREAM);
    cleanup.push(() => s.close());
    return s.bind(path.join(dir, 'sock\0evil'));
  }, E(TypeError, 'NUL')),
  row('unix bind("x".repeat(200))', ({ cleanup }) => {
    const s = new Socket(C.AF_UNIX, C.SOCK_STREAM);
    cleanup.push(() => s.close());
    return s.bind('/tmp/' + 'x'.repeat(200));
  }, E(Error)),
  row('listen(NaN)', ({ tcp }) => tcp.listen(NaN), E(RangeError, 'backlog')),
  row('listen(-1)', ({ tcp }) => {
    tcp.bind(['127.0.0.1', 0]);
    tcp.listen(-1);
  }, E(RangeError, 'backlog', '-1')),
  row('setsockopt(NaN, NaN, 1)', ({ tcp }) => tcp.setsockopt(NaN, NaN, 1), E(RangeError, 'level')),
  row('setsockopt(SOL_SOCKET, SO_REUSEADDR, "x")', ({ tcp }) => tcp.setsockopt(C.SOL_SOCKET, C.SO_REUSEADDR, 'x' as never), E(RangeError, 'value')),
  row('getsockopt(999, 999)', ({ tcp }) => tcp.getsockopt(999, 999), E(OSError)),
  row('shutdown(7)', ({ tcp }) => tcp.shutdown(7), E(RangeError, 'how', '7')),
  row('closed socket: bind', ({ tcp }) => {
    tcp.close();
    return tcp.bind(['127.0.0.1', 0]);
  }, E(OSError, 'Bad file descriptor')),
  row('closed socket: close() again', ({ tcp }) => {
    tcp.close();
    tcp.close();
    return tcp.fileno();
  }, doc('close() is idempotent; fileno() is -1', (r) => expect(ok(r)).toBe(-1))),
  row('Socket over a regular file fd: getpeername', ({ fileFd }) => new Socket(C.AF_INET, C.SOCK_STREAM, fileFd).getpeername(), E(OSError, 'ENOTSOCK')),
  row('Socket over a FIFO fd: listen', ({ fifoFd }) => new Socket(C.AF_INET, C.SOCK_STREAM, fifoFd).listen(1), E(OSError, 'ENOTSOCK')),
];

// Socket is loop-independent (socket.ts): one loop is enough.
describe('bad input: Socket', () => {
  table(LOOPS[0], socketRows);
});

// ------------------------------------------------- futures, tasks, sleep

const futureRows: Row[] = [
  row('new Future({ loop: 5 })', () => new Future({ loop: 5 as never }), E(TypeError, 'loop')),
  row('new Future(5)', () => new Future(5 as never), E(TypeError, 'options')),
  row('future.setResult twice', ({ loop }) => {
    const f = loop.createFuture();
    f.setResult(1);
    f.setResult(2);
  }, E(InvalidStateError)),
  row('future.setException(undefined)', ({ loop }) => loop.createFuture().setException(undefined as never), E(TypeError, 'exception')),
  row('future.setException(new CancelledError())', ({ loop }) => loop.createFuture().setException(new CancelledError()), E(TypeError)),
  row('future.result() while pending', ({ loop }) => loop.createFuture().result(), E(InvalidStateError)),
  row('future.addDoneCallback(5)', ({ loop }) => loop.createFuture().addDoneCallback(5 as never), E(TypeError, 'fn')),
  row('future.removeDoneCallback("x")', ({ loop }) => loop.createFuture().removeDoneCallback('x' as never), doc('removes nothing: returns 0 (asyncio)', (r) => expect(ok(r)).toBe(0))),
  row('sleep(NaN)', () => sleep(NaN), E(RangeError, 'delay', 'NaN')),
  row('sleep("1")', () => sleep('1' as never), E(TypeError, 'delay', '"1"')),
  row('sleep(-1)', () => sleep(-1, 'done'), doc('a negative delay returns at once (asyncio)', (r) => expect(ok(r)).toBe('done'))),
  row('sleep(Infinity)', () => waitFor(sleep(Infinity), 0.02), E(TimeoutError)),
  row('sleep(0.01, x, { signal: 5 })', () => sleep(0.01, 1, { signal: 5 as never }), E(TypeError, 'signal')),
  row('gather(5)', () => gather(5 as never), E(TypeError, 'aws')),
  row('gather([5])', () => gather([5 as never]), E(TypeError)),
  row('gather([])', () => gather([]), doc('an empty list gathers to [] (asyncio)', (r) => expect(ok(r)).toEqual([]))),
  row('shield(5)', () => shield(5 as never), E(TypeError)),
  row('wait([])', () => wait([]), E(RangeError, 'empty')),
  row('wait([5])', () => wait([5 as never]), E(TypeError)),
  row('wait(5)', () => wait(5 as never), E(TypeError)),
  row('wait([sleep], { returnWhen: "bogus" })', () => wait([sleep(0)], { returnWhen: 'bogus' as never }), E(RangeError, 'bogus')),
  row('wait([sleep], { timeout: NaN })', () => wait([sleep(0)], { timeout: NaN }), E(TypeError, 'timeout', 'NaN')),
  row('waitFor(sleep, NaN)', () => waitFor(sleep(0), NaN), E(TypeError, 'timeout', 'NaN')),
  row('waitFor(sleep, "1")', () => waitFor(sleep(0), '1' as never), E(TypeError, 'timeout')),
  row('waitFor(5, 1)', () => waitFor(5 as never, 1), E(TypeError)),
  row('waitFor(sleep(1), -1)', () => waitFor(sleep(1), -1), doc('a timeout <= 0 times out at once (asyncio)', (r) => {
    expect(r.ok).toBe(false);
    expect((r as { error: unknown }).error).toBeInstanceOf(TimeoutError);
  })),
  row('waitFor(sleep(0, 7), Infinity)', () => waitFor(sleep(0, 7), Infinity), doc('no deadline: the result (asyncio)', (r) => expect(ok(r)).toBe(7))),
  row('asCompleted(5)', () => asCompleted(5 as never), E(TypeError)),
  row('asCompleted([sleep], { timeout: NaN })', () => asCompleted([sleep(0)], { timeout: NaN }), E(TypeError, 'timeout', 'NaN')),
];

describe.each(LOOPS)('bad input: futures, tasks, sleep [%s]', (backend) => {
  table(backend, futureRows);
});

// ------------------------------------- locks, queues, timeouts, taskgroups

/** Runs `f` as a task of the env's loop (primitives need a running loop). */
function inLoop(f: () => unknown): (env: Env) => unknown {
  return (env) => env.loop.createTask(async () => f());
}

/** Runs `f` on an entered timeout(null), then leaves it. */
async function entered(f: (t: ReturnType<typeof timeout>) => unknown): Promise<unknown> {
  const t = timeout(null);
  await t.aenter();
  try {
    return f(t);
  } finally {
    await t.aexit(undefined);
  }
}

const primitiveRows: Row[] = [
  row('new Condition(5)', () => new Condition(5 as never), E(TypeError, 'lock')),
  row('new Semaphore(-1)', () => new Semaphore(-1), E(RangeError, undefined, 'got -1')),
  row('new Semaphore(NaN)', () => new Semaphore(NaN), E(RangeError, 'value', 'NaN')),
  row('new Semaphore(1.5)', () => new Semaphore(1.5), E(RangeError, 'value', '1.5')),
  row('new Semaphore("2")', () => new Semaphore('2' as never), E(TypeError, 'value', '"2"')),
  row('new Semaphore(Infinity)', () => new Semaphore(Infinity), E(RangeError, 'value', 'Infinity')),
  row('new BoundedSemaphore(-1)', () => new BoundedSemaphore(-1), E(RangeError, undefined, 'got -1')),
  row('new Barrier(0)', () => new Barrier(0), E(RangeError, undefined, 'got 0')),
  row('new Barrier(NaN)', () => new Barrier(NaN), E(RangeError, 'parties', 'NaN')),
  row('new Barrier("2")', () => new Barrier('2' as never), E(TypeError, 'parties', '"2"')),
  row('new Barrier(Infinity)', () => new Barrier(Infinity), E(RangeError, 'parties', 'Infinity')),
  row('lock.release() unlocked', () => new Lock().release(), E(RuntimeError, 'not acquired')),
  row('lock.acquire({ signal: 5 })', inLoop(() => new Lock().acquire({ signal: 5 as never })), E(TypeError, 'signal')),
  row('lock.acquire(5)', inLoop(() => new Lock().acquire(5 as never)), E(TypeError, 'options')),
  row('event.wait({ signal: "x" })', inLoop(() => new Event().wait({ signal: 'x' as never })), E(TypeError, 'signal')),
  row('condition.notify() unlocked', () => new Condition().notify(), E(RuntimeError, 'un-acquired')),
  row('condition.notify(NaN)', inLoop(async () => {
    const c = new Condition();
    await c.acquire();
    c.notify(NaN);
  }), E(TypeError, 'n', 'NaN')),
  row('condition.notify("1")', inLoop(async () => {
    const c = new Condition();
    await c.acquire();
    c.notify('1' as never);
  }), E(TypeError, 'n', '"1"')),
  row('condition.waitFor(5)', inLoop(async () => {
    const c = new Condition();
    await c.acquire();
    return c.waitFor(5 as never);
  }), E(TypeError, 'predicate')),
  row('condition.wait() unlocked', inLoop(() => new Condition().wait()), E(RuntimeError, 'un-acquired')),
  row('semaphore.release() past its bound', () => new BoundedSemaphore(1).release(), E(RangeError, 'released too many times')),
  row('barrier.wait({ signal: 5 })', inLoop(() => new Barrier(2).wait({ signal: 5 as never })), E(TypeError, 'signal')),
  row('new Queue(-1)', () => new Queue(-1), E(RangeError, 'maxsize', '-1')),
  row('new Queue(NaN)', () => new Queue(NaN), E(RangeError, 'maxsize', 'NaN')),
  row('new Queue(1.5)', () => new Queue(1.5), E(RangeError, 'maxsize', '1.5')),
  row('new Queue("3")', () => new Queue('3' as never), E(TypeError, 'maxsize', '"3"')),
  row('new Queue(Infinity)', () => new Queue(Infinity), E(RangeError, 'maxsize', 'Infinity')),
  row('new LifoQueue(-2)', () => new LifoQueue(-2), E(RangeError, 'maxsize', '-2')),
  row('new PriorityQueue(0, { comparator: 5 })', () => new PriorityQueue(0, { comparator: 5 as never }), E(TypeError, 'comparator')),
  row('new PriorityQueue(0, 5)', () => new PriorityQueue(0, 5 as never), E(TypeError, 'options')),
  row('queue.getNowait() empty', () => new Queue().getNowait(), doc('QueueEmpty, with no message (asyncio)', (r) => {
    expect((r as { error: unknown }).error).toBeInstanceOf(QueueEmpty);
  })),
  row('queue.putNowait() full', () => {
    const q = new Queue(1);
    q.putNowait(1);
    q.putNowait(2);
  }, doc('QueueFull, with no message (asyncio)', (r) => {
    expect((r as { error: unknown }).error).toBeInstanceOf(QueueFull);
  })),
  row('queue.taskDone() too often', () => new Queue().taskDone(), E(RangeError, 'too many times')),
  row('queue.shutdown("yes")', () => new Queue().shutdown('yes' as never), E(TypeError, 'immediate', '"yes"')),
  row('queue.get({ signal: 5 })', inLoop(() => new Queue().get({ signal: 5 as never })), E(TypeError, 'signal')),
  row('queue.put(x, { signal: 5 })', inLoop(() => new Queue(1).put(1, { signal: 5 as never })), E(TypeError, 'signal')),
  row('timeout("1")', () => timeout('1' as never), E(TypeError, 'delay', '"1"')),
  row('timeout(NaN)', () => timeout(NaN), E(TypeError, 'delay', 'NaN')),
  row('timeoutAt(NaN)', () => timeoutAt(NaN), E(TypeError, 'when', 'NaN')),
  row('timeoutAt("1")', () => timeoutAt('1' as never), E(TypeError, 'when', '"1"')),
  row('timeout(-1) around sleep', inLoop(async () => {
    const t = timeout(-1);
    await t.aenter();
    try {
      await sleep(1);
    } catch (e) {
      return t.aexit(e).then(() => 'no');
    }
    return 'slept';
  }), doc('a past deadline expires at once: TimeoutError (asyncio)', (r) => {
    expect(r.ok).toBe(false);
    expect((r as { error: unknown }).error).toBeInstanceOf(TimeoutError);
  })),
  row('timeout(Infinity)', () => timeout(Infinity).when(), doc('never expires: when() is Infinity', (r) => expect(ok(r)).toBe(Infinity))),
  row('timeout.reschedule(NaN)', inLoop(() => entered((t) => t.reschedule(NaN))), E(TypeError, 'when', 'NaN')),
  row('timeout.reschedule("x")', inLoop(() => entered((t) => t.reschedule('x' as never))), E(TypeError, 'when', '"x"')),
  row('timeout.reschedule() before aenter', () => timeout(null).reschedule(1), E(RuntimeError, 'not been entered')),
  row('timeout.aenter() twice', inLoop(async () => {
    const t = timeout(null);
    await t.aenter();
    await t.aenter();
  }), E(RuntimeError, 'already been entered')),
  row('taskGroup.createTask before aenter', () => new TaskGroup().createTask((async () => 1)()), E(RuntimeError, 'has not been entered')),
  row('taskGroup.createTask(5)', inLoop(async () => {
    const tg = new TaskGroup();
    await tg.aenter();
    try {
      tg.createTask(5 as never);
    } finally {
      await tg.aexit(undefined);
    }
  }), E(TypeError)),
  row('taskGroup.aenter() twice', inLoop(async () => {
    const tg = new TaskGroup();
    await tg.aenter();
    try {
      await tg.aenter();
    } finally {
      await tg.aexit(undefined);
    }
  }), E(RuntimeError, 'already been entered')),
];

describe.each(LOOPS)('bad input: locks, queues, timeouts, taskgroups [%s]', (backend) => {
  table(backend, primitiveRows);
});

// --------------------------------------------------------------- streams

const streamRows: Row[] = [
  row('new StreamReader({ limit: 0 })', () => new StreamReader({ limit: 0 }), E(RangeError, 'Limit cannot be <= 0')),
  row('new StreamReader({ limit: -1 })', () => new StreamReader({ limit: -1 }), E(RangeError, 'Limit cannot be <= 0')),
  row('new StreamReader({ limit: NaN })', () => new StreamReader({ limit: NaN }), E(TypeError, 'limit', 'NaN')),
  row('new StreamReader({ limit: "5" })', () => new StreamReader({ limit: '5' as never }), E(TypeError, 'limit', '"5"')),
  row('new StreamReader(5)', () => new StreamReader(5 as never), E(TypeError, 'options')),
  row('reader.feedData("str")', () => new StreamReader().feedData('str' as never), E(TypeError, 'data', '"str"')),
  row('reader.feedData(5)', () => new StreamReader().feedData(5 as never), E(TypeError, 'data', '5')),
  row('reader.readuntil("")', inLoop(() => new StreamReader().readuntil('')), E(TypeError, 'Separator should be at least one-byte')),
  row('reader.readuntil(5)', inLoop(() => new StreamReader().readuntil(5 as never)), E(TypeError, 'separator', '5')),
  row('reader.readuntil([])', inLoop(() => new StreamReader().readuntil([] as never)), E(TypeError, 'Separator should contain at least one')),
  row('reader.readexactly(-1)', inLoop(() => new StreamReader().readexactly(-1)), E(RangeError, 'n', '-1')),
  row('reader.readexactly(NaN)', inLoop(() => new StreamReader().readexactly(NaN)), E(TypeError, 'n', 'NaN')),
  row('reader.readexactly(1.5)', inLoop(() => new StreamReader().readexactly(1.5)), E(TypeError, 'n', '1.5')),
  row('reader.readexactly("2")', inLoop(() => new StreamReader().readexactly('2' as never)), E(TypeError, 'n', '"2"')),
  row('reader.read(NaN)', inLoop(() => new StreamReader().read(NaN)), E(TypeError, 'n', 'NaN')),
  row('reader.read("2")', inLoop(() => new StreamReader().read('2' as never)), E(TypeError, 'n', '"2"')),
  row('reader.read(-1) after EOF', inLoop(() => {
    const r = new StreamReader();
    r.feedData(Buffer.from('abc'));
    r.feedEof();
    return r.read(-1).then((b: Buffer) => b.toString());
  }), doc('n < 0 reads until EOF (asyncio)', (r) => expect(ok(r)).toBe('abc'))),
  row('reader.read(0)', inLoop(() => new StreamReader().read(0).then((b: Buffer) => b.length)), doc('n == 0 returns empty bytes at once (asyncio)', (r) => expect(ok(r)).toBe(0))),
  row('reader.readexactly(0)', inLoop(() => new StreamReader().readexactly(0).then((b: Buffer) => b.length)), doc('returns empty bytes at once (asyncio)', (r) => expect(ok(r)).toBe(0))),
  row('reader.read(Infinity) after EOF', inLoop(() => {
    const r = new StreamReader();
    r.feedData(Buffer.from('abc'));
    r.feedEof();
    return r.read(Infinity);
  }), E(TypeError, 'n', 'Infinity')),
  row('startServer(5, host, 0)', () => startServer(5 as never, '127.0.0.1', 0), E(TypeError, 'clientConnected')),
  row('startServer(cb, host, -1)', () => startServer(noop, '127.0.0.1', -1), E(RangeError, 'port', '-1')),
  row('openConnection(host, 70000)', () => openConnection('127.0.0.1', 70000), E(RangeError, 'port', '70000')),
  row('openConnection(host, NaN)', () => openConnection('127.0.0.1', NaN), E(RangeError, 'port', 'NaN')),
  row('openConnection("a\\0b", 80)', () => openConnection('a\0b', 80), E(OSError, 'a\0b')),
  row('openConnection(host, 1, { limit: 0 })', () => openConnection('127.0.0.1', 1, { limit: 0 }), E(RangeError, 'Limit cannot be <= 0')),
  row('openConnection(host, 1, { limit: NaN })', () => openConnection('127.0.0.1', 1, { limit: NaN }), E(TypeError, 'limit')),
  row('openUnixConnection("dir/sock\\0evil") with dir/sock listening', ({ dir, cleanup }) => {
    cleanup.push(unixListener(path.join(dir, 'sock')));
    return openUnixConnection(path.join(dir, 'sock\0evil'));
  }, E(TypeError, 'NUL')),
  row('startUnixServer(cb, "dir/sock\\0evil")', ({ dir }) => startUnixServer(noop, path.join(dir, 'sock\0evil')), E(TypeError, 'NUL')),
  row('startUnixServer(cb, 5)', () => startUnixServer(noop, 5 as never), E(TypeError, 'path', '5')),
];

describe.each(LOOPS)('bad input: streams [%s]', (backend) => {
  table(backend, streamRows);
});

// The tables' sizes, for the report.
it('counts the bad-input rows', () => {
  const loops = LOOPS.length;
  const selectors = availableBackends().length;
  const total =
    (loopRows.length + futureRows.length + primitiveRows.length + streamRows.length) * loops + selectorRows.length * selectors + socketRows.length;
  console.log(
    `bad-input rows: loop ${loopRows.length} x ${loops}, selectors ${selectorRows.length} x ${selectors}, ` +
      `socket ${socketRows.length}, futures ${futureRows.length} x ${loops}, primitives ${primitiveRows.length} x ${loops}, ` +
      `streams ${streamRows.length} x ${loops}; ${total} in all`,
  );
  expect(total).toBeGreaterThan(200);
});
