// Loop-primitive microbenchmarks for aionode: the counterpart of the shared
// harness's micro/micro_py.py (same workloads, sizes and result keys).
//
//   node --expose-gc bench/micro.mjs BENCH [N] [--selector epoll|poll|select]
//
// BENCH: callsoon_batch callsoon_chain timers timers_cancel pingpong
//        tasks task_mem (not implemented yet: need the Task layer)
// The selector is DefaultSelector unless --selector (or AIONODE_SELECTOR) names
// one. The last stdout line is one JSON object: bench, impl, n, runtime,
// selector, ops_per_s and micro_py.py's extras for that bench. One bench per
// process (scripts/bench.mjs and ../shared/bench/run_micro.sh do this).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const aio = require('../dist/lib/index.js');
const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));

const now = () => Number(process.hrtime.bigint()) / 1e9;
const cpuNow = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

// The same integer-ms delays as micro_node.js (mulberry32, seed 12345), so
// aionode and setTimeout get identical timers; micro_py.py draws the same
// distribution with Python's RNG.
function intMsDelays(n, seed = 12345) {
  let a = seed >>> 0;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const r = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    out[i] = Math.floor(r * 1001) / 1000; // seconds
  }
  return out;
}

// Each bench is `main(loop, n, done)`: it runs as the loop's first callback
// (as micro_py.py's coroutine runs inside its loop) and resolves `done`
// with the result. Like asyncio's `await done`, the end time is taken in a
// done callback, one callSoon after the result is set.

function callsoonBatch(loop, n, done) {
  const cs = loop.callSoon.bind(loop);
  const fin = loop.createFuture();
  const noop = () => {};
  const t0 = now();
  for (let i = 0; i < n - 1; i++) cs(noop);
  cs(() => fin.setResult(null));
  const t1 = now();
  fin.addDoneCallback(() => {
    const t2 = now();
    done.setResult({ ops_per_s: n / (t2 - t0), schedule_ops_per_s: n / (t1 - t0), run_ops_per_s: n / (t2 - t1) });
  });
}

function callsoonChain(loop, n, done) {
  const cs = loop.callSoon.bind(loop);
  const fin = loop.createFuture();
  let left = n;
  function step() {
    if (--left) cs(step);
    else fin.setResult(null);
  }
  const t0 = now();
  cs(step);
  fin.addDoneCallback(() => done.setResult({ ops_per_s: n / (now() - t0) }));
}

function timers(cancel) {
  return (loop, n, done) => {
    const delays = intMsDelays(n);
    const cl = loop.callLater.bind(loop);
    const fin = loop.createFuture();
    const cancelled = n - Math.floor((n + 9) / 10);
    let left = cancel ? n - cancelled : n;
    const fire = () => {
      if (!--left) fin.setResult(null);
    };
    globalThis.gc?.();
    const c0 = cpuNow();
    const t0 = now();
    const handles = new Array(n);
    for (let i = 0; i < n; i++) handles[i] = cl(delays[i], fire);
    let t1 = now();
    const res = { schedule_ops_per_s: n / (t1 - t0) };
    if (cancel) {
      for (let i = 0; i < n; i++) if (i % 10) handles[i].cancel();
      const tc = now();
      res.cancel_ops_per_s = cancelled / (tc - t1);
      t1 = tc;
    }
    fin.addDoneCallback(() => {
      const t2 = now();
      const c2 = cpuNow();
      Object.assign(res, {
        ops_per_s: n / (t2 - t0),
        total_s: t2 - t0,
        fire_phase_s: t2 - t1,
        cpu_s: c2 - c0,
        cpu_ns_per_timer: ((c2 - c0) / n) * 1e9,
      });
      done.setResult(res);
    });
  };
}

