// Loop-primitive microbenchmarks for aionode: the counterpart of the shared
// harness's micro/micro_py.py (same workloads, sizes and result keys).
//
//   node --expose-gc bench/micro.mjs BENCH [N] [--selector NAME] [--coro gen|async]
//
// BENCH: callsoon_batch callsoon_chain timers timers_cancel tasks task_mem pingpong
// The selector is DefaultSelector unless --selector (or AIONODE_SELECTOR) names
// one. Each bench is a coroutine run as a Task with loop.runUntilComplete, as
// micro_py.py runs its coroutine. --coro picks the coroutine kind of tasks,
// task_mem and pingpong: generator functions (default: `yield*`, asyncio's
// exact stepping) or async functions (`await`). The last stdout line is one
// JSON object: bench, impl, n, runtime, selector, coro, ops_per_s and
// micro_py.py's extras for that bench. One bench per process
// (scripts/bench.mjs and ../shared/bench/run_micro.sh do this).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const aio = require('../dist/lib/index.js');
const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const { sleep, gather } = aio;

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

function* callsoonBatch(loop, n) {
  const done = loop.createFuture();
  const cs = loop.callSoon.bind(loop);
  const noop = () => {};
  const t0 = now();
  for (let i = 0; i < n - 1; i++) cs(noop);
  cs((v) => done.setResult(v), null);
  const t1 = now();
  yield* done;
  const t2 = now();
  return { ops_per_s: n / (t2 - t0), schedule_ops_per_s: n / (t1 - t0), run_ops_per_s: n / (t2 - t1) };
}

function* callsoonChain(loop, n) {
  const done = loop.createFuture();
  const cs = loop.callSoon.bind(loop);
  let left = n;
  function step() {
    if (--left) cs(step);
    else done.setResult(null);
  }
  const t0 = now();
  cs(step);
  yield* done;
  return { ops_per_s: n / (now() - t0) };
}

