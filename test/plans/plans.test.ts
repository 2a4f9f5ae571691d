import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { createDb } from '../../src/db/client.js';
import { projectRoot } from '../../src/paths.js';
import { seedScale } from '../harness/scale/seed.js';
import { freshDatabase, testConfig } from '../helper.js';
import { GROWING_TABLES, type PlanContext, planCases } from './cases.js';
import { type Captured, explainCaptured, isControlStatement, normaliseSql } from './plan.js';

/**
 * Every hot query's plan, on a seeded database big enough for a wrong plan to show (40,000 shipments over 20 sources,
 * the seeder's proportions: ~12,000 undelivered, ~45,000 charges, ~26,000 inbox rows), checked from EXPLAIN (ANALYZE,
 * FORMAT JSON) of exactly what the function sends: the intended indexes, no sequential scan of a table that grows,
 * no sort, and no rows read only to be thrown away (beyond the bounds each case states). The statements are
 * snapshotted in test/plans/snapshots/ so a change to a hot query shows in review; UPDATE_PLAN_SNAPSHOTS=1 rewrites
 * them.
 */

const SNAPSHOTS = path.join(projectRoot, 'test', 'plans', 'snapshots');
const update = process.env.UPDATE_PLAN_SNAPSHOTS === '1';

t.test('hot queries read what they return through their indexes, on a seeded database', async (t) => {
  const db = await freshDatabase(t, { max: 2 });
  const now = new Date();
  const shipments = 40_000;
  const sources = 20;
  await seedScale(db.sql, { shipments, sources, now });
  // A backlog for the claim: 2,000 pending events after everything already processed. Bodies as large as the seeded
  // ones, so they land after them as arrivals do: a tiny body fits in the free space at the end of every earlier page,
  // which scrambles the id order the planner sees (its correlation) and with it the plans of id-ordered scans.
  await db.sql`
    insert into inbox_events (source_id, event_id, topic, body, event_time)
    select 'src-' || (1 + n % ${sources}), 'pending-' || n, 'order.shipped', '{"pad":"' || repeat('x', 520) || '"}', now()
      from generate_series(1, 2000) n`;
  await db.sql`analyze inbox_events`;

  const captured: Captured[] = [];
  const capturing = createDb({ url: db.url, max: 1, onQuery: (text, params) => captured.push({ text, params }) });
  t.teardown(() => capturing.close(1));
  const ctx: PlanContext = { now, shipments, sources, config: testConfig(db.url), plain: db.sql };

  for (const c of planCases) {
    if (!c.run) {
      t.test(c.fn, { todo: c.todo ?? 'no run given' }, async () => {});
      continue;
    }
    const run = c.run;
    const name = `${c.fn}: ${c.indexes.length ? c.indexes.join(', ') : 'no scan of a growing table'}`;
    await t.test(name, c.todo ? { todo: c.todo } : {}, async (t) => {
      captured.length = 0;
      await run(capturing.sql, ctx);
      const statements = captured.filter((s) => !isControlStatement(s.text) && (c.pick?.(s.text) ?? true));
      t.ok(statements.length > 0, 'the function sent the statements to check');
      const distinct = [...new Map(statements.map((s) => [s.text, s])).values()];
      const maxDropped = typeof c.maxRowsDropped === 'function' ? await c.maxRowsDropped(ctx) : (c.maxRowsDropped ?? 0);
      const used = new Set<string>();
      for (const [i, s] of distinct.entries()) {
        const plan = await explainCaptured(db.sql, s, GROWING_TABLES);
        for (const ix of plan.indexes) used.add(ix);
        const label = `statement ${i + 1}:\n${plan.outline}`;
        t.same(plan.seqScans.filter((r) => GROWING_TABLES.includes(r)), [], `no sequential scan of a growing table (${label})`);
        t.ok(plan.rowsDropped <= maxDropped, `${plan.rowsDropped} rows read and dropped, at most ${maxDropped} (${label})`);
        if (c.indexOrder) t.same(plan.sorts, [], `no sort: the index gives the order (${label})`);
        const sortBound = Math.max(plan.rowsOut, c.maxSortRows ?? 0);
        for (const so of plan.sorts) t.ok(so.rows <= sortBound, `a sort of ${so.rows} rows, at most ${sortBound} (${label})`);
      }
      for (const ix of c.indexes) t.ok(used.has(ix), `uses ${ix} (used: ${[...used].join(', ') || 'none'})`);

      const snapshot = `-- ${c.fn}\n-- The statements test/plans/plans.test.ts checks (UPDATE_PLAN_SNAPSHOTS=1 rewrites this file).\n${distinct
        .map((s, i) => `-- statement ${i + 1}\n${normaliseSql(s.text)};\n`)
        .join('')}`;
      const file = path.join(SNAPSHOTS, `${c.name}.sql`);
      if (update) {
        mkdirSync(SNAPSHOTS, { recursive: true });
        writeFileSync(file, snapshot);
      }
      const committed = existsSync(file) ? readFileSync(file, 'utf8') : '(missing: run with UPDATE_PLAN_SNAPSHOTS=1)';
      t.equal(snapshot, committed, `the statements equal test/plans/snapshots/${c.name}.sql`);
    });
  }
});
