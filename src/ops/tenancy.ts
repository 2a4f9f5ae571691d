import { INVENTORY_ITEM_UNKNOWN, inventoryKey, lockAttributionKeys } from '../apply/attribution.js';
import type { Queryable, Sql } from '../db/client.js';
import type { ProviderClient } from '../provider/client.js';

/**
 * What billing attribution needs besides the events, kept from the ops CLI (docs/tenancy.md):
 * - channel_clients: an order's channel → the client (merchant) its shipments belong to, for a source that carries
 *   several merchants; read by the orders and shipments upsert when a row is written (rows already stored keep their
 *   client: a known client is never replaced);
 * - inventory_items: an inventory item → its client, for FC (storage) charges; filled by hand or loaded from the
 *   provider's `GET /inventory`. Owned, like every entity, by the source that stored the item first.
 */

export interface ChannelClientRow {
  sourceId: string;
  channelId: number;
  clientId: string;
}

export async function listChannelClients(sql: Sql, sourceId?: string): Promise<ChannelClientRow[]> {
  return sql<ChannelClientRow[]>`
    select source_id as "sourceId", channel_id::float8 as "channelId", client_id as "clientId" from channel_clients
     where ${sourceId ?? null}::text is null or source_id = ${sourceId ?? null}::text
     order by source_id, channel_id`;
}

/** Maps a channel of a source to a client (replacing its mapping). False when the source does not exist. */
export async function setChannelClient(sql: Sql, p: ChannelClientRow): Promise<boolean> {
  const rows = await sql`
    insert into channel_clients (source_id, channel_id, client_id)
    select id, ${p.channelId}::bigint, ${p.clientId} from sources where id = ${p.sourceId}
    on conflict (source_id, channel_id) do update set client_id = excluded.client_id
    returning 1`;
  return rows.length === 1;
}

/** Removes a channel's mapping. False when there was none. */
export async function removeChannelClient(sql: Sql, p: { sourceId: string; channelId: number }): Promise<boolean> {
  const rows = await sql`delete from channel_clients where source_id = ${p.sourceId} and channel_id = ${p.channelId}::bigint returning 1`;
  return rows.length === 1;
}

export interface InventoryItemRow {
  id: number;
  sourceId: string;
  clientId: string | null;
  name: string | null;
  sku: string | null;
}

export async function listInventoryItems(sql: Sql, sourceId?: string): Promise<InventoryItemRow[]> {
  return sql<InventoryItemRow[]>`
    select id::float8 as id, source_id as "sourceId", client_id as "clientId", name, sku from inventory_items
     where ${sourceId ?? null}::text is null or source_id = ${sourceId ?? null}::text
     order by source_id, id`;
}

export interface InventoryWrite {
  /** Items inserted or changed. */
  written: number;
  /** Items already stored as they are. */
  unchanged: number;
  /** Items another source owns: left alone. */
  refused: number[];
}

/**
 * Stores a source's inventory items with their client, in one statement: new items are inserted, the source's own
 * items updated, items another source owns refused (reported by id). `apply: false` only counts.
 */
export async function upsertInventoryItems(
  sql: Queryable,
  p: { sourceId: string; items: readonly { id: number; clientId: string | null; name: string | null; sku: string | null }[]; apply: boolean },
): Promise<InventoryWrite> {
  const byId = new Map(p.items.map((i) => [i.id, i])); // one row per id: the statement touches each once
  const items = [...byId.values()].sort((a, b) => a.id - b.id);
  const c = <T>(f: (i: (typeof items)[number]) => T) => items.map(f);
  const [row] = await sql<{ written: number; unchanged: number; refused: string[] }[]>`
    with x as (
      select x.*, i.source_id as owner,
             i.id is not null and i.client_id is not distinct from x.client_id and i.name is not distinct from x.name
               and i.sku is not distinct from x.sku as same
        from unnest(${c((i) => i.id)}::bigint[], ${c((i) => i.clientId)}::text[], ${c((i) => i.name)}::text[],
                    ${c((i) => i.sku)}::text[]) as x(id, client_id, name, sku)
        left join inventory_items i on i.id = x.id
    ), up as (
      insert into inventory_items as i (id, source_id, client_id, name, sku)
      select x.id, ${p.sourceId}, x.client_id, x.name, x.sku from x
       where ${p.apply} and (x.owner is null or (x.owner = ${p.sourceId} and not x.same))
       order by x.id
      on conflict (id) do update set client_id = excluded.client_id, name = excluded.name, sku = excluded.sku, updated_at = now()
       where i.source_id = excluded.source_id
      returning 1
    )
    select count(*) filter (where x.owner is null or (x.owner = ${p.sourceId} and not x.same))::int as written,
           count(*) filter (where x.owner = ${p.sourceId} and x.same)::int as unchanged,
           coalesce(array_agg(x.id::text order by x.id) filter (where x.owner <> ${p.sourceId}), '{}') as refused
      from x`;
  return { written: row.written, unchanged: row.unchanged, refused: row.refused.map(Number) };
}

