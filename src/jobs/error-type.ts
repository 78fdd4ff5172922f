import { JOB_IDS_IN_TEXT } from './job-id.js';

/**
 * The shape of a failure reason without its particulars, so that failures of
 * one cause group together: first line, numbers, ids and quoted values
 * replaced, at most 120 characters.
 */
export function errorType(reason: string | null): string {
  const first = (reason ?? 'unknown error').split('\n', 1)[0]!;
  return first
    .replace(/"[^"]*"|'[^']*'/g, '"…"')
    .replace(/\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/gi, '<id>')
    .replace(JOB_IDS_IN_TEXT, '<job>')
    .replace(/\d+(\.\d+)?/g, 'N')
    .slice(0, 120)
    .trim();
}
