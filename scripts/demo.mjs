#!/usr/bin/env node
// `npm start`: on each selector compiled in here, and on the io_uring
// proactor where this build exports it and the kernel allows it, run a loop
// with 200 timers and a socketpair ping-pong through addReader (a proactor
// serves addReader with poll ops), and print which loop ran, its timer
// lateness and the round-trip rate.
import * as aionode from 'aionode';
import { binding } from '../dist/lib/native.js';

const { availableSelectors, selectorClass, SelectorEventLoop } = aionode;

const native = binding();

function pct(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/**
 * The io_uring row: a factory, or the reason it cannot run here. Looked up
 * by name, so the demo runs on builds without the proactor too.
 */
function proactorRow() {
  const { ProactorEventLoop, IoUringProactor } = aionode;
  if (typeof ProactorEventLoop !== 'function' || typeof IoUringProactor !== 'function') {
    return { reason: 'this build exports no ProactorEventLoop' };
  }
  const make = () => new ProactorEventLoop(new IoUringProactor());
  try {
    make().close();
  } catch (e) {
    return { reason: `io_uring is not usable here: ${e?.message ?? e}` };
  }
  return { make };
}

async function demo(name, make) {
  const loop = make();
  const stats = loop.nativeStats();

  // Timers: 200 at random 1-50 ms, lateness by process.hrtime.
  const lateness = [];
  let early = 0;
  for (let i = 0; i < 200; i++) {
    const delay = 0.001 + Math.random() * 0.049;
    const target = process.hrtime.bigint() + BigInt(Math.ceil(delay * 1e9));
    loop.callLater(delay, () => {
      const now = process.hrtime.bigint();
      if (now < target) early++;
      lateness.push(Number(now - target) / 1e3);
    });
  }
  await loop.runUntilComplete(sleepFuture(loop, 0.06));

  // A socketpair ping-pong: each side echoes what it reads.
  const [a, b] = native.socketpair();
  const buf = Buffer.alloc(64);
  const ping = Buffer.from('ping');
  const rounds = 5000;
  let done = 0;
  const finished = loop.createFuture();
  loop.addReader(b, () => {
    const n = native.read(b, buf);
    if (n > 0) native.write(b, buf.subarray(0, n));
  });
  loop.addReader(a, () => {
    if (native.read(a, buf) <= 0) return;
    if (++done < rounds) native.write(a, ping);
    else finished.setResult(done);
  });
  const t0 = process.hrtime.bigint();
  native.write(a, ping);
  await loop.runUntilComplete(finished);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  loop.removeReader(a);
  loop.removeReader(b);
  native.close(a);
  native.close(b);
  loop.close();

  lateness.sort((x, y) => x - y);
  const how = name === 'io_uring' ? 'ring fd in a uv_poll_t' : stats.helperThread ? 'helper thread + uv_async' : 'backend fd in a uv_poll_t';
  console.log(
    `${name.padEnd(8)} ${how.padEnd(26)} timers: ${lateness.length} fired, ${early} early, ` +
      `lateness p50 ${pct(lateness, 50).toFixed(0)} µs p99 ${pct(lateness, 99).toFixed(0)} µs | ` +
      `socketpair: ${rounds} round trips, ${Math.round(rounds / secs).toLocaleString('en-US')}/s`,
  );
}

function sleepFuture(loop, seconds) {
  const fut = loop.createFuture();
  loop.callLater(seconds, () => fut.setResult(undefined));
  return fut;
}

const uring = proactorRow();
console.log(
  `aionode demo on Node ${process.version}; selectors here: ${availableSelectors().join(', ')}; ` +
    `proactor: ${uring.make ? 'io_uring' : `none (${uring.reason})`}`,
);
for (const name of availableSelectors()) await demo(name, () => new SelectorEventLoop(new (selectorClass(name))()));
if (uring.make) await demo('io_uring', uring.make);
else console.log(`io_uring skipped: ${uring.reason}`);
