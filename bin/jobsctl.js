#!/usr/bin/env node
// jobsctl: the compiled code when dist/ is a build of the sources as they are (npm start builds it; the Docker
// image has nothing else), otherwise the TypeScript sources through tsx (a checkout that was never started).
import { existsSync } from 'node:fs';
import { isBuilt } from './build.js';

const source = new URL('../src/cli/jobsctl.ts', import.meta.url);
const compiled = new URL('../dist/src/cli/jobsctl.js', import.meta.url);
let cli;
if (existsSync(compiled) && isBuilt()) {
  cli = await import(compiled.href);
} else {
  const { tsImport } = await import('tsx/esm/api');
  cli = await tsImport(source.href, import.meta.url);
}
process.exitCode = await cli.main(process.argv);
