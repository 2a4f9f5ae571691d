import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { type Config, DAY, loadConfig } from '../config.js';
import { createDb, type Sql } from '../db/client.js';
import { findRunningDatabase } from '../db/resolve.js';
import { UsageError } from '../errors.js';
import { pruneInbox } from '../inbox/prune.js';
import { insertSource, listSources, rotateSourceSecret, setSourceEnabled } from '../intake/sources.js';
import { prunePollRuns } from '../poll/poll-runs.js';
import { PollRunOutcomes } from '../poll/poll-runs.js';
import { PollStreams, type PollStream } from '../poll/streams.js';
import { findStaleLocks, releaseStaleLocks } from '../worker/stale-locks.js';
import { BACKFILL_STREAMS, scheduleBackfill, waitForBackfill } from './backfill.js';
import { ExplainKinds, explainEntity, explanationText, validExplainId } from './explain.js';
import { DATE_FORMS, DURATION_FORMS, formatAge, mask, parseDuration, parseSince, plain, progressBar, table } from './format.js';
import { pollRunsTable, readPollRuns } from './polls.js';
import { countReplayable, type ReplayFilter, replay } from './replay.js';
import { readStatus } from './status.js';

/**
 * The ops CLI (`npx wharf <command>`, `npm run ops -- <command>`, in the image `node dist/scripts/ops.js <command>`),
 * on commander. Parsing, validation and help never touch a database: a command connects only once its options are
 * valid, to DATABASE_URL or the embedded server of a running `npm start` (src/db/resolve.ts: never a database of its
 * own, never a migration). Every writing command is a dry run unless `--apply` (sources commands write: they are
 * explicit by nature). `--json` on every command: exactly one JSON document on stdout, logs and progress on stderr.
 * Secrets and tokens are never printed in full; provider text is stripped of control characters in tables.
 */

export const ExitCode = { ok: 0, failed: 1, usage: 2 } as const;

const EXIT_CODES_HELP = `
Exit codes:
  0  done
  1  failed (database unreachable or missing, a source not found, replay not settled in --wait, an error)
  2  usage (unknown command or option, a missing or invalid value)

Database: DATABASE_URL, else the embedded PostgreSQL of a running \`npm start\`. Commands never create or migrate one.
Durations: ${DURATION_FORMS}. Dates: ${DATE_FORMS}.`;

export interface OpsIo {
  out(text: string): void;
  err(text: string): void;
  /** A progress line (overwritten in place on a terminal). */
  progress(text: string): void;
}

export const consoleIo: OpsIo = {
  out: (t) => process.stdout.write(`${t}\n`),
  err: (t) => process.stderr.write(`${t}\n`),
  progress: (t) => process.stderr.write(process.stderr.isTTY ? `\r${t}` : `${t}\n`),
};

interface Session {
  config: Config;
  sql: Sql;
  io: OpsIo;
  now: Date;
  json: boolean;
}

const json = (v: unknown) => JSON.stringify(v);

// ─── option parsers: each throws InvalidArgumentError, which commander reports as a usage error (exit 2) ───

function usage<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

const duration = (v: string) => usage(() => parseDuration(v));
const date = (now: Date) => (v: string) => usage(() => parseSince(v, now));
const integer = (min: number, max: number) => (v: string) =>
  usage(() => {
    const n = Number(v);
    if (!/^\d+$/.test(v.trim()) || n < min || n > max) throw new Error(`must be an integer in [${min}, ${max}]`);
    return n;
  });
/** Checked in the action, not by commander, whose message would echo the value: a secret never reaches the terminal. */
function checkSecret(v: string): string {
  if (!/^whsec_[A-Za-z0-9+/]+={0,2}$/.test(v)) throw new UsageError('--secret must look like whsec_<base64> (value not shown)');
  return v;
}
const explainId = (kind: (typeof ExplainKinds)[number]) => (v: string) =>
  usage(() => {
    const id = v.trim();
    if (!validExplainId(kind, id)) throw new Error(kind === 'transaction' ? 'must be a transaction id' : 'must be a positive integer id');
    return id;
  });

