import { defineConfig } from 'vitest/config';

// The boot test (npm run test:e2e): QEMU boots under TCG, minutes each, as root. Kept out
// of npm test's include; .ci/run runs both.
export default defineConfig({
  test: {
    include: ['test/e2e/**/*.e2e.ts'],
    testTimeout: 60_000,
    hookTimeout: 20 * 60_000,
    fileParallelism: false,
  },
});
