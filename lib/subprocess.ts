/**
 * High-level subprocesses: Process, with StreamReader / StreamWriter pipes.
 *
 * Port of CPython Lib/asyncio/subprocess.py (3.14). Spawning, pipes and exit
 * watching live in unix-events.ts and base-subprocess.ts; docs/subprocess.md
 * says how they work.
 */
import { inspect } from 'node:util';
import type { BaseSubprocessTransport, SubprocessTransport } from './base-subprocess.js';
import { BrokenPipeError, CancelledError, ConnectionResetError, describeArg, RuntimeError } from './exceptions.js';
import type { AbstractEventLoop } from './events.js';
import { getRunningLoop } from './events.js';
import type { Coroutine } from './coroutines.js';
import type { Future } from './futures.js';
import { logger } from './log.js';
import { FlowControlMixin, StreamReader, StreamWriter } from './streams.js';
import { _bindSignal, _suspendable, gather, type SignalOptions, type Sleep, type Task } from './tasks.js';
import { _signalOf, _throwIfAborted } from './locks.js';
import type { ReadTransport, Transport, WriteTransport } from './transports.js';
import { _checkSubprocessOptions, type SubprocessOptions } from './unix-events.js';

export { PIPE, STDOUT, DEVNULL, type SubprocessOptions, type StdioOption } from './unix-events.js';

/** asyncio's streams._DEFAULT_LIMIT. */
const DEFAULT_LIMIT = 2 ** 16;

/** Options of createSubprocessExec / createSubprocessShell: the loop's, plus `limit` and `signal`, as openConnection's. */
export interface CreateSubprocessOptions extends SubprocessOptions, SignalOptions {
  /** The stdout / stderr StreamReaders' limit (64 KiB by default). */
  limit?: number;
}

/**
 * Like StreamReaderProtocol, but for a subprocess: feeds the child's stdout
 * and stderr into StreamReaders and gives stdin a StreamWriter (asyncio's
 * SubprocessStreamProtocol).
 */
export class SubprocessStreamProtocol extends FlowControlMixin {
  /** @internal */ _limit: number;
  stdin: StreamWriter | null = null;
  stdout: StreamReader | null = null;
  stderr: StreamReader | null = null;
  /** @internal */ _transport: SubprocessTransport | null = null;
  /** @internal */ _processExited = false;
  /** @internal */ _pipeFds: number[] = [];
  /** @internal */ _stdinClosed: Future<void>;
  /** @internal fd -> what communicate() collects in place of the StreamReader. */ _collectors = new Map<number, Collector>();

  constructor(limit: number, loop: AbstractEventLoop) {
    super({ loop });
    this._limit = limit;
    this._stdinClosed = this._loop.createFuture<void>();
    // Nobody may ever wait on it: a failure there is not "never retrieved".
    this._stdinClosed.addDoneCallback((f) => {
      if (!f.cancelled()) f.exception();
    });
  }

  override toString(): string {
    const info = [this.constructor.name];
    if (this.stdin !== null) info.push(`stdin=${String(this.stdin)}`);
    if (this.stdout !== null) info.push(`stdout=${String(this.stdout)}`);
    if (this.stderr !== null) info.push(`stderr=${String(this.stderr)}`);
    return `<${info.join(' ')}>`;
  }

  override connectionMade(transport: unknown): void {
    const t = transport as SubprocessTransport;
    this._transport = t;
    const stdoutTransport = t.getPipeTransport(1) as ReadTransport | null;
    if (stdoutTransport !== null) {
      this.stdout = new StreamReader({ limit: this._limit, loop: this._loop });
      this.stdout.setTransport(stdoutTransport as unknown as Transport);
      this._pipeFds.push(1);
    }
    const stderrTransport = t.getPipeTransport(2) as ReadTransport | null;
    if (stderrTransport !== null) {
      this.stderr = new StreamReader({ limit: this._limit, loop: this._loop });
      this.stderr.setTransport(stderrTransport as unknown as Transport);
      this._pipeFds.push(2);
    }
    const stdinTransport = t.getPipeTransport(0) as WriteTransport | null;
    if (stdinTransport !== null) {
      this.stdin = new StreamWriter(stdinTransport as unknown as Transport, this, null, this._loop);
    }
  }

