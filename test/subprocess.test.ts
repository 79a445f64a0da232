/**
 * Subprocesses (lib/subprocess.ts, lib/base-subprocess.ts, lib/unix-events.ts,
 * native/spawn.cc) on every loop: ports of CPython's test_subprocess.py
 * (SubprocessMixin) and test_events.py's SubprocessTestsMixin cases that
 * apply, plus the issue's own checks: no zombies beside node:child_process,
 * fd hygiene in the child, the SIGCHLD fallback watcher, and the fd count
 * back to its baseline after every test.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { spawn as cpSpawn } from 'node:child_process';
import * as fs from 'node:fs';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  allTasks,
  BrokenPipeError,
  CancelledError,
  ConnectionResetError,
  createSubprocessExec,
  createSubprocessShell,
  createTask,
  currentTask,
  DEVNULL,
  FileNotFoundError,
  gather,
  PermissionError,
  PIPE,
  ProcessLookupError,
  run as runMain,
  sleep,
  STDOUT,
  SubprocessProtocol,
  type BaseTransport,
  type SubprocessTransport,
  type Task,
} from '../lib/index.js';
import { _fallbackWatcherState } from '../lib/unix-events.js';
import { binding } from '../lib/native.js';
import { LOOPS, newLoop, useLoop, type TestLoop } from './helpers/loops.js';
import { fdCount, runBriefly } from './helpers/loop.js';
import { settleFds } from './helpers/net.js';

/** Children of this process in state Z (zombies), from /proc. */
function zombies(): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z' && Number(fields[1]) === process.pid) out.push(Number(entry));
  }
  return out;
}

/** Live (not zombie) children of this process running `comm`. */
function childrenNamed(comm: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (name === comm && fields[0] !== 'Z' && Number(fields[1]) === process.pid) out.push(Number(entry));
  }
  return out;
}

/** /proc/<pid>/stat fields after the command name: [state, ppid, pgrp, session, ...]. */
function statFields(text: string): string[] {
  return text.slice(text.lastIndexOf(')') + 2).trim().split(' ');
}

/** A SubprocessProtocol that records its calls (CPython test_events MySubprocessProtocol). */
class RecordingProtocol extends SubprocessProtocol {
  events: string[] = [];
  data: Record<number, Buffer[]> = { 1: [], 2: [] };
  pipeErrors: Record<number, Error | undefined> = {};
  transport: SubprocessTransport | null = null;
  lost = 0;
  override connectionMade(transport: BaseTransport): void {
    this.transport = transport as unknown as SubprocessTransport;
    this.events.push('connectionMade');
  }
  override pipeDataReceived(fd: number, data: Buffer): void {
    this.data[fd].push(Buffer.from(data));
  }
  override pipeConnectionLost(fd: number, exc: Error | undefined): void {
    this.events.push(`pipeConnectionLost(${fd})`);
    this.pipeErrors[fd] = exc;
  }
  override processExited(): void {
    this.events.push('processExited');
  }
  override connectionLost(exc: Error | undefined): void {
    this.lost++;
    this.events.push(`connectionLost(${exc === undefined ? '' : exc.name})`);
  }
}

