import t from 'tap';
import { MINUTE } from '../../src/config.js';
import { drainInbox } from '../../src/drain/drain-inbox.js';
import { insertInboxEvents } from '../../src/inbox/insert-events.js';
import { listUnknownReturns, RETURN_NOT_FOUND, RETURN_NOT_FOUND_RECHECK_MS } from '../../src/poll/returns.js';
import { pollSetup } from './poll-setup.js';

// The returns stream: the provider lists no returns, so returns are fetched by id for the pending charges on them.

const drain = (sql: Parameters<typeof drainInbox>[0]) => drainInbox(sql, { chunkSize: 500, budgetMs: 60_000 });

t.test('returns no webhook announced are fetched by id for their pending charges, which then attribute', async (t) => {
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
  t.equal(first.calls, charged.length, 'one GET /return/{id} per unknown return, not per charge');
  const byId = new Map(world.truth().returns.map((r) => [r.id, r]));
  t.same(
    [...(await inboxIds('c1', 'poll.return'))].sort(),
    charged.map((id) => `poll:return:${id}:${byId.get(id)?.last_update_at}`).sort(),
    'each stored as poll.return with its deterministic id',
  );
  await drain(sql);

  const stored = await sql<{ id: string; status: string; client_id: string; original_shipment_id: string }[]>`
    select id, status, client_id, original_shipment_id from returns order by id`;
  t.same(
    stored.map((r) => [Number(r.id), r.status, r.client_id, Number(r.original_shipment_id)]),
    charged.sort((a, b) => a - b).map((id) => [id, byId.get(id)?.status, 'client-1', byId.get(id)?.original_shipment_id]),
    'applied like a return.* webhook',
  );
  const after = await sql`
    select attribution_status as status, client_id, count(*)::int as n from transactions
     where reference_type = 'Return' group by 1, 2`;
  t.same(after, [{ status: 'attributed', client_id: 'client-1', n: pending.n }], 'the charges on them are attributed');
  const [cursor] = await sql`select last_success_at is not null as ok, catches::int from poll_cursors where stream = 'returns'`;
  t.same(cursor, { ok: true, catches: charged.length }, 'a successful run, each return a poll catch');

  const again = await poll(1, 'returns');
  t.same([again.calls, again.inserted], [0, 0], 'nothing left to ask: no call');
});

t.test('a return the provider does not know is asked for once, then left alone for a while; a run is bounded', async (t) => {
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
      invoiced_status: 'NotInvoiced',
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

  const bounded = await poll(1, 'returns', { settings: { returnCallsPerRun: 3 } });
  t.equal(bounded.calls, 3, 'a run fetches at most returnCallsPerRun returns');
  t.equal(sim.stats.byStatus['404'], 3, 'the provider answered 404 for each');
  const reasons = await sql`
    select reference_id, attribution_status, attribution_reason from transactions order by transaction_id`;
  t.same(
    reasons.map((r) => [r.reference_id, r.attribution_status, r.attribution_reason]),
    [
      ['900001', 'pending', RETURN_NOT_FOUND],
      ['900001', 'pending', RETURN_NOT_FOUND],
      ['900002', 'pending', RETURN_NOT_FOUND],
      ['900003', 'pending', RETURN_NOT_FOUND],
      ['900004', 'pending', 'return_not_yet_known'],
    ],
    'a 404 is recorded on the charges (still pending: a late webhook can still attribute them)',
  );

  const rest = await poll(1, 'returns');
  t.equal(rest.calls, 1, 'the next run asks only for the one not asked yet');
  const idle = await poll(1, 'returns');
  t.equal(idle.calls, 0, 'returns answered 404 are not asked again at once: no budget burnt every run');

  await sql`update transactions set updated_at = now() - ${RETURN_NOT_FOUND_RECHECK_MS + MINUTE}::float8 * interval '1 millisecond'
             where reference_id = '900002'`;
  const later = await poll(1, 'returns');
  t.equal(later.calls, 1, 'after RETURN_NOT_FOUND_RECHECK_MS it is asked again');
});

t.test('the unknown returns are found through the partial index on pending charges', async (t) => {
  const { sql } = await pollSetup(t, { worldOptions: { seed: 33, clients: 1, ordersPerClient: 0 } });
  const scans = async () => {
    await sql`select pg_stat_force_next_flush()`;
    const [r] = await sql`
      select idx_scan::int as n from pg_stat_user_indexes where indexrelname = 'transactions_pending_return_idx'`;
    return r.n as number;
  };
  const before = await scans();
  // The table is empty, so the planner would rightly scan it: forbid that to see which index the query can use.
  await sql.begin(async (tx) => {
    await tx`set local enable_seqscan = off`;
    await listUnknownReturns(tx, { sourceId: 'c1', afterId: '', limit: 10 });
  });
  t.equal((await scans()) - before, 1, 'listUnknownReturns read transactions_pending_return_idx');
});
