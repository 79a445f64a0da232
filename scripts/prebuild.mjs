#!/usr/bin/env node
// `npm run prebuild`: prebuildify --napi --strip into prebuilds/<platform>-<arch>/,
// offline: node-gyp reads the Node headers from npm_config_nodedir (the
// running Node's prefix), so nothing is downloaded.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { nodeDir } from './build-native.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const bin = require.resolve('prebuildify/bin.js');
const args = [bin, '--napi', '--strip', '--tag-libc', ...process.argv.slice(2)];
const env = { ...process.env, npm_config_nodedir: nodeDir() };
console.log(`$ npm_config_nodedir=${env.npm_config_nodedir} ${process.execPath} ${args.join(' ')}`);
const r = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit', env });
process.exit(r.status ?? 1);
