#!/usr/bin/env node
// jobsctl: the TypeScript source through tsx in a checkout; the compiled code where there is no source (the Docker image).
import { existsSync } from 'node:fs';

const source = new URL('../src/cli/jobsctl.ts', import.meta.url);
const compiled = new URL('../dist/src/cli/jobsctl.js', import.meta.url);
let cli;
if (existsSync(source)) {
  const { tsImport } = await import('tsx/esm/api');
  cli = await tsImport(source.href, import.meta.url);
} else {
  cli = await import(compiled.href);
}
process.exitCode = await cli.main(process.argv);
