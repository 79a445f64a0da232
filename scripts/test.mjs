#!/usr/bin/env node
// `npm test`: builds what is missing, runs the native core test binary and
// the vitest suite, then prints one closing line `N passed, M failed`.
// Extra arguments go to vitest (e.g. `npm test -- test/futures.test.ts`).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const extra = process.argv.slice(2);
const resultsDir = path.join(root, '.test-results');
mkdirSync(resultsDir, { recursive: true });

function run(cmd, argv, opts = {}) {
  console.log(`$ ${[cmd, ...argv].join(' ')}`);
  return spawnSync(cmd, argv, { cwd: root, stdio: 'inherit', ...opts });
}

function must(r, what) {
  if (r.status !== 0) {
    console.error(`test: ${what} failed (status ${r.status})`);
    console.log('0 passed, 1 failed');
    process.exit(1);
  }
}

// 1. Build what is missing: the addon (node-gyp) and lib/ (tsc, for the
//    tests that load the compiled package the way users do).
must(run(process.execPath, ['scripts/build-native.mjs', '--if-needed']), 'native build');
must(run(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json']), 'tsc');

let passed = 0;
let failed = 0;

// 2. The native core's own test binary (no Node), built by cmake-js.
if (extra.length === 0) {
  must(run(process.execPath, ['scripts/build-native.mjs', '--core-test']), 'core test build');
  const bin = path.join(root, 'build-cmake', 'aionode_core_test');
  const r = spawnSync(bin, [], { cwd: root, encoding: 'utf8' });
  process.stdout.write(r.stdout ?? '');
  process.stderr.write(r.stderr ?? '');
  const m = /core: (\d+) passed, (\d+) failed/.exec(r.stdout ?? '');
  if (m) {
    passed += Number(m[1]);
    failed += Number(m[2]);
  } else {
    console.error(`test: ${bin} printed no summary (status ${r.status})`);
    failed += 1;
  }
  if (r.status !== 0 && m && Number(m[2]) === 0) failed += 1;
}

// 3. The vitest suite.
const jsonOut = path.join(resultsDir, 'vitest.json');
const vitest = path.join(root, 'node_modules/vitest/vitest.mjs');
const r = run(process.execPath, [
  vitest, 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${jsonOut}`, ...extra,
]);
if (existsSync(jsonOut)) {
  const report = JSON.parse(readFileSync(jsonOut, 'utf8'));
  passed += report.numPassedTests ?? 0;
  failed += report.numFailedTests ?? 0;
  // A file that fails to load counts as a failure even with no test in it.
  const brokenFiles = (report.testResults ?? []).filter(
    (f) => f.status === 'failed' && (f.assertionResults ?? []).every((a) => a.status !== 'failed'),
  ).length;
  failed += brokenFiles;
} else {
  failed += 1;
}
if (r.status !== 0 && failed === 0) failed += 1;

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
