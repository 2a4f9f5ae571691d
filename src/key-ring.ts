import { randomBytes } from 'node:crypto';

/**
 * The encryption keys wharf holds: `WHARF_ENCRYPTION_KEY` (or, outside production, the key file beside the embedded
 * data). Written `<id>:<base64 of 32 bytes>`, several separated by commas or new lines; the first is the current key
 * (every new value is encrypted under it), the others only decrypt values not yet rotated (`ops keys rotate`).
 * Pure: no environment, no files.
 */

export const KEY_BYTES = 32;
const KEY_ID = /^[A-Za-z0-9_-]{1,32}$/;

export interface KeyRing {
  /** The key new values are encrypted under. */
  current: { id: string; key: Buffer };
  /** Every key by id, the current one included. */
  byId: ReadonlyMap<string, Buffer>;
}

/**
 * Parses a key list. Throws an Error naming what is wrong and never the key material (its message can reach a log).
 */
export function parseKeyRing(text: string): KeyRing {
  const entries = text
    .split(/[\s,]+/)
    .map((e) => e.trim())
    .filter((e) => e !== '' && !e.startsWith('#'));
  if (entries.length === 0) throw new Error('no key (expected <id>:<base64 of 32 bytes>)');
  const byId = new Map<string, Buffer>();
  entries.forEach((entry, i) => {
    const colon = entry.indexOf(':');
    const id = colon > 0 ? entry.slice(0, colon) : '';
    if (!KEY_ID.test(id)) throw new Error(`key ${i + 1}: expected <id>:<base64 of 32 bytes>, the id of [A-Za-z0-9_-]{1,32}`);
    const material = entry.slice(colon + 1);
    const key = /^[A-Za-z0-9+/_-]+={0,2}$/.test(material) ? Buffer.from(material, 'base64') : Buffer.alloc(0);
    if (key.length !== KEY_BYTES) throw new Error(`key ${id}: not the base64 of ${KEY_BYTES} bytes`);
    if (byId.has(id)) throw new Error(`key ${id}: listed twice`);
    byId.set(id, key);
  });
  const [firstId] = byId.keys();
  return { current: { id: firstId, key: byId.get(firstId)! }, byId };
}

/** A new random key line, `<id>:<base64>` (the id from the date unless given). */
export function generateKeyLine(id = `k${new Date().toISOString().slice(0, 10).replaceAll('-', '')}${randomBytes(2).toString('hex')}`): string {
  if (!KEY_ID.test(id)) throw new Error('a key id is [A-Za-z0-9_-]{1,32}');
  return `${id}:${randomBytes(KEY_BYTES).toString('base64')}`;
}
