/**
 * The proactor loop's op layer on io_uring: submissions the proactor
 * refuses, completions for tokens no longer live, the EAGAIN retry (poll
 * for readiness, then submit again), cancelling a finished op, and several
 * completions of one multishot op in one batch.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { IoUringProactor, ProactorEventLoop, Socket, availableProactors, type Future } from '../lib/index.js';
import { binding } from '../lib/native.js';
import { constants } from '../lib/socket.js';
import type { Op } from '../lib/proactor-events.js';
import { sockets } from './helpers/sockets.js';

const HAVE_IO_URING = (() => {
  try {
    return availableProactors().includes('io_uring');
  } catch {
    return false;
  }
})();

describe.runIf(HAVE_IO_URING)('proactor op layer on io_uring', () => {
  let loop: ProactorEventLoop;
  let open: Socket[];
  let ownedBefore: number;

  beforeEach(() => {
    ownedBefore = binding().ownedFds();
    loop = new ProactorEventLoop(new IoUringProactor());
    open = [];
  });

  afterEach(() => {
    for (const s of open) s.close();
    const proactor = loop._proactor;
    loop.close();
    expect(proactor.pending).toBe(0);
    expect(binding().ownedFds()).toBe(ownedBefore);
  });

  function pair(): [Socket, Socket] {
    const [a, b] = sockets.pair();
    const c = constants();
    const s: [Socket, Socket] = [new Socket(c.AF_UNIX, c.SOCK_STREAM, a), new Socket(c.AF_UNIX, c.SOCK_STREAM, b)];
    open.push(...s);
    return s;
  }

  async function passes(n: number): Promise<void> {
    for (let i = 0; i < n; i++) {
      const f: Future<void> = loop.createFuture<void>();
      loop.callSoon(() => f.setResult(undefined));
      await f;
    }
  }

  it('reports a refused submission once, from a later pass, like a completion', async () => {
    const got: number[] = [];
    const op = loop._submit('test', 0, 0, () => -constants().EBADF, (r) => got.push(r));
    expect(got).toEqual([]); // never from inside the call
    expect(loop._isLive(op)).toBe(false);
    await loop.runUntilComplete(() => passes(3));
    expect(got).toEqual([-constants().EBADF]);
  });

  it('retries an op that completes with EAGAIN after a poll for readiness; a stale completion is ignored', async () => {
    const [a, b] = pair();
    const fd = a.fileno();
    const got: number[] = [];
    const p = loop._p;
    // A poll op stands for an op the kernel answered with EAGAIN: its
    // token is made stale by hand, so its real completion must be ignored.
    const op: Op = loop._submit('test', fd, 1, (t) => p.poll(t, fd, 1), (r) => got.push(r));
    const firstToken = op.token;
    (loop as unknown as { _processEvent(t: number, r: number): void })._processEvent(firstToken, -constants().EAGAIN);
    await loop.runUntilComplete(() => passes(2));
    // Retrying: a poll op is out for readiness (fresh token), nothing reported yet.
    expect(got).toEqual([]);
    expect(op.token).not.toBe(firstToken);
    sockets.write(b.fileno(), 'x');
    await loop.runUntilComplete(async () => {
      for (let i = 0; i < 200 && got.length === 0; i++) await passes(1);
    });
    expect(got).toEqual([1]); // the op's own result after the retry: readable
    await loop.runUntilComplete(() => passes(3));
    expect(got).toEqual([1]); // the stale first completion said nothing
  });

  it('cancelling an op that already completed is refused quietly', async () => {
    const [a, b] = pair();
    const fd = a.fileno();
    const got: number[] = [];
    sockets.write(b.fileno(), 'x');
    const op = loop._submit('test', fd, 0, (t) => loop._p.poll(t, fd, 1), (r) => got.push(r));
    await loop.runUntilComplete(async () => {
      for (let i = 0; i < 200 && got.length === 0; i++) await passes(1);
    });
    expect(got).toEqual([1]);
    expect(loop._cancelOp(op)).toBe(false);
  });

  it('delivers several completions of one acceptMany op from one batch', async () => {
    const c = constants();
    const listener = new Socket(c.AF_INET, c.SOCK_STREAM);
    open.push(listener);
    listener.bind(['127.0.0.1', 0]);
    listener.listen(16);
    const port = (listener.getsockname() as [string, number])[1];
    const fds: number[] = [];
    const lfd = listener.fileno();
    const op = loop._submit('acceptMany', lfd, 0, (t) => loop._p.acceptMany(t, lfd), (r) => fds.push(r), { multi: true });
    const clients = [0, 1, 2].map(() => {
      const s = new Socket(c.AF_INET, c.SOCK_STREAM);
      open.push(s);
      return s;
    });
    await loop.runUntilComplete(async () => {
      await Promise.all(clients.map((s) => loop.sockConnect(s, ['127.0.0.1', port])));
      for (let i = 0; i < 200 && fds.length < 3; i++) await passes(1);
    });
    expect(fds.length).toBe(3);
    expect(fds.every((fd) => fd >= 0)).toBe(true);
    expect(loop._isLive(op)).toBe(true); // multishot: still accepting
    for (const fd of fds) open.push(new Socket(c.AF_INET, c.SOCK_STREAM, fd));
    loop._cancelOp(op);
    await loop.runUntilComplete(async () => {
      for (let i = 0; i < 200 && loop._isLive(op); i++) await passes(1);
    });
    expect(fds.length).toBe(4);
    expect(fds[3]).toBe(-125); // ECANCELED ends it
    expect(loop._isLive(op)).toBe(false);
  });
});
