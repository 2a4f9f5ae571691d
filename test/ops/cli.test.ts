import { spawnSync } from 'node:child_process';
import path from 'node:path';
import t from 'tap';
import { freePort } from '../../src/net.js';
import { type OpsIo, runOps } from '../../src/ops/cli.js';
import { projectRoot } from '../../src/paths.js';
import { freshDatabase, TEST_ENCRYPTION_KEY } from '../helper.js';

// The ops CLI's parsing, help and output contract. Parsing and help run against a DATABASE_URL where nothing listens:
// they must answer without ever connecting.

function capture(stdin = ''): OpsIo & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return {
    stdout,
    stderr,
    out: (x) => void stdout.push(x),
    err: (x) => void stderr.push(x),
    progress: (x) => void stderr.push(x),
    readStdin: async () => stdin,
  };
}

async function cli(args: string[], env: Record<string, string>) {
  const io = capture();
  const code = await runOps(args, env, io);
  return { code, stdout: io.stdout.join('\n'), stderr: io.stderr.join('\n') };
}

t.test('help for every command and option, without a database', async (t) => {
  const env = { DATABASE_URL: `postgres://nobody@127.0.0.1:${await freePort()}/none` };
  const top = await cli(['--help'], env);
  t.equal(top.code, 0);
  for (const c of ['sources', 'keys', 'channels', 'inventory', 'status', 'polls', 'explain', 'clear-stale-locks', 'replay', 'backfill', 'prune']) t.match(top.stdout, new RegExp(`^  ${c}\\b`, 'm'), `lists ${c}`);
  t.match(top.stdout, /Exit codes:\n {2}0 {2}done\n {2}1 {2}failed.*\n {2}2 {2}usage/, 'documents the exit codes');
  t.equal((await cli(['help', 'replay'], env)).code, 0, '`help <command>` too');
  const commands = [
    ['sources', 'add'],
    ['sources', 'subscribe'],
    ['sources', 'list'],
    ['sources', 'update'],
    ['sources', 'rotate-secret'],
    ['sources', 'enable'],
    ['sources', 'disable'],
    ['keys', 'status'],
    ['keys', 'rotate'],
    ['channels', 'list'],
    ['channels', 'set'],
    ['channels', 'remove'],
    ['inventory', 'list'],
    ['inventory', 'set'],
    ['inventory', 'remove'],
    ['inventory', 'load'],
    ['status'],
    ['polls'],
    ['explain'],
    ['clear-stale-locks'],
    ['replay'],
    ['backfill'],
    ['prune'],
  ];
  for (const c of commands) {
    const r = await cli([...c, '--help'], env);
    t.equal(r.code, 0, `${c.join(' ')} --help exits 0`);
    t.match(r.stdout, /--json\s+print exactly one JSON document on stdout/, `${c.join(' ')} accepts --json`);
    t.notMatch(r.stderr, /ECONNREFUSED|failed/, 'and never tried the database');
  }
  const bare = await cli([], env);
  t.equal(bare.code, 2, 'no command: usage, exit 2');
  t.match(bare.stderr, /Usage: wharf/);
});

t.test('bad input exits 2 naming what is accepted, before any connection', async (t) => {
  const env = { DATABASE_URL: `postgres://nobody@127.0.0.1:${await freePort()}/none` };
  const cases: [string[], RegExp][] = [
    [['sources', 'rotate-secret', '--source', 's', '--overlap', '24'], /not a duration: "24" \(use a number with a unit: 1500ms, 90s, 5m, 24h, 7d\)/],
    [['replay', '--since', '1'], /not a date: "1" \(use an ISO 8601 date or date-time .* or a duration ago \(2h, 7d\)\)/],
    [['replay', '--since', 'Nov 1'], /not a date: "Nov 1"/],
    [['replay', '--wait', '120'], /not a duration/],
    [['replay', '--status', 'processed'], /Allowed choices are dead, ignored/],
    [['replay', '--batch', '0'], /must be an integer in \[1, 10000\]/],
    [['status', '--bogus'], /unknown option '--bogus'/],
    [['bogus'], /unknown command 'bogus'/],
    [['backfill', '--source', 's'], /required option '--since <date>' not specified/],
    [['backfill', '--source', 's', '--since', '7d', '--stream', 'timelines'], /Allowed choices are orders, transactions/],
    [['polls', '--limit', 'many'], /must be an integer/],
    [['explain', '--order', 'abc'], /must be a positive integer id/],
    [['explain', '--order', '1', '--shipment', '2'], /exactly one of --order ID, --shipment ID, --transaction ID/],
    [['explain'], /exactly one of/],
    [['sources', 'add', '--name', 'x', '--secret', 'whsec_in_argv'], /--secret <value> is not accepted \(argv is visible to every user of the machine\): use --secret-stdin/],
    [['sources', 'add', '--name', 'x', '--secret-env', 'NOPE'], /--secret-env: NOPE is not set/],
    [['sources', 'add', '--name', 'x', '--secret-stdin', '--secret-env', 'X'], /one way only/],
  ];
  for (const [args, message] of cases) {
    const r = await cli(args, env);
    t.equal(r.code, 2, `${args.join(' ')}: exit 2`);
    t.match(r.stderr, message, `${args.join(' ')}: says what is accepted`);
    t.notMatch(r.stderr, /ECONNREFUSED/, 'without connecting');
    t.equal(r.stdout, '', 'nothing on stdout');
  }
  t.notMatch((await cli(['sources', 'add', '--name', 'x', '--secret', 'whsec_in_argv'], env)).stderr, /whsec_in_argv/, 'a secret is never echoed');
  const iso = await cli(['replay', '--since', '2026-11-01', '--until', '2026-11-02T08:00:00+01:00', '--help'], env);
  t.equal(iso.code, 0, 'ISO dates and date-times parse');
});

