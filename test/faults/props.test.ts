/**
 * Property tests (fast-check) for the timer heap and the selector
 * registration table (issue 8, Deliver 4; reliability.md T1, T9).
 *
 * - Timers, through the public loop API: random callAt deadlines in the
 *   past or now (all due in one pass, many ties) and callLater delays in the
 *   next few milliseconds, a random subset cancelled; the fired order must
 *   be the model's (when, scheduling order) order, cancelled ones never
 *   fire, and none fires before its deadline.
 * - Selectors, used directly on every backend: random register / modify /
 *   unregister / close-and-reuse-the-number / make-readable / drain
 *   sequences against a model; after every step select(0) must report
 *   exactly the model's ready keys: never a key that is not the current
 *   registration of its fd (a dead registration or a stale token), never
 *   an event outside the registered interest, and a fresh token for every
 *   registration.
 *
 * The seed is fixed and printed; AIONODE_PROPS_SEED=<n> replays another.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  EVENT_READ,
  EVENT_WRITE,
  KeyError,
  selectorClass,
  type BaseSelector,
  type SelectorEventLoop,
  type SelectorKey,
} from '../../lib/index.js';
import { HEAVY_LOOPS, newLoop, SELECTOR_LOOPS, useLoop, type TestLoop } from '../helpers/loops.js';
import { sockets } from '../helpers/sockets.js';

const SEED = Number(process.env.AIONODE_PROPS_SEED ?? '20261202');
console.log(`props: seed ${SEED} (AIONODE_PROPS_SEED=${SEED} replays it)`);

// ---------------------------------------------------------------- timers

interface TimerOp {
  kind: 'at' | 'later';
  /** 'at': offset in ms from a base before now (<= 0); 'later': delay in ms. */
  ms: number;
  cancel: boolean;
}

const timerOp: fc.Arbitrary<TimerOp> = fc.oneof(
  // Few distinct offsets, so equal deadlines (ties) are common.
  fc.record({ kind: fc.constant<'at'>('at'), ms: fc.integer({ min: -20, max: 0 }), cancel: fc.boolean() }),
  fc.record({ kind: fc.constant<'later'>('later'), ms: fc.integer({ min: 0, max: 3 }), cancel: fc.boolean() }),
);

// A property (fuzz) suite: epoll, io_uring and poll only (HEAVY_LOOPS, test/helpers/loops.ts).
describe.each(HEAVY_LOOPS)('timer order property [%s]', (backend) => {
  useLoop(backend);
  let loop: TestLoop;
  beforeAll(() => {
    loop = newLoop(backend);
  });
  afterAll(() => {
    loop.close();
  });

  it('fires timers in (when, scheduling order), never cancelled ones, never early (Deliver 4)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(timerOp, { minLength: 1, maxLength: 60 }), fc.boolean(), async (ops, cancelAfterStart) => {
        const fired: number[] = [];
        const early: string[] = [];
        const cancelledRan: number[] = [];
        const base = loop.time() - 0.001;
        const handles = ops.map((op, seq) => {
          const cb = (): void => {
            if (loop.time() < h.when()) early.push(`#${seq} at ${loop.time()} < ${h.when()}`);
            if (ops[seq].cancel) cancelledRan.push(seq);
            fired.push(seq);
          };
          const h = op.kind === 'at' ? loop.callAt(base + op.ms / 1000, cb) : loop.callLater(op.ms / 1000, cb);
          return h;
        });
        const cancelAll = (): void => {
          ops.forEach((op, i) => {
            if (op.cancel) handles[i].cancel();
          });
        };
        // Cancel before the run, or from the first callback of the run
        // (before any timer's callback can run: timers queue behind it).
        if (cancelAfterStart) loop.callSoon(cancelAll);
        else cancelAll();
        // The sentinel comes last among equal deadlines: it fires after all.
        const last = Math.max(...handles.map((h) => h.when()));
        loop.callAt(last, () => loop.stop());
        await loop.runForever();
        const model = ops
          .map((op, seq) => ({ seq, when: handles[seq].when(), cancel: op.cancel }))
          .filter((t) => !t.cancel)
          .sort((a, b) => a.when - b.when || a.seq - b.seq)
          .map((t) => t.seq);
        expect(early).toEqual([]);
        expect(cancelledRan).toEqual([]);
        expect(fired).toEqual(model);
      }),
      { seed: SEED, numRuns: 300 },
    );
  });
});

// ------------------------------------------------------------- selectors

type SelOp =
  | { op: 'register'; slot: number; events: number }
  | { op: 'modify'; slot: number; events: number }
  | { op: 'unregister'; slot: number }
  | { op: 'close'; slot: number }
  | { op: 'feed'; slot: number }
  | { op: 'drain'; slot: number };

