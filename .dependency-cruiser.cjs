/**
 * The import direction of ARCHITECTURE.md, checked on every `npm test`
 * (pretest): transport (routers/) → domain/ → entities/; jobs/ → domain/;
 * only server/ composes; no circles, type-only imports included.
 */
const TYPE_ONLY = ['type-only'];
module.exports = {
  forbidden: [
    { name: 'no-circular', severity: 'error', comment: 'A circle means two files are one feature or the arrow points the wrong way.', from: {}, to: { circular: true } },
    {
      name: 'entities-are-the-floor',
      severity: 'error',
      comment: 'entities/ (tables) import nothing of ours but entities/.',
      from: { path: '^entities/' },
      to: { path: '^(domain|routers|jobs|server|client)/' },
    },
    {
      name: 'domain-knows-no-transport',
      severity: 'error',
      comment: 'domain/ is used by the API and the workers alike: it imports neither, nor the composition root. Configuration types (server/env.ts) are the one exception.',
      from: { path: '^domain/' },
      to: { path: '^(routers|jobs|server|client)/', pathNot: '^server/env\\.ts$' },
    },
    {
      name: 'domain-reads-config-types-only',
      severity: 'error',
      from: { path: '^domain/' },
      to: { path: '^server/env\\.ts$', dependencyTypesNot: TYPE_ONLY },
    },
    {
      name: 'jobs-are-not-transport',
      severity: 'error',
      comment: 'jobs/ (queue contracts and thin processors) use the domain, never the HTTP side or the composition root.',
      from: { path: '^jobs/' },
      to: { path: '^(routers|server|client)/', pathNot: '^server/env\\.ts$' },
    },
    {
      name: 'jobs-read-config-types-only',
      severity: 'error',
      from: { path: '^jobs/' },
      to: { path: '^server/env\\.ts$', dependencyTypesNot: TYPE_ONLY },
    },
    {
      name: 'transport-hands-work-to-the-domain',
      severity: 'error',
      comment: 'routers/ reach the queues through the domain (its JobProducer port), not jobs/.',
      from: { path: '^routers/' },
      to: { path: '^jobs/' },
    },
    {
      name: 'only-server-composes',
      severity: 'error',
      comment: 'Only server/ (and the tests, benches and scripts that start a stack) build the container and the workers; others may name their types.',
      from: { pathNot: '^(server|test|bench|scripts)/' },
      to: { path: '^server/(container|workers|main)\\.ts$', dependencyTypesNot: TYPE_ONLY },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|coverage|test-artifacts)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.mjs', '.js', '.json'] },
  },
};
