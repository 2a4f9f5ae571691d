import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { KeyRing } from '../key-ring.js';

/**
 * Secrets at rest: AES-256-GCM (node:crypto), a random 96-bit nonce per value, the 128-bit tag checked on the way
 * out. A stored value reads `v1:<key id>:<base64url(nonce | tag | ciphertext)>`, so a ring of several keys decrypts
 * any of them and `ops keys rotate` finds those under an older key. The associated data binds a value to what it is
 * and to whom it belongs (`webhook-secret:<source id>`): a ciphertext copied onto another source does not decrypt.
 *
 * A value the schema migration marked as not yet encrypted reads `plain:<value>` (a SQL migration has no key: the
 * process that holds one encrypts them right after migrating, src/intake/secrets-at-rest.ts).
 */

export const CIPHER_PREFIX = 'v1:';
export const PLAINTEXT_PREFIX = 'plain:';
const NONCE = 12;
const TAG = 16;

/** What a value is, for its associated data. */
export type SecretPurpose = 'webhook-secret' | 'api-token';

/** A stored value that cannot be read: names the key id, never the value. */
export class SecretUnreadableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SecretUnreadableError';
  }
}

const aad = (purpose: SecretPurpose, owner: string) => Buffer.from(`wharf:${purpose}:${owner}`, 'utf8');

/** Encrypts `plaintext` under the ring's current key. */
export function sealSecret(ring: KeyRing, plaintext: string, purpose: SecretPurpose, owner: string): string {
  const nonce = randomBytes(NONCE);
  const cipher = createCipheriv('aes-256-gcm', ring.current.key, nonce);
  cipher.setAAD(aad(purpose, owner));
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return `${CIPHER_PREFIX}${ring.current.id}:${Buffer.concat([nonce, cipher.getAuthTag(), body]).toString('base64url')}`;
}

/** The key id a stored value is encrypted under; null for a value not encrypted (`plain:` or anything else). */
export function keyIdOf(stored: string): string | null {
  if (!stored.startsWith(CIPHER_PREFIX)) return null;
  const end = stored.indexOf(':', CIPHER_PREFIX.length);
  return end > CIPHER_PREFIX.length ? stored.slice(CIPHER_PREFIX.length, end) : null;
}

/** Decrypts a stored value. Throws SecretUnreadableError for a plaintext value, an unknown key or a failed tag. */
export function openSecret(ring: KeyRing, stored: string, purpose: SecretPurpose, owner: string): string {
  const id = keyIdOf(stored);
  if (id === null) {
    throw new SecretUnreadableError(
      stored.startsWith(PLAINTEXT_PREFIX)
        ? `a ${purpose} of ${owner} is not encrypted yet (wharf encrypts them when it starts)`
        : `a ${purpose} of ${owner} is in no known format`,
    );
  }
  const key = ring.byId.get(id);
  if (!key) throw new SecretUnreadableError(`a ${purpose} of ${owner} is encrypted under key ${id}, which WHARF_ENCRYPTION_KEY does not hold`);
  const raw = Buffer.from(stored.slice(CIPHER_PREFIX.length + id.length + 1), 'base64url');
  if (raw.length < NONCE + TAG) throw new SecretUnreadableError(`a ${purpose} of ${owner} is truncated`);
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, NONCE));
    decipher.setAAD(aad(purpose, owner));
    decipher.setAuthTag(raw.subarray(NONCE, NONCE + TAG));
    return Buffer.concat([decipher.update(raw.subarray(NONCE + TAG)), decipher.final()]).toString('utf8');
  } catch {
    throw new SecretUnreadableError(`a ${purpose} of ${owner} does not decrypt under key ${id} (altered, or copied from another source)`);
  }
}

// The two kinds of value wharf keeps, each bound to its source.
export const sealWebhookSecret = (keys: KeyRing, sourceId: string, secret: string) => sealSecret(keys, secret, 'webhook-secret', sourceId);
export const openWebhookSecret = (keys: KeyRing, sourceId: string, stored: string) => openSecret(keys, stored, 'webhook-secret', sourceId);
export const sealApiToken = (keys: KeyRing, sourceId: string, token: string) => sealSecret(keys, token, 'api-token', sourceId);
export const openApiToken = (keys: KeyRing, sourceId: string, stored: string) => openSecret(keys, stored, 'api-token', sourceId);
