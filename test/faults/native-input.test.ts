/**
 * Hostile input at the binding level (issue 8 items 5, 11 and 12; the
 * native half of deliverable 3, "bad input everywhere").
 *
 * - Item 11: buffer and address arrays whose getters detach a buffer the
 *   call already looked at. The binding must read every JS value before it
 *   takes a data pointer, so the kernel never reads or writes freed (or
 *   moved) memory. In a plain run the tests see it through the bytes: the
 *   getter moves the buffer's memory to a new owner and fills it with 'X';
 *   old code still sent or received through the stale pointer. Under the
 *   ASan build (see README "Sanitizers") the `freed` variants are reported
 *   as heap-use-after-free on old code.
 * - Item 12: unix socket paths with an embedded NUL were truncated by the
 *   kernel ('dir/sock\0evil' served on 'dir/sock'): now a TypeError naming
 *   the argument and showing the value. Too long: ENAMETOOLONG. A leading
 *   NUL stays the Linux abstract namespace.
 * - Item 5: every socket op with wrong types, NaN / ±Infinity / negative /
 *   huge numbers, closed fds, non-socket fds, fd -1 and 2**31: a clear error
 *   (TypeError / RangeError naming the argument, or the op's OSError) or
 *   -errno per the op's contract, never a crash or a hang. Calls that could
 *   block forever on old code run in a child process with a timeout.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, rmSync, writeFileSync, constants as fsConstants } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Protocol } from '../../lib/index.js';
import { LOOPS, newLoop } from '../helpers/loops.js';
import { binding, type NativeBinding } from '../../lib/native.js';

const b: NativeBinding = binding();
const c = b.constants;
const root = path.resolve(__dirname, '..', '..');

let dir: string;
const opened: number[] = [];
function track(fd: number): number {
  opened.push(fd);
  return fd;
}
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'aionode-input-'));
});
afterEach(() => {
  for (const fd of opened.splice(0)) {
    try {
      b.close(fd);
    } catch {
      /* closed by the test */
    }
  }
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function pair(type: 'stream' | 'dgram' = 'stream'): [number, number] {
  const [x, y] = b.socketpair(type);
  return [track(x), track(y)];
}

function udp(): [number, [string, number]] {
  const fd = track(b.socket(c.AF_INET, c.SOCK_DGRAM));
  b.bind(fd, ['127.0.0.1', 0]);
  return [fd, b.getsockname(fd) as [string, number]];
}

/**
 * A buffer's memory moved to a new owner (detaching `u8`) and filled with
 * 'X': old code went on using the stale pointer into it. (The variant whose
 * memory is freed, for ASan, is test/fixtures/faults/detach-uaf.js.)
 */
function detach(u8: Uint8Array, keep: ArrayBuffer[]): void {
  const moved = structuredClone(u8.buffer, { transfer: [u8.buffer] });
  new Uint8Array(moved).fill(0x58);
  keep.push(moved);
}

/** `arr` with element `i` an accessor that runs `fn` and returns `value`. */
function withGetter<T>(arr: T[], i: number, fn: () => void, value: T): T[] {
  Object.defineProperty(arr, i, { get: () => (fn(), value), enumerable: true, configurable: true });
  return arr;
}

function recvAll(fd: number, n = 65536): Buffer {
  const buf = Buffer.alloc(n);
  const got = b.recv(fd, buf);
  return got > 0 ? buf.subarray(0, got) : Buffer.alloc(0);
}

