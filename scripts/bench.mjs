#!/usr/bin/env node
// `npm run bench`: aionode's loop primitives against their Node baselines, in
// one run, each measurement in a fresh process, median of --reps runs; then
// timer lateness on an idle loop. Prints a Markdown report on stdout and the
// progress (every command it runs) on stderr.
//
//   node scripts/bench.mjs [--reps R] [--peers] [--echo] [--only LIST] [--raw FILE]
//                          [--n N] [--lateness-n N] [--echo-dur S]
//                          [--echo-configs quick|full] [--proc] [--no-build]
//
//   --reps R        repetitions of each micro bench and of the burst lateness
//                   runs (default 3); the serial lateness runs once (N samples)
//   --peers         also run the shared harness's Python rows (asyncio, uvloop;
//                   in the echo table: uvloop-proto, asyncio-proto)
//   --echo          also run the loopback echo rows (bench/echo-server.mjs
//                   under the shared harness's echo_client): c-epoll,
//                   node-net, aionode-proto, aionode-streams, aionode-uring
//                   (--loop io_uring; skipped with the reason where io_uring
//                   is not usable); --only echo runs these alone
//   --proc          also run the subprocess rows (bench/subprocess.mjs: spawn
//                   and wait vs child_process, communicate 64 MiB; on epoll
//                   and io_uring) and the thread rows (bench/threads.mjs:
//                   cross-thread posts vs MessagePort)
//   --echo-dur S    measured seconds per echo run (default 3, plus 1 s warm-up)
//   --echo-configs  full (default): 1/10/100 KiB x 10/100 connections + churn
//                   c10, as the peer harness; quick: 1 KiB x 10/100 only
//   --only LIST     comma-separated subset of: callsoon_batch callsoon_chain
//                   timers timers_cancel tasks tasks_async task_mem
//                   task_mem_async pingpong pingpong_async lateness_burst
//                   lateness_serial echo subprocess threads (*_async:
//                   async-function coroutines)
//   --raw FILE      append every result as one JSON line to FILE
//   --n N           override the micro benches' size (smoke tests only: the
//                   figures are then not comparable with anything)
//   --lateness-n N  timers per lateness run (default 2000)
//   --no-build      skip build-native --if-needed and tsc
//
// Node baselines come from ../shared/bench/micro/micro_node.js (the shared
// harness) when it exists, else from bench/node-baseline.mjs (same code).
import { spawn, spawnSync } from 'node:child_process';
import net from 'node:net';
import { appendFileSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// The shared harness: SHARED_BENCH, else ../shared/bench beside the checkout
// (or two levels up, for a git worktree under <project>/wt/NAME).
const sharedBench =
  process.env.SHARED_BENCH ??
  [path.resolve(root, '..', 'shared', 'bench'), path.resolve(root, '..', '..', 'shared', 'bench')].find((d) => existsSync(d)) ??
  path.resolve(root, '..', 'shared', 'bench');
const JOB_TIMEOUT_MS = 120_000;

const ALL = [
  'callsoon_batch', 'callsoon_chain', 'timers', 'timers_cancel', 'tasks', 'tasks_async', 'task_mem', 'task_mem_async',
  'pingpong', 'pingpong_async', 'lateness_burst', 'lateness_serial',
];

// Not in the default set: --echo or --only echo adds it; subprocess and
// threads (bench/subprocess.mjs, bench/threads.mjs) by --only or --proc.
const OPTIONAL = ['echo', 'subprocess', 'threads'];

function parseArgs(argv) {
  const o = { reps: 3, peers: false, only: new Set(ALL), raw: null, n: 0, latN: 2000, build: true, echoDur: 3, echoConfigs: 'full' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) die(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--reps') o.reps = posInt(val(), a);
    else if (a === '--peers') o.peers = true;
    else if (a === '--echo') o.only.add('echo');
    else if (a === '--proc') {
      o.only.add('subprocess');
      o.only.add('threads');
    }
    else if (a === '--echo-dur') o.echoDur = posInt(val(), a);
    else if (a === '--echo-configs') {
      o.echoConfigs = val();
      if (!['quick', 'full'].includes(o.echoConfigs)) die(`--echo-configs: expected quick or full, got ${JSON.stringify(o.echoConfigs)}`);
    }
    else if (a === '--only') {
      o.only = new Set(val().split(',').filter(Boolean));
      for (const b of o.only) if (!ALL.includes(b) && !OPTIONAL.includes(b)) die(`unknown bench ${b} (known: ${[...ALL, ...OPTIONAL].join(' ')})`);
    } else if (a === '--raw') o.raw = path.resolve(val());
    else if (a === '--n') o.n = posInt(val(), a);
    else if (a === '--lateness-n') o.latN = posInt(val(), a);
    else if (a === '--no-build') o.build = false;
    else if (a === '-h' || a === '--help') {
      console.log(readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').slice(1).filter((l, i, a) => a.slice(0, i + 1).every((x) => x.startsWith('//'))).join('\n'));
      process.exit(0);
    } else die(`unknown argument ${a}`);
  }
  return o;
}

function posInt(s, name) {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1) die(`${name} needs a positive integer, got ${s}`);
  return n;
}

function die(msg) {
  console.error(`bench: ${msg}`);
  process.exit(2);
}

const log = (s) => console.error(s);

function runOrDie(cmd, argv) {
  log(`$ ${[cmd, ...argv].join(' ')}`);
  // stdout of the build goes to stderr: stdout is the report.
  const r = spawnSync(cmd, argv, { cwd: root, stdio: ['ignore', 2, 2] });
  if (r.status !== 0) {
    console.error(`bench: command failed with status ${r.status}`);
    process.exit(1);
  }
}

// --- what can run here -------------------------------------------------------

function findPython() {
  // As the shared harness (lib.sh find_python): PY=..., else the first python3
  // that imports uvloop serves both the asyncio and the uvloop rows; without
  // one, asyncio runs on the first python3 and uvloop is skipped.
  const has = (p, mod) => spawnSync(p, ['-c', `import ${mod}`], { stdio: 'ignore' }).status === 0;
  if (process.env.PY) {
    if (!has(process.env.PY, 'asyncio')) return { py: null, uv: null, note: `PY=${process.env.PY} does not run; Python rows skipped` };
    return { py: process.env.PY, uv: has(process.env.PY, 'uvloop') ? process.env.PY : null };
  }
  const cands = [];
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const p = path.join(dir, 'python3');
    if (dir && existsSync(p) && !cands.includes(p)) cands.push(p);
  }
  if (existsSync('/usr/bin/python3') && !cands.includes('/usr/bin/python3')) cands.push('/usr/bin/python3');
  for (const p of cands) if (has(p, 'uvloop')) return { py: p, uv: p };
  const py = cands.find((p) => has(p, 'asyncio')) ?? null;
  return {
    py,
    uv: null,
    note: 'no python3 with uvloop: uvloop rows skipped (Debian/Ubuntu: apt-get install -y python3-uvloop, then rerun)',
  };
}

