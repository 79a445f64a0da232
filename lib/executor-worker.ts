/**
 * The body of every executor worker thread (piscina's handler; see
 * lib/executor.ts). A job is either the source text of a self-contained
 * function or a `{ filename, name }` module export, plus its arguments and
 * a shared start flag: the worker claims the job by moving the flag from 0
 * (queued) to 1 (running); a job the caller cancelled first (flag 2) is
 * skipped without running, so a cancelled job never runs and a running one
 * is never cancelled (concurrent.futures' rule).
 */
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { describeArg } from './exceptions.js';
import { packError, type PackedError } from './threads.js';

/** @internal */
export interface Job {
  src?: string;
  fnName?: string;
  filename?: string;
  name?: string;
  args: unknown[];
  flag: Int32Array;
}

/** @internal */
export type JobResult = { skipped: true } | { ok: true; value: unknown } | { ok: false; error: PackedError };

const compiled = new Map<string, (...args: unknown[]) => unknown>();
const requireHere = createRequire(__filename);

function compile(src: string): (...args: unknown[]) => unknown {
  let fn = compiled.get(src);
  if (fn !== undefined) return fn;
  // Compiled at global scope with one name added, `require`, so the
  // function sees what the top of a CommonJS module of its own would see
  // (globals, built-in modules, packages), and nothing of where it was
  // written.
  try {
    fn = new Function('require', `return (${src}\n);`)(requireHere) as (...args: unknown[]) => unknown;
  } catch (e) {
    if (!(e instanceof SyntaxError)) throw e;
    // Method shorthand (`name(a) { ... }`) is not an expression by itself.
    const obj = new Function('require', `return ({${src}\n});`)(requireHere) as Record<string, (...args: unknown[]) => unknown>;
    fn = Object.values(obj)[0];
  }
  if (typeof fn !== 'function') {
    throw new TypeError(describeArg('fn', 'source text that evaluates to a function', fn) + ` (source: ${JSON.stringify(src.length > 60 ? src.slice(0, 60) + '…' : src)})`);
  }
  if (compiled.size > 256) compiled.clear();
  compiled.set(src, fn);
  return fn;
}

async function load(filename: string, name: string): Promise<(...args: unknown[]) => unknown> {
  let mod: Record<string, unknown>;
  try {
    mod = requireHere(filename) as Record<string, unknown>;
  } catch (e) {
    if ((e as { code?: string })?.code !== 'ERR_REQUIRE_ESM') throw e;
    mod = (await import(pathToFileURL(filename).href)) as Record<string, unknown>;
  }
  const fn = name === 'default' && typeof mod === 'function' ? mod : mod?.[name];
  if (typeof fn !== 'function') {
    throw new TypeError(`${filename} has no function export ${JSON.stringify(name)} (got ${typeof fn})`);
  }
  return fn as (...args: unknown[]) => unknown;
}

// A result that cannot be cloned would fail inside piscina's postMessage,
// after this handler returned, and take the worker down: check first.
// Byte buffers and primitives always clone; they skip the trial copy.
function checkClonable(value: unknown): void {
  if (typeof value === 'function' || typeof value === 'symbol') {
    throw new TypeError(`the function's result must be structured-clonable, got a ${typeof value}`);
  }
  if (typeof value !== 'object' || value === null || ArrayBuffer.isView(value)) return;
  try {
    structuredClone(value);
  } catch (e) {
    throw new TypeError(`the function's result must be structured-clonable (${(e as Error).message})`);
  }
}

export default async function runJob(job: Job): Promise<JobResult> {
  if (Atomics.compareExchange(job.flag, 0, 0, 1) !== 0) return { skipped: true };
  try {
    const fn = job.src !== undefined ? compile(job.src) : await load(job.filename!, job.name ?? 'default');
    const value = await fn(...job.args);
    checkClonable(value);
    return { ok: true, value };
  } catch (e) {
    if (job.src !== undefined && e instanceof ReferenceError) {
      const missing = /^(\S+) is not defined/.exec(e.message)?.[1];
      const err = new ReferenceError(
        `function ${JSON.stringify(job.fnName || '<anonymous>')} refers to ` +
          `${missing !== undefined ? JSON.stringify(missing) : 'a variable'}, which is not defined in the executor's ` +
          `worker thread: a function shipped to a thread must be self-contained (it closes over outer variables?). ` +
          `Pass values as arguments, or use a { filename, name } module reference. (${e.message})`,
      );
      return { ok: false, error: packError(err) };
    }
    return { ok: false, error: packError(e) };
  }
}
