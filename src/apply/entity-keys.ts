import { entityKey } from './collapse.js';
import { KEY_SEPARATOR } from '../inbox/mark.js';
import type { Entities, Normalised } from './normalise.js';

/**
 * The keys an inbox row is found by in `ops explain` (inbox_events.entity_keys, written by the mark that ends it):
 * the entities the normaliser read in it, or, for a body it could not read (dead), the id-like tokens of its text.
 * One rule for the drain that writes them and the explanation that looks them up.
 */

/** At most this many tokens of an unreadable body, each at most TOKEN_CHARS long (ids are short). */
const MAX_TOKENS = 64;
const TOKEN_CHARS = 100;

/** Every entity of `e` as its collapse key (`order:1`, `shipment:2`, `return:3`, `transaction:x`), once each. */
export function entityKeysOf(e: Entities): string[] {
  const keys = new Set<string>();
  for (const o of e.orders) keys.add(entityKey('order', o.id));
  for (const s of e.shipments) keys.add(entityKey('shipment', s.id));
  for (const d of e.deliveries) keys.add(entityKey('shipment', d.shipmentId));
  for (const t of e.timeline) keys.add(entityKey('shipment', t.shipmentId));
  for (const r of e.returns) keys.add(entityKey('return', r.id));
  for (const t of e.transactions) keys.add(entityKey('transaction', t.transactionId));
  return [...keys];
}

/** The key a token of an unreadable body is stored as. */
export const tokenKey = (token: string): string => `token:${token}`;

/** Whole tokens ([0-9A-Za-z_-] runs) of `body` that hold a digit, as token keys: ids an unreadable body names. */
export function bodyTokenKeys(body: string): string[] {
  const keys = new Set<string>();
  for (const m of body.matchAll(/[0-9A-Za-z_-]+/g)) {
    const t = m[0];
    if (t.length <= TOKEN_CHARS && /\d/.test(t)) keys.add(tokenKey(t));
    if (keys.size >= MAX_TOKENS) break;
  }
  return [...keys];
}

/** What the mark stores for a normalised row: its entities, an unreadable body's tokens, nothing for an ignored one. */
export function inboxKeysOf(body: string, n: Normalised): string[] | null {
  const keys = n.outcome === 'apply' ? entityKeysOf(n.entities) : n.outcome === 'dead' ? bodyTokenKeys(body) : [];
  // A key PostgreSQL text cannot hold (NUL: a hostile id escaped as \u0000) is dropped, never sent: the mark that
  // carries the keys is also the one that dead-letters the event PostgreSQL refused.
  const kept = keys.filter((k) => !k.includes(KEY_SEPARATOR) && !k.includes('\u0000'));
  return kept.length > 0 ? kept : null;
}
