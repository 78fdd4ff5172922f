import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auth, makeApp, waitForJob } from '../helpers.js';

const ROOT = join(import.meta.dirname, '../..');
const DASHBOARD = join(ROOT, 'deploy/grafana/jobs-api-dashboard.json');
const ALERTS = join(ROOT, 'deploy/prometheus/jobs-api-alerts.yml');
const PROMETHEUS = join(ROOT, 'deploy/prometheus/prometheus.yml');

/** PromQL words that are not metric names (aggregations, modifiers, set operators, literals). */
const PROMQL_WORDS = new Set([
  'sum', 'min', 'max', 'avg', 'group', 'stddev', 'stdvar', 'count', 'count_values', 'bottomk', 'topk', 'quantile', 'limitk', 'limit_ratio',
  'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'and', 'or', 'unless', 'offset', 'atan2', 'inf', 'nan',
]);

/** The metric names a PromQL expression selects, in order, each once. */
function metricsOf(expr: string): string[] {
  if (/__name__/.test(expr)) throw new Error(`select metrics by name, not by __name__: ${expr}`);
  const bare = expr
    .replace(/\$\{[^}]*\}|\$\w+/g, ' ') // Grafana variables ($queue, $__rate_interval, ${DS})
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""') // strings, before the braces they may hold
    .replace(/\{[^{}]*\}/g, ' ') // label matchers
    .replace(/\[[^[\]]*\]/g, ' ') // ranges and subqueries
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)/g, ' $1 '); // label lists
  const names: string[] = [];
  for (const [, number, word, call] of bare.matchAll(/(\d[\w.]*)|([A-Za-z_:][\w:]*)(\s*\()?/g)) {
    if (number || !word || call || PROMQL_WORDS.has(word)) continue;
    if (!names.includes(word)) names.push(word);
  }
  return names;
}

/** The metrics a Grafana template variable's query selects (label_values or query_result). */
function metricsOfVariable(query: string): string[] {
  const m = /^label_values\((.+),\s*\w+\)$/.exec(query.trim()) ?? /^query_result\((.+)\)$/.exec(query.trim());
  if (!m) throw new Error(`a variable query this test does not read: ${query}`);
  return metricsOf(m[1]!);
}

/** `# TYPE` lines of the text exposition format: name → kind. */
function exportedTypes(text: string): Map<string, string> {
  const types = new Map<string, string>();
  for (const [, name, kind] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) types.set(name!, kind!);
  return types;
}

/** Of these names, those the product does not export (a histogram's _bucket, _sum and _count are its own). */
function unexported(names: string[], types: Map<string, string>): string[] {
  return names.filter((name) => {
    if (types.has(name)) return false;
    const m = /^(.+)_(bucket|sum|count)$/.exec(name);
    const kind = m && types.get(m[1]!);
    return !(kind === 'histogram' || (kind === 'summary' && m![2] !== 'bucket'));
  });
}

/** Series Prometheus makes itself for each target, not the product: the scrape job's `up`. */
const PROMETHEUS_OWN = ['up'];

type Panel = {
  id: number;
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  targets?: Array<{ expr: string; datasource?: { uid: string } }>;
  fieldConfig?: { defaults: { thresholds: { steps: Array<{ value: number | null }> } } };
  options?: { content?: string };
};
type Variable = { name: string; type: string; query: string | { query: string } };
type Rule = { alert: string; expr: string; for: string; labels: { severity: string }; annotations: { summary: string; description: string } };

