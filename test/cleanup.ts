import { afterAll } from 'vitest';
import { removeTmpDirs } from './tmp.js';

// Registered before any test file's own hooks, so it runs after them (after-hooks run in reverse):
// apps are closed and child processes stopped before their directories go.
afterAll(() => removeTmpDirs());
