import pino from 'pino';
import t from 'tap';
import { insertInboxEvents } from '../../src/inbox/insert-events.js';
import { insertSource } from '../../src/intake/sources.js';
import { countReplayable } from '../../src/ops/replay.js';
import { createWorld } from '../harness/simulator/index.js';
import { startWorker } from '../../src/worker/runner.js';
import { freshDatabase, testConfig, testKeys } from '../helper.js';
import { runOpsCli } from './run-ops.js';

t.test('dead letters replayed after a fix land; what still cannot apply stays dead', async (t) => {
  const { sql, url } = await freshDatabase(t);
  const sourceId = await insertSource(sql, testKeys, { name: 'acme', secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' });
  const events = createWorld({ seed: 3, clients: 1 }).step({ newOrders: 3, updates: 3, billing: 0 });
  const charges = events.filter((e) => e.topic === 'billing.charge.created');
  t.ok(charges.length > 0, 'the scenario has charges');
  const stored = await insertInboxEvents(
    sql,
    [
      ...events.map((e, i) => ({ topic: e.topic, body: JSON.stringify(e.payload), eventId: `msg_${i}` })),
      { topic: 'billing.charge.created', body: '"not an object"', eventId: 'msg_broken' },
      { topic: 'order.teleported', body: '{"id":1}', eventId: 'msg_unknown' },
    ].map((e) => ({ ...e, sourceId, headers: null, eventTime: null, via: 'webhook' as const })),
  );
  const ids = stored.map((s) => s.id);
  const unknownId = ids[ids.length - 1];
  // What an older, buggy build left behind: every event dead after one attempt (the unknown topic: ignored).
  await sql`update inbox_events set status = 'dead', attempts = 1, last_error = 'apply failed: simulated old bug'
             where id = any(${ids.slice(0, -1)}::bigint[])`;
  await sql`update inbox_events set status = 'ignored', attempts = 1, last_error = 'unknown topic' where id = ${unknownId}`;

  t.same(
    (await countReplayable(sql, { status: 'dead', topic: 'billing.charge.created' })).map((r) => r.count),
    [charges.length + 1],
    'the topic filter counts the matching dead rows',
  );
  t.equal((await countReplayable(sql, { status: 'dead', sourceId: 'src_other' })).length, 0, 'the source filter excludes');
  t.equal(
    (await countReplayable(sql, { status: 'dead', until: new Date(Date.now() - 3600_000) })).length,
    0,
    'the until filter excludes rows received after it',
  );

  const dry = await runOpsCli(url, ['replay', '--json']);
  t.equal(dry.code, 0, dry.stderr);
  t.same(JSON.parse(dry.stdout), { matched: events.length + 1, byTopic: JSON.parse(dry.stdout).byTopic, applied: false });
  const [{ stillDead }] = await sql`select count(*)::int as "stillDead" from inbox_events where status = 'dead'`;
  t.equal(stillDead, events.length + 1, 'the dry run changed nothing');

  const worker = await startWorker(testConfig(url, { WORKER_CONCURRENCY: '2' }), url, pino({ level: 'silent' }));
  t.teardown(() => worker.stop());

  const run = await runOpsCli(url, ['replay', '--apply', '--json', '--batch', '2', '--wait', '30s']);
  t.equal(run.code, 0, 'replay --apply succeeds');
  const report = JSON.parse(run.stdout);
  t.equal(report.requeued, events.length + 1, 'every dead row was requeued');
  t.same(report.outcome, { processed: events.length, dead: 1 }, 'the fixed ones landed; the broken one is dead again');
  t.match(run.stderr, /requeued \[#+-*\] \d+\/\d+/, 'a progress bar was shown');

  const rows = await sql<{ id: string; status: string; via: string; attempts: number; last_error: string | null }[]>`
    select id, status, via, attempts, last_error from inbox_events order by id`;
  t.ok(rows.filter((r) => Number(r.id) !== unknownId).every((r) => r.via === 'replay'), 'replayed rows say via = replay');
  t.ok(rows.every((r) => r.attempts >= 1), 'attempts were kept');
  const broken = rows.find((r) => r.status === 'dead');
  t.match(broken?.last_error, /object/, 'the broken row’s reason is today’s');
  t.equal(rows.find((r) => Number(r.id) === unknownId)?.status, 'ignored', 'ignored rows are left alone by --status dead');
  const landed = await sql`select transaction_id from transactions where transaction_id = any(${charges.map((c) => (c.payload as { transaction_id: string }).transaction_id)}::text[])`;
  t.equal(landed.length, charges.length, 'the replayed charges are in the transactions table');

  const again = await runOpsCli(url, ['replay', '--status', 'ignored', '--apply', '--json', '--wait', '30s']);
  t.same(JSON.parse(again.stdout).outcome, { ignored: 1 }, 'an unknown topic replays to ignored with today’s code');
});
