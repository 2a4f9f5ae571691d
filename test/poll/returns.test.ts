import t from 'tap';
import { MINUTE } from '../../src/config.js';
import { drainInbox } from '../../src/drain/drain-inbox.js';
import { insertInboxEvents } from '../../src/inbox/insert-events.js';
import { listUnknownReturns, RETURN_NOT_FOUND, RETURN_NOT_FOUND_RECHECK_MS, returnEvent } from '../../src/poll/returns.js';
import { pollSetup } from './poll-setup.js';

// The returns stream: GET /return lists open returns and those created or completed since the last run; returns that
// pending charges name and the list did not bring are asked for by id, in batches.

const drain = (sql: Parameters<typeof drainInbox>[0]) => drainInbox(sql, { chunkSize: 500, budgetMs: 60_000 });

t.test('returns no webhook announced are listed, applied with their status, and the charges on them attribute', async (t) => {
  // The history announces nothing: only polling finds it, and only the charges name its returns.
  const { world, sql, poll, inboxIds } = await pollSetup(t, { worldOptions: { seed: 31, clients: 2, ordersPerClient: 400 } });
  await sql`update sources set client_id = 'client-1' where id = 'c1'`;
  world.advance(MINUTE);
  await poll(1, 'transactions');
  await drain(sql);
  const charged = [
    ...new Set(
      world
        .truth()
        .transactions.filter((x) => x.source_client_id === 1 && x.reference_type === 'Return')
        .map((x) => Number(x.reference_id)),
    ),
  ];
  t.ok(charged.length >= 2, `the history has charges on ${charged.length} returns`);
  const [pending] = await sql`
    select count(*)::int as n from transactions where reference_type = 'Return' and attribution_status = 'pending'`;
  t.ok(pending.n >= charged.length, 'before: every charge on a return is pending (its return is unknown)');

  const first = await poll(1, 'returns');
  t.equal(first.calls, 4, 'four list queries (open, created since, completed since, cancelled), one page each');
  const byId = new Map(world.truth().returns.map((r) => [r.id, r]));
  const mine = world.truth().returns.filter((r) => r.client_id === 1);
  t.same(
    [...(await inboxIds('c1', 'poll.return'))].sort(),
    mine.map((r) => returnEvent('c1', r).eventId).sort(),
    'every return of the account stored as poll.return with its deterministic id (status and latest time)',
  );
  await drain(sql);

  const stored = await sql<{ id: string; status: string; client_id: string; original_shipment_id: string }[]>`
    select id, status, client_id, original_shipment_id from returns where id = any(${charged}::bigint[]) order by id`;
  t.same(
    stored.map((r) => [Number(r.id), r.status, r.client_id, Number(r.original_shipment_id)]),
    charged.sort((a, b) => a - b).map((id) => [id, byId.get(id)?.status, 'client-1', byId.get(id)?.original_shipment_id]),
    'applied like a return.* webhook',
  );
  const [{ n }] = await sql`select count(*)::int as n from returns`;
  t.equal(n, mine.length, 'returns no charge names are found too');
  const after = await sql`
    select attribution_status as status, client_id, count(*)::int as n from transactions
     where reference_type = 'Return' group by 1, 2`;
  t.same(after, [{ status: 'attributed', client_id: 'client-1', n: pending.n }], 'the charges on them are attributed');
  const [cursor] = await sql`select last_success_at is not null as ok, catches::int from poll_cursors where stream = 'returns'`;
  t.same(cursor, { ok: true, catches: mine.length }, 'a successful run, each return a poll catch');

  const again = await poll(1, 'returns');
  t.same([again.calls, again.inserted], [4, 0], 'the next run re-reads the open ones: nothing new, no one asked by id');
});

