/**
 * A small, Python-`socket`-like wrapper over the addon's non-blocking
 * socket fds: what `sock=` options take, what `sockAccept` returns, and what
 * `transport.getExtraInfo('socket')` gives.
 *
 * Counterpart of CPython's `socket.socket` as asyncio uses it (and of
 * Lib/asyncio/trsock.py). Every fd is non-blocking and close-on-exec.
 */
import { inspect } from 'node:util';
import { describeArg, makeOSError, type OSError } from './exceptions.js';
import { binding } from './native.js';
import { _fdOpened } from './selectors.js';

/** A socket address: `[host, port]` (IPv4), `[host, port, flowinfo, scopeId]` (IPv6), or a path (Unix). */
export type SockAddr = [host: string, port: number] | [host: string, port: number, flowinfo: number, scopeId: number] | string;

/** @internal A Socket close hook: `(fd, closing)`; true when it closes the fd itself. */
export type CloseHook = (fd: number, closing: boolean) => boolean | void;

/** The addon's socket calls (see native/socket_wrap.cc). */
interface SocketOps {
  socket(family: number, type: number): number;
  bind(fd: number, addr: SockAddr): void;
  connect(fd: number, addr: SockAddr): number;
  listen(fd: number, backlog: number): void;
  accept(fd: number): number;
  recv(fd: number, buf: Uint8Array, offset?: number, length?: number): number;
  send(fd: number, buf: Uint8Array, offset?: number, length?: number): number;
  writev(fd: number, bufs: Uint8Array[]): number;
  recvfrom(fd: number, buf: Uint8Array, addrOut: unknown[]): number;
  recvmsg(fd: number, bufs: Uint8Array[]): number;
  sendto(fd: number, buf: Uint8Array, addr: SockAddr): number;
  shutdown(fd: number, how: number): void;
  close(fd: number): void;
  /** Forgets an fd without closing it (its new owner closes it); true if this environment owned it. */
  release(fd: number): boolean;
  /** Takes ownership of an fd made elsewhere (sets O_NONBLOCK and FD_CLOEXEC); false if already owned. */
  adopt(fd: number): boolean;
  /** How many fds this environment owns (closed by its cleanup hook at teardown). */
  ownedFds(): number;
  getsockname(fd: number): SockAddr;
  getpeername(fd: number): SockAddr;
  getsockopt(fd: number, level: number, opt: number): number;
  setsockopt(fd: number, level: number, opt: number, value: number): void;
  sendfile(outFd: number, inFd: number, offset: number, count: number): number;
  errnoName(errno: number): string;
  constants: Record<string, number>;
}

/** @internal The addon's socket calls. */
export function ops(): SocketOps {
  return binding() as unknown as SocketOps;
}

/** Socket constants from the addon (AF_INET, SOCK_STREAM, SOL_SOCKET, TCP_NODELAY, errno values, ...). */
export function constants(): Readonly<Record<string, number>> {
  return ops().constants;
}

/** Formats an address as Node does in messages: `127.0.0.1:8080`, `[::1]:80`, or the path. */
export function formatAddress(addr: unknown): string {
  if (typeof addr === 'string') return addr;
  if (Array.isArray(addr) && typeof addr[0] === 'string') {
    return addr[0].includes(':') ? `[${addr[0]}]:${addr[1]}` : `${addr[0]}:${addr[1]}`;
  }
  return String(addr);
}

/**
 * The OSError subclass for a negative errno from a data-path call, in
 * Node's shape: `connect ECONNREFUSED 127.0.0.1:8080`.
 */
export function socketError(negErrno: number, syscall: string, addr?: unknown): OSError {
  const errno = -negErrno;
  const code = ops().errnoName(errno);
  const info: { errno: number; code: string; syscall: string; address?: string; port?: number } = { errno, code, syscall };
  let message = `${syscall} ${code}`;
  if (addr !== undefined) {
    message += ` ${formatAddress(addr)}`;
    if (typeof addr === 'string') info.address = addr;
    else if (Array.isArray(addr)) {
      info.address = String(addr[0]);
      info.port = Number(addr[1]);
    }
  }
  return makeOSError(message, info);
}

