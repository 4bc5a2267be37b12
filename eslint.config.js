// @ts-check
// One lint for every TypeScript and JavaScript file of the package, type-aware through
// tsconfig.json. Layout is Prettier's (eslint-config-prettier turns off the rules that
// would fight it); these rules are here for defects: promises nobody awaits, `any`
// leaking through, dead code, deprecated APIs.
import js from '@eslint/js';
import { defineConfig, globalIgnores } from 'eslint/config';
import prettier from 'eslint-config-prettier';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default defineConfig(
  globalIgnores(['node_modules/', 'dist/', 'dist-check/', 'build/', 'prebuilds/', '.tmp/', 'contrib/', 'native/']),
  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      globals: globals.node,
      parserOptions: {
        projectService: {
          // Files outside tsconfig.json's include, typed by a default project.
          allowDefaultProject: ['bin/*.js', 'examples/*.mjs', 'eslint.config.js'],
        },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    linterOptions: {
      reportUnusedDisableDirectives: 'error',
    },
    rules: {
      // Already in the preset; named so that nobody turns them off by accident.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
      // Beyond the preset: defects the compiler lets through.
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
      '@typescript-eslint/no-unnecessary-type-assertion': 'error',
      // Passing on a reason we were handed (signal.reason, a caught value) is not inventing one.
      '@typescript-eslint/prefer-promise-reject-errors': [
        'error',
        { allowThrowingAny: true, allowThrowingUnknown: true },
      ],
      // `interface X extends Fields {}` names a type; it is no empty object.
      '@typescript-eslint/no-empty-object-type': ['error', { allowInterfaces: 'with-single-extends' }],
      '@typescript-eslint/return-await': ['error', 'in-try-catch'],
      // A deprecated API is one the next major of a dependency removes.
      '@typescript-eslint/no-deprecated': 'error',
      // `let x; ... x = v` stays when a callback reads x before that line: a const there is a TDZ error.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      eqeqeq: ['error', 'always', { null: 'ignore' }],
      'no-constant-binary-expression': 'error',
      'no-self-compare': 'error',
      'no-unreachable-loop': 'error',
      // An async function without await is how a sync body meets a Promise-returning interface.
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      // Vitest's asymmetric matchers (expect.stringMatching, expect.any, ...) are typed `any`
      // by design so that they fit any expected shape.
      '@typescript-eslint/no-unsafe-assignment': 'off',
    },
  },
  prettier,
  {
    // After eslint-config-prettier, which turns it off: Prettier wraps code at 120 but leaves
    // long strings, template literals and comments alone, and no line may pass 120.
    rules: {
      'max-len': ['error', { code: 120, tabWidth: 2 }],
    },
  },
);
