import type { Sql } from '../../src/db/client.js';
import type { ChangeEvent } from '../harness/simulator/index.js';

/** Inbox rows for drain tests, inserted in the given order (ids follow it), like the intake stores them. */
export interface InboxEventInput {
  sourceId?: string;
  eventId?: string;
  topic: string | null;
  body: unknown;
  via?: 'webhook' | 'poll' | 'replay';
  eventTime?: string | null;
}

let counter = 0;

export async function insertInbox(sql: Sql, events: readonly InboxEventInput[]): Promise<number[]> {
  if (events.length === 0) return [];
  const rows = events.map((e) => ({
    source: e.sourceId ?? 'src-1',
    eventId: e.eventId ?? `msg_${process.pid}_${++counter}`,
    topic: e.topic,
    body: typeof e.body === 'string' ? e.body : JSON.stringify(e.body),
    via: e.via ?? 'webhook',
    eventTime: e.eventTime ?? null,
  }));
  const ids = await sql<{ id: string }[]>`
    insert into inbox_events (source_id, event_id, topic, body, via, event_time)
    select source_id, event_id, topic, body, via, event_time::timestamptz
      from unnest(${rows.map((r) => r.source)}::text[], ${rows.map((r) => r.eventId)}::text[],
                  ${rows.map((r) => r.topic)}::text[], ${rows.map((r) => r.body)}::text[],
                  ${rows.map((r) => r.via)}::text[], ${rows.map((r) => r.eventTime)}::text[])
           with ordinality as x(source_id, event_id, topic, body, via, event_time, n)
     order by n
    returning id`;
  return ids.map((r) => Number(r.id));
}

/** Sources `src-<n>` for clients `client-<n>`, as the intake engineer's sources would hold them. */
export async function insertSources(sql: Sql, n: number): Promise<void> {
  for (let i = 1; i <= n; i++) {
    await sql`insert into sources (id, name, client_id) values (${`src-${i}`}, ${`Source ${i}`}, ${`client-${i}`})
              on conflict do nothing`;
  }
}

/** A simulator change event as the intake would store it for source `src-<clientId>`. */
export const fromChange = (e: ChangeEvent): InboxEventInput => ({
  sourceId: `src-${e.clientId}`,
  topic: e.topic,
  body: e.payload,
  eventTime: e.payload.event_time,
});

const iso7 = (ms: number) => `${new Date(ms).toISOString().slice(0, -1)}0000Z`;
const T0 = Date.parse('2026-02-01T00:00:00Z');

/** A shipment webhook body at `t` seconds after T0. */
export function shipmentBody(id: number, t: number, overrides: Record<string, unknown> = {}) {
  return {
    id,
    order_id: id + 1_000_000,
    reference_id: `ref-${id}`,
    status: 'Processing',
    created_date: iso7(T0),
    last_update_at: iso7(T0 + t * 1000),
    tracking: null,
    event_time: iso7(T0 + t * 1000),
    ...overrides,
  };
}

/** A billing webhook body referencing a shipment. */
export function chargeBody(transactionId: string, shipmentId: number, t: number, overrides: Record<string, unknown> = {}) {
  return {
    transaction_id: transactionId,
    amount: 4.25,
    currency_code: 'USD',
    charge_date: iso7(T0),
    invoice_id: null,
    invoiced_status: false,
    reference_id: String(shipmentId),
    reference_type: 'Shipment',
    transaction_fee: 'Shipping',
    transaction_type: 'Charge',
    taxes: [],
    additional_details: {},
    last_update_at: iso7(T0 + t * 1000),
    event_time: iso7(T0 + t * 1000),
    ...overrides,
  };
}

export const at = (t: number) => iso7(T0 + t * 1000);
