/**
 * Abstract Transport classes.
 *
 * Port of CPython Lib/asyncio/transports.py (3.14): the interfaces, plus the
 * write flow-control mixin every writing transport shares.
 */
import { describeArg } from './exceptions.js';
import type { AbstractEventLoop } from './events.js';
import type { BaseProtocol } from './protocols.js';

/** Base class for transports. */
export abstract class BaseTransport {
  /** @internal */ _extra: Record<string, unknown>;
  constructor(extra?: Record<string, unknown>) {
    this._extra = extra ?? {};
  }
  /**
   * Optional transport information: `peername`, `sockname`, `socket`,
   * `sslcontext`, `peercert`, ...; `defaultValue` when absent.
   */
  getExtraInfo<T = unknown>(name: string, defaultValue?: T): T | undefined {
    return name in this._extra ? (this._extra[name] as T) : defaultValue;
  }
  /** Whether the transport is closing or closed. */
  abstract isClosing(): boolean;
  /** Closes the transport: buffered data is flushed first. */
  abstract close(): void;
  abstract setProtocol(protocol: BaseProtocol): void;
  abstract getProtocol(): BaseProtocol;
}

/** Interface for read-only transports. */
export abstract class ReadTransport extends BaseTransport {
  abstract isReading(): boolean;
  /** Stops calling dataReceived until resumeReading(). */
  abstract pauseReading(): void;
  abstract resumeReading(): void;
}

/** Interface for write-only transports. */
export abstract class WriteTransport extends BaseTransport {
  /**
   * Sets the write buffer's high- and low-water marks (bytes): over high,
   * the protocol's pauseWriting() is called; at or under low,
   * resumeWriting(). Defaults: 64 KiB and high / 4.
   */
  abstract setWriteBufferLimits(high?: number, low?: number): void;
  abstract getWriteBufferSize(): number;
  abstract getWriteBufferLimits(): [low: number, high: number];
  /** Writes bytes; never blocks (what cannot go now is buffered). */
  abstract write(data: Uint8Array | string): void;
  /** Writes several buffers (one gathered send when possible). */
  writelines(list: Iterable<Uint8Array | string>): void {
    for (const data of list) this.write(data);
  }
  /** Half-closes: flushes the buffer, then sends EOF. */
  abstract writeEof(): void;
  abstract canWriteEof(): boolean;
  /** Closes at once, dropping buffered data; connectionLost(undefined) follows. */
  abstract abort(): void;
}

/** Interface for a bidirectional stream transport. */
export abstract class Transport extends WriteTransport {
  abstract isReading(): boolean;
  abstract pauseReading(): void;
  abstract resumeReading(): void;
}

/** Interface for datagram (UDP) transports. */
export abstract class DatagramTransport extends BaseTransport {
  /** Sends one datagram to `addr` (or the connected peer when omitted). */
  abstract sendto(data: Uint8Array | string, addr?: unknown): void;
  abstract abort(): void;
}

/**
 * Write flow control shared by writing transports (asyncio's
 * _FlowControlMixin): calls the protocol's pauseWriting/resumeWriting as the
 * buffer crosses the water marks. Subclasses implement getWriteBufferSize.
 */
export abstract class FlowControlTransport extends Transport {
  /** @internal */ _loop: AbstractEventLoop;
  /** @internal */ _protocolPaused = false;
  /** @internal */ _highWater = 64 * 1024;
  /** @internal */ _lowWater = 16 * 1024;
  abstract override getProtocol(): BaseProtocol;

  constructor(extra: Record<string, unknown> | undefined, loop: AbstractEventLoop) {
    super(extra);
    this._loop = loop;
  }

  /** @internal Pauses the protocol once the buffer is over the high-water mark. */
  _maybePauseProtocol(): void {
    if (this._protocolPaused || this.getWriteBufferSize() <= this._highWater) return;
    this._protocolPaused = true;
    try {
      this.getProtocol().pauseWriting();
    } catch (exc) {
      this._loop.callExceptionHandler({
        message: 'protocol.pause_writing() failed',
        exception: exc,
        transport: this,
        protocol: this.getProtocol(),
      });
    }
  }

  /** @internal Resumes the protocol once the buffer is at or under the low-water mark. */
  _maybeResumeProtocol(): void {
    if (!this._protocolPaused || this.getWriteBufferSize() > this._lowWater) return;
    this._protocolPaused = false;
    try {
      this.getProtocol().resumeWriting();
    } catch (exc) {
      this._loop.callExceptionHandler({
        message: 'protocol.resume_writing() failed',
        exception: exc,
        transport: this,
        protocol: this.getProtocol(),
      });
    }
  }

  getWriteBufferLimits(): [low: number, high: number] {
    return [this._lowWater, this._highWater];
  }

  setWriteBufferLimits(high?: number, low?: number): void {
    if (high === undefined) high = low === undefined ? 64 * 1024 : 4 * low;
    if (low === undefined) low = Math.floor(high / 4);
    for (const [name, v] of [['high', high], ['low', low]] as const) {
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
        throw new RangeError(describeArg(name, 'a non-negative number of bytes', v));
      }
    }
    if (!(high >= low)) throw new RangeError(`high (${high}) must be >= low (${low}) must be >= 0`);
    this._highWater = high;
    this._lowWater = low;
    this._maybePauseProtocol();
  }
}