describe('item 11: no raw buffer pointer survives a getter', () => {
  it('writev: a getter detaching an earlier buffer', () => {
    const [x, y] = pair();
    const keep: ArrayBuffer[] = [];
    const buf0 = new Uint8Array(4096).fill(0x41); // own ArrayBuffer, off-heap
    const b1 = new Uint8Array(16).fill(0x42);
    const arr = withGetter<Uint8Array>([buf0], 1, () => detach(buf0, keep), b1);
    const n = b.writev(x, arr);
    // buf0 was detached before any pointer was taken: it counts as empty.
    expect(n).toBe(16);
    expect(recvAll(y).toString()).toBe('B'.repeat(16));
  });

  it('recvmsg: a getter detaching an earlier buffer', () => {
    const [x, y] = pair();
    const keep: ArrayBuffer[] = [];
    const buf0 = new Uint8Array(4096);
    const b1 = new Uint8Array(16);
    expect(b.send(x, Buffer.alloc(64, 0x5a))).toBe(64);
    const arr = withGetter<Uint8Array>([buf0], 1, () => detach(buf0, keep), b1);
    const n = b.recvmsg(y, arr);
    expect(n).toBe(16); // only b1 could take bytes
    expect(Buffer.from(b1).toString()).toBe('Z'.repeat(16));
    expect(new Uint8Array(keep[0]).every((v) => v === 0x58)).toBe(true); // the kernel never wrote there
  });

  it('sendto: an address getter detaching the buffer', () => {
    const [rx, addr] = udp();
    const [tx] = udp();
    const keep: ArrayBuffer[] = [];
    const buf = new Uint8Array(4096).fill(0x41);
    const to = withGetter<string | number>([addr[0]], 1, () => detach(buf, keep), addr[1]) as [string, number];
    const n = b.sendto(tx, buf, to);
    // The address is read before the buffer, which is empty by then.
    expect(n).toBe(0);
    const got = Buffer.alloc(8192);
    expect(b.recvfrom(rx, got, [])).toBe(0); // an empty datagram, not the 'X's
  });

  it('the same with the detached memory freed (ASan: heap-use-after-free on old code), in a child process', () => {
    const script = path.join(root, 'test', 'fixtures', 'faults', 'detach-uaf.js');
    const r = spawnSync(process.execPath, ['--expose-gc', script, path.join(root, 'dist', 'lib')], { encoding: 'utf8', timeout: 20_000 });
    expect(r.stderr).not.toContain('AddressSanitizer');
    expect(r.status, r.stderr.slice(-3000)).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      writev: 16,
      writevData: 'B'.repeat(16),
      recvmsg: 16,
      recvmsgData: 'Z'.repeat(16),
      sendto: 0,
      received: 0,
    });
  });

  it('sendto / connect / bind: an address getter that throws is the call\'s error', () => {
    const [tx, addr] = udp();
    const boom = new Error('boom');
    const bad = () => withGetter<string | number>([addr[0]], 1, () => { throw boom; }, 0) as [string, number];
    expect(() => b.sendto(tx, Buffer.from('x'), bad())).toThrow(boom);
    expect(() => b.connect(tx, bad())).toThrow(boom);
    const s = track(b.socket(c.AF_INET, c.SOCK_DGRAM));
    expect(() => b.bind(s, bad())).toThrow(boom);
  });

  it('writev / recvmsg: a throwing getter, a Proxy, holes and non-buffers are clear errors', () => {
    const [x] = pair();
    const boom = new Error('boom');
    expect(() => b.writev(x, withGetter<Uint8Array>([Buffer.from('a')], 1, () => { throw boom; }, Buffer.from('b')))).toThrow(boom);
    expect(() => b.writev(x, new Proxy([Buffer.from('a')], {}))).toThrow(/Expected "buffers" to be an array of Uint8Array, got an object/);
    // eslint-disable-next-line no-sparse-arrays
    expect(() => b.recvmsg(x, [Buffer.alloc(1), , Buffer.alloc(1)] as Uint8Array[])).toThrow(/Expected "buffers\[1\]" to be a Uint8Array or Buffer, got undefined/);
    expect(() => b.writev(x, [new Uint16Array(2) as unknown as Uint8Array])).toThrow(/"buffers\[0\]".*got an instance of Uint16Array/);
  });

  it('a getter that shrinks the list leaves the missing elements a TypeError', () => {
    const [x] = pair();
    const arr: Uint8Array[] = [Buffer.from('a'), Buffer.from('b'), Buffer.from('c')];
    withGetter(arr, 0, () => { arr.length = 1; }, Buffer.from('a'));
    expect(() => b.writev(x, arr)).toThrow(TypeError);
  });
});

