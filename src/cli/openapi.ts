import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildApp } from '../app.js';
import { loadConfig } from '../config.js';
import { Inventory } from '../inventory.js';
import { writeOrCheck } from './generated-file.js';

export const OPENAPI_FILE = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'openapi', 'openapi.json');

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
  writeOrCheck(OPENAPI_FILE, await generateOpenApi(), process.argv[2], 'npm run openapi:generate');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  main().catch((err: Error) => {
    process.stderr.write(`openapi: ${err.stack ?? err.message}\n`);
    process.exit(2);
  });
}
