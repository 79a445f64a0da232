/**
 * Many connections at once on the heavy-suite loops (HEAVY_LOOPS of
 * test/helpers/loops.ts: epoll, io_uring, poll; select only when a run is
 * narrowed to it, with fewer connections under its FD_SETSIZE cap): 1,000 concurrent
 * loopback clients against one server, each doing one echo round trip, then
 * connection churn; fds back to baseline after each (reliability.md
 * promise 2, the tokio simple_echo_tcp leak-smoke template).
 */
import { readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { gather, waitFor, type ExceptionContext, type SelectorEventLoop } from '../lib/index.js';
import { HEAVY_LOOPS, newLoop, useLoop, type TestLoop } from './helpers/loops.js';
import { fdCount } from './helpers/loop.js';
import {
  ConnTracker,
  EchoProtocol,
  TrackedProtocol,
  drainAndClose,
  fdTable,
  fdsOpenedSince,
  serverPort,
  settleFds,
} from './helpers/net.js';

const CONNECTIONS = 1000;
// select(2) cannot watch fds >= FD_SETSIZE (1024); both ends of every
// connection live in this process, so select gets what fits under it.
const SELECT_CONNECTIONS = 400;

/** The soft RLIMIT_NOFILE of this process (Infinity when unlimited). */
function softFdLimit(): number {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const soft = line?.split(/\s{2,}/)[1];
    return soft === undefined || soft === 'unlimited' ? Infinity : Number(soft);
  } catch {
    return Infinity;
  }
}

// Two fds per connection (client and server end) plus headroom.
const NEEDED_FDS = 2 * CONNECTIONS + 200;
const ENOUGH_FDS = softFdLimit() >= NEEDED_FDS;
if (!ENOUGH_FDS) {
  console.warn(`net-stress skipped: RLIMIT_NOFILE soft limit ${softFdLimit()} < ${NEEDED_FDS} needed (raise it with ulimit -n)`);
}

describe.runIf(ENOUGH_FDS).each(HEAVY_LOOPS)('many connections on %s', (backend) => {
  useLoop(backend);
  let loop: TestLoop;
  let errors: ExceptionContext[];
  let fdsBefore: number;
  let fdsTableBefore: Map<string, string>;
  let tr: ConnTracker;
  const n = backend === 'select' ? SELECT_CONNECTIONS : CONNECTIONS;

  beforeEach(() => {
    fdsBefore = fdCount();
    fdsTableBefore = fdTable();
    loop = newLoop(backend);
    errors = [];
    tr = new ConnTracker();
    loop.setExceptionHandler((_l, ctx) => errors.push(ctx));
  });

  afterEach(async () => {
    await drainAndClose(loop);
    expect(errors.map((e) => `${e.message}: ${String(e.exception)}`)).toEqual([]);
    expect(tr.violations().slice(0, 5)).toEqual([]);
    const left = await settleFds(fdsBefore, 3000);
    expect(left, `fds leaked: ${fdsOpenedSince(fdsTableBefore).slice(0, 10).join(', ')}`).toBe(fdsBefore);
  });

  it(`completes ${backend === 'select' ? SELECT_CONNECTIONS : CONNECTIONS} concurrent connections, one echo round trip each`, async () => {
    let peakFds = 0;
    await loop.runUntilComplete(async () => {
      const conns: EchoProtocol[] = [];
      const server = await loop.createServer(
        () => {
          const p = new EchoProtocol(loop, tr, `srv#${conns.length}`);
          p.keep = false;
          conns.push(p);
          return p;
        },
        '127.0.0.1',
        0,
        { backlog: 1024 },
      );
      const port = serverPort(server);
      const one = async (i: number): Promise<string> => {
        const [t, p] = await loop.createConnection(() => new TrackedProtocol(loop, tr, `cli#${i}`), '127.0.0.1', port);
        const msg = `ping ${i} `.repeat(1 + (i % 7));
        t.write(msg);
        await p.waitBytes(msg.length);
        peakFds = Math.max(peakFds, fdCount());
        const got = p.data().toString();
        t.close();
        await p.lostFut;
        return got === msg ? 'ok' : `cli#${i}: got ${JSON.stringify(got.slice(0, 40))}`;
      };
      const results = await waitFor(gather(Array.from({ length: n }, (_, i) => loop.createTask(one(i)))), 30);
      expect(results.filter((r) => r !== 'ok')).toEqual([]);
      expect(conns.length).toBe(n);
      server.close();
      await waitFor(server.waitClosed(), 10);
      expect(conns.every((c) => c.lost === 1 && c.lostExc === undefined)).toBe(true);
    });
    // They really were open at the same time (most of them, at least).
    expect(peakFds - fdsBefore).toBeGreaterThan(n);
  }, 60_000);

  it('churns through 2,000 short connections, 100 at a time, without leaking', async () => {
    await loop.runUntilComplete(async () => {
      const server = await loop.createServer(() => new EchoProtocol(loop, null, 'srv'), '127.0.0.1', 0);
      const port = serverPort(server);
      let ok = 0;
      for (let batch = 0; batch < 20; batch++) {
        await waitFor(
          gather(
            Array.from({ length: 100 }, (_, i) =>
              loop.createTask(async () => {
                const [t, p] = await loop.createConnection(() => new TrackedProtocol(loop, tr, `b${batch}.${i}`), '127.0.0.1', port);
                p.keep = false;
                t.write('x');
                await p.waitBytes(1);
                t.close();
                await p.lostFut;
                ok++;
              }),
            ),
          ),
          15,
        );
      }
      expect(ok).toBe(2000);
      server.close();
      server.closeClients();
      await waitFor(server.waitClosed(), 10);
    });
  }, 60_000);
});
