/**
 * Network test helpers: protocols that count their callbacks (one
 * connectionMade, at most one eofReceived, exactly one connectionLost; see
 * reliability.md "Test harness conventions"), loop Futures to wait on them,
 * and teardown checks (fd count back to baseline within a bounded wait).
 */
import { readdirSync, readlinkSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';
import type { BaseEventLoop, Future } from '../../lib/index.js';
import { DatagramProtocol, Protocol } from '../../lib/protocols.js';
import type { DatagramTransport, Transport } from '../../lib/transports.js';
import { fdCount, runBriefly } from './loop.js';

/** One callback-order violation or count mismatch, as a readable line. */
export type Violation = string;

/**
 * Every tracked protocol of one test registers here; `check()` returns the
 * protocols whose counts are wrong (asserted in afterEach).
 */
export class ConnTracker {
  readonly protocols: TrackedProtocol[] = [];
  readonly datagram: TrackedDatagram[] = [];

  /** Lines describing every protocol whose callbacks broke the contract. */
  violations(): Violation[] {
    const out: Violation[] = [];
    for (const p of [...this.protocols, ...this.datagram]) {
      const eof = p instanceof TrackedProtocol ? p.eofs : 0;
      if (p.made !== 1 || p.lost !== 1 || eof > 1 || p.order.length === 0 || p.order[0] !== 'made' || p.order[p.order.length - 1] !== 'lost') {
        out.push(`${p.label}: made=${p.made} eof=${eof} lost=${p.lost} order=${p.order.join(',')}`);
      }
    }
    return out;
  }
}

/** Waiters on "at least n bytes received". */
interface ByteWaiter {
  n: number;
  fut: Future<void>;
}

/**
 * A stream protocol that records everything: counts, order, bytes, the
 * connectionLost error, with loop Futures for made / eof / lost.
 */
export class TrackedProtocol extends Protocol {
  made = 0;
  lost = 0;
  eofs = 0;
  /** Callback names in order: made, data, eof, lost, pause, resume. */
  order: string[] = [];
  transport: Transport | null = null;
  chunks: Buffer[] = [];
  bytes = 0;
  /** Keep received chunks (off for bulk transfers that hash instead). */
  keep = true;
  lostExc: Error | undefined = undefined;
  /** What eofReceived returns. */
  eofResult: boolean | undefined = undefined;
  pauses = 0;
  resumes = 0;
  paused = false;
  readonly madeFut: Future<Transport>;
  readonly eofFut: Future<void>;
  readonly lostFut: Future<Error | undefined>;
  #byteWaiters: ByteWaiter[] = [];
  /** Extra hooks a test may set. */
  onData: ((data: Buffer) => void) | null = null;
  onEof: (() => void) | null = null;
  onPause: (() => void) | null = null;
  onResume: (() => void) | null = null;

  constructor(
    readonly loop: BaseEventLoop,
    tracker: ConnTracker | null,
    readonly label = 'conn',
  ) {
    super();
    this.madeFut = loop.createFuture<Transport>();
    this.eofFut = loop.createFuture<void>();
    this.lostFut = loop.createFuture<Error | undefined>();
    tracker?.protocols.push(this);
  }

  override connectionMade(transport: Transport): void {
    this.made++;
    this.order.push('made');
    this.transport = transport;
    if (!this.madeFut.done()) this.madeFut.setResult(transport);
  }

  override dataReceived(data: Buffer): void {
    if (this.order[this.order.length - 1] !== 'data') this.order.push('data');
    this.bytes += data.length;
    if (this.keep) this.chunks.push(Buffer.from(data));
    this.onData?.(data);
    this.#wakeBytes();
  }

  override eofReceived(): boolean | void {
    this.eofs++;
    this.order.push('eof');
    if (!this.eofFut.done()) this.eofFut.setResult(undefined);
    this.onEof?.();
    return this.eofResult;
  }

  override connectionLost(exc: Error | undefined): void {
    this.lost++;
    this.order.push('lost');
    this.lostExc = exc;
    if (!this.lostFut.done()) this.lostFut.setResult(exc);
    // Byte waiters will never be satisfied now: fail them loudly.
    for (const w of this.#byteWaiters.splice(0)) {
      if (!w.fut.done()) w.fut.setException(new Error(`${this.label}: connection lost after ${this.bytes} of ${w.n} bytes`));
    }
  }

  override pauseWriting(): void {
    this.pauses++;
    this.paused = true;
    this.order.push('pause');
    this.onPause?.();
  }

  override resumeWriting(): void {
    this.resumes++;
    this.paused = false;
    this.order.push('resume');
    this.onResume?.();
  }

  /** The lifecycle only: made / data / eof / lost, without flow-control events. */
  lifecycle(): string[] {
    return this.order.filter((x, i, a) => x !== 'pause' && x !== 'resume' && !(x === 'data' && a.slice(0, i).filter((y) => y !== 'pause' && y !== 'resume').at(-1) === 'data'));
  }

  /** All received bytes so far. */
  data(): Buffer {
    return Buffer.concat(this.chunks);
  }

  /** Resolves once at least `n` bytes in total have been received. */
  waitBytes(n: number): Future<void> {
    const fut = this.loop.createFuture<void>();
    if (this.bytes >= n) fut.setResult(undefined);
    else if (this.lost > 0) fut.setException(new Error(`${this.label}: connection already lost at ${this.bytes} of ${n} bytes`));
    else this.#byteWaiters.push({ n, fut });
    return fut;
  }

  #wakeBytes(): void {
    if (this.#byteWaiters.length === 0) return;
    this.#byteWaiters = this.#byteWaiters.filter((w) => {
      if (this.bytes < w.n) return true;
      if (!w.fut.done()) w.fut.setResult(undefined);
      return false;
    });
  }
}