describe.each(LOOPS)('subprocesses on %s', (name) => {
  useLoop(name);
  let loop: TestLoop;
  let baseline: number;
  let tmp: string | null = null;

  beforeEach(() => {
    loop = newLoop(name);
    baseline = fdCount();
  });

  afterEach(async () => {
    try {
      if (!loop.isClosed()) await runBriefly(loop, 3);
      expect(await settleFds(baseline)).toBe(baseline);
      expect(zombies()).toEqual([]);
    } finally {
      loop.close();
      if (tmp !== null) rmSync(tmp, { recursive: true, force: true });
      tmp = null;
    }
  });

  const run = <T>(main: () => Promise<T>): Promise<T> => loop.runUntilComplete(main) as Promise<T>;

  it("createSubprocessShell('ls /zzz'): return code 2 and the error text", async () => {
    const [rc, out, err] = await run(async () => {
      const proc = await createSubprocessShell('ls /zzz', { stdout: PIPE, stderr: PIPE });
      expect(proc.returncode).toBeNull();
      const [o, e] = await proc.communicate();
      return [proc.returncode, o, e];
    });
    expect(rc).toBe(2);
    expect(out?.length).toBe(0);
    expect(err?.toString()).toMatch(/ls: cannot access '\/zzz': No such file or directory/);
  }); // the case; CPython test_subprocess: test_stdin_stdout / test_shell

  it('communicate() sends 16 MiB through cat and gets it back intact', async () => {
    const input = Buffer.alloc(16 << 20);
    for (let i = 0; i < input.length; i += 4) input.writeUInt32LE(i, i);
    const [out, err, rc] = await run(async () => {
      const proc = await createSubprocessExec('cat', [], { stdin: PIPE, stdout: PIPE });
      const [o, e] = await proc.communicate(input);
      return [o, e, proc.returncode];
    });
    expect(err).toBeNull();
    expect(rc).toBe(0);
    expect(out?.length).toBe(input.length);
    expect(out?.equals(input)).toBe(true);
  }); // CPython test_subprocess: test_communicate (with a large input), test_stdin_stdout

  it('echo, exit 3, and argv passed as is (no shell)', async () => {
    const got = await run(async () => {
      const echo = await createSubprocessExec('echo', ['hello', 'a b', '$HOME'], { stdout: PIPE });
      const [o] = await echo.communicate();
      const exit3 = await createSubprocessShell('exit 3');
      const rc3 = await exit3.wait();
      return { o: o?.toString(), rc: echo.returncode, rc3, after: exit3.returncode };
    });
    expect(got).toEqual({ o: 'hello a b $HOME\n', rc: 0, rc3: 3, after: 3 });
  }); // CPython test_subprocess: test_shell, test_start_new_session (exit code)

  it('a child killed by a signal: negative return codes (kill -9, terminate -15, sendSignal)', async () => {
    const codes = await run(async () => {
      const a = await createSubprocessExec('sleep', ['30']);
      a.kill();
      const b = await createSubprocessExec('sleep', ['30']);
      b.terminate();
      const c = await createSubprocessExec('sleep', ['30']);
      c.sendSignal('SIGHUP');
      const d = await createSubprocessExec('sleep', ['30']);
      d.sendSignal(10); // SIGUSR1 on Linux
      return Promise.all([a.wait(), b.wait(), c.wait(), d.wait()]);
    });
    expect(codes).toEqual([-9, -15, -1, -10]);
  }); // CPython test_subprocess: test_kill, test_terminate, test_send_signal

  it('200 short children in a row leave no zombie while node:child_process runs alongside', async () => {
    const nodeExits: (number | null)[] = [];
    const nodeChildren = Array.from({ length: 10 }, (_, i) =>
      new Promise<void>((res) => {
        const c = cpSpawn('sh', ['-c', `sleep 0.0${i}; exit ${i}`], { stdio: 'ignore' });
        c.on('exit', (code) => {
          nodeExits[i] = code;
          res();
        });
      }),
    );
    const codes = await run(async () => {
      const out: number[] = [];
      for (let i = 0; i < 200; i++) {
        const proc = await createSubprocessExec('true');
        out.push(await proc.wait());
        if (i % 50 === 0) {
          // Node spawns more meanwhile: libuv must still get their statuses.
          nodeChildren.push(new Promise<void>((res) => cpSpawn('true', { stdio: 'ignore' }).on('exit', () => res())));
        }
      }
      return out;
    });
    await Promise.all(nodeChildren);
    expect(codes).toEqual(Array(200).fill(0));
    expect(nodeExits).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(zombies()).toEqual([]);
  }); // the case (reaping by pid only, never waitpid(-1))

  it('the child sees only fds 0, 1, 2 and the passFds', async () => {
    const [r, w] = binding().pipe();
    const parentFds = fdCount();
    const [plain, passed] = await run(async () => {
      const p1 = await createSubprocessShell('ls /proc/$$/fd', { stdout: PIPE });
      const [o1] = await p1.communicate();
      // (dash redirects only fds 0-9 with >&N: open the passed fd by its /proc name.)
      const p2 = await createSubprocessShell(`ls /proc/$$/fd; echo through > /proc/$$/fd/${w}`, { stdout: PIPE, passFds: [w] });
      const [o2] = await p2.communicate();
      return [o1?.toString(), o2?.toString()];
    });
    expect(parentFds).toBeGreaterThan(5); // there was plenty to leak
    expect(plain.trim().split('\n')).toEqual(['0', '1', '2']);
    expect(passed.trim().split('\n')).toEqual(['0', '1', '2', String(w)]);
    binding().close(w);
    const buf = Buffer.alloc(64);
    const n = fs.readSync(r, buf, 0, 64, null);
    expect(buf.subarray(0, n).toString()).toBe('through\n');
    binding().close(r);
  }); // the case; CPython test_subprocess: test_pass_fds (close_fds=True behaviour)

  it('a task cancelled while awaiting wait() or communicate(); the child is still there to kill', async () => {
    const got = await run(async () => {
      const proc = await createSubprocessExec('sleep', ['30'], { stdout: PIPE });
      const waiting = createTask(async () => proc.wait());
      const talking = createTask(async () => proc.communicate());
      await sleep(0.05);
      waiting.cancel();
      talking.cancel();
      const [w, c] = await gather([waiting, talking], { returnExceptions: true });
      expect(proc.returncode).toBeNull();
      proc.kill();
      return { w, c, rc: await proc.wait() };
    });
    expect(got.w).toBeInstanceOf(CancelledError);
    expect(got.c).toBeInstanceOf(CancelledError);
    expect(got.rc).toBe(-9);
  }); // CPython test_subprocess: test_cancel_process_wait, test_cancel_make_subprocess_transport_exec

  it('communicate() after a partial read keeps the order; a cancelled communicate() loses nothing', async () => {
    const got = await run(async () => {
      const a = await createSubprocessShell('echo first; sleep 0.05; echo second', { stdout: PIPE, limit: 4 });
      const start = (await a.stdout!.readexactly(2)).toString();
      const [rest] = await a.communicate();
      const b = await createSubprocessShell('echo one; sleep 0.3; echo two', { stdout: PIPE });
      const talking = createTask(async () => b.communicate());
      while (b.stdout!._buffer.length === 0 && (b as unknown as { _protocol: { _collectors: Map<number, { size: number }> } })._protocol._collectors.get(1)?.size !== 4) {
        await sleep(0.01);
      }
      talking.cancel();
      const [cancelled] = await gather([talking], { returnExceptions: true });
      const all = (await b.stdout!.read()).toString();
      await b.wait();
      return { start, rest: rest?.toString(), cancelled, all };
    });
    expect(got.start).toBe('fi');
    expect(got.rest).toBe('rst\nsecond\n');
    expect(got.cancelled).toBeInstanceOf(CancelledError);
    expect(got.all).toBe('one\ntwo\n');
  }); // CPython test_subprocess: test_communicate / test_cancel_process_wait (data stays readable)

  it('an abort while the child starts: CancelledError, the child killed and reaped', async () => {
    const got = await run(async () => {
      const ac = new AbortController();
      const starting = createTask(async () => createSubprocessExec('sleep', ['30'], { stdout: PIPE, signal: ac.signal }));
      // Until the child exists (spawned, pipes not connected yet).
      while (childrenNamed('sleep').length === 0) await sleep(0);
      ac.abort('changed my mind');
      const [r] = await gather([starting], { returnExceptions: true });
      return { r, left: childrenNamed('sleep') };
    });
    expect(got.r).toBeInstanceOf(CancelledError);
    expect(got.left).toEqual([]);
  }); // CPython test_subprocess: test_cancel_make_subprocess_transport_exec

  it('every task cancelled while a child with three pipes starts: no hang, no fd left, no zombie', async () => {
    // Cancelled after k loop passes, so every stage of the pipe connection
    // is hit: before any pipe is connected, between pipes, and after.
    const got = await run(async () => {
      const outcomes: string[] = [];
      for (let k = 0; k < 30; k++) {
        // A generator task: a cancelled one drops nothing it was handed.
        const starting = createTask(
          (function* () {
            return yield* createSubprocessExec('sleep', ['30'], { stdin: PIPE, stdout: PIPE, stderr: PIPE });
          })(),
        );
        for (let i = 0; i < k; i++) await sleep(0);
        // What Runner.close() and a SIGTERM handler do: cancel everything.
        for (const t of allTasks()) if (t !== currentTask()) t.cancel();
        const [r] = await gather([starting], { returnExceptions: true });
        if (r instanceof CancelledError) {
          outcomes.push('cancelled');
        } else {
          const proc = r as Awaited<ReturnType<typeof createSubprocessExec>>;
          proc.kill();
          await proc.wait();
          outcomes.push('started');
        }
      }
      return { outcomes, left: childrenNamed('sleep') };
    });
    // Both sides of the race were hit: cancelled while starting, and started.
    expect(got.outcomes[0]).toBe('cancelled');
    expect(got.outcomes).toContain('started');
    expect(got.left).toEqual([]);
    // afterEach: fds back to the baseline, no zombie.
  }, 15_000); // CPython test_subprocess: test_cancel_make_subprocess_transport_exec (gh-103847 / gh-115178)

  it('only the pipe-connecting task cancelled: the start fails with CancelledError, the child is reaped, nothing leaks', async () => {
    // The transport's own task that connects the pipes, cancelled alone
    // (before its first step and at later points): its waiter must be
    // cancelled, not left pending (setException refuses a CancelledError).
    const got = await run(async () => {
      const outcomes: string[] = [];
      for (let k = 0; k < 20; k++) {
        // gather wraps the awaitable in a task of its own: made before the spy.
        const waiting = gather([createSubprocessExec('sleep', ['30'], { stdin: PIPE, stdout: PIPE, stderr: PIPE })], { returnExceptions: true });
        const made: Task<unknown>[] = [];
        const create = loop.createTask;
        loop.createTask = ((coro: never, opts?: never) => {
          const t = create.call(loop, coro, opts);
          made.push(t as Task<unknown>);
          return t;
        }) as typeof loop.createTask;
        let connecting: Task<unknown> | undefined;
        let r: unknown;
        try {
          // made[0]: loop.subprocessExec's task; made[1]: the transport's connect task.
          while (made.length < 2) await sleep(0);
          connecting = made[1];
          for (let i = 0; i < k; i++) await sleep(0);
          connecting.cancel();
          [r] = (await waiting) as unknown[];
        } finally {
          loop.createTask = create;
        }
        if (r instanceof CancelledError) {
          outcomes.push('cancelled');
        } else {
          const proc = r as Awaited<ReturnType<typeof createSubprocessExec>>;
          proc.kill();
          await proc.wait();
          outcomes.push('started');
        }
      }
      return { outcomes, left: childrenNamed('sleep') };
    });
    expect(got.outcomes[0]).toBe('cancelled');
    expect(got.left).toEqual([]);
  }, 15_000);

  it('run() whose main returns while a child start is in flight finishes', async () => {
    const baseFds = fdCount();
    const started: Promise<unknown>[] = [];
    const result = await runMain(async () => {
      started.push(
        createTask(
          (function* () {
            return yield* createSubprocessExec('sleep', ['30'], { stdin: PIPE, stdout: PIPE, stderr: PIPE });
          })(),
        ),
      );
      await sleep(0);
      return 'main done';
    });
    expect(result).toBe('main done');
    await Promise.allSettled(started);
    expect(childrenNamed('sleep')).toEqual([]);
    expect(await settleFds(baseFds)).toBe(baseFds);
  }, 15_000); // CPython test_subprocess: test_subprocess_protocol_events cancelled by asyncio.run (gh-115178)

  it('a closed fd as stdio or in passFds: OSError EBADF naming the option and the fd, nothing left behind', async () => {
    // The lowest free number: the one pipe2 would hand the spawn's report
    // pipe if nobody checked (the child would then keep that pipe open).
    const closedFd = (): number => {
      const fd = fs.openSync('/dev/null', 'r');
      fs.closeSync(fd);
      return fd;
    };
    const got = await run(async () => {
      const out: unknown[] = [];
      for (const opts of [
        (fd: number) => ({ stdout: fd }),
        (fd: number) => ({ stdin: PIPE, stderr: fd }),
        (fd: number) => ({ stdin: fd, stdout: PIPE }),
        (fd: number) => ({ stdout: PIPE, passFds: [fd] }),
      ]) {
        const fd = closedFd();
        const [r] = await gather([createSubprocessExec('sleep', ['5'], opts(fd))], { returnExceptions: true });
        out.push({ fd, r });
      }
      return { out, left: childrenNamed('sleep') };
    });
    const names = ['stdout', 'stderr', 'stdin', 'passFds'];
    got.out.forEach((o, i) => {
      const { fd, r } = o as { fd: number; r: NodeJS.ErrnoException };
      expect(r).toBeInstanceOf(Error);
      expect(r.code).toBe('EBADF');
      expect(r.message).toBe(`${names[i]}: fd ${fd} is not open`);
    });
    expect(got.left).toEqual([]);
  });

  it("the pidfd and the pipes of a child are closed through the loop's _fdClosing hook", async () => {
    const seen: string[] = [];
    const hooked = loop as TestLoop & { _fdClosing?: (fd: number, close: () => void) => boolean };
    const own = Object.getOwnPropertyDescriptor(hooked, '_fdClosing');
    hooked._fdClosing = (fd) => {
      // What the fd still is, just before its close (false: close it now).
      seen.push(fs.readlinkSync(`/proc/self/fd/${fd}`).replace(/:\[\d+\]$/, ''));
      return false;
    };
    try {
      const rc = await run(async () => {
        const proc = await createSubprocessShell('echo hi', { stdout: PIPE, stderr: PIPE });
        await proc.communicate();
        return proc.wait();
      });
      expect(rc).toBe(0);
      const pidfd = binding().pidfdOpen(process.pid);
      if (pidfd >= 0) binding().close(pidfd);
      const expected = pidfd >= 0 ? ['anon_inode:[pidfd]', 'pipe', 'pipe'] : ['pipe', 'pipe'];
      expect(seen.sort()).toEqual(expected);
    } finally {
      if (own) Object.defineProperty(hooked, '_fdClosing', own);
      else delete hooked._fdClosing;
    }
  });

  it('a small limit pauses the pipe and resumes it; reading after the exit gets everything', async () => {
    const got = await run(async () => {
      const proc = await createSubprocessShell('head -c 262144 /dev/zero; exit 1', { stdout: PIPE, limit: 1024 });
      const transport = proc.stdout!._transport as unknown as { isReading(): boolean };
      let total = 0;
      let sawPaused = false;
      for (;;) {
        const data = await proc.stdout!.read(65536);
        if (data.length === 0) break;
        total += data.length;
        await sleep(0.01);
        if (!transport.isReading()) sawPaused = true;
      }
      return { total, sawPaused, rc: await proc.wait() };
    });
    expect(got).toEqual({ total: 262144, sawPaused: true, rc: 1 });
  }); // CPython test_subprocess: test_pause_reading, test_read_stdout_after_process_exit

  it('communicate with empty input; stdout to a file given as an fd and as a FileHandle', async () => {
    tmp = mkdtempSync(path.join(tmpdir(), 'aionode-sp-'));
    const file1 = path.join(tmp, 'out1');
    const file2 = path.join(tmp, 'out2');
    const fd = fs.openSync(file1, 'w');
    const handle = await fs.promises.open(file2, 'w');
    const got = await run(async () => {
      const a = await createSubprocessExec('cat', [], { stdin: PIPE, stdout: PIPE });
      const [ao] = await a.communicate(Buffer.alloc(0));
      const b = await createSubprocessShell('echo to-fd', { stdout: fd });
      const c = await createSubprocessShell('echo to-handle', { stdout: handle });
      return { ao: ao?.length, rcs: [a.returncode, await b.wait(), await c.wait()] };
    });
    fs.closeSync(fd);
    await handle.close();
    expect(got).toEqual({ ao: 0, rcs: [0, 0, 0] });
    expect(fs.readFileSync(file1, 'utf8')).toBe('to-fd\n');
    expect(fs.readFileSync(file2, 'utf8')).toBe('to-handle\n');
  }); // CPython test_subprocess: test_empty_input, test_stdin_stdout_file

  it('a missing executable: FileNotFoundError, code ENOENT (by path and by PATH search)', async () => {
    const [e1, e2] = await run(async () => {
      const errs: unknown[] = [];
      for (const prog of ['/no/such/program', 'no-such-program-aionode']) {
        try {
          // Every pipe requested: none may leak when the spawn fails.
          await createSubprocessExec(prog, ['x'], { stdin: PIPE, stdout: PIPE, stderr: PIPE });
          errs.push(null);
        } catch (e) {
          errs.push(e);
        }
      }
      return errs;
    });
    expect(e1).toBeInstanceOf(FileNotFoundError);
    expect(e1).toMatchObject({ code: 'ENOENT', errno: 2, path: '/no/such/program', message: 'spawn /no/such/program ENOENT' });
    expect(e2).toBeInstanceOf(FileNotFoundError);
    expect((e2 as FileNotFoundError).code).toBe('ENOENT');
  }); // CPython test_subprocess: test_create_subprocess_exec_with_path / FileNotFoundError

  it('a bad cwd is a clear error naming the directory; a non-executable file is PermissionError', async () => {
    tmp = mkdtempSync(path.join(tmpdir(), 'aionode-sp-'));
    const script = path.join(tmp, 'not-executable');
    fs.writeFileSync(script, '#!/bin/sh\nexit 0\n', { mode: 0o644 });
    const [e1, e2] = await run(async () => {
      const errs: unknown[] = [];
      try {
        await createSubprocessExec('true', [], { cwd: '/no/such/dir' });
      } catch (e) {
        errs.push(e);
      }
      try {
        await createSubprocessExec(script);
      } catch (e) {
        errs.push(e);
      }
      return errs;
    });
    expect(e1).toBeInstanceOf(FileNotFoundError);
    expect(e1).toMatchObject({ code: 'ENOENT', syscall: 'chdir', path: '/no/such/dir' });
    expect((e1 as Error).message).toMatch(/cannot change to directory "\/no\/such\/dir"/);
    expect(e2).toBeInstanceOf(PermissionError);
    expect((e2 as PermissionError).code).toBe('EACCES');
  }); // CPython test_subprocess: test_exec_cwd (bad cwd raises FileNotFoundError)

  it('communicate() ignores a child that closed its stdin; a plain write reports BrokenPipe', async () => {
    const big = Buffer.alloc(4 << 20, 0x61);
    const got = await run(async () => {
      const p1 = await createSubprocessShell('exec 0<&-; exit 0', { stdin: PIPE });
      const [o, e] = await p1.communicate(big);
      // The child closes its stdin only once our write has filled the pipe.
      const p2 = await createSubprocessShell('sleep 0.2; exec 0<&-; sleep 0.05', { stdin: PIPE });
      let drainErr: unknown = null;
      p2.stdin!.write(big);
      try {
        await p2.stdin!.drain();
      } catch (exc) {
        drainErr = exc;
      }
      return { o, e, rc1: p1.returncode, drainErr, rc2: await p2.wait() };
    });
    expect(got).toMatchObject({ o: null, e: null, rc1: 0, rc2: 0 });
    expect(got.drainErr instanceof BrokenPipeError || got.drainErr instanceof ConnectionResetError).toBe(true);
  }); // CPython test_subprocess: test_communicate_ignore_broken_pipe, test_stdin_broken_pipe

  it('the low-level protocol: events in order, BrokenPipeError on pipe 0 through pipeConnectionLost', async () => {
    const proto = new RecordingProtocol();
    await run(async () => {
      const [t, p] = await loop.subprocessShell(() => proto, 'sleep 0.2; exec 0<&-; echo out; echo err >&2; sleep 0.05', { stdin: PIPE, stdout: PIPE, stderr: PIPE });
      expect(p).toBe(proto);
      expect(t.getPid()).toBeGreaterThan(0);
      expect(t.getReturncode()).toBeNull();
      expect(t.getPipeTransport(0)).not.toBeNull();
      expect(t.getPipeTransport(3)).toBeNull();
      // More than the pipe holds (1 MiB, see CHILD_PIPE_SIZE): still buffered when the child closes its stdin.
      (t.getPipeTransport(0) as unknown as { write(d: Buffer): void }).write(Buffer.alloc(4 << 20));
      while (proto.lost === 0) await sleep(0.005);
      expect(t.getReturncode()).toBe(0);
      expect(() => t.sendSignal('SIGTERM')).toThrow(ProcessLookupError);
      t.close();
    });
    expect(proto.events[0]).toBe('connectionMade');
    expect(proto.events[proto.events.length - 1]).toBe('connectionLost()');
    expect(proto.lost).toBe(1);
    expect([...proto.events].sort()).toEqual(
      ['connectionLost()', 'connectionMade', 'pipeConnectionLost(0)', 'pipeConnectionLost(1)', 'pipeConnectionLost(2)', 'processExited'].sort(),
    );
    expect(proto.pipeErrors[0]).toBeInstanceOf(BrokenPipeError);
    expect(Buffer.concat(proto.data[1]).toString()).toBe('out\n');
    expect(Buffer.concat(proto.data[2]).toString()).toBe('err\n');
  }); // CPython test_events: test_subprocess_exec, test_subprocess_stderr; test_subprocess: test_stdin_broken_pipe

  it('stderr=STDOUT, DEVNULL, env and cwd', async () => {
    tmp = mkdtempSync(path.join(tmpdir(), 'aionode-sp-'));
    const got = await run(async () => {
      const a = await createSubprocessShell('echo out; echo err >&2', { stdout: PIPE, stderr: STDOUT });
      const [ao, ae] = await a.communicate();
      const b = await createSubprocessExec('cat', [], { stdin: DEVNULL, stdout: PIPE, stderr: DEVNULL });
      const [bo] = await b.communicate();
      const c = await createSubprocessShell('echo "$FOO"; pwd', { stdout: PIPE, env: { FOO: 'bar baz', PATH: process.env.PATH }, cwd: tmp! });
      const [co] = await c.communicate();
      return { ao: ao?.toString(), ae, bo: bo?.toString(), brc: b.returncode, co: co?.toString() };
    });
    expect(got).toEqual({ ao: 'out\nerr\n', ae: null, bo: '', brc: 0, co: `bar baz\n${fs.realpathSync(tmp)}\n` });
  }); // CPython test_events: test_subprocess_stderr_redirect_to_stdout; test_subprocess: test_devnull_*, test_env

  it('startNewSession and processGroup', async () => {
    const got = await run(async () => {
      const a = await createSubprocessExec('cat', ['/proc/self/stat'], { stdout: PIPE, startNewSession: true });
      const [ao] = await a.communicate();
      const b = await createSubprocessExec('cat', ['/proc/self/stat'], { stdout: PIPE, processGroup: 0 });
      const [bo] = await b.communicate();
      return { a: statFields(ao!.toString()), apid: a.pid, b: statFields(bo!.toString()), bpid: b.pid };
    });
    // [state, ppid, pgrp, session]
    expect(Number(got.a[3])).toBe(got.apid);
    expect(Number(got.a[2])).toBe(got.apid);
    expect(Number(got.b[2])).toBe(got.bpid);
    expect(Number(got.b[3])).not.toBe(got.bpid);
  }); // CPython test_subprocess: test_start_new_session, test_process_group_0

  it('interactive: write a line, read a line, through cat', async () => {
    const lines = await run(async () => {
      const proc = await createSubprocessExec('cat', [], { stdin: PIPE, stdout: PIPE });
      const out: string[] = [];
      for (const word of ['Python', 'The Winner']) {
        proc.stdin!.write(`${word}\n`);
        await proc.stdin!.drain();
        out.push((await proc.stdout!.readline()).toString());
      }
      proc.stdin!.close();
      await proc.stdin!.waitClosed();
      expect(await proc.wait()).toBe(0);
      return out;
    });
    expect(lines).toEqual(['Python\n', 'The Winner\n']);
  }); // CPython test_events: test_subprocess_interactive

  it('transport.close() kills a running child; connectionLost follows once', async () => {
    const proto = new RecordingProtocol();
    const rc = await run(async () => {
      const [t] = await loop.subprocessExec(() => proto, 'sleep', ['30'], { stdout: PIPE });
      t.close();
      t.close();
      while (proto.lost === 0) await sleep(0.005);
      return t.getReturncode();
    });
    expect(rc).toBe(-9);
    expect(proto.lost).toBe(1);
  }); // CPython test_events: test_subprocess_close_client_stream / test_subprocess_kill

  it('bad arguments: asyncio-shaped errors, nothing spawned', async () => {
    await run(async () => {
      // Argument types and asyncio's fixed options: thrown at the call.
      expect(() => createSubprocessShell(42 as never)).toThrow(TypeError);
      expect(() => createSubprocessShell(42 as never)).toThrow(/"cmd"/);
      expect(() => createSubprocessShell('true', { universalNewlines: true })).toThrow('universal_newlines must be False');
      expect(() => createSubprocessShell('true', { shell: false })).toThrow('shell must be True');
      expect(() => createSubprocessExec('true', [], { shell: true })).toThrow('shell must be False');
      expect(() => createSubprocessExec('true', [], { bufsize: 1 })).toThrow('bufsize must be 0');
      expect(() => createSubprocessExec('true', [], { text: true })).toThrow('text must be False');
      expect(() => createSubprocessExec('true', [], { encoding: 'utf-8' as never })).toThrow('encoding must be None');
      expect(() => createSubprocessExec('true', [], { errors: 'strict' as never })).toThrow('errors must be None');
      expect(() => createSubprocessExec('true', [], { stdot: PIPE } as never)).toThrow(/Unknown subprocess option "stdot"/);
      expect(() => createSubprocessExec(5 as never)).toThrow(/"program"/);
      expect(() => createSubprocessExec('echo', [1] as never)).toThrow(/"args\[0\]"/);
      expect(() => createSubprocessExec('true', [], { limit: 0 })).toThrow('Limit cannot be <= 0');
      // Values only the spawn can judge: through the awaited result.
      await expect(createSubprocessExec('true', [], { stdin: STDOUT })).rejects.toThrow(RangeError);
      await expect(createSubprocessExec('true', [], { passFds: [1] })).rejects.toThrow(/passFds\[0\]/);
      await expect(createSubprocessExec('true', [], { env: { A: 1 } as never })).rejects.toThrow(/env.A/);
      expect(() => loop.subprocessExec(null as never, 'true')).toThrow(/protocolFactory/);
      expect(() => createSubprocessExec('true', [], { signal: 'stop' as never })).toThrow(/"signal"/);
      const ac = new AbortController();
      ac.abort('not now');
      await expect(createSubprocessExec('true', [], { signal: ac.signal })).rejects.toBeInstanceOf(CancelledError);
    });
    expect(zombies()).toEqual([]);
  }); // CPython test_subprocess: test_shell_invalid_args / test_exec_invalid_args, test_create_subprocess_invalid_args

  it('a loop closed while its child runs leaves no zombie: the child is reaped when it exits', async () => {
    // A loop of its own, so the fd baseline (taken with `loop` open) holds.
    const other = newLoop(name);
    const pid = (await other.runUntilComplete(async () => (await createSubprocessExec('sleep', ['0.3'])).pid)) as number;
    other.close();
    expect(_fallbackWatcherState().children).toBeGreaterThanOrEqual(1);
    expect(childrenNamed('sleep')).toContain(pid);
    for (let i = 0; i < 100 && _fallbackWatcherState().children > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(_fallbackWatcherState()).toEqual({ children: 0, listening: false });
    expect(zombies()).toEqual([]);
    expect(childrenNamed('sleep')).not.toContain(pid);
  });

  it('the SIGCHLD fallback (AIONODE_TEST_NO_PIDFD=1): exits seen, no zombies, child_process unharmed', async () => {
    process.env.AIONODE_TEST_NO_PIDFD = '1';
    try {
      const nodeExit = new Promise<number | null>((res) => cpSpawn('sh', ['-c', 'sleep 0.1; exit 7'], { stdio: 'ignore' }).on('exit', res));
      const got = await run(async () => {
        const procs = await Promise.all([
          createSubprocessShell('exit 4'),
          createSubprocessExec('sleep', ['0.05']),
          createSubprocessExec('sleep', ['30']),
          createSubprocessShell('echo fallback', { stdout: PIPE }),
        ]);
        expect(_fallbackWatcherState().listening).toBe(true);
        procs[2].kill();
        const [, out] = await gather([procs[3].wait(), procs[3].stdout!.read()]);
        const codes = [];
        for (const p of procs) codes.push(await p.wait());
        // A run of short children, all through the fallback.
        for (let i = 0; i < 20; i++) codes.push(await (await createSubprocessExec('true')).wait());
        return { codes, out: (out as Buffer).toString() };
      });
      expect(got.codes).toEqual([4, 0, -9, 0, ...Array(20).fill(0)]);
      expect(got.out).toBe('fallback\n');
      expect(await nodeExit).toBe(7);
      expect(_fallbackWatcherState()).toEqual({ children: 0, listening: false });
    } finally {
      delete process.env.AIONODE_TEST_NO_PIDFD;
    }
  }); // CPython test_unix_events: SafeChildWatcher tests (reaping by pid), test_subprocess: ThreadedChildWatcher variants
});
