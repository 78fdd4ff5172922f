#!/usr/bin/env node
// `npm start` / `npm run worker`: run the compiled JavaScript (dist/), building it first when it is missing
// or older than the TypeScript sources (the first start after a clone or a pull; about 10 s). The product
// then runs in this very process, so the signals a supervisor sends reach it.
//   node bin/start.js server   -> dist/src/main.js
//   node bin/start.js worker   -> dist/workers/main.js
import { ensureBuilt } from './build.js';

const ENTRIES = { server: '../dist/src/main.js', worker: '../dist/workers/main.js' };
const entry = ENTRIES[process.argv[2] ?? 'server'];
if (!entry) {
  process.stderr.write(`usage: node bin/start.js [${Object.keys(ENTRIES).join('|')}]\n`);
  process.exit(2);
}
if (!ensureBuilt()) process.exit(1);
await import(new URL(entry, import.meta.url).href);
