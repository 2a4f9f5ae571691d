import { entityKey } from '../apply/collapse.js';
import { tokenKey } from '../apply/entity-keys.js';
import { type Entities, normaliseEvent } from '../apply/normalise.js';
import { UsageError } from '../errors.js';
import type { Sql } from '../db/client.js';
import type { InboxRow } from '../inbox/claim.js';
import { isoFromMicros } from '../time.js';
import { table } from './format.js';

/**
 * `ops explain --order ID | --shipment ID | --transaction ID`: every inbox event wharf still holds for one entity, and
 * which of them the stored row reflects (its `event_inbox_id`). What an operator needs when a merchant says "this
 * shipment is wrong": was the event received at all, by webhook or poll, was it applied, dead (why), or older than the
 * version the row holds.
 *
 * Which events concern the entity is decided by the drain's own normaliser (never a second reading of the payloads):
 * the candidates are the drained rows whose entity_keys (written by the drain's mark: src/apply/entity-keys.ts) name
 * the entity, or, for a body the drain could not read, the id as a token (both through inbox_events_entity_keys_idx),
 * and the pending rows whose body contains the id as text (through the pending index: bounded by the backlog, not by
 * the inbox); each is normalised and kept when one of its entities is this one. Events drained before migration 0009
 * carry no keys: they are not found (retention removes them).
 */

export const ExplainKinds = ['order', 'shipment', 'transaction'] as const;
export type ExplainKind = (typeof ExplainKinds)[number];

export interface ExplainedEvent {
  inboxId: number;
  sourceId: string;
  eventId: string;
  topic: string | null;
  via: string;
  receivedAt: Date;
  status: string;
  /** The version this event carries for the entity (ISO, microseconds), as the drain compares them; null if unreadable. */
  version: string | null;
  error: string | null;
  duplicateCount: number;
  processedAt: Date | null;
  /** The stored row holds this event's version. */
  reflected: boolean;
}

export interface Explanation {
  kind: ExplainKind;
  id: string;
  /** The stored row (its `data` column left out), or null when wharf holds none. */
  row: Record<string, unknown> | null;
  /** The inbox event the row reflects, and whether that event is still in the inbox (retention may have pruned it). */
  reflects: { inboxId: number; eventTime: string; held: boolean } | null;
  /** Oldest first. */
  events: ExplainedEvent[];
  /** More candidate bodies than the cap: older events may be missing from `events`. */
  truncated: boolean;
}

const TABLES: Record<ExplainKind, { table: string; key: string; cast: string }> = {
  order: { table: 'orders', key: 'id', cast: 'bigint' },
  shipment: { table: 'shipments', key: 'id', cast: 'bigint' },
  transaction: { table: 'transactions', key: 'transaction_id', cast: 'text' },
};

/** Versions (epoch µs) this event's entities carry for the entity asked about; empty when it does not concern it. */
function versionsFor(kind: ExplainKind, id: string, e: Entities): number[] {
  const n = Number(id);
  switch (kind) {
    case 'order':
      return e.orders.filter((o) => o.id === n).map((o) => o.eventUs);
    case 'shipment':
      return [
        ...e.shipments.filter((s) => s.id === n).map((s) => s.eventUs),
        ...e.deliveries.filter((d) => d.shipmentId === n).map((d) => d.deliveredUs),
        // A timeline entry carries no version of the shipment row; it still concerns the shipment.
        ...(e.timeline.some((t) => t.shipmentId === n) ? [Number.NaN] : []),
      ];
    case 'transaction':
      return e.transactions.filter((t) => t.transactionId === id).map((t) => t.eventUs);
  }
}

export function validExplainId(kind: ExplainKind, id: string): boolean {
  return kind === 'transaction' ? id.length > 0 && id.length <= 200 : /^\d{1,16}$/.test(id) && Number(id) > 0;
}

/**
 * Reads the explanation in one read-only transaction under `timeoutMs`; `cap` candidate bodies at most. An id that
 * is not one (a non-numeric order or shipment id, an empty transaction id) is a UsageError, before any query; a
 * numeric id is read as a bigint (leading zeros dropped), so the stored row is found through its primary key.
 */
