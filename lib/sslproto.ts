/**
 * SSL/TLS transport over a stream transport.
 *
 * Port of CPython Lib/asyncio/sslproto.py (3.14). Where CPython drives an
 * `ssl.SSLObject` over memory BIOs, aionode hands a `Duplex` view of the raw
 * transport (lib/node-streams.ts) to `node:tls` (docs/design.md ("Sockets and transports")): the raw
 * transport's protocol is an {@link SSLProtocol}, whose Duplex carries the
 * TLS records; `node:tls` does the handshake and the record layer; and the
 * user's protocol sees an {@link SSLTransport} with asyncio's behaviour:
 * one `connectionMade` after the handshake, decrypted data, one
 * `connectionLost`, a handshake timeout, close_notify on `close()` and a
 * shutdown timeout.
 *
 * `node:tls` emits its events from Node's side of the event loop; the
 * transport queues each into the asyncio loop (`callSoon`), so protocol
 * callbacks always run as loop callbacks, in order.
 *
 * Importing this module registers it with base-events.ts, so
 * `createConnection`, `createServer` and `connectAcceptedSocket` accept
 * `ssl`.
 */
import * as tls from 'node:tls';
import { isIP } from 'node:net';
import { _tls, type BaseEventLoop, type Server } from './base-events.js';
import {
  CancelledError,
  ConnectionAbortedError,
  ConnectionResetError,
  OSError,
  RuntimeError,
  TimeoutError,
  describeArg,
  makeOSError,
  type OSErrorInfo,
} from './exceptions.js';
import type { TimerHandle } from './events.js';
import type { Future } from './futures.js';
import type { Task } from './tasks.js';
import type { Coroutine } from './coroutines.js';
import { logger } from './log.js';
import { BufferedProtocol, type BaseProtocol, type Protocol } from './protocols.js';
import { FlowControlTransport, Transport } from './transports.js';
import { DuplexProtocol } from './node-streams.js';
import type { Socket } from './socket.js';

/** Seconds to wait for the TLS handshake before aborting (asyncio's constants.SSL_HANDSHAKE_TIMEOUT). */
export const SSL_HANDSHAKE_TIMEOUT = 60.0;
/** Seconds to wait for the TLS shutdown to complete (asyncio's constants.SSL_SHUTDOWN_TIMEOUT). */
export const SSL_SHUTDOWN_TIMEOUT = 30.0;

/** asyncio's constants.LOG_THRESHOLD_FOR_CONNLOST_WRITES. */
const LOG_THRESHOLD_FOR_CONNLOST_WRITES = 5;

// ---------------------------------------------------------------- errors

/**
 * A TLS failure (Python's `ssl.SSLError`, an OSError). `code` is Node's
 * code (`ERR_SSL_WRONG_VERSION_NUMBER`, ...); `library` and `reason` are
 * OpenSSL's when it raised the error.
 */
export class SSLError extends OSError {
  library?: string;
  reason?: string;
}

/**
 * The peer's certificate failed verification (Python's
 * `ssl.SSLCertVerificationError`). `code` is Node's verification code
 * (`DEPTH_ZERO_SELF_SIGNED_CERT`, `CERT_HAS_EXPIRED`,
 * `ERR_TLS_CERT_ALTNAME_INVALID`, ...); `verifyMessage` its text.
 */
export class SSLCertVerificationError extends SSLError {
  verifyCode?: string;
  verifyMessage?: string;
}

