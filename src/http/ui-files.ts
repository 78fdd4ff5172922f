import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The live page's assets and their content types. */
export const UI_ASSETS = { 'job.js': 'text/javascript; charset=utf-8', 'job.css': 'text/css; charset=utf-8' } as const;

/** ui/ at the repository's root: two levels up from src/http/, three from dist/src/http/. */
function uiDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const found = [path.join(here, '..', '..', 'ui'), path.join(here, '..', '..', '..', 'ui')].find((d) => existsSync(path.join(d, 'job.html')));
  if (!found) throw new Error(`the live page's files (ui/job.html) are missing next to ${here}`);
  return found;
}

/** The live job page's files, read once at start (they are shipped as they are: no build step). */
export function loadUiFiles(): { page: Buffer; assets: Record<keyof typeof UI_ASSETS, Buffer> } {
  const dir = uiDir();
  return {
    page: readFileSync(path.join(dir, 'job.html')),
    assets: { 'job.js': readFileSync(path.join(dir, 'job.js')), 'job.css': readFileSync(path.join(dir, 'job.css')) },
  };
}
