#!/usr/bin/env node
// `npm start`: on each selector compiled in here, run a loop with 200 timers
// and a socketpair ping-pong through addReader, and print which selector ran,
// its timer lateness and the round-trip rate.
import { availableSelectors, selectorClass, SelectorEventLoop } from 'aionode';
import { binding } from '../dist/lib/native.js';

const native = binding();

function pct(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

async function demo(name) {
  const loop = new SelectorEventLoop(new (selectorClass(name))());
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
  const how = stats.helperThread ? 'helper thread + uv_async' : 'backend fd in a uv_poll_t';
  console.log(
    `${name.padEnd(7)} ${how.padEnd(26)} timers: ${lateness.length} fired, ${early} early, ` +
      `lateness p50 ${pct(lateness, 50).toFixed(0)} µs p99 ${pct(lateness, 99).toFixed(0)} µs | ` +
      `socketpair: ${rounds} round trips, ${Math.round(rounds / secs).toLocaleString('en-US')}/s`,
  );
}

function sleepFuture(loop, seconds) {
  const fut = loop.createFuture();
  loop.callLater(seconds, () => fut.setResult(undefined));
  return fut;
}

console.log(`aionode demo on Node ${process.version}; selectors here: ${availableSelectors().join(', ')}`);
for (const name of availableSelectors()) await demo(name);
