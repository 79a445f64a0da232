/**
 * Node stream adapters: a `Duplex` view of a stream transport.
 *
 * No CPython counterpart: this is the bridge docs/design.md ("Sockets and transports") describes, which
 * lets Node's own stream consumers (`node:http`, `node:tls`, `pipeline`)
 * run over an aionode transport. The Duplex is the transport's protocol:
 * what the transport receives is pushed into the readable side, what is
 * written to the writable side goes to `transport.write()`, and both
 * directions keep their back-pressure:
 *
 * - reading: `push()` returning false pauses the transport
 *   (`pauseReading`); the Duplex's `_read()` resumes it;
 * - writing: while the transport has paused its protocol (`pauseWriting`,
 *   its buffer over the high-water mark), the Duplex holds the write
 *   callback, so Node's Writable buffers and `write()` returns false; the
 *   callback is released on `resumeWriting`.
 *
 * `end()` half-closes the transport (`writeEof`, or `close` when the
 * transport cannot half-close); EOF from the peer ends the readable side;
 * `destroy(err)` aborts the transport and `destroy()` closes it (bytes
 * already accepted by `write()` still go out, as they would from a kernel
 * send buffer after `net.Socket#destroy()`); `connectionLost(err)` destroys
 * the Duplex with `err`.
 */
import { Duplex } from 'node:stream';
import { isIP } from 'node:net';
import { BrokenPipeError, describeArg, RuntimeError } from './exceptions.js';
import { Protocol } from './protocols.js';
import { Transport } from './transports.js';

/** Options of {@link toDuplex} and {@link createDuplexProtocol}. */
export interface DuplexViewOptions {
  /**
   * Keep the writable side open after the peer's EOF (as `net.Socket`'s
   * option). Default false: once the readable side has ended, the Duplex
   * ends its writable side too, and the transport closes when both are
   * done.
   */
  allowHalfOpen?: boolean;
  /** Readable and writable `highWaterMark` in bytes; Node's default (16 KiB) when omitted. */
  highWaterMark?: number;
}

type WriteCallback = (error?: Error | null) => void;

/**
 * The protocol half of a Duplex view: installed on a transport (as a
 * protocol factory's product, or by {@link toDuplex}), it feeds
 * {@link DuplexProtocol.duplex}. Subclasses (the TLS layer) may override
 * the callbacks; they must call `super`.
 */
export class DuplexProtocol extends Protocol {
  /** The Duplex view of the transport this protocol is connected to. */
  readonly duplex: TransportDuplex;
  #transport: Transport | null = null;
  /** Reading was paused because push() returned false. */
  #readPausedByUs = false;
  /** The transport's write buffer is over its high-water mark. */
  #writePaused = false;
  /** A write callback held back until resumeWriting. */
  #heldCallback: WriteCallback | null = null;
  /** A write or end() that came before connectionMade. */
  #early: { chunks: Uint8Array[]; callback: WriteCallback } | null = null;
  #earlyFinal: WriteCallback | null = null;
  /** Set when the Duplex was destroyed before connectionMade. */
  #destroyedEarly: Error | null | undefined = undefined;
  #lost = false;

  constructor(options: DuplexViewOptions = {}) {
    super();
    this.duplex = new TransportDuplex(this, options);
  }

  /** The transport, once connected (kept after the connection is lost, for extra info). */
  get transport(): Transport | null {
    return this.#transport;
  }

  /** Whether connectionLost has been called. */
  get lost(): boolean {
    return this.#lost;
  }

  override connectionMade(transport: Transport): void {
    this.#transport = transport;
    if (this.#destroyedEarly !== undefined) {
      if (this.#destroyedEarly === null) transport.close();
      else transport.abort();
      return;
    }
    const early = this.#early;
    this.#early = null;
    if (early !== null) this.#writeChunks(early.chunks, early.callback);
    const final = this.#earlyFinal;
    this.#earlyFinal = null;
    if (final !== null) this._final(final);
  }

  override dataReceived(data: Buffer): void {
    const duplex = this.duplex;
    if (duplex.destroyed || duplex.readableEnded) return;
    duplex._touch();
    if (!duplex.push(data) && !this.#readPausedByUs && this.#transport !== null) {
      this.#readPausedByUs = true;
      this.#transport.pauseReading();
    }
  }

  override eofReceived(): boolean {
    if (!this.duplex.destroyed) this.duplex.push(null);
    // Keep the transport open: the writable side may still have work; the
    // transport closes once the Duplex has finished both sides.
    return true;
  }

  override connectionLost(exc: Error | undefined): void {
    this.#lost = true;
    this.#releaseHeld();
    const duplex = this.duplex;
    duplex._clearTimer();
    if (duplex.destroyed) return;
    if (exc !== undefined) {
      duplex.destroy(exc);
      return;
    }
    // A clean close (ours, or the transport closed by someone else): end the
    // readable side, and let what is buffered still be read.
    if (!duplex.readableEnded) duplex.push(null);
    if (duplex.readableLength === 0) duplex.destroy();
    else duplex.once('end', () => duplex.destroy());
  }

  override pauseWriting(): void {
    this.#writePaused = true;
  }

  override resumeWriting(): void {
    this.#writePaused = false;
    this.#releaseHeld();
  }

  #releaseHeld(): void {
    const cb = this.#heldCallback;
    this.#heldCallback = null;
    cb?.();
  }

