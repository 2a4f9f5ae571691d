import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { Test } from 'tap';
import { buildApp } from '../../src/app.js';
import type { Sql } from '../../src/db/client.js';
import { createDb } from '../../src/db/client.js';
import { signatureHeader } from '../../src/intake/signature.js';
import { insertSource } from '../../src/intake/sources.js';
import { createTestDatabase } from '../db.js';
import { testConfig } from '../helper.js';

/** Factories for intake tests: a source with a secret, signed deliveries with overrides, an app on a fresh database. */

export const newSecret = () => `whsec_${randomBytes(24).toString('base64')}`;
export const newMessageId = () => `msg_${randomBytes(14).toString('hex')}`;

export async function addSource(sql: Sql, overrides: { id?: string; secret?: string } = {}) {
  const secret = overrides.secret ?? newSecret();
  const id = await insertSource(sql, { id: overrides.id, name: `acme-${randomBytes(4).toString('hex')}`, secret });
  return { id, secret };
}

export interface Delivery {
  id: string;
  timestamp: number | string;
  body: string;
  headers: Record<string, string>;
}

/** A correctly signed delivery of a shipment event; every part can be overridden. */
export function delivery(
  secrets: string | string[],
  o: { id?: string; timestamp?: number; body?: string; topic?: string; payload?: object } = {},
): Delivery {
  const id = o.id ?? newMessageId();
  const timestamp = o.timestamp ?? Math.floor(Date.now() / 1000);
  const body =
    o.body ??
    JSON.stringify(
      o.payload ?? {
        event_time: '2026-01-20T10:11:12.3456789Z',
        shipment_id: Math.floor(Math.random() * 1e9),
        status: 'Completed',
      },
    );
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'webhook-id': id,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': signatureHeader([secrets].flat(), id, timestamp, body),
    'x-webhook-topic': o.topic ?? 'order.shipped',
  };
  return { id, timestamp, body, headers };
}

/** An app (not listening) on a fresh database, with one source. */
export async function intakeApp(t: Test, env: Record<string, string> = {}) {
  const database = await createTestDatabase(t.name);
  const config = testConfig(database.url, env);
  const handle = createDb({ url: database.url, max: config.dbPoolMax });
  // The app's clock: real time plus whatever the test advances it by (no sleeping for the cache's TTLs).
  let offsetMs = 0;
  const clock = { now: () => new Date(Date.now() + offsetMs), advance: (ms: number) => void (offsetMs += ms) };
  const app: FastifyInstance = await buildApp({ config, db: handle, now: clock.now });
  // One teardown, in order: the app (flushes its writers) before its pool, the pool before the database.
  t.teardown(async () => {
    await app.close();
    await handle.close(1);
    await database.drop();
  });
  const sql = handle.sql;
  const source = await addSource(sql);
  const post = (d: Delivery, sourceId = source.id) =>
    app.inject({ method: 'POST', url: `/webhooks/shipbob/${sourceId}`, headers: d.headers, payload: d.body });
  return { app, config, url: database.url, sql, source, post, clock };
}
