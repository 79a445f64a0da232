/**
 * T3 (fault F3: EMFILE storm on accept), reliability plan §4, CI size.
 *
 * An aionode echo server runs in a child process under
 * `prlimit --nofile=64:64` (test/fixtures/faults/t03-emfile-server.mjs):
 * Node itself uses ~20 fds, so about 40 connections fit. The parent opens
 * 200 node:net clients at once (each sends one byte), holds them for the
 * storm, then destroys them all, and finally checks with a fresh client.
 *
 * Survived means:
 *  - the child neither crashes nor exits; the listener stays open (the
 *    server keeps serving and its socket keeps its fd);
 *  - the exception handler got EMFILE (and no other error);
 *  - an outgoing createConnection from the starved child rejects with
 *    EMFILE and leaves no selector registration behind;
 *  - after fds free up, accepting resumes within 1.5 s (the loop backs off
 *    for 1 s as CPython does, then retries);
 *  - the server does not spin: its CPU over the storm window is < 20 % of
 *    one core (process.cpuUsage() in the child);
 *  - a client connecting after the storm gets its echo; every connection
 *    the child accepted is closed again (live == 0).
 * Skipped (with the reason) where util-linux `prlimit` is missing.
 */
import * as net from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { faultHarness, fixture, JsonChild, loopKinds, ms, which } from '../helpers/faults.js';
import { isSelectorLoop } from '../helpers/loops.js';

const PRLIMIT = which('prlimit');
const CLIENTS = 200;

/** One node:net client: resolves 'connected' or the error code; never rejects. */
function client(port: number, all: net.Socket[]): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    all.push(s);
    s.on('connect', () => {
      s.write('x');
      resolve('connected');
    });
    s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
    s.on('close', () => resolve('closed'));
  });
}

/** Echo round trip on a fresh connection, bounded. */
function probe(port: number, timeoutMs: number): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    const t = setTimeout(() => {
      s.destroy();
      resolve('timeout');
    }, timeoutMs);
    s.on('connect', () => s.write('probe'));
    s.on('data', (d) => {
      if (d.toString() === 'probe') {
        clearTimeout(t);
        s.destroy();
        resolve('echoed');
      }
    });
    s.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(t);
      resolve(e.code ?? 'error');
    });
  });
}

// A heavy suite: epoll, io_uring and poll only (HEAVY_LOOPS, test/helpers/loops.ts).
describe.each(loopKinds({ heavy: true }))('T3 EMFILE storm on %s', (kind) => {
  const h = faultHarness(kind);

  it.skipIf(PRLIMIT === null)(
    `survives ${CLIENTS} simultaneous clients under a 64-fd limit: listener open, EMFILE reported, no spin, accepting resumes`,
    async () => {
      const child = new JsonChild(PRLIMIT!, ['--nofile=64:64', process.execPath, fixture('t03-emfile-server.mjs'), kind.name]);
      h.defer(() => child.kill());
      const socks: net.Socket[] = [];
      h.defer(() => socks.forEach((s) => s.destroy()));
      const { port } = await child.next<{ port: number }>(ms(10_000));
      child.send('mark');
      await child.next(ms(5000));

      // The storm: all at once, held for 2 s.
      const results = Promise.all(Array.from({ length: CLIENTS }, () => client(port, socks)));
      await delay(2000);
      child.send('report');
      const during = await child.next(ms(5000));
      expect(during.otherErrors).toEqual([]);
      expect(during.emfile, 'the exception handler saw EMFILE').toBeGreaterThan(0);
      expect(during.serving).toBe(true);
      expect(during.listenerFd).toBeGreaterThanOrEqual(0);
      expect(during.maxLive).toBeGreaterThan(10);
      expect(during.maxLive).toBeLessThan(64);
      // An outgoing connection from the starved process fails cleanly.
      child.send('connect');
      const conn = await child.next(ms(5000));
      expect(conn.connect).toBe('EMFILE');
      // Selector loops: no key left behind. A proactor's ops are not keyed
      // by fd, so its fixture reports null here.
      expect(conn.registrationsDelta).toBe(isSelectorLoop(kind.name) ? 0 : null);

      // Free everything, let the child drain its backlog.
      for (const s of socks) s.destroy();
      await results;
      // Settled: nothing live and no new accept for longer than the 1 s back-off.
      const report = async (): Promise<any> => {
        child.send('report');
        return child.next(ms(5000));
      };
      let deadline = Date.now() + ms(12_000);
      let after = await report();
      let stableSince = Date.now();
      for (let lastMade = -1; Date.now() < deadline; ) {
        await delay(250);
        after = await report();
        if (after.live !== 0 || after.made !== lastMade) {
          lastMade = after.made;
          stableSince = Date.now();
        } else if (Date.now() - stableSince > 1300) break;
      }
      expect(after.live, 'every accepted storm connection was closed again').toBe(0);

      expect(await probe(port, ms(5000)), 'a client after the storm is served').toBe('echoed');
      deadline = Date.now() + ms(3000);
      let end = await report();
      while (end.live !== 0 && Date.now() < deadline) {
        await delay(50);
        end = await report();
      }
      console.log(
        `[${kind.name}] T3: EMFILE reports ${end.emfile}, accepted ${end.made}, max live ${end.maxLive}, ` +
          `recovery ms ${end.recoveries.map((r: number) => (r * 1000).toFixed(0)).join(',')}, server CPU ${(end.cpuFraction * 100).toFixed(1)} %`,
      );
      expect(end.otherErrors).toEqual([]);
      expect(end.serving).toBe(true);
      expect(end.listenerFd).toBe(during.listenerFd);
      expect(end.live).toBe(0);
      expect(end.made).toBe(end.lost);
      expect(end.recoveries.length).toBeGreaterThan(0);
      expect(Math.max(...end.recoveries), 'accepting resumed within 1.5 s of fds freeing').toBeLessThanOrEqual(1.5 * Math.max(1, ms(1)));
      expect(end.cpuFraction, 'server CPU over the storm (fraction of one core)').toBeLessThan(0.2);

      child.send('exit');
      const ex = await Promise.race([child.exited, delay(ms(5000)).then(() => ({ code: 'timeout', signal: null }))]);
      expect(ex, child.stderr.slice(-2000)).toEqual({ code: 0, signal: null });
    },
    ms(40_000),
  );
});
