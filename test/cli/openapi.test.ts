import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { generateOpenApi, OPENAPI_FILE } from '../../src/cli/openapi.js';

describe('openapi/openapi.json', () => {
  it('matches what the routes generate (run `npm run openapi:generate` after changing a route)', async () => {
    const committed = readFileSync(OPENAPI_FILE, 'utf8');
    const generated = await generateOpenApi();
    expect(generated === committed, 'openapi/openapi.json is out of date').toBe(true);
    const doc = JSON.parse(generated);
    expect(doc.openapi).toBe('3.1.0');
    for (const p of ['/api/jobs', '/api/jobs/{id}', '/api/jobs/{id}/retry', '/api/jobs/stats/all', '/api/metrics/queues', '/api/metrics/system', '/api/servers', '/api/servers/{id}', '/api/servers/{id}/backup', '/api/servers/{id}/scan', '/api/servers/{id}/update', '/health', '/ready']) {
      expect(doc.paths[p], p).toBeDefined();
    }
  });
});