function floorBinary() {
  // The C timerfd+epoll floor for the lateness table (Linux, needs cc).
  if (process.platform !== 'linux') return null;
  const src = path.join(root, 'bench', 'timerfd-floor.c');
  const out = path.join(root, 'build', 'bench', 'timerfd-floor');
  if (existsSync(out) && statSync(out).mtimeMs >= statSync(src).mtimeMs) return out;
  mkdirSync(path.dirname(out), { recursive: true });
  const cc = process.env.CC || 'cc';
  log(`$ ${cc} -O2 -o ${path.relative(root, out)} bench/timerfd-floor.c -lm`);
  const r = spawnSync(cc, ['-O2', '-o', out, src, '-lm'], { stdio: ['ignore', 2, 2] });
  if (r.status !== 0) {
    log('note: could not compile bench/timerfd-floor.c; the C floor row is skipped');
    return null;
  }
  return out;
}

function machine() {
  const cpu = (() => {
    try {
      const m = readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.*)$/m);
      if (m) return m[1].trim();
    } catch {}
    return os.cpus()[0]?.model ?? 'unknown';
  })();
  const git = spawnSync('git', ['describe', '--always', '--dirty'], { cwd: root, encoding: 'utf8' });
  return {
    nproc: os.availableParallelism?.() ?? os.cpus().length,
    cpu,
    ramGiB: os.totalmem() / 2 ** 30,
    node: process.version,
    kernel: `${os.type()} ${os.release()}`,
    rev: git.status === 0 ? git.stdout.trim() : 'unversioned',
  };
}

function loadavg() {
  return os.loadavg().map((x) => x.toFixed(2)).join(' ');
}

// --- jobs -------------------------------------------------------------------

// The running child, so that SIGINT/SIGTERM stop it as well.
let current = null;
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    if (current !== null) current.kill('SIGKILL');
    console.error(`bench: ${sig}, stopped`);
    process.exit(130);
  });
}

function spawnJob(cmd, args, opts) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] });
    current = child;
    let stdout = '';
    let stderr = '';
    let error = null;
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr = (stderr + d).slice(-8192)));
    const timer = setTimeout(() => {
      error = new Error(`timed out after ${JOB_TIMEOUT_MS / 1000} s`);
      child.kill('SIGKILL');
    }, JOB_TIMEOUT_MS);
    child.on('error', (e) => (error = e));
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      current = null;
      resolve({ status, signal, stdout, stderr, error });
    });
  });
}

// A job: { bench, impl (row key), cmd, args }. Its result is the last stdout
// line that starts with '{' (the shared harness's rule).
async function runJob(job) {
  const env = { ...process.env };
  delete env.AIONODE_DEBUG; // debug mode times every callback
  delete env.AIONODE_SELECTOR; // aionode jobs name their selector explicitly
  const t0 = Date.now();
  const r = await spawnJob(job.cmd, job.args, { cwd: job.cwd ?? root, env });
  const secs = ((Date.now() - t0) / 1000).toFixed(1);
  const line = (r.stdout ?? '').split('\n').filter((l) => l.startsWith('{')).pop();
  let res = null;
  if (line) {
    try {
      res = JSON.parse(line);
    } catch {}
  }
  if (r.status !== 0 || res === null || res.error) {
    const why = r.error ? r.error.message : res?.error ?? `exit ${r.status}${r.signal ? ` (${r.signal})` : ''}`;
    log(`  FAILED ${job.bench} ${job.impl}: ${why}\n${(r.stderr ?? '').trim().split('\n').slice(-5).join('\n')}`);
    return { bench: job.bench, impl: job.impl, error: String(why) };
  }
  log(`  ${job.bench.padEnd(15)} ${job.impl.padEnd(22)} ${brief(res)}  (${secs} s)`);
  return { ...res, bench: job.bench, impl: job.impl };
}

