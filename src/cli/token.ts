import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { resolveJwtKey, signToken } from '../http/auth.js';
import { ConfigError, loadConfig } from '../config.js';
import { SCOPES, TENANT_PATTERN } from '../tenant.js';

const HELP = `Print a bearer token signed with the configured key.

  npm run token -- --sub NAME [--tenant T] [--scope "jobs:read jobs:write"] [--ttl 1h]

  --sub NAME         who the token is for (required)
  --tenant T         the tenant whose jobs and servers it sees (default: default)
  --scope "..."      space-separated: ${SCOPES.join(', ')} (default: "jobs:read jobs:write")
  --ttl DURATION     lifetime: 90s, 15m, 1h, 7d (default: 1h)
  --private-key FILE PEM private key, when the server verifies with JWT_PUBLIC_KEY

It uses the same configuration as the server: JWT_SECRET, or the secret the
server generated in DATA_DIR, and JWT_ISSUER / JWT_AUDIENCE when set.`;

export function parseTtl(text: string): number {
  const m = /^(\d+)\s*(s|m|h|d)?$/.exec(text.trim());
  if (!m) throw new ConfigError(`--ttl must look like 90s, 15m, 1h or 7d, got "${text}"`);
  const unit = { s: 1, m: 60, h: 3600, d: 86400 }[(m[2] ?? 's') as 's' | 'm' | 'h' | 'd'];
  const seconds = Number(m[1]) * unit;
  if (seconds < 1) throw new ConfigError('--ttl must be at least 1 second');
  return seconds;
}

function main(): void {
  const { values } = parseArgs({
    options: {
      sub: { type: 'string' },
      tenant: { type: 'string', default: 'default' },
      scope: { type: 'string', default: 'jobs:read jobs:write' },
      ttl: { type: 'string', default: '1h' },
      'private-key': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(HELP + '\n');
    return;
  }
  if (!values.sub) throw new ConfigError('--sub is required (who the token is for); see --help');
  if (!TENANT_PATTERN.test(values.tenant)) throw new ConfigError('--tenant must be 1-64 letters, digits, ".", "_" or "-"');
  const scopes = values.scope.split(/\s+/).filter(Boolean);
  const unknown = scopes.filter((s) => !(SCOPES as readonly string[]).includes(s));
  if (unknown.length) throw new ConfigError(`unknown scope ${unknown.join(', ')}; known: ${SCOPES.join(', ')}`);

  const config = loadConfig();
  let signing: { algorithm: 'HS256' | 'RS256' | 'ES256'; key: string };
  if (config.jwt.publicKey) {
    const verify = resolveJwtKey(config);
    if (!values['private-key']) throw new ConfigError(`the server verifies ${verify.algorithm} tokens with JWT_PUBLIC_KEY: pass --private-key FILE`);
    signing = { algorithm: verify.algorithm, key: readFileSync(values['private-key'], 'utf8') };
  } else {
    signing = resolveJwtKey(config, { create: false });
  }
  const token = signToken(
    { sub: values.sub, tenant: values.tenant, scope: scopes.join(' '), iss: config.jwt.issuer, aud: config.jwt.audience },
    signing,
    parseTtl(values.ttl),
  );
  process.stdout.write(token + '\n');
}

try {
  main();
} catch (err) {
  process.stderr.write(`token: ${(err as Error).message}\n`);
  process.exit(2);
}
