/**
 * NativeProactor (io_uring) end to end through a NativeLoop: each op
 * submitted from JavaScript, its (token, result) pair delivered by the
 * loop's batch callback, which these tests drive themselves. Loopback and
 * socketpairs only; every wait is bounded (2 s) and every fd closed again.
 * Skipped where the kernel refuses io_uring (availableProactors() === '').
 */
import { statSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadBinding, type NativeLoop, type NativeProactor, type NativeSocketAddress } from '../../lib/native.js';
import { fdCount } from '../helpers/loop.js';

const root = path.resolve(__dirname, '..', '..');
const b = loadBinding(root);
const C = b.constants;
const E = osConstants.errno;
const READ = 1;
const WRITE = 2;
const gc = (globalThis as { gc?: () => void }).gc;

const have = b.availableProactors() === 'io_uring';

/** One proactor hosted by a running NativeLoop; completions queued by token. */
class Harness {
  readonly p: NativeProactor;
  readonly loop: NativeLoop;
  readonly events = new Int32Array(2 * 64);
  readonly results = new Map<number, number[]>();
  readonly timers: number[] = [];
  /** Runs inside the batch for each completion (token, result). */
  onPair: ((token: number, result: number) => void) | null = null;
  batches = 0;
  private waiters: (() => void)[] = [];

  constructor(entries?: number) {
    this.p = new b.NativeProactor('io_uring', entries);
    this.loop = new b.NativeLoop(this.p, this.events, (n) => {
      this.batches++;
      for (let i = 0; i < n; i++) {
        const t = this.events[2 * i];
        const r = this.events[2 * i + 1];
        if (t === -1) {
          this.timers.push(r);
          continue;
        }
        if (!this.results.has(t)) this.results.set(t, []);
        this.results.get(t)!.push(r);
        this.onPair?.(t, r);
      }
      const w = this.waiters;
      this.waiters = [];
      for (const f of w) f();
      return 0;
    });
    this.loop.start(false);
  }

  /** Waits (2 s at most) until `cond()` holds after some batch. */
  async until(cond: () => boolean, what = 'condition'): Promise<void> {
    const end = Date.now() + 2000;
    while (!cond()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 20);
      });
    }
  }

  /** The first result for `token`, waiting for it (and taking it). */
  async result(token: number): Promise<number> {
    await this.until(() => (this.results.get(token)?.length ?? 0) > 0, `token ${token}`);
    const r = this.results.get(token)!.shift()!;
    return r;
  }

  close(): void {
    this.loop.close();
    this.p.close();
  }
}

let open: number[] = [];
let harness: Harness | null = null;

function own(fd: number): number {
  expect(fd).toBeGreaterThanOrEqual(0);
  open.push(fd);
  return fd;
}

function isOpen(fd: number): boolean {
  try {
    statSync(`/proc/self/fd/${fd}`);
    return true;
  } catch {
    return false;
  }
}

function h(entries?: number): Harness {
  harness = new Harness(entries);
  return harness;
}

function listener(): { fd: number; addr: NativeSocketAddress } {
  const fd = own(b.socket(C.AF_INET, C.SOCK_STREAM));
  b.setsockopt(fd, C.SOL_SOCKET, C.SO_REUSEADDR, 1);
  b.bind(fd, ['127.0.0.1', 0]);
  b.listen(fd, 16);
  return { fd, addr: b.getsockname(fd) };
}

beforeEach(() => {
  open = [];
});

afterEach(() => {
  harness?.close();
  harness = null;
  for (const fd of open) {
    try {
      b.close(fd);
    } catch {
      // closed by the test (closeFd, or an accepted fd handed back)
    }
  }
});

