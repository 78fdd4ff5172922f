import { execFileSync } from 'node:child_process';

/** Debian's Chromium (.ci/run installs it), or CHROMIUM_PATH: the browser tests drive a real one, never a downloaded one. */
export function chromiumPath(): string {
  if (process.env.CHROMIUM_PATH) return process.env.CHROMIUM_PATH;
  for (const bin of ['chromium', 'chromium-browser', 'google-chrome']) {
    try {
      return execFileSync('which', [bin], { encoding: 'utf8' }).trim();
    } catch {
      // next
    }
  }
  throw new Error('the browser tests drive a real Chromium: install Debian\'s chromium (.ci/run does) or set CHROMIUM_PATH');
}
