/**
 * asyncio exceptions, plus the OSError family native calls map into.
 *
 * Port of CPython Lib/asyncio/exceptions.py (3.14), with Python's builtin
 * OSError subclasses carrying Node's system-error shape (`code`, `errno`,
 * `syscall`, `address`, `port`), so both `err instanceof
 * ConnectionResetError` and `err.code === 'ECONNRESET'` work.
 */

function named<T extends Error>(err: T, name: string, ctor: Function): T {
  Object.defineProperty(err, 'name', { value: name, enumerable: false, configurable: true, writable: true });
  Error.captureStackTrace?.(err, ctor);
  return err;
}

/** Python's RuntimeError: no running loop, loop closed, and the like. */
export class RuntimeError extends Error {
  constructor(message?: string, options?: ErrorOptions) {
    super(message, options);
    named(this, 'RuntimeError', new.target);
  }
}

/**
 * The operation was cancelled. Code that catches everything must rethrow
 * it, as Python's `BaseException` is never swallowed by `except Exception`.
 */
export class CancelledError extends Error {
  constructor(message?: string, options?: ErrorOptions) {
    super(message ?? '', options);
    named(this, 'CancelledError', new.target);
  }
}

/** The Future or Task is in a state that does not allow this operation. */
export class InvalidStateError extends Error {
  constructor(message?: string, options?: ErrorOptions) {
    super(message, options);
    named(this, 'InvalidStateError', new.target);
  }
}

/** Options for the OSError family: Node's system-error fields. */
export interface OSErrorInfo {
  errno?: number;
  code?: string;
  syscall?: string;
  address?: string;
  port?: number;
  /** Description of the error without the syscall and code prefix. */
  strerror?: string;
  cause?: unknown;
}

/**
 * Python's OSError with Node's system-error shape. Message is Node's
 * `syscall CODE address:port` form when built from a native failure.
 */
export class OSError extends Error {
  errno?: number;
  code?: string;
  syscall?: string;
  address?: string;
  port?: number;
  strerror?: string;
  constructor(message?: string, info: OSErrorInfo = {}) {
    super(message, info.cause === undefined ? undefined : { cause: info.cause });
    named(this, new.target.name, new.target);
    if (info.errno !== undefined) this.errno = info.errno;
    if (info.code !== undefined) this.code = info.code;
    if (info.syscall !== undefined) this.syscall = info.syscall;
    if (info.address !== undefined) this.address = info.address;
    if (info.port !== undefined) this.port = info.port;
    if (info.strerror !== undefined) this.strerror = info.strerror;
  }
}

/** The operation exceeded its deadline (Python's builtin TimeoutError). */
export class TimeoutError extends OSError {}
export class BlockingIOError extends OSError {}
export class ChildProcessError extends OSError {}
export class ConnectionError extends OSError {}
export class BrokenPipeError extends ConnectionError {}
export class ConnectionAbortedError extends ConnectionError {}
export class ConnectionRefusedError extends ConnectionError {}
export class ConnectionResetError extends ConnectionError {}
export class FileExistsError extends OSError {}
export class FileNotFoundError extends OSError {}
export class InterruptedError extends OSError {}
export class IsADirectoryError extends OSError {}
export class NotADirectoryError extends OSError {}
export class PermissionError extends OSError {}
export class ProcessLookupError extends OSError {}

const byCode: Record<string, typeof OSError> = {
  EAGAIN: BlockingIOError,
  EWOULDBLOCK: BlockingIOError,
  EALREADY: BlockingIOError,
  EINPROGRESS: BlockingIOError,
  ECHILD: ChildProcessError,
  EPIPE: BrokenPipeError,
  ESHUTDOWN: BrokenPipeError,
  ECONNABORTED: ConnectionAbortedError,
  ECONNREFUSED: ConnectionRefusedError,
  ECONNRESET: ConnectionResetError,
  EEXIST: FileExistsError,
  ENOENT: FileNotFoundError,
  EINTR: InterruptedError,
  EISDIR: IsADirectoryError,
  ENOTDIR: NotADirectoryError,
  EACCES: PermissionError,
  EPERM: PermissionError,
  ESRCH: ProcessLookupError,
  ETIMEDOUT: TimeoutError,
};

/**
 * The OSError subclass Python would raise for an errno code name, as
 * `OSError(errno, ...)` picks one: `ECONNRESET` -> ConnectionResetError.
 */
export function osErrorClass(code: string | undefined): typeof OSError {
  return (code !== undefined && byCode[code]) || OSError;
}

/** Builds the right OSError subclass from Node's system-error fields. */
export function makeOSError(message: string, info: OSErrorInfo): OSError {
  const Cls = osErrorClass(info.code);
  return new Cls(message, info);
}

/** readexactly() reached EOF before `expected` bytes. */
export class IncompleteReadError extends Error {
  readonly partial: Uint8Array;
  readonly expected: number | null;
  constructor(partial: Uint8Array, expected: number | null) {
    const r = expected === null ? 'undefined' : String(expected);
    super(`${partial.length} bytes read on a total of ${r} expected bytes`);
    named(this, 'IncompleteReadError', new.target);
    this.partial = partial;
    this.expected = expected;
  }
}

/** Reached the buffer limit while looking for a separator. */
export class LimitOverrunError extends Error {
  readonly consumed: number;
  constructor(message: string, consumed: number) {
    super(message);
    named(this, 'LimitOverrunError', new.target);
    this.consumed = consumed;
  }
}

/** sendfile syscall is not available for the given socket or file type. */
export class SendfileNotAvailableError extends RuntimeError {
  constructor(message?: string) {
    super(message);
    named(this, 'SendfileNotAvailableError', new.target);
  }
}

/** A Barrier was broken while a task waited on it. */
export class BrokenBarrierError extends RuntimeError {
  constructor(message?: string) {
    super(message);
    named(this, 'BrokenBarrierError', new.target);
  }
}

/**
 * Python's ExceptionGroup: several errors raised together (TaskGroup).
 * Extends AggregateError so `err.errors` works as in JavaScript.
 */
export class ExceptionGroup extends AggregateError {
  readonly exceptions: readonly unknown[];
  constructor(message: string, exceptions: readonly unknown[]) {
    super(exceptions, message);
    named(this, 'ExceptionGroup', new.target);
    this.exceptions = exceptions;
  }
}

/** Validation error text: names the argument, the expectation and the value. */
export function describeArg(name: string, expected: string, got: unknown): string {
  return `Expected "${name}" to be ${expected}, got ${showValue(got)}`;
}

function showValue(v: unknown): string {
  if (typeof v === 'function') return `function ${v.name || '<anonymous>'}`;
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v);
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return String(v);
  if (v === null || v === undefined) return String(v);
  const ctor = (v as object).constructor?.name;
  return ctor ? `an instance of ${ctor}` : typeof v;
}
