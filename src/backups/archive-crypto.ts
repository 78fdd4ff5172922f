import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { Transform, type Readable } from 'node:stream';

/**
 * The encrypted archive format: AES-256-GCM over the whole (tar or tar.gz)
 * archive, streamed.
 *
 *   "JOBSENC1" (8 bytes) | key id (8 bytes) | IV (12 bytes) | ciphertext | GCM tag (16 bytes)
 *
 * The key id is a hash of the key, so a restore with another key is refused
 * with "wrong key" before any byte is decrypted; the tag makes any change to
 * the file (or a key that hashes alike) fail authentication.
 */
const MAGIC = Buffer.from('JOBSENC1');
const KEY_ID_BYTES = 8;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const HEADER_BYTES = MAGIC.length + KEY_ID_BYTES + IV_BYTES;

export class ArchiveKeyError extends Error {
  override name = 'ArchiveKeyError';
}

/** A short, non-secret fingerprint of the key, stored with each encrypted archive. */
export function keyId(key: Buffer): string {
  return createHash('sha256').update('jobs-api backup key id\0').update(key).digest().subarray(0, KEY_ID_BYTES).toString('hex');
}

/** A stream that encrypts what passes through it into the format above. */
export function encryptStream(key: Buffer): Transform {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  let headerSent = false;
  const header = () => {
    headerSent = true;
    return Buffer.concat([MAGIC, Buffer.from(keyId(key), 'hex'), iv]);
  };
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      const out = cipher.update(chunk);
      done(null, headerSent ? out : Buffer.concat([header(), out]));
    },
    flush(done) {
      const tail = Buffer.concat([cipher.final(), cipher.getAuthTag()]);
      done(null, headerSent ? tail : Buffer.concat([header(), tail]));
    },
  });
}

/**
 * The plaintext of an encrypted archive file, streamed. Refuses a file that
 * is not in the format, or that was written with another key (by key id). A
 * file altered after writing (or a colliding key) makes the stream end with an
 * ArchiveKeyError once the tag is checked: callers must not trust what they
 * extracted until the stream has ended without error.
 */
export async function decryptFile(file: string, key: Buffer): Promise<Readable> {
  const { size } = await stat(file);
  if (size < HEADER_BYTES + TAG_BYTES) throw new ArchiveKeyError(`${file} is too short to be an encrypted archive`);
  const fh = await open(file, 'r');
  const header = Buffer.alloc(HEADER_BYTES);
  const tag = Buffer.alloc(TAG_BYTES);
  try {
    await fh.read(header, 0, HEADER_BYTES, 0);
    await fh.read(tag, 0, TAG_BYTES, size - TAG_BYTES);
  } finally {
    await fh.close();
  }
  if (!header.subarray(0, MAGIC.length).equals(MAGIC)) throw new ArchiveKeyError(`${file} is not an encrypted archive`);
  const fileKeyId = header.subarray(MAGIC.length, MAGIC.length + KEY_ID_BYTES).toString('hex');
  if (fileKeyId !== keyId(key)) {
    throw new ArchiveKeyError(
      `wrong key: the archive was encrypted with key id ${fileKeyId}, BACKUP_ENCRYPTION_KEY has key id ${keyId(key)}`,
    );
  }
  const decipher = createDecipheriv('aes-256-gcm', key, header.subarray(MAGIC.length + KEY_ID_BYTES));
  decipher.setAuthTag(tag);
  const body = createReadStream(file, { start: HEADER_BYTES, end: size - TAG_BYTES - 1 });
  const plain = new Transform({
    transform(chunk: Buffer, _enc, done) {
      done(null, decipher.update(chunk));
    },
    flush(done) {
      try {
        done(null, decipher.final());
      } catch {
        done(new ArchiveKeyError('the archive does not authenticate with BACKUP_ENCRYPTION_KEY: wrong key or altered file'));
      }
    },
  });
  body.on('error', (err) => plain.destroy(err));
  return body.pipe(plain);
}

/** SHA-256 of a file, read from disk. */
export async function sha256File(file: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, { signal })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
