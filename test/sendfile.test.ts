/**
 * loop.sockSendfile and loop.sendfile: zero-copy sendfile(2), and the
 * read-and-send fallback, on every loop of test/helpers/loops.ts.
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Protocol, SendfileNotAvailableError, Socket, socketConstants, type SelectorEventLoop, type Transport } from '../lib/index.js';
import { LOOPS, newLoop, useLoop, type TestLoop } from './helpers/loops.js';
import { fdCount } from './helpers/loop.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

class Collect extends Protocol {
  chunks: Buffer[] = [];
  transport!: Transport;
  done: Promise<Buffer>;
  #resolve!: (b: Buffer) => void;
  constructor() {
    super();
    this.done = new Promise((r) => (this.#resolve = r));
  }
  override connectionMade(t: Transport): void {
    this.transport = t;
  }
  override dataReceived(d: Buffer): void {
    this.chunks.push(Buffer.from(d));
  }
  override eofReceived(): boolean {
    this.#resolve(Buffer.concat(this.chunks));
    return false;
  }
}

describe.each(LOOPS)('sendfile on %s', (backend) => {
  useLoop(backend);
  let loop: TestLoop;
  let dir: string;
  let fds: number[];
  let before: number;
  const data = randomBytes(3 * 1024 * 1024 + 17);

  beforeEach(() => {
    before = fdCount();
    loop = newLoop(backend);
    dir = mkdtempSync(path.join(tmpdir(), 'aionode-sendfile-'));
    writeFileSync(path.join(dir, 'f'), data);
    fds = [];
  });
  afterEach(() => {
    loop.close();
    for (const fd of fds) closeSync(fd);
    rmSync(dir, { recursive: true });
    expect(fdCount()).toBe(before);
  });

  function openFile(): number {
    const fd = openSync(path.join(dir, 'f'), 'r');
    fds.push(fd);
    return fd;
  }

  async function withServer(body: (port: number, received: Promise<Buffer>) => Promise<void>): Promise<void> {
    await loop.runUntilComplete(async () => {
      let proto!: Collect;
      const server = await loop.createServer(() => (proto = new Collect()), '127.0.0.1', 0);
      const port = (server.sockets[0].getsockname() as [string, number])[1];
      const received = new Promise<Buffer>((resolve) => {
        const check = (): void => {
          if (proto) void proto.done.then(resolve);
          else loop.callLater(0.001, check);
        };
        check();
      });
      await body(port, received);
      server.close();
      await server.waitClosed();
    });
  }

  it('sends a whole file over a socket with sockSendfile', async () => {
    await withServer(async (port, received) => {
      const c = socketConstants();
      const sock = new Socket(c.AF_INET, c.SOCK_STREAM);
      await loop.sockConnect(sock, ['127.0.0.1', port]);
      const n = await loop.sockSendfile(sock, openFile());
      sock.shutdown(c.SHUT_WR);
      expect(n).toBe(data.length);
      expect(sha(await received)).toBe(sha(data));
      sock.close();
    });
  }); // CPython test_sendfile: test_sock_sendfile_success

  it('honours offset and count', async () => {
    await withServer(async (port, received) => {
      const c = socketConstants();
      const sock = new Socket(c.AF_INET, c.SOCK_STREAM);
      await loop.sockConnect(sock, ['127.0.0.1', port]);
      const n = await loop.sockSendfile(sock, { fd: openFile() }, 1000, 2000);
      sock.shutdown(c.SHUT_WR);
      expect(n).toBe(2000);
      expect((await received).equals(data.subarray(1000, 3000))).toBe(true);
      sock.close();
    });
  }); // CPython test_sendfile: test_sock_sendfile_mix_with_regular_send (offset/count)

  it('sends a file over a transport with loop.sendfile, after what was written before', async () => {
    await withServer(async (port, received) => {
      const [transport] = await loop.createConnection(() => new Protocol(), '127.0.0.1', port);
      transport.write('head:');
      const n = await loop.sendfile(transport, openFile());
      transport.write(':tail');
      transport.writeEof();
      expect(n).toBe(data.length);
      const got = await received;
      expect(sha(got)).toBe(sha(Buffer.concat([Buffer.from('head:'), data, Buffer.from(':tail')])));
      transport.close();
    });
  }); // CPython test_sendfile: test_sendfile

  it('falls back to read and send for what sendfile(2) cannot read, or refuses when told to', async () => {
    await withServer(async (port, received) => {
      const c = socketConstants();
      const sock = new Socket(c.AF_INET, c.SOCK_STREAM);
      await loop.sockConnect(sock, ['127.0.0.1', port]);
      // A directory fd: sendfile(2) gives EINVAL.
      const dirFd = openSync(dir, 'r');
      fds.push(dirFd);
      await expect(loop.sockSendfile(sock, dirFd, 0, undefined, false)).rejects.toThrow(SendfileNotAvailableError);
      const n = await loop.sockSendfile(sock, openFile(), 0, 5000, true);
      expect(n).toBe(5000);
      sock.shutdown(c.SHUT_WR);
      expect((await received).equals(data.subarray(0, 5000))).toBe(true);
      sock.close();
    });
  }); // CPython test_sendfile: test_sock_sendfile_not_available

  it('rejects bad arguments with messages naming them', () => {
    const c = socketConstants();
    const sock = new Socket(c.AF_INET, c.SOCK_STREAM);
    try {
      expect(() => loop.sockSendfile(sock, 'x' as never)).toThrow(/Expected "file" to be an fd/);
      expect(() => loop.sockSendfile(sock, 0, -1)).toThrow(/Expected "offset" to be a non-negative integer, got -1/);
      expect(() => loop.sockSendfile(sock, 0, 0, 0)).toThrow(/Expected "count" to be a positive integer, got 0/);
      const udp = new Socket(c.AF_INET, c.SOCK_DGRAM);
      expect(() => loop.sockSendfile(udp, 0)).toThrow('only SOCK_STREAM type sockets are supported');
      udp.close();
    } finally {
      sock.close();
    }
  }); // CPython test_sendfile: test_sock_sendfile_not_a_file / test_negative_offset
});
