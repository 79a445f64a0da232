/**
 * Streams: CPython's test_streams (StreamReader fed directly, and the
 * open/start helpers over real sockets on every loop of test/helpers/loops.ts), with the
 * waiting code written as async functions and as generator coroutines.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  BrokenPipeError,
  CancelledError,
  ConnectionAbortedError,
  ConnectionResetError,
  currentTask,
  gather,
  IncompleteReadError,
  LimitOverrunError,
  OSError,
  RuntimeError,
  SelectorEventLoop,
  setEventLoop,
  sleep,
  wait,
  waitFor,
  type ExceptionContext,
  type Sleep,
  type Task,
} from '../lib/index.js';
import type { Server } from '../lib/base-events.js';
import type { Transport } from '../lib/transports.js';
import {
  FlowControlMixin,
  openConnection,
  openUnixConnection,
  startServer,
  startUnixServer,
  StreamReader,
  StreamReaderProtocol,
  StreamWriter,
} from '../lib/streams.js';
import '../lib/sslproto.js'; // registers the TLS layer (loop.startTls)
import { eachLoop, LOOPS, newLoop, useLoop, type TestLoop } from './helpers/loops.js';
import { fdCount, runBriefly } from './helpers/loop.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with --expose-gc (vitest.config.ts sets it)');

const B = (s: string): Buffer => Buffer.from(s);
const DATA = B('line1\nline2\nline3\n');

/** Python's ValueError, for the cases that set one on a reader. */
class ValueError extends Error {}

// ---------------------------------------------------------------- coroutine kinds

const KINDS = ['async', 'generator'] as const;
type Kind = (typeof KINDS)[number];

/** A task of `kind` that waits on `make()`: `await make()` or `yield* make()`. */
function spawn<T>(loop: SelectorEventLoop, kind: Kind, make: () => Sleep<T>): Task<T> {
  if (kind === 'async') return loop.createTask(async () => await make()) as Task<T>;
  return loop.createTask(
    (function* (): Generator<any, T, any> {
      return yield* make();
    })(),
  ) as Task<T>;
}

/** The body of a test written as both kinds of coroutine. */
interface Both<T> {
  async: () => Promise<T>;
  generator: () => Generator<any, T, any>;
}

/** Runs the `kind` version of `main` as the loop's main task. */
function runMain<T>(loop: SelectorEventLoop, kind: Kind, main: Both<T>): Promise<T> {
  return (kind === 'async' ? loop.runUntilComplete(main.async) : loop.runUntilComplete(main.generator())) as Promise<T>;
}

/** The error `p` rejects with (fails if it resolves). */
async function rejection(p: PromiseLike<unknown>): Promise<any> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

const fakes: { closing: boolean }[] = [];

/**
 * A transport stand-in for the reader and writer unit tests. Each test's
 * ones count as closed after it, so their dropped writers do not warn.
 */
function fakeTransport(): Transport & { pauses: number; resumes: number; closing: boolean } {
  const t = {
    pauses: 0,
    resumes: 0,
    closing: false,
    pauseReading() {
      t.pauses++;
    },
    resumeReading() {
      t.resumes++;
    },
    isClosing: () => t.closing,
    getExtraInfo: (_name: string, d?: unknown) => d,
    toString: () => '<Transport>',
  };
  fakes.push(t);
  return t as unknown as Transport & { pauses: number; resumes: number; closing: boolean };
}

afterEach(() => {
  for (const t of fakes.splice(0)) t.closing = true;
});

// ---------------------------------------------------------------- StreamReader (no sockets)

