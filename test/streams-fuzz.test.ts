/**
 * StreamReader property tests (fast-check): random byte streams, cut at
 * random chunk boundaries, fed while a task reads them back with readuntil()
 * (one separator or several), read(n) and readexactly(n). Whatever the
 * chunking, the pieces must be exactly the input split at the separators:
 * nothing lost, nothing duplicated. The seed is printed; set
 * AIONODE_FUZZ_SEED to replay a run.
 *
 * A heavy suite: it runs on HEAVY_LOOPS (epoll, io_uring, poll), not on
 * every loop; select adds time here, not coverage (test/helpers/loops.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { IncompleteReadError, sleep, type Task } from '../lib/index.js';
import { StreamReader, type Separator } from '../lib/streams.js';
import type { Transport } from '../lib/transports.js';
import { HEAVY_LOOPS, newLoop, useLoop, type TestLoop } from './helpers/loops.js';

const SEED = Number(process.env.AIONODE_FUZZ_SEED ?? 20240611);
const NUM_RUNS = 200;
console.log(`streams-fuzz: seed ${SEED} (AIONODE_FUZZ_SEED=${SEED} replays it)`);

// A small alphabet, so separators (made of the same bytes) occur often,
// overlap, and straddle chunk boundaries.
const byte = fc.constantFrom(0x61, 0x62, 0x0a, 0x0d, 0x7c);
const bytes = (max: number): fc.Arbitrary<Buffer> => fc.array(byte, { maxLength: max, size: 'medium' }).map((a) => Buffer.from(a));
const separator = fc.array(byte, { minLength: 1, maxLength: 3 }).map((a) => Buffer.from(a));
/** Cut points: the chunk sizes a stream is fed in (0 allowed: an empty feed). */
const cuts = fc.array(fc.integer({ min: 0, max: 12 }), { maxLength: 60, size: 'medium' });
/**
 * Loop passes the feeder waits after each chunk: 0 feeds the next one at
 * once, more lets the reader scan (or not) before it arrives.
 */
const pauses = fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 8 });
const kind = fc.constantFrom('async', 'generator');

/** `data` in chunks of the given sizes (the rest as one last chunk). */
function chunked(data: Buffer, sizes: number[]): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  for (const n of sizes) {
    if (at >= data.length) break;
    out.push(data.subarray(at, at + n));
    at += n;
  }
  if (at < data.length) out.push(data.subarray(at));
  return out;
}

/**
 * The reference split: each piece ends at the first position where any
 * separator ends (the shortest piece with a separator as suffix); what is
 * left at the end is the IncompleteReadError's partial.
 */
function reference(data: Buffer, seps: Buffer[]): { pieces: Buffer[]; rest: Buffer } {
  const pieces: Buffer[] = [];
  let start = 0;
  for (let end = 1; end <= data.length; end++) {
    const hit = seps.some((s) => end - s.length >= start && data.subarray(end - s.length, end).equals(s));
    if (hit) {
      pieces.push(data.subarray(start, end));
      start = end;
    }
  }
  return { pieces, rest: data.subarray(start) };
}