t.test('every command with --json prints exactly one JSON document on stdout', async (t) => {
  const db = await freshDatabase(t);
  const env = { DATABASE_URL: db.url, WHARF_ENCRYPTION_KEY: TEST_ENCRYPTION_KEY, WHARF_SOURCE_SECRET: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' };
  const commands = [
    ['sources', 'add', '--name', 'acme'],
    ['sources', 'list'],
    ['keys', 'status'],
    ['keys', 'rotate'],
    ['channels', 'list'],
    ['inventory', 'list'],
    ['status'],
    ['polls'],
    ['explain', '--shipment', '1'],
    ['clear-stale-locks'],
    ['replay'],
    ['prune'],
    ['backfill', '--source', 'nope', '--since', '7d'],
  ];
  for (const c of commands) {
    const r = await cli([...c, '--json'], env);
    t.equal(r.code, 0, `${c.join(' ')} --json: ${r.stderr}`);
    t.equal(r.stdout.split('\n').length, 1, 'one line');
    t.doesNotThrow(() => JSON.parse(r.stdout), 'one JSON document');
  }
  const { id } = JSON.parse((await cli(['sources', 'list', '--json'], env)).stdout).sources[0];
  for (const c of [
    ['sources', 'rotate-secret', '--source', id, '--overlap', '90s'],
    ['sources', 'disable', '--source', id],
    ['sources', 'enable', '--source', id],
    ['sources', 'update', '--source', id, '--client', 'acme-co'],
    ['channels', 'set', '--source', id, '--channel', '7', '--client', 'acme-co'],
    ['inventory', 'set', '--source', id, '--item', '9', '--client', 'acme-co'],
    ['backfill', '--source', id, '--since', '2h', '--apply'],
    ['prune', '--apply'],
  ]) {
    const r = await cli([...c, '--json'], env);
    t.equal(r.code, 0, `${c.join(' ')} --json`);
    t.doesNotThrow(() => JSON.parse(r.stdout), `${c[0]} ${c[1]}: one JSON document`);
  }
  const rotated = JSON.parse((await cli(['sources', 'list', '--json'], env)).stdout).sources[0];
  t.equal(rotated.secrets.length, 2, 'the rotation kept the old secret');
  const until = rotated.secrets.find((k: { expiresAt: string | null }) => k.expiresAt)?.expiresAt;
  t.ok(Date.parse(until) - Date.now() > 60_000, 'for the 90 s overlap asked (not 90 ms)');
  const missing = await cli(['sources', 'disable', '--source', 'src_nope', '--json'], env);
  t.equal(missing.code, 1, 'an unknown source fails');
  t.same(JSON.parse(missing.stdout), { error: 'not_found', sourceId: 'src_nope' }, 'still one JSON document');

  // Through the package's bin, as `npx wharf` runs it: stdout is the document alone (no npm banner).
  const bin = spawnSync(process.execPath, [path.join(projectRoot, 'bin', 'wharf.js'), 'status', '--json'], {
    cwd: projectRoot,
    env: { PATH: process.env.PATH, DATABASE_URL: db.url, WHARF_ENCRYPTION_KEY: TEST_ENCRYPTION_KEY },
    encoding: 'utf8',
  });
  t.equal(bin.status, 0, bin.stderr);
  t.equal(JSON.parse(bin.stdout).inbox.pending, 0, 'bin/wharf.js status --json is one JSON document');
});

t.test('long work shows progress on stderr: replay’s wait for the drain, backfill --wait', async (t) => {
  const db = await freshDatabase(t);
  const env = { DATABASE_URL: db.url, WHARF_ENCRYPTION_KEY: TEST_ENCRYPTION_KEY };
  const added = JSON.parse((await cli(['sources', 'add', '--name', 'acme', '--json'], env)).stdout);
  await db.sql`insert into inbox_events (source_id, event_id, topic, body, status) values (${added.id}, 'e1', 'order.shipped', '{}', 'dead')`;
  // No worker runs here: nothing drains, nothing polls; both commands wait, show where they are, and exit 1.
  const r = await cli(['replay', '--apply', '--wait', '1s', '--json'], env);
  t.equal(r.code, 1, 'not settled within --wait: exit 1');
  t.match(r.stderr, /requeued \[#+\] 1\/1/, 'the requeue progress');
  t.match(r.stderr, /drained \[-+\] 0\/1 \(waiting \d+s of 1s\)/, 'the wait for the drain');
  t.same(JSON.parse(r.stdout).settled, false, 'stdout: the one JSON document');
  const b = await cli(['backfill', '--source', added.id, '--since', '2h', '--apply', '--wait', '1s'], env);
  t.equal(b.code, 1, 'still polling at the deadline: exit 1');
  t.match(b.stderr, /orders: at \d{4}-.*, transactions: at \d{4}-/, 'each stream’s cursor as it goes');
  t.match(b.stdout, /still polling after 1s/);
});
