/**
 * Pipe transports (lib/unix-events.ts): loop.connectReadPipe /
 * connectWritePipe over pipes, FIFOs, character devices and socketpairs on
 * every loop. Ports of CPython's test_events.py pipe cases
 * (test_read_pipe, test_write_pipe, ...) and test_unix_events.py's
 * UnixReadPipeTransportTests / UnixWritePipeTransportTests that apply to
 * real fds (the mock-based ones become real-pipe checks).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  BaseProtocol,
  BrokenPipeError,
  OSError,
  Protocol,
  sleep,
  StreamReader,
  StreamReaderProtocol,
  type BaseTransport,
  type ReadTransport,
  type WriteTransport,
} from '../lib/index.js';
import { binding } from '../lib/native.js';
import { LOOPS, newLoop, useLoop, type TestLoop } from './helpers/loops.js';
import { fdCount, runBriefly } from './helpers/loop.js';
import { settleFds } from './helpers/net.js';

const FIXTURE = path.resolve(__dirname, 'fixtures', 'subprocess', 'stdin-reader.cjs');

/** CPython test_events MyReadPipeProto: checks the call order as it goes. */
class ReadProto extends Protocol {
  state: string[] = ['INITIAL'];
  nbytes = 0;
  chunks: Buffer[] = [];
  transport: ReadTransport | null = null;
  lostWith: Error | undefined | 'not yet' = 'not yet';
  override connectionMade(transport: BaseTransport): void {
    this.transport = transport as ReadTransport;
    expect(this.state).toEqual(['INITIAL']);
    this.state.push('CONNECTED');
  }
  override dataReceived(data: Buffer): void {
    expect(this.state).toEqual(['INITIAL', 'CONNECTED']);
    this.nbytes += data.length;
    this.chunks.push(Buffer.from(data));
  }
  override eofReceived(): void {
    expect(this.state).toEqual(['INITIAL', 'CONNECTED']);
    this.state.push('EOF');
  }
  override connectionLost(exc: Error | undefined): void {
    if (!this.state.includes('EOF')) this.state.push('EOF'); // a missed EOF is fine
    expect(this.state).toEqual(['INITIAL', 'CONNECTED', 'EOF']);
    this.state.push('CLOSED');
    this.lostWith = exc;
  }
}

/** CPython test_events MyWritePipeProto, plus flow-control counters. */
class WriteProto extends BaseProtocol {
  state: string[] = ['INITIAL'];
  transport: WriteTransport | null = null;
  lostWith: Error | undefined | 'not yet' = 'not yet';
  pauses = 0;
  resumes = 0;
  override connectionMade(transport: BaseTransport): void {
    this.transport = transport as WriteTransport;
    expect(this.state).toEqual(['INITIAL']);
    this.state.push('CONNECTED');
  }
  override connectionLost(exc: Error | undefined): void {
    expect(this.state).toEqual(['INITIAL', 'CONNECTED']);
    this.state.push('CLOSED');
    this.lostWith = exc;
  }
  override pauseWriting(): void {
    this.pauses++;
  }
  override resumeWriting(): void {
    this.resumes++;
  }
}

/** A blocking read of what is in the pipe now (the write end made it non-blocking only on its side). */
function readAvailable(fd: number, max = 1 << 20): Buffer {
  const buf = Buffer.alloc(max);
  const n = fs.readSync(fd, buf, 0, max, null);
  return buf.subarray(0, n);
}