describe.each(eachLoop(KINDS))('[%s] StreamReader with %s tasks', (backend, kind) => {
  useLoop(backend);
  let loop: TestLoop;

  beforeEach(() => {
    loop = newLoop(backend);
  });

  afterEach(async () => {
    await runBriefly(loop);
    loop.close();
  });

  const reader = (limit?: number): StreamReader => new StreamReader({ limit, loop });
  const runCo = <T>(make: () => Sleep<T>): Promise<T> => loop.runUntilComplete(spawn(loop, kind, make));

  it('ignores empty data', () => {
    const stream = reader();
    stream.feedData(B(''));
    expect(stream._buffer).toEqual(B(''));
  }); // CPython test_streams: test_feed_empty_data

  it('buffers fed data', () => {
    const stream = reader();
    stream.feedData(DATA);
    expect(stream._buffer).toEqual(DATA);
  }); // CPython test_streams: test_feed_nonempty_data

  it('read(0) returns nothing and leaves the buffer', async () => {
    const stream = reader();
    stream.feedData(DATA);
    expect(await runCo(() => stream.read(0))).toEqual(B(''));
    expect(stream._buffer).toEqual(DATA);
  }); // CPython test_streams: test_read_zero

  it('read(n) waits for data', async () => {
    const stream = reader();
    const t = spawn(loop, kind, () => stream.read(30));
    loop.callSoon(() => stream.feedData(DATA));
    expect(await loop.runUntilComplete(t)).toEqual(DATA);
    expect(stream._buffer).toEqual(B(''));
  }); // CPython test_streams: test_read

  it('read(n) returns at most n bytes', async () => {
    const stream = reader();
    stream.feedData(B('line1'));
    stream.feedData(B('line2'));
    expect(await runCo(() => stream.read(5))).toEqual(B('line1'));
    expect(stream._buffer).toEqual(B('line2'));
  }); // CPython test_streams: test_read_line_breaks

  it('read(n) returns an empty Buffer at EOF', async () => {
    const stream = reader();
    const t = spawn(loop, kind, () => stream.read(1024));
    loop.callSoon(() => stream.feedEof());
    expect(await loop.runUntilComplete(t)).toEqual(B(''));
    expect(stream._buffer).toEqual(B(''));
  }); // CPython test_streams: test_read_eof

  it('read() reads until EOF', async () => {
    const stream = reader();
    const t = spawn(loop, kind, () => stream.read(-1));
    loop.callSoon(() => {
      stream.feedData(B('chunk1\n'));
      stream.feedData(B('chunk2'));
      stream.feedEof();
    });
    expect(await loop.runUntilComplete(t)).toEqual(B('chunk1\nchunk2'));
    expect(stream._buffer).toEqual(B(''));
  }); // CPython test_streams: test_read_until_eof

  it('read() throws the exception set on the reader', async () => {
    const stream = reader();
    stream.feedData(B('line\n'));
    expect(await runCo(() => stream.read(2))).toEqual(B('li'));
    stream.setException(new ValueError());
    expect(await rejection(runCo(() => stream.read(2)))).toBeInstanceOf(ValueError);
  }); // CPython test_streams: test_read_exception

  it('refuses a limit <= 0', () => {
    expect(() => new StreamReader({ limit: 0, loop })).toThrow(/imit/);
    expect(() => new StreamReader({ limit: -1, loop })).toThrow(/imit/);
    expect(() => new StreamReader({ limit: 0, loop })).toThrow(RangeError);
  }); // CPython test_streams: test_invalid_limit

  it('read(n) is not bounded by the limit', async () => {
    const stream = reader(3);
    stream.feedData(B('chunk'));
    expect(await runCo(() => stream.read(5))).toEqual(B('chunk'));
    expect(stream._buffer).toEqual(B(''));
  }); // CPython test_streams: test_read_limit

  it('readline() waits for the newline', async () => {
    const stream = reader();
    stream.feedData(B('chunk1 '));
    const t = spawn(loop, kind, () => stream.readline());
    loop.callSoon(() => {
      stream.feedData(B('chunk2 '));
      stream.feedData(B('chunk3 '));
      stream.feedData(B('\n chunk4'));
    });
    expect(await loop.runUntilComplete(t)).toEqual(B('chunk1 chunk2 chunk3 \n'));
    expect(stream._buffer).toEqual(B(' chunk4'));
  }); // CPython test_streams: test_readline

  it('readline() over the limit with the data already buffered', async () => {
    let stream = reader(3);
    stream.feedData(B('li'));
    stream.feedData(B('ne1\nline2\n'));
    expect(await rejection(runCo(() => stream.readline()))).toBeInstanceOf(RangeError);
    // The line with its newline is gone; the rest stays.
    expect(stream._buffer).toEqual(B('line2\n'));

    stream = reader(3);
    stream.feedData(B('li'));
    stream.feedData(B('ne1'));
    stream.feedData(B('li'));
    expect(await rejection(runCo(() => stream.readline()))).toBeInstanceOf(RangeError);
    // No newline: the whole buffer is cleared.
    expect(stream._buffer).toEqual(B(''));
  }); // CPython test_streams: test_readline_limit_with_existing_data

  it('atEof() only once EOF is fed and the buffer is empty', async () => {
    const stream = reader();
    expect(stream.atEof()).toBe(false);
    stream.feedData(B('some data\n'));
    expect(stream.atEof()).toBe(false);
    await runCo(() => stream.readline());
    expect(stream.atEof()).toBe(false);
    stream.feedData(B('some data\n'));
    stream.feedEof();
    await runCo(() => stream.readline());
    expect(stream.atEof()).toBe(true);
  }); // CPython test_streams: test_at_eof

  it('readline() over the limit with the data fed while waiting', async () => {
    let stream = reader(7);
    loop.callSoon(() => {
      stream.feedData(B('chunk1'));
      stream.feedData(B('chunk2'));
      stream.feedData(B('chunk3\n'));
      stream.feedEof();
    });
    expect(await rejection(runCo(() => stream.readline()))).toBeInstanceOf(RangeError);
    expect(stream._buffer).toEqual(B(''));

    stream = reader(7);
    loop.callSoon(() => {
      stream.feedData(B('chunk1'));
      stream.feedData(B('chunk2\n'));
      stream.feedData(B('chunk3\n'));
      stream.feedEof();
    });
    expect(await rejection(runCo(() => stream.readline()))).toBeInstanceOf(RangeError);
    expect(stream._buffer).toEqual(B('chunk3\n'));

    // The limit is strict: a line of exactly `limit` bytes passes.
    stream = reader(7);
    stream.feedData(B('1234567\n'));
    expect(await runCo(() => stream.readline())).toEqual(B('1234567\n'));
    expect(stream._buffer).toEqual(B(''));

    stream.feedData(B('12345678\n'));
    const e = await rejection(runCo(() => stream.readline()));
    expect(e).toBeInstanceOf(RangeError);
    expect(e.cause).toBeInstanceOf(LimitOverrunError);
    expect(stream._buffer).toEqual(B(''));

    stream.feedData(B('12345678'));
    expect(await rejection(runCo(() => stream.readline()))).toBeInstanceOf(RangeError);
    expect(stream._buffer).toEqual(B(''));
  }); // CPython test_streams: test_readline_limit

  it('readline() with every line already buffered', async () => {
    const stream = reader();
    stream.feedData(DATA.subarray(0, 6));
    stream.feedData(DATA.subarray(6));
    expect(await runCo(() => stream.readline())).toEqual(B('line1\n'));
    expect(stream._buffer).toEqual(B('line2\nline3\n'));
  }); // CPython test_streams: test_readline_nolimit_nowait

  it('readline() returns the partial line at EOF', async () => {
    const stream = reader();
    stream.feedData(B('some data'));
    stream.feedEof();
    expect(await runCo(() => stream.readline())).toEqual(B('some data'));
  }); // CPython test_streams: test_readline_eof

  it('readline() returns an empty Buffer at EOF', async () => {
    const stream = reader();
    stream.feedEof();
    expect(await runCo(() => stream.readline())).toEqual(B(''));
  }); // CPython test_streams: test_readline_empty_eof

  it('read(n) after readline() takes the next bytes', async () => {
    const stream = reader();
    stream.feedData(DATA);
    await runCo(() => stream.readline());
    expect(await runCo(() => stream.read(7))).toEqual(B('line2\nl'));
    expect(stream._buffer).toEqual(B('ine3\n'));
  }); // CPython test_streams: test_readline_read_byte_count

  it('readline() throws the exception set on the reader', async () => {
    const stream = reader();
    stream.feedData(B('line\n'));
    expect(await runCo(() => stream.readline())).toEqual(B('line\n'));
    stream.setException(new ValueError());
    expect(await rejection(runCo(() => stream.readline()))).toBeInstanceOf(ValueError);
    expect(stream._buffer).toEqual(B(''));
  }); // CPython test_streams: test_readline_exception

  it('readuntil() refuses an empty separator or list', async () => {
    const stream = reader();
    let e = await rejection(runCo(() => stream.readuntil(B(''))));
    expect(e).toBeInstanceOf(TypeError);
    expect(e.message).toBe('Separator should be at least one-byte string');
    e = await rejection(runCo(() => stream.readuntil([B('')])));
    expect(e.message).toMatch(/^Separator should be/);
    e = await rejection(runCo(() => stream.readuntil([])));
    expect(e.message).toBe('Separator should contain at least one element');
  }); // CPython test_streams: test_readuntil_separator

  it('readuntil() finds a multi-byte separator', async () => {
    const stream = reader();
    stream.feedData(B('lineAAA'));
    expect(await runCo(() => stream.readuntil(B('AAA')))).toEqual(B('lineAAA'));
    expect(stream._buffer).toEqual(B(''));

    stream.feedData(B('lineAAA'));
    expect(await runCo(() => stream.readuntil('AAA'))).toEqual(B('lineAAA'));
    expect(stream._buffer).toEqual(B(''));

    stream.feedData(B('lineAAAxxx'));
    expect(await runCo(() => stream.readuntil('AAA'))).toEqual(B('lineAAA'));
    expect(stream._buffer).toEqual(B('xxx'));
  }); // CPython test_streams: test_readuntil_multi_chunks

  it('readuntil() finds a separator split across chunks', async () => {
    const stream = reader();
    stream.feedData(B('QWEaa'));
    stream.feedData(B('XYaa'));
    stream.feedData(B('a'));
    expect(await runCo(() => stream.readuntil('aaa'))).toEqual(B('QWEaaXYaaa'));
    expect(stream._buffer).toEqual(B(''));

    stream.feedData(B('QWEaa'));
    stream.feedData(B('XYa'));
    stream.feedData(B('aa'));
    expect(await runCo(() => stream.readuntil('aaa'))).toEqual(B('QWEaaXYaaa'));
    expect(stream._buffer).toEqual(B(''));

    stream.feedData(B('aaa'));
    expect(await runCo(() => stream.readuntil('aaa'))).toEqual(B('aaa'));
    expect(stream._buffer).toEqual(B(''));

    stream.feedData(B('Xaaa'));
    expect(await runCo(() => stream.readuntil('aaa'))).toEqual(B('Xaaa'));
    expect(stream._buffer).toEqual(B(''));

    stream.feedData(B('XXX'));
    stream.feedData(B('a'));
    stream.feedData(B('a'));
    stream.feedData(B('a'));
    expect(await runCo(() => stream.readuntil('aaa'))).toEqual(B('XXXaaa'));
    expect(stream._buffer).toEqual(B(''));
  }); // CPython test_streams: test_readuntil_multi_chunks_1

  // Issue 8, Deliver 5: a separator split across two feedData() calls while
  // readuntil() is already waiting (the reader must not resume its search
  // past a partial match), as an example, not only through the fuzz.
  it('readuntil() finds "\\r\\n" split as "\\r" | "\\n" across two feeds while it waits', async () => {
    const stream = reader();
    const task = spawn(loop, kind, () => stream.readuntil('\r\n'));
    await runBriefly(loop);
    stream.feedData(B('GET / HTTP/1.1\r'));
    await runBriefly(loop);
    expect(task.done()).toBe(false);
    stream.feedData(B('\nHost: x\r\n'));
    expect(await loop.runUntilComplete(waitFor(task, 2))).toEqual(B('GET / HTTP/1.1\r\n'));
    expect(stream._buffer).toEqual(B('Host: x\r\n'));
    expect(await runCo(() => stream.readuntil('\r\n'))).toEqual(B('Host: x\r\n'));
  });

  it('readuntil() finds a multi-byte separator split at every position, fed while it waits', async () => {
    const sep = '<-END->';
    const msg = 'payload' + sep;
    for (let cut = 1; cut < msg.length; cut++) {
      for (const split3 of [false, true]) {
        const stream = reader();
        const task = spawn(loop, kind, () => stream.readuntil(sep));
        await runBriefly(loop);
        // Two feeds at `cut`, or three (the tail split once more in half).
        const parts = [msg.slice(0, cut), msg.slice(cut)];
        if (split3 && parts[1].length > 1) parts.splice(1, 1, parts[1].slice(0, 1), parts[1].slice(1));
        for (let i = 0; i < parts.length; i++) {
          stream.feedData(B(parts[i]));
          await runBriefly(loop);
          if (i < parts.length - 1) expect(task.done(), `cut ${cut}, part ${i}`).toBe(false);
        }
        stream.feedData(B('tail'));
        expect(await loop.runUntilComplete(waitFor(task, 2)), `cut ${cut}`).toEqual(B(msg));
        expect(stream._buffer).toEqual(B('tail'));
      }
    }
  });

  it('readuntil() throws IncompleteReadError at EOF and empties the buffer', async () => {
    const stream = reader();
    const data = B('some dataAA');
    stream.feedData(data);
    stream.feedEof();
    const e = await rejection(runCo(() => stream.readuntil('AAA')));
    expect(e).toBeInstanceOf(IncompleteReadError);
    expect(e.message).toMatch(/undefined expected bytes/);
    expect(e.partial).toEqual(data);
    expect(e.expected).toBeNull();
    expect(stream._buffer).toEqual(B(''));
  }); // CPython test_streams: test_readuntil_eof

  it('readuntil() throws LimitOverrunError and keeps the data', async () => {
    const stream = reader(3);
    stream.feedData(B('some dataAA'));
    let e = await rejection(runCo(() => stream.readuntil('AAA')));
    expect(e).toBeInstanceOf(LimitOverrunError);
    expect(e.message).toMatch(/not found/);
    expect(stream._buffer).toEqual(B('some dataAA'));

    stream.feedData(B('A'));
    e = await rejection(runCo(() => stream.readuntil('AAA')));
    expect(e).toBeInstanceOf(LimitOverrunError);
    expect(e.message).toMatch(/is found/);
    expect(e.consumed).toBe(9);
    expect(stream._buffer).toEqual(B('some dataAAA'));
  }); // CPython test_streams: test_readuntil_limit_found_sep

  it('readuntil() with several separators returns the shortest match', async () => {
    const stream = reader();
    stream.feedData(B('line 1\nline 2\r'));
    expect(await runCo(() => stream.readuntil(['\r', '\n']))).toEqual(B('line 1\n'));
    expect(await runCo(() => stream.readuntil(['\r', '\n']))).toEqual(B('line 2\r'));
    expect(stream._buffer).toEqual(B(''));

    // The first end position wins, even for the longer separator.
    stream.feedData(B('ABCDEFG'));
    expect(await runCo(() => stream.readuntil([B('DEF'), B('BCDE')]))).toEqual(B('ABCDE'));
    expect(stream._buffer).toEqual(B('FG'));
  }); // CPython test_streams: test_readuntil_multi_separator

  it('readuntil() with several separators checks the limit against the shortest', async () => {
    const stream = reader(3);
    stream.feedData(B('some dataA'));
    const e = await rejection(runCo(() => stream.readuntil(['A', 'ome dataA'])));
    expect(e).toBeInstanceOf(LimitOverrunError);
    expect(e.message).toMatch(/is found/);
    expect(stream._buffer).toEqual(B('some dataA'));
  }); // CPython test_streams: test_readuntil_multi_separator_limit

  it('readuntil() with several separators never scans from a negative offset', async () => {
    // The buffer fits the shortest separator (without holding it) but not
    // the longest: the offset must stay at 0.
    const stream = reader();
    stream.feedData(B('data'));
    const t = spawn(loop, kind, () => stream.readuntil(['A', 'long sep']));
    loop.callSoon(() => stream.feedData(B('Z')));
    loop.callSoon(() => stream.feedData(B('Aaaa')));
    expect(await loop.runUntilComplete(t)).toEqual(B('dataZA'));
    expect(stream._buffer).toEqual(B('aaa'));
  }); // CPython test_streams: test_readuntil_multi_separator_negative_offset

  it('readuntil() takes any Uint8Array as separator', async () => {
    const stream = reader();
    stream.feedData(B('some data\r\n'));
    expect(await runCo(() => stream.readuntil(new Uint8Array([13, 10])))).toEqual(B('some data\r\n'));
    expect(stream._buffer).toEqual(B(''));
  }); // CPython test_streams: test_readuntil_bytearray

  it('readexactly(0) returns nothing; a negative size is refused', async () => {
    const stream = reader();
    stream.feedData(DATA);
    expect(await runCo(() => stream.readexactly(0))).toEqual(B(''));
    expect(stream._buffer).toEqual(DATA);
    const e = await rejection(runCo(() => stream.readexactly(-1)));
    expect(e).toBeInstanceOf(RangeError);
    expect(e.message).toBe('readexactly size can not be less than zero');
    expect(stream._buffer).toEqual(DATA);
  }); // CPython test_streams: test_readexactly_zero_or_less

  it('readexactly(n) waits for n bytes', async () => {
    const stream = reader();
    const n = 2 * DATA.length;
    const t = spawn(loop, kind, () => stream.readexactly(n));
    loop.callSoon(() => {
      stream.feedData(DATA);
      stream.feedData(DATA);
      stream.feedData(DATA);
    });
    expect(await loop.runUntilComplete(t)).toEqual(Buffer.concat([DATA, DATA]));
    expect(stream._buffer).toEqual(DATA);
  }); // CPython test_streams: test_readexactly

  it('readexactly(n) is not bounded by the limit', async () => {
    const stream = reader(3);
    stream.feedData(B('chunk'));
    expect(await runCo(() => stream.readexactly(5))).toEqual(B('chunk'));
    expect(stream._buffer).toEqual(B(''));
  }); // CPython test_streams: test_readexactly_limit

  it('readexactly(n) throws IncompleteReadError at EOF', async () => {
    const stream = reader();
    const n = 2 * DATA.length;
    const t = spawn(loop, kind, () => stream.readexactly(n));
    loop.callSoon(() => {
      stream.feedData(DATA);
      stream.feedEof();
    });
    const e = await rejection(loop.runUntilComplete(t));
    expect(e).toBeInstanceOf(IncompleteReadError);
    expect(e.partial).toEqual(DATA);
    expect(e.expected).toBe(n);
    expect(e.message).toBe('18 bytes read on a total of 36 expected bytes');
    expect(stream._buffer).toEqual(B(''));
  }); // CPython test_streams: test_readexactly_eof

  it('readexactly() throws the exception set on the reader', async () => {
    const stream = reader();
    stream.feedData(B('line\n'));
    expect(await runCo(() => stream.readexactly(2))).toEqual(B('li'));
    stream.setException(new ValueError());
    expect(await rejection(runCo(() => stream.readexactly(2)))).toBeInstanceOf(ValueError);
  }); // CPython test_streams: test_readexactly_exception

  it('exception() returns the exception set', () => {
    const stream = reader();
    expect(stream.exception()).toBeUndefined();
    const exc = new ValueError();
    stream.setException(exc);
    expect(stream.exception()).toBe(exc);
  }); // CPython test_streams: test_exception

  it('setException() wakes a waiting read with the exception', async () => {
    const stream = reader();
    const t1 = spawn(loop, kind, () => stream.readline());
    const t2 = loop.createTask(
      (function* () {
        stream.setException(new ValueError());
      })(),
    );
    await loop.runUntilComplete(() => wait<unknown>([t1, t2]));
    expect(() => t1.result()).toThrow(ValueError);
  }); // CPython test_streams: test_exception_waiter

  it('setException() after the waiting read was cancelled', async () => {
    const stream = reader();
    const t = spawn(loop, kind, () => stream.readline());
    await runBriefly(loop, 3);
    expect(stream._waiter).not.toBeNull();
    t.cancel();
    await runBriefly(loop, 3);
    // This fails if setException() isn't careful with a cancelled waiter.
    stream.setException(new RuntimeError('message'));
    await runBriefly(loop, 3);
    expect(stream._waiter).toBeNull();
    expect(t.cancelled()).toBe(true);
  }); // CPython test_streams: test_exception_cancel

  it('refuses a second read while one waits', async () => {
    const stream = reader();
    const t1 = spawn(loop, kind, () => stream.read(10));
    await runBriefly(loop, 3);
    const e = await rejection(runCo(() => stream.readline()));
    expect(e).toBeInstanceOf(RuntimeError);
    expect(e.message).toBe('readuntil() called while another coroutine is already waiting for incoming data');
    stream.feedData(B('x'));
    expect(await loop.runUntilComplete(t1)).toEqual(B('x'));
  });

  it('an aborted signal cancels a waiting read, which leaves no waiter', async () => {
    const stream = reader();
    const ac = new AbortController();
    const t = spawn(loop, kind, () => stream.read(10, { signal: ac.signal }));
    loop.callLater(0.01, () => ac.abort('enough'));
    const e = await rejection(loop.runUntilComplete(t));
    expect(e).toBeInstanceOf(CancelledError);
    expect(e.message).toBe('enough');
    expect(stream._waiter).toBeNull();
    // Reading goes on normally afterwards.
    stream.feedData(B('later'));
    expect(await runCo(() => stream.readexactly(5))).toEqual(B('later'));
    // An already aborted signal ends a read before it starts, even with data there.
    stream.feedData(B('more'));
    expect(await rejection(runCo(() => stream.readuntil('e', { signal: ac.signal })))).toBeInstanceOf(CancelledError);
    expect(stream._buffer).toEqual(B('more'));
  });

  it('iterates over lines until EOF', async () => {
    const stream = reader();
    stream.feedData(B('a\nbb\nc'));
    loop.callLater(0.01, () => stream.feedEof());
    const lines = await runMain(loop, kind, {
      async: async () => {
        const got: string[] = [];
        for await (const line of stream) got.push(line.toString());
        return got;
      },
      generator: function* () {
        const got: string[] = [];
        const it = stream[Symbol.asyncIterator]();
        for (;;) {
          const r = yield* it.next() as unknown as Sleep<IteratorResult<Buffer>>;
          if (r.done) break;
          got.push(r.value.toString());
        }
        return got;
      },
    });
    expect(lines).toEqual(['a\n', 'bb\n', 'c']);
  });

  it('pauses the transport over twice the limit and resumes at the limit', async () => {
    const stream = reader(4);
    const transport = fakeTransport();
    stream.setTransport(transport);
    expect(() => stream.setTransport(transport)).toThrow('Transport already set');
    stream.feedData(B('12345678'));
    expect(transport.pauses).toBe(0);
    stream.feedData(B('9'));
    expect([transport.pauses, stream._paused]).toEqual([1, true]);
    stream.feedData(B('abc'));
    expect(transport.pauses).toBe(1);
    expect(await runCo(() => stream.read(7))).toEqual(B('1234567'));
    expect([transport.resumes, stream._paused]).toEqual([0, true]);
    expect(await runCo(() => stream.read(1))).toEqual(B('8'));
    expect([transport.resumes, stream._paused]).toEqual([1, false]);
    // Waiting for more data than is buffered resumes a paused transport
    // first: waiting while paused would deadlock.
    stream.feedData(B('0123456789'));
    expect(transport.pauses).toBe(2);
    const t = spawn(loop, kind, () => stream.readexactly(20));
    await runBriefly(loop, 3);
    expect([transport.resumes, stream._paused]).toEqual([2, false]);
    stream.feedData(B('ABCDEF'));
    expect((await loop.runUntilComplete(t)).toString()).toBe('9abc0123456789ABCDEF');
  });

  it('drain() waits while the protocol is paused; an abort ends only that wait', async () => {
    const protocol = new FlowControlMixin({ loop });
    const writer = new StreamWriter(fakeTransport(), protocol, null, loop);
    protocol.pauseWriting();
    const ac = new AbortController();
    const aborted = spawn(loop, kind, () => writer.drain({ signal: ac.signal }));
    const waiting = spawn(loop, kind, () => writer.drain());
    await runBriefly(loop, 3);
    expect(protocol._drainWaiters.length).toBe(2);
    ac.abort();
    await runBriefly(loop, 3);
    expect(aborted.cancelled()).toBe(true);
    expect(waiting.done()).toBe(false);
    expect(protocol._drainWaiters.length).toBe(1);
    protocol.resumeWriting();
    await loop.runUntilComplete(waiting);
    expect(protocol._drainWaiters.length).toBe(0);
  });

  it('drain() throws the error the connection was lost with', async () => {
    const protocol = new FlowControlMixin({ loop });
    const writer = new StreamWriter(fakeTransport(), protocol, null, loop);
    protocol.pauseWriting();
    const t = spawn(loop, kind, () => writer.drain());
    await runBriefly(loop, 3);
    const exc = new ConnectionResetError('gone');
    protocol.connectionLost(exc);
    expect(await rejection(loop.runUntilComplete(t))).toBe(exc);
    // Once lost, drain() throws at once.
    const e = await rejection(runCo(() => writer.drain()));
    expect(e).toBeInstanceOf(ConnectionResetError);
    expect(e.message).toBe('Connection lost');
  });

  it('startTls() drains, then hands the transport to loop.startTls and writes through the new one', async () => {
    const stream = reader();
    const protocol = new StreamReaderProtocol(stream, () => {}, { loop });
    const transport = fakeTransport();
    protocol.connectionMade(transport);
    const writer = protocol._streamWriter!;
    const tlsTransport = Object.assign(fakeTransport(), {
      getExtraInfo: (name: string, d?: unknown) => (name === 'sslcontext' ? 'ctx' : d),
    });
    const calls: unknown[][] = [];
    const upgraded = loop.createFuture<Transport>();
    (loop as unknown as { startTls: Function }).startTls = (...args: unknown[]) => {
      calls.push(args);
      return upgraded;
    };
    protocol.pauseWriting();
    const t = spawn(loop, kind, () => writer.startTls('ctx', { serverHostname: 'example', sslHandshakeTimeout: 5 }));
    await runBriefly(loop, 3);
    // Waiting in drain() first.
    expect(calls).toEqual([]);
    protocol.resumeWriting();
    await runBriefly(loop, 3);
    expect(calls).toEqual([
      [transport, protocol, 'ctx', { serverSide: true, serverHostname: 'example', sslHandshakeTimeout: 5, sslShutdownTimeout: undefined }],
    ]);
    upgraded.setResult(tlsTransport);
    await loop.runUntilComplete(t);
    expect(writer.transport).toBe(tlsTransport);
    expect(writer.getExtraInfo('sslcontext')).toBe('ctx');
    expect(protocol._overSsl).toBe(true);
    // Over TLS an EOF closes the transport: no half-open state.
    expect(protocol.eofReceived()).toBe(false);
  });

  it('startTls() without TLS support throws RuntimeError', async () => {
    const protocol = new StreamReaderProtocol(reader(), null, { loop });
    const transport = fakeTransport();
    protocol.connectionMade(transport);
    const writer = new StreamWriter(transport, protocol, null, loop);
    // A loop without TLS support (whether or not this one has it).
    (loop as unknown as { startTls: unknown }).startTls = undefined;
    const e = await rejection(runCo(() => writer.startTls({})));
    expect(e).toBeInstanceOf(RuntimeError);
    expect(e.message).toBe('TLS support is not loaded');
    expect(writer.transport).toBe(transport);
  });

  it('waitClosed() with a signal: an abort ends that wait, not the connection', async () => {
    const stream = reader();
    const protocol = new StreamReaderProtocol(stream, null, { loop });
    const transport = fakeTransport();
    protocol.connectionMade(transport);
    const writer = new StreamWriter(transport, protocol, stream, loop);
    const ac = new AbortController();
    const aborted = spawn(loop, kind, () => writer.waitClosed({ signal: ac.signal }));
    const waiting = spawn(loop, kind, () => writer.waitClosed());
    await runBriefly(loop, 3);
    ac.abort();
    await runBriefly(loop, 3);
    expect(aborted.cancelled()).toBe(true);
    expect(protocol._closed.done()).toBe(false);
    const exc = new ConnectionResetError('reset');
    protocol.connectionLost(exc);
    expect(await rejection(loop.runUntilComplete(waiting))).toBe(exc);
    expect(stream.exception()).toBe(exc);
  });
});

