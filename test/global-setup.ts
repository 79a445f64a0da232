/**
 * Compiles lib/ to dist/ when it is missing or older than the sources, so
 * the tests that run the package the way users do (child processes, worker
 * threads) never see stale JavaScript. `npm test` compiles first anyway.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

export default function setup(): void {
  const root = path.resolve(__dirname, '..');
  const out = path.join(root, 'dist', 'lib', 'index.js');
  if (!existsSync(out) || statSync(out).mtimeMs < newest(path.join(root, 'lib'))) {
    execFileSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], {
      cwd: root,
      stdio: 'inherit',
    });
  }
}
