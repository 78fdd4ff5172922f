import { createSigner } from 'fast-jwt';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveJwtKey } from '../../src/http/auth.js';
import { ConfigError } from '../../src/config.js';
import { auth, makeApp, TEST_SECRET, testConfig, token } from '../helpers.js';

function b64(obj: unknown): string {
  return Buffer.from(JSON.stringify(obj)).toString('base64url');
}

const now = () => Math.floor(Date.now() / 1000);

describe('authentication', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await makeApp();
  });
  afterAll(() => app.close());

  const get = (authorization?: string) =>
    app.inject({ method: 'GET', url: '/api/jobs', headers: authorization ? { authorization } : {} });

  it('accepts a valid token', async () => {
    const res = await get(`Bearer ${token()}`);
    expect(res.statusCode).toBe(200);
  });

  const rejected: Array<[string, () => string | undefined, string]> = [
    ['no Authorization header', () => undefined, 'TOKEN_MISSING'],
    ['a header that is not Bearer', () => 'Basic dXNlcjpwYXNz', 'TOKEN_MALFORMED'],
    ['garbage', () => 'Bearer not.a.jwt', 'TOKEN_INVALID'],
    ['an unsigned token (alg none)', () => `Bearer ${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: 'x', tenant: 'acme', scope: 'admin', exp: now() + 600 })}.`, 'TOKEN_INVALID'],
    ['a token signed with another key', () => `Bearer ${createSigner({ key: 'another-secret-another-secret-another-secret' , expiresIn: 60_000 })({ sub: 'x' })}`, 'TOKEN_INVALID'],
    ['an expired token', () => `Bearer ${createSigner({ key: TEST_SECRET })({ sub: 'x', exp: now() - 60, iat: now() - 120 })}`, 'TOKEN_EXPIRED'],
    ['a token without exp', () => `Bearer ${createSigner({ key: TEST_SECRET })({ sub: 'x', scope: 'admin' })}`, 'TOKEN_INVALID'],
    ['a token without sub', () => `Bearer ${createSigner({ key: TEST_SECRET, expiresIn: 60_000 })({ scope: 'admin' })}`, 'TOKEN_INVALID'],
    ['an HS512 token with the right secret (algorithm is pinned)', () => `Bearer ${createSigner({ key: TEST_SECRET, algorithm: 'HS512', expiresIn: 60_000 })({ sub: 'x' })}`, 'TOKEN_INVALID'],
    ['a tenant claim that is not a tenant name', () => `Bearer ${createSigner({ key: TEST_SECRET, expiresIn: 60_000 })({ sub: 'x', tenant: '../../etc' })}`, 'TOKEN_INVALID'],
  ];

  for (const [what, header, code] of rejected) {
    it(`answers 401 ${code} to ${what}`, async () => {
      const res = await get(header());
      expect(res.statusCode).toBe(401);
      const body = res.json();
      expect(body).toMatchObject({ success: false, error: { code } });
      expect(body.requestId).toBe(res.headers['x-request-id']);
      expect(res.headers['www-authenticate']).toBe('Bearer');
    });
  }

  it('answers 403 to a valid token without the scope the route needs', async () => {
    const readOnly = await app.inject({ method: 'POST', url: '/api/jobs', headers: auth({ scope: 'jobs:read' }), payload: { type: 'scan:quick', data: { serverId: 'x' } } });
    expect(readOnly.statusCode).toBe(403);
    expect(readOnly.json().error.code).toBe('FORBIDDEN');
    const noScope = await app.inject({ method: 'GET', url: '/api/jobs', headers: auth({ scope: '' }) });
    expect(noScope.statusCode).toBe(403);
    const metricsOnly = await app.inject({ method: 'GET', url: '/api/metrics/system', headers: auth({ scope: 'metrics:read' }) });
    expect(metricsOnly.statusCode).toBe(403);
  });

  it('accepts a token a little past exp or before nbf (clock tolerance, 30 s by default) and says which when it is well past', async () => {
    const sign = (claims: Record<string, number>) => `Bearer ${createSigner({ key: TEST_SECRET })({ sub: 'x', scope: 'jobs:read', ...claims })}`;
    expect((await get(sign({ exp: now() - 10 }))).statusCode).toBe(200);
    expect((await get(sign({ exp: now() + 600, nbf: now() + 10 }))).statusCode).toBe(200);
    const early = await get(sign({ exp: now() + 600, nbf: now() + 120 }));
    expect(early.statusCode).toBe(401);
    expect(early.json().error).toMatchObject({ code: 'TOKEN_NOT_YET_VALID', message: expect.stringContaining('not valid yet') });
    const late = await get(sign({ exp: now() - 60 }));
    expect(late.json().error).toMatchObject({ code: 'TOKEN_EXPIRED', message: expect.stringContaining('expired') });
  });

  it('stops accepting a token the moment it expires (exp plus the tolerance), though it was accepted (and remembered) before', async () => {
    // Past exp already, within the 30 s tolerance for 2 s more.
    const exp = now() - 28;
    const t = `Bearer ${createSigner({ key: TEST_SECRET })({ sub: 'poller', tenant: 'acme', scope: 'jobs:read', exp })}`;
    for (let i = 0; i < 3; i += 1) expect((await get(t)).statusCode).toBe(200);
    await new Promise((r) => setTimeout(r, (exp + 30) * 1000 - Date.now() + 50));
    const res = await get(t);
    expect(res.statusCode).toBe(401);
    expect(res.json().error.code).toBe('TOKEN_EXPIRED');
  });

  it('keeps each remembered token\'s own scopes', async () => {
    const reader = `Bearer ${token({ scope: 'jobs:read' })}`;
    expect((await get(reader)).statusCode).toBe(200);
    const post = await app.inject({ method: 'POST', url: '/api/jobs', headers: { authorization: reader }, payload: { type: 'scan:quick', data: { serverId: 'x' } } });
    expect(post.statusCode).toBe(403);
  });

  it('lets admin through every scope check', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/metrics/system', headers: auth({ scope: 'admin' }) });
    expect(res.statusCode).toBe(200);
    expect(res.json().data.redis.maxmemoryPolicy).toBe('noeviction');
  });

  it('leaves /health, /ready and /docs open', async () => {
    expect((await app.inject({ url: '/health' })).statusCode).toBe(200);
    expect((await app.inject({ url: '/ready' })).statusCode).toBe(200);
    const docs = await app.inject({ url: '/docs/json' });
    expect(docs.statusCode).toBe(200);
    expect(docs.json().openapi).toBe('3.1.0');
  });
});