describe('item 12: unix socket paths', () => {
  const isLinux = process.platform === 'linux';

  it.each(['bind', 'connect', 'sendto'] as const)('%s refuses an embedded NUL, naming the argument and value', (op) => {
    const sock = path.join(dir, `${op}.sock`);
    const fd = track(b.socket(c.AF_UNIX, op === 'sendto' ? c.SOCK_DGRAM : c.SOCK_STREAM));
    const call = () =>
      op === 'bind' ? b.bind(fd, `${sock}\0evil`) : op === 'connect' ? b.connect(fd, `${sock}\0evil`) : b.sendto(fd, Buffer.from('x'), `${sock}\0evil`);
    expect(call).toThrow(TypeError);
    expect(call).toThrow(`Expected "addr" to be a path without NUL bytes (a leading NUL: an abstract name), got "`);
    expect(call).toThrow(`${sock}\\u0000evil"`); // the whole value, NUL shown
    expect(existsSync(sock)).toBe(false); // old code bound the truncated path
  });

  it.each(LOOPS)('createUnixServer (public API) on %s refuses it too and creates no file', async (backend) => {
    const loop = newLoop(backend);
    try {
      const p = path.join(dir, 'pub');
      await expect(loop.runUntilComplete(loop.createUnixServer(() => new Protocol(), `${p}\0evil`))).rejects.toThrow(TypeError);
      expect(readdirSync(dir).filter((f) => f.startsWith('pub'))).toEqual([]);
    } finally {
      loop.close();
    }
  });

  it('a path longer than sun_path: bind throws ENAMETOOLONG, connect and sendto return it', () => {
    const long = path.join(dir, 'l'.repeat(200));
    const s = track(b.socket(c.AF_UNIX, c.SOCK_STREAM));
    let err: (Error & { code?: string; address?: string }) | undefined;
    try {
      b.bind(s, long);
    } catch (e) {
      err = e as typeof err;
    }
    expect(err?.code).toBe('ENAMETOOLONG');
    expect(err?.message).toContain('bind ENAMETOOLONG');
    expect(b.connect(s, long)).toBe(-c.ENAMETOOLONG);
    const d = track(b.socket(c.AF_UNIX, c.SOCK_DGRAM));
    expect(b.sendto(d, Buffer.from('x'), long)).toBe(-c.ENAMETOOLONG);
    // 108 bytes: no room for the terminating NUL of a filesystem path.
    expect(() => b.bind(s, 'p'.repeat(108))).toThrow(expect.objectContaining({ code: 'ENAMETOOLONG' }));
  });

  it.runIf(isLinux)('a leading NUL is the abstract namespace, NULs inside it included', () => {
    const name = `\0aionode-abs-${process.pid}\0x`;
    const srv = track(b.socket(c.AF_UNIX, c.SOCK_STREAM));
    b.bind(srv, name);
    b.listen(srv, 4);
    expect(b.getsockname(srv)).toBe(name);
    const cli = track(b.socket(c.AF_UNIX, c.SOCK_STREAM));
    expect(b.connect(cli, name)).toBe(0);
    const acc = b.accept(srv);
    expect(acc).toBeGreaterThanOrEqual(0);
    track(acc);
  });
});

