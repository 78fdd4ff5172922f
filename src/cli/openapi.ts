import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildApp } from '../app.js';
import { loadConfig } from '../config.js';
import { Inventory } from '../inventory.js';

export const OPENAPI_FILE = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'openapi', 'openapi.json');

/** The OpenAPI document as the routes declare it, without Redis or workers. */
export async function generateOpenApi(): Promise<string> {
  const config = loadConfig({ JWT_SECRET: 'x'.repeat(32), LOG_LEVEL: 'silent', WORKERS: 'off' });
  const app = await buildApp(config, { docsOnly: true, inventory: new Inventory([], '.') });
  await app.ready();
  const doc = app.swagger();
  await app.close();
  return JSON.stringify(doc, null, 2) + '\n';
}

async function main(): Promise<void> {
  const mode = process.argv[2];
  const doc = await generateOpenApi();
  if (mode === '--write') {
    writeFileSync(OPENAPI_FILE, doc);
    process.stdout.write(`wrote ${path.relative(process.cwd(), OPENAPI_FILE)}\n`);
    return;
  }
  let committed = '';
  try {
    committed = readFileSync(OPENAPI_FILE, 'utf8');
  } catch {
    // missing counts as drift
  }
  if (committed !== doc) {
    process.stderr.write('openapi/openapi.json is out of date with the routes: run `npm run openapi:generate` and commit it.\n');
    process.exit(1);
  }
  process.stdout.write('openapi/openapi.json matches the routes.\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  main().catch((err: Error) => {
    process.stderr.write(`openapi: ${err.stack ?? err.message}\n`);
    process.exit(2);
  });
}
