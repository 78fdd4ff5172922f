/**
 * Import boundaries between src/, routes/ and workers/ (README "Layout").
 * Run with `npm run deps:check`; every rule is an error, so CI fails on any of them.
 * @type {import('dependency-cruiser').IConfiguration}
 */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment:
        'A cycle makes module load order matter (an import can see another module half-initialised) and ties ' +
        'the modules in it together, so none can be understood or tested alone. Type-only imports count too: ' +
        'they tie the modules together all the same.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'routes-not-to-workers',
      comment:
        'routes/ is the HTTP surface and workers/ is execution: both import from src/, never from each other, ' +
        'so the API can run without workers (WORKERS=off) and a worker change cannot break a route.',
      severity: 'error',
      from: { path: '^routes/' },
      to: { path: '^workers/' },
    },
    {
      name: 'workers-not-to-routes',
      comment: 'The other half of the above: a worker never reaches into an HTTP handler; what both need lives in src/.',
      severity: 'error',
      from: { path: '^workers/' },
      to: { path: '^routes/' },
    },
    {
      name: 'only-app-reaches-workers',
      comment:
        'buildApp() in src/app.ts is the one place that decides whether this process runs workers; any other ' +
        'src/ module that imports workers/ would pull the worker side into the API, the CLI and the shared core.',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/app\\.ts$' },
      to: { path: '^workers/' },
    },
    {
      name: 'jobs-only-zod',
      comment:
        'src/jobs/ is the contract between routes, workers and clients (and the source of the OpenAPI ' +
        'document): plain zod schemas and constants, so it can be read, tested and shared without Redis, ' +
        'BullMQ, Fastify or Node built-ins coming along. It may import zod and its own files, nothing else.',
      severity: 'error',
      from: { path: '^src/jobs/' },
      to: { pathNot: ['^src/jobs/', '(^|/)node_modules/zod/'] },
    },
    {
      name: 'routes-only-through-services',
      comment:
        'A route validates, authorises and calls a service (src/services, or a decorator set up in ' +
        'src/plugins); it does not talk to Redis, BullMQ, the job store or the coordination protocols ' +
        'directly, so the rules about keys, locks and tenants live in one place. An allowlist: routes may ' +
        'import other routes, src/services, src/http, src/jobs, the src/ root (config, errors, inventory, ' +
        'tenant, version), and Fastify and zod.',
      severity: 'error',
      from: { path: '^routes/' },
      to: {
        pathNot: [
          '^routes/',
          '^src/(services|http|jobs)/',
          '^src/[^/]+\\.ts$',
          '(^|/)node_modules/(fastify|fastify-type-provider-zod|zod)/',
        ],
      },
    },
    {
      name: 'src-not-to-tests',
      comment:
        'Shipped code must not depend on test/ or bench/: neither is in the Docker image (the build copies ' +
        'only src, routes and workers), and test helpers start real Redis servers.',
      severity: 'error',
      from: { path: '^(src|routes|workers)/' },
      to: { path: '^(test|bench)/' },
    },
    {
      name: 'not-to-dev-dep',
      comment:
        'The production image runs `npm prune --omit=dev`: a devDependency imported by src/, routes/ or ' +
        'workers/ works in a checkout and fails in the container. Type-only imports are erased, so they may.',
      severity: 'error',
      from: { path: '^(src|routes|workers)/' },
      to: { dependencyTypes: ['npm-dev'], dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'not-to-unresolvable',
      comment:
        'An import that cannot be resolved is a typo or a missing package; it is also what every import would ' +
        'become if the `.js` -> `.ts` resolution broke, and then every other rule here would pass silently.',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
    {
      name: 'no-orphans',
      comment:
        'A module nothing imports and that imports nothing of ours is dead code, or an entry point that ' +
        'should be listed here.',
      severity: 'error',
      from: {
        orphan: true,
        pathNot: [
          '\\.d\\.ts$',
          '^src/main\\.ts$', // `npm start`, the Docker CMD
          '^workers/main\\.ts$', // `npm run worker`, the worker-only process
          '^src/cli/', // entry points: bin/jobsctl.js, npm run token, npm run openapi:*
        ],
      },
      to: {},
    },
  ],
  options: {
    // Our modules only: the rules above are about src/, routes/ and workers/; packages are leaves.
    doNotFollow: { path: ['node_modules'] },
    // Type-only imports are dependencies too (the boundaries are about design, not only about runtime).
    tsPreCompilationDeps: true,
    // Resolves the NodeNext imports (`./x.js` written for `./x.ts`) the way tsc does.
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.js', '.d.ts'],
      mainFields: ['main', 'types', 'typings'],
    },
    skipAnalysisNotInRules: true,
    reporterOptions: {
      text: { highlightFocused: true },
    },
  },
};