const jsonOption = () => new Option('--json', 'print exactly one JSON document on stdout (logs and progress on stderr)');

// ─── commands ───

async function sourcesAdd(s: Session, o: { name: string; secret: string; apiToken?: string; client?: string }) {
  const id = await insertSource(s.sql, { name: o.name, secret: checkSecret(o.secret), apiToken: o.apiToken ?? null, clientId: o.client ?? null });
  const url = `${s.config.publicUrl}/webhooks/shipbob/${id}`;
  s.io.out(s.json ? json({ id, url }) : `source ${id} added\nwebhook URL: ${url}`);
  return ExitCode.ok;
}

async function sourcesList(s: Session) {
  const rows = (await listSources(s.sql, s.now)).map((r) => ({
    id: r.id,
    name: r.name,
    clientId: r.clientId,
    enabled: r.enabled,
    apiToken: mask(r.apiToken),
    secrets: r.secrets.map((k) => ({ secret: mask(k.secret), expiresAt: k.expiresAt })),
    url: `${s.config.publicUrl}/webhooks/shipbob/${r.id}`,
  }));
  if (s.json) s.io.out(json({ sources: rows }));
  else
    s.io.out(
      table(
        ['id', 'name', 'client', 'enabled', 'api token', 'secrets (valid until)', 'webhook URL'],
        rows.map((r) => [
          r.id,
          r.name,
          r.clientId,
          r.enabled ? 'yes' : 'no',
          r.apiToken,
          r.secrets.map((k) => `${k.secret}${k.expiresAt ? ` (${new Date(k.expiresAt).toISOString()})` : ''}`).join(', '),
          r.url,
        ]),
      ),
    );
  return ExitCode.ok;
}

async function sourcesRotate(s: Session, o: { source: string; secret: string; overlap?: number }) {
  checkSecret(o.secret);
  const overlapMs = o.overlap ?? s.config.secretRotationOverlapMs;
  if (!(await rotateSourceSecret(s.sql, { sourceId: o.source, secret: o.secret, overlapMs, now: s.now }))) return notFound(s, o.source);
  const until = new Date(s.now.getTime() + overlapMs).toISOString();
  s.io.out(
    s.json
      ? json({ sourceId: o.source, secret: mask(o.secret), previousValidUntil: until })
      : `source ${o.source}: new secret ${mask(o.secret)} active; previous secrets valid until ${until}`,
  );
  return ExitCode.ok;
}

async function sourcesEnable(s: Session, o: { source: string }, enabled: boolean) {
  if (!(await setSourceEnabled(s.sql, o.source, enabled))) return notFound(s, o.source);
  s.io.out(
    s.json
      ? json({ sourceId: o.source, enabled })
      : `source ${o.source} ${enabled ? 'enabled' : 'disabled'} (the intake sees it within its cache TTL)`,
  );
  return ExitCode.ok;
}

function notFound(s: Session, sourceId: string) {
  if (s.json) s.io.out(json({ error: 'not_found', sourceId }));
  s.io.err(`no source ${sourceId}`);
  return ExitCode.failed;
}