describe('the Grafana dashboard and the Prometheus alerts under deploy/', () => {
  let app: FastifyInstance;
  let types: Map<string, string>;
  const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8'));
  const panels: Panel[] = dashboard.panels;
  const alerts = parseYaml(readFileSync(ALERTS, 'utf8'), { uniqueKeys: true }) as { groups: Array<{ name: string; rules: Rule[] }> };
  const rules = alerts.groups.flatMap((g) => g.rules);
  const prometheus = parseYaml(readFileSync(PROMETHEUS, 'utf8'), { uniqueKeys: true }) as {
    rule_files: string[];
    scrape_configs: Array<{ job_name: string; metrics_path: string; authorization: { type: string; credentials_file: string } }>;
  };
  const variables: Variable[] = dashboard.templating.list;

  beforeAll(async () => {
    app = await makeApp({ servers: [{ id: 'slow', tenant: 'ops', host: '127.0.0.1', update: { command: [process.execPath, '-e', 'setInterval(() => {}, 1000)'], timeoutSec: 60 } }] });
    const res = await app.inject({ url: '/metrics', headers: auth({ sub: 'prometheus', scope: 'metrics:read' }) });
    expect(res.statusCode).toBe(200);
    types = exportedTypes(res.body);
  });
  afterAll(() => app.close());

  it('reads metric names out of PromQL, and flags a name the product does not export', () => {
    const expr =
      '60 * sum by (queue) (max by (queue, type) (rate(queue_completed_total{queue=~"$queue", type!="a{b} or c"}[$__rate_interval] offset 5m)))' +
      ' / on (queue) group_left (type) max without (instance) (made_up_jobs_total) > bool 0.5' +
      ' and topk(3, histogram_quantile(0.95, sum by (le) (rate(queue_wait_time_seconds_bucket[5m])))) unless absent(up{job="x"} @ start())';
    expect(metricsOf(expr)).toEqual(['queue_completed_total', 'made_up_jobs_total', 'queue_wait_time_seconds_bucket', 'up']);
    expect(metricsOfVariable('label_values(queue_waiting_jobs{queue!=""}, queue)')).toEqual(['queue_waiting_jobs']);
    expect(types.get('queue_completed_total')).toBe('counter');
    expect(unexported(['queue_completed_total', 'made_up_jobs_total', 'queue_wait_time_seconds_bucket', 'queue_wait_time_seconds_count', 'queue_waiting_jobs_bucket'], types)).toEqual([
      'made_up_jobs_total',
      'queue_waiting_jobs_bucket',
    ]);
  });

  it('has the panels the issue names, each on the Prometheus data source variable, with the guide\'s thresholds', () => {
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(dashboard.uid).toBe('jobs-api-queues');
    expect(variables.find((v) => v.name === 'DS_PROMETHEUS')).toMatchObject({ type: 'datasource', query: 'prometheus' });
    expect(variables.find((v) => v.name === 'queue')).toMatchObject({ type: 'query' });
    expect(new Set(panels.map((p) => p.id)).size).toBe(panels.length);

    const panel = (title: RegExp) => {
      const found = panels.filter((p) => title.test(p.title));
      expect(found, String(title)).toHaveLength(1);
      return found[0]!;
    };
    const steps = (p: Panel) => p.fieldConfig?.defaults.thresholds.steps.map((s) => s.value);
    expect(steps(panel(/^Queue depth/))).toEqual([null, 1000, 5000]);
    expect(steps(panel(/^Active jobs, % of max concurrency/))).toEqual([null, 80, 95]);
    expect(panel(/^Throughput/).targets!.map((t) => t.expr).join(' ')).toMatch(/rate\(queue_completed_total/);
    expect(steps(panel(/^Failure rate/))).toEqual([null, 0.05, 0.1]);
    expect(steps(panel(/^Average wait time/))).toEqual([null, 30, 120]);
    expect(steps(panel(/^Health status per queue/))).toEqual([null, 1, 2]);
    expect(panel(/^Active per tenant/).targets!.map((t) => t.expr).join(' ')).toMatch(/queue_tenant_active_jobs/);

    for (const p of panels) {
      if (p.type === 'text' || p.type === 'row') continue;
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      expect(p.datasource, p.title).toEqual({ type: 'prometheus', uid: '${DS_PROMETHEUS}' });
      for (const t of p.targets!) expect(t.datasource?.uid, p.title).toBe('${DS_PROMETHEUS}');
    }
  });

  it('each alert rule has a severity, a summary and a description, and the guide\'s thresholds', () => {
    for (const g of alerts.groups) expect(Object.keys(g).sort(), g.name).toEqual(['name', 'rules']);
    for (const r of rules) {
      expect(Object.keys(r).sort(), r.alert).toEqual(['alert', 'annotations', 'expr', 'for', 'labels']);
      expect(r.for, r.alert).toMatch(/^\d+[smh]$/);
      expect(['warning', 'critical'], r.alert).toContain(r.labels.severity);
      expect(r.annotations.summary, r.alert).toMatch(/\S/);
      expect(r.annotations.description, r.alert).toMatch(/\S/);
    }
    const threshold = (alert: string, severity: string) => {
      const found = rules.filter((r) => r.alert === alert && r.labels.severity === severity);
      expect(found, `${alert} ${severity}`).toHaveLength(1);
      return /(>=?|==)\s*([\d.]+)$/.exec(found[0]!.expr)?.slice(1);
    };
    expect(threshold('JobsApiQueueWaitingJobs', 'warning')).toEqual(['>=', '1000']);
    expect(threshold('JobsApiQueueWaitingJobs', 'critical')).toEqual(['>', '5000']);
    expect(threshold('JobsApiQueueSaturated', 'warning')).toEqual(['>=', '80']);
    expect(threshold('JobsApiQueueSaturated', 'critical')).toEqual(['>', '95']);
    expect(threshold('JobsApiQueueFailureRate', 'warning')).toEqual(['>=', '0.05']);
    expect(threshold('JobsApiQueueFailureRate', 'critical')).toEqual(['>', '0.10']);
    expect(threshold('JobsApiQueueWaitTime', 'warning')).toEqual(['>=', '30']);
    expect(threshold('JobsApiQueueWaitTime', 'critical')).toEqual(['>', '120']);
    expect(threshold('JobsApiQueueNoWorker', 'critical')).toEqual(['==', '0']);
    expect(threshold('JobsApiDown', 'critical')).toEqual(['==', '0']);
  });

  it('the example Prometheus configuration loads these rules and scrapes /metrics with a bearer token, as the job the rules name', () => {
    expect(prometheus.rule_files).toEqual(['jobs-api-alerts.yml']);
    for (const f of prometheus.rule_files) expect(existsSync(join(dirname(PROMETHEUS), f)), f).toBe(true);
    expect(prometheus.scrape_configs).toHaveLength(1);
    const job = prometheus.scrape_configs[0]!;
    expect(job).toMatchObject({ job_name: 'jobs-api', metrics_path: '/metrics', authorization: { type: 'Bearer', credentials_file: expect.any(String) } });
    for (const r of rules) if (metricsOf(r.expr).includes('up')) expect(r.expr, r.alert).toContain(`up{job="${job.job_name}"}`);
  });

  it('counts the jobs each tenant has running, and lists no tenant with none', async () => {
    const OPS = auth({ sub: 'alice', tenant: 'ops', scope: 'jobs:read jobs:write' });
    const scrape = async () => (await app.inject({ url: '/metrics', headers: auth({ sub: 'prometheus', scope: 'metrics:read' }) })).body.split('\n').filter((l) => l.startsWith('queue_tenant_active_jobs{'));
    const res = await app.inject({ method: 'POST', url: '/api/servers/slow/update', headers: OPS, payload: {} });
    expect(res.statusCode, res.body).toBe(202);
    const jobId = res.json().data.jobId as string;
    await waitForJob(app, jobId, ['active']);
    // Active in BullMQ a moment before its worker takes the tenant's slot: poll briefly.
    let lines = await scrape();
    for (let i = 0; i < 40 && lines.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 50));
      lines = await scrape();
    }
    expect(lines).toEqual(['queue_tenant_active_jobs{queue="update",tenant="ops"} 1']);
    expect((await app.inject({ method: 'POST', url: `/api/jobs/${jobId}/cancel`, headers: OPS })).json().data.outcome).toBe('cancelled');
    expect(await scrape()).toEqual([]);
  });

  it('every metric the dashboard and the alerts query is one GET /metrics exports', () => {
    const used = new Map<string, string[]>();
    const use = (where: string, names: string[]) => {
      expect(names.length, `${where} selects no metric`).toBeGreaterThan(0);
      for (const n of names) used.set(n, [...(used.get(n) ?? []), where]);
    };
    for (const p of panels) for (const t of p.targets ?? []) use(`panel "${p.title}": ${t.expr}`, metricsOf(t.expr));
    for (const v of variables) if (v.type === 'query') use(`variable ${v.name}`, metricsOfVariable(typeof v.query === 'string' ? v.query : v.query.query));
    for (const r of rules) use(`alert ${r.alert}: ${r.expr}`, metricsOf(r.expr));

    const missing = unexported([...used.keys()], types).filter((n) => !PROMETHEUS_OWN.includes(n));
    expect(Object.fromEntries(missing.map((n) => [n, used.get(n)]))).toEqual({});
    // What they use, so that a metric renamed in src/observability/prometheus.ts shows up here by name.
    expect([...used.keys()].sort()).toEqual([
      'queue_active_jobs',
      'queue_average_wait_seconds',
      'queue_completed_total',
      'queue_delayed_jobs',
      'queue_failed_total',
      'queue_failure_ratio',
      'queue_health_status',
      'queue_max_concurrency',
      'queue_tenant_active_jobs',
      'queue_wait_time_seconds_bucket',
      'queue_waiting_jobs',
      'up',
    ]);
  });
});