  /** @internal The Duplex's _write/_writev. */
  _write(chunks: Uint8Array[], callback: WriteCallback): void {
    if (this.#transport === null) {
      this.#early = { chunks, callback };
      return;
    }
    this.#writeChunks(chunks, callback);
  }

  #writeChunks(chunks: Uint8Array[], callback: WriteCallback): void {
    const transport = this.#transport!;
    if (this.#lost || transport.isClosing()) {
      callback(new BrokenPipeError('write EPIPE', { code: 'EPIPE', syscall: 'write' }));
      return;
    }
    try {
      if (chunks.length === 1) transport.write(chunks[0]);
      else transport.writelines(chunks);
    } catch (exc) {
      callback(exc as Error);
      return;
    }
    this.duplex._touch();
    // write() may just have called pauseWriting(): then hold the callback,
    // so Node's Writable buffers further writes until resumeWriting().
    if (this.#writePaused) this.#heldCallback = callback;
    else callback();
  }

  /** @internal The Duplex's _final: half-close (or close) the transport. */
  _final(callback: WriteCallback): void {
    const transport = this.#transport;
    if (transport === null) {
      this.#earlyFinal = callback;
      return;
    }
    if (!this.#lost && !transport.isClosing()) {
      try {
        if (transport.canWriteEof()) transport.writeEof();
        else transport.close();
      } catch (exc) {
        callback(exc as Error);
        return;
      }
    }
    callback();
  }