// '' is this kernel as it is; 'old' makes the probe report a 5.10-era
// kernel (AIONODE_TEST_IO_URING=old: no multishot accept or poll, no
// cancel by fd), so the fallback paths run end to end too.
describe.skipIf(!have).each(['', 'old'])('NativeProactor (io_uring%s)', (mode) => {
  let savedMode: string | undefined;
  beforeEach(() => {
    savedMode = process.env.AIONODE_TEST_IO_URING;
    if (mode) process.env.AIONODE_TEST_IO_URING = mode;
  });
  afterEach(() => {
    if (savedMode === undefined) delete process.env.AIONODE_TEST_IO_URING;
    else process.env.AIONODE_TEST_IO_URING = savedMode;
  });

  it('probes the kernel (or the test hook) and reports it', () => {
    const p = new b.NativeProactor('io_uring');
    try {
      // This machine's kernel (6.x) has all three; the hook takes them away.
      expect(p.features.multishotAccept).toBe(mode !== 'old');
      expect(p.features.cancelFdAll).toBe(mode !== 'old');
      expect(p.features.pollMultishot).toBe(mode !== 'old');
    } finally {
      p.close();
    }
  });

  it('probes the kernel and says what it found', () => {
    const p = new b.NativeProactor('io_uring');
    try {
      expect(p.name).toBe('io_uring');
      expect(p.backendFd).toBeGreaterThanOrEqual(0);
      expect(p.closed).toBe(false);
      expect(p.pending).toBe(0);
      for (const k of ['multishotAccept', 'multishotRecv', 'providedBufferRing', 'pollMultishot', 'cancelFdAll']) {
        expect(typeof p.features[k]).toBe('boolean');
      }
      expect(Object.isFrozen(p.features)).toBe(true);
    } finally {
      p.close();
    }
    expect(p.closed).toBe(true);
    expect(p.backendFd).toBe(-1);
    p.close(); // idempotent
  });

  it('recv and send over a socketpair, flushed at once outside a batch', async () => {
    const t = h();
    const [a, c] = b.socketpair().map(own);
    const buf = Buffer.alloc(16);
    expect(t.p.recv(1, a, buf, 2, 10)).toBe(0);
    expect(t.p.pending).toBe(1);
    expect(t.loop.stats().registered).toBe(1);
    expect(t.p.send(2, c, Buffer.from('hello world'), 0, 5)).toBe(0);
    expect(await t.result(2)).toBe(5);
    expect(await t.result(1)).toBe(5);
    expect(buf.subarray(2, 7).toString()).toBe('hello');
    expect(buf[0]).toBe(0);
    expect(t.p.pending).toBe(0);
    // EOF
    b.close(c);
    open = open.filter((f) => f !== c);
    expect(t.p.recv(3, a, buf, 0, 16)).toBe(0);
    expect(await t.result(3)).toBe(0);
  });

  it('recvMany: multishot recv into the pool where the probe found it, -EOPNOTSUPP elsewhere', async () => {
    const t = h();
    const [a, c] = b.socketpair().map(own);
    const has = t.p.features.multishotRecv && t.p.features.providedBufferRing;
    expect(has).toBe(mode !== 'old'); // this kernel (6.x) has both
    expect(t.p.recvMany(1, a)).toBe(-E.EOPNOTSUPP); // no pool yet
    const size = 64;
    const pool = Buffer.alloc(size * 4);
    if (!has) {
      expect(t.p.providePool(pool, size)).toBe(-E.EOPNOTSUPP);
      expect(t.p.pending).toBe(0);
      return;
    }
    expect(t.p.providePool(pool, size)).toBe(0);
    expect(t.p.providePool(pool, size)).toBe(-E.EEXIST);
    // One submission, then a completion per chunk: each names a pool
    // buffer and is read in its own batch (the buffer goes back after).
    const got: string[] = [];
    t.onPair = (token, r) => {
      if (token === 1 && r > 0) {
        const bid = r >>> 17;
        const len = r & 0x1ffff;
        expect(bid).toBeLessThan(4);
        got.push(pool.toString('latin1', bid * size, bid * size + len));
      }
    };
    expect(t.p.recvMany(1, a)).toBe(0);
    expect(t.p.recvMany(1, a)).toBe(-E.EEXIST);
    let sent = '';
    for (let i = 0; i < 12; i++) {
      const msg = `message ${i};`;
      sent += msg;
      expect(b.send(c, Buffer.from(msg))).toBe(msg.length);
      await t.until(() => got.join('').length === sent.length, `chunk ${i}`);
    }
    // More chunks than the pool has buffers: they were reused.
    expect(got.join('')).toBe(sent);
    expect(t.p.pending).toBe(1);
    // A burst larger than the whole pool (256 bytes): the op waits for
    // buffers and goes on; every byte arrives, in order.
    const burst = Buffer.alloc(5000, 'z');
    for (let i = 0; i < burst.length; i++) burst[i] = 97 + (i % 26);
    expect(b.send(c, burst)).toBe(burst.length);
    await t.until(() => got.join('').length === sent.length + burst.length, 'the burst');
    expect(got.join('').slice(sent.length)).toBe(burst.toString('latin1'));
    expect(t.results.get(1)!.every((r) => r > 0)).toBe(true); // no ENOBUFS seen
    // EOF ends it.
    b.close(c);
    open = open.filter((f) => f !== c);
    await t.until(() => t.results.get(1)!.includes(0), 'EOF');
    expect(t.p.pending).toBe(0);
  });

  it('recvMany: cancel ends it with -ECANCELED; close() drains it and frees the pool', async () => {
    const t = h();
    const [a] = b.socketpair().map(own);
    if (!t.p.features.multishotRecv || !t.p.features.providedBufferRing) return;
    expect(t.p.providePool(Buffer.alloc(1024), 256)).toBe(0);
    expect(t.p.recvMany(1, a)).toBe(0);
    expect(t.p.cancel(1)).toBe(0);
    expect(await t.result(1)).toBe(-E.ECANCELED);
    expect(t.p.pending).toBe(0);
    expect(t.p.recvMany(2, a)).toBe(0);
    t.p.close();
    expect(t.p.pending).toBe(0);
  });

  it('providePool refuses a bad buffer or size, naming it', () => {
    const t = h();
    expect(() => t.p.providePool('x' as never, 64)).toThrow(TypeError);
    expect(() => t.p.providePool('x' as never, 64)).toThrow(/"buf".*Uint8Array/);
    expect(() => t.p.providePool(Buffer.alloc(64), 0)).toThrow(/"size"/);
    expect(() => t.p.providePool(Buffer.alloc(64), 1 << 17)).toThrow(RangeError);
    expect(() => t.p.providePool(Buffer.alloc(64 * 3), 64)).toThrow(/power of two/);
    expect(() => t.p.providePool(Buffer.alloc(100), 64)).toThrow(/power of two/);
    expect(() => t.p.recvMany(-1, 0)).toThrow(/"token"/);
  });

  it('an echo: a batch re-submits the token it was just handed, flushed when the batch ends', async () => {
    const t = h();
    const [a, c] = b.socketpair().map(own);
    const buf = Buffer.alloc(8);
    let rounds = 0;
    t.onPair = (token, r) => {
      if (token === 1 && r > 0 && ++rounds < 5) {
        expect(t.p.recv(1, a, buf, 0, 8)).toBe(0); // same token, same batch
        expect(t.p.send(2 + rounds, c, Buffer.from('x'), 0, 1)).toBe(0);
      }
    };
    expect(t.p.recv(1, a, buf, 0, 8)).toBe(0);
    expect(t.p.send(2, c, Buffer.from('x'), 0, 1)).toBe(0);
    await t.until(() => rounds >= 5, '5 rounds');
    expect(t.p.pending).toBe(0);
  });

  it('writev gathers every buffer into one sendmsg', async () => {
    const t = h();
    const [a, c] = b.socketpair().map(own);
    const bufs = [Buffer.from('ab'), Buffer.from(''), Buffer.from('cde'), new Uint8Array([0x66])];
    expect(t.p.writev(1, c, bufs)).toBe(0);
    expect(await t.result(1)).toBe(6);
    const got = Buffer.alloc(16);
    expect(b.recv(a, got)).toBe(6);
    expect(got.subarray(0, 6).toString()).toBe('abcdef');
  });

  it('recvfrom and sendto: the sender via address(token) during its batch only', async () => {
    const t = h();
    const rx = own(b.socket(C.AF_INET, C.SOCK_DGRAM));
    b.bind(rx, ['127.0.0.1', 0]);
    const tx = own(b.socket(C.AF_INET, C.SOCK_DGRAM));
    b.bind(tx, ['127.0.0.1', 0]);
    const buf = Buffer.alloc(32);
    const seen: (NativeSocketAddress | null)[] = [];
    t.onPair = (token) => {
      if (token === 1) seen.push(t.p.address(1));
    };
    expect(t.p.recvfrom(1, rx, buf, 0, 32)).toBe(0);
    expect(t.p.sendto(2, tx, Buffer.from('datagram'), 0, 8, b.getsockname(rx))).toBe(0);
    expect(await t.result(2)).toBe(8);
    expect(await t.result(1)).toBe(8);
    expect(buf.subarray(0, 8).toString()).toBe('datagram');
    expect(seen).toEqual([b.getsockname(tx)]);
    // Another batch has started since (a timer's): the address is gone.
    t.loop.timerIn(1, 0);
    await t.until(() => t.timers.includes(1), 'timer');
    expect(t.p.address(1)).toBeNull();
    expect(t.p.address(999)).toBeNull();
  });

  it('unix datagrams: sendto a path, the sender path via address(); a path too long is -ENAMETOOLONG', async () => {
    const t = h();
    const name = `\0aionode-proactor-${process.pid}-${mode}`;
    const rx = own(b.socket(C.AF_UNIX, C.SOCK_DGRAM));
    b.bind(rx, name);
    const tx = own(b.socket(C.AF_UNIX, C.SOCK_DGRAM));
    b.bind(tx, `${name}-tx`);
    const buf = Buffer.alloc(16);
    let from: NativeSocketAddress | null = null;
    t.onPair = (token) => {
      if (token === 1) from = t.p.address(1);
    };
    expect(t.p.recvfrom(1, rx, buf, 0, 16)).toBe(0);
    expect(t.p.sendto(2, tx, Buffer.from('unix'), 0, 4, name)).toBe(0);
    expect(await t.result(2)).toBe(4);
    expect(await t.result(1)).toBe(4);
    expect(from).toBe(`${name}-tx`);
    expect(t.p.sendto(3, tx, Buffer.from('x'), 0, 1, '/tmp/' + 'x'.repeat(200))).toBe(-E.ENAMETOOLONG);
    expect(t.p.pending).toBe(0); // nothing queued, nothing pinned
  });

  it('a full submission queue is flushed inline, in a batch and out of one', async () => {
    const t = h(2);
    const [a] = b.socketpair().map(own);
    for (let i = 0; i < 20; i++) expect(t.p.poll(i, a, WRITE)).toBe(0);
    let inBatch = false;
    t.onPair = (token) => {
      if (token === 0 && !inBatch) {
        inBatch = true;
        for (let i = 100; i < 120; i++) expect(t.p.poll(i, a, WRITE)).toBe(0);
      }
    };
    await t.until(() => [...t.results.keys()].filter((k) => k < 20).length === 20, '20 polls');
    await t.until(() => [...t.results.keys()].filter((k) => k >= 100).length === 20, '20 more');
    expect(t.p.pending).toBe(0);
  });

  it('accept and connect on loopback: the accepted fd is owned, non-blocking, with its peer', async () => {
    const t = h();
    const l = listener();
    const cl = own(b.socket(C.AF_INET, C.SOCK_STREAM));
    let peer: NativeSocketAddress | null = null;
    t.onPair = (token) => {
      if (token === 1) peer = t.p.address(1);
    };
    const owned = b.ownedFds();
    expect(t.p.accept(1, l.fd)).toBe(0);
    expect(t.p.connect(2, cl, l.addr)).toBe(0);
    expect(await t.result(2)).toBe(0);
    const fd = own(await t.result(1));
    expect(fd).toBeGreaterThan(0);
    expect(b.ownedFds()).toBe(owned + 1);
    expect(peer).toEqual(b.getsockname(cl));
    expect(b.recv(fd, Buffer.alloc(4))).toBe(-E.EAGAIN); // non-blocking
    b.send(cl, Buffer.from('hi'));
    const got = Buffer.alloc(4);
    expect(t.p.recv(3, fd, got, 0, 4)).toBe(0);
    expect(await t.result(3)).toBe(2);
  });

  it('connect to a closed port completes with -ECONNREFUSED', async () => {
    const t = h();
    const l = listener();
    const addr = l.addr;
    b.close(l.fd);
    open = open.filter((f) => f !== l.fd);
    const cl = own(b.socket(C.AF_INET, C.SOCK_STREAM));
    expect(t.p.connect(1, cl, addr)).toBe(0);
    expect(await t.result(1)).toBe(-E.ECONNREFUSED);
  });

  it('acceptMany: one completion per connection on one token, until cancel ends it', async () => {
    const t = h();
    const l = listener();
    expect(t.p.acceptMany(7, l.fd)).toBe(0);
    expect(t.p.acceptMany(7, l.fd)).toBe(-E.EEXIST);
    for (let i = 0; i < 3; i++) {
      const cl = own(b.socket(C.AF_INET, C.SOCK_STREAM));
      expect(t.p.connect(100 + i, cl, l.addr)).toBe(0);
    }
    await t.until(() => (t.results.get(7)?.length ?? 0) >= 3, '3 accepts');
    const fds = t.results.get(7)!.splice(0);
    expect(fds).toHaveLength(3);
    for (const fd of fds) {
      own(fd);
      expect(fd).toBeGreaterThan(0);
      expect(t.p.address(7)).toBeNull();
    }
    expect(new Set(fds).size).toBe(3);
    expect(t.p.pending).toBe(1 + 0); // still live (connects may be done)
    expect(t.p.cancel(7)).toBe(0);
    expect(await t.result(7)).toBe(-E.ECANCELED);
    expect(t.p.cancel(7)).toBe(-E.ENOENT);
    expect(t.p.pending).toBe(0);
  });

  it('poll: one-shot readiness as EVENT_READ / EVENT_WRITE; a hang-up reports the requested directions', async () => {
    const t = h();
    const [a, c] = b.socketpair().map(own);
    expect(t.p.poll(1, a, WRITE)).toBe(0);
    expect(await t.result(1)).toBe(WRITE);
    expect(t.p.poll(2, a, READ)).toBe(0);
    await new Promise((r) => setTimeout(r, 30));
    expect(t.results.get(2) ?? []).toEqual([]);
    b.send(c, Buffer.from('z'));
    expect(await t.result(2)).toBe(READ);
    b.recv(a, Buffer.alloc(4));
    expect(t.p.poll(3, a, READ)).toBe(0);
    b.close(c);
    open = open.filter((f) => f !== c);
    expect(await t.result(3)).toBe(READ);
    expect(t.p.poll(4, a, READ | WRITE)).toBe(0);
    expect(await t.result(4)).toBe(READ | WRITE);
  });

  it('a live token is refused with -EEXIST, and nothing is pinned for it', async () => {
    const t = h();
    const [a, c] = b.socketpair().map(own);
    expect(t.p.recv(1, a, Buffer.alloc(4), 0, 4)).toBe(0);
    expect(t.p.recv(1, a, Buffer.alloc(4), 0, 4)).toBe(-E.EEXIST);
    expect(t.p.poll(1, c, WRITE)).toBe(-E.EEXIST);
    expect(t.p.pending).toBe(1);
    b.send(c, Buffer.from('a'));
    expect(await t.result(1)).toBe(1);
    expect(t.p.recv(1, a, Buffer.alloc(4), 0, 4)).toBe(0); // free again
    expect(t.p.cancel(1)).toBe(0);
    expect(await t.result(1)).toBe(-E.ECANCELED);
  });

  it('cancel: -ECANCELED completion; -ENOENT for unknown and finished tokens', async () => {
    const t = h();
    const [a] = b.socketpair().map(own);
    expect(t.p.cancel(42)).toBe(-E.ENOENT);
    expect(t.p.recv(1, a, Buffer.alloc(4), 0, 4)).toBe(0);
    expect(t.p.cancel(1)).toBe(0);
    expect(t.p.cancel(1)).toBe(0); // asked already: still in flight
    expect(await t.result(1)).toBe(-E.ECANCELED);
    expect(t.p.cancel(1)).toBe(-E.ENOENT);
    expect(t.p.pending).toBe(0);
  });

  it('cancelFd cancels every op on the fd and says how many', async () => {
    const t = h();
    const [a, c] = b.socketpair().map(own);
    expect(t.p.recv(1, a, Buffer.alloc(4), 0, 4)).toBe(0);
    expect(t.p.poll(2, a, READ)).toBe(0);
    expect(t.p.recv(3, c, Buffer.alloc(4), 0, 4)).toBe(0);
    expect(t.p.cancelFd(a)).toBe(2);
    expect(await t.result(1)).toBe(-E.ECANCELED);
    expect(await t.result(2)).toBe(-E.ECANCELED);
    expect(t.p.cancelFd(a)).toBe(0);
    expect(t.p.pending).toBe(1);
    expect(t.p.cancel(3)).toBe(0);
    expect(await t.result(3)).toBe(-E.ECANCELED);
  });

  it('closeFd defers the close until the ops on the fd have delivered their completions', async () => {
    const t = h();
    const [a, c] = b.socketpair().map(own);
    const owned = b.ownedFds();
    let openInBatch: boolean | null = null;
    t.onPair = (token) => {
      if (token === 1) openInBatch = isOpen(a);
    };
    expect(t.p.recv(1, a, Buffer.alloc(4), 0, 4)).toBe(0);
    t.p.closeFd(a);
    expect(isOpen(a)).toBe(true); // the number stays taken
    expect(await t.result(1)).toBe(-E.ECANCELED);
    expect(openInBatch).toBe(true);
    // This continuation runs inside the batch (its microtasks drain there):
    // the close comes when the batch has ended.
    expect(isOpen(a)).toBe(true);
    await new Promise((r) => setImmediate(r));
    expect(isOpen(a)).toBe(false);
    expect(b.ownedFds()).toBe(owned - 1);
    // No op in flight: closed at once.
    t.p.closeFd(c);
    expect(isOpen(c)).toBe(false);
    expect(() => t.p.closeFd(c)).toThrow(expect.objectContaining({ code: 'EBADF' }));
  });

  it('close with ops in flight cancels them, waits for the kernel and unpins every buffer', async () => {
    if (gc === undefined) throw new Error('run with --expose-gc (vitest.config.mts sets it)');
    const t = h();
    const [a, c] = b.socketpair().map(own);
    const [w1] = b.socketpair().map(own);
    const l = listener();
    let collected = 0;
    const reg = new FinalizationRegistry(() => {
      collected++;
    });
    (() => {
      for (let i = 0; i < 4; i++) {
        const buf = new Uint8Array(1 << 16);
        reg.register(buf, i);
        expect(t.p.recv(10 + i, i % 2 ? a : c, buf, 0, buf.length)).toBe(0);
      }
      const wbuf = new Uint8Array(8);
      reg.register(wbuf, 99);
      expect(t.p.writev(20, w1, [wbuf])).toBe(0); // completes: delivered, then freed
      expect(t.p.acceptMany(21, l.fd)).toBe(0);
    })();
    await t.result(20);
    // Pinned: a recv's buffer survives collection while its op is in flight.
    for (let i = 0; i < 5; i++) {
      gc();
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(collected).toBeLessThanOrEqual(1); // only the writev buffer may go
    expect(t.p.pending).toBe(5);
    t.p.close();
    expect(t.p.closed).toBe(true);
    expect(t.p.pending).toBe(0);
    expect(() => t.p.recv(1, a, Buffer.alloc(1), 0, 1)).toThrow('Proactor is closed');
    expect(t.p.cancel(10)).toBe(-E.ENOENT);
    for (let i = 0; i < 20 && collected < 5; i++) {
      gc();
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(collected).toBe(5);
  });

  it('close() gives the ring fd back at once, or with the last loop hosting it', () => {
    const before = fdCount();
    const p = new b.NativeProactor('io_uring');
    const [a] = b.socketpair().map(own);
    expect(p.recv(1, a, Buffer.alloc(4), 0, 4)).toBe(0);
    expect(fdCount()).toBe(before + 4); // ring, wake-up eventfd, pair
    p.close();
    expect(fdCount()).toBe(before + 2);
    expect(p.features.multishotAccept).toBe(mode !== 'old'); // kept past close
    const q = new b.NativeProactor('io_uring');
    const loop = new b.NativeLoop(q, new Int32Array(8), () => 0);
    const hosted = fdCount();
    q.close();
    expect(fdCount()).toBe(hosted); // the loop still holds the ring
    loop.close();
    expect(fdCount()).toBe(before + 2);
  });

  it('a proactor closed under its running loop: timers go on, no completion, no spin', async () => {
    const t = h();
    const [a, c] = b.socketpair().map(own);
    expect(t.p.recv(1, a, Buffer.alloc(4), 0, 4)).toBe(0);
    t.p.close();
    b.send(c, Buffer.from('late'));
    const s0 = t.loop.stats();
    t.loop.timerIn(1, 0.05);
    await t.until(() => t.timers.includes(1), 'timer');
    const s1 = t.loop.stats();
    expect(t.results.get(1) ?? []).toEqual([]);
    expect(s1.ioPasses - s0.ioPasses).toBeLessThan(10);
    expect(s1.timerSource).toBe('uv_timer'); // the ring's timer went with it
  });

  it('a dropped proactor and loop are collected, their pinned buffers with them', async () => {
    if (gc === undefined) throw new Error('run with --expose-gc (vitest.config.mts sets it)');
    const [a] = b.socketpair().map(own);
    const before = fdCount();
    let collected = 0;
    const reg = new FinalizationRegistry(() => {
      collected++;
    });
    (() => {
      const p = new b.NativeProactor('io_uring');
      const events = new Int32Array(8);
      const loop = new b.NativeLoop(p, events, () => 0);
      const buf = new Uint8Array(1 << 16);
      expect(p.recv(1, a, buf, 0, buf.length)).toBe(0);
      reg.register(buf, 'buf');
      reg.register(p, 'proactor');
      reg.register(loop, 'loop');
    })();
    // The proactor's finalizer drains the ring, then lets the buffer go.
    for (let i = 0; i < 40 && collected < 3; i++) {
      gc();
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(collected).toBe(3);
    for (let i = 0; i < 20 && fdCount() > before; i++) await new Promise((r) => setTimeout(r, 10));
    expect(fdCount()).toBe(before);
  });

  it('a loop closed before its proactor leaves the proactor usable and closable', async () => {
    const t = h();
    const [a] = b.socketpair().map(own);
    expect(t.p.recv(1, a, Buffer.alloc(4), 0, 4)).toBe(0);
    t.loop.close();
    expect(t.p.pending).toBe(1);
    t.p.close();
    expect(t.p.pending).toBe(0);
  });

  it('completions wait in the ring while the loop is stopped', async () => {
    const t = h();
    const [a, c] = b.socketpair().map(own);
    expect(t.p.recv(1, a, Buffer.alloc(4), 0, 4)).toBe(0);
    t.loop.stop();
    b.send(c, Buffer.from('q'));
    await new Promise((r) => setTimeout(r, 50));
    expect(t.results.get(1) ?? []).toEqual([]);
    t.loop.start(false);
    expect(await t.result(1)).toBe(1);
  });

  it('more completions than the events array holds arrive over several batches, none lost', async () => {
    const p = new b.NativeProactor('io_uring');
    const events = new Int32Array(2 * 4);
    const got: number[] = [];
    const loop = new b.NativeLoop(p, events, (n) => {
      for (let i = 0; i < n; i++) if (events[2 * i] >= 0) got.push(events[2 * i]);
      return 0;
    });
    try {
      loop.start(false);
      const [a] = b.socketpair().map(own);
      for (let i = 0; i < 30; i++) expect(p.poll(i, a, WRITE)).toBe(0);
      const end = Date.now() + 2000;
      while (got.length < 30 && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
      expect(got.sort((x, y) => x - y)).toEqual([...Array(30).keys()]);
    } finally {
      loop.close();
      p.close();
    }
  });

  it('timers on a proactor-hosted loop: its own timerfd; zero and past deadlines fire', async () => {
    const t = h();
    expect(t.loop.stats().timerSource).toBe('timerfd');
    expect(t.loop.backend).toBe('io_uring');
    const t0 = b.time();
    t.loop.timerIn(1, 0.03);
    t.loop.timerAt(2, 0);
    t.loop.timerAt(3, -5);
    t.loop.timerAt(4, t0 - 1);
    await t.until(() => t.timers.length >= 3, 'past timers');
    expect(t.timers.slice(0, 3).sort()).toEqual([2, 3, 4]);
    await t.until(() => t.timers.includes(1), 'timer 1');
    expect(b.time() - t0).toBeGreaterThanOrEqual(0.03);
    // Re-armed for a later deadline after an earlier one was removed.
    t.loop.timerIn(5, 10);
    t.loop.timerIn(6, 0.01);
    expect(t.loop.timerRemove(6)).toBe(true);
    t.loop.timerIn(7, 0.02);
    await t.until(() => t.timers.includes(7), 'timer 7');
    expect(t.timers.includes(6)).toBe(false);
    expect(t.loop.timerRemove(5)).toBe(true);
  });

  it('AIONODE_TIMER_SOURCE=uv_timer makes the loop use a uv_timer_t instead', async () => {
    const saved = process.env.AIONODE_TIMER_SOURCE;
    process.env.AIONODE_TIMER_SOURCE = 'uv_timer';
    let t: Harness;
    try {
      t = h();
    } finally {
      if (saved === undefined) delete process.env.AIONODE_TIMER_SOURCE;
      else process.env.AIONODE_TIMER_SOURCE = saved;
    }
    expect(t.loop.stats().timerSource).toBe('uv_timer');
    t.loop.timerAt(1, 0);
    t.loop.timerIn(2, 0.02);
    await t.until(() => t.timers.length >= 2, 'timers');
    expect(t.timers).toEqual([1, 2]);
  });

  it('refuses clearly: ENOSYS, EPERM and a missing opcode name their reason', () => {
    const saved = process.env.AIONODE_TEST_IO_URING;
    try {
      process.env.AIONODE_TEST_IO_URING = 'enosys';
      expect(() => new b.NativeProactor('io_uring')).toThrow(
        expect.objectContaining({ code: 'ENOSYS', message: expect.stringContaining('io_uring not supported by this kernel') }),
      );
      process.env.AIONODE_TEST_IO_URING = 'eperm';
      expect(() => new b.NativeProactor('io_uring')).toThrow(
        expect.objectContaining({
          code: 'EPERM',
          message: expect.stringMatching(/io_uring denied \(seccomp or kernel\.io_uring_disabled=\d.*\/proc\/sys\/kernel\/io_uring_disabled/),
        }),
      );
      process.env.AIONODE_TEST_IO_URING = 'noop:16'; // IORING_OP_CONNECT
      expect(() => new b.NativeProactor('io_uring')).toThrow(/IORING_OP_CONNECT/);
    } finally {
      if (saved === undefined) delete process.env.AIONODE_TEST_IO_URING;
      else process.env.AIONODE_TEST_IO_URING = saved;
    }
    new b.NativeProactor('io_uring').close();
  });

  it('bad arguments throw TypeError / RangeError naming the argument and value', () => {
    const t = h();
    const [a] = b.socketpair().map(own);
    const buf = Buffer.alloc(4);
    expect(() => new b.NativeProactor('epoll' as 'io_uring')).toThrow(TypeError);
    expect(() => new b.NativeProactor('io_uring', 0)).toThrow(/"entries".*got 0/);
    expect(() => t.p.recv('1' as unknown as number, a, buf, 0, 4)).toThrow(TypeError);
    expect(() => t.p.recv(-1, a, buf, 0, 4)).toThrow(RangeError);
    expect(() => t.p.recv(-1, a, buf, 0, 4)).toThrow(/"token".*got -1/);
    expect(() => t.p.recv(1, -3, buf, 0, 4)).toThrow(/"fd".*got -3/);
    expect(() => t.p.recv(1, a, 'x' as unknown as Uint8Array, 0, 4)).toThrow(/"buf"/);
    expect(() => t.p.recv(1, a, buf, 5, 0)).toThrow(/"offset".*got 5/);
    expect(() => t.p.recv(1, a, buf, 2, 3)).toThrow(RangeError);
    expect(() => t.p.recv(1, a, buf, 2, 3)).toThrow(/"length".*got 3/);
    expect(() => t.p.poll(1, a, 4)).toThrow(/"events".*got 4/);
    expect(() => t.p.writev(1, a, [buf, 'x' as unknown as Uint8Array])).toThrow(/"bufs\[1\]"/);
    expect(() => t.p.connect(1, a, ['nope', 1])).toThrow(TypeError);
    expect(() => new b.NativeLoop({} as NativeProactor, new Int32Array(4), () => 0)).toThrow(/"source"/);
    const recv = t.p.recv;
    expect(() => recv.call({}, 1, a, buf, 0, 4)).toThrow(TypeError);
    expect(t.p.pending).toBe(0); // nothing was queued or pinned
  });

  it('a closed proactor cannot host a loop', () => {
    const p = new b.NativeProactor('io_uring');
    p.close();
    expect(() => new b.NativeLoop(p, new Int32Array(4), () => 0)).toThrow('Proactor is closed');
  });
});

describe.skipIf(!have)('NativeProactor in worker_threads', () => {
  const code = (mode: 'finish' | 'hang') => `
const { parentPort } = require('node:worker_threads');
const b = require(${JSON.stringify(path.join(root, 'build', 'Release', 'aionode.node'))});
const p = new b.NativeProactor('io_uring');
const events = new Int32Array(64);
const [x, y] = b.socketpair();
const l = b.socket(b.constants.AF_INET, b.constants.SOCK_STREAM);
b.bind(l, ['127.0.0.1', 0]); b.listen(l, 8);
let got = 0;
const loop = new b.NativeLoop(p, events, (n) => {
  for (let i = 0; i < n; i++) if (events[2 * i] === 1) got++;
  if (got === 1 && ${JSON.stringify(mode)} === 'finish') {
    loop.close(); p.close(); b.close(x); b.close(y); b.close(l); b.close(u); b.close(v);
    parentPort.postMessage({ got });
  }
  return 0;
});
loop.start(false);
p.recv(1, x, Buffer.alloc(1 << 16), 0, 1 << 16);
p.recv(2, y, Buffer.alloc(1 << 16), 0, 1 << 16);
p.acceptMany(3, l);
const [u, v] = b.socketpair();
if (p.features.multishotRecv && p.features.providedBufferRing) {
  p.providePool(Buffer.alloc(4096 * 4), 4096);
  p.recvMany(4, u);
}
loop.timerIn(0, 3600);
if (${JSON.stringify(mode)} === 'finish') b.send(y, Buffer.from('w'));
else parentPort.postMessage({ running: true });
`;

  it('runs a proactor loop in a worker', async () => {
    const w = new Worker(code('finish'), { eval: true });
    const msg = await new Promise((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    });
    expect(msg).toEqual({ got: 1 });
    await w.terminate();
  });

  it('survives workers terminated with ops in flight, leaking no fds', async () => {
    const before = fdCount();
    const exits: Promise<number>[] = [];
    for (let i = 0; i < 6; i++) {
      const w = new Worker(code('hang'), { eval: true });
      exits.push(
        new Promise<number>((resolve, reject) => {
          w.once('error', reject);
          w.once('exit', resolve);
          w.once('message', () => setTimeout(() => void w.terminate(), Math.floor(Math.random() * 5)));
        }),
      );
    }
    await Promise.all(exits);
    for (let i = 0; i < 50 && fdCount() > before; i++) await new Promise((r) => setTimeout(r, 20));
    expect(fdCount()).toBe(before);
  });
});