async function status(s: Session) {
  const st = await readStatus(s.sql, { staleAfterMs: s.config.staleLockAfterMs, timeoutMs: 10_000 });
  if (s.json) {
    s.io.out(json(st));
    return ExitCode.ok;
  }
  const { io } = s;
  io.out(`status at ${st.at.toISOString()}`);
  io.out(
    `inbox: ${st.inbox.pending}${st.inbox.pendingCapped ? '+' : ''} pending (oldest ${formatAge(st.inbox.oldestPendingAgeSeconds)}), ` +
      `${st.inbox.dead} dead, ${st.inbox.ignored} ignored`,
  );
  io.out(`sources: ${st.sources.enabled} enabled, ${st.sources.disabled} disabled`);
  io.out('\npoll cursors');
  io.out(
    table(
      ['source', 'stream', 'cursor', 'last success', 'catches', 'backfill since', 'polling', 'last error'],
      st.cursors.map((c) => [
        c.sourceName,
        c.stream,
        c.cursorTime?.toISOString(),
        c.ageSeconds === null ? 'never' : `${formatAge(c.ageSeconds)} ago`,
        c.catches,
        c.backfillSince?.toISOString(),
        c.inProgress ? `yes (to ${c.windowEnd?.toISOString() ?? '?'})` : 'no',
        c.lastError,
      ]),
    ),
  );
  io.out('\nrate budgets');
  io.out(
    table(
      ['budget', 'tokens', 'blocked until', 'calls', '429s'],
      st.rateBudgets.map((b) => [b.key, b.tokens.toFixed(1), b.blockedUntil?.toISOString(), b.calls, b.throttled]),
    ),
  );
  io.out('\nworkers');
  io.out(
    table(
      ['worker', 'host', 'pid', 'started', 'last seen', 'alive'],
      st.workers.map((w) => [w.workerId, w.host, w.pid, w.startedAt.toISOString(), `${formatAge(w.ageSeconds)} ago`, w.alive ? 'yes' : 'NO']),
    ),
  );
  io.out('\njobs');
  io.out(table(['task', 'waiting', 'running', 'failed'], st.jobs.map((j) => [j.task, j.waiting, j.locked, j.failed])));
  io.out('\nquarantine, last 24 h');
  io.out(table(['reason', 'count'], st.quarantine24h.map((q) => [q.reason, q.count])));
  io.out('\nconnections');
  io.out(table(['application', 'state', 'count'], st.connections.map((c) => [c.application, c.state, c.count])));
  return ExitCode.ok;
}

async function clearStaleLocks(s: Session, o: { deadAfter?: number; apply?: boolean }) {
  const deadAfterMs = o.deadAfter ?? s.config.staleLockAfterMs;
  const locks = await findStaleLocks(s.sql, { deadAfterMs });
  const released = o.apply ? await releaseStaleLocks(s.sql, { deadAfterMs, releasedBy: 'ops:clear-stale-locks' }) : [];
  if (s.json) {
    s.io.out(json({ deadAfterMs, applied: !!o.apply, locks, released }));
    return ExitCode.ok;
  }
  s.io.out(`locks held by workers without a heartbeat in the last ${formatAge(deadAfterMs / 1000)}: ${locks.length}`);
  if (locks.length)
    s.io.out(
      table(
        ['kind', 'job/queue', 'task', 'age', 'worker', 'last heartbeat'],
        locks.map((l) => [l.kind, l.id, l.task, formatAge(l.ageSeconds), l.workerId, l.lastSeenAt?.toISOString() ?? 'never']),
      ),
    );
  if (!o.apply) {
    if (locks.length) s.io.out('dry run: nothing released (add --apply)');
    return ExitCode.ok;
  }
  for (const r of released)
    s.io.out(`released worker ${r.workerId}: ${r.jobIds.length} job(s), ${r.queueNames.length} queue(s) (audit row written)`);
  if (released.length === 0) s.io.out('nothing to release');
  return ExitCode.ok;
}

interface ReplayOptions {
  status: 'dead' | 'ignored';
  topic?: string;
  source?: string;
  since?: Date;
  until?: Date;
  batch: number;
  wait: number;
  apply?: boolean;
}

