import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * A file generated from the code and committed (the OpenAPI document, the
 * Python models): `--write` rewrites it; anything else checks it and exits 1
 * when it has drifted, naming the command that regenerates it.
 */
export function writeOrCheck(file: string, generated: string, mode: string | undefined, regenerate: string): void {
  const name = path.relative(process.cwd(), file);
  if (mode === '--write') {
    writeFileSync(file, generated);
    process.stdout.write(`wrote ${name}\n`);
    return;
  }
  let committed = '';
  try {
    committed = readFileSync(file, 'utf8');
  } catch {
    // missing counts as drift
  }
  if (committed !== generated) {
    process.stderr.write(`${name} is out of date with the code: run \`${regenerate}\` and commit it.\n`);
    process.exit(1);
  }
  process.stdout.write(`${name} matches the code.\n`);
}
