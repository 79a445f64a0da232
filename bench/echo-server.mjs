#!/usr/bin/env node
// Echo server for the shared peer harness (../shared/bench/run_echo.sh):
//   node bench/echo-server.mjs --api protocol|streams [--selector NAME] [--handler generator|async] PORT
// Listens on 127.0.0.1:PORT (backlog 1024, SO_REUSEADDR; TCP_NODELAY is set
// on every accepted connection by the transport), prints nothing per
// connection, ignores resets, and exits 0 on SIGTERM.
import { Protocol, SelectorEventLoop, newEventLoop, selectorClass, startServer } from 'aionode';

const argv = process.argv.slice(2);
let api = 'protocol';
let selector = process.env.AIONODE_SELECTOR || '';
let handlerKind = 'generator';
const rest = [];
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--api') api = argv[++i];
  else if (argv[i] === '--selector') selector = argv[++i];
  else if (argv[i] === '--handler') handlerKind = argv[++i];
  else rest.push(argv[i]);
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

const loop = selector ? new SelectorEventLoop(new (selectorClass(selector))()) : newEventLoop();
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