  /** @internal The Duplex's _read: resume a transport we paused. */
  _read(): void {
    if (!this.#readPausedByUs) return;
    this.#readPausedByUs = false;
    if (this.#transport !== null && !this.#lost) this.#transport.resumeReading();
  }

  /** @internal The Duplex's _destroy: abort on error, else close. */
  _destroy(error: Error | null): void {
    // A write callback still held would keep Writable's state pending.
    this.#releaseHeld();
    const transport = this.#transport;
    if (transport === null) {
      this.#destroyedEarly = error;
      const early = this.#early;
      this.#early = null;
      early?.callback(error ?? undefined);
      return;
    }
    if (this.#lost) return;
    if (error) transport.abort();
    else transport.close();
  }
}

/**
 * The Duplex side of a {@link DuplexProtocol}: a stream view of a
 * transport, with the parts of `net.Socket`'s surface Node's consumers
 * look for (`remoteAddress`, `setTimeout`, `setNoDelay`, ...).
 */
export class TransportDuplex extends Duplex {
  readonly #protocol: DuplexProtocol;
  #timeoutMs = 0;
  #timer: NodeJS.Timeout | null = null;

  /** @internal Made by DuplexProtocol. */
  constructor(protocol: DuplexProtocol, options: DuplexViewOptions) {
    const hwm = options.highWaterMark;
    if (hwm !== undefined && (!Number.isInteger(hwm) || hwm < 0)) {
      throw new RangeError(describeArg('highWaterMark', 'a non-negative integer', hwm));
    }
    super({
      allowHalfOpen: options.allowHalfOpen ?? false,
      ...(hwm === undefined ? {} : { highWaterMark: hwm }),
    });
    this.#protocol = protocol;
  }

  /** The protocol feeding this Duplex. */
  get protocol(): DuplexProtocol {
    return this.#protocol;
  }

  /** The transport, once connected. */
  get transport(): Transport | null {
    return this.#protocol.transport;
  }

  override _read(_size: number): void {
    this.#protocol._read();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: WriteCallback): void {
    this.#protocol._write([chunk], callback);
  }

  override _writev(chunks: { chunk: Buffer; encoding: BufferEncoding }[], callback: WriteCallback): void {
    this.#protocol._write(chunks.map((c) => c.chunk), callback);
  }

  override _final(callback: WriteCallback): void {
    this.#protocol._final(callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this._clearTimer();
    try {
      this.#protocol._destroy(error);
    } catch (exc) {
      callback((error ?? exc) as Error);
      return;
    }
    callback(error);
  }

  #peer(): [string, number] | undefined {
    const p = this.transport?.getExtraInfo<unknown>('peername');
    return Array.isArray(p) && typeof p[0] === 'string' ? [p[0], p[1] as number] : undefined;
  }

  #local(): [string, number] | undefined {
    const p = this.transport?.getExtraInfo<unknown>('sockname');
    return Array.isArray(p) && typeof p[0] === 'string' ? [p[0], p[1] as number] : undefined;
  }

  /** The peer's IP address (as `net.Socket#remoteAddress`); undefined for Unix sockets. */
  get remoteAddress(): string | undefined {
    return this.#peer()?.[0];
  }
  get remotePort(): number | undefined {
    return this.#peer()?.[1];
  }
  get remoteFamily(): string | undefined {
    const a = this.#peer()?.[0];
    return a === undefined ? undefined : isIP(a) === 6 ? 'IPv6' : 'IPv4';
  }
  get localAddress(): string | undefined {
    return this.#local()?.[0];
  }
  get localPort(): number | undefined {
    return this.#local()?.[1];
  }

  /** As `net.Socket#address()`: the local `{ address, family, port }`, or `{}`. */
  address(): { address: string; family: string; port: number } | Record<string, never> {
    const l = this.#local();
    if (l === undefined) return {};
    return { address: l[0], family: isIP(l[0]) === 6 ? 'IPv6' : 'IPv4', port: l[1] };
  }

  /**
   * As `net.Socket#setTimeout`: emits `'timeout'` after `ms` milliseconds
   * without reads or writes (0 disables). The stream is not closed.
   */
  setTimeout(ms: number, callback?: () => void): this {
    if (typeof ms !== 'number' || !(ms >= 0) || !Number.isFinite(ms)) {
      throw new RangeError(describeArg('ms', 'a non-negative number of milliseconds', ms));
    }
    this.#timeoutMs = ms;
    this._clearTimer();
    if (callback !== undefined) {
      if (ms === 0) this.removeListener('timeout', callback);
      else this.once('timeout', callback);
    }
    if (ms > 0 && !this.destroyed) this.#arm();
    return this;
  }

  #arm(): void {
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.emit('timeout');
    }, this.#timeoutMs);
    this.#timer.unref();
  }

  /** @internal Activity: restarts the idle timer. */
  _touch(): void {
    if (this.#timer !== null) this.#timer.refresh();
  }

  /** @internal */
  _clearTimer(): void {
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
  }

  /** Accepted for `net.Socket` compatibility; the transport already sets TCP_NODELAY. */
  setNoDelay(_noDelay?: boolean): this {
    return this;
  }
  /** Accepted for `net.Socket` compatibility; a no-op. */
  setKeepAlive(_enable?: boolean, _initialDelay?: number): this {
    return this;
  }
  /** Accepted for `net.Socket` compatibility; the loop, not this stream, keeps Node alive. */
  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }
}

/**
 * A fresh protocol and its Duplex view, for a protocol factory: the Duplex
 * works as soon as the transport calls `connectionMade` (writes made
 * earlier wait for it).
 * @example
 * const server = await loop.createServer(() => {
 *   const [protocol, duplex] = createDuplexProtocol();
 *   httpServer.emit('connection', duplex);
 *   return protocol;
 * }, '127.0.0.1', 0);
 */
export function createDuplexProtocol(options: DuplexViewOptions = {}): [DuplexProtocol, TransportDuplex] {
  const protocol = new DuplexProtocol(options);
  return [protocol, protocol.duplex];
}

/**
 * A Duplex view of an open stream transport: installs a
 * {@link DuplexProtocol} with `transport.setProtocol()`, so later data goes
 * to the Duplex (data already delivered stays with the old protocol).
 * @throws TypeError when `transport` is not a stream Transport; RuntimeError
 * when it is closing.
 * @example
 * const [transport] = await loop.createConnection(() => new Protocol(), host, port);
 * const duplex = toDuplex(transport);
 * duplex.end('GET / HTTP/1.0\r\n\r\n');
 */
export function toDuplex(transport: Transport, options: DuplexViewOptions = {}): TransportDuplex {
  if (!(transport instanceof Transport)) throw new TypeError(describeArg('transport', 'a stream Transport', transport));
  if (transport.isClosing()) throw new RuntimeError(`Cannot make a Duplex of a closing transport ${String(transport)}`);
  const protocol = new DuplexProtocol(options);
  transport.setProtocol(protocol);
  protocol.connectionMade(transport);
  return protocol.duplex;
}
