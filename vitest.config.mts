import { defineConfig } from 'vitest/config';

// One process per test file (forks), at most two at once on this 2-core
// machine; --expose-gc lets leak and never-retrieved tests force a GC.
// AIONODE_TEST_TIMEOUT_MULTIPLIER scales timeouts for sanitizer runs.
const mult = Number(process.env.AIONODE_TEST_TIMEOUT_MULTIPLIER ?? '1') || 1;

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    // Fails a test on default exception-handler calls it did not opt into.
    setupFiles: ['test/setup.ts'],
    pool: 'forks',
    maxWorkers: 2,
    execArgv: ['--expose-gc'],
    testTimeout: 20_000 * mult,
    hookTimeout: 20_000 * mult,
    reporters: ['default'],
  },
});
