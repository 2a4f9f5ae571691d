import t from 'tap';
import { DAY, HOUR, MINUTE } from '../../src/config.js';
import { nextTimelineCheck, TIMELINE_STOP } from '../../src/poll/timelines.js';
import { pollSetup } from './poll-setup.js';

// The timelines stream: due shipments through the partial index, a tiered schedule, a bounded number of calls.

t.test('the schedule checks recent shipments often, old ones rarely, none after 30 days', async (t) => {
  const now = new Date('2026-02-01T00:00:00Z');
  const next = (ageMs: number) => nextTimelineCheck(new Date(now.getTime() - ageMs), now).getTime() - now.getTime();
  t.equal(next(HOUR), 15 * MINUTE);
  t.equal(next(3 * DAY), HOUR);
  t.equal(next(10 * DAY), 6 * HOUR);
  t.equal(nextTimelineCheck(new Date(now.getTime() - 31 * DAY), now), TIMELINE_STOP);
});

t.test('due timelines are fetched into the inbox within the run bound, then rescheduled by tier', async (t) => {
  const { world, sql, poll, inboxIds } = await pollSetup(t, {
    worldOptions: { seed: 31, clients: 1, ordersPerClient: 200 },
  });
  // Shipments as the drain stores them: every one not delivered and not cancelled.
  const open = world.truth().shipments.filter((s) => s.delivery_date === null && s.status !== 'Cancelled');
  for (const s of open) {
    await sql`
      insert into shipments (id, order_id, source_id, status, tracking_number, created_date, actual_fulfillment_date,
                             event_time, event_inbox_id)
      values (${s.id}, ${s.order_id}, 'c1', ${s.status}, ${s.tracking?.tracking_number ?? null}, ${s.created_date},
              ${s.actual_fulfillment_date}, ${s.last_update_at}, 0)`;
  }
  const shipped = open.filter((s) => s.tracking !== null);
  t.ok(shipped.length > 6 && open.length > shipped.length, `${shipped.length} shipped of ${open.length} open`);

  const bounded = await poll(1, 'timelines', { settings: { timelineCallsPerRun: 4 } });
  t.equal(bounded.calls, 4, 'a run spends no more calls than its bound');
  const rest = await poll(1, 'timelines');
  t.equal(bounded.calls + rest.calls, shipped.length, 'one call per shipped shipment; none for unshipped ones');
  const ids = await inboxIds('c1', 'poll.shipment.timeline');
  t.equal(ids.size, shipped.length);
  const s0 = shipped[0];
  const tl = world.timeline(1, s0.id) ?? [];
  t.ok(ids.has(`poll:timeline:${s0.id}:${tl.length}:${tl[tl.length - 1].timestamp}`), 'versioned by its entries');

  const again = await poll(1, 'timelines');
  t.equal(again.calls, 0, 'nothing is due right after a check');

  const rows = await sql<{ id: string; checked: boolean; next: string }[]>`
    select id, timeline_checked_at is not null as checked, timeline_next_check_at::text as next from shipments`;
  const byId = new Map(rows.map((r) => [Number(r.id), r]));
  const unshipped = open.find((s) => s.tracking === null);
  t.equal(byId.get(unshipped?.id ?? 0)?.checked, false, 'an unshipped shipment was looked at but not fetched');

  world.advance(16 * MINUTE);
  const recent = shipped.filter((s) => world.now() - Date.parse(s.actual_fulfillment_date ?? s.created_date) < 2 * DAY);
  const later = await poll(1, 'timelines');
  t.equal(later.calls, recent.length, `16 minutes on, only the ${recent.length} shipped in the last 2 days are due`);
});
