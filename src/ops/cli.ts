import { readFile } from 'node:fs/promises';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { type Config, DAY, keyRingOf, loadConfig } from '../config.js';
import { createDb, type Sql } from '../db/client.js';
import { findRunningDatabase } from '../db/resolve.js';
import { UsageError } from '../errors.js';
import { pruneInbox } from '../inbox/prune.js';
import { countSecretsByKey, reencryptSecrets } from '../intake/secrets-at-rest.js';
import { generateSecret, secretProblem } from '../intake/signature.js';
import {
  insertSource,
  listSources,
  rotateSourceSecret,
  type SourceChanges,
  setSourceEnabled,
  updateSource,
} from '../intake/sources.js';
import type { KeyRing } from '../key-ring.js';
import { prunePollRuns } from '../poll/poll-runs.js';
import { findPollToken, providerClientFor } from '../poll/run-stream.js';
import {
  ensureSubscription,
  listSubscribableSources,
  saveSubscriptionState,
  WHARF_TOPICS,
  webhookUrlFor,
} from '../poll/subscriptions.js';
import { openApiToken, openWebhookSecret } from '../secrets/cipher.js';
import { withKeyRing } from '../secrets/key-file.js';
import { PollRunOutcomes } from '../poll/poll-runs.js';
import { PollStreams, type PollStream } from '../poll/streams.js';
import { findStaleLocks, releaseStaleLocks } from '../worker/stale-locks.js';
import { BACKFILL_STREAMS, scheduleBackfill, waitForBackfill } from './backfill.js';
import { ExplainKinds, explainEntity, explanationText, validExplainId } from './explain.js';
import { DATE_FORMS, DURATION_FORMS, formatAge, mask, parseDuration, parseSince, plain, progressBar, table } from './format.js';
import { pollRunsTable, readPollRuns } from './polls.js';
import { countReplayable, type ReplayFilter, replay } from './replay.js';
import { readStatus } from './status.js';
import {
  fetchInventory,
  listChannelClients,
  listInventoryItems,
  removeChannelClient,
  removeInventoryItem,
  setChannelClient,
  storeInventoryItems,
} from './tenancy.js';

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
  /** Everything on standard input (secrets and tokens come this way, or from a file or a variable: never argv). */
  readStdin(): Promise<string>;
}

export const consoleIo: OpsIo = {
  out: (t) => process.stdout.write(`${t}\n`),
  err: (t) => process.stderr.write(`${t}\n`),
  progress: (t) => process.stderr.write(process.stderr.isTTY ? `\r${t}` : `${t}\n`),
  async readStdin() {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  },
};

