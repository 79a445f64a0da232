/**
 * Typed surface of the C++ addon and its loader.
 *
 * The loader follows node-gyp-build's order (build/Release, build/Debug,
 * prebuilds/<platform>-<arch>/) and, when nothing loads, throws an error
 * that names the platform tuple, every path it tried and how to build.
 */
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { makeOSError } from './exceptions.js';

/** A native selector (one backend: epoll, poll, select). */
export interface NativeSelector {
  readonly name: string;
  /** The selector's pollable fd, or -1 when it needs the helper thread. */
  readonly backendFd: number;
  readonly size: number;
  readonly closed: boolean;
  register(fd: number, token: number, events: number): void;
  modify(fd: number, token: number, events: number): void;
  unregister(fd: number): void;
  /** Blocks up to `timeout` seconds (negative: forever); fills `out` with (token, events) pairs. */
  select(timeout: number, out: Int32Array): number;
  wakeup(): void;
  close(): void;
}

/**
 * A native completion source (issue 9; Linux: io_uring). The loop's driver
 * hosts it exactly as it hosts a selector (ring fd in one uv_poll_t); what
 * differs is what comes out of a batch: for every finished operation, the
 * pair `(token, result)` in the loop's shared Int32Array, where `result` is
 * bytes transferred, a new fd (accept), 0 (connect), a readiness mask
 * (poll: EVENT_READ 1 | EVENT_WRITE 2) or a negative errno (-ECANCELED for
 * a cancelled op).
 *
 * Tokens are chosen by the caller: positive int32s, unique among the ops in
 * flight (a second submit with a live token returns -EEXIST). Submit calls
 * return 0 when queued or a negative errno (nothing queued, nothing pinned);
 * they throw only for bad arguments (TypeError/RangeError naming the
 * argument) or a closed proactor (Error 'Proactor is closed'). Submissions
 * are flushed with one io_uring_enter per loop pass, or at once when made
 * outside a batch.
 *
 * Pinning: every buffer handed to an op is held (a strong reference) until
 * that op's completion has been delivered, whatever JavaScript does
 * meanwhile (cancel, drop, GC). Closing the proactor cancels every op,
 * waits for the kernel to finish with them, and only then lets the buffers
 * go. Every op has exactly one completion, except `acceptMany`, whose
 * token stays live (one completion per accepted fd) until its first
 * negative result, which ends it.
 */