export async function explainEntity(
  sql: Sql,
  p: { kind: ExplainKind; id: string; cap?: number; timeoutMs?: number },
): Promise<Explanation> {
  const cap = p.cap ?? 2000;
  const { table, key, cast } = TABLES[p.kind];
  if (!validExplainId(p.kind, p.id)) {
    throw new UsageError(`${p.kind} id ${JSON.stringify(p.id.slice(0, 40))}: ${p.kind === 'transaction' ? 'must be a transaction id' : 'must be a positive integer'}`);
  }
  const id = p.kind === 'transaction' ? p.id : BigInt(p.id).toString();
  const keys = [entityKey(p.kind, id), tokenKey(id)];
  return sql.begin('read only', async (tx) => {
    await tx`select set_config('statement_timeout', ${String(p.timeoutMs ?? 30_000)}, true)`;
    const [stored] = await tx.unsafe<{ row: Record<string, unknown> }[]>(
      `select to_jsonb(t) - 'data' as row from ${table} t where ${key} = $1::${cast}`,
      [id],
    );
    const candidates = await tx<(Omit<InboxRow, 'eventTime' | 'receivedAt'> & {
      eventTime: string | null;
      receivedAtText: string;
      receivedAt: Date;
      eventId: string;
      status: string;
      lastError: string | null;
      duplicateCount: number;
      processedAt: Date | null;
    })[]>`
      select id::float8 as id, source_id as "sourceId", event_id as "eventId", topic, body, event_time::text as "eventTime",
             received_at::text as "receivedAtText", received_at as "receivedAt", via, status, last_error as "lastError",
             duplicate_count as "duplicateCount", processed_at as "processedAt"
        from inbox_events
       where id in (
         select id from inbox_events where entity_keys && ${keys}::text[] and status <> 'pending'
         union all
         select id from inbox_events where status = 'pending' and strpos(body, ${id}) > 0)
       order by id desc
       limit ${cap + 1}::int`;
    const truncated = candidates.length > cap;
    const reflectedId = stored ? Number(stored.row.event_inbox_id) : null;
    const events: ExplainedEvent[] = [];
    const token = new RegExp(`(^|[^0-9A-Za-z_-])${id.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}([^0-9A-Za-z_-]|$)`);
    for (const c of candidates.slice(0, cap).reverse()) {
      const n = normaliseEvent({ ...c, receivedAt: c.receivedAtText } as InboxRow);
      // An event the drain cannot read (dead) has no entities: kept when its body names the id as a whole token.
      const versions =
        n.outcome === 'apply' ? versionsFor(p.kind, id, n.entities) : n.outcome === 'dead' && token.test(c.body) ? [Number.NaN] : [];
      if (versions.length === 0) continue;
      const v = versions.find((us) => Number.isFinite(us));
      events.push({
        inboxId: c.id,
        sourceId: c.sourceId,
        eventId: c.eventId,
        topic: c.topic,
        via: c.via,
        receivedAt: c.receivedAt,
        status: c.status,
        version: v === undefined ? null : isoFromMicros(v),
        error: c.lastError ?? (n.outcome === 'dead' ? n.reason : null),
        duplicateCount: c.duplicateCount,
        processedAt: c.processedAt,
        reflected: c.id === reflectedId,
      });
    }
    return {
      kind: p.kind,
      id,
      row: stored?.row ?? null,
      reflects: stored
        ? { inboxId: reflectedId!, eventTime: String(stored.row.event_time), held: events.some((e) => e.reflected) }
        : null,
      events,
      truncated,
    };
  });
}

/** The explanation for a person: the row's version, then every event oldest first, the reflected one marked. */
export function explanationText(e: Explanation): string {
  const lines: string[] = [];
  if (e.row) {
    const { event_time, event_inbox_id, ...rest } = e.row;
    lines.push(`${e.kind} ${e.id}: stored, version ${String(event_time)} from inbox event ${String(event_inbox_id)}`);
    lines.push(
      table(
        ['column', 'value'],
        Object.entries(rest).map(([k, v]) => [k, v === null ? null : typeof v === 'object' ? JSON.stringify(v) : String(v)]),
      ),
    );
    if (e.reflects && !e.reflects.held) lines.push(`(inbox event ${e.reflects.inboxId} is no longer in the inbox: pruned by retention)`);
  } else {
    lines.push(`${e.kind} ${e.id}: no stored row`);
  }
  lines.push('');
  if (e.events.length === 0) lines.push('no inbox event names it (never received, or pruned by retention)');
  else
    lines.push(
      table(
        ['', 'inbox id', 'received', 'source', 'via', 'topic', 'status', 'version', 'dups', 'error'],
        e.events.map((ev) => [
          ev.reflected ? '=>' : '',
          ev.inboxId,
          ev.receivedAt.toISOString(),
          ev.sourceId,
          ev.via,
          ev.topic,
          ev.status,
          ev.version,
          ev.duplicateCount,
          ev.error?.slice(0, 160),
        ]),
      ),
    );
  if (e.truncated) lines.push('(more events name this id than were read: the oldest are not shown)');
  lines.push("'=>' marks the event whose version the stored row holds; a newer version always wins, whatever the arrival order");
  return lines.join('\n');
}
