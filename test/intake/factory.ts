import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { Test } from 'tap';
import { buildApp } from '../../src/app.js';
import type { Sql } from '../../src/db/client.js';
import { createDb } from '../../src/db/client.js';
import { signatureHeader } from '../../src/intake/signature.js';
import { insertSource } from '../../src/intake/sources.js';
import { createTestDatabase } from '../db.js';
import { startWeb } from '../../src/web.js';
import { testConfig, testKeys } from '../helper.js';

/** Factories for intake tests: a source with a secret, signed deliveries with overrides, an app on a fresh database. */

export const newSecret = () => `whsec_${randomBytes(24).toString('base64')}`;
export const newMessageId = () => `msg_${randomBytes(14).toString('hex')}`;

export async function addSource(sql: Sql, overrides: { id?: string; secret?: string } = {}) {
  const secret = overrides.secret ?? newSecret();
  const id = await insertSource(sql, testKeys, { id: overrides.id, name: `acme-${randomBytes(4).toString('hex')}`, secret });
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

/**
 * The web role on a real port (src/web.ts: its own pool, the server's timeouts) on a fresh database with one source,
 * and a direct pool for the test's own queries. `post` goes over real HTTP (fetch).
 */
export async function listeningIntake(t: Test, env: Record<string, string> = {}) {
  const database = await createTestDatabase(t.name);
  const config = testConfig(database.url, env);
  const direct = createDb({ url: database.url, max: 2 });
  const source = await addSource(direct.sql);
  const web = await startWeb(config, database.url);
  t.teardown(async () => {
    await web.stop(Date.now() + 2000);
    await direct.close(1);
    await database.drop();
  });
  const address = new URL(web.url);
  const post = async (d: Delivery, o: { sourceId?: string; headers?: Record<string, string> } = {}) => {
    const res = await fetch(`${web.url}/webhooks/shipbob/${o.sourceId ?? source.id}`, {
      method: 'POST',
      headers: { ...d.headers, ...o.headers },
      body: d.body,
    });
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: text, json: () => JSON.parse(text) };
  };
  return { web, config, sql: direct.sql, source, post, host: address.hostname, port: Number(address.port) };
}
