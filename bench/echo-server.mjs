#!/usr/bin/env node
// Echo server for the shared peer harness (../shared/bench/run_echo.sh):
//   node bench/echo-server.mjs --api protocol|streams [--loop NAME] [--handler generator|async] PORT
// --loop epoll|poll|select runs a SelectorEventLoop on that selector;
// --loop io_uring runs new ProactorEventLoop(new IoUringProactor()).
// --selector NAME is the older spelling, for the selector names only.
// Without either: AIONODE_SELECTOR, else newEventLoop() (AIONODE_LOOP).
// Listens on 127.0.0.1:PORT (backlog 1024, SO_REUSEADDR; TCP_NODELAY is set
// on every accepted connection by the transport), prints nothing per
// connection, ignores resets, and exits 0 on SIGTERM.
import * as aionode from 'aionode';

const { Protocol, SelectorEventLoop, newEventLoop, selectorClass, startServer } = aionode;
const SELECTORS = ['epoll', 'poll', 'select'];
const LOOPS = [...SELECTORS, 'io_uring'];

const argv = process.argv.slice(2);
let api = 'protocol';
let loopName = process.env.AIONODE_SELECTOR || '';
let handlerKind = 'generator';
const rest = [];
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--api') api = argv[++i];
  else if (argv[i] === '--loop') loopName = loopArg('--loop', argv[++i], LOOPS);
  else if (argv[i] === '--selector') loopName = loopArg('--selector', argv[++i], SELECTORS);
  else if (argv[i] === '--handler') handlerKind = argv[++i];
  else rest.push(argv[i]);
}

/** The value of `flag` if it is one of `allowed`; else a clear error and exit 2. */
function loopArg(flag, value, allowed) {
  if (!allowed.includes(value)) {
    console.error(`echo-server: expected "${flag}" to be one of ${allowed.join(', ')}, got ${JSON.stringify(value ?? null)}`);
    process.exit(2);
  }
  return value;
}

/** The loop named `name` ('' = the default), or exit 2 naming why it cannot run here. */
function makeLoop(name) {
  if (name === '') return newEventLoop();
  if (name !== 'io_uring') return new SelectorEventLoop(new (selectorClass(name))());
  const { ProactorEventLoop, IoUringProactor } = aionode;
  if (typeof ProactorEventLoop !== 'function' || typeof IoUringProactor !== 'function') {
    console.error('echo-server: --loop io_uring: this aionode build exports no ProactorEventLoop/IoUringProactor');
    process.exit(2);
  }
  try {
    return new ProactorEventLoop(new IoUringProactor());
  } catch (e) {
    console.error(`echo-server: --loop io_uring: io_uring is not usable here: ${e?.message ?? e}`);
    process.exit(2);
  }
}
const port = Number(rest[0] ?? 25000);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error(`echo-server: expected a port number, got ${rest[0]}`);
  process.exit(2);
}
if (api !== 'protocol' && api !== 'streams') {
  console.error(`echo-server: --api must be protocol or streams, got ${api}`);
  process.exit(2);
}

/** asyncio-proto's EchoProtocol: data_received -> transport.write. */
class Echo extends Protocol {
  transport = null;
  connectionMade(transport) {
    this.transport = transport;
  }
  dataReceived(data) {
    this.transport.write(data);
  }
  connectionLost() {
    this.transport = null;
  }
}

/**
 * asyncio-streams' handler: read(100000) / write / drain until EOF. A
 * generator coroutine, aionode's exact counterpart of an asyncio coroutine
 * (`yield*` where Python writes `await`); `--handler async` uses an async
 * function instead.
 */
function* handleGen(reader, writer) {
  try {
    for (;;) {
      const data = yield* reader.read(100000);
      if (data.length === 0) break;
      writer.write(data);
      yield* writer.drain();
    }
  } catch {
    // Resets are the client's business.
  } finally {
    writer.close();
  }
}

async function handleAsync(reader, writer) {
  try {
    for (;;) {
      const data = await reader.read(100000);
      if (data.length === 0) break;
      writer.write(data);
      await writer.drain();
    }
  } catch {
    // Resets are the client's business.
  } finally {
    writer.close();
  }
}

const handle = handlerKind === 'async' ? handleAsync : handleGen;

const loop = makeLoop(loopName);
loop.setExceptionHandler(() => {}); // resets and aborted connections are expected under load
const server = await loop.runUntilComplete(() =>
  api === 'protocol'
    ? loop.createServer(() => new Echo(), '127.0.0.1', port, { backlog: 1024, reuseAddress: true })
    : startServer(handle, '127.0.0.1', port, { backlog: 1024, reuseAddress: true }),
);
process.on('SIGTERM', () => {
  server.close();
  loop.stop();
});
console.log(`aionode echo server (${api}, ${loop.backend}) on 127.0.0.1:${port}`);
await loop.runForever();
process.exit(0);
