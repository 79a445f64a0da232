/**
 * The addon's socket calls through loadBinding(): data-path calls return
 * -errno (EAGAIN is not an exception), setup calls throw Node-shaped system
 * errors, bad arguments throw TypeError / RangeError naming the argument.
 * Loopback only; every wait is bounded (2 s) and every fd is closed again.
 */
import { mkdtempSync, rmSync, writeFileSync, openSync, closeSync } from 'node:fs';
import { constants as osConstants, tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { OSError } from '../../lib/exceptions.js';
import { binding, loadBinding, type NativeSelector, type NativeSocketAddress } from '../../lib/native.js';
import { fdCount } from '../helpers/loop.js';

const root = path.resolve(__dirname, '..', '..');
const b = loadBinding(root);
const C = b.constants;
const E = osConstants.errno;

const READ = 1;
const WRITE = 2;

/** ::1 usable here (bound once at load; skipped cleanly when not). */
const haveIpv6 = ((): boolean => {
  let fd = -1;
  try {
    fd = b.socket(C.AF_INET6, C.SOCK_STREAM);
    b.bind(fd, ['::1', 0]);
    return true;
  } catch {
    return false;
  } finally {
    if (fd >= 0) b.close(fd);
  }
})();

// ---- fd bookkeeping and waiting ----------------------------------------------

let open: number[] = [];
let selector: NativeSelector;
const events = new Int32Array(8);
let baseline = 0;

/** Tracks `fd` for closing after the test; returns it. */
function own(fd: number): number {
  expect(fd).toBeGreaterThanOrEqual(0);
  open.push(fd);
  return fd;
}

function closeFd(fd: number): void {
  open = open.filter((f) => f !== fd);
  b.close(fd);
}

/** Waits up to 2 s for `interest` on fd; the ready events (0 on timeout). */
function waitFor(fd: number, interest: number): number {
  selector.register(fd, 1, interest);
  try {
    const n = selector.select(2, events);
    return n > 0 ? events[1] : 0;
  } finally {
    selector.unregister(fd);
  }
}

function tcpListener(host: string): number {
  const fd = own(b.socket(host.includes(':') ? C.AF_INET6 : C.AF_INET, C.SOCK_STREAM));
  b.setsockopt(fd, C.SOL_SOCKET, C.SO_REUSEADDR, true);
  b.bind(fd, [host, 0]);
  b.listen(fd, 16);
  return fd;
}

/** A connected [client, server] pair through `listener`. */
function tcpPair(listener: number, host: string): [number, number] {
  const client = own(b.socket(host.includes(':') ? C.AF_INET6 : C.AF_INET, C.SOCK_STREAM));
  const port = (b.getsockname(listener) as [string, number])[1];
  expect(b.connect(client, [host, port])).toBe(-C.EINPROGRESS);
  expect(waitFor(listener, READ) & READ).toBe(READ);
  const server = own(b.accept(listener));
  expect(waitFor(client, WRITE) & WRITE).toBe(WRITE);
  expect(b.getsockopt(client, C.SOL_SOCKET, C.SO_ERROR)).toBe(0);
  return [client, server];
}

function recvString(fd: number, n = 4096): string | number {
  const buf = Buffer.alloc(n);
  const got = b.recv(fd, buf);
  return got <= 0 ? got : buf.toString('latin1', 0, got);
}

function tmp(): string {
  return mkdtempSync(path.join(tmpdir(), 'aionode-sock-'));
}

/** The error a call throws (fails the test when it does not throw). */
function thrown(fn: () => unknown): Error & { code?: string; errno?: number; syscall?: string; address?: string; port?: number } {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a throw');
}

beforeAll(() => {
  selector = new b.NativeSelector(b.availableSelectors().split(',')[0]);
  baseline = fdCount();
});

afterEach(() => {
  for (const fd of open) b.close(fd);
  open = [];
});

afterAll(() => {
  selector.close();
});

// ---- tests ------------------------------------------------------------------------

describe('socket constants', () => {
  it('are this platform\'s values, frozen', () => {
    expect(Object.isFrozen(C)).toBe(true);
    for (const name of ['EAGAIN', 'EINPROGRESS', 'EINTR', 'ECONNRESET', 'EPIPE', 'ECONNREFUSED', 'ENOTCONN', 'EBADF'] as const) {
      expect(C[name]).toBe(E[name]);
    }
    for (const name of ['SHUT_RD', 'SHUT_WR', 'SHUT_RDWR', 'SO_REUSEADDR', 'SO_KEEPALIVE', 'SO_ERROR', 'SO_RCVBUF',
      'SO_SNDBUF', 'SO_BROADCAST', 'IPPROTO_TCP', 'TCP_NODELAY', 'IPPROTO_IPV6', 'IPV6_V6ONLY', 'SOL_SOCKET'] as const) {
      expect(typeof C[name]).toBe('number');
    }
    if (process.platform === 'linux') {
      expect([C.AF_UNIX, C.AF_INET, C.AF_INET6, C.SOCK_STREAM, C.SOCK_DGRAM]).toEqual([1, 2, 10, 1, 2]);
      expect(C.SO_REUSEPORT).toBe(15);
    }
  });
});

const tcpFamilies = [
  { name: 'IPv4', host: '127.0.0.1', ok: true },
  { name: 'IPv6', host: '::1', ok: haveIpv6 },
];

for (const { name, host, ok } of tcpFamilies) {
  describe.runIf(ok)(`TCP over ${name} (${host})`, () => {
    it('connect returns -EINPROGRESS, then writable with SO_ERROR 0; accept fills the peer address', () => {
      const l = tcpListener(host);
      const out: unknown[] = [];
      expect(b.accept(l, out)).toBe(-C.EAGAIN);
      const c = own(b.socket(host.includes(':') ? C.AF_INET6 : C.AF_INET, C.SOCK_STREAM));
      const [, port] = b.getsockname(l) as [string, number];
      expect(b.connect(c, [host, port])).toBe(-C.EINPROGRESS);
      expect(waitFor(c, WRITE) & WRITE).toBe(WRITE);
      expect(b.getsockopt(c, C.SOL_SOCKET, C.SO_ERROR)).toBe(0);
      expect(waitFor(l, READ) & READ).toBe(READ);
      const s = own(b.accept(l, out));
      expect(out).toEqual(b.getsockname(c));
      expect(b.getpeername(s)).toEqual(b.getsockname(c));
      expect(b.getpeername(c)).toEqual(b.getsockname(l));
    });

    it('getsockname / getpeername shapes', () => {
      const l = tcpListener(host);
      const [c, s] = tcpPair(l, host);
      const name = b.getsockname(c);
      if (host.includes(':')) {
        expect(name).toEqual([host, expect.any(Number), 0, 0]);
      } else {
        expect(name).toEqual([host, expect.any(Number)]);
      }
      const port = (name as number[])[1];
      expect(port).toBeGreaterThan(0);
      expect(port).toBeLessThan(65536);
      expect(b.getpeername(s)).toEqual(name);
    });

    it('send / recv with offset and length; -EAGAIN when empty', () => {
      const [c, s] = tcpPair(tcpListener(host), host);
      expect(recvString(s)).toBe(-C.EAGAIN);
      const data = Buffer.from('xxhello worldyy');
      expect(b.send(c, data, 2, 11)).toBe(11);
      expect(waitFor(s, READ)).toBe(READ);
      const into = Buffer.alloc(20, 0x2e);
      expect(b.recv(s, into, 4, 5)).toBe(5);
      expect(b.recv(s, into, 9)).toBe(6);
      expect(into.toString('latin1')).toBe('....hello world.....');
      expect(b.recv(s, into)).toBe(-C.EAGAIN);
      expect(b.send(c, new Uint8Array(0))).toBe(0);
    });

    it('writev gathers, recvmsg scatters', () => {
      const [c, s] = tcpPair(tcpListener(host), host);
      const parts = [Buffer.from('ab'), new Uint8Array(0), new TextEncoder().encode('cde'), Buffer.from('fghij').subarray(1, 3)];
      expect(b.writev(c, parts)).toBe(7);
      expect(b.writev(c, [])).toBe(0);
      expect(waitFor(s, READ)).toBe(READ);
      const x = Buffer.alloc(3);
      const y = Buffer.alloc(10);
      expect(b.recvmsg(s, [x, y])).toBe(7);
      expect(x.toString()).toBe('abc');
      expect(y.subarray(0, 4).toString()).toBe('degh');
      expect(b.recvmsg(s, [x, y])).toBe(-C.EAGAIN);
    });

    it('shutdown(SHUT_WR): the peer reads EOF, the other way still works', () => {
      const [c, s] = tcpPair(tcpListener(host), host);
      b.shutdown(c, C.SHUT_WR);
      expect(waitFor(s, READ)).toBe(READ);
      expect(recvString(s)).toBe(0);
      expect(b.send(s, Buffer.from('back'))).toBe(4);
      expect(waitFor(c, READ)).toBe(READ);
      expect(recvString(c)).toBe('back');
      expect(b.send(c, Buffer.from('x'))).toBe(-C.EPIPE);
    });

    it('a peer reset: recv returns -ECONNRESET, then send -EPIPE (no SIGPIPE)', () => {
      const [c, s] = tcpPair(tcpListener(host), host);
      b.setsockopt(c, C.SOL_SOCKET, C.SO_LINGER, 0);
      expect(b.getsockopt(c, C.SOL_SOCKET, C.SO_LINGER)).toBe(0);
      closeFd(c);
      expect(waitFor(s, READ) & READ).toBe(READ);
      expect(recvString(s)).toBe(-C.ECONNRESET);
      expect([-C.EPIPE, -C.ECONNRESET]).toContain(b.send(s, Buffer.from('after')));
      expect([-C.EPIPE, -C.ECONNRESET]).toContain(b.writev(s, [Buffer.from('after')]));
    });
  });
}

describe('TCP errors returned on the data path', () => {
  it('connect to a closed port: -EINPROGRESS then SO_ERROR ECONNREFUSED', () => {
    const t = own(b.socket(C.AF_INET, C.SOCK_STREAM));
    b.bind(t, ['127.0.0.1', 0]);
    const [, port] = b.getsockname(t) as [string, number];
    closeFd(t);
    const c = own(b.socket(C.AF_INET, C.SOCK_STREAM));
    const rc = b.connect(c, ['127.0.0.1', port]);
    expect([-C.EINPROGRESS, -C.ECONNREFUSED]).toContain(rc);
    if (rc === -C.EINPROGRESS) {
      expect(waitFor(c, WRITE)).not.toBe(0);
      expect(b.getsockopt(c, C.SOL_SOCKET, C.SO_ERROR)).toBe(C.ECONNREFUSED);
    }
  });

  it('a closed fd gives -EBADF, not an exception', () => {
    const [x, y] = b.socketpair();
    b.close(x);
    b.close(y);
    const buf = Buffer.alloc(4);
    expect(b.recv(x, buf)).toBe(-C.EBADF);
    expect(b.send(x, buf)).toBe(-C.EBADF);
    expect(b.writev(x, [buf])).toBe(-C.EBADF);
    expect(b.recvmsg(x, [buf])).toBe(-C.EBADF);
    expect(b.recvfrom(x, buf, [])).toBe(-C.EBADF);
    expect(b.sendto(x, buf, ['127.0.0.1', 9])).toBe(-C.EBADF);
    expect(b.accept(x)).toBe(-C.EBADF);
    expect(b.connect(x, ['127.0.0.1', 9])).toBe(-C.EBADF);
    expect(b.sendfile(x, y, 0, 1)).toBe(-C.EBADF);
  });

  it('send on an unconnected socket: -EPIPE', () => {
    const fd = own(b.socket(C.AF_INET, C.SOCK_STREAM));
    expect(b.send(fd, Buffer.from('x'))).toBe(-C.EPIPE);
  });
});

describe('UDP', () => {
  const udpFamilies = [
    { name: 'IPv4', host: '127.0.0.1', ok: true },
    { name: 'IPv6', host: '::1', ok: haveIpv6 },
  ];
  for (const { name, host, ok } of udpFamilies) {
    describe.runIf(ok)(name, () => {
      it('sendto / recvfrom round trip with addresses; addrOut is reused', () => {
        const fam = host.includes(':') ? C.AF_INET6 : C.AF_INET;
        const a = own(b.socket(fam, C.SOCK_DGRAM));
        const z = own(b.socket(fam, C.SOCK_DGRAM));
        b.bind(a, [host, 0]);
        b.bind(z, [host, 0]);
        const za = b.getsockname(z);
        const buf = Buffer.alloc(64);
        const from: unknown[] = ['stale', 1, 2, 3, 4, 5];
        expect(b.recvfrom(z, buf, from)).toBe(-C.EAGAIN);
        expect(from[0]).toBe('stale'); // untouched on error
        expect(b.sendto(a, Buffer.from('ping'), za)).toBe(4);
        expect(waitFor(z, READ)).toBe(READ);
        expect(b.recvfrom(z, buf, from)).toBe(4);
        expect(buf.toString('latin1', 0, 4)).toBe('ping');
        expect(from).toEqual(b.getsockname(a));
        // Reply to the reported address, into the same array.
        expect(b.sendto(z, Buffer.from('pong!'), from as NativeSocketAddress)).toBe(5);
        expect(waitFor(a, READ)).toBe(READ);
        const again = from;
        expect(b.recvfrom(a, buf, from)).toBe(5);
        expect(from).toBe(again);
        expect(from).toEqual(za);
        // A datagram scattered over two buffers; an oversize one is refused.
        expect(b.sendto(a, Buffer.from('0123456789'), za)).toBe(10);
        expect(waitFor(z, READ)).toBe(READ);
        const x = Buffer.alloc(4);
        const y = Buffer.alloc(16);
        expect(b.recvmsg(z, [x, y])).toBe(10);
        expect(x.toString() + y.toString('latin1', 0, 6)).toBe('0123456789');
        expect(b.sendto(a, Buffer.alloc(70_000), za)).toBe(-E.EMSGSIZE);
      });
    });
  }

  it('recvfrom with a null addrOut just reads', () => {
    const [x, y] = b.socketpair('dgram');
    own(x);
    own(y);
    expect(b.send(x, Buffer.from('dg'))).toBe(2);
    const buf = Buffer.alloc(8);
    expect(b.recvfrom(y, buf, null)).toBe(2);
  });
});

describe('unix sockets', () => {
  it('stream: bind, listen, connect at once, accept, exchange; names as strings', () => {
    const dir = tmp();
    try {
      const p = path.join(dir, 's.sock');
      const l = own(b.socket(C.AF_UNIX, C.SOCK_STREAM));
      b.bind(l, p);
      b.listen(l, 4);
      expect(b.getsockname(l)).toBe(p);
      const c = own(b.socket(C.AF_UNIX, C.SOCK_STREAM));
      expect(b.connect(c, p)).toBe(0);
      const peer: unknown[] = [];
      const s = own(b.accept(l, peer));
      expect(peer).toEqual(['']); // the client is unnamed
      expect(b.getsockname(c)).toBe('');
      expect(b.getpeername(c)).toBe(p);
      expect(b.send(c, Buffer.from('over unix'))).toBe(9);
      expect(waitFor(s, READ)).toBe(READ);
      expect(recvString(s)).toBe('over unix');
      expect(b.connect(own(b.socket(C.AF_UNIX, C.SOCK_STREAM)), path.join(dir, 'nope.sock'))).toBe(-E.ENOENT);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.runIf(process.platform === 'linux')('abstract namespace names keep their leading NUL', () => {
    const name = `\0aionode-test-${process.pid}`;
    const l = own(b.socket(C.AF_UNIX, C.SOCK_STREAM));
    b.bind(l, name);
    b.listen(l, 1);
    expect(b.getsockname(l)).toBe(name);
    const c = own(b.socket(C.AF_UNIX, C.SOCK_STREAM));
    expect(b.connect(c, name)).toBe(0);
    own(b.accept(l));
    expect(b.getpeername(c)).toBe(name);
  });

  it('datagram: recvfrom reports a bound sender by path', () => {
    const dir = tmp();
    try {
      const dp = path.join(dir, 'd.sock');
      const sp = path.join(dir, 'sender.sock');
      const d = own(b.socket(C.AF_UNIX, C.SOCK_DGRAM));
      const s = own(b.socket(C.AF_UNIX, C.SOCK_DGRAM));
      b.bind(d, dp);
      b.bind(s, sp);
      expect(b.sendto(s, Buffer.from('hi'), dp)).toBe(2);
      const from: unknown[] = ['x', 1];
      expect(b.recvfrom(d, Buffer.alloc(8), from)).toBe(2);
      expect(from).toEqual([sp]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a path too long: bind throws ENAMETOOLONG, connect / sendto return it', () => {
    const long = '/tmp/' + 'x'.repeat(200);
    const fd = own(b.socket(C.AF_UNIX, C.SOCK_STREAM));
    const err = thrown(() => b.bind(fd, long));
    expect(err.code).toBe('ENAMETOOLONG');
    expect(err.syscall).toBe('bind');
    expect(err.message.startsWith('bind ENAMETOOLONG /tmp/xxx')).toBe(true);
    expect(b.connect(fd, long)).toBe(-E.ENAMETOOLONG);
    const dg = own(b.socket(C.AF_UNIX, C.SOCK_DGRAM));
    expect(b.sendto(dg, Buffer.from('x'), long)).toBe(-E.ENAMETOOLONG);
  });
});

describe.runIf(process.platform === 'linux')('sendfile', () => {
  it('sends a file range over a socket; the caller advances the offset; 0 at EOF', () => {
    const dir = tmp();
    try {
      const file = path.join(dir, 'data.bin');
      const content = Buffer.from(Array.from({ length: 3000 }, (_, i) => String.fromCharCode(97 + (i % 26))).join(''));
      writeFileSync(file, content);
      const f = openSync(file, 'r');
      try {
        const [x, y] = b.socketpair();
        own(x);
        own(y);
        expect(b.sendfile(x, f, 5, 100)).toBe(100);
        expect(waitFor(y, READ)).toBe(READ);
        const got = Buffer.alloc(4096);
        expect(b.recv(y, got)).toBe(100);
        expect(got.subarray(0, 100)).toEqual(content.subarray(5, 105));
        let off = 105;
        let n: number;
        while ((n = b.sendfile(x, f, off, 1 << 20)) > 0) {
          off += n;
          while (b.recv(y, got) > 0);
        }
        expect(n).toBe(0);
        expect(off).toBe(content.length);
      } finally {
        closeSync(f);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('socket options', () => {
  it('TCP_NODELAY and SO_REUSEADDR round trip (numbers and booleans)', () => {
    const fd = own(b.socket(C.AF_INET, C.SOCK_STREAM));
    expect(b.getsockopt(fd, C.IPPROTO_TCP, C.TCP_NODELAY)).toBe(0);
    b.setsockopt(fd, C.IPPROTO_TCP, C.TCP_NODELAY, 1);
    expect(b.getsockopt(fd, C.IPPROTO_TCP, C.TCP_NODELAY)).not.toBe(0);
    b.setsockopt(fd, C.IPPROTO_TCP, C.TCP_NODELAY, false);
    expect(b.getsockopt(fd, C.IPPROTO_TCP, C.TCP_NODELAY)).toBe(0);
    b.setsockopt(fd, C.SOL_SOCKET, C.SO_REUSEADDR, true);
    expect(b.getsockopt(fd, C.SOL_SOCKET, C.SO_REUSEADDR)).not.toBe(0);
    b.setsockopt(fd, C.SOL_SOCKET, C.SO_REUSEADDR, 0);
    expect(b.getsockopt(fd, C.SOL_SOCKET, C.SO_REUSEADDR)).toBe(0);
    expect(b.getsockopt(fd, C.SOL_SOCKET, C.SO_LINGER)).toBe(-1);
    b.setsockopt(fd, C.SOL_SOCKET, C.SO_LINGER, 3);
    expect(b.getsockopt(fd, C.SOL_SOCKET, C.SO_LINGER)).toBe(3);
  });

  it('an unknown option throws ENOPROTOOPT', () => {
    const fd = own(b.socket(C.AF_INET, C.SOCK_STREAM));
    const err = thrown(() => b.setsockopt(fd, C.SOL_SOCKET, 0x7ffe, 1));
    expect(err.code).toBe('ENOPROTOOPT');
    expect(err.syscall).toBe('setsockopt');
    expect(thrown(() => b.getsockopt(fd, C.SOL_SOCKET, 0x7ffe)).syscall).toBe('getsockopt');
  });
});

describe('setup errors have Node\'s shape', () => {
  it('bind EADDRINUSE: code, errno, syscall, message, address, port', () => {
    const l = tcpListener('127.0.0.1');
    const [, port] = b.getsockname(l) as [string, number];
    const fd = own(b.socket(C.AF_INET, C.SOCK_STREAM));
    const err = thrown(() => b.bind(fd, ['127.0.0.1', port]));
    expect(err).toBeInstanceOf(Error);
    expect(err.code).toBe('EADDRINUSE');
    expect(err.errno).toBe(E.EADDRINUSE);
    expect(err.syscall).toBe('bind');
    expect(err.message).toBe(`bind EADDRINUSE 127.0.0.1:${port}`);
    expect(err.address).toBe('127.0.0.1');
    expect(err.port).toBe(port);
  });

  it('with the error factory wired (binding()), they are OSError subclasses', () => {
    const nb = binding();
    const fd = own(nb.socket(C.AF_INET, C.SOCK_STREAM));
    const err = thrown(() => nb.getpeername(fd));
    expect(err).toBeInstanceOf(OSError);
    expect(err.code).toBe('ENOTCONN');
    expect(err.syscall).toBe('getpeername');
    expect(err.message).toBe('getpeername ENOTCONN');
  });

  it('listen, shutdown, close, getsockname name their syscall', () => {
    const dg = own(b.socket(C.AF_INET, C.SOCK_DGRAM));
    b.bind(dg, ['127.0.0.1', 0]);
    const [, port] = b.getsockname(dg) as [string, number];
    const le = thrown(() => b.listen(dg, 1));
    expect(le.errno).toBe(E.EOPNOTSUPP);
    expect(le.code).toBe(b.errnoName(E.EOPNOTSUPP)); // 'ENOTSUP' on Linux, where the two are one value
    expect(le.message).toBe(`listen ${le.code} 127.0.0.1:${port}`);
    const st = own(b.socket(C.AF_INET, C.SOCK_STREAM));
    expect(thrown(() => b.shutdown(st, C.SHUT_RDWR))).toMatchObject({ code: 'ENOTCONN', syscall: 'shutdown' });
    const [x, y] = b.socketpair();
    b.close(x);
    b.close(y);
    expect(thrown(() => b.close(x))).toMatchObject({ code: 'EBADF', errno: E.EBADF, syscall: 'close' });
    expect(thrown(() => b.getsockname(x))).toMatchObject({ code: 'EBADF', syscall: 'getsockname' });
    expect(thrown(() => b.bind(x, ['127.0.0.1', 0]))).toMatchObject({ code: 'EBADF', syscall: 'bind' });
  });
});

describe('bad arguments', () => {
  it('name the argument: TypeError for types, RangeError for ranges', () => {
    const fd = own(b.socket(C.AF_INET, C.SOCK_DGRAM));
    const buf = Buffer.alloc(4);
    const cases: [() => unknown, ErrorConstructor, string][] = [
      [() => b.socket(99, C.SOCK_STREAM), RangeError, 'Expected "family" to be AF_INET, AF_INET6 or AF_UNIX, got 99'],
      [() => b.socket(C.AF_INET, 5), RangeError, '"type"'],
      [() => b.socket('inet' as unknown as number, C.SOCK_STREAM), TypeError, '"family"'],
      [() => b.recv(-1, buf), RangeError, 'Expected "fd" to be a non-negative integer, got -1'],
      [() => b.recv(1.5, buf), RangeError, '"fd"'],
      [() => b.recv('3' as unknown as number, buf), TypeError, '"fd"'],
      [() => b.recv(fd, 'text' as unknown as Uint8Array), TypeError, '"buffer" to be a Uint8Array or Buffer'],
      [() => b.recv(fd, new Uint16Array(2) as unknown as Uint8Array), TypeError, '"buffer"'],
      [() => b.recv(fd, buf, 5), RangeError, '"offset"'],
      [() => b.send(fd, buf, 1, 4), RangeError, '"length"'],
      [() => b.writev(fd, buf as unknown as Uint8Array[]), TypeError, '"buffers"'],
      [() => b.writev(fd, [buf, 'x' as unknown as Uint8Array]), TypeError, '"buffers[1]"'],
      [() => b.recvmsg(fd, [null as unknown as Uint8Array]), TypeError, '"buffers[0]"'],
      [() => b.bind(fd, ['localhost', 80]), TypeError, 'Expected "addr[0]" to be a numeric IP address (no name resolution), got "localhost"'],
      [() => b.connect(fd, ['example.com', 80]), TypeError, 'no name resolution'],
      [() => b.sendto(fd, buf, ['1.2.3', 80]), TypeError, '"addr[0]"'],
      [() => b.sendto(fd, buf, ['127.0.0.1', 70000]), RangeError, 'Expected "addr[1]" to be a port from 0 to 65535, got 70000'],
      [() => b.sendto(fd, buf, ['127.0.0.1', 80, 0, 0]), TypeError, 'numeric IPv6 address'],
      [() => b.sendto(fd, buf, ['::1', 80, -1, 0]), RangeError, '"addr[2]"'],
      [() => b.sendto(fd, buf, ['fe80::1%no-such-if9', 80]), TypeError, 'known interface'],
      [() => b.sendto(fd, buf, 42 as unknown as string), TypeError, '"addr" to be [host, port]'],
      [() => b.sendto(fd, buf, ['127.0.0.1'] as unknown as string), TypeError, '"addr"'],
      [() => b.recvfrom(fd, buf, 'x' as unknown as unknown[]), TypeError, '"addrOut"'],
      [() => b.accept(fd, {} as unknown as unknown[]), TypeError, '"addrOut"'],
      [() => b.listen(fd, -1), RangeError, 'Expected "backlog" to be a non-negative integer, got -1'],
      [() => b.shutdown(fd, 7), RangeError, '"how"'],
      [() => b.setsockopt(fd, C.SOL_SOCKET, C.SO_REUSEADDR, 'yes' as unknown as number), TypeError, '"value"'],
      [() => b.sendfile(fd, fd, -1, 1), RangeError, '"offset"'],
      [() => b.sendfile(fd, fd, 0, 2 ** 60), RangeError, '"count"'],
    ];
    for (const [fn, cls, text] of cases) {
      const err = thrown(fn);
      expect(err, text).toBeInstanceOf(cls);
      expect(err.message).toContain(text);
    }
  });
});

describe('the original four', () => {
  it('socketpair / read / write / close still work', () => {
    const [x, y] = b.socketpair();
    own(x);
    own(y);
    const buf = Buffer.alloc(8);
    expect(b.read(y, buf)).toBe(-C.EAGAIN);
    expect(b.write(x, Buffer.from('abc'))).toBe(3);
    expect(b.read(y, buf)).toBe(3);
  });
});

describe('fd accounting', () => {
  it('every fd is closed again: count back to the baseline', () => {
    for (let i = 0; i < 20; i++) {
      const l = tcpListener('127.0.0.1');
      tcpPair(l, '127.0.0.1');
      for (const fd of [...open]) closeFd(fd);
    }
    expect(fdCount()).toBe(baseline);
  });

  it('socket() and accept() fds are close-on-exec (child sees none of them)', async () => {
    const l = tcpListener('127.0.0.1');
    const [c, s] = tcpPair(l, '127.0.0.1');
    const { spawnSync } = await import('node:child_process');
    const r = spawnSync('sh', ['-c', 'ls /proc/$$/fd'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 5000 });
    const childFds = r.stdout.split(/\s+/).filter(Boolean).map(Number);
    for (const fd of [l, c, s]) expect(childFds).not.toContain(fd);
  });
});
