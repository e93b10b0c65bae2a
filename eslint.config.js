// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import reactHooks from 'eslint-plugin-react-hooks';
import globals from 'globals';

/** Imports each layer may not make (STYLE.md: the trust boundary is visible in the tree). */
const electronOnlyInShell = {
  paths: [
    {
      name: 'electron',
      message: 'Only main/electron/ and the preload import electron; take an adapter from main/platform.ts.',
    },
  ],
};

export default tseslint.config(
  {
    ignores: [
      'node_modules',
      'dist',
      'out',
      'test-results',
      'playwright-report',
      'e2e/output',
      '.stryker-tmp',
      'reports',
      '.state',
      'e2e/harness/fixtures/lint/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'off',
      'no-console': 'off',
    },
  },
  {
    files: ['renderer/**/*.{ts,tsx}'],
    plugins: { 'react-hooks': reactHooks },
    languageOptions: { globals: { ...globals.browser } },
    rules: {
      ...reactHooks.configs.recommended.rules,
      'no-restricted-imports': [
        'error',
        {
          paths: [
            {
              name: 'electron',
              message: 'The renderer is a web page: reach the desktop through renderer/platform.ts.',
            },
          ],
          patterns: [
            { group: ['node:*'], message: 'The renderer is a web page and cannot use Node modules.' },
            {
              group: ['**/main/**', '**/main', '**/gateway/**', '**/gateway'],
              message: 'The renderer may import only shared/.',
            },
            {
              group: ['fs', 'path', 'child_process', 'os', 'crypto', 'net', 'http', 'https'],
              message: 'The renderer is a web page and cannot use Node modules.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['shared/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [{ name: 'electron', message: 'shared/ is the contract: no electron.' }],
          patterns: [
            { group: ['node:*'], message: 'shared/ is the contract: no Node modules.' },
            {
              group: ['**/main/**', '**/renderer/**', '**/gateway/**', '**/e2e/**'],
              message: 'shared/ imports nothing of ours.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['main/**/*.ts', 'gateway/**/*.ts'],
    ignores: ['main/electron/**', 'main/preload/**'],
    rules: { 'no-restricted-imports': ['error', electronOnlyInShell] },
  },
);
