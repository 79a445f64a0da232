/**
 * Typed surface of the C++ addon and its loader.
 *
 * The loader follows node-gyp-build's order (build/Release, build/Debug,
 * prebuilds/<platform>-<arch>/) and, when nothing loads, throws an error
 * that names the platform tuple, every path it tried and how to build.
 */
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { makeOSError } from './exceptions.js';

/** A native selector (one backend: epoll, poll, select). */
export interface NativeSelector {
  readonly name: string;
  /** The selector's pollable fd, or -1 when it needs the helper thread. */
  readonly backendFd: number;
  readonly size: number;
  readonly closed: boolean;
  register(fd: number, token: number, events: number): void;
  modify(fd: number, token: number, events: number): void;
  unregister(fd: number): void;
  /** Blocks up to `timeout` seconds (negative: forever); fills `out` with (token, events) pairs. */
  select(timeout: number, out: Int32Array): number;
  wakeup(): void;
  close(): void;
}

/** Loop counters, for tests and benchmarks. */
export interface NativeLoopStats {
  batches: number;
  ioPasses: number;
  idlePasses: number;
  timerArms: number;
  timers: number;
  registered: number;
  helperThread: boolean;
  timerSource: 'timerfd' | 'uv_timer';
}

/** The native half of SelectorEventLoop, living in Node's libuv loop. */
export interface NativeLoop {
  readonly backend: string;
  start(kick: boolean): void;
  stop(): void;
  kick(): void;
  timerAt(id: number, when: number): void;
  timerIn(id: number, delay: number): number;
  timerRemove(id: number): boolean;
  timerCount(): number;
  stats(): NativeLoopStats;
  close(): void;
}

export interface NativeBinding {
  NativeSelector: new (name: string) => NativeSelector;
  NativeLoop: new (
    selector: NativeSelector,
    events: Int32Array,
    onBatch: (count: number) => number,
  ) => NativeLoop;
  /** CLOCK_MONOTONIC in seconds. */
  time(): number;
  availableSelectors(): string;
  errnoName(errno: number): string;
  setErrorFactory(
    factory: (errno: number, code: string, syscall: string, message: string, strerror: string) => Error,
  ): void;
  /** AF_UNIX socketpair(2), non-blocking and close-on-exec. */
  socketpair(type?: 'stream' | 'dgram'): [number, number];
  /** read(2) into `buf`: bytes read (0 at EOF), or -EAGAIN (negative) when nothing is there. */
  read(fd: number, buf: Uint8Array): number;
  /** write(2) from `buf`: bytes written, or -EAGAIN (negative) when full. */
  write(fd: number, buf: Uint8Array): number;
  close(fd: number): void;
  abiVersion: number;
}

/** Where the loader looks, first hit wins. Exported for the error test. */
export function candidatePaths(root: string): string[] {
  const tuple = `${process.platform}-${process.arch}`;
  const out = [
    path.join(root, 'build', 'Release', 'aionode.node'),
    path.join(root, 'build', 'Debug', 'aionode.node'),
  ];
  const pre = path.join(root, 'prebuilds', tuple);
  if (existsSync(pre)) {
    for (const f of readdirSync(pre).sort()) {
      if (f.endsWith('.node')) out.push(path.join(pre, f));
    }
  } else {
    out.push(path.join(pre, 'aionode.napi.node'));
  }
  return out;
}

/** The package root: the nearest folder above this file with binding.gyp or package.json named aionode. */
export function packageRoot(from: string = __dirname): string {
  let dir = from;
  for (;;) {
    if (existsSync(path.join(dir, 'binding.gyp')) || existsSync(path.join(dir, 'prebuilds'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) return path.resolve(from, '..');
    dir = up;
  }
}

/**
 * Loads the addon from `root` (default: this package), trying every
 * candidate path; `AIONODE_NATIVE` overrides with one exact file.
 * @throws Error listing the platform tuple, each path tried and why it failed.
 */
export function loadBinding(root: string = packageRoot()): NativeBinding {
  const override = process.env.AIONODE_NATIVE;
  const paths = override ? [path.resolve(override)] : candidatePaths(root);
  const tried: string[] = [];
  for (const p of paths) {
    if (!existsSync(p)) {
      tried.push(`  ${p} (not found)`);
      continue;
    }
    try {
      return createRequire(p)(p) as NativeBinding;
    } catch (err) {
      tried.push(`  ${p} (${(err as Error).message.split('\n')[0]})`);
    }
  }
  const tuple = `${process.platform}-${process.arch} (node ${process.version}, napi ${process.versions.napi})`;
  throw new Error(
    `aionode: could not load the native addon for ${tuple}.\n` +
      `Tried:\n${tried.join('\n')}\n` +
      `Build it from source with \`npm run build:native\` (needs python3, make and a C++17 compiler; ` +
      `runs offline against this Node's headers), or add a prebuild with \`npm run prebuild\`.`,
  );
}

let cached: NativeBinding | undefined;

/** The addon, loaded on first use and wired to lib/'s OSError family. */
export function binding(): NativeBinding {
  if (cached === undefined) {
    const b = loadBinding();
    b.setErrorFactory((errno, code, syscall, message, strerror) =>
      makeOSError(message, { errno, code, syscall, strerror }),
    );
    cached = b;
  }
  return cached;
}
