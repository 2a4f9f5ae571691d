import { parseArgs } from 'node:util';
import { type Config, DAY, loadConfig } from '../config.js';
import { prunePollRuns } from '../poll/poll-runs.js';
import { createDb, type Sql } from '../db/client.js';
import { findRunningDatabase } from '../db/resolve.js';
import { UsageError } from '../errors.js';
import { insertSource, listSources, rotateSourceSecret, setSourceEnabled } from '../intake/sources.js';
import type { PollStream } from '../poll/streams.js';
import { BACKFILL_STREAMS, scheduleBackfill } from './backfill.js';
import { formatAge, mask, parseDuration, parseSince, progressBar, table } from './format.js';
import { pruneInbox } from '../inbox/prune.js';
import { countReplayable, type ReplayFilter, replay } from './replay.js';
import { findStaleLocks, releaseStaleLocks } from '../worker/stale-locks.js';
import { readStatus } from './status.js';
import { ExplainKinds, explainEntity, explanationText, validExplainId } from './explain.js';
import { pollRunsTable, readPollRuns } from './polls.js';

/**
 * `npm run ops -- <command> …`: the on-call commands. Every writing command is a dry run unless `--apply` (sources
 * commands write: they are explicit by nature). Exit codes: 0 done, 1 failed, 2 usage. Secrets and tokens are never
 * printed in full. Commands reach the service's database (DATABASE_URL, else the embedded server of a running `npm start`), never create one and never migrate (`wharf migrate` and the service do).
 */

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

interface Ctx {
  config: Config;
  sql: Sql;
  io: OpsIo;
  args: string[];
  now: Date;
}

const USAGE = `usage: npm run ops -- <command> [options]
  sources add --name <name> --secret whsec_… [--api-token …] [--client …] [--json]
  sources list [--json]
  sources rotate-secret --source <id> --secret whsec_… [--overlap 24h]
  sources disable|enable --source <id>
  status [--json]
  clear-stale-locks [--dead-after 60s] [--apply] [--json]
  replay [--status dead|ignored] [--topic …] [--source …] [--since …] [--until …] [--batch 500] [--wait 120s] [--apply] [--json]
  backfill --source <id> --since <date|7d> [--stream orders|transactions] [--apply]
  polls [--source <id>] [--stream orders|transactions|timelines|returns] [--outcome ok|error|aborted] [--since …] [--limit 50] [--json]
  explain --order <id> | --shipment <id> | --transaction <id> [--json]
  prune [--apply]   (what the hourly prune_inbox task does; dry run counts nothing, it only shows the cutoffs)`;

function parse<T extends Record<string, { type: 'string' | 'boolean'; default?: string | boolean }>>(args: string[], options: T) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false }).values as unknown as {
      [K in keyof T]: T[K]['type'] extends 'string' ? string | undefined : boolean | undefined;
    };
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function required(v: string | undefined, name: string): string {
  if (!v) throw new UsageError(`--${name} is required`);
  return v;
}

function usageValue<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

const json = (v: unknown) => JSON.stringify(v);

