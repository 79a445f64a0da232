/**
 * T7 (fault F6: no backpressure, CVE-2024-12254 class), reliability plan §4,
 * CI size (64 MiB per write path instead of 256 MiB).
 *
 * The peer (an aionode server protocol that calls pauseReading() at once)
 * never reads, so everything we write stays in the kernel and then in our
 * write buffer. Each write path is tried: `transport.write`,
 * `transport.writelines`, and StreamWriter `write` + `drain()`.
 *
 * Survived means:
 *  - pauseWriting fires (exactly once per high-water crossing) and, for a
 *    writer that respects it, the write buffer never exceeds
 *    high-water (64 KiB) + one write call's bytes;
 *  - `drain()` stays pending while the peer does not read;
 *  - once the peer reads again, resumeWriting fires, the whole 64 MiB
 *    arrives (byte count equal), and RSS grew by less than 48 MiB (not checked under ASan);
 *  - a protocol that ignores pauseWriting gets it once (not per write), its
 *    buffer is all it wrote minus what the kernel took, and abort() drops it
 *    with one connectionLost(undefined).
 */
import { describe, expect, it } from 'vitest';
import { openConnection, sleep, waitFor, type Future, type Transport } from '../../lib/index.js';
import { faultHarness, gcTwice, KiB, loopKinds, MiB, rssBoundMiB } from '../helpers/faults.js';
import { ConnTracker, TrackedProtocol, serverPort } from '../helpers/net.js';

const TOTAL = 64 * MiB;
const HIGH = 64 * KiB;
const CHUNK = 256 * KiB;

