/**
 * T20 (fault F16: fds leak into children), reliability plan §4.
 *
 * With the loop running and every kind of fd aionode makes open — the
 * selector's fd (epoll) and wake-up fds, the timer fd, a listening
 * socket, an accepted and a connecting/connected socket, a raw Socket, an
 * addon socketpair, a UDP endpoint, pending timers and a pending
 * sockAccept — the test spawns `ls -l /proc/self/fd` through
 * node:child_process with default stdio.
 *
 * Survived means: the child sees only what a child spawned before any
 * aionode fd existed sees (0, 1, 2, the directory fd `ls` opens, and
 * whatever the environment passes down): no extra fd number, and none of
 * the child's fds points at one of our files (same socket inode or an
 * epoll/timerfd/eventfd anon inode).
 */
import { readlinkSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { DatagramProtocol, Protocol, sleep, waitFor } from '../../lib/index.js';
import { Socket, constants } from '../../lib/socket.js';
import { faultHarness, loopKinds, runChild } from '../helpers/faults.js';
import { fdTable, serverPort } from '../helpers/net.js';
import { sockets } from '../helpers/sockets.js';

const C = constants();

/** fd number -> target, as the spawned child lists its own fds. */
async function childFds(): Promise<Map<string, string>> {
  const r = await runChild('ls', ['-l', '/proc/self/fd'], 10_000);
  expect(r.code, r.stderr).toBe(0);
  const out = new Map<string, string>();
  for (const line of r.stdout.split('\n')) {
    const m = / (\d+) -> (.*)$/.exec(line);
    if (m) out.set(m[1], m[2]);
  }
  return out;
}

let baseline: Map<string, string>;
beforeAll(async () => {
  // Before any loop exists: what every child sees anyway.
  baseline = await childFds();
});

describe.each(loopKinds())('T20 CLOEXEC on %s', (kind) => {
  const h = faultHarness(kind);

  it('a child spawned with the loop and every kind of aionode fd live inherits none of them', async () => {
    await h.run(async () => {
      const server = await h.loop.createServer(() => new Protocol(), '127.0.0.1', 0);
      const port = serverPort(server);
      const [ct] = await waitFor(h.loop.createConnection(() => new Protocol(), '127.0.0.1', port), 5);
      const raw = new Socket(C.AF_INET, C.SOCK_STREAM);
      const listener = new Socket(C.AF_INET, C.SOCK_STREAM);
      listener.bind(['127.0.0.1', 0]);
      listener.listen(1);
      const pendingAccept = h.loop.sockAccept(listener);
      const [pa, pb] = sockets.pair();
      const [ut] = await waitFor(h.loop.createDatagramEndpoint(() => new DatagramProtocol(), { localAddr: ['127.0.0.1', 0] }), 5);
      const timers = [h.loop.callLater(60, () => undefined), h.loop.callLater(0.5, () => undefined)];
      await sleep(0.01);
      try {
        // Our fds: everything opened since the loop was made (and the loop's own, opened in beforeEach).
        const ours = new Map<string, string>();
        for (const [fd, target] of fdTable()) if (!baseline.has(fd) || baseline.get(fd) !== target) ours.set(fd, target);
        const ourTargets = new Set([...ours.values()].filter((t) => t.startsWith('socket:') || t.startsWith('anon_inode:')));
        expect(ourTargets.size, 'the test holds aionode fds at all').toBeGreaterThanOrEqual(7);

        const child = await childFds();
        const extra: string[] = [];
        for (const [fd, target] of child) {
          if (['0', '1', '2'].includes(fd)) continue;
          const base = baseline.get(fd);
          const sameKind = base !== undefined && (base === target || (base.startsWith('/proc/') && target.startsWith('/proc/')));
          if (!sameKind || ourTargets.has(target) || target.startsWith('anon_inode:')) extra.push(`${fd} -> ${target}`);
        }
        expect(extra, `child inherited; ours were ${[...ours].map(([f, t]) => `${f} -> ${t}`).join(', ')}`).toEqual([]);
        for (const [fd, target] of child) if (!['0', '1', '2'].includes(fd)) expect(ourTargets.has(target)).toBe(false);
        // The fds were really live while the child ran.
        expect(readlinkSync(`/proc/self/fd/${raw.fileno()}`)).toMatch(/^socket:/);
      } finally {
        timers.forEach((t) => t.cancel());
        pendingAccept.cancel();
        await sleep(0);
        ct.close();
        ut.close();
        raw.close();
        listener.close();
        sockets.close(pa, pb);
        server.close();
        await waitFor(server.waitClosed(), 5);
      }
    });
  });
});