// ---------------------------------------------------------------- constructors, repr, FlowControlMixin

describe.each(LOOPS)('StreamReader and StreamReaderProtocol on %s', (backend) => {
  useLoop(backend);
  let loop: TestLoop;

  beforeEach(() => {
    loop = newLoop(backend);
  });

  afterEach(async () => {
    setEventLoop(null);
    await runBriefly(loop);
    loop.close();
  });

  it('a reader needs a loop', () => {
    expect(() => new StreamReader()).toThrow(/no current event loop/);
  }); // CPython test_streams: test_streamreader_constructor_without_loop

  it('a reader made in a task gets the running loop', async () => {
    const reader = await loop.runUntilComplete(async () => new StreamReader());
    expect(reader._loop).toBe(loop);
  }); // CPython test_streams: test_streamreader_constructor_use_running_loop

  it('a reader gets the loop set with setEventLoop', () => {
    setEventLoop(loop);
    expect(new StreamReader()._loop).toBe(loop);
  }); // CPython test_streams: test_streamreader_constructor_use_global_loop

  it('a protocol needs a loop', () => {
    const reader = new StreamReader({ loop });
    expect(() => new StreamReaderProtocol(reader)).toThrow(/no current event loop/);
  }); // CPython test_streams: test_streamreaderprotocol_constructor_without_loop

  it('a protocol made in a task gets the running loop', async () => {
    const reader = new StreamReader({ loop });
    const protocol = await loop.runUntilComplete(async () => new StreamReaderProtocol(reader));
    expect(protocol._loop).toBe(loop);
  }); // CPython test_streams: test_streamreaderprotocol_constructor_use_running_loop

  it('a protocol gets the loop set with setEventLoop', () => {
    setEventLoop(loop);
    expect(new StreamReaderProtocol(new StreamReader({ loop }))._loop).toBe(loop);
  }); // CPython test_streams: test_streamreaderprotocol_constructor_use_global_loop

  it('any number of tasks can wait in drain()', async () => {
    let drained = 0;
    await loop.runUntilComplete(async () => {
      const stream = new FlowControlMixin({ loop });
      const writer = new StreamWriter(fakeTransport(), stream, null, loop);
      stream.pauseWriting();
      loop.callLater(0.1, () => stream.resumeWriting());
      await gather(
        Array.from({ length: 10 }, () =>
          loop.createTask(async () => {
            await writer.drain();
            drained++;
          }),
        ),
      );
    });
    expect(drained).toBe(10);
  }); // CPython test_streams: test_multiple_drain

  it('repr', () => {
    expect(String(new StreamReader({ loop }))).toBe('<StreamReader>');
  }); // CPython test_streams: test___repr__

  it('repr with a limit', () => {
    expect(String(new StreamReader({ loop, limit: 123 }))).toBe('<StreamReader limit=123>');
  }); // CPython test_streams: test___repr__nondefault_limit

  it('repr at EOF', () => {
    const stream = new StreamReader({ loop });
    stream.feedEof();
    expect(String(stream)).toBe('<StreamReader eof>');
  }); // CPython test_streams: test___repr__eof

  it('repr with data', () => {
    const stream = new StreamReader({ loop });
    stream.feedData(B('data'));
    expect(String(stream)).toBe('<StreamReader 4 bytes>');
  }); // CPython test_streams: test___repr__data

  it('repr with an exception', () => {
    const stream = new StreamReader({ loop });
    stream.setException(new RuntimeError());
    expect(String(stream)).toBe('<StreamReader exception=RuntimeError()>');
  }); // CPython test_streams: test___repr__exception

  it('repr with a waiter', async () => {
    const stream = new StreamReader({ loop });
    stream._waiter = loop.createFuture<void>();
    expect(String(stream)).toMatch(/^<StreamReader waiter=<Future pending[\S ]*>>$/);
    stream._waiter.setResult(undefined);
    await loop.runUntilComplete(stream._waiter);
    stream._waiter = null;
    expect(String(stream)).toBe('<StreamReader>');
  }); // CPython test_streams: test___repr__waiter

  it('repr with a transport', () => {
    const stream = new StreamReader({ loop });
    stream._transport = fakeTransport();
    expect(String(stream)).toBe('<StreamReader transport=<Transport>>');
  }); // CPython test_streams: test___repr__transport

  it('feedData() after feedEof() is an error', () => {
    const stream = new StreamReader({ loop });
    stream.feedEof();
    expect(() => stream.feedData(B('x'))).toThrow('feed_data after feed_eof');
  });
});