export interface NativeProactor {
  /** `'io_uring'`. */
  readonly name: string;
  /** The ring's pollable fd. */
  readonly backendFd: number;
  readonly closed: boolean;
  /** Ops submitted whose final completion has not been delivered yet. */
  readonly pending: number;
  /**
   * What the runtime probe found (frozen): `multishotAccept`, `multishotRecv`,
   * `providedBufferRing`, `pollMultishot`, `cancelFdAll`, `cancelAny`,
   * `extArg`, `nodrop`. Features without a probe flag of their own are read
   * from an opcode or feature bit of the same kernel release (e.g.
   * multishot accept from IORING_OP_SOCKET, 5.19). With both
   * `multishotRecv` and `providedBufferRing`, `providePool` and `recvMany`
   * work; without them they return -EOPNOTSUPP.
   */
  readonly features: Readonly<Record<string, boolean>>;
  /** recv into buf[offset, offset+length): completion = bytes, 0 at EOF, or -errno. */
  recv(token: number, fd: number, buf: Uint8Array, offset: number, length: number): number;
  /** recvmsg of one datagram into buf[offset, offset+length); the sender via `address(token)`. */
  recvfrom(token: number, fd: number, buf: Uint8Array, offset: number, length: number): number;
  /** send from buf[offset, offset+length) with MSG_NOSIGNAL: completion = bytes or -errno. */
  send(token: number, fd: number, buf: Uint8Array, offset: number, length: number): number;
  /** sendmsg of up to 1024 buffers (gathering write): completion = bytes or -errno. */
  writev(token: number, fd: number, bufs: readonly Uint8Array[]): number;
  /** sendmsg of one datagram to addr. */
  sendto(token: number, fd: number, buf: Uint8Array, offset: number, length: number, addr: NativeSocketAddress): number;
  /**
   * One accept (non-blocking, close-on-exec, owned by this environment from
   * the moment its completion is taken, before the batch runs): completion
   * = fd or -errno; the peer via `address(token)`.
   */
  accept(token: number, fd: number): number;
  /**
   * Accepts repeatedly on one token: a completion per new fd, until the
   * first negative result (-ECANCELED after cancel, or an error such as
   * -EMFILE), which ends the op. Multishot accept where the kernel has it
   * (re-armed inside when the kernel ends it after a success), else single
   * accepts re-submitted inside. Accepted fds are owned as `accept`'s;
   * `address(token)` is null for this op (one token, many peers: use
   * `getpeername`).
   */
  acceptMany(token: number, fd: number): number;
  /** connect: completion = 0 or -errno. */
  connect(token: number, fd: number, addr: NativeSocketAddress): number;
  /**
   * Makes `buf` the pool of `recvMany`: `buf.length / size` buffers of
   * `size` bytes (a power of two of them, at most 16384; size at most
   * 131071), held (pinned) until close() has drained the kernel. Once per
   * proactor. Returns 0, or -EOPNOTSUPP (no multishot recv or provided-buffer
   * rings here), -EEXIST (already set). Throws TypeError/RangeError for a
   * bad buffer or size.
   */
  providePool(buf: Uint8Array, size: number): number;
  /**
   * Multishot recv into the pool: one submission, then a completion per
   * chunk the kernel reads, until the first result <= 0 (0 at EOF,
   * -ECANCELED after cancel, -errno), which ends the op. A chunk's result
   * packs where its bytes are: buffer id `result >>> 17`, length
   * `result & 0x1ffff`, at `pool[id * size, id * size + length)`. Those
   * bytes are the caller's only until the batch that delivered them returns
   * (the buffer then goes back to the kernel): copy them in the batch.
   * When the pool runs dry the op waits, with no completion, for buffers to
   * come back. -EOPNOTSUPP without a pool.
   */
  recvMany(token: number, fd: number): number;
  /** One-shot readiness: completion = mask of (1 read, 2 write) that is ready; errors and hang-up report the requested directions. */
  poll(token: number, fd: number, events: number): number;
  /** Asks the kernel to cancel the op: 0 when asked, -ENOENT when no op with that token is in flight. Its completion still arrives (maybe with data). */
  cancel(token: number): number;
  /** Cancels every op on `fd`; returns how many were in flight. */
  cancelFd(fd: number): number;
  /**
   * Closes `fd` (one this environment owns) once every op on it has
   * delivered its completion: cancels them first. The fd number stays
   * taken until then (the close comes after the batch that delivers the
   * last of them has returned), so it cannot be reused under an op in
   * flight. With no op in flight it closes at once, throwing as `close(fd)`
   * does (EBADF, ...).
   */
  closeFd(fd: number): void;
  /**
   * The peer of the recvfrom/accept completion for `token` delivered in the
   * current batch, else null (kept until the loop's next pass begins).
   */
  address(token: number): NativeSocketAddress | null;
  /**
   * Cancels everything, waits (at most 5 s) for the kernel to complete every
   * op, frees every pinned buffer and closes the fds `closeFd` deferred;
   * fds accepted meanwhile are closed. Completions are not delivered. A
   * loop hosting it stays usable (it sees nothing more from it); the ring
   * fd itself goes with the last of the proactor and its loops.
   * Idempotent. Environment teardown (worker terminate, exit) does the same
   * without calling JavaScript.
   */
  close(): void;
}

/** Loop counters, for tests and benchmarks. */
export interface NativeLoopStats {
  batches: number;
  ioPasses: number;
  idlePasses: number;
  timerArms: number;
  timers: number;
  registered: number;
  helperThread: boolean;
  timerSource: 'timerfd' | 'uv_timer';
  /** Bytes held by the native timer heap's storage (shrinks after a flood). */
  timerHeapBytes: number;
  /** Bytes held by the heap's id index. */
  timerIndexBytes: number;
}