async function sourcesCommand(ctx: Ctx): Promise<number> {
  const [sub, ...rest] = ctx.args;
  const { sql, io, config, now } = ctx;
  switch (sub) {
    case 'add': {
      const o = parse(rest, {
        name: { type: 'string' },
        secret: { type: 'string' },
        'api-token': { type: 'string' },
        client: { type: 'string' },
        json: { type: 'boolean' },
      });
      const secret = required(o.secret, 'secret');
      if (!/^whsec_[A-Za-z0-9+/]+={0,2}$/.test(secret)) throw new UsageError('--secret must look like whsec_<base64>');
      const id = await insertSource(sql, {
        name: required(o.name, 'name'),
        secret,
        apiToken: o['api-token'] ?? null,
        clientId: o.client ?? null,
      });
      const url = `${config.publicUrl}/webhooks/shipbob/${id}`;
      io.out(o.json ? json({ id, url }) : `source ${id} added\nwebhook URL: ${url}`);
      return 0;
    }
    case 'list': {
      const o = parse(rest, { json: { type: 'boolean' } });
      const rows = (await listSources(sql, now)).map((s) => ({
        id: s.id,
        name: s.name,
        clientId: s.clientId,
        enabled: s.enabled,
        apiToken: mask(s.apiToken),
        secrets: s.secrets.map((k) => ({ secret: mask(k.secret), expiresAt: k.expiresAt })),
        url: `${config.publicUrl}/webhooks/shipbob/${s.id}`,
      }));
      if (o.json) io.out(json({ sources: rows }));
      else
        io.out(
          table(
            ['id', 'name', 'client', 'enabled', 'api token', 'secrets (valid until)'],
            rows.map((s) => [
              s.id,
              s.name,
              s.clientId,
              s.enabled ? 'yes' : 'no',
              s.apiToken,
              s.secrets.map((k) => `${k.secret}${k.expiresAt ? ` (${new Date(k.expiresAt).toISOString()})` : ''}`).join(', '),
            ]),
          ),
        );
      return 0;
    }
    case 'rotate-secret': {
      const o = parse(rest, { source: { type: 'string' }, secret: { type: 'string' }, overlap: { type: 'string' } });
      const secret = required(o.secret, 'secret');
      if (!/^whsec_[A-Za-z0-9+/]+={0,2}$/.test(secret)) throw new UsageError('--secret must look like whsec_<base64>');
      const overlapMs = o.overlap ? usageValue(() => parseDuration(o.overlap!)) : config.secretRotationOverlapMs;
      const sourceId = required(o.source, 'source');
      if (!(await rotateSourceSecret(sql, { sourceId, secret, overlapMs, now }))) {
        io.err(`no source ${sourceId}`);
        return 1;
      }
      io.out(
        `source ${sourceId}: new secret ${mask(secret)} active; previous secrets valid until ${new Date(now.getTime() + overlapMs).toISOString()}`,
      );
      return 0;
    }
    case 'disable':
    case 'enable': {
      const o = parse(rest, { source: { type: 'string' } });
      const sourceId = required(o.source, 'source');
      if (!(await setSourceEnabled(sql, sourceId, sub === 'enable'))) {
        io.err(`no source ${sourceId}`);
        return 1;
      }
      io.out(`source ${sourceId} ${sub}d (the intake sees it within its cache TTL)`);
      return 0;
    }
    default:
      throw new UsageError(`unknown sources command ${JSON.stringify(sub ?? '')}`);
  }
}