// ---------------------------------------------------------------- over sockets

const HTTP_RESPONSE = 'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nTest message';

/** CPython's run_test_server: answers one HTTP request per connection, then closes. */
async function httpHandler(reader: StreamReader, writer: StreamWriter): Promise<void> {
  try {
    await reader.readuntil('\r\n\r\n');
    writer.write(HTTP_RESPONSE);
  } catch (e) {
    // The client may close without asking.
    if (!(e instanceof IncompleteReadError || e instanceof OSError)) throw e;
  }
  writer.close();
}

function addrOf(server: Server): [string, number] {
  return server.sockets[0].getsockname() as [string, number];
}

describe.each(LOOPS)('streams over sockets on %s', (backend) => {
  useLoop(backend);
  let loop: TestLoop;
  let errors: ExceptionContext[];
  let fdsBefore: number;
  let dir: string;

  beforeEach(() => {
    fdsBefore = fdCount();
    loop = newLoop(backend);
    errors = [];
    loop.setExceptionHandler((_l, ctx) => errors.push(ctx));
    dir = mkdtempSync(path.join(tmpdir(), 'aionode-streams-'));
  });

  afterEach(async () => {
    await runBriefly(loop, 4);
    loop.close();
    rmSync(dir, { recursive: true, force: true });
    expect(fdCount()).toBe(fdsBefore);
  });

  async function basetestOpenConnection(open: () => Sleep<[StreamReader, StreamWriter]>): Promise<void> {
    const [reader, writer] = await open();
    writer.write('GET / HTTP/1.0\r\n\r\n');
    expect(await reader.readline()).toEqual(B('HTTP/1.0 200 OK\r\n'));
    const data = await reader.read();
    expect(data.toString().endsWith('\r\n\r\nTest message')).toBe(true);
    writer.close();
    await writer.waitClosed();
  }

  it('openConnection', async () => {
    await loop.runUntilComplete(async () => {
      const server = await startServer(httpHandler, '127.0.0.1', 0);
      await basetestOpenConnection(() => openConnection(...addrOf(server)));
      server.close();
      await server.waitClosed();
    });
    expect(errors).toEqual([]);
  }); // CPython test_streams: test_open_connection

  it('openUnixConnection', async () => {
    const sockPath = path.join(dir, 'http.sock');
    await loop.runUntilComplete(async () => {
      const server = await startUnixServer(httpHandler, sockPath);
      await basetestOpenConnection(() => openUnixConnection(sockPath));
      server.close();
      await server.waitClosed();
    });
    expect(errors).toEqual([]);
  }); // CPython test_streams: test_open_unix_connection

  async function basetestOpenConnectionError(open: () => Sleep<[StreamReader, StreamWriter]>): Promise<void> {
    class ZeroDivisionError extends Error {}
    const [reader, writer] = await open();
    (writer._protocol as StreamReaderProtocol).connectionLost(new ZeroDivisionError());
    expect(await rejection(reader.read())).toBeInstanceOf(ZeroDivisionError);
    writer.close();
    await sleep(0);
    await sleep(0);
  }

  it('openConnection: a lost connection fails reads', async () => {
    await loop.runUntilComplete(async () => {
      const server = await startServer(httpHandler, '127.0.0.1', 0);
      await basetestOpenConnectionError(() => openConnection(...addrOf(server)));
      server.close();
      await server.waitClosed();
    });
    expect(errors).toEqual([]);
  }); // CPython test_streams: test_open_connection_error

  it('openUnixConnection: a lost connection fails reads', async () => {
    const sockPath = path.join(dir, 'http.sock');
    await loop.runUntilComplete(async () => {
      const server = await startUnixServer(httpHandler, sockPath);
      await basetestOpenConnectionError(() => openUnixConnection(sockPath));
      server.close();
      await server.waitClosed();
    });
    expect(errors).toEqual([]);
  }); // CPython test_streams: test_open_unix_connection_error

  async function handleClient(reader: StreamReader, writer: StreamWriter): Promise<void> {
    const data = await reader.readline();
    writer.write(data);
    await writer.drain();
    writer.close();
    await writer.waitClosed();
  }

  async function echoClient(open: () => Sleep<[StreamReader, StreamWriter]>): Promise<Buffer> {
    const [reader, writer] = await open();
    writer.write('hello world!\n');
    const msgback = await reader.readline();
    writer.close();
    await writer.waitClosed();
    return msgback;
  }

  it('startServer with a coroutine or a callback as client handler', async () => {
    await loop.runUntilComplete(async () => {
      // A coroutine function: run as a task.
      let server = await startServer(handleClient, '127.0.0.1', 0);
      expect(await echoClient(() => openConnection(...addrOf(server)))).toEqual(B('hello world!\n'));
      server.close();
      await server.waitClosed();
      // A plain callback that makes its own task.
      server = await startServer(
        (r, w) => {
          loop.createTask(handleClient(r, w));
        },
        '127.0.0.1',
        0,
      );
      expect(await echoClient(() => openConnection(...addrOf(server)))).toEqual(B('hello world!\n'));
      server.close();
      await server.waitClosed();
    });
    expect(errors).toEqual([]);
  }); // CPython test_streams: test_start_server

  it('startUnixServer with a coroutine or a callback as client handler', async () => {
    const sockPath = path.join(dir, 'echo.sock');
    await loop.runUntilComplete(async () => {
      let server = await startUnixServer(handleClient, sockPath);
      expect(await echoClient(() => openUnixConnection(sockPath))).toEqual(B('hello world!\n'));
      server.close();
      await server.waitClosed();
      server = await startUnixServer((r, w) => {
        loop.createTask(handleClient(r, w));
      }, sockPath);
      expect(await echoClient(() => openUnixConnection(sockPath))).toEqual(B('hello world!\n'));
      server.close();
      await server.waitClosed();
    });
    expect(errors).toEqual([]);
  }); // CPython test_streams: test_start_unix_server

  it('drain() throws once the peer has closed (write/drain never spins)', async () => {
    // Not an aionode server: the bug was drain() never giving up the loop.
    const peer = net.createServer((s) => s.destroy());
    await new Promise<void>((resolve) => peer.listen(0, '127.0.0.1', resolve));
    const port = (peer.address() as net.AddressInfo).port;
    try {
      const e = await rejection(
        loop.runUntilComplete(async () => {
          const [, writer] = await openConnection('127.0.0.1', port);
          try {
            for (;;) {
              writer.write('foo\n');
              await writer.drain();
            }
          } finally {
            writer.close();
          }
        }),
      );
      expect([ConnectionResetError, ConnectionAbortedError, BrokenPipeError].some((E) => e instanceof E)).toBe(true);
    } finally {
      await new Promise((resolve) => peer.close(resolve));
    }
    expect(errors).toEqual([]);
  }); // CPython test_streams: test_drain_raises

  it('waitClosed() after close()', async () => {
    await loop.runUntilComplete(async () => {
      const server = await startServer(httpHandler, '127.0.0.1', 0);
      const [rd, wr] = await openConnection(...addrOf(server));
      wr.write('GET / HTTP/1.0\r\n\r\n');
      expect(await rd.readline()).toEqual(B('HTTP/1.0 200 OK\r\n'));
      expect((await rd.read()).toString().endsWith('\r\n\r\nTest message')).toBe(true);
      expect(wr.isClosing()).toBe(false);
      wr.close();
      expect(wr.isClosing()).toBe(true);
      await wr.waitClosed();
      server.close();
      await server.waitClosed();
    });
  }); // CPython test_streams: test_wait_closed_on_close

  it('waitClosed() after close() with unread data', async () => {
    await loop.runUntilComplete(async () => {
      const server = await startServer(httpHandler, '127.0.0.1', 0);
      const [rd, wr] = await openConnection(...addrOf(server));
      wr.write('GET / HTTP/1.0\r\n\r\n');
      expect(await rd.readline()).toEqual(B('HTTP/1.0 200 OK\r\n'));
      wr.close();
      await wr.waitClosed();
      server.close();
      await server.waitClosed();
    });
  }); // CPython test_streams: test_wait_closed_on_close_with_unread_data

  it('the writer API from a coroutine', async () => {
    await loop.runUntilComplete(async () => {
      const server = await startServer(httpHandler, '127.0.0.1', 0);
      const [rd, wr] = await openConnection(...addrOf(server));
      wr.write('GET / HTTP/1.0\r\n\r\n');
      expect(await rd.readline()).toEqual(B('HTTP/1.0 200 OK\r\n'));
      expect((await rd.read()).toString().endsWith('\r\n\r\nTest message')).toBe(true);
      wr.close();
      await wr.waitClosed();
      server.close();
      await server.waitClosed();
    });
    expect(errors).toEqual([]);
  }); // CPython test_streams: test_async_writer_api

  it('drain() after close() throws ConnectionResetError', async () => {
    await loop.runUntilComplete(async () => {
      const server = await startServer(httpHandler, '127.0.0.1', 0);
      const [rd, wr] = await openConnection(...addrOf(server));
      wr.write('GET / HTTP/1.0\r\n\r\n');
      expect(await rd.readline()).toEqual(B('HTTP/1.0 200 OK\r\n'));
      expect((await rd.read()).toString().endsWith('\r\n\r\nTest message')).toBe(true);
      wr.close();
      const e = await rejection(
        (async () => {
          wr.write('data');
          await wr.drain();
        })(),
      );
      expect(e).toBeInstanceOf(ConnectionResetError);
      server.close();
      await server.waitClosed();
    });
    expect(errors).toEqual([]);
  }); // CPython test_streams: test_async_writer_api_exception_after_close

  it('closing the writer feeds EOF to its reader', async () => {
    await loop.runUntilComplete(async () => {
      const server = await startServer(httpHandler, '127.0.0.1', 0);
      const [rd, wr] = await openConnection(...addrOf(server));
      wr.close();
      await wr.waitClosed();
      expect(rd.atEof()).toBe(true);
      expect(await rd.read()).toEqual(B(''));
      server.close();
      await server.waitClosed();
    });
    expect(errors).toEqual([]);
  }); // CPython test_streams: test_eof_feed_when_closing_writer

  it('an exception ending a client handler goes to the exception handler', async () => {
    class ZeroDivisionError extends Error {}
    await loop.runUntilComplete(async () => {
      const server = await startServer(
        async () => {
          throw new ZeroDivisionError();
        },
        '127.0.0.1',
        0,
        { startServing: false },
      );
      await server.startServing();
      const [rd, wr] = await openConnection(...addrOf(server));
      await sleep(0.1);
      // The handler's connection was closed.
      expect(await rd.read()).toEqual(B(''));
      wr.close();
      await wr.waitClosed();
      server.close();
      await server.waitClosed();
    });
    expect(errors.length).toBe(1);
    expect(errors[0].message).toBe('Unhandled exception in client_connected_cb');
    expect(errors[0].exception).toBeInstanceOf(ZeroDivisionError);
  }); // CPython test_streams: test_unhandled_exceptions

  it('a client handler cancelled closes its connection quietly', async () => {
    await loop.runUntilComplete(async () => {
      const server = await startServer(
        async (_r, w) => {
          w.write('x');
          currentTask()!.cancel();
          await sleep(0);
        },
        '127.0.0.1',
        0,
      );
      const [rd, wr] = await openConnection(...addrOf(server));
      expect(await rd.read()).toEqual(B('x'));
      wr.close();
      await wr.waitClosed();
      server.close();
      await server.waitClosed();
    });
    expect(errors).toEqual([]);
  }); // CPython test_streams: test_unhandled_cancel

  it('a writer dropped unclosed closes its transport with a ResourceWarning', async () => {
    const warnings: string[] = [];
    // Writers of earlier tests may be collected now too: only this one counts.
    let fd = -1;
    const mine = (ws: string[]): string[] => ws.filter((w) => w.startsWith('unclosed') && w.includes(` fd=${fd} `));
    const onWarning = (w: Error): void => {
      if (w.name === 'ResourceWarning') warnings.push(w.message);
    };
    process.on('warning', onWarning);
    try {
      await loop.runUntilComplete(async () => {
        const server = await startServer(httpHandler, '127.0.0.1', 0);
        let transport!: Transport;
        // A separate frame, so no local of this one keeps the writer alive.
        const rd = await (async () => {
          const [r, w] = await openConnection(...addrOf(server));
          w.write('GET / HTTP/1.0\r\n\r\n');
          transport = w.transport;
          return r;
        })();
        expect(await rd.readline()).toEqual(B('HTTP/1.0 200 OK\r\n'));
        await rd.read();
        fd = (transport as unknown as { _sockFd: number })._sockFd;
        for (let i = 0; i < 100 && mine(warnings).length === 0; i++) {
          gc!();
          await sleep(0.005);
        }
        expect(transport.isClosing()).toBe(true);
        server.close();
        await server.waitClosed();
      });
    } finally {
      process.off('warning', onWarning);
    }
    // The transport class is the loop's (SelectorSocketTransport, ProactorSocketTransport).
    expect(mine(warnings)).toEqual([expect.stringMatching(/^unclosed <StreamWriter transport=<\w+SocketTransport /)]);
    expect(errors).toEqual([]);
  }); // CPython test_streams: test_unclosed_resource_warnings

  it('a signal aborts openConnection', async () => {
    await loop.runUntilComplete(async () => {
      const server = await startServer(httpHandler, '127.0.0.1', 0);
      const ac = new AbortController();
      ac.abort('no');
      expect(await rejection(openConnection(...addrOf(server), { signal: ac.signal }))).toBeInstanceOf(CancelledError);
      server.close();
      await server.waitClosed();
    });
    expect(errors).toEqual([]);
  });

  // ------------------------------------------------------------ both kinds of coroutine

  describe.each(KINDS)('with %s coroutines', (kind) => {
    it('echoes lines, and answers after the client half-closes', async () => {
      const lines = Array.from({ length: 200 }, (_, i) => `line ${i} ${'.'.repeat(i % 50)}\n`);
      const expected = B(lines.join('') + 'bye\n');
      const got = await runMain(loop, kind, {
        async: async () => {
          const server = await startServer(
            async (r, w) => {
              for (;;) {
                const line = await r.readline();
                if (line.length === 0) break;
                w.write(line);
                await w.drain();
              }
              w.write('bye\n');
              w.close();
              await w.waitClosed();
            },
            '127.0.0.1',
            0,
          );
          const [reader, writer] = await openConnection(...addrOf(server));
          writer.writelines(lines);
          await writer.drain();
          expect(writer.canWriteEof()).toBe(true);
          writer.writeEof();
          const data = await reader.read();
          writer.close();
          await writer.waitClosed();
          server.close();
          await server.waitClosed();
          return data;
        },
        generator: function* () {
          const server = yield* startServer(
            function* (r, w) {
              for (;;) {
                const line = yield* r.readline();
                if (line.length === 0) break;
                w.write(line);
                yield* w.drain();
              }
              w.write('bye\n');
              w.close();
              yield* w.waitClosed();
            },
            '127.0.0.1',
            0,
          );
          const [reader, writer] = yield* openConnection(...addrOf(server));
          writer.writelines(lines);
          yield* writer.drain();
          expect(writer.canWriteEof()).toBe(true);
          writer.writeEof();
          const data = yield* reader.read();
          writer.close();
          yield* writer.waitClosed();
          server.close();
          yield* server.waitClosed();
          return data;
        },
      });
      expect(got).toEqual(expected);
      expect(errors).toEqual([]);
    });

    it('reads lines in a loop until EOF', async () => {
      const lines = ['one\n', 'two\n', '', 'three\n', 'four'];
      const got = await runMain(loop, kind, {
        async: async () => {
          const server = await startServer(
            async (_r, w) => {
              for (const l of lines) {
                w.write(l);
                await sleep(0.001);
              }
              w.close();
            },
            '127.0.0.1',
            0,
          );
          const [reader, writer] = await openConnection(...addrOf(server));
          const seen: string[] = [];
          for await (const line of reader) seen.push(line.toString());
          writer.close();
          await writer.waitClosed();
          server.close();
          await server.waitClosed();
          return seen;
        },
        generator: function* () {
          const server = yield* startServer(
            function* (_r, w) {
              for (const l of lines) {
                w.write(l);
                yield* sleep(0.001);
              }
              w.close();
            },
            '127.0.0.1',
            0,
          );
          const [reader, writer] = yield* openConnection(...addrOf(server));
          const seen: string[] = [];
          for (;;) {
            const line = yield* reader.readline();
            if (line.length === 0) break;
            seen.push(line.toString());
          }
          writer.close();
          yield* writer.waitClosed();
          server.close();
          yield* server.waitClosed();
          return seen;
        },
      });
      expect(got).toEqual(['one\n', 'two\n', 'three\n', 'four']);
      expect(errors).toEqual([]);
    });

    it('drain() keeps the write buffer under high-water + one chunk while the peer stops reading', async () => {
      const TOTAL = 32 * 1024 * 1024;
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      const high = 64 * 1024;
      const peer = { buffered: -1, reading: true, received: 0 };
      // The peer's reader holds at most twice its limit plus one read (256 KiB).
      const readerBound = 2 * 64 * 1024 + 256 * 1024;
      const result = await runMain(loop, kind, {
        async: async () => {
          const server = await startServer(
            async (r, w) => {
              await sleep(0.3);
              peer.buffered = r._buffer.length;
              peer.reading = w.transport.isReading();
              for (;;) {
                const b = await r.read(65536);
                if (b.length === 0) break;
                peer.received += b.length;
              }
              w.write(`${peer.received}\n`);
              w.close();
            },
            '127.0.0.1',
            0,
          );
          const [reader, writer] = await openConnection(...addrOf(server));
          let max = 0;
          for (let sent = 0; sent < TOTAL; sent += chunk.length) {
            writer.write(chunk);
            max = Math.max(max, writer.transport.getWriteBufferSize());
            await writer.drain();
          }
          writer.writeEof();
          const reply = await reader.readline();
          writer.close();
          await writer.waitClosed();
          server.close();
          await server.waitClosed();
          return { max, reply };
        },
        generator: function* () {
          const server = yield* startServer(
            function* (r, w) {
              yield* sleep(0.3);
              peer.buffered = r._buffer.length;
              peer.reading = w.transport.isReading();
              for (;;) {
                const b = yield* r.read(65536);
                if (b.length === 0) break;
                peer.received += b.length;
              }
              w.write(`${peer.received}\n`);
              w.close();
            },
            '127.0.0.1',
            0,
          );
          const [reader, writer] = yield* openConnection(...addrOf(server));
          let max = 0;
          for (let sent = 0; sent < TOTAL; sent += chunk.length) {
            writer.write(chunk);
            max = Math.max(max, writer.transport.getWriteBufferSize());
            yield* writer.drain();
          }
          writer.writeEof();
          const reply = yield* reader.readline();
          writer.close();
          yield* writer.waitClosed();
          server.close();
          yield* server.waitClosed();
          return { max, reply };
        },
      });
      // Over the high-water mark (so pauseWriting fired and drain waited),
      // never by more than one chunk.
      expect(result.max).toBeGreaterThan(high);
      expect(result.max).toBeLessThanOrEqual(high + chunk.length);
      // The peer's reader paused its transport instead of buffering everything.
      expect(peer.reading).toBe(false);
      expect(peer.buffered).toBeGreaterThan(2 * 64 * 1024);
      expect(peer.buffered).toBeLessThanOrEqual(readerBound);
      expect(result.reply).toEqual(B(`${TOTAL}\n`));
      expect(errors).toEqual([]);
    });

    it('readexactly() past EOF throws IncompleteReadError with the partial data', async () => {
      const e = await runMain(loop, kind, {
        async: async () => {
          const server = await startServer(
            async (_r, w) => {
              w.write('12345');
              w.close();
            },
            '127.0.0.1',
            0,
          );
          const [reader, writer] = await openConnection(...addrOf(server));
          const err = await rejection(reader.readexactly(10));
          expect(reader.atEof()).toBe(true);
          writer.close();
          await writer.waitClosed();
          server.close();
          await server.waitClosed();
          return err;
        },
        generator: function* () {
          const server = yield* startServer(
            function* (_r, w) {
              w.write('12345');
              w.close();
            },
            '127.0.0.1',
            0,
          );
          const [reader, writer] = yield* openConnection(...addrOf(server));
          let err: unknown;
          try {
            yield* reader.readexactly(10);
          } catch (exc) {
            err = exc;
          }
          expect(reader.atEof()).toBe(true);
          writer.close();
          yield* writer.waitClosed();
          server.close();
          yield* server.waitClosed();
          return err;
        },
      });
      expect(e).toBeInstanceOf(IncompleteReadError);
      expect((e as IncompleteReadError).partial).toEqual(B('12345'));
      expect((e as IncompleteReadError).expected).toBe(10);
      expect(errors).toEqual([]);
    });

    it('a line over the limit throws LimitOverrunError and loses no data', async () => {
      const long = 'x'.repeat(5000) + '\n';
      const result = await runMain(loop, kind, {
        async: async () => {
          const server = await startServer(
            async (_r, w) => {
              w.write(long + 'tail\n');
              w.close();
            },
            '127.0.0.1',
            0,
          );
          const [reader, writer] = await openConnection(...addrOf(server), { limit: 1024 });
          const err = await rejection(reader.readuntil('\n'));
          const buffered = reader._buffer.length;
          const line = await reader.readexactly(long.length);
          const tail = await reader.readline();
          const rest = await reader.read();
          writer.close();
          await writer.waitClosed();
          server.close();
          await server.waitClosed();
          return { err, buffered, line, tail, rest };
        },
        generator: function* () {
          const server = yield* startServer(
            function* (_r, w) {
              w.write(long + 'tail\n');
              w.close();
            },
            '127.0.0.1',
            0,
          );
          const [reader, writer] = yield* openConnection(...addrOf(server), { limit: 1024 });
          let err: any;
          try {
            yield* reader.readuntil('\n');
          } catch (exc) {
            err = exc;
          }
          const buffered = reader._buffer.length;
          const line = yield* reader.readexactly(long.length);
          const tail = yield* reader.readline();
          const rest = yield* reader.read();
          writer.close();
          yield* writer.waitClosed();
          server.close();
          yield* server.waitClosed();
          return { err, buffered, line, tail, rest };
        },
      });
      expect(result.err).toBeInstanceOf(LimitOverrunError);
      expect(result.err.consumed).toBeGreaterThan(1024);
      // Whatever had arrived when it threw is still buffered.
      expect(result.buffered).toBeGreaterThanOrEqual(result.err.consumed);
      expect(result.line).toEqual(B(long));
      expect(result.tail).toEqual(B('tail\n'));
      expect(result.rest).toEqual(B(''));
      expect(errors).toEqual([]);
    });

    it('a 1 MiB line against the 64 KiB limit: LimitOverrunError with a bounded buffer', async () => {
      const MIB = 1024 * 1024;
      const result = await runMain(loop, kind, {
        async: async () => {
          const server = await startServer(
            async (_r, w) => {
              w.write(Buffer.alloc(MIB, 0x79));
              w.write('\n');
              try {
                await w.drain();
              } catch {
                // The client gives up on the line and closes.
              }
              w.close();
            },
            '127.0.0.1',
            0,
          );
          const [reader, writer] = await openConnection(...addrOf(server));
          const err = await rejection(reader.readuntil('\n'));
          const buffered = reader._buffer.length;
          writer.close();
          await writer.waitClosed();
          server.close();
          await server.waitClosed();
          return { err, buffered };
        },
        generator: function* () {
          const server = yield* startServer(
            function* (_r, w) {
              w.write(Buffer.alloc(MIB, 0x79));
              w.write('\n');
              try {
                yield* w.drain();
              } catch {
                // The client gives up on the line and closes.
              }
              w.close();
            },
            '127.0.0.1',
            0,
          );
          const [reader, writer] = yield* openConnection(...addrOf(server));
          let err: any;
          try {
            yield* reader.readuntil('\n');
          } catch (exc) {
            err = exc;
          }
          const buffered = reader._buffer.length;
          writer.close();
          yield* writer.waitClosed();
          server.close();
          yield* server.waitClosed();
          return { err, buffered };
        },
      });
      expect(result.err).toBeInstanceOf(LimitOverrunError);
      expect(result.err.message).toBe('Separator is not found, and chunk exceed the limit');
      // The limit plus one read (256 KiB at most).
      expect(result.buffered).toBeGreaterThan(64 * 1024);
      expect(result.buffered).toBeLessThanOrEqual(64 * 1024 + 256 * 1024);
      expect(errors).toEqual([]);
    });

    it('echoes over a Unix socket', async () => {
      const sockPath = path.join(dir, `echo-${kind}.sock`);
      const payload = Buffer.from(Array.from({ length: 100_000 }, (_, i) => (i * 7) & 0xff));
      const got = await runMain(loop, kind, {
        async: async () => {
          const server = await startUnixServer(async (r, w) => {
            w.write(await r.read());
            w.close();
          }, sockPath);
          const [reader, writer] = await openUnixConnection(sockPath);
          writer.write(payload);
          writer.writeEof();
          const data = await reader.read();
          expect(writer.getExtraInfo('peername')).toBe(sockPath);
          writer.close();
          await writer.waitClosed();
          server.close();
          await server.waitClosed();
          return data;
        },
        generator: function* () {
          const server = yield* startUnixServer(function* (r, w) {
            w.write(yield* r.read());
            w.close();
          }, sockPath);
          const [reader, writer] = yield* openUnixConnection(sockPath);
          writer.write(payload);
          writer.writeEof();
          const data = yield* reader.read();
          expect(writer.getExtraInfo('peername')).toBe(sockPath);
          writer.close();
          yield* writer.waitClosed();
          server.close();
          yield* server.waitClosed();
          return data;
        },
      });
      expect(got).toEqual(payload);
      expect(errors).toEqual([]);
    });
  });
});