/**
 * A non-blocking socket owned by one object: the fd is closed once, by
 * `close()`, and `detach()` hands ownership away.
 *
 * One owner per fd (reliability F1/F2): nothing in aionode keeps a bare fd
 * number across an await; every operation asks its Socket, whose `fileno()`
 * is -1 from the moment it closes, so a closed socket can never act on a
 * number the kernel has since given to another connection. Loops that
 * watch the fd register a close hook: `close()` runs the hooks *before*
 * the fd is released (they drop the selector registrations and wake every
 * waiter, which then sees EBADF), and only then closes the fd.
 */
export class Socket {
  #fd: number;
  #closeHooks: CloseHook[] | null = null;
  readonly family: number;
  readonly type: number;

  /**
   * Opens a new socket, or adopts `fd` (made non-blocking and close-on-exec
   * if it is not already, and owned by this Node environment from now on).
   */
  constructor(family: number, type: number, fd?: number) {
    if (fd !== undefined && (!Number.isInteger(fd) || fd < 0)) {
      throw new RangeError(describeArg('fd', 'a non-negative integer', fd));
    }
    this.family = family;
    this.type = type;
    // An fd made elsewhere becomes this environment's (non-blocking,
    // close-on-exec, closed at teardown); the addon's own fds already are.
    if (fd !== undefined) ops().adopt(fd);
    this.#fd = fd ?? ops().socket(family, type);
    // The kernel just handed out this number: any registration still filed
    // under it belonged to a file that was closed behind its loop's back.
    _fdOpened(this.#fd);
  }

  /** The fd, or -1 once closed or detached. */
  fileno(): number {
    return this.#fd;
  }

  /**
   * @internal Calls `hook(fd, closing)` just before the fd is closed
   * (`closing` true) or detached (false), once per hook; adding the same
   * hook twice is a no-op. A hook that returns true when closing has taken
   * over closing the fd (a proactor closes it only once the kernel has
   * finished the operations still in flight on it).
   */
  _onClose(hook: CloseHook): void {
    if (this.#fd < 0) return;
    const hooks = (this.#closeHooks ??= []);
    if (!hooks.includes(hook)) hooks.push(hook);
  }

  #runCloseHooks(fd: number, closing: boolean, onTakeOver?: () => void): void {
    const hooks = this.#closeHooks;
    this.#closeHooks = null;
    if (hooks === null) return;
    // Told at once, so a later hook that throws cannot make close() close
    // an fd a hook has already promised to close.
    for (const hook of hooks) if (hook(fd, closing) === true) onTakeOver?.();
  }

  /** Closes the fd (idempotent). */
  close(): void {
    if (this.#fd >= 0) {
      const fd = this.#fd;
      this.#fd = -1;
      let takenOver = false;
      try {
        this.#runCloseHooks(fd, true, () => {
          takenOver = true;
        });
      } finally {
        if (!takenOver) ops().close(fd);
      }
    }
  }

  /** Gives up the fd without closing it; returns it. */
  detach(): number {
    const fd = this.#fd;
    this.#fd = -1;
    if (fd >= 0) {
      // The new owner may close it behind our back: stop watching it now.
      this.#runCloseHooks(fd, false);
      ops().release(fd);
    }
    return fd;
  }

  #live(): number {
    if (this.#fd < 0) throw makeOSError('Bad file descriptor', { errno: 9, code: 'EBADF', syscall: 'socket' });
    return this.#fd;
  }

  bind(addr: SockAddr): void {
    ops().bind(this.#live(), addr);
  }

  listen(backlog = 128): void {
    ops().listen(this.#live(), backlog);
  }

  getsockname(): SockAddr {
    return ops().getsockname(this.#live());
  }

  getpeername(): SockAddr {
    return ops().getpeername(this.#live());
  }

  getsockopt(level: number, opt: number): number {
    return ops().getsockopt(this.#live(), level, opt);
  }

  setsockopt(level: number, opt: number, value: number | boolean): void {
    ops().setsockopt(this.#live(), level, opt, Number(value));
  }

  shutdown(how: number): void {
    ops().shutdown(this.#live(), how);
  }

  toString(): string {
    const c = constants();
    const fam = this.family === c.AF_INET ? 'AF_INET' : this.family === c.AF_INET6 ? 'AF_INET6' : this.family === c.AF_UNIX ? 'AF_UNIX' : String(this.family);
    const typ = this.type === c.SOCK_STREAM ? 'SOCK_STREAM' : this.type === c.SOCK_DGRAM ? 'SOCK_DGRAM' : String(this.type);
    return `<Socket fd=${this.#fd} family=${fam} type=${typ}>`;
  }

  [inspect.custom](): string {
    return this.toString();
  }
}