function timers(cancel) {
  return function* (loop, n) {
    const delays = intMsDelays(n);
    const done = loop.createFuture();
    const cl = loop.callLater.bind(loop);
    const cancelled = n - Math.floor((n + 9) / 10);
    let left = cancel ? n - cancelled : n;
    const fire = () => {
      if (!--left) done.setResult(null);
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
    yield* done;
    const t2 = now();
    const c2 = cpuNow();
    return Object.assign(res, {
      ops_per_s: n / (t2 - t0),
      total_s: t2 - t0,
      fire_phase_s: t2 - t1,
      cpu_s: c2 - c0,
      cpu_ns_per_timer: ((c2 - c0) / n) * 1e9,
    });
  };
}

// tasks, task_mem and pingpong in both coroutine kinds: the generator form
// is micro_py.py line by line (`await x` is `yield* x`); the async form is
// what most TypeScript code will write (createTask takes the function, the
// fully cancellable form, docs/design.md "Two kinds of coroutine").

function* tasksGen(loop, n, batch = 10000) {
  const ct = loop.createTask.bind(loop);
  function* t() {
    yield* sleep(0);
  }
  const t0 = now();
  for (let b = 0; b < Math.floor(n / batch); b++) {
    const ts = new Array(batch);
    for (let i = 0; i < batch; i++) ts[i] = ct(t());
    yield* gather(ts);
  }
  return { ops_per_s: n / (now() - t0) };
}

async function tasksAsync(loop, n, batch = 10000) {
  const ct = loop.createTask.bind(loop);
  async function t() {
    await sleep(0);
  }
  const t0 = now();
  for (let b = 0; b < Math.floor(n / batch); b++) {
    const ts = new Array(batch);
    for (let i = 0; i < batch; i++) ts[i] = ct(t);
    await gather(ts);
  }
  return { ops_per_s: n / (now() - t0) };
}

function memStats(m0, m1, n, t0, t1) {
  return {
    ops_per_s: n / (t1 - t0),
    bytes_per_task: (m1.rss - m0.rss) / n,
    heap_bytes_per_task: (m1.heapUsed - m0.heapUsed) / n,
    rss_mib_before: m0.rss / 2 ** 20,
    rss_mib_after: m1.rss / 2 ** 20,
  };
}

function* taskMemGen(loop, n) {
  const ct = loop.createTask.bind(loop);
  function* waiter(f) {
    yield* f;
  }
  globalThis.gc?.();
  yield* sleep(0);
  const m0 = process.memoryUsage();
  const t0 = now();
  const held = new Array(n);
  for (let i = 0; i < n; i++) held[i] = ct(waiter(loop.createFuture()));
  yield* sleep(0); // every task runs its first step and suspends
  yield* sleep(0);
  const t1 = now();
  globalThis.gc?.();
  const m1 = process.memoryUsage();
  const pending = held.filter((t) => !t.done()).length;
  if (pending !== n) throw new Error(`${pending} of ${n} tasks pending`);
  for (const t of held) t.cancel();
  return memStats(m0, m1, n, t0, t1);
}

async function taskMemAsync(loop, n) {
  const ct = loop.createTask.bind(loop);
  async function waiter(f) {
    await f;
  }
  globalThis.gc?.();
  await sleep(0);
  const m0 = process.memoryUsage();
  const t0 = now();
  const held = new Array(n);
  for (let i = 0; i < n; i++) {
    const f = loop.createFuture();
    held[i] = ct(() => waiter(f));
  }
  await sleep(0);
  await sleep(0);
  const t1 = now();
  globalThis.gc?.();
  const m1 = process.memoryUsage();
  const pending = held.filter((t) => !t.done()).length;
  if (pending !== n) throw new Error(`${pending} of ${n} tasks pending`);
  for (const t of held) t.cancel();
  return memStats(m0, m1, n, t0, t1);
}

function* pingpongGen(loop, n) {
  const rounds = Math.floor(n / 2);
  const box = [null, loop.createFuture()]; // box[0]: pinger awaits, box[1]: ponger awaits
  function* pinger() {
    for (let i = 0; i < rounds; i++) {
      const fb = box[1];
      const fa = (box[0] = loop.createFuture());
      fb.setResult(i);
      yield* fa;
    }
  }
  function* ponger() {
    for (let i = 0; i < rounds; i++) {
      const v = yield* box[1];
      box[1] = loop.createFuture();
      box[0].setResult(v);
    }
  }
  const t0 = now();
  yield* gather([ponger(), pinger()]);
  return { ops_per_s: (rounds * 2) / (now() - t0) };
}

async function pingpongAsync(loop, n) {
  const rounds = Math.floor(n / 2);
  const box = [null, loop.createFuture()];
  async function pinger() {
    for (let i = 0; i < rounds; i++) {
      const fb = box[1];
      const fa = (box[0] = loop.createFuture());
      fb.setResult(i);
      await fa;
    }
  }
  async function ponger() {
    for (let i = 0; i < rounds; i++) {
      const v = await box[1];
      box[1] = loop.createFuture();
      box[0].setResult(v);
    }
  }
  const t0 = now();
  await gather([ponger, pinger]);
  return { ops_per_s: (rounds * 2) / (now() - t0) };
}

// name: [generator main, async main (or null: the kind does not apply), N]
const BENCHES = {
  callsoon_batch: [callsoonBatch, null, 1e6],
  callsoon_chain: [callsoonChain, null, 1e6],
  timers: [timers(false), null, 1e6],
  timers_cancel: [timers(true), null, 1e6],
  tasks: [tasksGen, tasksAsync, 1e6],
  task_mem: [taskMemGen, taskMemAsync, 1e5],
  pingpong: [pingpongGen, pingpongAsync, 1e6],
};

function usage(msg) {
  if (msg) console.error(`micro.mjs: ${msg}`);
  console.error(
    `usage: node --expose-gc bench/micro.mjs {${Object.keys(BENCHES).join('|')}} [N] [--selector NAME] [--coro gen|async]`,
  );
  process.exit(2);
}

function parseArgs(argv) {
  const out = { bench: undefined, n: 0, selector: undefined, coro: 'gen' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--selector') out.selector = argv[++i];
    else if (a.startsWith('--selector=')) out.selector = a.slice('--selector='.length);
    else if (a === '--coro') out.coro = argv[++i];
    else if (a.startsWith('--coro=')) out.coro = a.slice('--coro='.length);
    else if (a === '--n') out.n = Number(argv[++i]);
    else if (a.startsWith('-')) usage(`unknown option ${a}`);
    else if (out.bench === undefined) out.bench = a;
    else out.n = Number(a);
  }
  if (!(out.bench in BENCHES)) usage(out.bench === undefined ? 'no BENCH given' : `unknown BENCH ${out.bench}`);
  if (!Number.isInteger(out.n) || out.n < 0) usage('N must be a positive integer');
  if (out.selector === '') usage('--selector needs a name');
  if (out.coro !== 'gen' && out.coro !== 'async') usage('--coro is gen or async');
  return out;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const [gen, asyncFn, defaultN] = BENCHES[args.bench];
  const n = args.n || defaultN;
  const coro = asyncFn !== null && args.coro === 'async' ? 'async' : 'gen';
  const selector = args.selector !== undefined ? new (aio.selectorClass(args.selector))() : new aio.DefaultSelector();
  const name = selector.name;
  // The platform's default backend with generator coroutines is plain
  // "aionode" (the shared harness's row); anything else says what differs.
  let impl = 'aionode';
  if (name !== aio.availableSelectors()[0]) impl += `-${name}`;
  if (asyncFn !== null && coro === 'async') impl += '-async';
  const loop = new aio.SelectorEventLoop(selector);
  const task = coro === 'async' ? loop.createTask(() => asyncFn(loop, n)) : loop.createTask(gen(loop, n));
  const res = await loop.runUntilComplete(task);
  const stats = loop.nativeStats();
  loop.close();
  console.log(
    JSON.stringify({
      bench: args.bench,
      impl,
      n,
      runtime: `aionode ${version} / Node ${process.version}`,
      selector: name,
      ...(asyncFn !== null ? { coro } : {}),
      ...res,
      batches: stats.batches,
    }),
  );
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
