#!/usr/bin/env node
// `npm test`: builds what is missing, runs the native core test binary and
// the vitest suite, then the sanitizer pass, and prints one closing line
// `N passed, M failed` that counts all of them.
// Extra arguments go to vitest (e.g. `npm test -- test/futures.test.ts`)
// and skip the core test and the sanitizer pass.
//
// Sanitizer pass (reliability.md §5; issue 8 Deliver 4): the ASan+UBSan
// addon and core test binary (build-cmake/asan, cmake-js, offline), the
// core test binary run, then the native-touching vitest files (test/native,
// test/faults, test/threads.test.ts) against that addon in a stock node, with libasan preloaded
// and the loader pointed at it through AIONODE_NATIVE (child processes and
// workers inherit both). AIONODE_SKIP_SANITIZERS=1 skips it for quick local
// runs; CI runs it.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
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

/** Runs a core test binary and adds its `core: N passed, M failed` line. */
function coreTest(bin, env = process.env) {
  const r = spawnSync(bin, [], { cwd: root, encoding: 'utf8', env });
  process.stdout.write(r.stdout ?? '');
  process.stderr.write(r.stderr ?? '');
  const m = /core: (\d+) passed, (\d+) failed/.exec(r.stdout ?? '');
  if (m) {
    passed += Number(m[1]);
    failed += Number(m[2]);
  } else {
    console.error(`test: ${bin} printed no summary (status ${r.status}, signal ${r.signal})`);
    failed += 1;
  }
  if (r.status !== 0 && m && Number(m[2]) === 0) failed += 1;
}

/** Runs vitest with a JSON report and adds its counts. */
function vitestRun(args, jsonOut, env = process.env) {
  rmSync(jsonOut, { force: true });
  const vitest = path.join(root, 'node_modules/vitest/vitest.mjs');
  const r = run(
    process.execPath,
    [vitest, 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${jsonOut}`, ...args],
    { env },
  );
  let counted = 0;
  if (existsSync(jsonOut)) {
    const report = JSON.parse(readFileSync(jsonOut, 'utf8'));
    passed += report.numPassedTests ?? 0;
    failed += report.numFailedTests ?? 0;
    counted += report.numFailedTests ?? 0;
    // A file that fails to load (or whose worker dies, e.g. an ASan abort)
    // counts as a failure even with no failed test in it.
    const brokenFiles = (report.testResults ?? []).filter(
      (f) => f.status === 'failed' && (f.assertionResults ?? []).every((a) => a.status !== 'failed'),
    ).length;
    failed += brokenFiles;
    counted += brokenFiles;
  } else {
    failed += 1;
    counted += 1;
  }
  if (r.status !== 0 && counted === 0) failed += 1;
}

// 2. The native core's own test binary (no Node), built by cmake-js.
if (extra.length === 0) {
  must(run(process.execPath, ['scripts/build-native.mjs', '--core-test']), 'core test build');
  coreTest(path.join(root, 'build-cmake', 'aionode_core_test'));
}

// 3. The vitest suite.
vitestRun(extra, path.join(resultsDir, 'vitest.json'));

// 4. The sanitizer pass.
if (extra.length === 0 && process.env.AIONODE_SKIP_SANITIZERS !== '1') sanitizers();

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);

function libasan() {
  for (const cc of [process.env.CC, 'gcc', 'cc'].filter(Boolean)) {
    const r = spawnSync(cc, ['-print-file-name=libasan.so'], { encoding: 'utf8' });
    const p = (r.stdout ?? '').trim();
    if (r.status === 0 && path.isAbsolute(p) && existsSync(p)) return p;
  }
  return null;
}

function sanitizers() {
  const t0 = Date.now();
  console.log('test: sanitizer pass (ASan + UBSan); AIONODE_SKIP_SANITIZERS=1 skips it');
  const b = run(process.execPath, ['scripts/build-native.mjs', '--asan']);
  const addon = path.join(root, 'build-cmake', 'asan', 'Release', 'aionode.node');
  const bin = path.join(root, 'build-cmake', 'asan', 'aionode_core_test');
  const asan = libasan();
  if (b.status !== 0 || !existsSync(addon) || !existsSync(bin) || asan === null) {
    console.error(`test: sanitizer build failed (status ${b.status}, libasan ${asan ?? 'not found'})`);
    failed += 1;
    return;
  }
  const env = {
    ...process.env,
    // abort_on_error: a report kills the process, so it cannot go unnoticed;
    // leaks are a separate job (V8 and Node keep allocations at exit).
    ASAN_OPTIONS: 'detect_leaks=0,abort_on_error=1',
    UBSAN_OPTIONS: 'halt_on_error=1,print_stacktrace=1',
    AIONODE_TEST_TIMEOUT_MULTIPLIER: '3',
  };
  console.log(`test: ASAN_OPTIONS=${env.ASAN_OPTIONS} UBSAN_OPTIONS=${env.UBSAN_OPTIONS} LD_PRELOAD=${asan} AIONODE_NATIVE=${addon}`);
  coreTest(bin, env);
  const t1 = Date.now();
  vitestRun(
    // threads: the cross-thread channel's native queue, wake-ups and teardown.
    ['test/native', 'test/faults', 'test/threads.test.ts'],
    path.join(resultsDir, 'vitest-asan.json'),
    { ...env, LD_PRELOAD: asan, AIONODE_NATIVE: addon },
  );
  const t2 = Date.now();
  console.log(
    `test: sanitizer pass took ${((t2 - t0) / 1000).toFixed(0)} s ` +
      `(build + core ${((t1 - t0) / 1000).toFixed(0)} s, vitest ${((t2 - t1) / 1000).toFixed(0)} s)`,
  );
}
