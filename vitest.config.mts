import path from 'node:path';
import { defineConfig } from 'vitest/config';

/** The package's own entry points mean its sources here, as tsconfig.json's `paths` say. */
const selfReferences = {
  sluice: 'lib/index.ts',
  'sluice/testing': 'local/testing.ts',
  'sluice/cdk': 'infra/cdk.ts',
};

/**
 * One project per test tier: `vitest run --project unit|types|local|infra` runs one
 * (`npm run test:<tier>`), `vitest run` runs them all with one summary. Inline projects inherit
 * the options below (`extends: true`); coverage and reporters can only be set here, at the root.
 */
export default defineConfig({
  resolve: {
    alias: Object.entries(selfReferences).map(([name, file]) => ({
      find: new RegExp(`^${name}$`),
      replacement: path.resolve(import.meta.dirname, file),
    })),
  },
  test: {
    testTimeout: 120_000,
    hookTimeout: 60_000,
    pool: 'forks',
    reporters: ['default'],
    // Off unless asked for (`--coverage`, as `npm test` does): the thresholds hold for the whole
    // suite, not for one tier.
    coverage: {
      provider: 'v8',
      include: ['lib/**/*.ts'],
      // Declaration files are types only. A type-only module (lib/batch.ts, lib/encoding/encodable.ts)
      // compiles to nothing, counts 0 of 0 and leaves the totals as they are, so it is not listed:
      // a list would hide the coverage of any such module that later gains code.
      exclude: ['lib/**/*.d.ts'],
      reporter: ['text-summary', 'json-summary'],
      reportsDirectory: 'coverage',
      // A failing test still reports (and checks) coverage, so CI always prints the summary.
      reportOnFailure: true,
      // About three points below the full suite's 93.1 / 94.2 / 85.1 / 91.6 % (lines, functions,
      // branches, statements) when these were set.
      thresholds: { lines: 90, functions: 91, branches: 82, statements: 88 },
    },
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      {
        extends: true,
        test: {
          name: 'types',
          include: [],
          typecheck: {
            enabled: true,
            only: true,
            include: ['test/types/**/*.test-d.ts'],
            tsconfig: './tsconfig.json',
          },
        },
      },
      { extends: true, test: { name: 'local', include: ['test/local/**/*.test.ts'] } },
      { extends: true, test: { name: 'infra', include: ['test/infra/**/*.test.ts'] } },
      // The packed package installed into projects outside the repository (npm, tsc, cdk).
      { extends: true, test: { name: 'consumer', include: ['test/consumer/**/*.test.ts'] } },
    ],
  },
});
