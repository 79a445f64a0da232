#!/usr/bin/env node
// Builds the native addon. Prints every command it runs.
//
//   node scripts/build-native.mjs              node-gyp rebuild (Release)
//   node scripts/build-native.mjs --if-needed  skip when an up-to-date build
//                                              or a matching prebuild exists
//   node scripts/build-native.mjs --debug      node-gyp Debug build
//   node scripts/build-native.mjs --asan       cmake-js ASan+UBSan addon and
//                                              core test binary (build-cmake/asan/)
//   node scripts/build-native.mjs --core-test  cmake-js core test binary only
//
// Offline by design: node-gyp and cmake-js are pointed at the headers of the
// running Node (the prefix two levels above process.execPath), so neither
// ever tries to download them.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const args = new Set(process.argv.slice(2));

export function nodeDir() {
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  const header = path.join(prefix, 'include', 'node', 'node_api.h');
  if (!existsSync(header)) {
    throw new Error(
      `Node headers not found at ${header}. aionode builds offline against ` +
        `the headers of the running Node; install Node with its headers ` +
        `(e.g. the official tarball, or your distribution's nodejs-dev package).`,
    );
  }
  return prefix;
}

function run(cmd, argv, opts = {}) {
  console.log(`$ ${[cmd, ...argv].join(' ')}`);
  const r = spawnSync(cmd, argv, { stdio: 'inherit', cwd: root, ...opts });
  if (r.status !== 0) {
    console.error(`build-native: command failed with status ${r.status}`);
    process.exit(r.status ?? 1);
  }
}

function newestSource() {
  let newest = statSync(path.join(root, 'binding.gyp')).mtimeMs;
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.(cc|h)$/.test(e.name)) newest = Math.max(newest, statSync(p).mtimeMs);
    }
  };
  walk(path.join(root, 'native'));
  return newest;
}

function upToDate() {
  const built = path.join(root, 'build', 'Release', 'aionode.node');
  if (existsSync(built) && statSync(built).mtimeMs >= newestSource()) {
    console.log(`build-native: ${path.relative(root, built)} is up to date`);
    return true;
  }
  const pre = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
  if (!existsSync(path.join(root, 'native')) && existsSync(pre)) {
    console.log(`build-native: using prebuilds in ${path.relative(root, pre)}`);
    return true;
  }
  return false;
}

function nodeGyp(debug) {
  const gyp = require.resolve('node-gyp/bin/node-gyp.js');
  run(process.execPath, [
    gyp,
    'rebuild',
    `--nodedir=${nodeDir()}`,
    '--jobs=max',
    ...(debug ? ['--debug'] : []),
  ]);
}

// cmake-js reads the Node prefix from npm_config_nodedir (it has no flag for
// it) and then passes -DCMAKE_JS_INC=<prefix>/include/node: no download.
function cmakeJs(outDir, extra) {
  const env = { ...process.env, npm_config_nodedir: nodeDir() };
  console.log(`$ npm_config_nodedir=${env.npm_config_nodedir} \\`);
  run(process.execPath, [
    require.resolve('cmake-js/bin/cmake-js'), 'build', '-d', 'native', '-O', outDir, ...extra,
  ], { env });
}

// Run only as a script: prebuild.mjs imports nodeDir() from here.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  if (args.has('--asan')) {
    // Addon + core test binary with ASan/UBSan, in build-cmake/asan/. Run Node
    // with LD_PRELOAD of libasan (see README "Sanitizers").
    cmakeJs('build-cmake/asan', ['--CDAIO_SANITIZE=ON']);
  } else if (args.has('--core-test')) {
    cmakeJs('build-cmake', ['-T', 'aionode_core_test']);
  } else if (args.has('--if-needed') && upToDate()) {
    // nothing to do
  } else {
    nodeGyp(args.has('--debug'));
  }
}
