/**
 * Fault suite: one owner per fd (issue 8 items 1-3; reliability T1, F1/F2).
 *
 * A closed socket must never act on its old fd number: the kernel hands
 * the lowest free number to the next socket, so a write, a read, a
 * sendfile or a registration that outlives its socket lands on somebody
 * else's connection. Each test here makes the number come back on purpose
 * (the server's next accept() gets it) and checks that the new connection
 * sees nothing of the old one.
 *
 * The rule these tests pin down, on every backend:
 *   - closing a Socket (transport close/abort, sock.close()) first drops its
 *     selector registration and wakes every waiter on it, which then
 *     settles with an error, and only then closes the fd;
 *   - writes after transport.close() are dropped (asyncio's behaviour), the
 *     data buffered before close() goes to this socket only;
 *   - a raw fd closed behind the loop's back (no removeReader) loses its
 *     registration with its file; the next addReader on that number watches
 *     the new file, on epoll exactly as on poll/select.
 */
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { closeSync, constants as fsConstants, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EVENT_READ, selectorClass, sleep, waitFor, type SelectorEventLoop } from '../../lib/index.js';
import { Protocol } from '../../lib/protocols.js';
import { constants, ops, Socket } from '../../lib/socket.js';
import type { Transport } from '../../lib/transports.js';
import { isSelectorLoop, LOOPS, newLoop, selectorOnly, stopsWatching, useLoop, watches, type TestLoop } from '../helpers/loops.js';
import { fdCount } from '../helpers/loop.js';
import { sockets } from '../helpers/sockets.js';

const MiB = 1024 * 1024;

/** Server side of one connection: keeps its transport and what it got. */
class Keeper extends Protocol {
  transport: Transport | null = null;
  got: Buffer[] = [];
  lost = 0;
  lostExc: Error | undefined;
  override connectionMade(t: Transport): void {
    this.transport = t;
  }
  override dataReceived(d: Buffer): void {
    this.got.push(d);
  }
  override connectionLost(exc?: Error): void {
    this.lost++;
    this.lostExc = exc;
  }
}

function serverFd(p: Keeper): number {
  return (p.transport!.getExtraInfo('socket') as Socket).fileno();
}