/** The native host of one event source (selector or proactor) and the timer heap, living in Node's libuv loop. */
export interface NativeLoop {
  readonly backend: string;
  start(kick: boolean): void;
  stop(): void;
  kick(): void;
  timerAt(id: number, when: number): void;
  timerIn(id: number, delay: number): number;
  timerRemove(id: number): boolean;
  timerCount(): number;
  stats(): NativeLoopStats;
  close(): void;
}

export interface NativeBinding {
  NativeSelector: new (name: string) => NativeSelector;
  /**
   * io_uring. Throws an OSError naming the reason when the kernel refuses
   * (ENOSYS: no io_uring; EPERM: seccomp or kernel.io_uring_disabled) or a
   * required opcode is missing (the message names it).
   */
  NativeProactor: new (name: 'io_uring', entries?: number) => NativeProactor;
  /** Which proactors this build has and this kernel allows: 'io_uring' or ''. */
  availableProactors(): string;
  NativeLoop: new (
    source: NativeSelector | NativeProactor,
    events: Int32Array,
    onBatch: (count: number) => number,
  ) => NativeLoop;
  /** CLOCK_MONOTONIC in seconds. */
  time(): number;
  availableSelectors(): string;
  errnoName(errno: number): string;
  setErrorFactory(
    factory: (errno: number, code: string, syscall: string, message: string, strerror: string) => Error,
  ): void;
  /** AF_UNIX socketpair(2), non-blocking and close-on-exec; both fds owned by this environment. */
  socketpair(type?: 'stream' | 'dgram'): [number, number];
  /** read(2) into `buf`: bytes read (0 at EOF), or -EAGAIN (negative) when nothing is there; throws other errors. */
  read(fd: number, buf: Uint8Array): number;
  /** write(2) from `buf`: bytes written, or -EAGAIN (negative) when full; throws other errors. */
  write(fd: number, buf: Uint8Array): number;
  /**
   * close(2); throws (EBADF, ...). The fd stops being this environment's
   * first. Any fd may be closed (as os.close), not only owned ones.
   */
  close(fd: number): void;

  // ---- fd ownership (issue 8 item 8) ----
  // Every fd made by socket(), accept() and socketpair() is owned by the
  // Node environment (main thread or worker) that made it, until close() or
  // release(); when the environment is torn down (worker terminate() or
  // process.exit(), main thread exit) the fds it still owns are closed.
  // fd numbers are process-wide: an fd closed any other way must be
  // release()d first, or teardown could close whatever file reused the
  // number (teardown skips a number whose file identity changed, as a
  // second line of defence).

  /** Forgets `fd` without closing it (hand-over, e.g. `Socket.detach()`); true when it was owned. */
  release(fd: number): boolean;
  /**
   * Makes an fd from elsewhere owned by this environment, setting O_NONBLOCK
   * and FD_CLOEXEC (asyncio's setblocking(False)). True when newly owned,
   * false when it already was. Throws EBADF (syscall 'adopt') for a closed fd.
   */
  adopt(fd: number): boolean;
  /** How many fds this environment owns (tests, leak checks). */
  ownedFds(): number;

