import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Standard Webhooks (https://www.standardwebhooks.com) signing and verification, HMAC-SHA256.
 *
 * Hand-written rather than the `standardwebhooks` package because the provider needs what that package does not do:
 * signatures without base64 padding, several local secrets at once (rotation), and a byte-wise constant-time compare.
 */

export const SIGNATURE_BYTES = 32;

/** The HMAC key of a `whsec_…` secret: the base64-decoded part after the prefix (a bare base64 string also works). */
export function secretKey(secret: string): Buffer {
  const b64 = secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : secret;
  return Buffer.from(b64, 'base64');
}

/** Standard Webhooks: a secret's key is 24 to 64 bytes once decoded. Shorter keys are guessable (an empty one signs for anyone). */
export const SECRET_MIN_BYTES = 24;
export const SECRET_MAX_BYTES = 64;
/** What `sources add` generates: 32 bytes, the middle of the range. */
const GENERATED_SECRET_BYTES = 32;

const SECRET_FORMAT = /^whsec_[A-Za-z0-9+/]+={0,2}$/;

/** A key the intake may verify with (keys stored before the rule existed are skipped, never used). */
export const isUsableKey = (key: Buffer): boolean => key.length >= SECRET_MIN_BYTES && key.length <= SECRET_MAX_BYTES;

/**
 * Why a `whsec_…` secret cannot be used, or null when it can. The message names the rule, never the secret.
 */
export function secretProblem(secret: string): string | null {
  if (!SECRET_FORMAT.test(secret)) return 'a secret must look like whsec_<base64>';
  const n = secretKey(secret).length;
  if (n < SECRET_MIN_BYTES || n > SECRET_MAX_BYTES)
    return `a secret must decode to ${SECRET_MIN_BYTES}..${SECRET_MAX_BYTES} bytes (this one has ${n})`;
  return null;
}

/** A new random secret, `whsec_` + base64 of 32 bytes. */
export function generateSecret(): string {
  return `whsec_${randomBytes(GENERATED_SECRET_BYTES).toString('base64')}`;
}

/** base64(HMAC_SHA256(key, "${id}.${timestamp}.${rawBody}")), with padding, as the provider sends it. */
export function sign(secret: string | Buffer, id: string, timestamp: number | string, body: Buffer | string): string {
  const key = typeof secret === 'string' ? secretKey(secret) : secret;
  return createHmac('sha256', key).update(`${id}.${timestamp}.`).update(body).digest('base64');
}

/** The `webhook-signature` header for one or more secrets: `v1,<sig> v1,<sig>`. */
export function signatureHeader(secrets: string[], id: string, timestamp: number, body: Buffer | string): string {
  return secrets.map((s) => `v1,${sign(s, id, timestamp, body)}`).join(' ');
}

export const VerifyFailure = {
  missingHeaders: 'missing_headers',
  badTimestamp: 'bad_timestamp',
  staleTimestamp: 'stale_timestamp',
  futureTimestamp: 'future_timestamp',
  badSignature: 'bad_signature',
} as const;
export type VerifyFailure = (typeof VerifyFailure)[keyof typeof VerifyFailure];

export interface VerifyInput {
  id: string | undefined;
  timestamp: string | undefined;
  signature: string | undefined;
  body: Buffer;
  /** HMAC keys (already decoded) of every secret valid now. */
  keys: Buffer[];
  nowMs: number;
  toleranceMs: number;
}

const INTEGER = /^[0-9]{1,12}$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** Returns null when some `v1` signature matches some key, else why not. Never throws on hostile input. */
export function verify(input: VerifyInput): VerifyFailure | null {
  const { id, timestamp, signature, body, keys } = input;
  if (!id || !timestamp || !signature) return VerifyFailure.missingHeaders;
  if (!INTEGER.test(timestamp)) return VerifyFailure.badTimestamp;
  const tsMs = Number(timestamp) * 1000;
  if (tsMs < input.nowMs - input.toleranceMs) return VerifyFailure.staleTimestamp;
  if (tsMs > input.nowMs + input.toleranceMs) return VerifyFailure.futureTimestamp;

  const candidates: Buffer[] = [];
  for (const entry of signature.split(' ')) {
    const comma = entry.indexOf(',');
    if (comma < 0 || entry.slice(0, comma) !== 'v1') continue;
    const b64 = entry.slice(comma + 1);
    if (!BASE64.test(b64)) continue;
    // Buffer.from tolerates missing padding; the length check rejects truncated or padded-out garbage.
    const bytes = Buffer.from(b64, 'base64');
    if (bytes.length === SIGNATURE_BYTES) candidates.push(bytes);
  }
  if (candidates.length === 0) return VerifyFailure.badSignature;

  for (const key of keys) {
    const expected = createHmac('sha256', key).update(`${id}.${timestamp}.`).update(body).digest();
    for (const c of candidates) if (timingSafeEqual(expected, c)) return null;
  }
  return VerifyFailure.badSignature;
}