// ---------------------------------------------------------------- TLS

function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const OPENSSL = hasOpenssl();

if (!OPENSSL) describe('streams over TLS', () => {
  it.skip('needs the openssl CLI on PATH to make a test certificate; skipped', () => {});
});

describe.runIf(OPENSSL)('streams over TLS', () => {
  let certDir: string;
  let key: Buffer;
  let cert: Buffer;

  beforeAll(() => {
    certDir = mkdtempSync(path.join(tmpdir(), 'aionode-streams-tls-'));
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes',
      '-keyout', path.join(certDir, 'key.pem'), '-out', path.join(certDir, 'cert.pem'),
      '-subj', '/CN=localhost', '-days', '1',
      '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
    ], { stdio: 'ignore' });
    key = readFileSync(path.join(certDir, 'key.pem'));
    cert = readFileSync(path.join(certDir, 'cert.pem'));
  });

  afterAll(() => {
    rmSync(certDir, { recursive: true, force: true });
  });

  describe.each(LOOPS)('on %s', (backend) => {
    useLoop(backend);
    let loop: TestLoop;
    let errors: ExceptionContext[];
    let fdsBefore: number;

    beforeEach(() => {
      fdsBefore = fdCount();
      loop = newLoop(backend);
      errors = [];
      loop.setExceptionHandler((_l, ctx) => errors.push(ctx));
    });

    afterEach(async () => {
      await runBriefly(loop, 4);
      loop.close();
      expect(fdCount()).toBe(fdsBefore);
    });

    it('openConnection with ssl', async () => {
      await loop.runUntilComplete(async () => {
        const server = await startServer(httpHandler, '127.0.0.1', 0, { ssl: { key, cert } });
        const [reader, writer] = await openConnection(...addrOf(server), { ssl: { ca: cert }, serverHostname: 'localhost' });
        expect(writer.getExtraInfo('sslcontext')).not.toBeUndefined();
        writer.write('GET / HTTP/1.0\r\n\r\n');
        const data = await reader.read();
        expect(data.toString().endsWith('\r\n\r\nTest message')).toBe(true);
        writer.close();
        await writer.waitClosed();
        server.close();
        await server.waitClosed();
      });
      expect(errors).toEqual([]);
    }); // CPython test_streams: test_open_connection_no_loop_ssl

    it('StreamWriter.startTls upgrades both ends of a connection', async () => {
      const [msg1, msg2] = await loop.runUntilComplete(async () => {
        const server = await startServer(async (r, w) => {
          const data1 = await r.readline();
          w.write(data1);
          await w.drain();
          expect(w.getExtraInfo('sslcontext')).toBeUndefined();
          await w.startTls({ key, cert });
          expect(w.getExtraInfo('sslcontext')).not.toBeUndefined();
          const data2 = await r.readline();
          w.write(data2);
          await w.drain();
          w.close();
          await w.waitClosed();
        }, '127.0.0.1', 0);
        const [reader, writer] = await openConnection(...addrOf(server));
        writer.write('hello world 1!\n');
        await writer.drain();
        const msgback1 = await reader.readline();
        expect(writer.getExtraInfo('sslcontext')).toBeUndefined();
        await writer.startTls({ ca: cert }, { serverHostname: 'localhost' });
        expect(writer.getExtraInfo('sslcontext')).not.toBeUndefined();
        writer.write('hello world 2!\n');
        await writer.drain();
        const msgback2 = await reader.readline();
        writer.close();
        await writer.waitClosed();
        server.close();
        await server.waitClosed();
        return [msgback1, msgback2];
      });
      expect(errors).toEqual([]);
      expect(msg1).toEqual(B('hello world 1!\n'));
      expect(msg2).toEqual(B('hello world 2!\n'));
    }); // CPython test_streams: test_start_tls
  });
});