async function replayCommand(s: Session, o: ReplayOptions) {
  const filter: ReplayFilter = { status: o.status, topic: o.topic, sourceId: o.source, since: o.since, until: o.until };
  const byTopic = await countReplayable(s.sql, filter);
  const total = byTopic.reduce((n, t) => n + t.count, 0);
  if (!s.json) {
    s.io.out(`${total} ${filter.status} event(s) match`);
    if (total) s.io.out(table(['topic', 'count'], byTopic.map((t) => [t.topic ?? '(none)', t.count])));
  }
  if (!o.apply || total === 0) {
    if (s.json) s.io.out(json({ matched: total, byTopic, applied: false }));
    else if (total) s.io.out('dry run: nothing requeued (add --apply)');
    return ExitCode.ok;
  }
  const waitStarted = { at: 0 };
  const result = await replay(s.sql, filter, {
    batchSize: o.batch,
    total,
    waitMs: o.wait,
    onProgress: (p) => s.io.progress(`requeued ${progressBar(p.requeued, p.total)}`),
    onWait: (outcome) => {
      waitStarted.at ||= Date.now();
      const pending = outcome.pending ?? 0;
      const settled = Object.entries(outcome).reduce((n, [k, v]) => (k === 'pending' ? n : n + v), 0);
      s.io.progress(
        `drained ${progressBar(settled, settled + pending)} (waiting ${formatAge((Date.now() - waitStarted.at) / 1000)} of ${formatAge(o.wait / 1000)})`,
      );
    },
  });
  if (process.stderr.isTTY) s.io.err('');
  if (s.json)
    s.io.out(json({ matched: total, byTopic, applied: true, requeued: result.ids.length, outcome: result.outcome, settled: result.settled }));
  else {
    s.io.out(`requeued ${result.ids.length} event(s) for replay; outcome:`);
    s.io.out(table(['status', 'count'], Object.entries(result.outcome).map(([k, v]) => [k, v])));
    if (!result.settled) s.io.out(`still pending after ${formatAge(o.wait / 1000)}: is a worker running? (ops status); they stay queued`);
  }
  return result.settled ? ExitCode.ok : ExitCode.failed;
}

async function backfillCommand(s: Session, o: { source: string; since: Date; stream?: PollStream; apply?: boolean; wait?: number }) {
  const streams: readonly PollStream[] = o.stream ? [o.stream] : BACKFILL_STREAMS;
  if (!o.apply) {
    if (s.json) s.io.out(json({ sourceId: o.source, since: o.since, streams, applied: false }));
    else s.io.out(`would move the ${streams.join(', ')} cursor(s) of ${o.source} back to ${o.since.toISOString()} and queue a poll (add --apply)`);
    return ExitCode.ok;
  }
  const scheduledAt = new Date();
  const scheduled = await scheduleBackfill(s.sql, { sourceId: o.source, since: o.since, streams });
  if (scheduled.length === 0) return notFound(s, o.source);
  if (!s.json)
    for (const x of scheduled) s.io.out(`${o.source}/${x.stream}: polling from ${x.cursorTime.toISOString()} (job ${x.jobId})`);
  if (!o.wait) {
    if (s.json) s.io.out(json({ sourceId: o.source, since: o.since, applied: true, scheduled }));
    else s.io.out('progress: ops status (or add --wait 10m)');
    return ExitCode.ok;
  }
  const progress = await waitForBackfill(s.sql, {
    sourceId: o.source,
    streams,
    scheduledAt,
    waitMs: o.wait,
    onProgress: (rows) =>
      s.io.progress(rows.map((r) => `${r.stream}: ${r.done ? 'done' : `at ${r.cursorTime?.toISOString() ?? '…'}`}`).join(', ')),
  });
  if (process.stderr.isTTY) s.io.err('');
  const done = progress.length === streams.length && progress.every((r) => r.done);
  if (s.json) s.io.out(json({ sourceId: o.source, since: o.since, applied: true, scheduled, progress, done }));
  else
    s.io.out(
      done
        ? `backfill done: ${progress.map((r) => `${r.stream} at ${r.cursorTime?.toISOString()}`).join(', ')}`
        : `still polling after ${formatAge(o.wait / 1000)} (it goes on; ops status)${progress.some((r) => r.lastError) ? `: ${plain(progress.find((r) => r.lastError)?.lastError)}` : ''}`,
    );
  return done ? ExitCode.ok : ExitCode.failed;
}