describe.each(HEAVY_LOOPS)('StreamReader under random chunking on %s', (backend) => {
  useLoop(backend);
  let loop: TestLoop;

  beforeAll(() => {
    loop = newLoop(backend);
  });

  afterAll(() => {
    loop.close();
  });

  /** Feeds `chunks`, waiting `waits[i % length]` loop passes after each; then EOF. */
  function feeder(reader: StreamReader, chunks: Buffer[], waits: number[]): Task<void> {
    return loop.createTask(
      (function* () {
        for (let i = 0; i < chunks.length; i++) {
          reader.feedData(chunks[i]);
          for (let n = waits[i % waits.length]; n > 0; n--) yield* sleep(0);
        }
        reader.feedEof();
      })(),
    );
  }

  /** Reads pieces with readuntil(sep) until IncompleteReadError: [pieces, partial]. */
  function splitter(reader: StreamReader, sep: Separator | Separator[], k: string): Task<[Buffer[], Buffer]> {
    const done = (e: unknown): Buffer => {
      if (!(e instanceof IncompleteReadError)) throw e;
      expect(e.expected).toBeNull();
      return e.partial as Buffer;
    };
    if (k === 'async') {
      return loop.createTask(async () => {
        const pieces: Buffer[] = [];
        for (;;) {
          try {
            pieces.push(await reader.readuntil(sep));
          } catch (e) {
            return [pieces, done(e)] as [Buffer[], Buffer];
          }
        }
      });
    }
    return loop.createTask(
      (function* (): Generator<any, [Buffer[], Buffer], any> {
        const pieces: Buffer[] = [];
        for (;;) {
          try {
            pieces.push(yield* reader.readuntil(sep));
          } catch (e) {
            return [pieces, done(e)];
          }
        }
      })(),
    );
  }

  async function checkSplit(data: Buffer, seps: Buffer[], sep: Separator | Separator[], sizes: number[], waits: number[], k: string): Promise<void> {
    const reader = new StreamReader({ loop });
    const reading = splitter(reader, sep, k);
    const feeding = feeder(reader, chunked(data, sizes), waits);
    const [pieces, rest] = await loop.runUntilComplete(reading);
    await loop.runUntilComplete(feeding);
    const want = reference(data, seps);
    expect(pieces.map((p) => p.toString('hex'))).toEqual(want.pieces.map((p) => p.toString('hex')));
    expect(rest.toString('hex')).toBe(want.rest.toString('hex'));
    expect(Buffer.concat([...pieces, rest]).equals(data)).toBe(true);
    expect(reader._buffer.length).toBe(0);
  }

  it('readuntil(separator) returns the input split at the separator', async () => {
    await fc.assert(
      fc.asyncProperty(bytes(300), separator, cuts, pauses, kind, (data, sep, sizes, waits, k) => checkSplit(data, [sep], sep, sizes, waits, k)),
      { seed: SEED, numRuns: NUM_RUNS },
    );
  });

  it('readuntil([separators]) returns the input split at the earliest-ending separator', async () => {
    await fc.assert(
      fc.asyncProperty(bytes(300), fc.array(separator, { minLength: 1, maxLength: 4 }), cuts, pauses, kind, (data, seps, sizes, waits, k) =>
        checkSplit(data, seps, seps, sizes, waits, k),
      ),
      { seed: SEED, numRuns: NUM_RUNS },
    );
  });

  it('read(n) and readexactly(n) return the input in order', async () => {
    const op = fc.record({ exact: fc.boolean(), n: fc.integer({ min: 1, max: 50 }) });
    await fc.assert(
      fc.asyncProperty(bytes(400), cuts, pauses, fc.array(op, { minLength: 1, maxLength: 20 }), kind, async (data, sizes, waits, ops, k) => {
        const reader = new StreamReader({ loop, limit: 16 });
        // Back-pressure: reading pauses over twice the limit, resumes at the
        // limit or when a read must wait; never twice in a row either way.
        // (At EOF it may stay paused, as asyncio's: nothing more comes.)
        let paused = false;
        reader.setTransport({
          pauseReading() {
            expect(paused).toBe(false);
            expect(reader._buffer.length).toBeGreaterThan(32);
            paused = true;
          },
          resumeReading() {
            expect(paused).toBe(true);
            paused = false;
          },
        } as unknown as Transport);
        // Reads cycle through `ops` until EOF; readexactly past EOF gives its partial.
        const body = function* (): Generator<any, Buffer[], any> {
          const got: Buffer[] = [];
          for (let i = 0; ; i++) {
            const { exact, n } = ops[i % ops.length];
            if (exact) {
              try {
                got.push(yield* reader.readexactly(n));
              } catch (e) {
                if (!(e instanceof IncompleteReadError)) throw e;
                got.push(e.partial as Buffer);
                return got;
              }
            } else {
              const b = yield* reader.read(n);
              if (b.length === 0) return got;
              expect(b.length).toBeLessThanOrEqual(n);
              got.push(b);
            }
          }
        };
        const reading =
          k === 'async'
            ? loop.createTask(async () => {
                const got: Buffer[] = [];
                for (let i = 0; ; i++) {
                  const { exact, n } = ops[i % ops.length];
                  if (exact) {
                    try {
                      got.push(await reader.readexactly(n));
                    } catch (e) {
                      if (!(e instanceof IncompleteReadError)) throw e;
                      got.push(e.partial as Buffer);
                      return got;
                    }
                  } else {
                    const b = await reader.read(n);
                    if (b.length === 0) return got;
                    expect(b.length).toBeLessThanOrEqual(n);
                    got.push(b);
                  }
                }
              })
            : loop.createTask(body());
        const feeding = feeder(reader, chunked(data, sizes), waits);
        const got = await loop.runUntilComplete(reading);
        await loop.runUntilComplete(feeding);
        expect(Buffer.concat(got).toString('hex')).toBe(data.toString('hex'));
      }),
      { seed: SEED, numRuns: NUM_RUNS },
    );
  });
});