describe('issuer and audience', () => {
  let app: FastifyInstance;
  beforeAll(async () => {
    app = await makeApp({ env: { JWT_ISSUER: 'https://id.example', JWT_AUDIENCE: 'jobs-api' } });
  });
  afterAll(() => app.close());

  const sign = (claims: Record<string, unknown>) => createSigner({ key: TEST_SECRET, expiresIn: 60_000 })({ sub: 'x', scope: 'jobs:read', ...claims });

  it('accepts exactly the configured issuer and audience, and refuses others', async () => {
    const ok = await app.inject({ url: '/api/jobs', headers: { authorization: `Bearer ${sign({ iss: 'https://id.example', aud: 'jobs-api' })}` } });
    expect(ok.statusCode).toBe(200);
    for (const claims of [{ iss: 'https://evil.example', aud: 'jobs-api' }, { iss: 'https://id.example', aud: 'other' }, {}]) {
      const res = await app.inject({ url: '/api/jobs', headers: { authorization: `Bearer ${sign(claims)}` } });
      expect(res.statusCode).toBe(401);
    }
  });
});

describe('the signing key', () => {
  it('refuses an HS256 secret shorter than 32 bytes', () => {
    expect(() => resolveJwtKey(testConfig({ JWT_SECRET: 'short-secret' }))).toThrow(ConfigError);
    expect(() => resolveJwtKey(testConfig({ JWT_SECRET: 'short-secret' }))).toThrow(/at least 32 bytes/);
  });

  it('generates a secret into DATA_DIR once and keeps it across restarts', () => {
    const config = testConfig({ JWT_SECRET: '' });
    const first = resolveJwtKey(config);
    expect(first.generated).toBe(true);
    expect(first.key.length).toBeGreaterThanOrEqual(32);
    const second = resolveJwtKey(config);
    expect(second.generated).toBe(false);
    expect(second.key).toBe(first.key);
  });
});

describe('JWT_PUBLIC_KEY', () => {
  it('verifies ES256 tokens with the public key and refuses HS256 tokens made with it (no algorithm confusion)', async () => {
    const { generateKeyPairSync } = await import('node:crypto');
    const { signToken } = await import('../../src/http/auth.js');
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pub = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    const priv = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const app = await makeApp({ env: { JWT_PUBLIC_KEY: pub, JWT_SECRET: '' } });
    try {
      const good = signToken({ sub: 'k', scope: 'jobs:read' }, { algorithm: 'ES256', key: priv }, 60);
      expect((await app.inject({ url: '/api/jobs', headers: { authorization: `Bearer ${good}` } })).statusCode).toBe(200);
      const confused = createSigner({ key: pub, algorithm: 'HS256', expiresIn: 60_000 })({ sub: 'k', scope: 'admin' });
      expect((await app.inject({ url: '/api/jobs', headers: { authorization: `Bearer ${confused}` } })).statusCode).toBe(401);
      expect((await app.inject({ url: '/api/jobs', headers: { authorization: `Bearer ${token({ scope: 'admin' })}` } })).statusCode).toBe(401);
    } finally {
      await app.close();
    }
  });

  it('refuses a key that is not RSA or P-256', async () => {
    const { generateKeyPairSync } = await import('node:crypto');
    const { publicKey } = generateKeyPairSync('ed25519');
    expect(() => resolveJwtKey(testConfig({ JWT_PUBLIC_KEY: publicKey.export({ type: 'spki', format: 'pem' }).toString() }))).toThrow(/RSA key \(RS256\) or a P-256/);
  });
});