// A heavy suite: epoll, io_uring and poll only (HEAVY_LOOPS, test/helpers/loops.ts).
describe.each(loopKinds({ heavy: true }))('T7 peer that never reads on %s', (kind) => {
  const h = faultHarness(kind);

  /** A server whose connections stop reading at once; resolves its protocol. */
  async function nonReadingPeer(tr: ConnTracker): Promise<{ port: number; peer: Future<TrackedProtocol>; close(): Promise<void> }> {
    const peer = h.loop.createFuture<TrackedProtocol>();
    const server = await h.loop.createServer(
      () => {
        const p = new TrackedProtocol(h.loop, tr, 'peer');
        p.keep = false;
        const made = p.connectionMade.bind(p);
        p.connectionMade = (t: Transport) => {
          made(t);
          t.pauseReading();
          if (!peer.done()) peer.setResult(p);
        };
        return p;
      },
      '127.0.0.1',
      0,
    );
    return {
      port: serverPort(server),
      peer,
      async close() {
        server.close();
        server.closeClients();
        await waitFor(server.waitClosed(), 5);
      },
    };
  }

  function rssMiB(): number {
    gcTwice();
    return process.memoryUsage().rss / MiB;
  }

  /** Resolves at the protocol's next resumeWriting (at once if not paused). */
  function resumed(p: TrackedProtocol): Future<void> {
    const f = h.loop.createFuture<void>();
    if (!p.paused) f.setResult(undefined);
    else p.onResume = () => void (f.done() || f.setResult(undefined));
    return f;
  }

  it.each(['write', 'writelines'] as const)('transport.%s respecting pauseWriting: buffer <= high-water + one call, 64 MiB delivered', async (how) => {
    const tr = new ConnTracker();
    await h.run(async () => {
      const rss0 = rssMiB();
      const srv = await nonReadingPeer(tr);
      const [t, cli] = await waitFor(h.loop.createConnection(() => new TrackedProtocol(h.loop, tr, 'cli'), '127.0.0.1', srv.port), 5);
      cli.keep = false;
      const peer = await waitFor(srv.peer, 5);
      expect(t.getWriteBufferLimits()[1]).toBe(HIGH);
      const chunk = Buffer.alloc(CHUNK, 0x5a);
      const half = chunk.subarray(0, CHUNK / 2);
      const perCall = CHUNK;
      let sent = 0;
      let maxBuf = 0;
      const writeOnce = (): void => {
        if (how === 'write') t.write(chunk);
        else t.writelines([half, half]);
        sent += perCall;
        maxBuf = Math.max(maxBuf, t.getWriteBufferSize());
      };
      // Phase 1: the peer never reads. Write until paused.
      while (!cli.paused && sent < TOTAL) writeOnce();
      expect(cli.paused, `${how} never paused after ${sent} bytes`).toBe(true);
      expect(cli.pauses).toBe(1);
      expect(maxBuf).toBeLessThanOrEqual(HIGH + perCall);
      const stuck = resumed(cli);
      await sleep(0.1);
      expect(stuck.done(), 'resumed while the peer reads nothing').toBe(false);
      expect(t.getWriteBufferSize()).toBe(maxBuf);
      // Phase 2: the peer reads; the writer finishes 64 MiB, still respecting pause.
      peer.transport!.resumeReading();
      while (sent < TOTAL) {
        if (cli.paused) await waitFor(resumed(cli), 10);
        else writeOnce();
      }
      await waitFor(peer.waitBytes(TOTAL), 20);
      expect(peer.bytes).toBe(TOTAL);
      expect(maxBuf).toBeLessThanOrEqual(HIGH + perCall);
      expect(cli.resumes).toBe(cli.pauses);
      const grown = rssMiB() - rss0;
      console.log(`[${kind.name}] T7 ${how}: max write buffer ${maxBuf} B (high ${HIGH}), pauses ${cli.pauses}, RSS +${grown.toFixed(1)} MiB`);
      expect(grown).toBeLessThan(rssBoundMiB(48));
      t.close();
      await waitFor(cli.lostFut, 5);
      await srv.close();
    });
    expect(tr.violations()).toEqual([]);
  });

  it.each(['write', 'writelines'] as const)('StreamWriter %s + drain(): drain blocks while the peer does not read; 64 MiB delivered with a bounded buffer', async (how) => {
    const tr = new ConnTracker();
    await h.run(async () => {
      const rss0 = rssMiB();
      const srv = await nonReadingPeer(tr);
      const [, w] = await waitFor(openConnection('127.0.0.1', srv.port), 5);
      const peer = await waitFor(srv.peer, 5);
      const chunk = Buffer.alloc(CHUNK, 0x33);
      const halves = [chunk.subarray(0, CHUNK / 2), chunk.subarray(CHUNK / 2)];
      const put = (): void => (how === 'write' ? w.write(chunk) : w.writelines(halves));
      let sent = 0;
      let maxBuf = 0;
      let blocked: Future<void> | null = null;
      // Phase 1: write + drain until drain blocks.
      while (sent < TOTAL) {
        put();
        sent += CHUNK;
        maxBuf = Math.max(maxBuf, w.transport.getWriteBufferSize());
        const d = h.loop.createTask(async () => w.drain());
        await sleep(0.005);
        // Still pending a while later, not merely slow to flush (a loaded
        // box, the ASan build): the peer's buffers are full.
        if (!d.done()) await sleep(0.1);
        if (!d.done()) {
          blocked = d;
          break;
        }
      }
      expect(blocked, 'drain() never blocked').not.toBeNull();
      await sleep(0.1);
      expect(blocked!.done()).toBe(false);
      expect(maxBuf).toBeLessThanOrEqual(HIGH + CHUNK);
      // Phase 2: the peer reads.
      peer.transport!.resumeReading();
      await waitFor(blocked!, 10);
      while (sent < TOTAL) {
        put();
        sent += CHUNK;
        maxBuf = Math.max(maxBuf, w.transport.getWriteBufferSize());
        await waitFor(w.drain(), 10);
      }
      await waitFor(peer.waitBytes(TOTAL), 20);
      expect(peer.bytes).toBe(TOTAL);
      expect(maxBuf).toBeLessThanOrEqual(HIGH + CHUNK);
      const grown = rssMiB() - rss0;
      console.log(`[${kind.name}] T7 stream ${how}: max write buffer ${maxBuf} B, RSS +${grown.toFixed(1)} MiB`);
      expect(grown).toBeLessThan(rssBoundMiB(48));
      w.close();
      await waitFor(w.waitClosed(), 5);
      await srv.close();
    });
    expect(tr.violations()).toEqual([]);
  });

  it('a protocol that ignores pauseWriting: paused once, buffer holds the rest, abort() drops it with one connectionLost', async () => {
    const tr = new ConnTracker();
    await h.run(async () => {
      const srv = await nonReadingPeer(tr);
      const [t, cli] = await waitFor(h.loop.createConnection(() => new TrackedProtocol(h.loop, tr, 'cli'), '127.0.0.1', srv.port), 5);
      await waitFor(srv.peer, 5);
      const chunk = Buffer.alloc(CHUNK, 0x77);
      for (let sent = 0; sent < TOTAL; sent += CHUNK) t.write(chunk);
      expect(cli.pauses).toBe(1);
      expect(cli.paused).toBe(true);
      const buffered = t.getWriteBufferSize();
      expect(buffered).toBeGreaterThan(TOTAL - 32 * MiB); // the kernel takes a few MiB at most
      expect(buffered).toBeLessThanOrEqual(TOTAL);
      t.abort();
      expect(t.getWriteBufferSize()).toBe(0);
      const exc = await waitFor(cli.lostFut, 5);
      expect(exc).toBeUndefined();
      await sleep(0.01);
      expect(cli.lost).toBe(1);
      await srv.close();
    });
    expect(tr.violations()).toEqual([]);
  });
});
