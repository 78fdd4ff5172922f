// ESLint flat config: typescript-eslint's type-aware rules over the TypeScript code (tsconfig.json),
// plain recommended rules over the few JavaScript files. `npm run lint` runs it with the import boundaries.
import js from '@eslint/js';
import { defineConfig, globalIgnores } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default defineConfig(
  globalIgnores(['dist/', 'coverage/', 'data/', 'clients/', 'config/', 'openapi/']),

  {
    files: ['**/*.{js,cjs,mjs}'],
    extends: [js.configs.recommended],
    languageOptions: { globals: globals.node },
  },

  {
    // The live job page runs in a browser (ui/), not in Node.
    files: ['ui/**/*.js'],
    languageOptions: { globals: globals.browser },
  },

  {
    files: ['**/*.ts'],
    extends: [js.configs.recommended, tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // The bugs this config is for (all in recommendedTypeChecked; listed so they stay errors).
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      // `Context`: adding a Lua command's type to ioredis means re-declaring `interface RedisCommander<Context>`,
      // and declaration merging requires the same type parameter name, used or not.
      '@typescript-eslint/no-unused-vars': [
        'error',
        { args: 'after-used', argsIgnorePattern: '^_', varsIgnorePattern: '^_|^Context$', ignoreRestSiblings: true },
      ],
      // Type-only imports are erased; marking them keeps a module's runtime dependencies visible (either style).
      '@typescript-eslint/consistent-type-imports': ['error', { prefer: 'type-imports', fixStyle: 'inline-type-imports' }],
      // `return promise` inside try skips the catch/finally; `return await` there keeps them in play.
      '@typescript-eslint/return-await': ['error', 'in-try-catch'],
      // A new job type, state or outcome in a union must be handled wherever that union is switched on.
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
      eqeqeq: ['error', 'always'],
      // Logs are pino, structured; console output belongs to the CLIs and the benchmarks only (below).
      'no-console': 'error',
      // Off: Fastify plugins and hooks are async by contract (that is how Fastify knows not to wait for a
      // `done` callback), so an async function without await is the normal shape there, not a bug.
      '@typescript-eslint/require-await': 'off',
    },
  },

  {
    files: ['test/**/*.ts'],
    rules: {
      // Off in tests: they read HTTP and Redis answers (`res.json()`, `JSON.parse`) as `any` and assert on
      // them; typing every answer would rewrite the suite for no bug caught. Shipped code keeps these rules.
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },

  {
    files: ['src/cli/**', 'bench/**', 'bin/**'],
    rules: { 'no-console': 'off' },
  },
);