describe.each(LOOPS)('pipes on %s', (name) => {
  useLoop(name);
  let loop: TestLoop;
  let baseline: number;
  let tmp: string | null = null;

  beforeEach(() => {
    loop = newLoop(name);
    baseline = fdCount();
  });

  afterEach(async () => {
    try {
      if (!loop.isClosed()) await runBriefly(loop, 3);
      // Every pipe end the tests made is closed by its transport or the test.
      expect(await settleFds(baseline)).toBe(baseline);
    } finally {
      loop.close();
      if (tmp !== null) rmSync(tmp, { recursive: true, force: true });
      tmp = null;
    }
  });

  it('reads until EOF: connectionMade, dataReceived, eofReceived, connectionLost, once each', async () => {
    const [r, w] = binding().pipe();
    const proto = new ReadProto();
    await loop.runUntilComplete(async () => {
      const [t, p] = await loop.connectReadPipe(() => proto, r);
      expect(p).toBe(proto);
      expect(t.getExtraInfo('pipe')).toBe(r);
      expect(proto.state).toEqual(['INITIAL', 'CONNECTED']);
      expect(t.isReading()).toBe(true);
      fs.writeSync(w, '1');
      await runUntilAsync(() => proto.nbytes >= 1);
      expect(proto.nbytes).toBe(1);
      fs.writeSync(w, '2345');
      await runUntilAsync(() => proto.nbytes >= 5);
      expect(proto.state).toEqual(['INITIAL', 'CONNECTED']);
      binding().close(w);
      await runUntilAsync(() => proto.state.includes('CLOSED'));
      expect(t.isClosing()).toBe(true);
    });
    expect(proto.state).toEqual(['INITIAL', 'CONNECTED', 'EOF', 'CLOSED']);
    expect(Buffer.concat(proto.chunks).toString()).toBe('12345');
    expect(proto.lostWith).toBeUndefined();
    // The transport closed the read end.
    expect(() => fs.fstatSync(r)).toThrow();
  }); // CPython test_events: test_read_pipe

  it('pauseReading holds data back, resumeReading delivers it', async () => {
    const [r, w] = binding().pipe();
    const proto = new ReadProto();
    await loop.runUntilComplete(async () => {
      const [t] = await loop.connectReadPipe(() => proto, r);
      t.pauseReading();
      expect(t.isReading()).toBe(false);
      t.pauseReading(); // no-op when paused
      fs.writeSync(w, 'held');
      await sleepLoop(0.05);
      expect(proto.nbytes).toBe(0);
      t.resumeReading();
      expect(t.isReading()).toBe(true);
      await runUntilAsync(() => proto.nbytes === 4);
      t.close();
      expect(t.isReading()).toBe(false);
      t.resumeReading(); // no-op once closing
      expect(t.isReading()).toBe(false);
      await runUntilAsync(() => proto.state.includes('CLOSED'));
    });
    expect(proto.lostWith).toBeUndefined();
    binding().close(w);
  }); // CPython test_unix_events: test_pause_reading, test_resume_reading, test_close

  it('close() before EOF: connectionLost(undefined) once, fd closed', async () => {
    const [r, w] = binding().pipe();
    const proto = new ReadProto();
    let lost = 0;
    const orig = proto.connectionLost.bind(proto);
    proto.connectionLost = (exc) => {
      lost++;
      orig(exc);
    };
    await loop.runUntilComplete(async () => {
      const [t] = await loop.connectReadPipe(() => proto, r);
      t.close();
      t.close();
      await sleepLoop(0.02);
    });
    expect(lost).toBe(1);
    expect(proto.lostWith).toBeUndefined();
    binding().close(w);
  }); // CPython test_unix_events: test_close, test__call_connection_lost

  it("a loop's _fdClosing hook sees every watched fd closed (read, write, FileHandle) and can take the close over", async () => {
    const [r1, w1] = binding().pipe();
    const [r2, w2] = binding().pipe();
    const handle = await fs.promises.open('/dev/null', 'r+');
    const seen: number[] = [];
    const deferred: (() => void)[] = [];
    // What a proactor loop adds: true = "I close it myself, later".
    const hooked = loop as TestLoop & { _fdClosing?: (fd: number, close: () => void) => boolean };
    const own = Object.getOwnPropertyDescriptor(hooked, '_fdClosing');
    hooked._fdClosing = (fd, close) => {
      seen.push(fd);
      deferred.push(close);
      return true;
    };
    try {
      await loop.runUntilComplete(async () => {
        const [rt] = await loop.connectReadPipe(() => new ReadProto(), r1);
        const [wt] = await loop.connectWritePipe(() => new WriteProto(), w2);
        const [ct] = await loop.connectWritePipe(() => new WriteProto(), handle);
        rt.close();
        wt.close();
        ct.close();
        await sleepLoop(0.02);
      });
      expect(seen.sort((a, b) => a - b)).toEqual([r1, w2, handle.fd].sort((a, b) => a - b));
      // Taken over: still open until the loop runs the close it was given.
      for (const fd of [r1, w2]) expect(() => fs.fstatSync(fd)).not.toThrow();
      for (const close of deferred) close();
      for (const fd of [r1, w2]) expect(() => fs.fstatSync(fd)).toThrow();
      expect(handle.fd).toBe(-1);
    } finally {
      if (own) Object.defineProperty(hooked, '_fdClosing', own);
      else delete hooked._fdClosing;
      binding().close(w1);
      binding().close(r2);
    }
  });

  it('writes, then close() flushes and closes: the reader gets all of it and EOF', async () => {
    const [r, w] = binding().pipe();
    const proto = new WriteProto();
    await loop.runUntilComplete(async () => {
      const [t] = await loop.connectWritePipe(() => proto, w);
      expect(proto.state).toEqual(['INITIAL', 'CONNECTED']);
      expect(t.canWriteEof()).toBe(true);
      t.write(Buffer.from('1'));
      expect(readAvailable(r).toString()).toBe('1');
      t.write('2345');
      t.writelines([Buffer.from('67'), '89']);
      expect(readAvailable(r).toString()).toBe('23456789');
      t.write(new Uint8Array(0)); // nothing
      expect(t.getWriteBufferSize()).toBe(0);
      t.close();
      expect(t.isClosing()).toBe(true);
      await runUntilAsync(() => proto.state.includes('CLOSED'));
    });
    expect(proto.lostWith).toBeUndefined();
    expect(readAvailable(r).length).toBe(0); // EOF
    binding().close(r);
  }); // CPython test_events: test_write_pipe

  it('flow control: pauseWriting over the high-water mark, resumeWriting at the low one, data intact', async () => {
    const [r, w] = binding().pipe();
    const wproto = new WriteProto();
    const rproto = new ReadProto();
    const data = Buffer.alloc(1 << 20);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7 + (i >> 10)) & 0xff;
    await loop.runUntilComplete(async () => {
      const [wt] = await loop.connectWritePipe(() => wproto, w);
      wt.setWriteBufferLimits(4096);
      expect(wt.getWriteBufferLimits()).toEqual([1024, 4096]);
      wt.write(data);
      expect(wproto.pauses).toBe(1);
      expect(wt.getWriteBufferSize()).toBeGreaterThan(4096);
      const [rt] = await loop.connectReadPipe(() => rproto, r);
      await runUntilAsync(() => rproto.nbytes === data.length);
      expect(wproto.resumes).toBe(1);
      expect(wt.getWriteBufferSize()).toBe(0);
      expect(() => wt.setWriteBufferLimits(1, 2)).toThrow(RangeError);
      wt.close();
      await runUntilAsync(() => rproto.state.includes('CLOSED') && wproto.state.includes('CLOSED'));
      expect(rt.isClosing()).toBe(true);
    });
    expect(Buffer.concat(rproto.chunks).equals(data)).toBe(true);
  }); // CPython test_unix_events: test_write_buffer / test__write_ready_partial, FlowControlMixin

  it('a closed reader with nothing buffered: connectionLost(undefined) at once (the reader trick)', async () => {
    const [r, w] = binding().pipe();
    const proto = new WriteProto();
    await loop.runUntilComplete(async () => {
      await loop.connectWritePipe(() => proto, w);
      binding().close(r);
      await runUntilAsync(() => proto.state.includes('CLOSED'));
    });
    expect(proto.lostWith).toBeUndefined();
  }); // CPython test_events: test_write_pipe_disconnect_on_close

  it('a closed reader with data buffered: connectionLost(BrokenPipeError)', async () => {
    const [r, w] = binding().pipe();
    const proto = new WriteProto();
    await loop.runUntilComplete(async () => {
      const [t] = await loop.connectWritePipe(() => proto, w);
      t.write(Buffer.alloc(256 * 1024, 1)); // more than the pipe holds
      expect(t.getWriteBufferSize()).toBeGreaterThan(0);
      binding().close(r);
      await runUntilAsync(() => proto.state.includes('CLOSED'));
      // Writes after the loss are dropped (counted), not thrown.
      t.write('late');
    });
    expect(proto.lostWith).toBeInstanceOf(BrokenPipeError);
    expect((proto.lostWith as OSError).code).toBe('EPIPE');
  }); // CPython test_unix_events: test__read_ready (write transport), test_write_err

  it('writing into a pipe whose reader is gone: EPIPE becomes connectionLost(BrokenPipeError)', async () => {
    const [r, w] = binding().socketpair();
    const proto = new WriteProto();
    await loop.runUntilComplete(async () => {
      const [t] = await loop.connectWritePipe(() => proto, w);
      binding().close(r);
      // Before the loop notices the hang-up: the write itself fails.
      t.write('x');
      await runUntilAsync(() => proto.state.includes('CLOSED'));
    });
    expect(proto.lostWith).toBeInstanceOf(BrokenPipeError);
  }); // CPython test_unix_events: test_write_err (EPIPE without the exception handler)

  it('abort() drops what is buffered and calls connectionLost(undefined)', async () => {
    const [r, w] = binding().pipe();
    const proto = new WriteProto();
    await loop.runUntilComplete(async () => {
      const [t] = await loop.connectWritePipe(() => proto, w);
      t.write(Buffer.alloc(200 * 1024, 2));
      expect(t.getWriteBufferSize()).toBeGreaterThan(0);
      t.abort();
      expect(t.getWriteBufferSize()).toBe(0);
      t.abort(); // once
      await runUntilAsync(() => proto.state.includes('CLOSED'));
    });
    expect(proto.lostWith).toBeUndefined();
    // Only what the pipe took before the abort arrives, then EOF.
    let total = 0;
    for (let chunk = readAvailable(r); chunk.length > 0; chunk = readAvailable(r)) total += chunk.length;
    expect(total).toBeLessThan(200 * 1024);
    binding().close(r);
  }); // CPython test_unix_events: test_abort

  it('writeEof() flushes the buffer first, then the reader sees EOF', async () => {
    const [r, w] = binding().pipe();
    const wproto = new WriteProto();
    const rproto = new ReadProto();
    await loop.runUntilComplete(async () => {
      const [wt] = await loop.connectWritePipe(() => wproto, w);
      wt.write(Buffer.alloc(300 * 1024, 3));
      wt.writeEof();
      wt.writeEof(); // idempotent
      expect(wt.isClosing()).toBe(true);
      await loop.connectReadPipe(() => rproto, r);
      await runUntilAsync(() => rproto.state.includes('CLOSED') && wproto.state.includes('CLOSED'));
    });
    expect(rproto.nbytes).toBe(300 * 1024);
    expect(wproto.lostWith).toBeUndefined();
  }); // CPython test_unix_events: test_write_eof, test_write_eof_pending

  it('a FIFO, read and write ends', async () => {
    tmp = mkdtempSync(path.join(tmpdir(), 'aionode-fifo-'));
    const fifo = path.join(tmp, 'f');
    execFileSync('mkfifo', [fifo]);
    const rfd = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    const wfd = fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
    const rproto = new ReadProto();
    const wproto = new WriteProto();
    await loop.runUntilComplete(async () => {
      const [wt] = await loop.connectWritePipe(() => wproto, wfd);
      await loop.connectReadPipe(() => rproto, rfd);
      wt.write('through the fifo');
      wt.close();
      await runUntilAsync(() => rproto.state.includes('CLOSED'));
    });
    expect(Buffer.concat(rproto.chunks).toString()).toBe('through the fifo');
  }); // CPython test_events: test_read_pipe / test_write_pipe over a named pipe

  it('a socketpair, as asyncio allows', async () => {
    const [a, b] = binding().socketpair();
    const rproto = new ReadProto();
    const wproto = new WriteProto();
    await loop.runUntilComplete(async () => {
      const [wt] = await loop.connectWritePipe(() => wproto, { fd: a });
      await loop.connectReadPipe(() => rproto, { fileno: () => b });
      wt.write('pair');
      wt.close();
      await runUntilAsync(() => rproto.state.includes('CLOSED'));
    });
    expect(Buffer.concat(rproto.chunks).toString()).toBe('pair');
  }); // CPython test_events: test_unclosed_pipe_transport / socket pipes

  it('a character device through a FileHandle: closed by the handle, no reader trick', async () => {
    const handle = await fs.promises.open('/dev/null', 'r+');
    const proto = new WriteProto();
    await loop.runUntilComplete(async () => {
      const [t] = await loop.connectWritePipe(() => proto, handle);
      expect(t.getExtraInfo('pipe')).toBe(handle);
      t.write('into the void');
      await sleepLoop(0.02);
      expect(proto.state).toEqual(['INITIAL', 'CONNECTED']); // /dev/null never looks closed
      t.close();
      await runUntilAsync(() => proto.state.includes('CLOSED'));
    });
    // FileHandle.close() is a promise: the handle itself reports it closed.
    await new Promise((res) => setTimeout(res, 20));
    expect(handle.fd).toBe(-1);
  }); // CPython test_events: test_write_pty (a character device)

  it('refuses a regular file (RangeError), a closed fd (EBADF) and a non-fd (TypeError)', async () => {
    tmp = mkdtempSync(path.join(tmpdir(), 'aionode-pipe-'));
    const file = path.join(tmp, 'regular');
    fs.writeFileSync(file, 'x');
    const fd = fs.openSync(file, 'r');
    await loop.runUntilComplete(async () => {
      await expect(loop.connectReadPipe(() => new ReadProto(), fd)).rejects.toThrow(/pipes, sockets and character devices/);
      const [r, w] = binding().pipe();
      binding().close(r);
      binding().close(w);
      await expect(loop.connectWritePipe(() => new WriteProto(), w)).rejects.toMatchObject({ code: 'EBADF' });
      expect(() => loop.connectReadPipe(() => new ReadProto(), 'stdin' as never)).toThrow(TypeError);
      expect(() => loop.connectReadPipe(() => new ReadProto(), -1)).toThrow(/"pipe"/);
      expect(() => loop.connectWritePipe(null as never, 1)).toThrow(/protocolFactory/);
    });
    fs.closeSync(fd);
  }); // CPython test_unix_events: test_ctor_with_file / test_ctor (ValueError "Pipe transport is for pipes/sockets only")

  it('a protocol whose dataReceived throws reaches the exception handler, the loop survives', async () => {
    const [r, w] = binding().pipe();
    const seen: unknown[] = [];
    loop.setExceptionHandler((_l, ctx) => seen.push(ctx.exception));
    class Bad extends Protocol {
      lost = false;
      override dataReceived(): void {
        throw new Error('boom');
      }
      override connectionLost(): void {
        this.lost = true;
      }
    }
    const proto = new Bad();
    await loop.runUntilComplete(async () => {
      const [t] = await loop.connectReadPipe(() => proto, r);
      fs.writeSync(w, 'x');
      await runUntilAsync(() => seen.length > 0);
      t.close();
      await runUntilAsync(() => proto.lost);
    });
    expect((seen[0] as Error).message).toBe('boom');
    binding().close(w);
  });

  it('the StreamReader-over-stdin recipe, in a child fed through its stdin', () => {
    const out = execFileSync(process.execPath, [FIXTURE], {
      input: 'one\ntwo\nthree\n',
      env: { ...process.env, AIONODE_LOOP: name },
      timeout: 15_000,
    }).toString();
    expect(out).toBe(`ONE\nTWO\nTHREE\nEOF 3 ${name}\n`);
  }); // the recipe from the asyncio docs' "connect_read_pipe" / streams examples

  it('the stdin recipe with a large input (flow control through StreamReader pause/resume)', () => {
    const lines = Array.from({ length: 20_000 }, (_, i) => `line ${i} ${'x'.repeat(40)}\n`).join('');
    const out = execFileSync(process.execPath, [FIXTURE], {
      input: lines,
      env: { ...process.env, AIONODE_LOOP: name },
      timeout: 30_000,
      maxBuffer: 64 << 20,
    }).toString();
    expect(out).toBe(lines.toUpperCase() + `EOF 20000 ${name}\n`);
  });

  it('StreamReaderProtocol over a pipe: readexactly and read() to EOF', async () => {
    const [r, w] = binding().pipe();
    await loop.runUntilComplete(async () => {
      const reader = new StreamReader({ limit: 1024 });
      await loop.connectReadPipe(() => new StreamReaderProtocol(reader), r);
      fs.writeSync(w, 'headbody and more');
      binding().close(w);
      expect((await reader.readexactly(4)).toString()).toBe('head');
      expect((await reader.read()).toString()).toBe('body and more');
      expect(reader.atEof()).toBe(true);
    });
  });

  /** Awaitable runUntil from inside a running loop's task. */
  async function runUntilAsync(cond: () => boolean, timeout = 10): Promise<void> {
    const deadline = loop.time() + timeout;
    while (!cond()) {
      if (loop.time() > deadline) throw new Error('condition not met in time');
      await sleepLoop(0.001);
    }
  }

  function sleepLoop(delay: number): PromiseLike<void> {
    return sleep(delay);
  }
});
