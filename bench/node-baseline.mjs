// Node baselines for bench/micro.mjs, used by scripts/bench.mjs only when the
// shared harness (../shared/bench/micro/micro_node.js) is absent. The same
// workloads and output keys as that file, for the keys scripts/bench.mjs needs.
//
//   node --expose-gc bench/node-baseline.mjs KEY [N]
// KEY: callsoon_batch_immediate callsoon_chain_immediate timers timers_cancel
//      tasks_immediate task_mem pingpong
const now = () => Number(process.hrtime.bigint()) / 1e9;
const cpuNow = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

// Integer-ms delays 0..1000, mulberry32 seed 12345: the same as micro.mjs.
function intMsDelays(n, seed = 12345) {
  let a = seed >>> 0;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * 1001);
  }
  return out;
}

function deferred() {
  let resolve;
  const promise = new Promise((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

async function callsoonBatch(n) {
  const d = deferred();
  const noop = () => {};
  const t0 = now();
  for (let i = 0; i < n - 1; i++) setImmediate(noop);
  setImmediate(() => d.resolve());
  const t1 = now();
  await d.promise;
  const t2 = now();
  return { ops_per_s: n / (t2 - t0), schedule_ops_per_s: n / (t1 - t0), run_ops_per_s: n / (t2 - t1) };
}

async function callsoonChain(n) {
  const d = deferred();
  let left = n;
  function step() {
    if (--left) setImmediate(step);
    else d.resolve();
  }
  const t0 = now();
  setImmediate(step);
  await d.promise;
  return { ops_per_s: n / (now() - t0) };
}

function timers(cancel) {
  return async (n) => {
    const delays = intMsDelays(n);
    const d = deferred();
    const cancelled = n - Math.floor((n + 9) / 10);
    let left = cancel ? n - cancelled : n;
    const fire = () => {
      if (!--left) d.resolve();
    };
    globalThis.gc?.();
    const c0 = cpuNow();
    const t0 = now();
    const handles = new Array(n);
    for (let i = 0; i < n; i++) handles[i] = setTimeout(fire, delays[i]);
    let t1 = now();
    const res = { schedule_ops_per_s: n / (t1 - t0) };
    if (cancel) {
      for (let i = 0; i < n; i++) if (i % 10) clearTimeout(handles[i]);
      const tc = now();
      res.cancel_ops_per_s = cancelled / (tc - t1);
      t1 = tc;
    }
    await d.promise;
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

async function tasksImmediate(n, batch = 10000) {
  const t = async () => {
    await new Promise((r) => setImmediate(r));
  };
  const t0 = now();
  for (let b = 0; b < n / batch; b++) {
    const ps = new Array(batch);
    for (let i = 0; i < batch; i++) ps[i] = t();
    await Promise.all(ps);
  }
  return { ops_per_s: n / (now() - t0) };
}

async function taskMem(n) {
  if (!globalThis.gc) throw new Error('run with --expose-gc');
  async function waiter(p) {
    await p;
  }
  await new Promise((r) => setImmediate(r));
  globalThis.gc();
  const m0 = process.memoryUsage();
  const t0 = now();
  // the never-resolved promises keep each suspended async function alive
  const inner = new Array(n);
  const outer = new Array(n);
  for (let i = 0; i < n; i++) {
    inner[i] = new Promise(() => {});
    outer[i] = waiter(inner[i]);
  }
  await new Promise((r) => setImmediate(r));
  const t1 = now();
  globalThis.gc();
  const m1 = process.memoryUsage();
  const res = {
    ops_per_s: n / (t1 - t0),
    bytes_per_task: (m1.rss - m0.rss) / n,
    heap_bytes_per_task: (m1.heapUsed - m0.heapUsed) / n,
    rss_mib_before: m0.rss / 2 ** 20,
    rss_mib_after: m1.rss / 2 ** 20,
  };
  if (inner.length + outer.length !== 2 * n) throw new Error('unreachable');
  return res;
}

async function pingpong(n) {
  const rounds = Math.floor(n / 2);
  const box = { a: null, b: deferred() };
  async function pinger() {
    for (let i = 0; i < rounds; i++) {
      const fb = box.b;
      const fa = deferred();
      box.a = fa;
      fb.resolve(i);
      await fa.promise;
    }
  }
  async function ponger() {
    for (let i = 0; i < rounds; i++) {
      const v = await box.b.promise;
      box.b = deferred();
      box.a.resolve(v);
    }
  }
  const t0 = now();
  await Promise.all([ponger(), pinger()]);
  return { ops_per_s: (rounds * 2) / (now() - t0) };
}

const BENCHES = {
  callsoon_batch_immediate: ['callsoon_batch', 'node setImmediate', callsoonBatch],
  callsoon_chain_immediate: ['callsoon_chain', 'node setImmediate', callsoonChain],
  timers: ['timers', 'node setTimeout', timers(false)],
  timers_cancel: ['timers_cancel', 'node setTimeout', timers(true)],
  tasks_immediate: ['tasks', 'node async fn (await setImmediate promise)', tasksImmediate],
  task_mem: ['task_mem', 'node async fn', taskMem, 1e5],
  pingpong: ['pingpong', 'node promises', pingpong],
};

const key = process.argv[2];
if (!(key in BENCHES)) {
  console.error(`usage: node --expose-gc bench/node-baseline.mjs {${Object.keys(BENCHES).join('|')}} [N]`);
  process.exit(2);
}
const [bench, impl, fn, defaultN = 1e6] = BENCHES[key];
const n = Number(process.argv[3] || defaultN);
const res = await fn(n);
console.log(JSON.stringify({ bench, impl, n, runtime: `Node ${process.version}`, ...res }));
process.exit(0);