describe.each(LOOPS)('fd ownership on %s', (backend) => {
  useLoop(backend);
  let loop: TestLoop;
  let baseline: number;
  const run = <T>(body: () => Promise<T>): Promise<T> => loop.runUntilComplete(body) as Promise<T>;

  beforeEach(() => {
    baseline = fdCount();
    loop = newLoop(backend);
  });
  afterEach(() => {
    if (!loop.isClosed()) loop.close();
    expect(fdCount()).toBe(baseline);
  });

  /**
   * A listening server whose connections land in `conns`, and client
   * sockets opened up front: creating a client later would take the freed
   * number itself, and the server's accept() would not get it.
   */
  async function setup(nClients: number) {
    const conns: Keeper[] = [];
    const server = await loop.createServer(() => {
      const p = new Keeper();
      conns.push(p);
      return p;
    }, '127.0.0.1', 0);
    const port = (server.sockets[0].getsockname() as [string, number])[1];
    const clients = Array.from({ length: nClients }, () => new Socket(constants().AF_INET, constants().SOCK_STREAM));
    const connect = async (i: number): Promise<Keeper> => {
      const before = conns.length;
      await waitFor(loop.sockConnect(clients[i], ['127.0.0.1', port]), 5);
      for (let k = 0; k < 500 && conns.length === before; k++) await sleep(0.002);
      expect(conns.length).toBe(before + 1);
      // Let connectionMade run.
      await sleep(0);
      return conns[before];
    };
    const done = async () => {
      for (const c of clients) c.close();
      server.close();
      await server.waitClosed();
    };
    return { conns, clients, connect, done };
  }

  /** Everything `sock` receives until EOF, an error, or `seconds` of quiet. */
  async function drain(sock: Socket, seconds: number, limit = 256 * MiB): Promise<Buffer> {
    const parts: Buffer[] = [];
    let total = 0;
    for (;;) {
      let chunk: Buffer;
      try {
        chunk = await waitFor(loop.sockRecv(sock, 256 * 1024), seconds);
      } catch {
        break;
      }
      if (chunk.length === 0) break;
      parts.push(chunk);
      total += chunk.length;
      if (total >= limit) break;
    }
    return Buffer.concat(parts);
  }

  it('drops writes after close(): the old number, now another connection, receives none of them', async () => {
    await run(async () => {
      const { clients, connect, done } = await setup(2);
      const a = await connect(0);
      const fdA = serverFd(a);
      const big = Buffer.alloc(12 * MiB, 0x61);
      a.transport!.write(big);
      // The peer has not read yet: most of it is still buffered.
      expect(a.transport!.getWriteBufferSize()).toBeGreaterThan(0);
      a.transport!.close();
      a.transport!.write('SECRET-FOR-A;');
      a.transport!.writelines([Buffer.from('LINES-FOR-A;')]);
      // A's peer reads everything: the flush completes and A's fd closes.
      const gotA = await drain(clients[0], 5);
      expect(gotA.length).toBe(big.length);
      expect(gotA.includes('SECRET')).toBe(false);
      expect(a.lost).toBe(1);
      // The next accepted connection gets A's old number.
      const b = await connect(1);
      expect(serverFd(b)).toBe(fdA);
      a.transport!.write('MORE-SECRET;');
      a.transport!.writelines([Buffer.from('LINES-SECRET;')]);
      a.transport!.abort();
      const gotB = await drain(clients[1], 0.2);
      expect(gotB.toString()).toBe('');
      expect(a.lost).toBe(1); // abort() after a finished close() is a no-op
      b.transport!.close();
      await done();
    });
  }); // issue 8 item 1

  it('drops StreamWriter writes after close() the same way', async () => {
    const { openConnection, startServer } = await import('../../lib/index.js');
    await run(async () => {
      const writers: { w: import('../../lib/streams.js').StreamWriter; fd: number }[] = [];
      const server = await startServer((_r, w) => {
        writers.push({ w, fd: (w.transport.getExtraInfo('socket') as Socket).fileno() });
      }, '127.0.0.1', 0);
      const port = (server.sockets[0].getsockname() as [string, number])[1];
      const cliB = new Socket(constants().AF_INET, constants().SOCK_STREAM);
      const [rA, wA] = await openConnection('127.0.0.1', port);
      for (let k = 0; k < 500 && writers.length < 1; k++) await sleep(0.002);
      const a = writers[0];
      a.w.write(Buffer.alloc(4 * MiB, 0x62));
      a.w.close();
      a.w.write(Buffer.from('SECRET-FOR-A;'));
      const all = await waitFor(rA.read(), 10);
      expect(all.length).toBe(4 * MiB);
      // A's server side is closed now (flushed); the client end stays open
      // so the freed number is the server's.
      for (let k = 0; k < 500 && !a.w.transport.isClosing(); k++) await sleep(0.002);
      await sleep(0.01);
      await waitFor(loop.sockConnect(cliB, ['127.0.0.1', port]), 5);
      for (let k = 0; k < 500 && writers.length < 2; k++) await sleep(0.002);
      expect(writers[1].fd).toBe(a.fd);
      a.w.write(Buffer.from('MORE-SECRET;'));
      const gotB = await drain(cliB, 0.2);
      expect(gotB.toString()).toBe('');
      wA.close();
      cliB.close();
      writers[1].w.close();
      server.close();
      await server.waitClosed();
    });
  }); // issue 8 item 1 (streams)

  it('settles a sendfile racing abort() with an error and sends nothing to the connection that reuses the fd', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'aionode-sf-'));
    const file = path.join(dir, 'big.bin');
    writeFileSync(file, Buffer.alloc(64 * MiB, 0x41));
    const fileFd = openSync(file, 'r');
    try {
      await run(async () => {
        const { clients, connect, done } = await setup(2);
        const a = await connect(0);
        const fdA = serverFd(a);
        const sending = loop.sendfile(a.transport!, fileFd);
        // Let it fill the socket buffers (the peer reads nothing yet).
        await sleep(0.05);
        expect(sending.done()).toBe(false);
        a.transport!.abort();
        const b = await connect(1);
        // A selector loop closes A's fd at once, so B gets its number. A
        // proactor keeps the number taken until the sendfile op's completion
        // has arrived (NativeProactor.closeFd), so B cannot get it yet:
        // that is how a proactor makes the race below impossible.
        expect(serverFd(b) === fdA).toBe(isSelectorLoop(backend));
        // The sendfile ends with an error instead of hanging...
        const outcome = await waitFor(sending, 5).then(
          () => 'resolved',
          (e: Error) => e,
        );
        expect(outcome).toBeInstanceOf(Error);
        // ...and B is untouched: it gets nothing and stays usable.
        const gotB = await drain(clients[1], 0.3);
        expect(gotB.length).toBe(0);
        b.transport!.write('hello B');
        const hello = await waitFor(loop.sockRecv(clients[1], 100), 5);
        expect(hello.toString()).toBe('hello B');
        expect(b.lost).toBe(0);
        b.transport!.close();
        await done();
      });
    } finally {
      closeSync(fileFd);
      rmSync(dir, { recursive: true, force: true });
    }
  }); // issue 8 item 2

  it('settles a sock* call in flight when its socket is closed (EBADF), and unregisters first', async () => {
    await run(async () => {
      const [x, y] = sockets.pair();
      const a = new Socket(constants().AF_UNIX, constants().SOCK_STREAM, x);
      const peer = new Socket(constants().AF_UNIX, constants().SOCK_STREAM, y);
      const pending = loop.sockRecv(a, 10);
      await sleep(0.01);
      expect(watches(loop, x)).toBe(true);
      a.close();
      // A selector unregisters at once; a proactor's op ends with its completion.
      expect(await stopsWatching(loop, x)).toBe(true);
      const err = await waitFor(pending, 2).then(
        () => null,
        (e: NodeJS.ErrnoException) => e,
      );
      expect(err?.code).toBe('EBADF');
      peer.close();
    });
  }); // issue 8 item 1 (one owner per fd)

  it('watches a reused fd number when addReader is called again after a close without removeReader', async () => {
    await run(async () => {
      const { clients, connect, done } = await setup(2);
      const a = await connect(0);
      // A raw fd under addReader, closed behind the loop's back.
      const raw = new Socket(constants().AF_INET, constants().SOCK_STREAM);
      const rawFd = raw.detach();
      let oldCalls = 0;
      loop.addReader(rawFd, () => oldCalls++);
      ops().close(rawFd);
      // A new socket, made outside aionode (so nothing purges the stale
      // registration), takes the same number: node's own fs here.
      const dir = mkdtempSync(path.join(tmpdir(), 'aionode-fd-'));
      const p = path.join(dir, 'fifo');
      const { execFileSync } = await import('node:child_process');
      execFileSync('mkfifo', [p]);
      const rfd = openSync(p, (await import('node:fs')).constants.O_RDONLY | (await import('node:fs')).constants.O_NONBLOCK);
      const wfd = openSync(p, 'w');
      try {
        expect(rfd).toBe(rawFd);
        let newCalls = 0;
        loop.addReader(rfd, () => {
          newCalls++;
          loop.removeReader(rfd);
        });
        writeFileSync(wfd, 'x');
        for (let k = 0; k < 500 && newCalls === 0; k++) await sleep(0.002);
        expect(newCalls).toBe(1);
        expect(oldCalls).toBe(0);
      } finally {
        closeSync(wfd);
        closeSync(rfd);
        rmSync(dir, { recursive: true, force: true });
      }
      a.transport!.close();
      void clients;
      void connect;
      await done();
    });
  }); // issue 8 item 3

  selectorOnly(backend, 'the stale-registration purge is a selector-key mechanism')('drops a stale registration when aionode opens a socket on its number, and never reports the old one (T1)', async () => {
    await run(async () => {
      const raw = new Socket(constants().AF_INET, constants().SOCK_STREAM);
      const rawFd = raw.detach();
      let oldCalls = 0;
      loop.addWriter(rawFd, () => oldCalls++);
      ops().close(rawFd); // behind the loop's back
      const before = loop._selector.staleDropped;
      const fresh = new Socket(constants().AF_INET, constants().SOCK_STREAM);
      expect(fresh.fileno()).toBe(rawFd);
      expect(loop._selector.staleDropped).toBe(before + 1);
      expect(loop._selector.getMap().has(rawFd)).toBe(false);
      // A fresh, unconnected socket polls writable (HUP) on every backend:
      // had the old registration survived, its callback would run now.
      await sleep(0.05);
      expect(oldCalls).toBe(0);
      fresh.close();
    });
  }); // reliability T1

  it('closing a transport and opening its number in the same callback delivers no stale event (T1)', async () => {
    await run(async () => {
      const { clients, connect, done } = await setup(2);
      const a = await connect(0);
      const fdA = serverFd(a);
      // Data pending for A in the same batch as our close.
      await waitFor(loop.sockSendall(clients[0], Buffer.alloc(1000, 1)), 5);
      await sleep(0.02);
      const seenBefore = a.got.length;
      a.transport!.abort();
      await sleep(0); // connectionLost runs: the fd closes
      expect(a.lost).toBe(1);
      const b = await connect(1);
      expect(serverFd(b)).toBe(fdA);
      await waitFor(loop.sockSendall(clients[1], 'for B'), 5);
      for (let k = 0; k < 500 && b.got.length === 0; k++) await sleep(0.002);
      expect(Buffer.concat(b.got).toString()).toBe('for B');
      expect(a.got.length).toBe(seenBefore); // A never hears B's data
      b.transport!.close();
      await done();
    });
  }); // reliability T1

  selectorOnly(backend, 'drives a bare selector of this backend')('lets a registration die with its file: closed behind the selector\'s back, the number reused outside aionode, nothing is reported until re-filed', () => {
    // The documented behaviour, the same on every backend: epoll's kernel
    // forgets a closed file; poll and select check the file's identity.
    const sel = new (selectorClass(backend))();
    const dir = mkdtempSync(path.join(tmpdir(), 'aionode-reuse-'));
    try {
      const [x, y] = sockets.pair();
      sockets.write(y, 'old data'); // x is readable
      sel.register(x, EVENT_READ, 'old');
      expect(sel.select(0).map(([k]) => k.data)).toEqual(['old']);
      sockets.close(x); // behind the selector's back
      for (let i = 0; i < 3; i++) expect(sel.select(0)).toEqual([]); // no POLLNVAL/EBADF storm
      const fifo = path.join(dir, 'fifo');
      execFileSync('mkfifo', [fifo]);
      const rfd = openSync(fifo, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
      const wfd = openSync(fifo, 'w');
      try {
        expect(rfd).toBe(x);
        writeFileSync(wfd, 'new data'); // the new file at that number is readable
        expect(sel.select(0)).toEqual([]);
        // Re-filing the number watches the file it names now.
        sel._refile(rfd, EVENT_READ, 'new');
        expect(sel.select(0).map(([k]) => k.data)).toEqual(['new']);
        sel.unregister(rfd);
      } finally {
        closeSync(wfd);
        closeSync(rfd);
      }
      sockets.close(y);
    } finally {
      sel.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }); // issue 8 item 3 / Deliver 5: one behaviour on every backend

  it('hashes what a connection sends after a neighbour closes mid-write: exact bytes, no foreign data', async () => {
    await run(async () => {
      const { clients, connect, done } = await setup(2);
      const a = await connect(0);
      const b = await connect(1);
      const payload = Buffer.alloc(2 * MiB);
      for (let i = 0; i < payload.length; i++) payload[i] = (i * 31) & 0xff;
      a.transport!.write(Buffer.alloc(8 * MiB, 0x5a));
      a.transport!.abort(); // discards A's buffer
      b.transport!.write(payload);
      b.transport!.close();
      const gotB = await drain(clients[1], 5);
      expect(createHash('sha256').update(gotB).digest('hex')).toBe(createHash('sha256').update(payload).digest('hex'));
      await done();
    });
  });
});
