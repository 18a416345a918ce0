// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

export default tseslint.config(
  { ignores: ['**/dist/**', 'node_modules/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true }],
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
    },
  },
  {
    // The library is shared by the actions, the CLI, the tests and the benchmarks:
    // only the action entries (actions/**) may talk to the runner.
    files: ['src/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            {
              name: '@actions/core',
              message: 'The library never imports @actions/core; do runner I/O in actions/.',
            },
          ],
        },
      ],
    },
  },
  {
    // The library takes its environment from its caller (src/env.ts): a step's decisions
    // (who ran, SOURCE_DATE_EPOCH, cache and state directories, where tools are found)
    // come from the env it is given, so tests pass one instead of changing process.env.
    // Allowed: the CLI's entry (it hands process.env to the step), the child-process
    // environment (src/process/run.ts: programs inherit ours) and the action harness
    // (it builds the environment of the action process it starts, like the runner).
    files: ['src/**/*.ts'],
    ignores: ['src/cli/main.ts', 'src/process/run.ts', 'src/harness/run-action.ts'],
    rules: {
      'no-restricted-properties': [
        'error',
        {
          object: 'process',
          property: 'env',
          message:
            "The library never reads process.env: take the step's env (src/env.ts) from the caller.",
        },
      ],
    },
  },
  {
    // Orchestrators read like a list of phases (one named function per phase): no function
    // in the library longer than about 120 lines.
    files: ['src/**/*.ts'],
    rules: { 'max-lines-per-function': ['error', { max: 120 }] },
  },
  {
    files: ['**/*.js'],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: { globals: globals.node },
  },
);