  // ---- sockets (native/socket_wrap.cc) ----
  // Data-path calls (connect, accept, recv, send, writev, recvfrom, recvmsg,
  // sendto, sendfile) RETURN a negative errno for every OS error, -EAGAIN
  // included. Setup calls (socket, bind, listen, shutdown, close,
  // getsockname, getpeername, getsockopt, setsockopt) THROW Node-shaped
  // system errors (`code`, `errno`, `syscall`; bind/listen add `address` and
  // `port`, message `bind EADDRINUSE 127.0.0.1:8080`). Bad arguments throw
  // TypeError / RangeError naming the argument.
  //
  // Addresses: AF_INET `[host, port]`, AF_INET6 `[host, port, flowinfo,
  // scopeId]`, AF_UNIX a path string (leading '\0': Linux abstract
  // namespace; '' unnamed). Hosts are numeric only (no DNS; IPv6 may carry
  // `%scope`). As an argument the family is read from the shape: a string is
  // AF_UNIX, a 3-4 element array AF_INET6, a 2-element array AF_INET6 when
  // the host contains ':', else AF_INET. Address-out arrays are reused: their
  // elements and length are overwritten ([path] for AF_UNIX, [] when the
  // kernel reports no address). A unix path with a NUL anywhere but first
  // is a TypeError (the kernel would use a truncated path); one longer than
  // sun_path is ENAMETOOLONG (bind throws it, connect/sendto return it).
  //
  // Data-path calls and read/write refuse, with a TypeError, an fd from
  // elsewhere that could block the thread (no O_NONBLOCK: a blocking pipe,
  // FIFO, socket or tty); regular files are fine. Buffers and addresses may
  // come from arrays with getters: every value is read before any buffer's
  // memory is used, so a getter that detaches a buffer cannot make the
  // kernel touch freed memory (a detached buffer counts as empty).

  /** socket(2), non-blocking and close-on-exec: the fd. */
  socket(family: number, type: number, protocol?: number): number;
  bind(fd: number, addr: NativeSocketAddress): void;
  listen(fd: number, backlog: number): void;
  /** 0 when connected at once, -EINPROGRESS (wait for writability, then read SO_ERROR), or -errno. */
  connect(fd: number, addr: NativeSocketAddress): number;
  /** accept4(2) NONBLOCK | CLOEXEC: the new fd or -errno (-EAGAIN, -ECONNABORTED, -EMFILE, ...); fills `addrOut` with the peer. */
  accept(fd: number, addrOut?: unknown[]): number;
  /** Bytes read into buf[offset, offset + length), 0 at EOF, or -errno. */
  recv(fd: number, buf: Uint8Array, offset?: number, length?: number): number;
  /** Bytes sent from buf[offset, offset + length), or -errno (MSG_NOSIGNAL: -EPIPE, never SIGPIPE). */
  send(fd: number, buf: Uint8Array, offset?: number, length?: number): number;
  /** Gathering send of up to IOV_MAX (1024) buffers per call: bytes sent or -errno. */
  writev(fd: number, bufs: readonly Uint8Array[]): number;
  /** One datagram into buf (truncated to fit): bytes or -errno; `addrOut` gets the sender. */
  recvfrom(fd: number, buf: Uint8Array, addrOut: unknown[] | null): number;
  /** Scatter read into up to IOV_MAX buffers: bytes, 0 at EOF, or -errno. */
  recvmsg(fd: number, bufs: readonly Uint8Array[]): number;
  /** Bytes sent or -errno (-ENAMETOOLONG for a unix path that does not fit). */
  sendto(fd: number, buf: Uint8Array, addr: NativeSocketAddress): number;
  /** how: SHUT_RD, SHUT_WR or SHUT_RDWR. */
  shutdown(fd: number, how: number): void;
  /** The local address; '' for an unnamed unix socket. */
  getsockname(fd: number): NativeSocketAddress;
  getpeername(fd: number): NativeSocketAddress;
  /** An int option. SO_LINGER is one int: seconds when on, -1 when off. */
  getsockopt(fd: number, level: number, option: number): number;
  /** An int option (booleans as 1 / 0). SO_LINGER: seconds >= 0 turns it on, -1 off. */
  setsockopt(fd: number, level: number, option: number, value: number | boolean): void;
  /** sendfile(2) from inFd at `offset` (the caller advances it): bytes, 0 at end of file, or -errno; -ENOSYS off Linux. */
  sendfile(outFd: number, inFd: number, offset: number, count: number): number;
  /** Socket constants and positive errno values of this platform (frozen). */
  constants: NativeSocketConstants;

  // ---- child processes and pipes (native/spawn_wrap.cc, issue 10) ----

