#!/usr/bin/env node
// Soak: mixed echo / connection churn / timers / tasks on each loop for a
// while, then one table of figures per loop, so a regression in any of
// them shows: requests served, errors, fd delta, RSS delta, max timer
// lateness. Not part of `npm test`.
//
//   node scripts/soak.mjs [--minutes M] [--loops epoll,poll,select] [--conns N] [--json]
//
// Needs the compiled package (`npm run build`). Loopback only; every loop
// stops by itself at its deadline, and an unref'd watchdog exits non-zero
// if a loop overruns it by two minutes.
import { readdirSync } from 'node:fs';
import net from 'node:net';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';

const require = createRequire(import.meta.url);
const aionode = require('../dist/lib/index.js');
const { Protocol, SelectorEventLoop, availableSelectors, selectorClass, sleep, createTask, gather } = aionode;

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '1' },
    loops: { type: 'string', default: '' },
    conns: { type: 'string', default: '20' },
    json: { type: 'boolean', default: false },
  },
});

function fail(arg, expected, got) {
  console.error(`soak: expected --${arg} to be ${expected}, got ${JSON.stringify(got)}`);
  process.exit(2);
}
const minutes = Number(values.minutes);
if (!(minutes > 0 && minutes <= 24 * 60)) fail('minutes', 'a number of minutes in (0, 1440]', values.minutes);
const conns = Number(values.conns);
if (!Number.isInteger(conns) || conns < 1 || conns > 1000) fail('conns', 'an integer in 1..1000', values.conns);
const available = availableSelectors();
const loops = values.loops === '' ? available : values.loops.split(',');
for (const l of loops) if (!available.includes(l)) fail('loops', `a list of ${available.join(', ')}`, values.loops);

const perLoopMs = (minutes * 60_000) / loops.length;
const fds = () => readdirSync('/proc/self/fd').length;
const rss = () => process.memoryUsage().rss;
const log = (line) => process.stderr.write(`${line}\n`);

const watchdog = setTimeout(() => {
  console.error('soak: watchdog: a loop overran its deadline by 2 minutes');
  process.exit(1);
}, minutes * 60_000 + 120_000);
watchdog.unref();

class Echo extends Protocol {
  connectionMade(t) {
    this.t = t;
  }
  dataReceived(d) {
    this.t.write(d);
  }
}

/** One node:net client doing 1 KiB request/response until `until`. */
function echoClient(port, until, stats) {
  return new Promise((resolve) => {
    const msg = Buffer.alloc(1024, 0x61);
    const sock = net.connect(port, '127.0.0.1');
    let got = 0;
    sock.on('connect', () => sock.write(msg));
    sock.on('data', (d) => {
      got += d.length;
      if (got < msg.length) return;
      if (got > msg.length) stats.errors++;
      got = 0;
      stats.requests++;
      if (Date.now() < until) sock.write(msg);
      else sock.end();
    });
    sock.on('error', () => {
      stats.errors++;
      resolve();
    });
    sock.on('close', resolve);
  });
}

/** Connect, one echo, close, again, until `until` (connection churn). */
async function churnClient(port, until, stats) {
  while (Date.now() < until) {
    await new Promise((resolve) => {
      const sock = net.connect(port, '127.0.0.1', () => sock.write('x'));
      sock.on('data', () => {
        stats.churn++;
        sock.end();
      });
      sock.on('error', () => {
        stats.errors++;
        resolve();
      });
      sock.on('close', resolve);
    });
  }
}

async function soakOne(name) {
  global.gc?.();
  const fd0 = fds();
  const rss0 = rss();
  const loop = new SelectorEventLoop(new (selectorClass(name))());
  const stats = { requests: 0, churn: 0, errors: 0, timers: 0, maxLateMs: 0, early: 0, tasks: 0 };
  const until = Date.now() + perLoopMs;
  await loop.runUntilComplete(async () => {
    const server = await loop.createServer(() => new Echo(), '127.0.0.1', 0);
    const port = server.sockets[0].getsockname()[1];
    // Timers: a steady stream of short callLaters; lateness in loop time.
    const timerDone = loop.createFuture();
    const armTimer = () => {
      if (Date.now() >= until) return timerDone.done() || timerDone.setResult(undefined);
      const delay = Math.random() * 0.01;
      const when = loop.time() + delay;
      loop.callLater(delay, () => {
        const late = (loop.time() - when) * 1000;
        if (late < 0) stats.early++;
        stats.maxLateMs = Math.max(stats.maxLateMs, late);
        stats.timers++;
        armTimer();
      });
    };
    for (let i = 0; i < 10; i++) armTimer();
    // Tasks: batches of short tasks awaiting sleep(0).
    const tasks = (async () => {
      while (Date.now() < until) {
        const batch = [];
        for (let i = 0; i < 1000; i++) batch.push(createTask(() => sleep(0)));
        await gather(batch);
        stats.tasks += batch.length;
        await sleep(0.01);
      }
    })();
    const clients = [];
    for (let i = 0; i < conns; i++) clients.push(echoClient(port, until, stats));
    clients.push(churnClient(port, until, stats), churnClient(port, until, stats));
    await loop.wrap(Promise.all(clients));
    await tasks;
    await timerDone;
    server.close();
    await server.waitClosed();
  });
  loop.close();
  await new Promise((r) => setTimeout(r, 100));
  global.gc?.();
  return {
    loop: name,
    seconds: Math.round(perLoopMs / 100) / 10,
    requests: stats.requests,
    churn: stats.churn,
    timers: stats.timers,
    tasks: stats.tasks,
    errors: stats.errors,
    earlyTimers: stats.early,
    maxTimerLateMs: Math.round(stats.maxLateMs * 100) / 100,
    fdDelta: fds() - fd0,
    rssDeltaMiB: Math.round(((rss() - rss0) / 1048576) * 10) / 10,
  };
}

// Node opens a few fds of its own on first network use: warm that up so
// the per-loop fd delta counts only what a loop leaves behind.
await new Promise((resolve) => {
  const srv = net.createServer((s) => s.end()).listen(0, '127.0.0.1', () => {
    net.connect(srv.address().port, '127.0.0.1').on('close', () => srv.close(resolve)).resume();
  });
});

const rows = [];
for (const name of loops) {
  log(`soak: ${name} for ${(perLoopMs / 1000).toFixed(0)} s`);
  rows.push(await soakOne(name));
}
if (values.json) {
  for (const r of rows) console.log(JSON.stringify(r));
} else {
  console.table(rows);
}
const bad = rows.filter((r) => r.errors > 0 || r.earlyTimers > 0 || r.fdDelta > 0);
process.exit(bad.length === 0 ? 0 : 1);