  pipeDataReceived(fd: number, data: Buffer): void {
    const collector = this._collectors.get(fd);
    if (collector !== undefined) {
      collector.chunks.push(data);
      collector.size += data.length;
      return;
    }
    const reader = fd === 1 ? this.stdout : fd === 2 ? this.stderr : null;
    reader?.feedData(data);
  }

  /**
   * @internal `reader.read()` to EOF for communicate(), minus two copies of
   * every byte: what the reader holds already is read from it, then the
   * pipe's chunks are kept as they come (no pause: communicate() wants it
   * all) and joined once at EOF, as node:child_process users collect
   * output. The reader ends at EOF (or with the pipe's error) as read()
   * would leave it. Cancelled, the chunks go back into the reader.
   */
  *_readAll(fd: 1 | 2): Coroutine<Buffer> {
    const reader = (fd === 1 ? this.stdout : this.stderr) as StreamReader;
    if (reader.exception() != null || reader._eof) return yield* reader.read();
    if (reader._waiter !== null) throw new RuntimeError('read() called while another coroutine is already waiting for incoming data');
    const collector: Collector = { chunks: [], size: 0, done: this._loop.createFuture<Buffer>() };
    this._collectors.set(fd, collector);
    // Reading may have been paused by the reader's limit: all of it is wanted now.
    if (reader._paused) {
      reader._paused = false;
      (this._transport?.getPipeTransport(fd) as ReadTransport | null | undefined)?.resumeReading();
    }
    try {
      const tail = yield* collector.done;
      // What the reader held before the collecting began comes first.
      const head = reader._buffer.length > 0 ? yield* reader.read() : EMPTY;
      return head.length === 0 ? tail : Buffer.concat([head, tail]);
    } finally {
      if (this._collectors.get(fd) === collector) {
        // Cancelled: nothing is lost, the reader gets the chunks back.
        this._collectors.delete(fd);
        for (const chunk of collector.chunks) reader.feedData(chunk);
      }
    }
  }


  pipeConnectionLost(fd: number, exc: Error | undefined): void {
    if (fd === 0) {
      this.stdin?.close();
      this.connectionLost(exc);
      if (!this._stdinClosed.done()) {
        if (exc === undefined) this._stdinClosed.setResult(undefined);
        else this._stdinClosed.setException(exc);
      }
      return;
    }
    const reader = fd === 1 ? this.stdout : fd === 2 ? this.stderr : null;
    const collector = this._collectors.get(fd);
    if (collector !== undefined) {
      this._collectors.delete(fd);
      if (exc !== undefined) collector.done.setException(exc);
      else collector.done.setResult(collector.chunks.length === 1 ? collector.chunks[0] : Buffer.concat(collector.chunks, collector.size));
    }
    if (reader !== null) {
      if (exc === undefined) reader.feedEof();
      else reader.setException(exc);
    }
    const i = this._pipeFds.indexOf(fd);
    if (i >= 0) this._pipeFds.splice(i, 1);
    this.#maybeCloseTransport();
  }

  processExited(): void {
    this._processExited = true;
    this.#maybeCloseTransport();
  }

  #maybeCloseTransport(): void {
    if (this._pipeFds.length === 0 && this._processExited && this._transport !== null) {
      this._transport.close();
      this._transport = null;
    }
  }

  override _getCloseWaiter(stream: StreamWriter): Future<void> {
    if (stream === this.stdin) return this._stdinClosed;
    return super._getCloseWaiter(stream);
  }
}

/**
 * A child process started by createSubprocessExec / createSubprocessShell
 * (asyncio's Process): `stdin` is a StreamWriter and `stdout` / `stderr`
 * StreamReaders when they were PIPE, else null.
 */
export class Process {
  /** @internal */ _transport: SubprocessTransport & { _wait(): Coroutine<number> };
  /** @internal */ _protocol: SubprocessStreamProtocol;
  /** @internal */ _loop: AbstractEventLoop;
  readonly stdin: StreamWriter | null;
  readonly stdout: StreamReader | null;
  readonly stderr: StreamReader | null;
  readonly pid: number;

