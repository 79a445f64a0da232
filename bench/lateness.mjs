// Timer lateness on an idle loop: how long after its deadline a timer runs.
//
//   node bench/lateness.mjs --impl aionode|settimeout --mode serial|burst
//                           [--n 2000] [--max-ms 50] [--selector NAME]
//
// N timers with uniform random delays in [0, max-ms] ms (the same delays for
// both impls). serial: one pending timer at a time, each scheduled from the
// previous one's callback (a sleep loop). burst: all N scheduled at once.
// Lateness = process.hrtime.bigint() in the callback minus (hrtime read just
// before scheduling + delay); negative = early. In burst mode the timers
// already due when the scheduling loop ends (it blocks the loop for a few ms)
// are left out of the percentiles and reported as `blocked`. A short untimed
// warm-up runs first (JIT and start-up jank). Prints one JSON line (ms,
// nearest rank).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));

const args = { impl: 'aionode', mode: 'serial', n: 2000, maxMs: 50, selector: undefined, warmup: 100 };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  const v = () => argv[++i];
  if (a === '--impl') args.impl = v();
  else if (a === '--mode') args.mode = v();
  else if (a === '--n') args.n = Number(v());
  else if (a === '--max-ms') args.maxMs = Number(v());
  else if (a === '--selector') args.selector = v();
  else if (a === '--warmup') args.warmup = Number(v());
  else {
    console.error(`lateness.mjs: unknown argument ${a}\nusage: node bench/lateness.mjs --impl aionode|settimeout --mode serial|burst [--n N] [--max-ms MS] [--selector NAME]`);
    process.exit(2);
  }
}
if (!['aionode', 'settimeout'].includes(args.impl) || !['serial', 'burst'].includes(args.mode)) {
  console.error('lateness.mjs: --impl aionode|settimeout, --mode serial|burst');
  process.exit(2);
}

function uniformDelaysMs(n, maxMs, seed) {
  let a = seed >>> 0; // mulberry32
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * maxMs;
  }
  return out;
}

const hr = process.hrtime.bigint;

// A scheduler is `(delayMs, cb) => void` on the implementation under test.
function makeScheduler() {
  if (args.impl === 'settimeout') {
    return { schedule: (ms, cb) => setTimeout(cb, ms), run: (start) => new Promise((r) => start(r)) };
  }
  const aio = require('../dist/lib/index.js');
  const selector = args.selector !== undefined ? new (aio.selectorClass(args.selector))() : new aio.DefaultSelector();
  const loop = new aio.SelectorEventLoop(selector);
  return {
    selector: selector.name,
    isDefault: selector.name === aio.availableSelectors()[0],
    schedule: (ms, cb) => loop.callLater(ms / 1000, cb),
    // The loop runs (idle between timers) until the workload resolves.
    run: async (start) => {
      const done = loop.createFuture();
      loop.callSoon(() => start((v) => done.setResult(v)));
      const v = await loop.runUntilComplete(done);
      const stats = loop.nativeStats();
      loop.close();
      return { ...v, stats };
    },
  };
}

// Runs the N timers; resolves with the lateness samples in ns.
function workload(sched, delays, mode, finish) {
  const n = delays.length;
  const late = new Float64Array(n);
  let fired = 0;
  if (mode === 'serial') {
    let i = 0;
    const next = () => {
      const k = i++;
      const due = hr() + BigInt(Math.ceil(delays[k] * 1e6));
      sched.schedule(delays[k], () => {
        late[k] = Number(hr() - due);
        if (++fired === n) finish({ late });
        else next();
      });
    };
    next();
  } else {
    // Timers whose deadline passes while this loop still schedules cannot
    // run on time on any event loop; they are counted apart (`blocked`).
    const dues = new Array(n);
    for (let k = 0; k < n; k++) {
      const due = hr() + BigInt(Math.ceil(delays[k] * 1e6));
      dues[k] = due;
      sched.schedule(delays[k], () => {
        late[k] = Number(hr() - due);
        if (++fired === n) finish({ late, blocked });
      });
    }
    const end = hr();
    const blocked = new Uint8Array(n);
    for (let k = 0; k < n; k++) if (dues[k] <= end) blocked[k] = 1;
  }
}

function summary(all, blocked) {
  const late = blocked ? all.filter((_, k) => !blocked[k]) : all;
  const s = Float64Array.from(late).sort();
  const rank = (p) => s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
  let early = 0;
  let sum = 0;
  for (const x of s) {
    if (x < 0) early++;
    sum += x;
  }
  const ms = (ns) => ns / 1e6;
  return {
    p50_ms: ms(rank(50)),
    p90_ms: ms(rank(90)),
    p99_ms: ms(rank(99)),
    max_ms: ms(s[s.length - 1]),
    min_ms: ms(s[0]),
    mean_ms: ms(sum / s.length),
    early,
    ...(blocked ? { blocked: all.length - late.length, blocked_max_ms: ms(Math.max(0, ...all.filter((_, k) => blocked[k]))), early_blocked: all.filter((x, k) => blocked[k] && x < 0).length } : {}),
  };
}

async function main() {
  const sched = makeScheduler();
  const delays = uniformDelaysMs(args.n, args.maxMs, 20261123);
  const warm = uniformDelaysMs(args.warmup, 5, 7);
  const res = await sched.run((resolve) => {
    // Warm-up (not measured; serial, then a small burst for the burst mode),
    // then the measured run, in the same loop run.
    const measured = () => workload(sched, delays, args.mode, resolve);
    workload(sched, warm, 'serial', args.mode === 'burst' ? () => workload(sched, warm, 'burst', measured) : measured);
  });
  const out = {
    bench: `lateness_${args.mode}`,
    impl: args.impl === 'settimeout' ? 'node setTimeout' : sched.isDefault ? 'aionode' : `aionode-${sched.selector}`,
    n: args.n,
    max_delay_ms: args.maxMs,
    runtime: args.impl === 'settimeout' ? `Node ${process.version}` : `aionode ${version} / Node ${process.version}`,
    ...(sched.selector ? { selector: sched.selector } : {}),
    ...summary(res.late, res.blocked),
    ...(res.stats ? { timer_source: res.stats.timerSource, batches: res.stats.batches } : {}),
  };
  console.log(JSON.stringify(out));
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
