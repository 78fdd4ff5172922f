import { randomBytes, createPublicKey } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import fastifyJwt from '@fastify/jwt';
import { createSigner } from 'fast-jwt';
import type { FastifyInstance, FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import fp from 'fastify-plugin';
import type { Config } from '../config.js';
import { ConfigError } from '../config.js';
import { ForbiddenError, UnauthorizedError } from '../errors.js';
import { DEFAULT_TENANT, TENANT_PATTERN, type Principal, type Scope } from '../tenant.js';

export type Algorithm = 'HS256' | 'RS256' | 'ES256';

/** The verification key and its one pinned algorithm. */
export type JwtKey = {
  algorithm: Algorithm;
  /** HS256 secret, or the PEM public key. */
  key: string;
  /** True when the secret was generated into DATA_DIR on this start. */
  generated: boolean;
  /** Where a generated or kept secret lives. */
  secretFile?: string;
};

export const MIN_SECRET_BYTES = 32;
const SECRET_FILE = 'jwt-secret';

function readPem(value: string): string {
  if (value.includes('-----BEGIN')) return value.replace(/\\n/g, '\n');
  try {
    return readFileSync(value, 'utf8');
  } catch (err) {
    throw new ConfigError(`JWT_PUBLIC_KEY is neither a PEM key nor a readable file: ${(err as Error).message}`);
  }
}

/**
 * Decide how tokens are verified: JWT_PUBLIC_KEY (RS256 or ES256, from the
 * key's type), else JWT_SECRET (HS256, at least 32 bytes), else a secret
 * generated once into DATA_DIR and kept across restarts.
 */
export function resolveJwtKey(config: Config, opts: { create?: boolean } = {}): JwtKey {
  const { publicKey, secret } = config.jwt;
  if (publicKey) {
    const pem = readPem(publicKey);
    let type: string | undefined;
    let curve: string | undefined;
    try {
      const k = createPublicKey(pem);
      type = k.asymmetricKeyType;
      curve = k.asymmetricKeyDetails?.namedCurve;
    } catch (err) {
      throw new ConfigError(`JWT_PUBLIC_KEY is not a valid public key: ${(err as Error).message}`);
    }
    if (type === 'rsa') return { algorithm: 'RS256', key: pem, generated: false };
    if (type === 'ec' && curve === 'prime256v1') return { algorithm: 'ES256', key: pem, generated: false };
    throw new ConfigError(`JWT_PUBLIC_KEY must be an RSA key (RS256) or a P-256 EC key (ES256), got ${type} ${curve ?? ''}`.trim());
  }
  if (secret) {
    if (Buffer.byteLength(secret, 'utf8') < MIN_SECRET_BYTES) {
      throw new ConfigError(
        `JWT_SECRET is ${Buffer.byteLength(secret, 'utf8')} bytes; it must be at least ${MIN_SECRET_BYTES} bytes. ` +
          'Generate one with: openssl rand -base64 48',
      );
    }
    return { algorithm: 'HS256', key: secret, generated: false };
  }
  const file = path.join(config.dataDir, SECRET_FILE);
  if (existsSync(file)) {
    const kept = readFileSync(file, 'utf8').trim();
    if (Buffer.byteLength(kept) < MIN_SECRET_BYTES) throw new ConfigError(`${file} holds a secret shorter than ${MIN_SECRET_BYTES} bytes`);
    return { algorithm: 'HS256', key: kept, generated: false, secretFile: file };
  }
  if (opts.create === false) {
    throw new ConfigError(`no JWT_SECRET is set and ${file} does not exist yet: start the server once, or set JWT_SECRET`);
  }
  mkdirSync(config.dataDir, { recursive: true });
  const fresh = randomBytes(48).toString('base64url');
  writeFileSync(file, fresh + '\n', { mode: 0o600, flag: 'wx' });
  chmodSync(file, 0o600);
  return { algorithm: 'HS256', key: fresh, generated: true, secretFile: file };
}

export type TokenClaims = { sub: string; tenant?: string; scope?: string; iss?: string; aud?: string };

/** Sign a token (HS256 secret or a PEM private key) that expires after `ttlSeconds`. */
export function signToken(
  claims: TokenClaims,
  signing: { algorithm: Algorithm; key: string },
  ttlSeconds: number,
): string {
  const signer = createSigner({ key: signing.key, algorithm: signing.algorithm, expiresIn: ttlSeconds * 1000 });
  return signer({ ...claims });
}

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal;
  }
  interface FastifyInstance {
    /** onRequest hook: a valid token that grants one of `scopes` (admin grants all). */
    requireScope(...scopes: Scope[]): onRequestAsyncHookHandler;
  }
}