  /**
   * Starts a child (vfork + execve): `candidates` are the paths to try in
   * order (the caller did the PATH search), `stdio` the fds that become the
   * child's 0, 1, 2 (-1: inherit), `passFds` further fds (>= 3) it keeps;
   * every other fd is closed in the child. Returns the pid, or -errno with
   * `failure` set to `[step, index]` (step: 'execve', 'chdir',
   * 'dup2', 'setsid', 'setpgid', 'fcntl', 'fork'); the failed child is reaped.
   */
  spawn(
    candidates: readonly string[],
    argv: readonly string[],
    env: readonly string[],
    cwd: string | null,
    stdio: readonly [number, number, number],
    passFds: readonly number[],
    newSession: boolean,
    processGroup: number,
    failure: unknown[],
  ): number;
  /** pidfd_open(2): an owned close-on-exec fd readable once `pid` exits, or -errno (-ENOSYS, -EPERM, -ESRCH). */
  pidfdOpen(pid: number): number;
  /** waitpid(pid, WNOHANG): the return code (-signal when killed), or null while it runs; throws ChildProcessError (ECHILD). */
  reap(pid: number): number | null;
  /** pipe2(O_CLOEXEC): `[readFd, writeFd]`, both blocking and owned; `size` > 0 asks for that capacity (F_SETPIPE_SZ, best effort). */
  pipe(size?: number): [number, number];
  /** Sets (true) or clears (false) blocking mode: O_NONBLOCK off or on. */
  setBlocking(fd: number, blocking: boolean): void;

  abiVersion: number;
}

/** A socket address as the addon takes and returns it (see NativeBinding). */
export type NativeSocketAddress =
  | [host: string, port: number]
  | [host: string, port: number, flowinfo: number, scopeId: number]
  | string;

/** The addon's `constants`: this platform's values (SO_REUSEPORT may be missing). */
export interface NativeSocketConstants {
  readonly AF_UNSPEC: number;
  readonly AF_INET: number;
  readonly AF_INET6: number;
  readonly AF_UNIX: number;
  readonly SOCK_STREAM: number;
  readonly SOCK_DGRAM: number;
  readonly SOL_SOCKET: number;
  readonly SO_REUSEADDR: number;
  readonly SO_REUSEPORT?: number;
  readonly SO_KEEPALIVE: number;
  readonly SO_ERROR: number;
  readonly SO_RCVBUF: number;
  readonly SO_SNDBUF: number;
  readonly SO_BROADCAST: number;
  readonly SO_LINGER: number;
  readonly SO_TYPE: number;
  readonly SOMAXCONN: number;
  readonly IPPROTO_IP: number;
  readonly IPPROTO_TCP: number;
  readonly IPPROTO_UDP: number;
  readonly TCP_NODELAY: number;
  readonly IPPROTO_IPV6: number;
  readonly IPV6_V6ONLY: number;
  readonly SHUT_RD: number;
  readonly SHUT_WR: number;
  readonly SHUT_RDWR: number;
  readonly EAGAIN: number;
  readonly EWOULDBLOCK: number;
  readonly EINPROGRESS: number;
  readonly EALREADY: number;
  readonly EISCONN: number;
  readonly EINTR: number;
  readonly ECONNRESET: number;
  readonly ECONNABORTED: number;
  readonly EPIPE: number;
  readonly ECONNREFUSED: number;
  readonly ENOTCONN: number;
  readonly EBADF: number;
  readonly EMFILE: number;
  readonly ENFILE: number;
  readonly ENOBUFS: number;
  readonly ENOMEM: number;
  readonly EMSGSIZE: number;
  readonly ETIMEDOUT: number;
  readonly ENAMETOOLONG: number;
  readonly ENOSYS: number;
  readonly EINVAL: number;
  readonly ENOTSOCK: number;
  readonly EADDRINUSE: number;
  readonly EAFNOSUPPORT: number;
  readonly EOPNOTSUPP: number;
}

