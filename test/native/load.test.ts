/**
 * Loading the addon: the loader's error, the package entry points, worker
 * threads, teardown, and process lifetime (an idle loop never holds the
 * process open; a running one always does).
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { candidatePaths, loadBinding } from '../../lib/native.js';
import { availableBackends } from '../helpers/backends.js';
import { fdCount } from '../helpers/loop.js';

const root = path.resolve(__dirname, '..', '..');
const dist = path.join(root, 'dist', 'lib', 'index.js');

function node(code: string, opts: { timeout?: number; module?: boolean } = {}) {
  const args = opts.module ? ['--input-type=module', '-e', code] : ['-e', code];
  return spawnSync(process.execPath, args, { cwd: root, encoding: 'utf8', timeout: opts.timeout ?? 10_000 });
}

describe('loader', () => {
  it('names the platform tuple, every path tried, and how to build', () => {
    const fake = path.join(root, 'test', 'fixtures', 'no-such-root');
    // The sanitizer run points the loader at its addon through
    // AIONODE_NATIVE, which overrides every root: off for this case.
    const prev = process.env.AIONODE_NATIVE;
    delete process.env.AIONODE_NATIVE;
    let err: Error | undefined;
    try {
      loadBinding(fake);
    } catch (e) {
      err = e as Error;
    } finally {
      if (prev !== undefined) process.env.AIONODE_NATIVE = prev;
    }
    expect(err).toBeDefined();
    const msg = err!.message;
    expect(msg).toContain(`${process.platform}-${process.arch}`);
    expect(msg).toContain(`node ${process.version}`);
    for (const p of candidatePaths(fake)) expect(msg).toContain(`${p} (not found)`);
    expect(msg).toContain('npm run build:native');
  });

  it('says why a file that exists failed to load', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'aionode-'));
    const bogus = path.join(dir, 'aionode.node');
    writeFileSync(bogus, 'not an ELF file');
    const prev = process.env.AIONODE_NATIVE;
    process.env.AIONODE_NATIVE = bogus;
    try {
      expect(() => loadBinding()).toThrow(new RegExp(`${bogus.replace(/[.]/g, '\\.')} \\(.*(invalid ELF|file too short)`));
    } finally {
      if (prev === undefined) delete process.env.AIONODE_NATIVE;
      else process.env.AIONODE_NATIVE = prev;
      rmSync(dir, { recursive: true });
    }
  });

  it('falls back to prebuilds/<platform>-<arch>/ when there is no build', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'aionode-root-'));
    const pre = path.join(dir, 'prebuilds', `${process.platform}-${process.arch}`);
    mkdirSync(pre, { recursive: true });
    copyFileSync(path.join(root, 'build', 'Release', 'aionode.node'), path.join(pre, 'aionode.glibc.node'));
    try {
      expect(candidatePaths(dir)).toContain(path.join(pre, 'aionode.glibc.node'));
      const b = loadBinding(dir);
      expect(b.availableSelectors().split(',')).toEqual(availableBackends());
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  it('loads from the build and lists the compiled backends', () => {
    const b = loadBinding(root);
    expect(b.abiVersion).toBe(1);
    expect(b.availableSelectors().split(',')).toEqual(availableBackends());
    expect(typeof b.time()).toBe('number');
  });
});

describe('package entry points', () => {
  it('imports from ESM and requires from CJS as one instance', () => {
    const r = node(
      `import { newEventLoop, EpollSelector, Future } from 'aionode';
       import { createRequire } from 'node:module';
       const cjs = createRequire(import.meta.url)('aionode');
       const loop = newEventLoop();
       const fut = loop.createFuture();
       loop.callLater(0.001, () => fut.setResult('ok'));
       const r = await loop.runUntilComplete(fut);
       console.log(JSON.stringify({ same: cjs.Future === Future, r, epoll: typeof EpollSelector, backend: loop.backend }));
       loop.close();`,
      { module: true },
    );
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout.trim());
    expect(out).toEqual({ same: true, r: 'ok', epoll: 'function', backend: availableBackends()[0] });
  });
});

describe('process lifetime', () => {
  it('exits by itself with an idle loop holding timers and a reader', () => {
    const r = node(
      `const a = require(${JSON.stringify(dist)});
       const { binding } = require(${JSON.stringify(path.join(root, 'dist', 'lib', 'native.js'))});
       const loop = a.newEventLoop();
       loop.callLater(3600, () => {});
       const [x] = binding().socketpair();
       loop.addReader(x, () => {});
       console.log('idle');`,
      { timeout: 5000 },
    );
    expect(r.signal).toBeNull();
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe('idle');
  });

  it('exits by itself after a loop has run and stopped', () => {
    const r = node(
      `const a = require(${JSON.stringify(dist)});
       const loop = a.newEventLoop();
       loop.callLater(3600, () => {});
       loop.callLater(0.01, () => loop.stop());
       loop.runForever().then(() => console.log('stopped'));`,
      { timeout: 5000 },
    );
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe('stopped');
  });

  it.each(availableBackends())('stays alive while a %s loop runs with only a pending timer', (backend) => {
    const r = node(
      `const a = require(${JSON.stringify(dist)});
       const loop = new a.SelectorEventLoop(new (a.selectorClass(${JSON.stringify(backend)}))());
       const t0 = Date.now();
       loop.callLater(0.2, () => loop.stop());
       loop.runForever().then(() => console.log('ran', Date.now() - t0 >= 199));`,
      { timeout: 5000 },
    );
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe('ran true');
  });
});

const workerCode = (backend: string, mode: 'finish' | 'hang' | 'exit') => `
const { parentPort } = require('node:worker_threads');
const a = require(${JSON.stringify(dist)});
const { binding } = require(${JSON.stringify(path.join(root, 'dist', 'lib', 'native.js'))});
const loop = new a.SelectorEventLoop(new (a.selectorClass(${JSON.stringify(backend)}))());
const [x, y] = binding().socketpair();
let reads = 0, timers = 0;
loop.addReader(x, () => { const b = Buffer.alloc(16); if (binding().read(x, b) > 0) reads++; });
for (let i = 0; i < 50; i++) loop.callLater(i / 1000, () => { timers++; binding().write(y, Buffer.from('z')); });
loop.callLater(0.08, () => {
  if (${JSON.stringify(mode)} !== 'finish') {
    // Our own socketpair is closed; the loop keeps running with its
    // selector, timer fd and a pending timer when the worker is torn down.
    loop.removeReader(x); binding().close(x); binding().close(y);
    loop.callLater(3600, () => {});
  }
  if (${JSON.stringify(mode)} === 'finish') loop.stop();
  else if (${JSON.stringify(mode)} === 'exit') process.exit(3);
  else parentPort.postMessage({ running: true });
});
loop.runForever().then(() => {
  loop.removeReader(x);
  loop.close();
  binding().close(x); binding().close(y);
  parentPort.postMessage({ backend: loop.backend, reads: reads > 0, timers });
});
`;

function runWorker(code: string): Worker {
  return new Worker(code, { eval: true });
}

describe('worker_threads', () => {
  it.each(availableBackends())('loads and runs a %s loop in a worker', async (backend) => {
    const w = runWorker(workerCode(backend, 'finish'));
    const msg = await new Promise((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    });
    expect(msg).toEqual({ backend, reads: true, timers: 50 });
    await w.terminate();
  });

  it('survives many workers terminated mid-run and process.exit in a worker, leaking no fds', async () => {
    const before = fdCount();
    const backends = availableBackends();
    const workers: Promise<unknown>[] = [];
    for (let i = 0; i < 12; i++) {
      const backend = backends[i % backends.length];
      const mode = i % 3 === 0 ? 'exit' : 'hang';
      const w = runWorker(workerCode(backend, mode));
      workers.push(
        new Promise<number>((resolve, reject) => {
          w.once('error', reject);
          w.once('exit', resolve);
          // Terminate the hanging ones while their loops run, at random points.
          if (mode === 'hang') {
            w.once('message', () => setTimeout(() => void w.terminate(), Math.floor(Math.random() * 5)));
          }
        }),
      );
    }
    const codes = await Promise.all(workers);
    expect(codes.filter((c) => c === 3)).toHaveLength(4);
    // Worker teardown is asynchronous: give it a moment, bounded.
    for (let i = 0; i < 50 && fdCount() > before; i++) await new Promise((r) => setTimeout(r, 20));
    expect(fdCount()).toBe(before);
  });
});