const SLOTS = 4;
const slot = fc.integer({ min: 0, max: SLOTS - 1 });
const interest = fc.constantFrom(EVENT_READ, EVENT_WRITE, EVENT_READ | EVENT_WRITE);
const selOp: fc.Arbitrary<SelOp> = fc.oneof(
  fc.record({ op: fc.constant<'register'>('register'), slot, events: interest }),
  fc.record({ op: fc.constant<'modify'>('modify'), slot, events: interest }),
  fc.record({ op: fc.constant<'unregister'>('unregister'), slot }),
  fc.record({ op: fc.constant<'close'>('close'), slot }),
  fc.record({ op: fc.constant<'feed'>('feed'), slot }),
  fc.record({ op: fc.constant<'drain'>('drain'), slot }),
);

/** One socketpair slot: `fd` is watched, `peer` writes into it. */
interface Slot {
  fd: number;
  peer: number;
  readable: boolean;
  key: SelectorKey | null;
}

function drain(fd: number): void {
  for (;;) {
    const r = sockets.read(fd, 65536);
    if (typeof r === 'number' || r.length === 0) return;
  }
}

// Selector-level: it drives bare selectors (SELECTOR_LOOPS).
describe.each(SELECTOR_LOOPS)('selector registration table property [%s]', (backend) => {
  it('reports exactly the live registrations\' ready interest, each with its current key (Deliver 4)', () => {
    const Sel = selectorClass(backend);
    fc.assert(
      fc.property(fc.array(selOp, { minLength: 1, maxLength: 40 }), (ops) => {
        const sel: BaseSelector = new Sel();
        const slots: Slot[] = [];
        const tokens = new Set<number>();
        const fresh = (k: SelectorKey): void => {
          expect(tokens.has(k._token), `token ${k._token} reused`).toBe(false);
          tokens.add(k._token);
        };
        const newPair = (): Slot => {
          const [fd, peer] = sockets.pair();
          return { fd, peer, readable: false, key: null };
        };
        for (let i = 0; i < SLOTS; i++) slots.push(newPair());
        try {
          for (const o of ops) {
            const s = slots[o.slot];
            switch (o.op) {
              case 'register':
                if (s.key !== null) {
                  expect(() => sel.register(s.fd, o.events)).toThrow(KeyError);
                } else {
                  s.key = sel.register(s.fd, o.events, o.slot);
                  fresh(s.key);
                }
                break;
              case 'modify':
                if (s.key === null) {
                  expect(() => sel.modify(s.fd, o.events)).toThrow(KeyError);
                } else {
                  const old = s.key;
                  s.key = sel.modify(s.fd, o.events, o.slot);
                  // Same interest and data: the same key; new interest: a fresh token.
                  if (o.events === old.events) expect(s.key).toBe(old);
                  else fresh(s.key);
                }
                break;
              case 'unregister':
                if (s.key === null) {
                  expect(() => sel.unregister(s.fd)).toThrow(KeyError);
                } else {
                  expect(sel.unregister(s.fd)).toBe(s.key);
                  s.key = null;
                }
                break;
              case 'close': {
                // Close the fd (still registered or not), drop the
                // registration's bookkeeping, and reuse the number at once.
                sockets.close(s.fd, s.peer);
                if (s.key !== null) sel.unregister(s.fd);
                slots[o.slot] = newPair();
                break;
              }
              case 'feed':
                sockets.write(s.peer, 'x');
                s.readable = true;
                break;
              case 'drain':
                drain(s.fd);
                s.readable = false;
                break;
            }
            // Check: select(0) equals the model, key by key.
            const got = new Map<number, [SelectorKey, number]>();
            for (const [k, ev] of sel.select(0)) {
              expect(got.has(k.fd), `fd ${k.fd} reported twice`).toBe(false);
              got.set(k.fd, [k, ev]);
            }
            const want = new Map<number, [SelectorKey, number]>();
            for (const t of slots) {
              if (t.key === null) continue;
              const ev = (t.key.events & EVENT_WRITE) | (t.readable ? t.key.events & EVENT_READ : 0);
              if (ev !== 0) want.set(t.fd, [t.key, ev]);
            }
            for (const [fd, [k, ev]] of got) {
              const w = want.get(fd);
              expect(w, `event ${ev} for fd ${fd} with no live registration wanting it`).toBeDefined();
              expect(k, `fd ${fd}: a key that is not the current registration`).toBe(w![0]);
              expect(ev).toBe(w![1]);
            }
            expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
            expect(sel.getMap().size).toBe(slots.filter((t) => t.key !== null).length);
          }
        } finally {
          sel.close();
          for (const t of slots) sockets.close(t.fd, t.peer);
        }
      }),
      { seed: SEED, numRuns: 400 },
    );
  });
});