/** Writes back whatever it receives. */
export class EchoProtocol extends TrackedProtocol {
  override dataReceived(data: Buffer): void {
    super.dataReceived(data);
    this.transport!.write(data);
  }
}

/** A datagram protocol with the same bookkeeping. */
export class TrackedDatagram extends DatagramProtocol {
  made = 0;
  lost = 0;
  order: string[] = [];
  transport: DatagramTransport | null = null;
  received: [Buffer, unknown][] = [];
  errors: Error[] = [];
  lostExc: Error | undefined = undefined;
  /** Echo every datagram back to its sender. */
  echo = false;
  readonly lostFut: Future<Error | undefined>;
  #waiters: { n: number; fut: Future<void> }[] = [];

  constructor(
    readonly loop: BaseEventLoop,
    tracker: ConnTracker | null,
    readonly label = 'udp',
  ) {
    super();
    this.lostFut = loop.createFuture<Error | undefined>();
    tracker?.datagram.push(this);
  }

  override connectionMade(transport: DatagramTransport): void {
    this.made++;
    this.order.push('made');
    this.transport = transport;
  }

  override datagramReceived(data: Buffer, addr: unknown): void {
    this.received.push([Buffer.from(data), addr]);
    if (this.echo) this.transport!.sendto(data, addr as never);
    this.#waiters = this.#waiters.filter((w) => {
      if (this.received.length < w.n) return true;
      if (!w.fut.done()) w.fut.setResult(undefined);
      return false;
    });
  }

  override errorReceived(exc: Error): void {
    this.errors.push(exc);
  }

  override connectionLost(exc: Error | undefined): void {
    this.lost++;
    this.order.push('lost');
    this.lostExc = exc;
    if (!this.lostFut.done()) this.lostFut.setResult(exc);
  }

  /** Resolves once `n` datagrams in total have arrived. */
  waitDatagrams(n: number): Future<void> {
    const fut = this.loop.createFuture<void>();
    if (this.received.length >= n) fut.setResult(undefined);
    else this.#waiters.push({ n, fut });
    return fut;
  }
}

/**
 * Lets callbacks already scheduled (connectionLost via callSoon and the
 * socket close after it) run, then closes the loop.
 */
export async function drainAndClose(loop: BaseEventLoop): Promise<void> {
  if (loop.isRunning()) loop.stop();
  if (!loop.isClosed()) {
    // A few passes: close() -> callSoon(connectionLost) -> socket close.
    try {
      await runBriefly(loop, 5);
    } catch {
      // A loop that cannot run any more is closed below regardless.
    }
    loop.close();
  }
}

/**
 * Waits (bounded) for the fd count to come back to `baseline`: Node's own
 * sockets (node:net peers) close on a later libuv turn. Returns the last
 * count seen.
 */
export async function settleFds(baseline: number, timeoutMs = 2000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let n = fdCount();
  while (n !== baseline && Date.now() < deadline) {
    await delay(10);
    n = fdCount();
  }
  return n;
}

/** `fd -> target` of every open fd (Linux), to name what leaked. */
export function fdTable(): Map<string, string> {
  const out = new Map<string, string>();
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      out.set(fd, readlinkSync(`/proc/self/fd/${fd}`));
    } catch {
      // Closed between the listing and the readlink (the listing's own fd).
    }
  }
  return out;
}

/** The fds open now that were not in `before` (or point elsewhere), as `fd -> target` lines. */
export function fdsOpenedSince(before: Map<string, string>): string[] {
  const now = fdTable();
  const out: string[] = [];
  for (const [fd, target] of now) if (before.get(fd) !== target) out.push(`${fd} -> ${target}`);
  return out;
}

/** A deterministic pseudo-random buffer (xorshift32), so failures reproduce. */
export function patternBuffer(size: number, seed = 0x9e3779b9): Buffer {
  const buf = Buffer.allocUnsafe(size);
  let x = seed >>> 0 || 1;
  let i = 0;
  for (; i + 4 <= size; i += 4) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    buf.writeUInt32LE(x, i);
  }
  for (; i < size; i++) buf[i] = i & 0xff;
  return buf;
}

/** The port a server listens on (its first socket). */
export function serverPort(server: { sockets: readonly { getsockname(): unknown }[] }): number {
  const name = server.sockets[0].getsockname() as [string, number];
  return name[1];
}
