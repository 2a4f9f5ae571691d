/**
 * `npm run test:chaos [-- --seconds 90 --rate 36 --clients 4 --worker-kills 4 …]`: the chaos run (test/harness/chaos/run-chaos.ts)
 * at full size. Prints what it did and found; the last line is one JSON object. Exit code 1 when a check fails.
 * DATABASE_URL set: a fresh database on that server, whose connections are cut instead of a server restart.
 */
import { parseArgs } from 'node:util';
import { CHAOS_DEFAULTS, runChaos } from '../test/harness/chaos/run-chaos.js';

const { values: o } = parseArgs({
  options: {
    seconds: { type: 'string' },
    rate: { type: 'string' },
    clients: { type: 'string' },
    history: { type: 'string' },
    seed: { type: 'string' },
    'worker-kills': { type: 'string' },
    'web-kills': { type: 'string' },
    webs: { type: 'string' },
    workers: { type: 'string' },
    'postgres-restarts': { type: 'string' },
    'drop-rate': { type: 'string' },
    'duplicate-rate': { type: 'string' },
    'drop-returns': { type: 'boolean' },
    'no-fsync': { type: 'boolean' },
    help: { type: 'boolean' },
  },
});
if (o.help) {
  console.log(`usage: npm run test:chaos -- [--seconds 90] [--rate 36 (new orders/s, ~11 events each)] [--clients 4]
  [--history 100 (orders per client before the run)] [--seed 1] [--worker-kills 4] [--web-kills 2]
  [--webs 2] [--workers 2]
  [--postgres-restarts 1] [--drop-rate 0.02] [--duplicate-rate 0.05] [--drop-returns] [--no-fsync]`);
  process.exit(0);
}
const num = (v: string | undefined, dflt: number) => {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`not a non-negative number: ${v}`);
  return n;
};

const started = Date.now();
const log = (line: string) => console.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s] ${line}`);
const report = await runChaos({
  ...CHAOS_DEFAULTS,
  seed: num(o.seed, CHAOS_DEFAULTS.seed),
  clients: num(o.clients, CHAOS_DEFAULTS.clients),
  ordersPerClient: num(o.history, CHAOS_DEFAULTS.ordersPerClient),
  durationMs: num(o.seconds, CHAOS_DEFAULTS.durationMs / 1000) * 1000,
  ordersPerSecond: num(o.rate, CHAOS_DEFAULTS.ordersPerSecond),
  workerKills: num(o['worker-kills'], CHAOS_DEFAULTS.workerKills),
  webKills: num(o['web-kills'], CHAOS_DEFAULTS.webKills),
  webProcesses: Math.max(1, num(o.webs, CHAOS_DEFAULTS.webProcesses)),
  workerProcesses: Math.max(1, num(o.workers, CHAOS_DEFAULTS.workerProcesses)),
  postgresRestarts: num(o['postgres-restarts'], CHAOS_DEFAULTS.postgresRestarts),
  dropRate: num(o['drop-rate'], CHAOS_DEFAULTS.dropRate),
  duplicateRate: num(o['duplicate-rate'], CHAOS_DEFAULTS.duplicateRate),
  dropReturns: o['drop-returns'] ?? false,
  durable: !o['no-fsync'],
  databaseUrl: process.env.DATABASE_URL,
  log,
});

const d = report.details;
console.log('');
console.log('what it did');
console.log(`  events generated      ${d.events_generated} (world at the end: ${d.world.orders} orders, ${d.world.shipments} shipments, ${d.world.returns} returns, ${d.world.transactions} charges)`);
console.log(`  webhook attempts      ${d.webhooks.attempts} (${d.webhooks.dropped} never sent, ${d.webhooks.duplicates} duplicated, ${d.webhooks.retries} retries, ${d.webhooks.failed} given up)`);
console.log(`  processes             ${report.web_processes} web, ${report.worker_processes} worker`);
console.log(`  kills                 worker ${report.kills.worker} (SIGKILL), web ${report.kills.web} (SIGKILL), postgres ${report.kills.postgres} (${d.postgres_disruption})`);
console.log(`  unexpected exits      web ${d.unexpected_exits.web}, worker ${d.unexpected_exits.worker} (${d.unexpected_exits.after_postgres} within 15 s of the database disruption; restarted)`);
console.log(`  final poll rounds     ${d.poll_rounds}`);
console.log(`  stale locks released  ${d.stale_locks_released}`);
console.log(`  time                  load ${d.seconds.load.toFixed(1)} s, catch-up ${d.seconds.catch_up.toFixed(1)} s, total ${d.seconds.total.toFixed(1)} s`);
console.log('what it found');
console.log(`  acknowledged events   ${report.events_acked}, lost ${report.lost}${d.lost_examples.length ? `: ${JSON.stringify(d.lost_examples)}` : ''}`);
console.log(`  inbox                 ${d.inbox.rows} rows ${JSON.stringify(d.inbox.by_status)}, ${d.inbox.via_poll} via poll, ${d.inbox.duplicates_absorbed} repeated deliveries absorbed`);
console.log(`  applied twice         ${report.applied_twice}`);
console.log(`  unattributed charges  ${report.unattributed_attributable} that the world attributes`);
console.log(`  left out              ${d.unknowable.returns} returns no webhook announced and no charge names (no endpoint lists returns)`);
console.log(`  matches the world     ${report.matches_world ? 'yes' : `NO: ${d.differences} differences`}`);
for (const line of d.first_differences) console.log(`    ${line}`);
console.log(
  JSON.stringify({
    chaos: report.chaos,
    events_acked: report.events_acked,
    lost: report.lost,
    applied_twice: report.applied_twice,
    unattributed_attributable: report.unattributed_attributable,
    matches_world: report.matches_world,
    kills: report.kills,
    web_processes: report.web_processes,
    worker_processes: report.worker_processes,
    process_exits_unplanned: report.process_exits_unplanned,
  }),
);
const ok = report.lost === 0 && report.applied_twice === 0 && report.unattributed_attributable === 0 && report.matches_world;
process.exit(ok ? 0 : 1);
