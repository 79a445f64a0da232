/**
 * Abstract Protocol base classes.
 *
 * Port of CPython Lib/asyncio/protocols.py (3.14). A protocol gets
 * callbacks from its transport; every method has a do-nothing default, so a
 * subclass overrides only what it needs.
 */
import type { BaseTransport, DatagramTransport, Transport } from './transports.js';

/** Common base for protocol interfaces. */
export class BaseProtocol {
  /** Called once when the connection is made, with its transport. */
  connectionMade(_transport: BaseTransport): void {}
  /**
   * Called once when the connection is lost or closed; `exc` is the error,
   * or undefined for a regular EOF or close.
   */
  connectionLost(_exc: Error | undefined): void {}
  /** The transport's write buffer went over the high-water mark. */
  pauseWriting(): void {}
  /** The transport's write buffer drained to the low-water mark. */
  resumeWriting(): void {}
}

/**
 * Interface for a stream protocol: `dataReceived` for each chunk, then
 * `eofReceived` when the peer half-closes.
 * @example
 * class Echo extends Protocol {
 *   transport!: Transport;
 *   override connectionMade(t: Transport) { this.transport = t; }
 *   override dataReceived(data: Buffer) { this.transport.write(data); }
 * }
 */
export class Protocol extends BaseProtocol {
  override connectionMade(_transport: Transport): void {}
  /** Called with each chunk of data received (a fresh Buffer). */
  dataReceived(_data: Buffer): void {}
  /**
   * The peer sent EOF (half-close). Return a truthy value to keep the
   * transport open for writing; falsy closes it.
   */
  eofReceived(): boolean | void {
    return undefined;
  }
}

/**
 * Interface for a stream protocol with manual buffer control: the
 * transport reads straight into the buffer `getBuffer` returns (no copy).
 */
export class BufferedProtocol extends BaseProtocol {
  override connectionMade(_transport: Transport): void {}
  /** A buffer to read into, at least 1 byte; `sizehint` is -1 or a wish. */
  getBuffer(_sizehint: number): Uint8Array {
    throw new Error('BufferedProtocol.getBuffer() must be implemented');
  }
  /** `nbytes` bytes were written at the start of the last buffer given. */
  bufferUpdated(_nbytes: number): void {}
  /** As Protocol.eofReceived. */
  eofReceived(): boolean | void {
    return undefined;
  }
}

/** Interface for a datagram protocol. */
export class DatagramProtocol extends BaseProtocol {
  override connectionMade(_transport: DatagramTransport): void {}
  /** A datagram arrived from `addr` (`[host, port]`, or a path for unix). */
  datagramReceived(_data: Buffer, _addr: unknown): void {}
  /** A previous send or receive failed (e.g. ECONNREFUSED from ICMP). */
  errorReceived(_exc: Error): void {}
}

/** Interface for a protocol of a subprocess's pipes. */
export class SubprocessProtocol extends BaseProtocol {
  pipeDataReceived(_fd: number, _data: Buffer): void {}
  pipeConnectionLost(_fd: number, _exc: Error | undefined): void {}
  processExited(): void {}
}