/** OpenSSL's X509_V_ERR_* names, as Node reports them in `err.code`. */
const VERIFY_CODES = new Set([
  'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_CRL', 'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECRYPT_CRL_SIGNATURE', 'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY', 'CERT_SIGNATURE_FAILURE',
  'CRL_SIGNATURE_FAILURE', 'CERT_NOT_YET_VALID', 'CERT_HAS_EXPIRED', 'CRL_NOT_YET_VALID', 'CRL_HAS_EXPIRED',
  'ERROR_IN_CERT_NOT_BEFORE_FIELD', 'ERROR_IN_CERT_NOT_AFTER_FIELD', 'ERROR_IN_CRL_LAST_UPDATE_FIELD',
  'ERROR_IN_CRL_NEXT_UPDATE_FIELD', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'CERT_CHAIN_TOO_LONG', 'CERT_REVOKED',
  'INVALID_CA', 'PATH_LENGTH_EXCEEDED', 'INVALID_PURPOSE', 'CERT_UNTRUSTED', 'CERT_REJECTED', 'HOSTNAME_MISMATCH',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/**
 * Maps an error from `node:tls` to asyncio's classes: verification
 * failures to SSLCertVerificationError, OpenSSL and TLS errors to SSLError,
 * system errors (ECONNRESET, ...) to their OSError subclass.
 */
export function _toSSLError(err: unknown): Error {
  if (err instanceof OSError) return err;
  if (!(err instanceof Error)) return new SSLError(String(err));
  const e = err as Error & { code?: string; errno?: number; syscall?: string; library?: string; reason?: string };
  const code = typeof e.code === 'string' ? e.code : undefined;
  if (code !== undefined && VERIFY_CODES.has(code)) {
    const exc = new SSLCertVerificationError(`[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: ${e.message}`, { code, cause: err });
    exc.reason = 'CERTIFICATE_VERIFY_FAILED';
    exc.verifyCode = code;
    exc.verifyMessage = e.message;
    return exc;
  }
  if (code !== undefined && (code.startsWith('ERR_SSL_') || e.library !== undefined)) {
    const reason = code.startsWith('ERR_SSL_') ? code.slice('ERR_SSL_'.length) : code;
    const exc = new SSLError(`[SSL: ${reason}] ${e.reason ?? e.message}`, { code, cause: err });
    exc.library = e.library;
    exc.reason = reason;
    return exc;
  }
  if (code !== undefined && /^E[A-Z0-9]+$/.test(code)) {
    const info: OSErrorInfo = { code, cause: err };
    if (typeof e.errno === 'number') info.errno = e.errno;
    if (typeof e.syscall === 'string') info.syscall = e.syscall;
    return makeOSError(e.message, info);
  }
  return new SSLError(e.message, { code, cause: err });
}

// ---------------------------------------------------------------- contexts

/** What an `ssl` argument resolves to: the context, plus per-socket tls options. */
interface SslConfig {
  secureContext: tls.SecureContext;
  options: Record<string, unknown>;
}

function isSecureContext(v: unknown): v is tls.SecureContext {
  const Ctor = (tls as unknown as { SecureContext?: Function }).SecureContext;
  return typeof Ctor === 'function' && v instanceof Ctor;
}

/**
 * Resolves an `ssl` argument: `true` (a default context that verifies the
 * peer against Node's CAs; clients only), a `tls.SecureContext`, or an
 * options object for `tls.createSecureContext` and `tls.connect` /
 * `tls.TLSSocket` (`ca`, `cert`, `key`, `rejectUnauthorized`,
 * `ALPNProtocols`, `requestCert`, ...).
 */
function resolveSsl(ssl: unknown, serverSide: boolean): SslConfig {
  if (ssl === true) {
    // asyncio's _create_transport_context.
    if (serverSide) throw new RangeError('Server side SSL needs a valid SSLContext');
    return { secureContext: tls.createSecureContext(), options: {} };
  }
  if (isSecureContext(ssl)) return { secureContext: ssl, options: {} };
  if (typeof ssl === 'object' && ssl !== null && !Array.isArray(ssl)) {
    const options = { ...(ssl as Record<string, unknown>) };
    const given = options.secureContext;
    if (given !== undefined && !isSecureContext(given)) {
      throw new TypeError(describeArg('ssl.secureContext', 'a tls.SecureContext', given));
    }
    const secureContext = given ?? tls.createSecureContext(options as tls.SecureContextOptions);
    delete options.secureContext;
    return { secureContext, options };
  }
  throw new TypeError(describeArg('ssl', 'true, a tls.SecureContext or a tls options object', ssl));
}

interface SslTimeouts {
  sslHandshakeTimeout?: number;
  sslShutdownTimeout?: number;
}

function checkTimeout(value: number | undefined | null, name: string, dflt: number): number {
  if (value === undefined || value === null) return dflt;
  if (typeof value !== 'number' || Number.isNaN(value)) throw new TypeError(describeArg(name, 'a number of seconds', value));
  if (value <= 0) throw new RangeError(`${name} should be a positive number, got ${value}`);
  return value;
}

/** Python's float formatting for whole numbers: 60 -> "60.0". */
function seconds(v: number): string {
  return Number.isInteger(v) ? v.toFixed(1) : String(v);
}

// ---------------------------------------------------------------- protocol

/**
 * The protocol on the raw transport (asyncio's SSLProtocol): a Duplex
 * view carrying TLS records to and from `node:tls`, reporting the raw
 * connection's start and end to its {@link SSLTransport}.
 */
export class SSLProtocol extends DuplexProtocol {
  readonly #app: SSLTransport;

  /** @internal Made by SSLTransport. */
  constructor(app: SSLTransport) {
    // TLS decides when to end its side (after close_notify), not our EOF.
    super({ allowHalfOpen: true });
    this.#app = app;
  }

  /** The transport the user's protocol sees. */
  get appTransport(): SSLTransport {
    return this.#app;
  }

  override connectionMade(transport: Transport): void {
    super.connectionMade(transport);
    this.#app._rawConnectionMade(transport);
  }

  override connectionLost(exc: Error | undefined): void {
    try {
      super.connectionLost(exc);
    } finally {
      this.#app._rawConnectionLost(exc);
    }
  }
}

type State = 'init' | 'handshake' | 'wrapped' | 'flushing' | 'unwrapped';
type AppState = 'init' | 'made' | 'eof' | 'lost';

/** Options of the SSLTransport constructor (internal: made by the loop). */
interface SslTransportOptions {
  serverSide: boolean;
  serverHostname?: string;
  waiter: Future<void> | null;
  handshakeTimeout: number;
  shutdownTimeout: number;
  callConnectionMade: boolean;
}

/**
 * The transport of a TLS connection, as the user's protocol sees it
 * (asyncio's _SSLProtocolTransport): writes are encrypted, reads
 * decrypted. `canWriteEof()` is false (TLS has no half-close); `close()`
 * sends close_notify, waits for the peer's (at most `sslShutdownTimeout`
 * seconds), then closes the connection. Extra info: `sslcontext`,
 * `ssl_object` (the `tls.TLSSocket`), `peercert`, `cipher`, `compression`
 * (always null), and the raw transport's `peername`, `sockname`, `socket`.
 */
export class SSLTransport extends FlowControlTransport {
  /** @internal The protocol on the raw transport. */ readonly _rawProtocol: SSLProtocol;
  declare _loop: BaseEventLoop;
  #protocol: BaseProtocol;
  readonly #config: SslConfig;
  readonly #serverSide: boolean;
  readonly #serverHostname: string | undefined;
  readonly #handshakeTimeout: number;
  readonly #shutdownTimeout: number;
  #waiter: Future<void> | null;
  #raw: Transport | null = null;
  #rawLost = false;
  #tls: tls.TLSSocket | null = null;
  #state: State = 'init';
  #appState: AppState;
  #closed = false;
  #readPaused = false;
  #incoming: Buffer[] = [];
  #eofPending = false;
  #lostPending: { exc: Error | undefined } | null = null;
  #pumpScheduled = false;
  #resumeScheduled = false;
  #handshakeTimer: TimerHandle | null = null;
  #shutdownTimer: TimerHandle | null = null;
  /** The error the raw transport was force-closed with (reported to connectionLost). */
  #forcedExc: Error | undefined = undefined;
  /** The first error node:tls reported, recorded as it happens. */
  #tlsError: unknown = null;
  #connLost = 0;
  readonly #onWritten = (): void => {
    if (!this._protocolPaused || this.#resumeScheduled) return;
    this.#resumeScheduled = true;
    this.#post(() => {
      this.#resumeScheduled = false;
      // The connection may have been lost since: no resumeWriting() after
      // connectionLost().
      if (this.#rawLost || this.#closed) return;
      this._maybeResumeProtocol();
    });
  };

  /** @internal Made by the loop (createConnection, createServer, startTls). */
  constructor(loop: BaseEventLoop, protocol: BaseProtocol, config: SslConfig, o: SslTransportOptions) {
    super({ sslcontext: config.secureContext }, loop);
    this.#protocol = protocol;
    this.#config = config;
    this.#serverSide = o.serverSide;
    this.#serverHostname = o.serverHostname;
    this.#waiter = o.waiter;
    this.#handshakeTimeout = o.handshakeTimeout;
    this.#shutdownTimeout = o.shutdownTimeout;
    this.#appState = o.callConnectionMade ? 'init' : 'made';
    this._rawProtocol = new SSLProtocol(this);
  }

  override toString(): string {
    const info = [this.constructor.name, `state=${this.#state}`];
    if (this.#closed) info.push('closing');
    return `<${info.join(' ')}>`;
  }

  // ------------------------------------------------------------ Transport API

  override getExtraInfo<T = unknown>(name: string, defaultValue?: T): T | undefined {
    if (name in this._extra) return this._extra[name] as T;
    if (this.#raw !== null) return this.#raw.getExtraInfo<T>(name, defaultValue);
    return defaultValue;
  }

  setProtocol(protocol: BaseProtocol): void {
    this.#protocol = protocol;
  }

  getProtocol(): BaseProtocol {
    return this.#protocol;
  }

  isClosing(): boolean {
    return this.#closed;
  }

  /**
   * Closes the connection: what was written is flushed, close_notify is
   * sent, and once the peer answers (or `sslShutdownTimeout` passes) the
   * raw transport closes; connectionLost follows. Data that arrived
   * before close() is still delivered, later data is not (as asyncio).
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#startShutdown();
  }

  /** Closes at once: buffered data is lost; connectionLost(undefined) follows. */
  abort(): void {
    this.#closed = true;
    this.#abortRaw(undefined);
  }

  isReading(): boolean {
    return !this.#readPaused;
  }

  /** Stops delivering data until resumeReading(); node:tls stops reading as its buffer fills. */
  pauseReading(): void {
    if (this.#readPaused) return;
    this.#readPaused = true;
    this.#tls?.pause();
  }

  resumeReading(): void {
    if (!this.#readPaused) return;
    this.#readPaused = false;
    this.#tls?.resume();
    this.#schedulePump();
  }

  /** Plaintext accepted by write() but not yet taken by the TLS layer. */
  getWriteBufferSize(): number {
    return this.#tls === null ? 0 : this.#tls.writableLength;
  }

  /**
   * Encrypts and sends `data` (strings are UTF-8). After close() or a lost
   * connection the data is dropped, as asyncio does ("SSL connection is
   * closed" is logged after a few such writes).
   * @throws TypeError for non-bytes.
   */
  write(data: Uint8Array | string): void {
    let bytes: Buffer;
    if (typeof data === 'string') bytes = Buffer.from(data);
    else if (data instanceof Uint8Array) bytes = Buffer.from(data); // a copy: the caller may reuse its buffer
    else if (ArrayBuffer.isView(data)) bytes = Buffer.from(new Uint8Array((data as ArrayBufferView).buffer, (data as ArrayBufferView).byteOffset, (data as ArrayBufferView).byteLength));
    else throw new TypeError(`data: expecting a bytes-like instance, got ${data === null ? 'null' : typeof data === 'object' ? ((data as object).constructor?.name ?? 'object') : typeof data}`);
    if (bytes.length === 0) return;
    const tlsSocket = this.#tls;
    // !writable: node:tls already ended its side (the peer closed first and
    // the EOF is on its way to the protocol); writing now would be an error.
    if (this.#closed || tlsSocket === null || (this.#state !== 'wrapped' && this.#state !== 'handshake') || !tlsSocket.writable) {
      if (this.#connLost >= LOG_THRESHOLD_FOR_CONNLOST_WRITES) logger.warning('SSL connection is closed');
      this.#connLost++;
      return;
    }
    tlsSocket.write(bytes, this.#onWritten);
    this._maybePauseProtocol();
  }

  /** TLS has no half-close: always throws (Python's NotImplementedError is a RuntimeError). */
  writeEof(): void {
    throw new RuntimeError("SSL doesn't support half-closes");
  }

  canWriteEof(): boolean {
    return false;
  }

  // ------------------------------------------------------------ raw side

  /** @internal The raw transport is connected: start the handshake. */
  _rawConnectionMade(raw: Transport): void {
    this.#raw = raw;
    if (this.#closed) {
      // Aborted before the raw connection was even made.
      this.#abortRaw(undefined);
      return;
    }
    this.#state = 'handshake';
    this.#handshakeTimer = this._loop.callLater(this.#handshakeTimeout, () => this.#checkHandshakeTimeout());
    let sock: tls.TLSSocket;
    try {
      sock = this.#makeTlsSocket();
    } catch (exc) {
      this.#onHandshakeComplete(exc);
      return;
    }
    this.#tls = sock;
    sock.on(this.#serverSide ? 'secure' : 'secureConnect', () => this.#post(() => this.#onHandshakeComplete(null)));
    sock.on('data', (chunk: Buffer) => {
      // After close(), asyncio delivers no more data: the TLS shutdown reads it.
      if (this.#closed) return;
      this.#incoming.push(chunk);
      this.#schedulePump();
    });
    sock.on('end', () => {
      if (this.#closed) return;
      this.#post(() => {
        // EOF before the handshake finished (node:tls reports no error on
        // the server side): asyncio's ConnectionResetError.
        if (this.#state === 'handshake') {
          this.#onHandshakeComplete(new ConnectionResetError('Connection lost during SSL handshake'));
          return;
        }
        this.#eofPending = true;
        this.#schedulePump();
      });
    });
    sock.on('error', (err: unknown) => {
      // Recorded now: the raw side may report the loss before this is queued.
      if (this.#tlsError === null) this.#tlsError = err;
      this.#post(() => this.#onTlsError(err));
    });
    sock.on('close', () => this.#post(() => this.#onTlsClose()));
    if (this.#readPaused) sock.pause();
  }

  #makeTlsSocket(): tls.TLSSocket {
    const { secureContext, options } = this.#config;
    const duplex = this._rawProtocol.duplex;
    if (this.#serverSide) {
      // tls.Server's defaults: a requested client certificate must verify.
      const requestCert = Boolean(options.requestCert);
      return new tls.TLSSocket(duplex, {
        ...(options as tls.TLSSocketOptions),
        isServer: true,
        secureContext,
        requestCert,
        rejectUnauthorized: requestCert && options.rejectUnauthorized !== false,
      });
    }
    const hostname = this.#serverHostname;
    if (hostname === undefined) throw new RangeError('You must set server_hostname when using ssl without a host');
    const connectOptions: tls.ConnectionOptions = {
      ...(options as tls.ConnectionOptions),
      socket: duplex,
      secureContext,
      // Node checks the certificate against `host` (it does not connect: the socket is given).
      host: hostname || undefined,
    };
    // SNI carries names only (RFC 6066); an IP address is checked, not sent.
    if (hostname !== '' && isIP(hostname) === 0) connectOptions.servername = hostname;
    // asyncio: an empty server_hostname turns hostname checking off.
    if (hostname === '') connectOptions.checkServerIdentity = () => undefined;
    return tls.connect(connectOptions);
  }

  /** @internal The raw transport is gone (closed, aborted or failed). */
  _rawConnectionLost(exc: Error | undefined): void {
    this.#rawLost = true;
    this.#cancelTimers();
    if (exc === undefined) exc = this.#forcedExc;
    const handshaking = this.#waiter !== null && !this.#waiter.done();
    this.#state = 'unwrapped';
    this.#closed = true;
    if (this.#tls !== null && !this.#tls.destroyed) this.#tls.destroy();
    if (handshaking) {
      let reason: Error;
      if (exc !== undefined) reason = exc;
      else if (this.#tlsError !== null) reason = _toSSLError(this.#tlsError);
      else reason = new ConnectionResetError('Connection lost during SSL handshake');
      this.#wakeupWaiter(reason);
    }
    if (this.#appState === 'made' || this.#appState === 'eof') {
      this.#lostPending = { exc };
      this.#schedulePump();
    }
  }

  // ------------------------------------------------------------ node:tls side

  #onHandshakeComplete(err: unknown): void {
    if (this.#state !== 'handshake') return;
    if (this.#handshakeTimer !== null) {
      this.#handshakeTimer.cancel();
      this.#handshakeTimer = null;
    }
    const sock = this.#tls;
    if (err === null && sock !== null && this.#serverSide && this.#config.options.requestCert) {
      err = this.#verifyClient(sock);
    }
    if (err !== null) {
      this.#state = 'unwrapped';
      const exc = _toSSLError(err);
      const message = exc instanceof SSLCertVerificationError ? 'SSL handshake failed on verifying the certificate' : 'SSL handshake failed';
      this.#fatalError(exc, message);
      this.#wakeupWaiter(exc);
      return;
    }
    this.#state = 'wrapped';
    const peercert = sock!.getPeerCertificate();
    Object.assign(this._extra, {
      peercert: peercert && Object.keys(peercert).length > 0 ? peercert : null,
      cipher: sock!.getCipher(),
      compression: null,
      ssl_object: sock,
    });
    if (this.#appState === 'init') {
      this.#appState = 'made';
      try {
        this.#protocol.connectionMade(this);
      } catch (exc) {
        this.#fatalError(exc, 'Error calling connection_made()');
        this.#wakeupWaiter(exc as Error);
        return;
      }
    }
    this.#wakeupWaiter(undefined);
    this.#schedulePump();
  }

  /** tls.Server's check of a client certificate, for a TLSSocket made by hand. */
  #verifyClient(sock: tls.TLSSocket): Error | null {
    const handle = (sock as unknown as { _handle?: { verifyError?: () => Error | null } })._handle;
    const verifyError = handle?.verifyError?.() ?? null;
    const s = sock as unknown as { authorized: boolean; authorizationError?: string };
    if (verifyError === null) {
      s.authorized = true;
      return null;
    }
    // As tls.Server: the code, e.g. 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'.
    s.authorizationError = (verifyError as Error & { code?: string }).code ?? verifyError.message;
    return this.#config.options.rejectUnauthorized === false ? null : verifyError;
  }

  #onTlsError(err: unknown): void {
    if (this.#state === 'handshake') {
      this.#onHandshakeComplete(err);
      return;
    }
    if (this.#rawLost || this.#state === 'unwrapped') return;
    this.#fatalError(_toSSLError(err), 'Fatal error on SSL protocol');
  }

  #onTlsClose(): void {
    // node:tls is done with the connection (close_notify exchanged, or it
    // gave up): the raw transport closes too, if it has not yet.
    const raw = this.#raw;
    if (raw === null || this.#rawLost || raw.isClosing()) return;
    if (this.#state === 'handshake') this.#onHandshakeComplete(this.#tlsError ?? new ConnectionResetError('Connection lost during SSL handshake'));
    else raw.close();
  }

  #checkHandshakeTimeout(): void {
    this.#handshakeTimer = null;
    if (this.#state !== 'handshake') return;
    const msg = `SSL handshake is taking longer than ${seconds(this.#handshakeTimeout)} seconds: aborting the connection`;
    this.#fatalError(new ConnectionAbortedError(msg));
  }

  #startShutdown(): void {
    if (this.#state === 'flushing' || this.#state === 'unwrapped') return;
    if (this.#state === 'init' || this.#state === 'handshake') {
      this.#abortRaw(undefined);
      return;
    }
    this.#state = 'flushing';
    this.#shutdownTimer = this._loop.callLater(this.#shutdownTimeout, () => {
      this.#shutdownTimer = null;
      if (this.#state === 'flushing' && !this.#rawLost) this.#forceCloseRaw(new TimeoutError('SSL shutdown timed out'));
    });
    // Flushes what was written, sends close_notify, half-closes the raw
    // transport; node:tls then waits for the peer's EOF and closes.
    this.#tls?.end();
  }

  #abortRaw(exc: Error | undefined): void {
    if (this.#state !== 'unwrapped') this.#state = 'unwrapped';
    if (this.#raw !== null && !this.#rawLost) this.#forceCloseRaw(exc);
  }

  /** Closes the raw transport at once; connectionLost then reports `exc`. */
  #forceCloseRaw(exc: Error | undefined): void {
    const raw = this.#raw;
    if (raw === null || this.#rawLost) return;
    if (exc !== undefined && this.#forcedExc === undefined) this.#forcedExc = exc;
    const forceClose = (raw as unknown as { _forceClose?: (e: Error | undefined) => void })._forceClose;
    if (typeof forceClose === 'function') forceClose.call(raw, exc);
    else raw.abort();
  }

  /** asyncio's SSLProtocol._fatal_error. */
  #fatalError(exc: unknown, message = 'Fatal error on transport'): void {
    this.#forceCloseRaw(exc as Error);
    if (exc instanceof OSError) {
      if (this._loop.getDebug()) logger.debug(`${this.toString()}: ${message}`, exc);
    } else if (!(exc instanceof CancelledError)) {
      this._loop.callExceptionHandler({ message, exception: exc, transport: this, protocol: this.#protocol });
    }
  }

  #wakeupWaiter(exc: Error | undefined): void {
    const waiter = this.#waiter;
    if (waiter === null) return;
    this.#waiter = null;
    if (waiter.done()) return;
    if (exc === undefined) waiter.setResult(undefined);
    else waiter.setException(exc);
  }

  #cancelTimers(): void {
    this.#handshakeTimer?.cancel();
    this.#handshakeTimer = null;
    this.#shutdownTimer?.cancel();
    this.#shutdownTimer = null;
  }

  /** Runs `fn` as a loop callback (node:tls calls us from Node's side). */
  #post(fn: () => void): void {
    if (this._loop.isClosed()) return;
    this._loop.callSoon(fn);
  }

  #schedulePump(): void {
    if (this.#pumpScheduled) return;
    this.#pumpScheduled = true;
    this.#post(() => this.#pump());
  }

  /** Delivers decrypted data, then EOF, then connectionLost, in order, while not paused. */
  #pump(): void {
    this.#pumpScheduled = false;
    const protocol = this.#protocol;
    while (this.#incoming.length > 0 && !this.#readPaused && this.#appState === 'made' && this.#forcedExc === undefined) {
      const chunk = this.#incoming.shift()!;
      try {
        if (protocol instanceof BufferedProtocol) deliverBuffered(protocol, chunk);
        else (protocol as Protocol).dataReceived(chunk);
      } catch (exc) {
        this.#fatalError(exc, 'Fatal error on SSL protocol');
        break;
      }
    }
    if (this.#incoming.length === 0 && this.#eofPending && !this.#readPaused && this.#appState === 'made' && this.#lostPending === null) {
      this.#eofPending = false;
      this.#appState = 'eof';
      try {
        const eofReceived = (protocol as Protocol).eofReceived;
        const keepOpen = typeof eofReceived === 'function' ? eofReceived.call(protocol) : undefined;
        if (keepOpen) logger.warning('returning true from eof_received() has no effect when using ssl');
      } catch (exc) {
        this.#fatalError(exc, 'Error calling eof_received()');
      }
      this.close();
    }
    const lost = this.#lostPending;
    if (lost !== null && (this.#incoming.length === 0 || this.#readPaused || this.#forcedExc !== undefined)) {
      // Data still held back by pauseReading() is dropped, as asyncio does.
      this.#lostPending = null;
      this.#incoming = [];
      if (this.#appState === 'made' || this.#appState === 'eof') {
        this.#appState = 'lost';
        protocol.connectionLost(lost.exc);
      }
    }
  }
}

/** Copies `chunk` into the buffers a BufferedProtocol hands out. */
function deliverBuffered(protocol: BufferedProtocol, chunk: Buffer): void {
  let offset = 0;
  while (offset < chunk.length) {
    const buf = protocol.getBuffer(chunk.length - offset);
    if (!(buf instanceof Uint8Array) || buf.length === 0) throw new RuntimeError('get_buffer() returned an empty buffer');
    const n = Math.min(buf.length, chunk.length - offset);
    buf.set(chunk.subarray(offset, offset + n));
    offset += n;
    protocol.bufferUpdated(n);
  }
}

// ---------------------------------------------------------------- loop hooks

function makeTransport(
  loop: BaseEventLoop,
  protocol: BaseProtocol,
  ssl: unknown,
  serverSide: boolean,
  serverHostname: string | undefined,
  waiter: Future<void> | null,
  o: SslTimeouts,
  callConnectionMade = true,
  config?: SslConfig,
): SSLTransport {
  const handshakeTimeout = checkTimeout(o.sslHandshakeTimeout, 'ssl_handshake_timeout', SSL_HANDSHAKE_TIMEOUT);
  const shutdownTimeout = checkTimeout(o.sslShutdownTimeout, 'ssl_shutdown_timeout', SSL_SHUTDOWN_TIMEOUT);
  return new SSLTransport(loop, protocol, config ?? resolveSsl(ssl, serverSide), {
    serverSide,
    serverHostname,
    waiter,
    handshakeTimeout,
    shutdownTimeout,
    callConnectionMade,
  });
}

_tls.wrapClient = (loop, sock, protocol, ssl, serverHostname, waiter, o) => {
  // asyncio's create_unix_connection: no host to default the name to.
  if (serverHostname === undefined) throw new RangeError('you have to pass server_hostname when using ssl');
  const transport = makeTransport(loop, protocol, ssl, false, serverHostname, waiter, o);
  loop._makeSocketTransport(sock, transport._rawProtocol);
  return transport;
};

_tls.wrapAccepted = (loop, sock, protocol, ssl, waiter, o) => {
  const transport = makeTransport(loop, protocol, ssl, true, undefined, waiter, o);
  loop._makeSocketTransport(sock, transport._rawProtocol);
  return transport;
};

_tls.wrapServer = (loop, ssl, o) => {
  // Checked once, when the server starts: a bad context fails createServer.
  const config = resolveSsl(ssl, true);
  checkTimeout(o.sslHandshakeTimeout, 'ssl_handshake_timeout', SSL_HANDSHAKE_TIMEOUT);
  checkTimeout(o.sslShutdownTimeout, 'ssl_shutdown_timeout', SSL_SHUTDOWN_TIMEOUT);
  return (sock: Socket, protocol: BaseProtocol, extra: Record<string, unknown>, server: Server | null) => {
    const waiter = loop.createFuture<void>();
    const transport = makeTransport(loop, protocol, ssl, true, undefined, waiter, o, true, config);
    loop._makeSocketTransport(sock, transport._rawProtocol, null, extra, server);
    // asyncio's _accept_connection2: a failed handshake closes the
    // connection, and is reported in debug mode only.
    waiter.addDoneCallback((f) => {
      if (f.cancelled()) return;
      const exc = f.exception();
      if (exc === undefined || exc === null) return;
      transport.close();
      if (loop.getDebug()) loop.callExceptionHandler({ message: 'Error on transport creation for incoming connection', exception: exc });
    });
  };
};

/** Options of {@link startTls}. */
export interface StartTlsOptions {
  /** Act as the TLS server (then `sslcontext` must carry a certificate). */
  serverSide?: boolean;
  /** The name to check the server's certificate against (and send as SNI); '' turns the check off. */
  serverHostname?: string;
  /** Seconds; default 60. */
  sslHandshakeTimeout?: number;
  /** Seconds; default 30. */
  sslShutdownTimeout?: number;
}

/**
 * Upgrades an open stream transport to TLS (asyncio's `loop.start_tls`):
 * the handshake runs over `transport`, then the returned Task resolves with
 * the new {@link SSLTransport}, whose protocol is `protocol`
 * (`connectionMade` is not called again: the protocol is already
 * connected). `transport` must not be used afterwards. On failure the
 * transport is closed and the Task rejects.
 * @param sslcontext `true` (clients), a `tls.SecureContext`, or tls options.
 * @throws TypeError for a transport that is not a stream Transport.
 * @example
 * const tlsTransport = await loop.startTls(transport, protocol, { ca }, { serverHostname: 'localhost' });
 */
export function startTls(
  loop: BaseEventLoop,
  transport: Transport,
  protocol: BaseProtocol,
  sslcontext: unknown,
  options: StartTlsOptions = {},
): Task<SSLTransport> {
  if (!(transport instanceof Transport)) throw new TypeError(`transport ${String(transport)} is not supported by start_tls()`);
  if (transport.isClosing()) throw new RuntimeError(`transport ${String(transport)} is closing`);
  const serverSide = Boolean(options.serverSide);
  const waiter = loop.createFuture<void>();
  const ssl = makeTransport(loop, protocol, sslcontext, serverSide, options.serverHostname, waiter, options, false);
  const raw = ssl._rawProtocol;
  // Pause first so that raw data cannot reach the SSL protocol before its connectionMade.
  transport.pauseReading();
  transport.setProtocol(raw);
  const conmade = loop.callSoon(() => raw.connectionMade(transport));
  const resume = loop.callSoon(() => transport.resumeReading());
  return loop.createTask(startTlsGen(waiter, transport, conmade, resume, ssl)) as Task<SSLTransport>;
}

function* startTlsGen(
  waiter: Future<void>,
  transport: Transport,
  conmade: { cancel(): void },
  resume: { cancel(): void },
  ssl: SSLTransport,
): Coroutine<SSLTransport> {
  try {
    yield* waiter;
  } catch (exc) {
    transport.close();
    conmade.cancel();
    resume.cancel();
    throw exc;
  }
  return ssl;
}

// loop.startTls() delegates here through the hook (base-events.ts cannot
// import this module: it imports base-events.ts).
(_tls as { startTls?: typeof startTls }).startTls = startTls;