describe('item 5: bad input to every socket op', () => {
  type Call = (fd: number) => unknown;
  // Each op with valid other arguments, called on `fd`.
  const ops = (): Record<string, Call> => {
    const buf = Buffer.alloc(64);
    return {
      read: (fd) => b.read(fd, buf),
      write: (fd) => b.write(fd, buf),
      bind: (fd) => b.bind(fd, ['127.0.0.1', 0]),
      listen: (fd) => b.listen(fd, 1),
      shutdown: (fd) => b.shutdown(fd, c.SHUT_RDWR),
      getsockname: (fd) => b.getsockname(fd),
      getpeername: (fd) => b.getpeername(fd),
      getsockopt: (fd) => b.getsockopt(fd, c.SOL_SOCKET, c.SO_TYPE),
      setsockopt: (fd) => b.setsockopt(fd, c.SOL_SOCKET, c.SO_REUSEADDR, 1),
      connect: (fd) => b.connect(fd, ['127.0.0.1', 9]),
      accept: (fd) => b.accept(fd),
      recv: (fd) => b.recv(fd, buf),
      send: (fd) => b.send(fd, buf),
      writev: (fd) => b.writev(fd, [buf, buf]),
      recvfrom: (fd) => b.recvfrom(fd, buf, []),
      recvmsg: (fd) => b.recvmsg(fd, [buf]),
      sendto: (fd) => b.sendto(fd, buf, ['127.0.0.1', 9]),
      sendfile: (fd) => b.sendfile(fd, fd, 0, 10),
      close: (fd) => b.close(fd),
      release: (fd) => b.release(fd),
    };
  };
  // Setup calls throw OS errors; data-path calls return -errno (the
  // documented split, see lib/native.ts; lib/ relies on both).
  const throwsOsError = new Set(['read', 'write', 'bind', 'listen', 'shutdown', 'getsockname', 'getpeername', 'getsockopt', 'setsockopt', 'close']);

  const badFds: [string, unknown][] = [
    ['-1', -1],
    ['2**31', 2 ** 31],
    ['2**53', 2 ** 53],
    ['NaN', NaN],
    ['Infinity', Infinity],
    ['-Infinity', -Infinity],
    ['1.5', 1.5],
    ['-0.5', -0.5],
    ['"3"', '3'],
    ['null', null],
    ['undefined', undefined],
    ['{}', {}],
    ['3n', 3n],
    ['{ valueOf }', { valueOf: () => 3 }],
  ];

  it.each(Object.keys(ops()))('%s: a bad fd is a TypeError / RangeError naming it', (name) => {
    const call = ops()[name];
    for (const [label, fd] of badFds) {
      let err: unknown;
      try {
        call(fd as number);
      } catch (e) {
        err = e;
      }
      expect(err, `${name}(${label})`).toBeInstanceOf(Error);
      expect((err as Error).constructor.name, `${name}(${label})`).toMatch(/^(TypeError|RangeError)$/);
      expect((err as Error).message, `${name}(${label})`).toMatch(/^Expected "(fd|outFd)" to be /);
    }
  });

  it.each(Object.keys(ops()).filter((n) => n !== 'release'))('%s on a closed fd: EBADF, thrown or returned per contract', (name) => {
    const fd = b.socket(c.AF_INET, c.SOCK_STREAM);
    b.close(fd);
    const call = ops()[name];
    if (throwsOsError.has(name)) {
      expect(() => call(fd), name).toThrow(expect.objectContaining({ code: 'EBADF' }));
    } else {
      expect(call(fd), name).toBe(-c.EBADF);
    }
  });

  it('ops on a regular file: ENOTSOCK, or the file fallback that is documented', () => {
    const file = path.join(dir, 'plain.txt');
    writeFileSync(file, 'hello');
    const fd = openSync(file, 'r+');
    try {
      for (const name of ['bind', 'listen', 'shutdown', 'getsockname', 'getpeername', 'getsockopt', 'setsockopt']) {
        expect(() => ops()[name](fd), name).toThrow(expect.objectContaining({ code: 'ENOTSOCK' }));
      }
      for (const name of ['connect', 'accept', 'recv', 'send', 'recvfrom', 'sendto']) {
        expect(ops()[name](fd), name).toBe(-c.ENOTSOCK);
      }
      // read(2) and the readv / writev fallbacks work on files (documented).
      expect(b.read(fd, Buffer.alloc(5))).toBe(5);
      expect(b.recvmsg(fd, [Buffer.alloc(5)])).toBe(0); // at EOF now
      expect(b.writev(fd, [Buffer.from('ab')])).toBe(2);
      expect(b.release(fd)).toBe(false); // not the addon's
    } finally {
      closeSync(fd);
    }
  });

  it('other arguments: wrong types and bad numbers name the argument', () => {
    const [x] = pair();
    const [u, addr] = udp();
    const cases: [() => unknown, RegExp][] = [
      [() => b.recv(x, 'buf' as never), /^Expected "buffer" to be a Uint8Array or Buffer, got "buf"$/],
      [() => b.recv(x, new ArrayBuffer(4) as never), /"buffer".*an instance of ArrayBuffer/],
      [() => b.recv(x, new DataView(new ArrayBuffer(4)) as never), /"buffer".*an instance of DataView/],
      [() => b.send(x, Buffer.alloc(4), NaN), /^Expected "offset" to be .*, got NaN$/],
      [() => b.send(x, Buffer.alloc(4), -1), /"offset".*got -1$/],
      [() => b.send(x, Buffer.alloc(4), 5), /"offset".*got 5$/],
      [() => b.send(x, Buffer.alloc(4), 1, 4), /"length".*got 4$/],
      [() => b.send(x, Buffer.alloc(4), 0, Infinity), /"length".*got Infinity$/],
      [() => b.writev(x, 'abc' as never), /"buffers" to be an array of Uint8Array, got "abc"/],
      [() => b.sendto(u, Buffer.alloc(1), ['127.0.0.1', 65536]), /^Expected "addr\[1\]" to be a port from 0 to 65535, got 65536$/],
      [() => b.sendto(u, Buffer.alloc(1), ['127.0.0.1', NaN]), /"addr\[1\]".*got NaN$/],
      [() => b.sendto(u, Buffer.alloc(1), ['localhost', addr[1]]), /"addr\[0\]" to be a numeric IP address \(no name resolution\), got "localhost"/],
      [() => b.sendto(u, Buffer.alloc(1), ['127.0.0.1\0x', addr[1]]), /"addr\[0\]"/],
      [() => b.sendto(u, Buffer.alloc(1), [] as never), /"addr"/],
      [() => b.sendto(u, Buffer.alloc(1), 42 as never), /"addr".*got 42$/],
      [() => b.connect(u, ['::1', 1, -1, 0]), /"addr\[2\]".*got -1$/],
      [() => b.connect(u, ['::1', 1, 0, 2 ** 32]), /"addr\[3\]".*got 4294967296$/],
      [() => b.listen(x, -1), /"backlog".*got -1$/],
      [() => b.listen(x, NaN), /"backlog".*got NaN$/],
      [() => b.shutdown(x, 7), /"how".*got 7$/],
      [() => b.getsockopt(x, 2 ** 31, 1), /"level".*got 2147483648$/],
      [() => b.setsockopt(x, c.SOL_SOCKET, c.SO_RCVBUF, NaN), /"value".*got NaN$/],
      [() => b.setsockopt(x, c.SOL_SOCKET, c.SO_RCVBUF, 'big' as never), /"value".*got "big"$/],
      [() => b.sendfile(x, x, -1, 1), /"offset".*got -1$/],
      [() => b.sendfile(x, x, 2 ** 53, 1), /"offset".*got 9007199254740992$/],
      [() => b.sendfile(x, x, 0, -1), /"count".*got -1$/],
      [() => b.sendfile(x, 2 ** 31, 0, 1), /"inFd".*got 2147483648$/],
      [() => b.socket(999, c.SOCK_STREAM), /"family".*got 999$/],
      [() => b.socket(c.AF_INET, 999), /"type".*got 999$/],
      [() => b.socket(NaN, c.SOCK_STREAM), /"family".*got NaN$/],
      [() => b.socketpair('raw' as never), /"type" to be 'stream' or 'dgram', got "raw"$/],
      [() => b.accept(x, 'out' as never), /"addrOut" to be an array, got "out"$/],
      [() => b.recvfrom(u, Buffer.alloc(1), {} as never), /"addrOut" to be an array, got an object$/],
      [() => b.errnoName(NaN), /"errno".*got NaN$/],
      [() => b.errnoName(2 ** 40), /"errno".*got 1099511627776$/],
      [() => b.adopt(-1), /"fd".*got -1$/],
    ];
    for (const [call, re] of cases) expect(call, String(re)).toThrow(re);
  });

  it('selector methods: bad numbers, closed fds, the wrong receiver', () => {
    const sel = new b.NativeSelector(b.availableSelectors().split(',')[0]);
    try {
      const [x] = pair();
      expect(() => sel.register(-1, 1, 1)).toThrow(/^Expected "fd" to be an integer from 0 to 2147483647, got -1$/);
      expect(() => sel.register(x, NaN, 1)).toThrow(/"token".*got NaN$/);
      expect(() => sel.register(x, 1, 4)).toThrow(/"events".*got 4$/);
      expect(() => sel.select(NaN, new Int32Array(2))).toThrow(/"timeout".*got NaN$/);
      expect(() => sel.select(0, [] as never)).toThrow(/"out" to be an Int32Array, got an array$/);
      expect(() => sel.select(0, new Int32Array(1))).toThrow(/"out" to be an Int32Array of at least 2 elements, got an instance of Int32Array$/);
      const closed = b.socket(c.AF_INET, c.SOCK_STREAM);
      b.close(closed);
      expect(() => sel.register(closed, 1, 1)).toThrow(expect.objectContaining({ code: 'EBADF' }));
      // Methods and getters on something that is not a NativeSelector: V8's
      // receiver check ("Illegal invocation") or ours (the type tag, which a
      // forged prototype cannot fake).
      const proto = Object.getPrototypeOf(sel) as NativeSelectorProto;
      const notSelector = /Illegal invocation|"this" to be a NativeSelector/;
      expect(() => proto.register.call({}, x, 1, 1)).toThrow(notSelector);
      expect(() => proto.select.call(Object.create(proto), 0, new Int32Array(2))).toThrow(notSelector);
      expect(() => Object.getOwnPropertyDescriptor(proto, 'size')!.get!.call(1)).toThrow(notSelector);
      expect(() => (b.NativeSelector as unknown as (n: string) => unknown)('epoll')).toThrow(/without 'new'/);
      expect(() => new b.NativeSelector(42 as never)).toThrow(/"name" to be a string, got 42/);
      expect(() => new b.NativeSelector('nope')).toThrow(/not available in this build/);
    } finally {
      sel.close();
    }
  });

  // Calls that would block the thread forever on a blocking pipe (a FIFO
  // opened without O_NONBLOCK). Old code blocked in read(2) / readv(2) /
  // write(2) / accept(2); run in a child process so a hang is a timeout.
  it.runIf(process.platform === 'linux')('a blocking pipe from elsewhere is refused on the data path, never a hang', () => {
    const fifo = path.join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const script = `
      const fs = require('node:fs');
      const { binding } = require(${JSON.stringify(path.join(root, 'dist', 'lib', 'native.js'))});
      const b = binding();
      const fd = fs.openSync(${JSON.stringify(fifo)}, 'r+'); // O_RDWR: no wait for a peer; blocking
      const nb = fs.openSync(${JSON.stringify(fifo)}, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
      const big = Buffer.alloc(1 << 20);
      const out = {};
      for (const [name, call] of Object.entries({
        read: () => b.read(fd, Buffer.alloc(8)),
        recvmsg: () => b.recvmsg(fd, [Buffer.alloc(8)]),
        write: () => b.write(fd, big),
        writev: () => b.writev(fd, [big]),
        accept: () => b.accept(fd),
        recv: () => b.recv(fd, Buffer.alloc(8)),
        sendfile: () => b.sendfile(fd, fd, 0, 8),
      })) {
        try { out[name] = call(); } catch (e) { out[name] = e.constructor.name + ': ' + e.message; }
      }
      // The same FIFO without O_NONBLOCK... with it: -EAGAIN, as for sockets.
      out.nbRead = b.read(nb, Buffer.alloc(8));
      out.nbRecvmsg = b.recvmsg(nb, [Buffer.alloc(8)]);
      console.log(JSON.stringify(out));`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 10_000 });
    expect(r.signal, `hung: ${r.stderr}`).toBeNull();
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as Record<string, unknown>;
    for (const name of ['read', 'recvmsg', 'write', 'writev', 'accept', 'recv', 'sendfile']) {
      expect(out[name], name).toMatch(/^TypeError: Expected "(fd|outFd)" to be a non-blocking descriptor/);
    }
    expect(out.nbRead).toBe(-c.EAGAIN);
    expect(out.nbRecvmsg).toBe(-c.EAGAIN);
  });
});

