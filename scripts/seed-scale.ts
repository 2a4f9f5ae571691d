/**
 * `npm run seed:scale -- [--shipments 1000000] [--sources 50] [--inbox-rows N]`: a year of data at scale (proportions in
 * docs/scale.md) for EXPLAIN and benchmarks by hand. Seeds DATABASE_URL (migrated first; its shipments must be empty);
 * without it, a throwaway durable embedded PostgreSQL, removed at the end (to time the seed). Last line: one JSON
 * object.
 */
import { parseArgs } from 'node:util';
import { createDb } from '../src/db/client.js';
import { throwawayDatabase } from '../src/db/embedded.js';
import { runMigrations } from '../src/db/migrate.js';
import { seedScale } from '../test/harness/scale/seed.js';

const { values } = parseArgs({
  options: {
    shipments: { type: 'string', default: '1000000' },
    sources: { type: 'string', default: '50' },
    'inbox-rows': { type: 'string' },
  },
});
const int = (name: string, v: string | undefined) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got ${v}`);
  return n;
};

const shipments = int('shipments', values.shipments);
const sources = int('sources', values.sources);
const inboxRows = values['inbox-rows'] === undefined ? undefined : int('inbox-rows', values['inbox-rows']);
const target = await throwawayDatabase('seed-scale', { url: process.env.DATABASE_URL, durable: true, database: 'wharf_scale' });
if (target.embedded) console.log('DATABASE_URL unset: seeding a throwaway embedded PostgreSQL (removed at the end)');
const url = target.url;
await runMigrations(url);
const db = createDb({ url, max: 1 });
const started = performance.now();
try {
  const counts = await seedScale(db.sql, {
    shipments,
    sources,
    inboxRows,
    onProgress: (table, rows, ms) => console.log(`${table.padEnd(32)} ${String(rows).padStart(9)} rows  ${Math.round(ms)} ms`),
  });
  const seconds = (performance.now() - started) / 1000;
  for (const [k, v] of Object.entries(counts)) console.log(`${k.padEnd(32)} ${v}`);
  console.log(JSON.stringify({ seed: 'scale', seconds: Number(seconds.toFixed(1)), rows: counts }));
} finally {
  await db.close();
  await target.stop();
}