const JWT_ERROR_CODES: Record<string, [string, string]> = {
  FST_JWT_NO_AUTHORIZATION_IN_HEADER: ['TOKEN_MISSING', 'Send an Authorization: Bearer <token> header.'],
  FST_JWT_BAD_REQUEST: ['TOKEN_MALFORMED', 'The Authorization header must be "Bearer <token>".'],
  FST_JWT_AUTHORIZATION_TOKEN_EXPIRED: ['TOKEN_EXPIRED', 'The token has expired (its "exp" is past, beyond the clock tolerance JWT_CLOCK_TOLERANCE_SEC); get a new one.'],
  FAST_JWT_INACTIVE: ['TOKEN_NOT_YET_VALID', 'The token is not valid yet (its "nbf" is in the future, beyond JWT_CLOCK_TOLERANCE_SEC): check the clocks of the issuer and of this server.'],
};

function claimScopes(scope: unknown): Set<string> {
  if (typeof scope === 'string') return new Set(scope.split(/\s+/).filter(Boolean));
  if (Array.isArray(scope)) return new Set(scope.filter((s): s is string => typeof s === 'string'));
  return new Set();
}

/** How many verified tokens are remembered; a poller re-sends the same token many times a second. */
const VERIFIED_CACHE_SIZE = 10_000;

type Verified = { principal: Principal; expiresAt: number };

/**
 * Verified tokens by their text, until they expire: a script polling a job
 * sends the same token with every request, and verifying it again each time
 * (decode, HMAC or signature, claims) is most of the cost of a status read.
 * Only tokens that passed every check are kept; the oldest go first.
 */
class VerifiedTokens {
  private readonly entries = new Map<string, Verified>();

  get(token: string, now: number): Principal | undefined {
    const hit = this.entries.get(token);
    if (!hit) return undefined;
    if (now < hit.expiresAt) return hit.principal;
    this.entries.delete(token);
    return undefined;
  }

  set(token: string, principal: Principal, expiresAt: number): void {
    if (this.entries.size >= VERIFIED_CACHE_SIZE) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(token, { principal, expiresAt });
  }
}

function principalOf(payload: Record<string, unknown>): Principal {
  if (typeof payload.sub !== 'string' || payload.sub === '') throw new UnauthorizedError('The token must carry a "sub" claim.', 'TOKEN_INVALID');
  const tenant = payload.tenant === undefined ? DEFAULT_TENANT : payload.tenant;
  if (typeof tenant !== 'string' || !TENANT_PATTERN.test(tenant)) {
    throw new UnauthorizedError('The token\'s "tenant" claim must be 1-64 letters, digits, ".", "_" or "-".', 'TOKEN_INVALID');
  }
  const scopes = claimScopes(payload.scope);
  return { sub: payload.sub, tenant, scopes, isAdmin: scopes.has('admin') };
}

async function authenticate(request: FastifyRequest, verified: VerifiedTokens, toleranceMs: number): Promise<Principal> {
  const header = request.headers.authorization;
  if (header !== undefined && !/^Bearer [^\s]+$/i.test(header.trim())) {
    throw new UnauthorizedError(JWT_ERROR_CODES.FST_JWT_BAD_REQUEST![1], 'TOKEN_MALFORMED');
  }
  const token = header?.trim().slice('Bearer '.length);
  const now = Date.now();
  const known = token ? verified.get(token, now) : undefined;
  if (known) return known;
  let payload: Record<string, unknown>;
  try {
    payload = await request.jwtVerify<Record<string, unknown>>();
  } catch (err) {
    const code = (err as { code?: string }).code ?? '';
    const [appCode, message] = JWT_ERROR_CODES[code] ?? ['TOKEN_INVALID', 'The token is not valid: unsigned, wrongly signed, malformed, or not meant for this API.'];
    throw new UnauthorizedError(message, appCode);
  }
  const principal = principalOf(payload);
  if (token && typeof payload.exp === 'number') verified.set(token, principal, payload.exp * 1000 + toleranceMs);
  return principal;
}

export const authPlugin = fp(
  async (app: FastifyInstance, opts: { config: Config; key: JwtKey }) => {
    const { key, config } = opts;
    const verify = {
      algorithms: [key.algorithm],
      // fast-jwt checks iss/aud only when present: require them once configured.
      requiredClaims: ['exp', 'sub', ...(config.jwt.issuer ? ['iss'] : []), ...(config.jwt.audience ? ['aud'] : [])],
      allowedIss: config.jwt.issuer,
      allowedAud: config.jwt.audience,
      // Issuers' clocks differ from ours by a few seconds: allow that much on exp and nbf (fast-jwt counts ms).
      clockTolerance: config.jwt.clockToleranceSec * 1000,
    };
    await app.register(fastifyJwt, {
      secret: key.algorithm === 'HS256' ? key.key : { public: key.key, private: 'unused' },
      verify,
    });
    app.decorateRequest('principal', null as unknown as Principal);
    const verified = new VerifiedTokens();
    app.decorate('requireScope', (...scopes: Scope[]): onRequestAsyncHookHandler => {
      return async (request) => {
        const principal = await authenticate(request, verified, config.jwt.clockToleranceSec * 1000);
        request.principal = principal;
        if (principal.isAdmin || scopes.some((s) => principal.scopes.has(s))) return;
        throw new ForbiddenError(`This needs a token with scope ${scopes.map((s) => `"${s}"`).join(' or ')}.`);
      };
    });
  },
  { name: 'auth' },
);