interface Session {
  config: Config;
  keys: KeyRing;
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
// ─── secrets and tokens: never from argv (every user of the machine sees it) ───

const DEFAULT_SECRET_ENV = { secret: 'WHARF_SOURCE_SECRET', apiToken: 'WHARF_API_TOKEN' } as const;
type SecretName = keyof typeof DEFAULT_SECRET_ENV;
const flag = (name: SecretName) => (name === 'secret' ? 'secret' : 'api-token');

/** The options that carry a secret: `--x-stdin`, `--x-file <path|->`, `--x-env <VAR>`; `--x <value>` only to refuse it. */
function secretOptions(cmd: Command, name: SecretName, what: string): Command {
  const f = flag(name);
  return cmd
    .addOption(new Option(`--${f} <value>`, 'refused: argv is visible to every user of the machine').hideHelp())
    .option(`--${f}-stdin`, `read ${what} from standard input`)
    .option(`--${f}-file <path>`, `read ${what} from a file (- for standard input)`)
    .option(`--${f}-env <VAR>`, `read ${what} from an environment variable (default ${DEFAULT_SECRET_ENV[name]})`);
}

/**
 * A secret or token from exactly one of its options, else from its default environment variable (undefined when none
 * is given). Stdin and files lose one trailing newline; the value is never echoed, in errors either.
 */
async function secretInput(
  io: OpsIo,
  env: Record<string, string | undefined>,
  o: Record<string, unknown>,
  name: SecretName,
): Promise<string | undefined> {
  const f = flag(name);
  if (typeof o[name] === 'string')
    throw new UsageError(
      `--${f} <value> is not accepted (argv is visible to every user of the machine): use --${f}-stdin, ` +
        `--${f}-file <path> or --${f}-env <VAR> (or ${DEFAULT_SECRET_ENV[name]})`,
    );
  const keys = { stdin: `${name}Stdin`, file: `${name}File`, env: `${name}Env` };
  const given = (['stdin', 'file', 'env'] as const).filter((k) => o[keys[k]] !== undefined && o[keys[k]] !== false);
  if (given.length > 1) throw new UsageError(`give the ${f} one way only (${given.map((g) => `--${f}-${g}`).join(', ')})`);
  let value: string | undefined;
  const file = o[keys.file] === undefined ? undefined : String(o[keys.file]);
  if (o[keys.stdin] || file === '-') value = (await io.readStdin()).replace(/\r?\n$/, '');
  else if (file !== undefined) {
    value = (
      await readFile(file, 'utf8').catch(() => {
        throw new UsageError(`--${f}-file: cannot read ${file}`);
      })
    ).replace(/\r?\n$/, '');
  } else if (o[keys.env] !== undefined) {
    const variable = String(o[keys.env]);
    value = env[variable];
    if (value === undefined) throw new UsageError(`--${f}-env: ${variable} is not set`);
  } else {
    value = env[DEFAULT_SECRET_ENV[name]];
    if (value === undefined || value === '') return undefined;
  }
  if (value === '' || /\s/.test(value)) throw new UsageError(`--${f}: empty, or contains white space`);
  return value;
}

/** The given webhook secret, checked (Standard Webhooks: whsec_ + base64 of 24..64 bytes), or a generated one. */
async function webhookSecretInput(
  io: OpsIo,
  env: Record<string, string | undefined>,
  o: Record<string, unknown>,
): Promise<{ secret: string; generated: boolean }> {
  const given = await secretInput(io, env, o, 'secret');
  if (given === undefined) return { secret: generateSecret(), generated: true };
  const problem = secretProblem(given);
  if (problem) throw new UsageError(`the secret is refused: ${problem}`);
  return { secret: given, generated: false };
}

/** A stored secret or token, decrypted and masked; `(unreadable)` when it does not decrypt (no value either way). */
function maskStored(open: () => string): string | null {
  try {
    return mask(open());
  } catch {
    return '(unreadable)';
  }
}

const positiveId = (v: string) =>
  usage(() => {
    const n = Number(v);
    if (!/^\d{1,16}$/.test(v) || !Number.isSafeInteger(n) || n <= 0) throw new Error('must be a positive integer');
    return n;
  });

const explainId = (kind: (typeof ExplainKinds)[number]) => (v: string) =>
  usage(() => {
    const id = v.trim();
    if (!validExplainId(kind, id)) throw new Error(kind === 'transaction' ? 'must be a transaction id' : 'must be a positive integer id');
    return id;
  });

const jsonOption = () => new Option('--json', 'print exactly one JSON document on stdout (logs and progress on stderr)');

// ─── commands ───

async function sourcesAdd(
  s: Session,
  o: { name: string; client?: string; subscribe: boolean },
  secret: { secret: string; generated: boolean },
  apiToken: string | null,
) {
  const id = await insertSource(s.sql, s.keys, { name: o.name, secret: secret.secret, apiToken, clientId: o.client ?? null });
  const url = webhookUrlFor(s.config.publicUrl, id);
  // With a token, wharf creates the provider's subscription itself (a failure is reported; the source stays).
  const subscription = apiToken && o.subscribe ? await subscribeSource(s, id) : null;
  // A generated secret is printed this once (it is never shown again: the subscription carries it).
  if (s.json) s.io.out(json({ id, url, ...(secret.generated ? { secret: secret.secret } : {}), subscription }));
  else {
    s.io.out(
      `source ${id} added\nwebhook URL: ${url}${secret.generated ? `\nsecret (shown once; the provider's subscription must use it): ${secret.secret}` : ''}`,
    );
    if (subscription && 'error' in subscription) s.io.err(`${subscription.error}; retry with: sources subscribe --source ${id}`);
    else if (subscription) s.io.out(describeSubscription(subscription));
    else s.io.out('no subscription created: run sources subscribe --source <id> with a token, or use the dashboard (docs/intake.md)');
  }
  return ExitCode.ok;
}

type SubscribeOutcome = { state: string; created: string | null; missingTopics: string[] } | { error: string };

/** Creates the source's provider subscription unless one already covers every topic; stores the state. */
async function subscribeSource(s: Session, sourceId: string): Promise<SubscribeOutcome> {
  const [src] = await listSubscribableSources(s.sql, s.keys, { sourceId });
  if (!src) return { error: `source ${sourceId} is unknown, disabled or has no API token` };
  if (!src.secret) return { error: `source ${sourceId} has no valid secret` };
  try {
    const client = providerClientFor(s.config, s.sql, src.apiToken);
    const r = await ensureSubscription(client, { url: webhookUrlFor(s.config.publicUrl, src.id), secret: src.secret, description: `wharf ${src.id}` });
    await saveSubscriptionState(s.sql, { sourceId: src.id, check: r });
    return { state: r.state, created: r.created, missingTopics: r.missingTopics };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    await saveSubscriptionState(s.sql, { sourceId: src.id, check: null, error: message });
    return { error: `subscribing ${sourceId} failed: ${plain(message)}` };
  }
}

function describeSubscription(r: SubscribeOutcome): string {
  if ('error' in r) return r.error;
  return r.created ? `provider subscription ${r.created} created (${WHARF_TOPICS.length} topics)` : 'provider subscription already covers every topic';
}

async function sourcesSubscribe(s: Session, o: { source: string }) {
  const r = await subscribeSource(s, o.source);
  s.io.out(s.json ? json(r) : describeSubscription(r));
  return 'error' in r ? ExitCode.failed : ExitCode.ok;
}

async function sourcesList(s: Session) {
  const rows = (await listSources(s.sql, s.now)).map((r) => ({
    id: r.id,
    name: r.name,
    clientId: r.clientId,
    enabled: r.enabled,
    apiToken: r.apiToken === null ? null : maskStored(() => openApiToken(s.keys, r.id, r.apiToken!)),
    secrets: r.secrets.map((k) => ({ secret: maskStored(() => openWebhookSecret(s.keys, r.id, k.secret)), expiresAt: k.expiresAt })),
    url: webhookUrlFor(s.config.publicUrl, r.id),
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

async function sourcesUpdate(s: Session, sourceId: string, changes: SourceChanges) {
  if (!(await updateSource(s.sql, s.keys, sourceId, changes))) return notFound(s, sourceId);
  const shown = {
    ...changes,
    ...(changes.apiToken !== undefined ? { apiToken: changes.apiToken === null ? null : mask(changes.apiToken) } : {}),
  };
  if (s.json) s.io.out(json({ id: sourceId, changed: shown }));
  else
    s.io.out(
      `source ${sourceId} updated: ${Object.entries(shown)
        .map(([k, v]) => `${k} = ${v === null ? '(none)' : String(v)}`)
        .join(', ')} (the intake sees it within its cache TTL)`,
    );
  return ExitCode.ok;
}

async function sourcesRotate(s: Session, o: { source: string; overlap?: number }, secret: { secret: string; generated: boolean }) {
  const overlapMs = o.overlap ?? s.config.secretRotationOverlapMs;
  if (!(await rotateSourceSecret(s.sql, s.keys, { sourceId: o.source, secret: secret.secret, overlapMs, now: s.now })))
    return notFound(s, o.source);
  const until = new Date(s.now.getTime() + overlapMs).toISOString();
  const shown = secret.generated ? secret.secret : mask(secret.secret);
  s.io.out(
    s.json
      ? json({ sourceId: o.source, secret: shown, generated: secret.generated, previousValidUntil: until })
      : `source ${o.source}: new secret ${secret.generated ? `${shown} (generated, shown once)` : shown} active; previous secrets valid until ${until}`,
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

/** `keys status` (stored values per key id) and `keys rotate` (re-encrypt under the first key; dry run by default). */
async function keysCommand(s: Session, sub: 'status' | 'rotate', o: { batch?: number; apply?: boolean }) {
  const { sql, io, keys } = s;
  const counts = await countSecretsByKey(sql);
  const stale = counts.filter((c) => c.keyId !== keys.current.id).reduce((n, c) => n + c.count, 0);
  const withState = counts.map((c) => ({
    ...c,
    state: c.keyId === keys.current.id ? 'current' : keys.byId.has(c.keyId) ? 'older key' : c.keyId === 'plain' ? 'not encrypted' : 'KEY MISSING',
  }));
  const apply = sub === 'rotate' && !!o.apply;
  if (!s.json) {
    io.out(`current key: ${keys.current.id}; keys held: ${[...keys.byId.keys()].join(', ')}`);
    io.out(table(['table', 'key', 'values', 'state'], withState.map((c) => [c.table, c.keyId, c.count, c.state])));
  }
  if (sub === 'status' || !apply || stale === 0) {
    if (s.json) io.out(json({ currentKey: keys.current.id, values: withState, toRotate: stale, applied: false }));
    else if (sub === 'rotate')
      io.out(stale === 0 ? 'every value is under the current key' : `dry run: ${stale} value(s) would be re-encrypted under ${keys.current.id} (add --apply)`);
    return ExitCode.ok;
  }
  const r = await reencryptSecrets(sql, keys, {
    which: 'not-current',
    batchSize: o.batch ?? 500,
    onProgress: (p) => io.progress(`re-encrypted ${progressBar(p.done, p.total)}`),
  });
  if (process.stderr.isTTY) io.err('');
  if (s.json) io.out(json({ currentKey: keys.current.id, toRotate: stale, applied: true, written: r.written, unreadable: r.unreadable }));
  else {
    io.out(`re-encrypted ${r.written} value(s) under ${keys.current.id}`);
    for (const u of r.unreadable) io.out(`unreadable: ${u.table} row ${u.id}: ${u.reason}`);
    if (r.unreadable.length) io.out('add the key they were encrypted under to WHARF_ENCRYPTION_KEY (after the current one) and run again');
  }
  return r.unreadable.length === 0 ? ExitCode.ok : ExitCode.failed;
}

async function channelsList(s: Session, o: { source?: string }) {
  const rows = await listChannelClients(s.sql, o.source);
  s.io.out(s.json ? json({ channels: rows }) : table(['source', 'channel', 'client'], rows.map((r) => [r.sourceId, r.channelId, r.clientId])));
  return ExitCode.ok;
}

async function channelsSet(s: Session, o: { source: string; channel: number; client: string }) {
  const row = { sourceId: o.source, channelId: o.channel, clientId: o.client };
  if (!(await setChannelClient(s.sql, row))) return notFound(s, o.source);
  s.io.out(
    s.json
      ? json({ set: row })
      : `source ${row.sourceId}: channel ${row.channelId} → client ${row.clientId} (orders and shipments written from now on; stored rows keep their client)`,
  );
  return ExitCode.ok;
}

async function channelsRemove(s: Session, o: { source: string; channel: number }) {
  const p = { sourceId: o.source, channelId: o.channel };
  if (!(await removeChannelClient(s.sql, p))) {
    if (s.json) s.io.out(json({ error: 'not_found', ...p }));
    s.io.err(`source ${p.sourceId} has no mapping for channel ${p.channelId}`);
    return ExitCode.failed;
  }
  s.io.out(s.json ? json({ removed: p }) : `source ${p.sourceId}: channel ${p.channelId} mapping removed`);
  return ExitCode.ok;
}

async function inventoryList(s: Session, o: { source?: string }) {
  const rows = await listInventoryItems(s.sql, o.source);
  s.io.out(
    s.json ? json({ items: rows }) : table(['source', 'item', 'client', 'sku', 'name'], rows.map((r) => [r.sourceId, r.id, r.clientId, r.sku, r.name])),
  );
  return ExitCode.ok;
}

async function inventorySet(s: Session, o: { source: string; item: number; client: string; name?: string; sku?: string }) {
  const [known] = await s.sql`select 1 from sources where id = ${o.source}`;
  if (!known) return notFound(s, o.source);
  const w = await storeInventoryItems(s.sql, {
    sourceId: o.source,
    apply: true,
    items: [{ id: o.item, clientId: o.client, name: o.name ?? null, sku: o.sku ?? null }],
  });
  if (w.refused.length) {
    if (s.json) s.io.out(json({ error: 'owned_by_another_source', item: o.item }));
    s.io.err(`inventory item ${o.item} belongs to another source: left alone`);
    return ExitCode.failed;
  }
  const { attributed } = w;
  s.io.out(
    s.json
      ? json({ sourceId: o.source, item: o.item, clientId: o.client, unchanged: w.unchanged > 0, attributed })
      : `source ${o.source}: item ${o.item} → client ${o.client}${w.unchanged ? ' (unchanged)' : ''}; ${attributed} storage charge(s) attributed`,
  );
  return ExitCode.ok;
}

async function inventoryRemove(s: Session, o: { source: string; item: number }) {
  const p = { sourceId: o.source, id: o.item };
  if (!(await removeInventoryItem(s.sql, p))) {
    if (s.json) s.io.out(json({ error: 'not_found', ...p }));
    s.io.err(`source ${p.sourceId} has no inventory item ${p.id}`);
    return ExitCode.failed;
  }
  s.io.out(s.json ? json({ removed: p }) : `source ${p.sourceId}: inventory item ${p.id} removed (charges already attributed keep their client)`);
  return ExitCode.ok;
}

async function inventoryLoad(s: Session, o: { source: string; client?: string; apply?: boolean }) {
  const { sql, io } = s;
  const [src] = await sql<{ clientId: string | null }[]>`select client_id as "clientId" from sources where id = ${o.source}`;
  if (!src) return notFound(s, o.source);
  const clientId = o.client ?? src.clientId;
  if (!clientId) throw new UsageError(`source ${o.source} has no client: give --client`);
  const token = await findPollToken(sql, s.keys, o.source);
  if (token === null) {
    if (s.json) io.out(json({ error: 'no_api_token', sourceId: o.source }));
    io.err(`source ${o.source} has no API token (or is disabled): sources update --source ${o.source} --api-token-stdin`);
    return ExitCode.failed;
  }
  const fetched = await fetchInventory(providerClientFor(s.config, sql, token), {
    onPage: (p) => io.progress(`read ${p.items} item(s) in ${p.pages} page(s)`),
  });
  if (process.stderr.isTTY) io.err('');
  const items = fetched.items.map((i) => ({ ...i, clientId }));
  const { attributed, ...w } = await storeInventoryItems(sql, { sourceId: o.source, items, apply: !!o.apply });
  const report = { source: o.source, clientId, read: fetched.items.length, skipped: fetched.skipped, pages: fetched.pages, ...w, applied: !!o.apply, attributed };
  if (s.json) io.out(json(report));
  else {
    io.out(
      `${fetched.items.length} item(s) read from the provider in ${fetched.pages} page(s)${fetched.skipped ? `, ${fetched.skipped} without a valid id skipped` : ''}`,
    );
    io.out(
      `${o.apply ? 'stored' : 'would store'} ${w.written} for client ${clientId}; ${w.unchanged} already as they are; ${w.refused.length} owned by another source (left alone${w.refused.length ? `: ${w.refused.slice(0, 10).join(', ')}${w.refused.length > 10 ? ', …' : ''}` : ''})`,
    );
    if (o.apply) io.out(`${attributed} storage charge(s) attributed`);
    else io.out('dry run: nothing stored (add --apply)');
  }
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
  io.out("\nreconciliation against the provider's counts (RECONCILE_DAYS closed days; docs/polling.md)");
  io.out(
    table(
      ['source', 'stream', 'newest reconciled (window end)', 'windows short', 'first short (provider/wharf)'],
      st.reconcile.map((r) => [
        r.sourceId,
        r.stream,
        r.newestReconciled?.toISOString() ?? 'never',
        r.short.length,
        r.short[0] ? `${r.short[0].windowStart.toISOString()} (${r.short[0].providerCount ?? '?'}/${r.short[0].wharfCount})` : '',
      ]),
    ),
  );
  io.out('\nwebhook trust: changes only polling found, catches / (webhook events + catches) (docs/polling.md)');
  const pct = (share: number | null) => (share === null ? '-' : `${(share * 100).toFixed(2)}%`);
  io.out(
    table(
      ['source', 'day (UTC)', 'day share', 'recent share', 'recent events', 'recent catches', 'poll interval', 'why', 'budget floor'],
      st.trust.map((r) => [
        r.sourceName,
        r.days[0]?.day ?? '-',
        pct(r.days[0]?.share ?? null),
        pct(r.recent.share),
        r.recent.events,
        r.recent.catches,
        r.interval ? `${formatAge(r.interval.ms / 1000)}` : r.polled ? `${formatAge(s.config.pollIntervalMs / 1000)} (base, not chosen yet)` : 'not polled',
        r.interval?.reason,
        r.interval ? formatAge(r.interval.budgetFloorMs / 1000) : undefined,
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
  io.out('\nquarantine (refusals of known sources), last 24 h');
  io.out(table(['reason', 'count'], st.quarantine24h.map((q) => [q.reason, q.count])));
  io.out(`duplicates with a changed body, last 24 h: ${st.changedBodies24h} (acknowledged, never applied: the first body stays)`);
  io.out('\npayload drift (fields the normaliser does not know or cannot read; docs/provider.md)');
  io.out(
    table(
      ['topic', 'field', 'problem', 'count', 'first seen', 'last seen'],
      st.drift.map((d) => [d.topic, d.field, d.problem, d.count, d.firstSeenAt.toISOString(), d.lastSeenAt.toISOString()]),
    ),
  );
  io.out('\nfetch by id (deliveries that named a resource without standing for it)');
  io.out(table(['source', 'waiting', 'failing', 'oldest'], st.resolves.map((r) => [r.sourceId, r.waiting, r.failing, formatAge(r.oldestAgeSeconds)])));
  io.out('\nwebhook subscriptions (checked against GET /webhook)');
  io.out(
    table(
      ['source', 'state', 'missing topics', 'checked', 'last error'],
      st.subscriptions.map((w) => [w.sourceName, w.state ?? 'never checked', w.missingTopics.join(', '), w.checkedAt?.toISOString(), w.lastError]),
    ),
  );
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
  const { inboxRetentionDays, deadRetentionDays, quarantineRetentionDays, pollRunRetentionDays } = s.config;
  const retention = { processedDays: inboxRetentionDays, deadDays: deadRetentionDays, quarantineDays: quarantineRetentionDays, pollRunDays: pollRunRetentionDays };
  if (!s.json)
    s.io.out(
      `retention: processed inbox rows > ${inboxRetentionDays} d, dead/ignored > ${deadRetentionDays} d, quarantine > ${quarantineRetentionDays} d, poll runs > ${pollRunRetentionDays} d (INBOX_RETENTION_DAYS, DEAD_RETENTION_DAYS, QUARANTINE_RETENTION_DAYS, POLL_RUN_RETENTION_DAYS)`,
    );
  if (!o.apply) {
    if (s.json) s.io.out(json({ retention, applied: false }));
    else s.io.out('dry run: nothing deleted (add --apply)');
    return ExitCode.ok;
  }
  const r = await pruneInbox(s.sql, {
    processedDays: inboxRetentionDays,
    deadDays: deadRetentionDays,
    quarantineDays: quarantineRetentionDays,
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
export function buildProgram(io: OpsIo, run: Run, now: Date, env: Record<string, string | undefined> = {}): Command {
  const program = new Command('wharf')
    .description('Operate wharf: sources, status, poll runs, explain an entity, stale locks, replay, backfill, prune')
    .showHelpAfterError('(add --help for usage)')
    .configureOutput({ writeOut: (t) => io.out(t.replace(/\n$/, '')), writeErr: (t) => io.err(t.replace(/\n$/, '')) })
    .exitOverride()
    .addHelpText('after', EXIT_CODES_HELP);

  const sources = program
    .command('sources')
    .description('webhook sources (provider accounts): add, subscribe, list, update, rotate a secret, enable, disable');
  secretOptions(secretOptions(sources.command('add'), 'secret', 'the webhook secret'), 'apiToken', 'the API token')
    .description('register a source; prints its id and webhook URL (PUBLIC_URL/webhooks/shipbob/<id>); without a secret one is generated and shown once')
    .requiredOption('--name <name>', 'a unique name')
    .option('--client <id>', 'the client (merchant) its records belong to')
    .option('--no-subscribe', 'do not create the provider’s webhook subscription (created when an API token is given)')
    .addOption(jsonOption())
    .action(async (o, cmd) => {
      // Secrets are read and checked before any connection (and never echoed).
      const secret = await webhookSecretInput(io, env, o);
      const token = (await secretInput(io, env, o, 'apiToken')) ?? null;
      return run(cmd, (s) => sourcesAdd(s, o, secret, token));
    });
  sources
    .command('subscribe')
    .description('create the provider’s webhook subscription unless one covers every topic')
    .requiredOption('--source <id>', 'the source')
    .addOption(jsonOption())
    .action((o, cmd) => run(cmd, (s) => sourcesSubscribe(s, o)));
  sources
    .command('list')
    .description('sources with masked secrets (and when an overlapping old one ends), masked tokens, webhook URLs')
    .addOption(jsonOption())
    .action((_o, cmd) => run(cmd, (s) => sourcesList(s)));
  secretOptions(sources.command('update'), 'apiToken', 'the new API token')
    .description('change a source’s name, client, API token or state')
    .requiredOption('--source <id>', 'the source')
    .option('--name <name>', 'a new unique name')
    .option('--client <id>', 'a new client')
    .option('--no-client', 'remove its client')
    .option('--no-api-token', 'remove its API token (webhook-only: not polled)')
    .option('--enable', 'accept its webhooks')
    .option('--disable', 'refuse its webhooks (404) and stop polling it')
    .addOption(jsonOption())
    .action(async (o, cmd) => {
      if (o.enable && o.disable) throw new UsageError('--enable and --disable together');
      const token = await secretInput(io, env, o, 'apiToken');
      if (token !== undefined && o.apiToken === false) throw new UsageError('an --api-token-… and --no-api-token together');
      if (o.name !== undefined && o.name.trim() === '') throw new UsageError('--name is empty');
      const changes: SourceChanges = {
        ...(o.name !== undefined ? { name: o.name } : {}),
        ...(typeof o.client === 'string' ? { clientId: o.client } : o.client === false ? { clientId: null } : {}),
        ...(token !== undefined ? { apiToken: token } : o.apiToken === false ? { apiToken: null } : {}),
        ...(o.enable ? { enabled: true } : o.disable ? { enabled: false } : {}),
      };
      if (Object.keys(changes).length === 0) throw new UsageError('nothing to change (--name, --client, --api-token-…, --enable, …)');
      return run(cmd, (s) => sourcesUpdate(s, o.source, changes));
    });
  secretOptions(sources.command('rotate-secret'), 'secret', 'the new webhook secret')
    .description('add a new secret (generated and shown once when none is given); every previous one stays valid for the overlap')
    .requiredOption('--source <id>', 'the source')
    .option('--overlap <duration>', 'how long previous secrets stay valid (default SECRET_ROTATION_OVERLAP_MS, 24h)', duration)
    .addOption(jsonOption())
    .action(async (o, cmd) => {
      const secret = await webhookSecretInput(io, env, o);
      return run(cmd, (s) => sourcesRotate(s, o, secret));
    });
  for (const enabled of [true, false])
    sources
      .command(enabled ? 'enable' : 'disable')
      .description(enabled ? 'accept the source’s webhooks again' : 'refuse the source’s webhooks (404) and stop polling it')
      .requiredOption('--source <id>', 'the source')
      .addOption(jsonOption())
      .action((o, cmd) => run(cmd, (s) => sourcesEnable(s, o, enabled)));

  const keys = program.command('keys').description('the encryption keys of secrets at rest (WHARF_ENCRYPTION_KEY)');
  keys
    .command('status')
    .description('stored secrets and tokens per key id')
    .addOption(jsonOption())
    .action((o, cmd) => run(cmd, (s) => keysCommand(s, 'status', o)));
  keys
    .command('rotate')
    .description('re-encrypt every secret and token under the first key (dry run unless --apply)')
    .option('--batch <n>', 'rows per statement', integer(1, 10_000), 500)
    .option('--apply', 're-encrypt (default: dry run)')
    .addOption(jsonOption())
    .action((o, cmd) => run(cmd, (s) => keysCommand(s, 'rotate', o)));

  const channels = program.command('channels').description('a source’s sales channels mapped to clients (multi-merchant accounts)');
  channels
    .command('list')
    .description('channel → client mappings')
    .option('--source <id>', 'one source')
    .addOption(jsonOption())
    .action((o, cmd) => run(cmd, (s) => channelsList(s, o)));
  channels
    .command('set')
    .description('map a channel to a client (orders and shipments written from now on)')
    .requiredOption('--source <id>', 'the source')
    .requiredOption('--channel <id>', 'the provider’s channel id', positiveId)
    .requiredOption('--client <client>', 'the client')
    .addOption(jsonOption())
    .action((o, cmd) => run(cmd, (s) => channelsSet(s, o)));
  channels
    .command('remove')
    .description('remove a channel mapping')
    .requiredOption('--source <id>', 'the source')
    .requiredOption('--channel <id>', 'the provider’s channel id', positiveId)
    .addOption(jsonOption())
    .action((o, cmd) => run(cmd, (s) => channelsRemove(s, o)));

  const inventory = program.command('inventory').description('inventory items mapped to clients (storage charges are attributed through them)');
  inventory
    .command('list')
    .description('inventory items and their clients')
    .option('--source <id>', 'one source')
    .addOption(jsonOption())
    .action((o, cmd) => run(cmd, (s) => inventoryList(s, o)));
  inventory
    .command('set')
    .description('map an inventory item to a client, and attribute its storage charges')
    .requiredOption('--source <id>', 'the source')
    .requiredOption('--item <id>', 'the provider’s inventory id', positiveId)
    .requiredOption('--client <client>', 'the client')
    .option('--name <name>', 'its name')
    .option('--sku <sku>', 'its SKU')
    .addOption(jsonOption())
    .action((o, cmd) => run(cmd, (s) => inventorySet(s, o)));
  inventory
    .command('remove')
    .description('remove an inventory item (charges already attributed keep their client)')
    .requiredOption('--source <id>', 'the source')
    .requiredOption('--item <id>', 'the provider’s inventory id', positiveId)
    .addOption(jsonOption())
    .action((o, cmd) => run(cmd, (s) => inventoryRemove(s, o)));
  inventory
    .command('load')
    .description('read the provider’s inventory (GET /inventory) and map every item to the source’s client (dry run unless --apply)')
    .requiredOption('--source <id>', 'the source')
    .option('--client <client>', 'the client (default: the source’s)')
    .option('--apply', 'store them (default: dry run)')
    .addOption(jsonOption())
    .action((o, cmd) => run(cmd, (s) => inventoryLoad(s, o)));

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
      // WHARF_ENCRYPTION_KEY, else (not in production) the key file the service uses too.
      config = withKeyRing(loadConfig({ LOG_LEVEL: 'warn', ...env }), (line) => io.err(line));
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
      code = await fn({ config, keys: keyRingOf(config), sql: handle.sql, io, now, json: wantsJson });
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
  const program = buildProgram(io, run, now, env);
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