function brief(r) {
  if (r.p99_ms !== undefined) return `p50 ${ms(r.p50_ms)} p99 ${ms(r.p99_ms)} max ${ms(r.max_ms)} early ${r.early}`;
  let s = `${rate(r.ops_per_s)}/s`;
  if (r.schedule_ops_per_s) s += `, schedule ${rate(r.schedule_ops_per_s)}/s`;
  return s;
}

function rate(x) {
  if (x === undefined || x === null || !Number.isFinite(x)) return '-';
  if (x >= 1e6) return `${(x / 1e6).toFixed(2)} M`;
  if (x >= 1e3) return `${(x / 1e3).toFixed(1)} k`;
  return x.toFixed(0);
}

function ms(x) {
  return x === undefined || x === null ? '-' : `${x.toFixed(3)} ms`;
}

function median(xs) {
  const s = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return undefined;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

// --- main -------------------------------------------------------------------

const opt = parseArgs(process.argv.slice(2));
const started = new Date();
const t0 = Date.now();

if (opt.build) {
  runOrDie(process.execPath, ['scripts/build-native.mjs', '--if-needed']);
  runOrDie(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json']);
}

const sel = spawnSync(process.execPath, ['-e', "console.log(require('./dist/lib/index.js').availableSelectors().join(','))"], {
  cwd: root,
  encoding: 'utf8',
});
if (sel.status !== 0) die(`cannot load aionode from dist/lib:\n${sel.stderr}`);
const selectors = sel.stdout.trim().split(',').filter(Boolean);
const defaultSel = selectors[0];
const sharedNode = path.join(sharedBench, 'micro', 'micro_node.js');
const baseline = existsSync(sharedNode) ? sharedNode : path.join(root, 'bench', 'node-baseline.mjs');
log(`node baselines: ${path.relative(root, baseline)}; selectors: ${selectors.join(' ')} (default ${defaultSel})`);

let python = { py: null, uv: null };
const microPy = path.join(sharedBench, 'micro', 'micro_py.py');
if (opt.peers) {
  if (!existsSync(microPy)) log(`note: --peers: ${microPy} not found; Python rows skipped`);
  else {
    python = findPython();
    if (python.note) log(`note: ${python.note}`);
    if (python.py) log(`python rows: asyncio on ${python.py}${python.uv ? `, uvloop on ${python.uv}` : ''}`);
  }
}

const micro = path.join(root, 'bench', 'micro.mjs');
const lateness = path.join(root, 'bench', 'lateness.mjs');
const nArg = opt.n ? [String(opt.n)] : [];
const node = (script, ...args) => ({ cmd: process.execPath, args: ['--expose-gc', script, ...args] });
const aioRow = (s) => `aionode ${s}`;

// Which aionode selectors run each micro bench: all for the ones whose cost
// can depend on the backend (dispatch after a select, timer arming), the
// default for the ones that never leave the ready queue. `micro` is the
// bench.mjs workload and its --coro; `node` the baseline's key (tasks: an
// async fn awaiting a setImmediate promise, i.e. one loop turn as sleep(0));
// `py` the micro_py.py workload run with --peers.
const PER_BENCH = {
  callsoon_batch: { sels: selectors, micro: ['callsoon_batch'], node: 'callsoon_batch_immediate', py: 'callsoon_batch' },
  callsoon_chain: { sels: [defaultSel], micro: ['callsoon_chain'], node: 'callsoon_chain_immediate', py: 'callsoon_chain' },
  timers: { sels: selectors, micro: ['timers'], node: 'timers', py: 'timers' },
  timers_cancel: { sels: [defaultSel], micro: ['timers_cancel'], node: 'timers_cancel', py: 'timers_cancel' },
  tasks: { sels: [defaultSel], micro: ['tasks', '--coro', 'gen'], node: 'tasks_immediate', py: 'tasks' },
  tasks_async: { sels: [defaultSel], micro: ['tasks', '--coro', 'async'], node: 'tasks_immediate' },
  task_mem: { sels: [defaultSel], micro: ['task_mem', '--coro', 'gen'], node: 'task_mem', py: 'task_mem' },
  task_mem_async: { sels: [defaultSel], micro: ['task_mem', '--coro', 'async'], node: 'task_mem' },
  pingpong: { sels: [defaultSel], micro: ['pingpong', '--coro', 'gen'], node: 'pingpong', py: 'pingpong' },
  pingpong_async: { sels: [defaultSel], micro: ['pingpong', '--coro', 'async'], node: 'pingpong' },
};

const microJobs = [];
const nodeKeys = new Set(); // a baseline shared by two rows runs once per rep
for (const [bench, spec] of Object.entries(PER_BENCH)) {
  if (!opt.only.has(bench)) continue;
  for (const s of spec.sels) microJobs.push({ bench, impl: aioRow(s), ...node(micro, ...spec.micro, ...nArg, '--selector', s) });
  if (!nodeKeys.has(spec.node)) {
    nodeKeys.add(spec.node);
    microJobs.push({ bench: `node:${spec.node}`, impl: 'node', ...node(baseline, spec.node, ...nArg) });
  }
  if (python.py && spec.py) {
    const pyN = opt.n ? ['--n', String(opt.n)] : [];
    microJobs.push({ bench, impl: 'asyncio', cmd: python.py, args: [microPy, spec.py, '--loop', 'asyncio', ...pyN] });
    if (python.uv) microJobs.push({ bench, impl: 'uvloop', cmd: python.uv, args: [microPy, spec.py, '--loop', 'uvloop', ...pyN] });
  }
}
const latArgs = ['--n', String(opt.latN)];
if (opt.only.has('lateness_burst')) {
  for (const s of selectors) microJobs.push({ bench: 'lateness_burst', impl: aioRow(s), ...node(lateness, '--mode', 'burst', '--selector', s, ...latArgs) });
  microJobs.push({ bench: 'lateness_burst', impl: 'node', ...node(lateness, '--impl', 'settimeout', '--mode', 'burst', ...latArgs) });
}
// Serial lateness takes N x 25 ms per row, so it runs once, default selector only.
const onceJobs = [];
if (opt.only.has('lateness_serial')) {
  onceJobs.push({ bench: 'lateness_serial', impl: aioRow(defaultSel), ...node(lateness, '--mode', 'serial', '--selector', defaultSel, ...latArgs) });
  onceJobs.push({ bench: 'lateness_serial', impl: 'node', ...node(lateness, '--impl', 'settimeout', '--mode', 'serial', ...latArgs) });
  const floor = floorBinary();
  if (floor) onceJobs.push({ bench: 'lateness_serial', impl: 'C floor', cmd: floor, args: [String(opt.latN)] });
}

const loadBefore = loadavg();
log(`load average before: ${loadBefore}`);
const results = [];
const record = (r) => {
  results.push(r);
  if (opt.raw) appendFileSync(opt.raw, `${JSON.stringify({ ...r, started: started.toISOString() })}\n`);
};
for (let rep = 1; rep <= opt.reps && microJobs.length > 0; rep++) {
  log(`rep ${rep}/${opt.reps}`);
  // Rotate the order each repetition, as the shared harness does, so slow
  // drift of the machine hits every implementation alike.
  for (let k = 0; k < microJobs.length; k++) record({ ...(await runJob(microJobs[(k + rep - 1) % microJobs.length])), rep });
}
if (onceJobs.length > 0) log(`serial lateness: ${opt.latN} timers per row, ~${Math.ceil(opt.latN * 0.025 + 3)} s per row`);
for (const j of onceJobs) record({ ...(await runJob(j)), rep: 1 });
let echoPinned = false;
const echoResults = opt.only.has('echo') ? await runEcho() : [];
// The subprocess and thread benches are whole scripts with their own
// baselines (child_process, MessagePort) measured in the same process run;
// their Markdown tables go into the report as they print them.
const extraTables = [];
function runScript(title, script, args) {
  log(`$ node ${script} ${args.join(' ')}`);
  const r = spawnSync(process.execPath, [path.join(root, script), ...args], { cwd: root, encoding: 'utf8', timeout: JOB_TIMEOUT_MS });
  if (r.status !== 0) {
    extraTables.push(`### ${title}`, '', `failed (status ${r.status}${r.error ? `, ${r.error.message}` : ''}): ${(r.stderr ?? '').trim().split('\n').pop()}`, '');
    return;
  }
  const lines = r.stdout.split('\n').filter((l) => !l.startsWith('{'));
  while (lines.length > 0 && lines[0].trim() === '') lines.shift();
  while (lines.length > 0 && lines[lines.length - 1].trim() === '') lines.pop();
  extraTables.push(`### ${title}`, '', ...lines, '');
  if (opt.raw) for (const l of r.stdout.split('\n')) if (l.startsWith('{')) appendFileSync(opt.raw, `${l}\n`);
}
if (opt.only.has('subprocess')) {
  runScript('Subprocesses (epoll)', 'bench/subprocess.mjs', ['--loop', 'epoll']);
  runScript('Subprocesses (io_uring)', 'bench/subprocess.mjs', ['--loop', 'io_uring']);
}
if (opt.only.has('threads')) runScript('Threads', 'bench/threads.mjs', ['--reps', String(opt.reps)]);
const loadAfter = loadavg();
log(`load average after: ${loadAfter}; ${((Date.now() - t0) / 1000).toFixed(0)} s`);

// --- echo rows -----------------------------------------------------------------

/**
 * Why io_uring cannot run here, or null when a ProactorEventLoop opens on it
 * (asked of dist/lib in a child, as the echo server will load it).
 */
function uringUnavailable() {
  const probe = `
    const a = require('./dist/lib/index.js');
    if (typeof a.ProactorEventLoop !== 'function' || typeof a.IoUringProactor !== 'function') {
      console.log('this build exports no ProactorEventLoop/IoUringProactor');
    } else {
      try { new a.ProactorEventLoop(new a.IoUringProactor()).close(); console.log('ok'); }
      catch (e) { console.log('io_uring is not usable here: ' + (e && e.message)); }
    }`;
  const r = spawnSync(process.execPath, ['-e', probe], { cwd: root, encoding: 'utf8' });
  const out = (r.stdout ?? '').trim() || `probe failed (status ${r.status}): ${(r.stderr ?? '').trim().split('\n').pop()}`;
  return out === 'ok' ? null : out;
}

/** The shared harness's echo client, compiled into build/bench (the shared folder is left alone). */
function echoClient() {
  const src = path.join(sharedBench, 'echo_client.c');
  if (!existsSync(src)) {
    log(`note: ${src} not found; echo rows skipped`);
    return null;
  }
  const out = path.join(root, 'build', 'bench', 'echo_client');
  if (existsSync(out) && statSync(out).mtimeMs >= statSync(src).mtimeMs) return out;
  mkdirSync(path.dirname(out), { recursive: true });
  const cc = process.env.CC || 'cc';
  log(`$ ${cc} -O2 -o ${path.relative(root, out)} ${src}`);
  const r = spawnSync(cc, ['-O2', '-o', out, src], { stdio: ['ignore', 2, 2] });
  if (r.status !== 0) {
    log('note: could not compile the echo client; echo rows skipped');
    return null;
  }
  return out;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function portOpen(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** The shared harness's C epoll echo server (the reference row), compiled into build/bench. */
function cEpollServer() {
  const src = path.join(sharedBench, 'servers', 'echo_server_epoll.c');
  if (!existsSync(src)) return null;
  const out = path.join(root, 'build', 'bench', 'echo_server_epoll');
  if (existsSync(out) && statSync(out).mtimeMs >= statSync(src).mtimeMs) return out;
  mkdirSync(path.dirname(out), { recursive: true });
  const cc = process.env.CC || 'cc';
  log(`$ ${cc} -O2 -o ${path.relative(root, out)} ${src}`);
  return spawnSync(cc, ['-O2', '-o', out, src], { stdio: ['ignore', 2, 2] }).status === 0 ? out : null;
}

/** The echo configurations of --echo-configs: `quick` (1 KiB) or `full` (the peer harness's matrix). */
function echoConfigs(which) {
  if (which === 'quick') return [['echo', 1024, 10], ['echo', 1024, 100]];
  const out = [];
  for (const size of [1024, 10240, 102400]) for (const conc of [10, 100]) out.push(['echo', size, conc]);
  out.push(['churn', 64, 10]);
  return out;
}

/**
 * The echo rows, as the shared harness's run_echo.sh runs them: per
 * repetition, per config, every row in an order rotated each repetition;
 * a fresh server each time, the client for 1 s warm-up + --echo-dur s.
 * With taskset and 2+ CPUs the server is pinned to CPU 0 and the client to
 * CPU 1, as the harness does. The peers (c-epoll, node-net, uvloop-proto,
 * asyncio-proto) run in the same run, so the ratios compare like with like.
 */
async function runEcho() {
  const client = echoClient();
  if (client === null) return [];
  const echoServer = path.join(root, 'bench', 'echo-server.mjs');
  const nodeNet = path.join(sharedBench, 'servers', 'echo_server_node.js');
  const pyServer = path.join(sharedBench, 'servers', 'echo_server_py.py');
  const rows = [];
  const cEpoll = cEpollServer();
  if (cEpoll !== null) rows.push({ name: 'c-epoll', cmd: cEpoll, args: [] });
  else log('skip c-epoll: the shared harness\'s servers/echo_server_epoll.c is missing or does not compile');
  if (existsSync(nodeNet)) rows.push({ name: 'node-net', cmd: process.execPath, args: [nodeNet] });
  rows.push({ name: 'aionode-proto', cmd: process.execPath, args: [echoServer, '--api', 'protocol', '--loop', 'epoll'] });
  rows.push({ name: 'aionode-streams', cmd: process.execPath, args: [echoServer, '--api', 'streams', '--loop', 'epoll'] });
  const uring = uringUnavailable();
  if (uring === null) rows.push({ name: 'aionode-uring', cmd: process.execPath, args: [echoServer, '--api', 'protocol', '--loop', 'io_uring'] });
  else log(`skip aionode-uring: ${uring}`);
  if (opt.peers && existsSync(pyServer)) {
    const py = findPython();
    if (py.note) log(`note: ${py.note}`);
    if (py.uv) rows.push({ name: 'uvloop-proto', cmd: py.uv, args: [pyServer, '--loop', 'uvloop', '--api', 'proto'], portFirst: true });
    if (py.py) rows.push({ name: 'asyncio-proto', cmd: py.py, args: [pyServer, '--loop', 'asyncio', '--api', 'proto'], portFirst: true });
  }
  const pin = os.cpus().length >= 2 && spawnSync('taskset', ['-c', '0', 'true']).status === 0;
  const configs = echoConfigs(opt.echoConfigs);
  log(`echo rows: ${rows.map((r) => r.name).join(' ')}; ${configs.length} configs x ${opt.reps} reps x ${opt.echoDur + 1} s${pin ? '; server on CPU 0, client on CPU 1' : '; unpinned'}`);
  const out = [];
  for (let rep = 1; rep <= opt.reps; rep++) {
    for (const [mode, size, conc] of configs) {
      for (let k = 0; k < rows.length; k++) {
        const row = rows[(k + rep - 1) % rows.length];
        const port = await freePort();
        const env = { ...process.env };
        delete env.AIONODE_DEBUG;
        delete env.AIONODE_SELECTOR;
        delete env.AIONODE_LOOP;
        const argv = row.portFirst ? [row.args[0], String(port), ...row.args.slice(1)] : [...row.args, String(port)];
        const [cmd, cmdArgs] = pin ? ['taskset', ['-c', '0', row.cmd, ...argv]] : [row.cmd, argv];
        const server = spawn(cmd, cmdArgs, { cwd: root, env, stdio: ['ignore', 'ignore', 'pipe'] });
        let serverErr = '';
        server.stderr.setEncoding('utf8').on('data', (d) => (serverErr = (serverErr + d).slice(-2000)));
        let up = false;
        for (let i = 0; i < 100 && !up && server.exitCode === null; i++) {
          up = await portOpen(port);
          if (!up) await new Promise((r) => setTimeout(r, 100));
        }
        let res = { bench: 'echo', impl: row.name, mode, size, conc, rep };
        if (!up) {
          res.error = `server did not listen: ${serverErr.trim().split('\n').pop() ?? ''}`;
        } else {
          const args = ['-m', mode, '-p', String(port), '-s', String(size), '-c', String(conc), '-d', String(opt.echoDur), '-w', '1'];
          const r = pin ? await spawnJob('taskset', ['-c', '1', client, ...args], { cwd: root }) : await spawnJob(client, args, { cwd: root });
          const line = (r.stdout ?? '').split('\n').find((l) => l.startsWith('RESULT'));
          if (line === undefined) res.error = `client printed no RESULT (status ${r.status})`;
          else for (const [, k2, v] of line.matchAll(/(\w+)=(\S+)/g)) res[k2] = Number.isNaN(Number(v)) ? v : Number(v);
        }
        server.kill('SIGTERM');
        await new Promise((r) => (server.exitCode !== null ? r() : server.once('exit', r)));
        log(`  echo ${row.name.padEnd(16)} ${mode} ${size} B x ${conc}: ${res.error ?? `${rate(res.rps)} req/s, p99 ${res.p99_us} us`}`);
        record(res);
        out.push(res);
      }
    }
  }
  echoPinned = pin;
  return out;
}

// --- report -------------------------------------------------------------------

const groups = new Map(); // "bench|impl" -> [results]
for (const r of results) {
  if (r.error) continue;
  const k = `${r.bench}|${r.impl}`;
  if (!groups.has(k)) groups.set(k, []);
  groups.get(k).push(r);
}
const med = (bench, impl, key) => median((groups.get(`${bench}|${impl}`) ?? []).map((r) => r[key]));
// The Node baseline of a micro bench is stored under its baseline key.
const nodeMed = (bench, key) => med(PER_BENCH[bench] ? `node:${PER_BENCH[bench].node}` : bench, 'node', key);
const int = (x) => (x === undefined ? '-' : x.toFixed(0));
const runs = (bench, impl) => (groups.get(`${bench}|${impl}`) ?? []).length;
const sum = (bench, impl, key) => (groups.get(`${bench}|${impl}`) ?? []).reduce((a, r) => a + (r[key] ?? 0), 0);

const m = machine();
const out = [];
const p = (s = '') => out.push(s);
p(`## aionode micro benchmarks, ${started.toISOString().slice(0, 16).replace('T', ' ')} UTC`);
p();
p(`${m.nproc} CPU "${m.cpu}", ${m.ramGiB.toFixed(0)} GiB RAM, ${m.kernel}; Node ${m.node}; aionode ${m.rev}.`);
p(`Median of ${opt.reps} runs per cell, each in a fresh process, order rotated per repetition; unpinned.`);
p(`Load average (1/5/15 min) before the run ${loadBefore}, after ${loadAfter}.`);
if (opt.n) p(`**Smoke run with N = ${opt.n}: not comparable with the 1M figures.**`);
p();

const aioImpls = selectors.map(aioRow);
const peerImpls = ['asyncio', 'uvloop'].filter((i) => [...groups.keys()].some((k) => k.endsWith(`|${i}`)));
// Each row: [label, bench, key, better ('hi' = rate, 'lo' = cost), format]
const ROWS = [
  ['1M callSoon batched: total ops/s', 'callsoon_batch', 'ops_per_s', 'hi', rate],
  ['  schedule ops/s', 'callsoon_batch', 'schedule_ops_per_s', 'hi', rate],
  ['  dispatch ops/s', 'callsoon_batch', 'run_ops_per_s', 'hi', rate],
  ['1M callSoon chained: ops/s', 'callsoon_chain', 'ops_per_s', 'hi', rate],
  ['1M callLater (0-1 s): schedule ops/s', 'timers', 'schedule_ops_per_s', 'hi', rate],
  ['  total s (schedule + all fired)', 'timers', 'total_s', 'lo', (x) => (x === undefined ? '-' : x.toFixed(2))],
  ['  CPU ns/timer', 'timers', 'cpu_ns_per_timer', 'lo', (x) => (x === undefined ? '-' : x.toFixed(0))],
  ['1M timers, 90% cancelled: schedule ops/s', 'timers_cancel', 'schedule_ops_per_s', 'hi', rate],
  ['  cancel ops/s', 'timers_cancel', 'cancel_ops_per_s', 'hi', rate],
  ['  total s', 'timers_cancel', 'total_s', 'lo', (x) => (x === undefined ? '-' : x.toFixed(2))],
  ['  CPU ns/timer', 'timers_cancel', 'cpu_ns_per_timer', 'lo', (x) => (x === undefined ? '-' : x.toFixed(0))],
  ['1M tasks awaiting sleep(0), generator: tasks/s', 'tasks', 'ops_per_s', 'hi', rate],
  ['1M tasks awaiting sleep(0), async fn: tasks/s', 'tasks_async', 'ops_per_s', 'hi', rate],
  ['100k suspended tasks, generator: RSS B/task', 'task_mem', 'bytes_per_task', 'lo', int],
  ['  V8 heapUsed B/task', 'task_mem', 'heap_bytes_per_task', 'lo', int],
  ['  create + suspend tasks/s', 'task_mem', 'ops_per_s', 'hi', rate],
  ['100k suspended tasks, async fn: RSS B/task', 'task_mem_async', 'bytes_per_task', 'lo', int],
  ['  V8 heapUsed B/task', 'task_mem_async', 'heap_bytes_per_task', 'lo', int],
  ['  create + suspend tasks/s', 'task_mem_async', 'ops_per_s', 'hi', rate],
  ['1M Future hand-offs between 2 tasks, generator: ops/s', 'pingpong', 'ops_per_s', 'hi', rate],
  ['1M Future hand-offs between 2 tasks, async fn: ops/s', 'pingpong_async', 'ops_per_s', 'hi', rate],
];
const BASE = {
  callsoon_batch: 'setImmediate',
  callsoon_chain: 'setImmediate chain',
  timers: 'setTimeout',
  timers_cancel: 'setTimeout + clearTimeout',
  tasks: 'async fn awaiting setImmediate',
  tasks_async: 'async fn awaiting setImmediate',
  task_mem: 'async fns on pending promises',
  task_mem_async: 'async fns on pending promises',
  pingpong: 'async fns + promises',
  pingpong_async: 'async fns + promises',
};
const shown = ROWS.filter(([, b]) => opt.only.has(b) && groups.size > 0);
if (shown.length > 0) {
  p('### Loop primitives and tasks');
  p();
  p('Ratio = aionode relative to the Node baseline, > 1 means aionode is better (rates: aionode / node; times and CPU: node / aionode).');
  p();
  let hdr = '| workload | Node baseline | node |';
  let sep = '|---|---|---:|';
  for (const a of aioImpls) {
    hdr += ` ${a} | ratio |`;
    sep += '---:|---:|';
  }
  for (const pi of peerImpls) {
    hdr += ` ${pi} |`;
    sep += '---:|';
  }
  p(hdr);
  p(sep);
  for (const [label, bench, key, better, fmt] of shown) {
    const nv = nodeMed(bench, key);
    const sub = label.startsWith(' ');
    let row = `| ${sub ? `&nbsp;&nbsp;${label.trim()}` : label} | ${sub ? '' : BASE[bench]} | ${fmt(nv)} |`;
    for (const a of aioImpls) {
      const av = med(bench, a, key);
      const ratio = av === undefined || nv === undefined ? undefined : better === 'hi' ? av / nv : nv / av;
      row += ` ${fmt(av)} | ${ratio === undefined ? '' : `${ratio.toFixed(2)}x`} |`;
    }
    for (const pi of peerImpls) row += ` ${fmt(med(bench, pi, key))} |`;
    p(row);
  }
  const failed = results.filter((r) => r.error);
  p();
  if (failed.length) p(`Failed runs: ${failed.map((r) => `${r.bench} ${r.impl} (${r.error})`).join('; ')}.`);
}

const latRows = [];
if (opt.only.has('lateness_burst')) for (const i of [...aioImpls, 'node']) latRows.push(['lateness_burst', i]);
if (opt.only.has('lateness_serial')) for (const i of [aioRow(defaultSel), 'node', 'C floor']) latRows.push(['lateness_serial', i]);
const latShown = latRows.filter(([b, i]) => runs(b, i) > 0);
if (latShown.length > 0) {
  p('### Timer lateness on an idle loop');
  p();
  p(`${opt.latN} timers, uniform random delays 0-50 ms; lateness = process.hrtime.bigint() in the callback minus (hrtime before scheduling + delay).`);
  p(`burst: all scheduled at once (median of ${opt.reps} runs per statistic, early summed); serial: one pending at a time, each from the previous callback (one run).`);
  p('burst `blocked`: timers already due when the scheduling loop ended (it holds the thread for a few ms on any loop); they are left out of the percentiles but counted in `early`.');
  p('`C floor`: the same serial timers on a bare timerfd + epoll_wait in C (bench/timerfd-floor.c), the machine\'s own wake-up latency.');
  p();
  p('| variant | impl | p50 | p90 | p99 | max | early | blocked | runs |');
  p('|---|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const [b, i] of latShown) {
    const name = i === 'node' ? 'node setTimeout' : i;
    const v = b.replace('lateness_', '');
    const nb = sum(b, i, 'blocked');
    const blocked = b !== 'lateness_burst' ? '-' : nb === 0 ? '0' : `${nb} (max ${ms(med(b, i, 'blocked_max_ms'))})`;
    const early = sum(b, i, 'early') + sum(b, i, 'early_blocked');
    p(`| ${v} | ${name} | ${ms(med(b, i, 'p50_ms'))} | ${ms(med(b, i, 'p90_ms'))} | ${ms(med(b, i, 'p99_ms'))} | ${ms(med(b, i, 'max_ms'))} | ${early} / ${runs(b, i) * opt.latN} | ${blocked} | ${runs(b, i)} |`);
  }
  p();
}

if (echoResults.length > 0) {
  p('### Loopback echo (shared harness client)');
  p();
  p(`bench/echo-server.mjs per aionode row (aionode-proto: \`--loop epoll\`, aionode-uring: \`--loop io_uring\`), the shared harness's echo_client and peer servers, ${opt.echoDur} s measured after 1 s warm-up; median of ${opt.reps} runs, ${echoPinned ? 'server pinned to CPU 0, client to CPU 1' : 'unpinned'}. Echo cells are requests/s, churn cells connections/s; ratios are to c-epoll and, for aionode-uring, to aionode-proto (our epoll loop) in the same run.`);
  p();
  const impls = [...new Set(echoResults.map((r) => r.impl))];
  const cfgs = [...new Set(echoResults.map((r) => `${r.mode}|${r.size}|${r.conc}`))];
  const cell = (impl, cfg) => median(echoResults.filter((r) => r.impl === impl && `${r.mode}|${r.size}|${r.conc}` === cfg && !r.error).map((r) => r.rps));
  const label = (cfg) => {
    const [mode, size, conc] = cfg.split('|');
    return mode === 'churn' ? `churn c${conc}` : `${Number(size) >= 1024 ? `${Number(size) / 1024} KiB` : `${size} B`} c${conc}`;
  };
  p(`| server | ${cfgs.map(label).join(' | ')} |`);
  p(`|---|${cfgs.map(() => '---:').join('|')}|`);
  for (const impl of impls) {
    const cells = cfgs.map((cfg) => {
      const v = cell(impl, cfg);
      if (v === undefined) return '-';
      const ref = cell('c-epoll', cfg);
      let txt = rate(v);
      if (ref !== undefined && impl !== 'c-epoll') txt += ` (${(v / ref).toFixed(2)}×)`;
      const ours = cell('aionode-proto', cfg);
      if (impl === 'aionode-uring' && ours !== undefined) txt += ` [${(v / ours).toFixed(2)}× epoll loop]`;
      return txt;
    });
    p(`| ${impl} | ${cells.join(' | ')} |`);
  }
  const bad = echoResults.filter((r) => r.error);
  if (bad.length) p(`\nFailed echo runs: ${bad.map((r) => `${r.impl} ${r.mode} ${r.size}x${r.conc} (${r.error})`).join('; ')}.`);
  p();
}

// The performance goals these benches measure.
const goals = [];
const dflt = aioRow(defaultSel);
const bRatio = med('callsoon_batch', dflt, 'ops_per_s') / nodeMed('callsoon_batch', 'ops_per_s');
if (Number.isFinite(bRatio)) goals.push(['1M callSoon batched >= setImmediate', `${bRatio.toFixed(2)}x`, bRatio >= 1]);
const sRatio = med('timers', dflt, 'schedule_ops_per_s') / nodeMed('timers', 'schedule_ops_per_s');
if (Number.isFinite(sRatio)) goals.push(['1M callLater schedule >= setTimeout', `${sRatio.toFixed(2)}x`, sRatio >= 1]);
const tRate = med('tasks', dflt, 'ops_per_s');
if (tRate !== undefined) goals.push(['1M tasks awaiting sleep(0) >= 1M/s (generator)', `${rate(tRate)}/s`, tRate >= 1e6]);
if (runs('lateness_serial', dflt) > 0) {
  const p99 = med('lateness_serial', dflt, 'p99_ms');
  const early = sum('lateness_serial', dflt, 'early') + sum('lateness_burst', dflt, 'early') + sum('lateness_burst', dflt, 'early_blocked');
  const fl = med('lateness_serial', 'C floor', 'p99_ms');
  goals.push([
    'timer lateness p99 <= 0.2 ms on an idle loop (serial)',
    `${ms(p99)}${fl !== undefined ? ` (C floor ${ms(fl)})` : ''}`,
    p99 <= 0.2,
  ]);
  goals.push(['zero early timers (serial + burst)', `${early} early`, early === 0]);
}
if (goals.length > 0) {
  p(`### Performance goals (${dflt})`);
  p();
  p('| goal | measured | met |');
  p('|---|---:|---|');
  for (const [g, v, ok] of goals) p(`| ${g} | ${v} | ${ok ? 'yes' : '**no**'} |`);
  p();
}
for (const l of extraTables) p(l);
p(`Total bench time ${((Date.now() - t0) / 1000).toFixed(0)} s.`);
console.log(out.join('\n'));
