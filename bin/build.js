// Build dist/ from the TypeScript sources when it is missing or older than them (bin/start.js, the test
// suite's global setup). Plain JavaScript: it runs before anything is compiled.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SOURCES = ['src', 'routes', 'workers', 'tsconfig.json', 'tsconfig.build.json', 'package-lock.json'];
const DIST = path.join(ROOT, 'dist');
/** Written last into a complete build; its time is when that build started. */
const STAMP = path.join(DIST, '.built');

/** The newest modification time under `p` (a file or a folder), in ms. */
function newest(p) {
  const s = statSync(p, { throwIfNoEntry: false });
  if (!s) return 0;
  if (!s.isDirectory()) return s.mtimeMs;
  let max = s.mtimeMs;
  for (const name of readdirSync(p)) max = Math.max(max, newest(path.join(p, name)));
  return max;
}

/** Whether dist/ holds a build of the sources as they are now. Without sources (the Docker image) dist/ is all there is. */
export function isBuilt() {
  if (!existsSync(path.join(ROOT, 'src'))) return existsSync(DIST);
  const built = statSync(STAMP, { throwIfNoEntry: false });
  return built !== undefined && SOURCES.every((p) => newest(path.join(ROOT, p)) <= built.mtimeMs);
}

/**
 * Compile into a folder of its own, then swap it in: a process starting meanwhile never sees half a
 * build, and two builds at once (two `npm start`s) both finish, the last one in place.
 * Answers whether dist/ is ready; says why on stderr when it is not.
 */
export function ensureBuilt() {
  return isBuilt() || build();
}

/** Compile now, whatever dist/ holds (`npm run build`). */
export function build() {
  const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  if (!existsSync(tsc)) {
    process.stderr.write('jobs-api: dist/ is missing or out of date and TypeScript is not installed: run `npm ci` first (or `npm run build`).\n');
    return false;
  }
  process.stderr.write('jobs-api: compiling the TypeScript sources into dist/ (the first start after a change; about 10 s)...\n');
  const started = new Date();
  const out = path.join(ROOT, `dist.build-${process.pid}`);
  rmSync(out, { recursive: true, force: true });
  const run = spawnSync(process.execPath, [tsc, '-p', path.join(ROOT, 'tsconfig.build.json'), '--outDir', out], { cwd: ROOT, stdio: 'inherit' });
  if (run.status !== 0) {
    rmSync(out, { recursive: true, force: true });
    process.stderr.write('jobs-api: the TypeScript sources do not compile (see above); nothing was started.\n');
    return false;
  }
  writeFileSync(path.join(out, '.built'), `${started.toISOString()}\n`);
  utimesSync(path.join(out, '.built'), started, started);
  const old = path.join(ROOT, `dist.old-${process.pid}`);
  try {
    renameSync(DIST, old);
  } catch {
    // no dist/ yet, or another build just moved it
  }
  try {
    renameSync(out, DIST);
  } catch {
    // another build put its dist/ in place first: as fresh as ours
    rmSync(out, { recursive: true, force: true });
  }
  rmSync(old, { recursive: true, force: true });
  return true;
}

// `node bin/build.js` (npm run build): compile now; with --if-stale, only when dist/ is missing or older than the sources.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exit((process.argv.includes('--if-stale') ? ensureBuilt() : build()) ? 0 : 1);
}
