// `npm run lint`: ESLint's and typescript-eslint's recommended rules, nothing about style (tsc and
// review cover the rest). Type-aware rules are left out: they would type-check the project a second
// time on every lint run, and `npm test` already runs tsc.
import { defineConfig } from 'eslint/config';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default defineConfig(
  { ignores: ['node_modules/', 'dist/', 'coverage/', '.package/', 'test/fixtures/', 'testkit/published/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    // A disable comment that silences nothing is an error, so the ones left are the needed ones.
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // `_name` marks a parameter or binding kept on purpose (a callback's signature, a rest omit).
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', ignoreRestSiblings: true }],
    },
  },
  {
    // Tests take apart untyped JSON (published payloads, stand-in request bodies, cards); an `any`
    // there is the honest type. The library and the test kit keep the rule.
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  {
    // Plain CommonJS files: the bin launcher, jest's config and reporter.
    files: ['**/*.js', '**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { require: 'readonly', module: 'writable', process: 'readonly', __dirname: 'readonly', __filename: 'readonly', console: 'readonly', Buffer: 'readonly' } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