describe('item 8: fd ownership bookkeeping', () => {
  it('socket / accept / socketpair are owned; close and release forget; adopt records', () => {
    const base = b.ownedFds();
    const [x, y] = b.socketpair();
    const l = b.socket(c.AF_INET, c.SOCK_STREAM);
    b.bind(l, ['127.0.0.1', 0]);
    b.listen(l, 4);
    const cl = b.socket(c.AF_INET, c.SOCK_STREAM);
    b.connect(cl, b.getsockname(l));
    let a = -1;
    for (let i = 0; i < 100 && a < 0; i++) a = b.accept(l);
    expect(a).toBeGreaterThanOrEqual(0);
    expect(b.ownedFds()).toBe(base + 5);
    b.close(x);
    expect(b.ownedFds()).toBe(base + 4);
    expect(b.release(y)).toBe(true);
    expect(b.release(y)).toBe(false);
    expect(b.ownedFds()).toBe(base + 3);
    expect(b.adopt(y)).toBe(true); // back again
    expect(b.adopt(y)).toBe(false);
    for (const fd of [y, l, cl, a]) b.close(fd);
    expect(b.ownedFds()).toBe(base);
    expect(() => b.adopt(y)).toThrow(expect.objectContaining({ code: 'EBADF', syscall: 'adopt' }));
  });

  it('adopt makes a foreign fd non-blocking and close-on-exec', () => {
    const file = path.join(dir, 'adopt.txt');
    writeFileSync(file, '');
    const fd = openSync(file, fsConstants.O_RDONLY);
    try {
      expect(b.adopt(fd)).toBe(true);
      expect(b.release(fd)).toBe(true);
    } finally {
      closeSync(fd);
    }
  });

  it('an addrOut setter that throws in accept closes the accepted fd instead of leaking it', () => {
    const l = track(b.socket(c.AF_INET, c.SOCK_STREAM));
    b.bind(l, ['127.0.0.1', 0]);
    b.listen(l, 4);
    const cl = track(b.socket(c.AF_INET, c.SOCK_STREAM));
    b.connect(cl, b.getsockname(l));
    const before = b.ownedFds();
    const out: unknown[] = [];
    Object.defineProperty(out, 0, { set() { throw new Error('no'); }, configurable: true });
    let thrown = false;
    for (let i = 0; i < 100 && !thrown; i++) {
      try {
        if (b.accept(l, out) === -c.EAGAIN) continue;
      } catch (e) {
        expect((e as Error).message).toBe('no');
        thrown = true;
      }
    }
    expect(thrown).toBe(true);
    expect(b.ownedFds()).toBe(before);
  });
});

interface NativeSelectorProto {
  register: (this: unknown, fd: number, token: number, events: number) => void;
  select: (this: unknown, t: number, out: Int32Array) => number;
}
