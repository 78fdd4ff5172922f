import { styleText } from 'node:util';
import type { JobView } from './api.js';

/** The global options, as parsed: --json for scripts, --yes for destructive commands. */
export type Globals = { json?: boolean; yes?: boolean };

type Style = Parameters<typeof styleText>[0];

/** Colours only on a terminal, never with NO_COLOR or TERM=dumb. */
export const color = () => process.stdout.isTTY === true && !process.env.NO_COLOR && process.env.TERM !== 'dumb';
export const paint = (style: Style, text: string) => (color() ? styleText(style, text) : text);

export function stateColor(value: string): string {
  const styles: Record<string, Style> = {
    completed: 'green',
    failed: 'red',
    active: 'cyan',
    delayed: 'yellow',
    unhealthy: 'red',
    degraded: 'yellow',
    healthy: 'green',
    warning: 'yellow',
    critical: 'red',
    paused: 'yellow',
  };
  const style = styles[value];
  return style ? paint(style, value) : value;
}

/** A table cell: '-' for no value; objects as JSON rather than "[object Object]". */
function cell(value: unknown): string {
  if (value === null || value === undefined) return '-';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  return JSON.stringify(value);
}

/** Columns aligned by their visible width; numbers right-aligned. */
export function table(rows: Array<Record<string, unknown>>, columns: Array<[key: string, header: string]>): string {
  if (rows.length === 0) return paint('dim', '(none)');
  const cells = rows.map((r) => columns.map(([k]) => cell(r[k])));
  const widths = columns.map(([, h], i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const numeric = columns.map((_, i) => cells.every((c) => /^-?\d+(\.\d+)?$|^-$/.test(c[i]!)));
  const fmt = (c: string, i: number, styled = c) => (numeric[i] ? ' '.repeat(widths[i]! - c.length) + styled : styled + ' '.repeat(widths[i]! - c.length));
  const head = columns.map(([, h], i) => fmt(h, i, paint('bold', h))).join('  ');
  const body = cells.map((c) => c.map((v, i) => fmt(v, i, stateColor(v))).join('  '));
  return [head, ...body].map((line) => line.trimEnd()).join('\n');
}

/** Print `data` as JSON with --json, else as `human(data)`. */
export function out(globals: Globals, data: unknown, human: () => string): void {
  process.stdout.write(globals.json ? JSON.stringify(data, null, 2) + '\n' : human() + '\n');
}

/** One job, as job:get and the --wait of every command print it. */
export function jobSummary(job: JobView): string {
  return [
    `${paint('bold', job.id)}  ${job.type}  ${stateColor(job.state)}  ${job.progress}%  attempts ${job.attempts}/${job.maxAttempts}`,
    job.failedReason ? `reason: ${job.failedReason}` : '',
    job.result ? `result: ${JSON.stringify(job.result)}` : '',
  ]
    .filter(Boolean)
    .join('\n');
}

/**
 * A job's progress as it runs, with its log lines. On a terminal: a bar kept
 * on the last line, redrawn in place, the log lines scrolling above it. Piped:
 * plain lines, `<id>: <state> <progress>%` whenever either changes, and the
 * log lines as they are.
 */
export class ProgressView {
  private state = '';
  private progress = -1;
  private barShown = false;
  private readonly tty = process.stdout.isTTY === true;

  constructor(private readonly id: string) {}

  update(state: string, progress: number): void {
    if (state === this.state && progress === this.progress) return;
    this.state = state;
    this.progress = progress;
    if (this.tty) this.drawBar();
    else process.stdout.write(`${this.id}: ${state} ${progress}%\n`);
  }

  log(line: string): void {
    if (!this.tty) {
      process.stdout.write(line + '\n');
      return;
    }
    this.clearBar();
    process.stdout.write(line + '\n');
    if (this.state) this.drawBar();
  }

  /** Take the bar off the screen, so what follows starts on a clean line. */
  close(): void {
    if (this.tty) this.clearBar();
  }

  /** One line, never wider than the terminal: a wrapped line could not be redrawn in place. */
  private drawBar(): void {
    const room = (process.stdout.columns || 80) - 1;
    const pct = Math.max(0, Math.min(100, Math.round(this.progress)));
    const words = ` ${String(pct).padStart(3)}%  ${this.state}`;
    const width = Math.max(10, Math.min(30, room - words.length));
    const filled = Math.round((pct / 100) * width);
    const bar = '█'.repeat(filled) + '░'.repeat(width - filled);
    const id = width + words.length + 2 + this.id.length <= room ? `  ${this.id}` : '';
    process.stdout.write(`\r\x1b[2K${paint('cyan', bar)} ${String(pct).padStart(3)}%  ${stateColor(this.state)}${id}`);
    this.barShown = true;
  }

  private clearBar(): void {
    if (!this.barShown) return;
    process.stdout.write('\r\x1b[2K');
    this.barShown = false;
  }
}