/** Where the loader looks, first hit wins. Exported for the error test. */
export function candidatePaths(root: string): string[] {
  const tuple = `${process.platform}-${process.arch}`;
  const out = [
    path.join(root, 'build', 'Release', 'aionode.node'),
    path.join(root, 'build', 'Debug', 'aionode.node'),
  ];
  const pre = path.join(root, 'prebuilds', tuple);
  if (existsSync(pre)) {
    for (const f of readdirSync(pre).sort()) {
      if (f.endsWith('.node')) out.push(path.join(pre, f));
    }
  } else {
    out.push(path.join(pre, 'aionode.napi.node'));
  }
  return out;
}

/** The package root: the nearest folder above this file with binding.gyp or package.json named aionode. */
export function packageRoot(from: string = __dirname): string {
  let dir = from;
  for (;;) {
    if (existsSync(path.join(dir, 'binding.gyp')) || existsSync(path.join(dir, 'prebuilds'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) return path.resolve(from, '..');
    dir = up;
  }
}

/**
 * Loads the addon from `root` (default: this package), trying every
 * candidate path; `AIONODE_NATIVE` overrides with one exact file.
 * @throws Error listing the platform tuple, each path tried and why it failed.
 */
export function loadBinding(root: string = packageRoot()): NativeBinding {
  const override = process.env.AIONODE_NATIVE;
  const paths = override ? [path.resolve(override)] : candidatePaths(root);
  const tried: string[] = [];
  for (const p of paths) {
    if (!existsSync(p)) {
      tried.push(`  ${p} (not found)`);
      continue;
    }
    try {
      return createRequire(p)(p) as NativeBinding;
    } catch (err) {
      tried.push(`  ${p} (${(err as Error).message.split('\n')[0]})`);
    }
  }
  const tuple = `${process.platform}-${process.arch} (node ${process.version}, napi ${process.versions.napi})`;
  throw new Error(
    `aionode: could not load the native addon for ${tuple}.\n` +
      `Tried:\n${tried.join('\n')}\n` +
      `Build it from source with \`npm run build:native\` (needs python3, make and a C++17 compiler; ` +
      `runs offline against this Node's headers), or add a prebuild with \`npm run prebuild\`.`,
  );
}

let cached: NativeBinding | undefined;

/** The addon, loaded on first use and wired to lib/'s OSError family. */
export function binding(): NativeBinding {
  if (cached === undefined) {
    const b = loadBinding();
    b.setErrorFactory((errno, code, syscall, message, strerror) =>
      makeOSError(message, { errno, code, syscall, strerror }),
    );
    cached = b;
  }
  return cached;
}

// ---- cross-thread channels (issue 10 item 4; native/channel_wrap.cc) ----

/**
 * A channel whose target is this thread: other threads post serialized
 * messages to its `id` with `channelPost`; each wake-up drains the FIFO and
 * calls `onMessages(kinds, data, ends)` once (message i is
 * `data[ends[i-1] .. ends[i])`). Unref'd unless `ref()`.
 */
export interface NativeChannel {
  /** The process-wide id (a decimal uint64, never reused). */
  readonly id: string;
  readonly closed: boolean;
  /** Messages posted and not yet drained. */
  readonly queued: number;
  /** Holds the process (this thread) open while replies are awaited. */
  ref(): void;
  unref(): void;
  /** Stops accepting posts (senders then get -EPIPE/-ENOENT); idempotent. */
  close(): void;
}

// Declaration merging: the channel half of the addon's surface.
export interface NativeBinding {
  NativeChannel: new (onMessages: (kinds: Int32Array, data: Buffer, ends: Uint32Array) => void) => NativeChannel;
  /**
   * From any thread: 0, -ENOENT (no such channel) or -EPIPE (closed). The
   * payload's bytes: a Uint8Array's, a string's UTF-8, a number's 8-byte
   * native-endian double, none for undefined.
   */
  channelPost(id: string, kind: number, payload: Uint8Array | string | number | undefined): number;
  /** Live channels in the process (leak checks). */
  channelCount(): number;
}
