/**
 * `npm test`: runs the whole tap suite against a real PostgreSQL and prints `N passed, N failed` last.
 *
 * - DATABASE_URL set: test databases are created on that server. Unset: an embedded PostgreSQL is started in a temp
 *   directory on a free port for this run and removed after.
 * - Each test file gets its own database copied from a migrated template (test/db.ts).
 * - Coverage: tap's 100% default is replaced by our threshold, COVERAGE_MIN_LINES (see below), checked here.
 * Extra arguments are passed to tap (e.g. a single file).
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { Parser } from 'tap-parser';
import { throwawayDatabase } from '../src/db/embedded.js';
import { projectRoot } from '../src/paths.js';
import { dropTemplates, ensureTemplate, withDatabase } from '../test/db.js';

/** Line coverage the suite must reach over src/ (a full run only). Below it the run fails. */
const COVERAGE_MIN_LINES = 80;

interface Counts {
  passed: number;
  failed: number;
  skipped: number;
}

/** Each top-level test point of a file (a t.test or a bare assertion) counts as one test; a file that ran none fails. */
function countResults(dir: string): Counts {
  const totals = { passed: 0, failed: 0, skipped: 0 };
  const files: string[] = [];
  const walk = (d: string) => {
    for (const f of readdirSync(d)) {
      const p = path.join(d, f);
      if (statSync(p).isDirectory()) walk(p);
      else if (f.endsWith('.tap')) files.push(p);
    }
  };
  if (existsSync(dir)) walk(dir);
  for (const file of files) {
    const parser = new Parser();
    let points = 0;
    let bailed = false;
    parser.on('assert', (res: { ok: boolean; skip?: unknown; todo?: unknown }) => {
      points++;
      if (res.skip || res.todo) totals.skipped++;
      else if (res.ok) totals.passed++;
      else totals.failed++;
    });
    parser.on('bailout', () => {
      bailed = true;
    });
    parser.end(readFileSync(file));
    if (points === 0 || bailed) totals.failed++;
  }
  return totals;
}

function readCoverage(): number | undefined {
  const file = path.join(projectRoot, '.tap', 'report', 'coverage-summary.json');
  if (!existsSync(file)) return undefined;
  return JSON.parse(readFileSync(file, 'utf8')).total.lines.pct;
}

function runTap(args: string[], adminUrl: string): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(path.join(projectRoot, 'node_modules', '.bin', 'tap'), args, {
      stdio: 'inherit',
      env: { ...process.env, WHARF_TEST_ADMIN_URL: adminUrl },
    });
    child.on('close', (c) => resolve(c ?? 1));
  });
}

async function main() {
  const started = Date.now();
  const args = process.argv.slice(2);
  const db = await throwawayDatabase('test', { url: process.env.DATABASE_URL, durable: false, database: 'wharf_admin' });
  console.log(db.embedded ? `# tests use an embedded PostgreSQL on ${new URL(db.url).host}` : '# tests use DATABASE_URL');
  const admin = db.url;
  const stop = () => db.stop();
  const adminUrl = withDatabase(admin, new URL(admin).pathname.slice(1) || 'postgres');
  let code = 1;
  try {
    await ensureTemplate(adminUrl);
    rmSync(path.join(projectRoot, '.tap'), { recursive: true, force: true });
    const tapCode = await runTap(args, adminUrl);
    const counts = countResults(path.join(projectRoot, '.tap', 'test-results'));
    const coverage = readCoverage();
    const partial = args.some((a) => !a.startsWith('-'));
    console.log(
      `# coverage: ${coverage?.toFixed(2) ?? 'n/a'}% of lines (threshold ${COVERAGE_MIN_LINES}%${partial ? ', not enforced for a partial run' : ''})`,
    );
    if (!partial && (coverage === undefined || coverage < COVERAGE_MIN_LINES)) counts.failed++;
    if (tapCode !== 0 && counts.failed === 0) counts.failed++;
    console.log(`# ${((Date.now() - started) / 1000).toFixed(1)} s`);
    code = counts.failed === 0 ? 0 : 1;
    console.log(`${counts.passed} passed, ${counts.failed} failed${counts.skipped ? `, ${counts.skipped} skipped` : ''}`);
  } finally {
    await dropTemplates(adminUrl).catch(() => {});
    await stop();
  }
  process.exit(code);
}

main().catch((err) => {
  console.error(err);
  console.log('0 passed, 1 failed');
  process.exit(1);
});