async function pruneCommand(s: Session, o: { apply?: boolean }) {
  const { inboxRetentionDays, deadRetentionDays, pollRunRetentionDays } = s.config;
  const retention = { processedDays: inboxRetentionDays, deadDays: deadRetentionDays, pollRunDays: pollRunRetentionDays };
  if (!s.json)
    s.io.out(
      `retention: processed inbox rows and quarantine > ${inboxRetentionDays} d, dead/ignored > ${deadRetentionDays} d, poll runs > ${pollRunRetentionDays} d (INBOX_RETENTION_DAYS, DEAD_RETENTION_DAYS, POLL_RUN_RETENTION_DAYS)`,
    );
  if (!o.apply) {
    if (s.json) s.io.out(json({ retention, applied: false }));
    else s.io.out('dry run: nothing deleted (add --apply)');
    return ExitCode.ok;
  }
  const r = await pruneInbox(s.sql, {
    processedDays: inboxRetentionDays,
    deadDays: deadRetentionDays,
    batchSize: 5000,
    now: s.now,
    onBatch: (p) => s.io.progress(`deleted ${p.processed + p.deadOrIgnored + p.quarantine} row(s) in ${p.batches} batch(es)`),
  });
  const pollRuns = await prunePollRuns(s.sql, { before: new Date(s.now.getTime() - pollRunRetentionDays * DAY), batchSize: 5000 });
  if (s.json) s.io.out(json({ retention, applied: true, deleted: { ...r, pollRuns } }));
  else
    s.io.out(`deleted ${r.processed} processed, ${r.deadOrIgnored} dead/ignored inbox rows, ${r.quarantine} quarantine rows, ${pollRuns} poll runs`);
  return ExitCode.ok;
}

async function pollsCommand(s: Session, o: { source?: string; stream?: string; outcome?: string; since?: Date; limit: number }) {
  const runs = await readPollRuns(s.sql, { sourceId: o.source, stream: o.stream, outcome: o.outcome, since: o.since, limit: o.limit });
  s.io.out(s.json ? json({ runs }) : runs.length ? pollRunsTable(runs) : 'no poll runs recorded');
  return ExitCode.ok;
}

function explainKind(o: { order?: string; shipment?: string; transaction?: string }) {
  const given = ExplainKinds.filter((k) => o[k] !== undefined);
  if (given.length !== 1) throw new UsageError('give exactly one of --order ID, --shipment ID, --transaction ID');
  return given[0];
}

async function explainCommand(s: Session, o: { order?: string; shipment?: string; transaction?: string }) {
  const kind = explainKind(o);
  const e = await explainEntity(s.sql, { kind, id: o[kind]! });
  s.io.out(s.json ? json(e) : explanationText(e));
  return ExitCode.ok;
}

// ─── the program ───

type Run = (cmd: Command, fn: (s: Session) => Promise<number>) => Promise<void>;

/**
 * The command tree. `run` connects and runs an action (it is only reached once commander has parsed and validated
 * every option); `now` is what relative dates count back from.
 */
