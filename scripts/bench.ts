/**
 * `npm run bench`: runs every benchmark one after another (never in parallel: they would measure each other), then
 * prints one table, ratios first, and as its last line one JSON object holding each benchmark's own JSON by name.
 * Each benchmark is a separate process, so one's memory and connections never colour the next.
 * `npm run bench -- intake drain` runs a subset.
 */
import { spawn } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import path from 'node:path';
import { projectRoot } from '../src/paths.js';

const ALL = ['intake', 'drain', 'poll', 'lag', 'abuse'] as const;

type Figures = Record<string, unknown>;

function runBench(name: string): Promise<Figures | { error: string }> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(projectRoot, 'scripts', `bench-${name}.ts`)],
      { cwd: projectRoot, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk;
      process.stdout.write(chunk);
    });
    child.on('close', (code) => {
      const last = out.trim().split('\n').pop() ?? '';
      try {
        resolve(JSON.parse(last) as Figures);
      } catch {
        resolve({ error: `bench-${name} exited ${code} without a JSON last line` });
      }
    });
  });
}

const num = (v: unknown, digits = 2) => (typeof v === 'number' ? v.toFixed(digits) : String(v ?? '–'));

function rows(results: Record<string, Figures>): string[][] {
  const r: string[][] = [];
  const intake = results.intake as { c50?: Figures; c200?: Figures } | undefined;
  if (intake?.c50 && intake.c200) {
    for (const c of ['c50', 'c200'] as const) {
      const f = intake[c] as Figures;
      r.push([`intake ${c} vs minimal durable insert`, `${num(f.ratio)}×`, `${num(f.rps, 0)} req/s, p99 ${num(f.p99_ms, 1)} ms, ${f.errors} errors (ceiling ${num(f.ceiling_rps, 0)} req/s)`]);
    }
  }
  const drain = results.drain;
  if (drain && !('error' in drain)) {
    r.push(['drain vs naive (statement per event)', `${num(drain.naive_ratio, 1)}×`, `${num(drain.events_per_s, 0)} events/s`]);
    r.push(['drain vs bare unnest upsert ceiling', `${num(drain.ceiling_ratio)}×`, `${drain.statements_per_chunk} statements per chunk, peak ${num(drain.peak_rss_mb, 0)} MB RSS`]);
    if (drain.peak_rss_mb_large != null) {
      r.push(['drain of 1 MiB events, worker peak RSS', `${num(drain.peak_rss_mb_large, 0)} MB`, `${drain.large_events} events, ${drain.large_events_per_s} events/s (goal < 256 MB)`]);
    }
  }
  const poll = results.poll;
  if (poll && !('error' in poll)) {
    r.push(['poll catch-up calls vs minimum', `${num(poll.call_ratio, 3)}×`, `${poll.calls} calls for ${poll.changed} changed (min ${poll.min_calls}); ${num(poll.wharf_ms_per_page, 1)} ms of wharf per page; ≤ ${poll.max_calls_per_min_at_real_limit}/min at the real limit`]);
  }
  const lag = results.lag;
  if (lag && !('error' in lag)) {
    r.push(['webhook → applied at a fixed rate', `p50 ${num(lag.applied_p50_ms, 0)} ms`, `p99 ${num(lag.applied_p99_ms, 0)} ms at ${lag.rate_per_s}/s; ack p99 ${num(lag.ack_p99_ms, 1)} ms; ${lag.errors} errors`]);
  }
  const abuse = results.abuse;
  if (abuse && !('error' in abuse)) {
    r.push([
      'genuine deliveries under a flood',
      `${num(abuse.genuine_ok_ratio, 3)} ok`,
      `p99 ${num(abuse.genuine_p99_ms, 1)} ms (alone ${num(abuse.baseline_p99_ms, 1)} ms); ${num(abuse.quarantine_rows_per_1k, 2)} quarantine rows per 1k refusals, ${num(abuse.statements_per_rejection, 3)} statements per refusal, RSS +${num(abuse.rss_growth_mb, 0)} MB`,
    ]);
  }
  for (const [name, f] of Object.entries(results)) if ('error' in f) r.push([name, 'failed', String(f.error)]);
  return r;
}

async function main() {
  const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
  const names = wanted.length > 0 ? wanted : [...ALL];
  const results: Record<string, Figures> = {};
  for (const name of names) {
    console.log(`\n=== bench:${name} ===`);
    results[name] = await runBench(name);
  }
  const table = rows(results);
  const widths = [0, 1, 2].map((i) => Math.max(...table.map((row) => row[i].length), 10));
  console.log(`\n=== wharf benchmarks, ${new Date().toISOString().slice(0, 10)}, ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB ===`);
  console.log(['what', 'ratio', 'figures'].map((h, i) => h.padEnd(widths[i])).join(' | '));
  console.log(widths.map((w) => '-'.repeat(w)).join('-|-'));
  for (const row of table) console.log(row.map((c, i) => c.padEnd(widths[i])).join(' | '));
  console.log(JSON.stringify({ bench: 'all', ...results }));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
