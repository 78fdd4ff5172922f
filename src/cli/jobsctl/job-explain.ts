import type { Command } from 'commander';
import { api, jobPath } from './api.js';
import { globalsOf } from './args.js';
import { out, paint, stateColor } from './output.js';

/** GET /api/jobs/:id/explain, as jobsctl reads it (the route's schema says what each code carries). */
type Explanation = {
  jobId: string;
  queue: string;
  state: string;
  held: boolean;
  summary: string;
  attempts: number;
  maxAttempts: number;
  failedReason: string | null;
  reasons: Array<{ code: string; message: string } & Record<string, unknown>>;
};

/** The answer for a person: the job and its short answer, then one line per reason that holds it. */
export function explanationText(e: Explanation): string {
  const width = Math.max(0, ...e.reasons.map((r) => r.code.length));
  return [
    `${paint('bold', e.jobId)}  ${stateColor(e.state)}  ${e.held ? paint('yellow', 'held') : 'not held'}: ${e.summary}`,
    ...e.reasons.map((r) => `  ${r.code.padEnd(width)}  ${r.message}`),
  ].join('\n');
}

/** job:explain: why a job is not running. Exit 0 whenever the API answered, held or not. */
export function addExplainCommand(program: Command): void {
  const g = globalsOf(program);

  program
    .command('job:explain')
    .description('why a job is not running: every reason that holds it (paused queue, no worker, delay or retry backoff, rate limit, tenant cap, server lock, place in line), one per line')
    .argument('<id>', 'the job id')
    .action(async (id: string) => {
      const e = await api().call<Explanation>('GET', `${jobPath(id)}/explain`);
      out(g(), e, () => explanationText(e));
    });
}
