import { defineConfig } from 'vitest/config';

// `npm run bench:micro`: only the micro-benchmarks under bench/ (the root config holds the tests).
export default defineConfig({
  test: {
    root: new URL('..', import.meta.url).pathname,
    benchmark: { include: ['bench/**/*.bench.ts'] },
  },
});
