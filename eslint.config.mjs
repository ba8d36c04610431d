import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/**', 'cdk.out/**', 'coverage/**', '.sluice/**', 'dist/**', 'templates/**'] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    // Type-aware rules: each file is typed by the tsconfig.json project it belongs to.
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'error',
      // Numbers, bigints (allowNumber) and booleans in messages and keys are intended; the rest as strict.
      '@typescript-eslint/restrict-template-expressions': [
        'error',
        {
          allowAny: false,
          allowBoolean: true,
          allowNever: false,
          allowNullish: false,
          allowNumber: true,
          allowRegExp: false,
        },
      ],
      // Shorthand callbacks of void calls (`expect(() => f()).toThrow()`, `(x) => emit(x)`) read clearer.
      '@typescript-eslint/no-confusing-void-expression': ['error', { ignoreArrowShorthand: true }],
    },
  },
  // JavaScript files (this config) are outside the tsconfig project: linted without type information.
  {
    files: ['**/*.mjs', '**/*.cjs', '**/*.js'],
    ...tseslint.configs.disableTypeChecked,
  },
  // Node scripts: the build (ES module) and the command's launcher (CommonJS).
  {
    files: ['scripts/**/*.mjs'],
    languageOptions: { globals: { process: 'readonly' } },
  },
  // The streaming page's script runs in the browser, with uPlot loaded before it.
  {
    files: ['ui/**/*.js'],
    languageOptions: {
      sourceType: 'script',
      globals: {
        document: 'readonly',
        fetch: 'readonly',
        Node: 'readonly',
        setTimeout: 'readonly',
        uPlot: 'readonly',
      },
    },
  },
  {
    files: ['bin/**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { require: 'readonly', __dirname: 'readonly' } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    files: ['local/**', 'bench/**', 'examples/**', 'infra/app.ts'],
    rules: { 'no-console': 'off' },
  },
);
