// Cross-thread messaging: aionode's native channel (postToLoop into a
// loop's threadsafeHandle) against Node's MessagePort, in one run.
//
//   node bench/threads.mjs [--n N] [--rt N] [--reps R] [--selector NAME]
//
// Rows (each the median of R repetitions, every one in a fresh worker):
//   channel one-way    a worker posts N messages with postToLoop; each runs
//                      as a Handle of this thread's loop
//   port one-way       a worker posts N messages with port.postMessage; each
//                      is a 'message' event here
//   channel round trip this loop posts to a worker's loop and waits for the
//                      echo, N_rt times in sequence
//   port round trip    the same through a MessagePort pair
// The one-way rows run twice: with small integers (postToLoop sends
// numbers, strings, booleans and null without v8.serialize) and with small
// objects `{ i, tag }` (both sides structured-clone). Round trips carry
// integers. Bounded: a few seconds with the defaults. Prints a Markdown
// table (ratios against the port rows) and, last, one JSON line.
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = path.join(root, 'dist', 'lib', 'index.js');
const aio = require(dist);

function parseArgs(argv) {
  const o = { n: 200_000, rt: 20_000, reps: 3, selector: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    const posInt = (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n <= 0) throw new Error(`Expected "${a}" to be a positive integer, got ${JSON.stringify(v)}`);
      return n;
    };
    if (a === '--n') o.n = posInt(val());
    else if (a === '--rt') o.rt = posInt(val());
    else if (a === '--reps') o.reps = posInt(val());
    else if (a === '--selector') o.selector = val();
    else throw new Error(`unknown option ${a}`);
  }
  return o;
}

const opts = parseArgs(process.argv.slice(2));

function makeLoop() {
  if (opts.selector === null) return aio.newEventLoop();
  return new aio.SelectorEventLoop(new (aio.selectorClass(opts.selector))());
}

const now = () => Number(process.hrtime.bigint()) / 1e9;

// Worker bodies (CommonJS, eval'd): they wait for 'go' so that thread start
// and module loading stay out of the measurement.
const SENDER = `
const { parentPort, workerData } = require('node:worker_threads');
const { postToLoop } = require(workerData.dist);
const { mode, n, ref, port, objects } = workerData;
const msg = objects ? (i) => ({ i, tag: 'x' }) : (i) => i;
parentPort.once('message', () => {
  if (mode === 'channel') for (let i = 0; i < n; i++) postToLoop(ref, msg(i));
  else for (let i = 0; i < n; i++) port.postMessage(msg(i));
});
parentPort.postMessage('ready');
`;

const ECHO_LOOP = `
const { parentPort, workerData } = require('node:worker_threads');
const a = require(workerData.dist);
const { replyRef } = workerData;
const loop = a.newEventLoop();
let stop;
const done = new Promise((r) => (stop = r));
const ref = loop.threadsafeHandle((m) => (m === -1 ? stop() : a.postToLoop(replyRef, m)));
parentPort.postMessage({ ref: ref.toJSON() });
loop.runUntilComplete(() => done).then(() => loop.close());
`;

const ECHO_PORT = `
const { workerData } = require('node:worker_threads');
const { port } = workerData;
port.on('message', (m) => (m === -1 ? port.close() : port.postMessage(m)));
`;

function once(w, what = 'message') {
  return new Promise((resolve, reject) => {
    w.once(what, resolve);
    w.once('error', reject);
  });
}

async function channelOneWay(n, objects = false) {
  const loop = makeLoop();
  let got = 0;
  let t1 = 0;
  const ref = loop.threadsafeHandle(() => {
    if (++got === n) {
      t1 = now();
      loop.stop();
    }
  });
  const w = new Worker(SENDER, { eval: true, workerData: { dist, mode: 'channel', n, ref: ref.toJSON(), objects } });
  await once(w);
  const t0 = now();
  w.postMessage('go');
  await loop.runForever();
  loop.close();
  await w.terminate();
  return n / (t1 - t0);
}

