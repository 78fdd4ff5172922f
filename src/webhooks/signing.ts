import { createHmac, randomBytes } from 'node:crypto';

/** Standard Webhooks (https://www.standardwebhooks.com): a secret is `whsec_` and base64 of its bytes. */
const SECRET_PREFIX = 'whsec_';

/** A new secret: 32 random bytes. */
export function newSecret(): string {
  return SECRET_PREFIX + randomBytes(32).toString('base64');
}

/** `v1,` and base64 of the HMAC-SHA256 of `id.timestamp.body`, keyed with the secret's decoded bytes. */
export function sign(secret: string, msgId: string, timestampSec: number, body: string): string {
  const key = Buffer.from(secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret, 'base64');
  return `v1,${createHmac('sha256', key).update(`${msgId}.${timestampSec}.${body}`).digest('base64')}`;
}

/** The `webhook-signature` header: one signature per secret, space-separated (the new secret's first). */
export function signatureHeader(secrets: readonly string[], msgId: string, timestampSec: number, body: string): string {
  return secrets.map((s) => sign(s, msgId, timestampSec, body)).join(' ');
}