// micro_py.py's pingpong with the loop's own machinery and no Task layer:
// each "task" is a callback state machine, and each `await fut` is what a
// Task does for it, `fut.addDoneCallback(wakeup)`; `setResult` schedules the
// wakeup with callSoon. So every hand-off is one setResult, one callSoon and
// one dispatched callback, as in asyncio; only the coroutine resume is absent.
function pingpong(loop, n, done) {
  const rounds = Math.floor(n / 2);
  const box = { a: null, b: loop.createFuture() }; // a: pinger awaits, b: ponger awaits
  let pingerDone = false;
  let pongerDone = false;
  let t0 = 0;
  const finish = () => {
    if (pingerDone && pongerDone) done.setResult({ ops_per_s: (rounds * 2) / (now() - t0) });
  };
  let i = 0;
  function pingerStep() {
    if (i === rounds) {
      pingerDone = true;
      finish();
      return;
    }
    const fb = box.b;
    const fa = loop.createFuture();
    box.a = fa;
    fb.setResult(i++);
    fa.addDoneCallback(pingerStep);
  }
  let j = 0;
  function pongerWake(fb) {
    const v = fb.result();
    box.b = loop.createFuture();
    box.a.setResult(v);
    if (++j === rounds) {
      pongerDone = true;
      finish();
    } else {
      box.b.addDoneCallback(pongerWake);
    }
  }
  t0 = now();
  // gather(ponger(), pinger()): the ponger starts first and waits on box.b.
  box.b.addDoneCallback(pongerWake);
  pingerStep();
}

const BENCHES = {
  callsoon_batch: [callsoonBatch, 1e6],
  callsoon_chain: [callsoonChain, 1e6],
  timers: [timers(false), 1e6],
  timers_cancel: [timers(true), 1e6],
  pingpong: [pingpong, 1e6],
  tasks: [null, 1e6],
  task_mem: [null, 1e5],
};

function usage(msg) {
  if (msg) console.error(`micro.mjs: ${msg}`);
  console.error(`usage: node --expose-gc bench/micro.mjs {${Object.keys(BENCHES).join('|')}} [N] [--selector NAME]`);
  process.exit(2);
}

function parseArgs(argv) {
  const out = { bench: undefined, n: 0, selector: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--selector') out.selector = argv[++i];
    else if (a.startsWith('--selector=')) out.selector = a.slice('--selector='.length);
    else if (a === '--n') out.n = Number(argv[++i]);
    else if (a.startsWith('-')) usage(`unknown option ${a}`);
    else if (out.bench === undefined) out.bench = a;
    else out.n = Number(a);
  }
  if (!(out.bench in BENCHES)) usage(out.bench === undefined ? 'no BENCH given' : `unknown BENCH ${out.bench}`);
  if (!Number.isInteger(out.n) || out.n < 0) usage('N must be a positive integer');
  if (out.selector === '') usage('--selector needs a name');
  return out;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const [fn, defaultN] = BENCHES[args.bench];
  const n = args.n || defaultN;
  const selector = args.selector !== undefined ? new (aio.selectorClass(args.selector))() : new aio.DefaultSelector();
  const name = selector.name;
  const out = {
    bench: args.bench,
    // The platform's default backend is plain "aionode" (the shared
    // harness's row); a forced other one is labelled with its name.
    impl: name === aio.availableSelectors()[0] ? 'aionode' : `aionode-${name}`,
    n,
    runtime: `aionode ${version} / Node ${process.version}`,
    selector: name,
  };
  if (fn === null) {
    selector.close();
    console.log(JSON.stringify({ ...out, error: 'not implemented yet', reason: 'needs the Task layer (createTask/gather/sleep)' }));
    return;
  }
  const loop = new aio.SelectorEventLoop(selector);
  const done = loop.createFuture();
  loop.callSoon(fn, loop, n, done);
  const res = await loop.runUntilComplete(done);
  const stats = loop.nativeStats();
  loop.close();
  console.log(JSON.stringify({ ...out, ...res, batches: stats.batches }));
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