async function statusCommand(ctx: Ctx): Promise<number> {
  const o = parse(ctx.args, { json: { type: 'boolean' } });
  const s = await readStatus(ctx.sql, { staleAfterMs: ctx.config.staleLockAfterMs, timeoutMs: 10_000 });
  if (o.json) {
    ctx.io.out(json({ ...s, rateBudgets: s.rateBudgets }));
    return 0;
  }
  const { io } = ctx;
  io.out(`status at ${s.at.toISOString()}`);
  io.out(
    `inbox: ${s.inbox.pending}${s.inbox.pendingCapped ? '+' : ''} pending (oldest ${formatAge(s.inbox.oldestPendingAgeSeconds)}), ` +
      `${s.inbox.dead} dead, ${s.inbox.ignored} ignored`,
  );
  io.out('\npoll cursors');
  io.out(
    table(
      ['source', 'stream', 'cursor', 'last success', 'catches', 'backfill since', 'polling', 'last error'],
      s.cursors.map((c) => [
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
      s.rateBudgets.map((b) => [b.key, b.tokens.toFixed(1), b.blockedUntil?.toISOString(), b.calls, b.throttled]),
    ),
  );
  io.out('\nworkers');
  io.out(
    table(
      ['worker', 'host', 'pid', 'started', 'last seen', 'alive'],
      s.workers.map((w) => [w.workerId, w.host, w.pid, w.startedAt.toISOString(), `${formatAge(w.ageSeconds)} ago`, w.alive ? 'yes' : 'NO']),
    ),
  );
  io.out('\njobs');
  io.out(table(['task', 'waiting', 'running', 'failed'], s.jobs.map((j) => [j.task, j.waiting, j.locked, j.failed])));
  io.out('\nquarantine, last 24 h');
  io.out(table(['reason', 'count'], s.quarantine24h.map((q) => [q.reason, q.count])));
  io.out('\nconnections');
  io.out(table(['application', 'state', 'count'], s.connections.map((c) => [c.application, c.state, c.count])));
  return 0;
}

async function clearStaleLocksCommand(ctx: Ctx): Promise<number> {
  const o = parse(ctx.args, { 'dead-after': { type: 'string' }, apply: { type: 'boolean' }, json: { type: 'boolean' } });
  const deadAfterMs = o['dead-after'] ? usageValue(() => parseDuration(o['dead-after']!)) : ctx.config.staleLockAfterMs;
  const locks = await findStaleLocks(ctx.sql, { deadAfterMs });
  const released = o.apply ? await releaseStaleLocks(ctx.sql, { deadAfterMs, releasedBy: 'ops:clear-stale-locks' }) : [];
  if (o.json) {
    ctx.io.out(json({ deadAfterMs, applied: !!o.apply, locks, released }));
    return 0;
  }
  ctx.io.out(`locks held by workers without a heartbeat in the last ${formatAge(deadAfterMs / 1000)}: ${locks.length}`);
  if (locks.length)
    ctx.io.out(
      table(
        ['kind', 'job/queue', 'task', 'age', 'worker', 'last heartbeat'],
        locks.map((l) => [l.kind, l.id, l.task, formatAge(l.ageSeconds), l.workerId, l.lastSeenAt?.toISOString() ?? 'never']),
      ),
    );
  if (!o.apply) {
    if (locks.length) ctx.io.out('dry run: nothing released (add --apply)');
    return 0;
  }
  for (const r of released)
    ctx.io.out(`released worker ${r.workerId}: ${r.jobIds.length} job(s), ${r.queueNames.length} queue(s) (audit row written)`);
  if (released.length === 0) ctx.io.out('nothing to release');
  return 0;
}

async function replayCommand(ctx: Ctx): Promise<number> {
  const o = parse(ctx.args, {
    status: { type: 'string', default: 'dead' },
    topic: { type: 'string' },
    source: { type: 'string' },
    since: { type: 'string' },
    until: { type: 'string' },
    batch: { type: 'string', default: '500' },
    wait: { type: 'string', default: '120s' },
    apply: { type: 'boolean' },
    json: { type: 'boolean' },
  });
  if (o.status !== 'dead' && o.status !== 'ignored') throw new UsageError('--status must be dead or ignored');
  const filter: ReplayFilter = {
    status: o.status,
    topic: o.topic,
    sourceId: o.source,
    since: o.since ? usageValue(() => parseSince(o.since!, ctx.now)) : undefined,
    until: o.until ? usageValue(() => parseSince(o.until!, ctx.now)) : undefined,
  };
  const batchSize = usageValue(() => Number.parseInt(o.batch ?? '500', 10));
  if (!(batchSize > 0 && batchSize <= 10_000)) throw new UsageError('--batch must be in [1, 10000]');
  const waitMs = usageValue(() => parseDuration(o.wait ?? '120s'));
  const byTopic = await countReplayable(ctx.sql, filter);
  const total = byTopic.reduce((n, t) => n + t.count, 0);
  if (!o.json) {
    ctx.io.out(`${total} ${filter.status} event(s) match`);
    if (total) ctx.io.out(table(['topic', 'count'], byTopic.map((t) => [t.topic ?? '(none)', t.count])));
  }
  if (!o.apply || total === 0) {
    if (o.json) ctx.io.out(json({ matched: total, byTopic, applied: false }));
    else if (total) ctx.io.out('dry run: nothing requeued (add --apply)');
    return 0;
  }
  const result = await replay(ctx.sql, filter, {
    batchSize,
    total,
    waitMs,
    onProgress: (p) => ctx.io.progress(`requeued ${progressBar(p.requeued, p.total)}`),
  });
  if (process.stderr.isTTY) ctx.io.err('');
  if (o.json) ctx.io.out(json({ matched: total, byTopic, applied: true, requeued: result.ids.length, outcome: result.outcome, settled: result.settled }));
  else {
    ctx.io.out(`requeued ${result.ids.length} event(s) for replay; outcome:`);
    ctx.io.out(table(['status', 'count'], Object.entries(result.outcome).map(([k, v]) => [k, v])));
    if (!result.settled)
      ctx.io.out(`still pending after ${formatAge(waitMs / 1000)}: is a worker running? (ops status); they stay queued`);
  }
  return result.settled ? 0 : 1;
}

async function backfillCommand(ctx: Ctx): Promise<number> {
  const o = parse(ctx.args, { source: { type: 'string' }, since: { type: 'string' }, stream: { type: 'string' }, apply: { type: 'boolean' } });
  const sourceId = required(o.source, 'source');
  const since = usageValue(() => parseSince(required(o.since, 'since'), ctx.now));
  if (o.stream && !(BACKFILL_STREAMS as readonly string[]).includes(o.stream))
    throw new UsageError(`--stream must be one of ${BACKFILL_STREAMS.join(', ')}`);
  const streams: readonly PollStream[] = o.stream ? [o.stream as PollStream] : BACKFILL_STREAMS;
  if (!o.apply) {
    ctx.io.out(`would move the ${streams.join(', ')} cursor(s) of ${sourceId} back to ${since.toISOString()} and queue a poll (add --apply)`);
    return 0;
  }
  const scheduled = await scheduleBackfill(ctx.sql, { sourceId, since, streams });
  if (scheduled.length === 0) {
    ctx.io.err(`no source ${sourceId}`);
    return 1;
  }
  for (const s of scheduled)
    ctx.io.out(`${sourceId}/${s.stream}: polling from ${s.cursorTime.toISOString()} (job ${s.jobId}); progress: ops status`);
  return 0;
}

async function pruneCommand(ctx: Ctx): Promise<number> {
  const o = parse(ctx.args, { apply: { type: 'boolean' } });
  const { inboxRetentionDays, deadRetentionDays } = ctx.config;
  ctx.io.out(
    `retention: processed inbox rows and quarantine > ${inboxRetentionDays} d, dead/ignored > ${deadRetentionDays} d, poll runs > ${ctx.config.pollRunRetentionDays} d (INBOX_RETENTION_DAYS, DEAD_RETENTION_DAYS, POLL_RUN_RETENTION_DAYS)`,
  );
  if (!o.apply) {
    ctx.io.out('dry run: nothing deleted (add --apply)');
    return 0;
  }
  const r = await pruneInbox(ctx.sql, {
    processedDays: inboxRetentionDays,
    deadDays: deadRetentionDays,
    batchSize: 5000,
    now: ctx.now,
    onBatch: (p) => ctx.io.progress(`deleted ${p.processed + p.deadOrIgnored + p.quarantine} row(s) in ${p.batches} batch(es)`),
  });
  const pollRuns = await prunePollRuns(ctx.sql, {
    before: new Date(ctx.now.getTime() - ctx.config.pollRunRetentionDays * DAY),
    batchSize: 5000,
  });
  ctx.io.out(
    `deleted ${r.processed} processed, ${r.deadOrIgnored} dead/ignored inbox rows, ${r.quarantine} quarantine rows, ${pollRuns} poll runs`,
  );
  return 0;
}

async function pollsCommand(ctx: Ctx): Promise<number> {
  const o = parse(ctx.args, {
    source: { type: 'string' },
    stream: { type: 'string' },
    outcome: { type: 'string' },
    since: { type: 'string' },
    limit: { type: 'string', default: '50' },
    json: { type: 'boolean' },
  });
  const limit = Number(o.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 10000) throw new UsageError('--limit must be an integer in [1, 10000]');
  const runs = await readPollRuns(ctx.sql, {
    sourceId: o.source,
    stream: o.stream,
    outcome: o.outcome,
    since: o.since ? usageValue(() => parseSince(o.since!, ctx.now)) : undefined,
    limit,
  });
  ctx.io.out(o.json ? json({ runs }) : runs.length ? pollRunsTable(runs) : 'no poll runs recorded');
  return 0;
}

async function explainCommand(ctx: Ctx): Promise<number> {
  const o = parse(ctx.args, { order: { type: 'string' }, shipment: { type: 'string' }, transaction: { type: 'string' }, json: { type: 'boolean' } });
  const given = ExplainKinds.filter((k) => o[k] !== undefined);
  if (given.length !== 1) throw new UsageError('give exactly one of --order ID, --shipment ID, --transaction ID');
  const kind = given[0];
  const id = o[kind]!.trim();
  if (!validExplainId(kind, id)) throw new UsageError(`--${kind} must be ${kind === 'transaction' ? 'a transaction id' : 'a positive integer id'}`);
  const e = await explainEntity(ctx.sql, { kind, id });
  ctx.io.out(o.json ? json(e) : explanationText(e));
  return 0;
}

const COMMANDS: Record<string, (ctx: Ctx) => Promise<number>> = {
  polls: pollsCommand,
  explain: explainCommand,
  sources: sourcesCommand,
  status: statusCommand,
  'clear-stale-locks': clearStaleLocksCommand,
  replay: replayCommand,
  backfill: backfillCommand,
  prune: pruneCommand,
};

/** Runs one ops command; returns the exit code. Never throws. */
export async function runOps(argv: string[], env: Record<string, string | undefined> = process.env, io = consoleIo): Promise<number> {
  const [command, ...args] = argv;
  const run = command ? COMMANDS[command] : undefined;
  if (!run) {
    io.err(USAGE);
    return command === 'help' || command === '--help' ? 0 : 2;
  }
  let config: Config;
  try {
    config = loadConfig({ LOG_LEVEL: 'warn', ...env });
  } catch (err) {
    io.err((err as Error).message);
    return 1;
  }
  // Never a database of its own: DATABASE_URL, or the embedded server a running `npm start` keeps.
  const database = await findRunningDatabase(config).catch((err: Error) => err);
  if (database instanceof Error) {
    io.err(database.message);
    return 1;
  }
  const handle = createDb({ url: database.url, max: 2, applicationName: 'wharf-ops', connectTimeoutMs: config.dbConnectTimeoutMs });
  try {
    return await run({ config, sql: handle.sql, io, args, now: new Date() });
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`${err.message}\n${USAGE}`);
      return 2;
    }
    // postgres.js errors carry no credentials; the URL never reaches a message here.
    io.err(`failed: ${(err as Error).message}`);
    return 1;
  } finally {
    await handle.close(2);
  }
}