  constructor(transport: SubprocessTransport, protocol: SubprocessStreamProtocol, loop: AbstractEventLoop) {
    this._transport = transport as SubprocessTransport & { _wait(): Coroutine<number> };
    this._protocol = protocol;
    this._loop = loop;
    this.stdin = protocol.stdin;
    this.stdout = protocol.stdout;
    this.stderr = protocol.stderr;
    this.pid = transport.getPid() as number;
  }

  toString(): string {
    return `<${this.constructor.name} ${this.pid}>`;
  }

  [inspect.custom](): string {
    return this.toString();
  }

  /** The return code (-N when signal N killed it), or null while it runs. */
  get returncode(): number | null {
    return this._transport.getReturncode();
  }

  /** Waits until the child exits (and its pipes are closed); returns the return code. */
  wait(): Sleep<number> {
    return _suspendable(() => this._transport._wait());
  }

  /** Sends `signal` (a number or a name such as 'SIGUSR1'). */
  sendSignal(signal: number | NodeJS.Signals): void {
    this._transport.sendSignal(signal);
  }

  /** SIGTERM. */
  terminate(): void {
    this._transport.terminate();
  }

  /** SIGKILL. */
  kill(): void {
    this._transport.kill();
  }

  *#feedStdin(input: Uint8Array | string | null | undefined): Coroutine<void> {
    const debug = this._loop.getDebug();
    const stdin = this.stdin as StreamWriter;
    if (input != null) {
      // The input is communicate()'s until stdin is flushed: no copy of it
      // (a 64 MiB input would otherwise be copied whole).
      const t = stdin.transport as unknown as { _write?: (b: Uint8Array, copy: boolean) => void };
      if (typeof input !== 'string' && input instanceof Uint8Array && typeof t._write === 'function' && !stdin.isClosing()) t._write(input, false);
      else stdin.write(input);
      if (debug) logger.debug(`${String(this)} communicate: feed stdin (${input.length} bytes)`);
    }
    try {
      yield* stdin.drain();
    } catch (exc) {
      // communicate() ignores BrokenPipeError and ConnectionResetError.
      if (!(exc instanceof BrokenPipeError || exc instanceof ConnectionResetError)) throw exc;
      if (debug) logger.debug(`${String(this)} communicate: stdin got ${String(exc)}`);
    }
    if (debug) logger.debug(`${String(this)} communicate: close stdin`);
    stdin.close();
  }

  *#readStream(fd: 1 | 2): Coroutine<Buffer> {
    const transport = this._transport.getPipeTransport(fd);
    // As stream.read() to EOF, with fewer copies (see _readAll).
    const output = yield* this._protocol._readAll(fd);
    transport?.close();
    return output;
  }

  /**
   * Sends `input` to stdin (then closes it), reads stdout and stderr to EOF
   * and waits for the child to exit: `[stdout, stderr]`, each null when not
   * piped. A child that stops reading its stdin early is not an error.
   * @example
   * const proc = await createSubprocessExec('cat', [], { stdin: PIPE, stdout: PIPE });
   * const [out] = await proc.communicate('hello');
   */
  communicate(input?: Uint8Array | string | null): Sleep<[Buffer | null, Buffer | null]> {
    return _suspendable(() => this.#communicate(input));
  }

  *#communicate(input: Uint8Array | string | null | undefined): Coroutine<[Buffer | null, Buffer | null]> {
    const noop = function* (): Coroutine<null> {
      return null;
    };
    const stdin = this.stdin !== null ? this.#feedStdin(input) : noop();
    const stdout = this.stdout !== null ? this.#readStream(1) : noop();
    const stderr = this.stderr !== null ? this.#readStream(2) : noop();
    const [, out, err] = (yield* gather([stdin, stdout, stderr])) as [unknown, Buffer | null, Buffer | null];
    yield* this._transport._wait();
    return [out, err];
  }
}

/** Type checks made at the call, as the loop methods make them (asyncio raises them when awaited). */
function checkArg(v: unknown, name: string): void {
  if (typeof v !== 'string') throw new TypeError(describeArg(name, 'a string', v));
}

interface Collector {
  chunks: Buffer[];
  size: number;
  done: Future<Buffer>;
}

