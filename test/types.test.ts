/**
 * The public types: `yield* fut` and `await fut` give T, Promise.all over
 * Futures is typed, Future<T> stays covariant, tasks infer their result.
 * Runs tsc on a fixture that must compile and on one that must fail with
 * exactly the expected errors.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(__dirname, '..');
const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');

function typecheck(project: string): { status: number | null; errors: string[] } {
  const r = spawnSync(process.execPath, [tsc, '-p', path.join('test', 'fixtures', 'types', project), '--pretty', 'false'], {
    cwd: root,
    encoding: 'utf8',
    timeout: 120_000,
  });
  const errors = r.stdout
    .split('\n')
    .filter((l) => /error TS\d+/.test(l))
    .map((l) => l.replace(/\\/g, '/').replace(/^.*?(bad|ok)\.ts/, '$1.ts').replace(/: error (TS\d+):.*$/, ' $1'));
  return { status: r.status, errors };
}

describe('public types', () => {
  it('compile a program using yield*, await, Promise.all and covariance', () => {
    const r = typecheck('tsconfig.json');
    expect(r.errors).toEqual([]);
    expect(r.status).toBe(0);
  });

  it('reject wrong uses with the expected errors', () => {
    const r = typecheck('tsconfig.bad.json');
    expect(r.status).not.toBe(0);
    expect(r.errors).toEqual([
      'bad.ts(9,9) TS2322', // const bad: string = yield* fNum
      'bad.ts(10,9) TS2322', // yield 5
      'bad.ts(15,9) TS2322', // const s: string = await fNum
      'bad.ts(19,7) TS2322', // Future<number> = Future<string>
      'bad.ts(20,12) TS2345', // createTask(42)
    ]);
  });
});