/** Removes an item of a source. False when the source has no such item. */
export async function removeInventoryItem(sql: Sql, p: { sourceId: string; id: number }): Promise<boolean> {
  const rows = await sql`delete from inventory_items where source_id = ${p.sourceId} and id = ${p.id}::bigint returning 1`;
  return rows.length === 1;
}

/**
 * Stores a source's items (as upsertInventoryItems) and, with `apply`, attributes its storage charges left without
 * their item, in one transaction that takes the source's inventory key in between: a drain chunk writing a charge of
 * an item it could not see yet takes the same key and re-checks it, so whichever commits second attributes it
 * (src/apply/attribution.ts). Returns what was stored and how many charges it attributed.
 */
export async function storeInventoryItems(
  sql: Sql,
  p: Parameters<typeof upsertInventoryItems>[1],
): Promise<InventoryWrite & { attributed: number }> {
  return sql.begin(async (tx) => {
    const w = await upsertInventoryItems(tx, p);
    if (!p.apply) return { ...w, attributed: 0 };
    await lockAttributionKeys(tx, [inventoryKey(p.sourceId)]);
    return { ...w, attributed: await attributeStorageCharges(tx, p.sourceId) };
  });
}

/**
 * Attributes a source's storage (FC) charges left `unattributable` for want of their inventory item, now that items
 * are known: the item's client, the same source's items only. Rows a drain chunk holds are skipped: that chunk holds
 * the source's inventory key too and re-checks them (storeInventoryItems). One statement; returns how many it
 * attributed.
 */
async function attributeStorageCharges(sql: Queryable, sourceId: string): Promise<number> {
  const rows = await sql`
    update transactions t
       set client_id = l.client_id, attribution_status = 'attributed', attribution_reason = null, updated_at = now()
      from (select c.transaction_id, inv.client_id
              from transactions c
              join inventory_items inv
                on inv.id = case when split_part(c.reference_id, '-', 2) ~ '^[0-9]{1,18}$'
                                 then split_part(c.reference_id, '-', 2)::bigint end
               and inv.source_id = c.source_id and inv.client_id is not null
             where c.source_id = ${sourceId} and c.attribution_status = 'unattributable'
               and c.attribution_reason = ${INVENTORY_ITEM_UNKNOWN}
             order by c.transaction_id
               for update of c skip locked) l
     where t.transaction_id = l.transaction_id
    returning 1`;
  return rows.length;
}

/**
 * Reads every inventory item of the source's account from the provider (`GET /inventory`, following `next`), with
 * `onPage` after each page. Items whose id is not a positive integer are skipped (counted).
 */
export async function fetchInventory(
  client: ProviderClient,
  opts: { onPage?: (p: { pages: number; items: number }) => void; signal?: AbortSignal } = {},
): Promise<{ items: { id: number; name: string | null; sku: string | null }[]; skipped: number; pages: number }> {
  const items: { id: number; name: string | null; sku: string | null }[] = [];
  let skipped = 0;
  let pages = 0;
  let next: string | null = null;
  do {
    const page = await client.listInventory(next === null ? { pageSize: 250 } : { next }, opts.signal);
    pages++;
    for (const i of page.items) {
      const id = Number(i?.inventory_id);
      if (!Number.isSafeInteger(id) || id <= 0) {
        skipped++;
        continue;
      }
      items.push({ id, name: typeof i.name === 'string' ? i.name : null, sku: typeof i.sku === 'string' ? i.sku : null });
    }
    opts.onPage?.({ pages, items: items.length });
    next = page.next;
  } while (next !== null && pages < 10_000);
  return { items, skipped, pages };
}