export function buildProgram(io: OpsIo, run: Run, now: Date): Command {
  const program = new Command('wharf')
    .description('Operate wharf: sources, status, poll runs, explain an entity, stale locks, replay, backfill, prune')
    .showHelpAfterError('(add --help for usage)')
    .configureOutput({ writeOut: (t) => io.out(t.replace(/\n$/, '')), writeErr: (t) => io.err(t.replace(/\n$/, '')) })
    .exitOverride()
    .addHelpText('after', EXIT_CODES_HELP);

  const sources = program.command('sources').description('webhook sources (provider accounts): add, list, rotate a secret, enable, disable');
  sources
    .command('add')
    .description('register a source; prints its id and webhook URL (PUBLIC_URL/webhooks/shipbob/<id>)')
    .requiredOption('--name <name>', 'a unique name')
    .requiredOption('--secret <whsec>', 'its webhook signing secret, whsec_<base64>')
    .option('--api-token <token>', 'the provider API token the poller uses (none: webhook-only, not polled)')
    .option('--client <id>', 'the client (merchant) its records belong to')
    .addOption(jsonOption())
    .action((o, cmd) => {
      checkSecret(o.secret);
      return run(cmd, (s) => sourcesAdd(s, o));
    });
  sources
    .command('list')
    .description('sources with masked secrets (and when an overlapping old one ends), masked tokens, webhook URLs')
    .addOption(jsonOption())
    .action((_o, cmd) => run(cmd, (s) => sourcesList(s)));
  sources
    .command('rotate-secret')
    .description('add a new secret; every previous one stays valid for the overlap')
    .requiredOption('--source <id>', 'the source')
    .requiredOption('--secret <whsec>', 'the new secret, whsec_<base64>')
    .option('--overlap <duration>', 'how long previous secrets stay valid (default SECRET_ROTATION_OVERLAP_MS, 24h)', duration)
    .addOption(jsonOption())
    .action((o, cmd) => {
      checkSecret(o.secret);
      return run(cmd, (s) => sourcesRotate(s, o));
    });
  for (const enabled of [true, false])
    sources
      .command(enabled ? 'enable' : 'disable')
      .description(enabled ? 'accept the source’s webhooks again' : 'refuse the source’s webhooks (404) and stop polling it')
      .requiredOption('--source <id>', 'the source')
      .addOption(jsonOption())
      .action((o, cmd) => run(cmd, (s) => sourcesEnable(s, o, enabled)));

  program
    .command('status')
    .description('inbox depth and age, poll cursors, rate budgets, workers, jobs, quarantine (24 h), connections')
    .addOption(jsonOption())
    .action((_o, cmd) => run(cmd, (s) => status(s)));

  program
    .command('polls')
    .description('the sync-run log: the newest poll runs with window, pages, events, calls, duration, outcome, error')
    .option('--source <id>', 'one source')
    .addOption(new Option('--stream <stream>', 'one stream').choices(PollStreams))
    .addOption(new Option('--outcome <outcome>', 'one outcome').choices(PollRunOutcomes))
    .option('--since <date>', 'runs started since (ISO 8601 or e.g. 2h)', date(now))
    .option('--limit <n>', 'rows at most', integer(1, 10_000), 50)
    .addOption(jsonOption())
    .action((o, cmd) => run(cmd, (s) => pollsCommand(s, o)));

  program
    .command('explain')
    .description('every inbox event wharf holds for one entity, which one its stored row reflects, and the row')
    .option('--order <id>', 'an order id', explainId('order'))
    .option('--shipment <id>', 'a shipment id', explainId('shipment'))
    .option('--transaction <id>', 'a transaction id', explainId('transaction'))
    .addOption(jsonOption())
    .action((o, cmd) => {
      explainKind(o);
      return run(cmd, (s) => explainCommand(s, o));
    });

  program
    .command('clear-stale-locks')
    .description('list graphile-worker locks held by workers without a fresh heartbeat; --apply releases them')
    .option('--dead-after <duration>', 'a worker silent this long is dead (default STALE_LOCK_AFTER_MS, 60s)', duration)
    .option('--apply', 'release them (default: dry run)')
    .addOption(jsonOption())
    .action((o, cmd) => run(cmd, (s) => clearStaleLocks(s, o)));

  program
    .command('replay')
    .description('count dead or ignored events; --apply re-applies them with today’s code and waits for the drain')
    .addOption(new Option('--status <status>', 'which events').choices(['dead', 'ignored']).default('dead'))
    .option('--topic <topic>', 'one topic')
    .option('--source <id>', 'one source')
    .option('--since <date>', 'received since (ISO 8601 or e.g. 2h)', date(now))
    .option('--until <date>', 'received before (ISO 8601 or e.g. 1h)', date(now))
    .option('--batch <n>', 'rows per requeue statement', integer(1, 10_000), 500)
    .option('--wait <duration>', 'how long to wait for the drain', duration, 120_000)
    .option('--apply', 'requeue them (default: dry run)')
    .addOption(jsonOption())
    .action((o, cmd) => run(cmd, (s) => replayCommand(s, o)));

  program
    .command('backfill')
    .description('move stream cursors back to a date (never forward) and poll now; --wait follows the poll')
    .requiredOption('--source <id>', 'the source')
    .requiredOption('--since <date>', 'from when (ISO 8601 or e.g. 7d)', date(now))
    .addOption(new Option('--stream <stream>', 'one stream (default: both)').choices(BACKFILL_STREAMS))
    .option('--wait <duration>', 'wait up to this long for the polls to finish, showing progress', duration)
    .option('--apply', 'schedule it (default: dry run)')
    .addOption(jsonOption())
    .action((o, cmd) => run(cmd, (s) => backfillCommand(s, o)));

  program
    .command('prune')
    .description('what the hourly prune_inbox task does, on demand (the dry run shows the retention only)')
    .option('--apply', 'delete (default: dry run)')
    .addOption(jsonOption())
    .action((o, cmd) => run(cmd, (s) => pruneCommand(s, o)));

  return program;
}