t.test('a return whose last webhook was lost is moved on by the next run; an older state never wins', async (t) => {
  const { world, sql, poll } = await pollSetup(t, { worldOptions: { seed: 34, clients: 1, ordersPerClient: 300 } });
  world.advance(MINUTE);
  await poll(1, 'returns');
  await drain(sql);
  // Webhooks lost: the world moves returns on without anyone being told.
  for (let i = 0; i < 20; i++) world.step({ newOrders: 0, updates: 40, billing: 0, durationMs: 60_000 });
  world.advance(MINUTE);
  await poll(1, 'returns');
  await drain(sql);
  const truth = new Map(world.truth().returns.map((r) => [r.id, r.status]));
  const stored = await sql`select id::int, status from returns`;
  t.ok(stored.length > 0);
  t.same(stored.filter((r) => truth.get(r.id) !== r.status).map((r) => r.id), [], 'every return at the status the provider holds');
  // Replaying an old poll of one of them changes nothing.
  const [old] = await sql`select id, body from inbox_events where topic = 'poll.return' order by id limit 1`;
  const moved = JSON.parse(old.body);
  if (truth.get(moved.id) !== moved.status) {
    await sql`update inbox_events set status = 'pending' where id = ${old.id}`;
    await drain(sql);
    const [r] = await sql`select status from returns where id = ${moved.id}`;
    t.equal(r.status, truth.get(moved.id), 'the replayed older status did not win');
  }
});

t.test('a return the provider does not know is asked for once (in one batch), then left alone for a while', async (t) => {
  const { sql, poll, sim } = await pollSetup(t, { worldOptions: { seed: 32, clients: 1, ordersPerClient: 0 } });
  const charges = ['900001', '900001', '900002', '900003', '900004'].map((returnId, i) => ({
    sourceId: 'c1',
    eventId: `msg_${i}`,
    topic: 'billing.charge.created',
    body: JSON.stringify({
      transaction_id: `tx-${i}`,
      amount: 3,
      currency_code: 'USD',
      charge_date: '2026-01-15T00:00:00Z',
      invoiced_status: false,
      reference_id: returnId,
      reference_type: 'Return',
      event_time: '2026-01-15T00:00:00Z',
    }),
    headers: null,
    eventTime: '2026-01-15T00:00:00Z',
    via: 'webhook' as const,
  }));
  await insertInboxEvents(sql, charges);
  await drain(sql);
  t.same(await listUnknownReturns(sql, { sourceId: 'c1', afterId: '', limit: 10 }), ['900001', '900002', '900003', '900004']);

  const byIds = () => sim.stats.byEndpoint['GET /return'] ?? 0;
  const first = await poll(1, 'returns');
  t.equal(first.calls, 5, 'the four list queries, then one GET /return?Ids=… for all four');
  const reasons = await sql`
    select reference_id, attribution_status, attribution_reason from transactions order by transaction_id`;
  t.same(
    reasons.map((r) => [r.reference_id, r.attribution_status, r.attribution_reason]),
    [
      ['900001', 'pending', RETURN_NOT_FOUND],
      ['900001', 'pending', RETURN_NOT_FOUND],
      ['900002', 'pending', RETURN_NOT_FOUND],
      ['900003', 'pending', RETURN_NOT_FOUND],
      ['900004', 'pending', RETURN_NOT_FOUND],
    ],
    'not found is recorded on the charges (still pending: a late webhook can still attribute them)',
  );
  const before = byIds();
  const idle = await poll(1, 'returns');
  t.same([idle.calls, byIds() - before], [4, 4], 'returns not found are not asked again at once: only the list');

  await sql`update transactions set updated_at = now() - ${RETURN_NOT_FOUND_RECHECK_MS + MINUTE}::float8 * interval '1 millisecond'
             where reference_id = '900002'`;
  const later = await poll(1, 'returns');
  t.equal(later.calls, 5, 'after RETURN_NOT_FOUND_RECHECK_MS it is asked again');
});

t.test('the unknown returns are found through the partial index on pending charges', async (t) => {
  const { sql } = await pollSetup(t, { worldOptions: { seed: 33, clients: 1, ordersPerClient: 0 } });
  const scans = async () => {
    await sql`select pg_stat_force_next_flush()`;
    const [r] = await sql`
      select idx_scan::int as n from pg_stat_user_indexes where indexrelname = 'transactions_pending_ref_idx'`;
    return r.n as number;
  };
  const before = await scans();
  // The table is empty, so the planner would rightly scan it: forbid that to see which index the query can use.
  await sql.begin(async (tx) => {
    await tx`set local enable_seqscan = off`;
    await listUnknownReturns(tx, { sourceId: 'c1', afterId: '', limit: 10 });
  });
  t.equal((await scans()) - before, 1, 'listUnknownReturns read transactions_pending_ref_idx');
});