const EMPTY = Buffer.alloc(0);

function checkLimit(limit: unknown): number {
  if (limit === undefined) return DEFAULT_LIMIT;
  if (typeof limit !== 'number' || Number.isNaN(limit)) throw new TypeError(describeArg('limit', 'a number of bytes', limit));
  if (limit <= 0) throw new RangeError('Limit cannot be <= 0');
  return limit;
}

function* createGen(
  spawn: (loop: AbstractEventLoop, factory: () => SubprocessStreamProtocol) => Task<[SubprocessTransport, SubprocessStreamProtocol]>,
  limit: number,
  signal: AbortSignal | undefined,
): Coroutine<Process> {
  _throwIfAborted(signal);
  const loop = getRunningLoop();
  const task = spawn(loop, () => new SubprocessStreamProtocol(limit, loop));
  // An abort cancels the spawning task, which kills and reaps a child
  // already started (loop.subprocessExec's cancellation path).
  _bindSignal(task, signal);
  let started: [SubprocessTransport, SubprocessStreamProtocol];
  try {
    started = yield* task;
  } catch (exc) {
    // Cancelled in the very pass the spawn finished (every task cancelled
    // at once): no Process will own this child, so stop and reap it here.
    if (exc instanceof CancelledError && task.done() && !task.cancelled() && task.exception() === undefined) {
      const transport = task.result()[0] as BaseSubprocessTransport;
      transport.close();
      yield* transport._wait();
    }
    throw exc;
  }
  const [transport, protocol] = started;
  return new Process(transport, protocol, loop);
}

function splitLimit(options: CreateSubprocessOptions | undefined, shell: boolean): [number, AbortSignal | undefined, SubprocessOptions] {
  const o = _checkSubprocessOptions(options, shell, ['limit', 'signal']) as CreateSubprocessOptions;
  const signal = _signalOf(o);
  const { limit, signal: _signal, ...rest } = o;
  return [checkLimit(limit), signal, rest];
}

/**
 * Runs `program` with `args` (no shell) and returns its Process.
 * Options: `stdin` / `stdout` / `stderr` (PIPE, DEVNULL, STDOUT for
 * stderr, an fd or a FileHandle; default: inherit), `cwd`, `env`,
 * `passFds`, `startNewSession`, `processGroup`, `limit`, and `signal`
 * (aborting it cancels the start; a child already started is killed).
 * @throws FileNotFoundError (code 'ENOENT') when the program is missing.
 * @example
 * const proc = await createSubprocessExec('ls', ['-l'], { stdout: PIPE });
 * const [out] = await proc.communicate();
 */
export function createSubprocessExec(program: string, args?: readonly string[] | CreateSubprocessOptions, options?: CreateSubprocessOptions): Sleep<Process> {
  // createSubprocessExec(program, options) reads naturally too.
  if (args !== undefined && !Array.isArray(args) && options === undefined && typeof args === 'object' && args !== null) {
    options = args as CreateSubprocessOptions;
    args = undefined;
  }
  checkArg(program, 'program');
  const argList = (args ?? []) as readonly string[];
  if (!Array.isArray(argList)) throw new TypeError(describeArg('args', 'an array of strings', argList));
  argList.forEach((a, i) => checkArg(a, `args[${i}]`));
  const [limit, signal, rest] = splitLimit(options, false);
  return _suspendable(() => createGen((loop, factory) => loop.subprocessExec(factory, program, argList, rest), limit, signal));
}

/**
 * Runs `cmd` through /bin/sh -c and returns its Process; options as
 * createSubprocessExec. Quote what goes into `cmd` yourself.
 * @example
 * const proc = await createSubprocessShell('ls /zzz', { stdout: PIPE, stderr: PIPE });
 * const [, err] = await proc.communicate(); // proc.returncode === 2
 */
export function createSubprocessShell(cmd: string, options?: CreateSubprocessOptions): Sleep<Process> {
  checkArg(cmd, 'cmd');
  const [limit, signal, rest] = splitLimit(options, true);
  return _suspendable(() => createGen((loop, factory) => loop.subprocessShell(factory, cmd, rest), limit, signal));
}