/** Runs one ops command; returns the exit code. Never throws. */
export async function runOps(argv: string[], env: Record<string, string | undefined> = process.env, io = consoleIo): Promise<number> {
  let code: number = ExitCode.ok;
  const now = new Date();
  const run: Run = async (cmd, fn) => {
    const wantsJson = cmd.opts().json === true;
    let config: Config;
    try {
      config = loadConfig({ LOG_LEVEL: 'warn', ...env });
    } catch (err) {
      io.err((err as Error).message);
      code = ExitCode.failed;
      return;
    }
    // Never a database of its own: DATABASE_URL, or the embedded server a running `npm start` keeps.
    const database = await findRunningDatabase(config).catch((err: Error) => err);
    if (database instanceof Error) {
      if (wantsJson) io.out(json({ error: 'no_database', message: database.message }));
      io.err(database.message);
      code = ExitCode.failed;
      return;
    }
    const handle = createDb({ url: database.url, max: 2, applicationName: 'wharf-ops', connectTimeoutMs: config.dbConnectTimeoutMs });
    try {
      code = await fn({ config, sql: handle.sql, io, now, json: wantsJson });
    } catch (err) {
      if (err instanceof UsageError) {
        io.err(`error: ${err.message}\n(add --help for usage)`);
        code = ExitCode.usage;
        return;
      }
      // postgres.js errors carry no credentials; the URL never reaches a message here.
      const message = plain((err as Error).message) ?? 'unknown error';
      if (wantsJson) io.out(json({ error: 'failed', message }));
      io.err(`failed: ${message}`);
      code = ExitCode.failed;
    } finally {
      await handle.close(2);
    }
  };
  const program = buildProgram(io, run, now);
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    // A check an action makes before it connects (a malformed secret, two entities to explain).
    if (err instanceof UsageError) {
      io.err(`error: ${err.message}\n(add --help for usage)`);
      return ExitCode.usage;
    }
    if (!(err instanceof CommanderError)) {
      io.err(`failed: ${plain((err as Error).message)}`);
      return ExitCode.failed;
    }
    // --help, `help`, --version: done. A bare `wharf` (help on stderr) and every parse error: usage.
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return ExitCode.ok;
    if (err.code === 'commander.help') return err.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
    return ExitCode.usage;
  }
  return code;
}
