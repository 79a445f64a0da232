/**
 * aionode: Python's asyncio for Node.js.
 *
 * The public API, as asyncio's `__init__.py` re-exports it. Internals are
 * never re-exported from here.
 */
export {
  AbstractEventLoop,
  Handle,
  TimerHandle,
  getRunningLoop,
  getEventLoop,
  setEventLoop,
  newEventLoop,
  availableLoops,
  _getRunningLoop,
  type CallbackContext,
  type CallbackOptions,
  type ExceptionContext,
  type ExceptionHandler,
  type FileDescriptorLike,
} from './events.js';
export {
  BaseEventLoop,
  Server,
  type AddrInfo,
  type CreateConnectionOptions,
  type CreateServerOptions,
  type CreateDatagramOptions,
} from './base-events.js';
export { BaseProtocol, Protocol, BufferedProtocol, DatagramProtocol, SubprocessProtocol } from './protocols.js';
export { BaseTransport, ReadTransport, WriteTransport, Transport, DatagramTransport } from './transports.js';
export { Socket, constants as socketConstants, type SockAddr } from './socket.js';
// Importing sslproto also registers the TLS layer with the loop.
export {
  SSLTransport,
  SSLProtocol,
  SSLError,
  SSLCertVerificationError,
  SSL_HANDSHAKE_TIMEOUT,
  SSL_SHUTDOWN_TIMEOUT,
  type StartTlsOptions,
} from './sslproto.js';
export { toDuplex, createDuplexProtocol, DuplexProtocol, TransportDuplex, type DuplexViewOptions } from './node-streams.js';
export { BaseSelectorEventLoop, SelectorEventLoop, EventLoop, SelectorSocketTransport, SelectorDatagramTransport } from './selector-events.js';
export { BaseProactorEventLoop, ProactorEventLoop, IoUringProactor, ProactorSocketTransport, ProactorDatagramTransport, availableProactors } from './proactor-events.js';
export { Future, isFuture, type FutureOptions } from './futures.js';
export {
  isCoroutine,
  type Coroutine,
  type Awaitable,
  type AwaitableLike,
  type AwaitedOf,
} from './coroutines.js';
export {
  Task,
  createTask,
  ensureFuture,
  currentTask,
  allTasks,
  eagerTaskFactory,
  createEagerTaskFactory,
  sleep,
  gather,
  shield,
  wait,
  waitFor,
  asCompleted,
  AsCompleted,
  asyncWith,
  FIRST_COMPLETED,
  FIRST_EXCEPTION,
  ALL_COMPLETED,
  _enterTask,
  _leaveTask,
  _registerTask,
  type TaskOptions,
  type TaskFactory,
  type ReturnWhen,
  type Sleep,
  type SignalOptions,
  type AsyncContextManager,
} from './tasks.js';
export { Timeout, timeout, timeoutAt } from './timeouts.js';
export { TaskGroup, KeyboardInterrupt } from './taskgroups.js';
export { run, Runner, type RunnerOptions } from './runners.js';
export {
  StreamReader,
  StreamWriter,
  StreamReaderProtocol,
  openConnection,
  startServer,
  openUnixConnection,
  startUnixServer,
  type StreamReaderOptions,
  type StreamOptions,
  type OpenConnectionOptions,
  type StartServerOptions,
  type StartUnixServerOptions,
  type ClientConnectedCallback,
  type Separator,
} from './streams.js';
export { Lock, Event, Condition, Semaphore, BoundedSemaphore, Barrier } from './locks.js';
export {
  createSubprocessExec,
  createSubprocessShell,
  Process,
  SubprocessStreamProtocol,
  PIPE,
  STDOUT,
  DEVNULL,
  type CreateSubprocessOptions,
  type SubprocessOptions,
  type StdioOption,
} from './subprocess.js';
export { SubprocessTransport, BaseSubprocessTransport } from './base-subprocess.js';
export { UnixReadPipeTransport, UnixWritePipeTransport, UnixSubprocessTransport, type PipeLike } from './unix-events.js';
export {
  Queue,
  PriorityQueue,
  LifoQueue,
  QueueEmpty,
  QueueFull,
  QueueShutDown,
  type PriorityQueueOptions,
  type QueueStorage,
} from './queues.js';
export {
  BaseSelector,
  DefaultSelector,
  EpollSelector,
  PollSelector,
  SelectSelector,
  SelectorKey,
  KeyError,
  EVENT_READ,
  EVENT_WRITE,
  availableSelectors,
  selectorClass,
  type SelectorEvent,
} from './selectors.js';
export {
  CancelledError,
  InvalidStateError,
  RuntimeError,
  TimeoutError,
  OSError,
  BlockingIOError,
  ChildProcessError,
  ConnectionError,
  BrokenPipeError,
  ConnectionAbortedError,
  ConnectionRefusedError,
  ConnectionResetError,
  FileExistsError,
  FileNotFoundError,
  InterruptedError,
  IsADirectoryError,
  NotADirectoryError,
  PermissionError,
  ProcessLookupError,
  IncompleteReadError,
  LimitOverrunError,
  SendfileNotAvailableError,
  BrokenBarrierError,
  ExceptionGroup,
  type OSErrorInfo,
} from './exceptions.js';
export { logger } from './log.js';
export { loadBinding, type NativeBinding, type NativeLoopStats } from './native.js';
export {
  runCoroutineThreadsafe,
  postToLoop,
  wrapFuture,
  ConcurrentFuture,
  LoopHandle,
  type LoopRef,
  type ExportRef,
  type PackedError,
} from './threads.js';
export { ThreadPoolExecutor, toThread, type Executor, type ExecutorFn, type ThreadPoolExecutorOptions } from './executor.js';