async function portOneWay(n, objects = false) {
  const { port1, port2 } = new MessageChannel();
  const w = new Worker(SENDER, { eval: true, workerData: { dist, mode: 'port', n, port: port2, objects }, transferList: [port2] });
  await once(w);
  let got = 0;
  const done = new Promise((resolve) => {
    port1.on('message', () => {
      if (++got === n) resolve(now());
    });
  });
  const t0 = now();
  w.postMessage('go');
  const t1 = await done;
  port1.close();
  await w.terminate();
  return n / (t1 - t0);
}

async function channelRoundTrip(n) {
  const loop = makeLoop();
  let i = 0;
  let t1 = 0;
  let remote = null;
  const back = loop.threadsafeHandle(() => {
    if (++i === n) {
      t1 = now();
      aio.postToLoop(remote, -1);
      loop.stop();
    } else {
      aio.postToLoop(remote, i);
    }
  });
  const w = new Worker(ECHO_LOOP, { eval: true, workerData: { dist, replyRef: back.toJSON() } });
  remote = (await once(w)).ref;
  const t0 = now();
  aio.postToLoop(remote, 0);
  await loop.runForever();
  loop.close();
  await once(w, 'exit');
  return n / (t1 - t0);
}

async function portRoundTrip(n) {
  const { port1, port2 } = new MessageChannel();
  const w = new Worker(ECHO_PORT, { eval: true, workerData: { port: port2 }, transferList: [port2] });
  let i = 0;
  const done = new Promise((resolve) => {
    port1.on('message', () => {
      if (++i === n) {
        resolve(now());
        port1.postMessage(-1);
      } else {
        port1.postMessage(i);
      }
    });
  });
  const t0 = now();
  port1.postMessage(0);
  const t1 = await done;
  await once(w, 'exit');
  port1.close();
  return n / (t1 - t0);
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function measure(fn, n) {
  const runs = [];
  for (let r = 0; r < opts.reps; r++) runs.push(await fn(n));
  return median(runs);
}

const fmt = (x) => (x >= 1e6 ? `${(x / 1e6).toFixed(2)} M/s` : `${(x / 1e3).toFixed(1)} k/s`);

const rows = {
  channel_oneway: await measure(channelOneWay, opts.n),
  port_oneway: await measure(portOneWay, opts.n),
  channel_oneway_objects: await measure((n) => channelOneWay(n, true), opts.n),
  port_oneway_objects: await measure((n) => portOneWay(n, true), opts.n),
  channel_roundtrip: await measure(channelRoundTrip, opts.rt),
  port_roundtrip: await measure(portRoundTrip, opts.rt),
};

const probe = makeLoop();
const backend = probe.backend;
probe.close();

console.log(`\ncross-thread messages, loop ${backend}, median of ${opts.reps} (one-way n=${opts.n}, round trip n=${opts.rt})\n`);
console.log('| row | messages/s | vs port one-way (same payload) | vs port round trip |');
console.log('|---|---:|---:|---:|');
for (const [name, v] of Object.entries(rows)) {
  const oneway = name.endsWith('_objects') ? rows.port_oneway_objects : rows.port_oneway;
  console.log(
    `| ${name.replaceAll('_', ' ')} | ${fmt(v)} | ${(v / oneway).toFixed(2)}x | ${(v / rows.port_roundtrip).toFixed(2)}x |`,
  );
}
console.log(
  JSON.stringify({
    bench: 'threads',
    backend,
    n: opts.n,
    rt: opts.rt,
    reps: opts.reps,
    ...Object.fromEntries(Object.entries(rows).map(([k, v]) => [`${k}_per_s`, Math.round(v)])),
    channel_vs_port_oneway: +(rows.channel_oneway / rows.port_oneway).toFixed(3),
    channel_vs_port_oneway_objects: +(rows.channel_oneway_objects / rows.port_oneway_objects).toFixed(3),
    channel_oneway_vs_port_roundtrip: +(rows.channel_oneway / rows.port_roundtrip).toFixed(3),
    channel_vs_port_roundtrip: +(rows.channel_roundtrip / rows.port_roundtrip).toFixed(3),
  }),
);
