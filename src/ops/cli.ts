import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { type Config, keyRingOf, loadConfig } from '../config.js';
import { withKeyRing } from '../secrets/key-file.js';
import { createDb, type Sql } from '../db/client.js';
import { runMigrations } from '../db/migrate.js';
import { resolveDatabase } from '../db/resolve.js';
import { UsageError } from '../errors.js';
import { countSecretsByKey, encryptPlaintextAfterMigrate, reencryptSecrets } from '../intake/secrets-at-rest.js';
import { generateSecret, secretProblem } from '../intake/signature.js';
import { insertSource, listSources, rotateSourceSecret, setSourceEnabled, type SourceChanges, updateSource } from '../intake/sources.js';
import { findPollToken, providerClientFor } from '../poll/run-stream.js';
import { openApiToken, openWebhookSecret } from '../secrets/cipher.js';
import type { KeyRing } from '../key-ring.js';
import type { PollStream } from '../poll/streams.js';
import { BACKFILL_STREAMS, scheduleBackfill } from './backfill.js';
import { formatAge, mask, parseDuration, parseSince, progressBar, table } from './format.js';
import { pruneInbox } from '../inbox/prune.js';
import { countReplayable, type ReplayFilter, replay } from './replay.js';
import { findStaleLocks, releaseStaleLocks } from '../worker/stale-locks.js';
import { readStatus } from './status.js';
import {
  attributeStorageCharges,
  fetchInventory,
  listChannelClients,
  listInventoryItems,
  removeChannelClient,
  removeInventoryItem,
  setChannelClient,
  upsertInventoryItems,
} from './tenancy.js';
import {
  ensureSubscription,
  listSubscribableSources,
  saveSubscriptionState,
  WHARF_TOPICS,
  webhookUrlFor,
} from '../poll/subscriptions.js';

/**
 * `npm run ops -- <command> …`: the on-call commands. Every writing command is a dry run unless `--apply` (sources
 * commands write: they are explicit by nature). Exit codes: 0 done, 1 failed, 2 usage. Secrets and tokens are never
 * printed in full. Commands reach the service's database (DATABASE_URL, else the embedded one) and migrate it first.
 */

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

interface Ctx {
  config: Config;
  keys: KeyRing;
  sql: Sql;
  io: OpsIo;
  args: string[];
  /** The environment runOps was given (for `--…-env VAR`; config.ts reads the rest). */
  env: Record<string, string | undefined>;
  now: Date;
}

const USAGE = `usage: npm run ops -- <command> [options]
  (a secret or token never in argv, where every user of the machine sees it: --secret-stdin | --secret-file <path|-> |
   --secret-env <VAR>, else WHARF_SOURCE_SECRET; the same for --api-token-…, else WHARF_API_TOKEN. Without a
   secret, add and rotate-secret generate one and print it once)
  sources add --name <name> [--secret-stdin|…] [--api-token-stdin|…] [--client …] [--no-subscribe] [--json]
  sources subscribe --source <id> [--json]   (creates the provider's webhook subscription unless one covers every topic)
  sources list [--json]
  sources update --source <id> [--name …] [--client …|--no-client] [--api-token-stdin|…|--no-api-token] [--enable|--disable] [--json]
  sources rotate-secret --source <id> [--secret-stdin|…] [--overlap 24h]
  sources disable|enable --source <id>
  keys status [--json]
  keys rotate [--batch 500] [--apply] [--json]   (re-encrypts every secret and token under the first key)
  channels list [--source <id>] [--json]
  channels set --source <id> --channel <id> --client <client>
  channels remove --source <id> --channel <id>
  inventory list [--source <id>] [--json]
  inventory set --source <id> --item <id> --client <client> [--name …] [--sku …]
  inventory remove --source <id> --item <id>
  inventory load --source <id> [--client <client>] [--apply] [--json]   (from the provider's GET /inventory)
  status [--json]
  clear-stale-locks [--dead-after 60s] [--apply] [--json]
  replay [--status dead|ignored] [--topic …] [--source …] [--since …] [--until …] [--batch 500] [--wait 120s] [--apply] [--json]
  backfill --source <id> --since <date|7d> [--stream orders|transactions] [--apply]
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

/** The options that carry a secret named `name`: `--name-stdin`, `--name-file <path|->`, `--name-env <VAR>`; `--name
 * <value>` is parsed only to be refused with the way to do it. */
const secretOptions = (name: string) =>
  ({
    [name]: { type: 'string' },
    [`${name}-stdin`]: { type: 'boolean' },
    [`${name}-file`]: { type: 'string' },
    [`${name}-env`]: { type: 'string' },
  }) as const;

const DEFAULT_SECRET_ENV: Record<string, string> = { secret: 'WHARF_SOURCE_SECRET', 'api-token': 'WHARF_API_TOKEN' };

/**
 * A secret or token from exactly one of its options, else from its default environment variable (undefined when none
 * is given). Never from argv. Stdin and files lose one trailing newline; the value is never echoed, in errors either.
 */
async function secretInput(ctx: Ctx, o: Record<string, unknown>, name: string): Promise<string | undefined> {
  if (o[name] !== undefined)
    throw new UsageError(
      `--${name} <value> is not accepted (argv is visible to every user of the machine): use --${name}-stdin, ` +
        `--${name}-file <path> or --${name}-env <VAR> (or ${DEFAULT_SECRET_ENV[name]})`,
    );
  const given = [`${name}-stdin`, `${name}-file`, `${name}-env`].filter((k) => o[k] !== undefined && o[k] !== false);
  if (given.length > 1) throw new UsageError(`give --${name} one way only (${given.map((g) => `--${g}`).join(', ')})`);
  let value: string | undefined;
  const file = o[`${name}-file`] === undefined ? undefined : String(o[`${name}-file`]);
  if (o[`${name}-stdin`] || file === '-') value = (await ctx.io.readStdin()).replace(/\r?\n$/, '');
  else if (file !== undefined) {
    value = (await readFile(file, 'utf8').catch(() => {
      throw new UsageError(`--${name}-file: cannot read ${file}`);
    })).replace(/\r?\n$/, '');
  } else if (o[`${name}-env`] !== undefined) {
    const variable = String(o[`${name}-env`]);
    value = ctx.env[variable];
    if (value === undefined) throw new UsageError(`--${name}-env: ${variable} is not set`);
  } else {
    value = ctx.env[DEFAULT_SECRET_ENV[name]];
    if (value === undefined || value === '') return undefined;
  }
  if (value === '' || /[\s]/.test(value)) throw new UsageError(`--${name}: empty, or contains white space`);
  return value;
}

/** The given webhook secret, checked (Standard Webhooks: whsec_ + base64 of 24..64 bytes), or a generated one. */
async function webhookSecretInput(ctx: Ctx, o: Record<string, unknown>): Promise<{ secret: string; generated: boolean }> {
  const given = await secretInput(ctx, o, 'secret');
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

async function sourcesCommand(ctx: Ctx): Promise<number> {
  const [sub, ...rest] = ctx.args;
  const { sql, io, config, now, keys } = ctx;
  switch (sub) {
    case 'add': {
      const o = parse(rest, {
        name: { type: 'string' },
        ...secretOptions('secret'),
        ...secretOptions('api-token'),
        client: { type: 'string' },
        'no-subscribe': { type: 'boolean' },
        json: { type: 'boolean' },
      });
      const name = required(o.name, 'name');
      const { secret, generated } = await webhookSecretInput(ctx, o);
      const apiToken = (await secretInput(ctx, o, 'api-token')) ?? null;
      const id = await insertSource(sql, keys, { name, secret, apiToken, clientId: o.client ?? null });
      const url = webhookUrlFor(config.publicUrl, id);
      // With a token, wharf creates the provider's subscription itself (a failure is reported; the source stays).
      const subscription = apiToken && !o['no-subscribe'] ? await subscribeSource(ctx, id) : null;
      // A generated secret is printed this once (it is never shown again: the subscription carries it).
      if (o.json) io.out(json({ id, url, ...(generated ? { secret } : {}), subscription }));
      else {
        io.out(`source ${id} added\nwebhook URL: ${url}${generated ? `\nsecret (shown once; the provider's subscription must use it): ${secret}` : ''}`);
        if (subscription && 'error' in subscription) io.err(`${subscription.error}; retry with: sources subscribe --source ${id}`);
        else if (subscription) io.out(describeSubscription(subscription));
        else io.out('no subscription created: run sources subscribe --source <id> with a token, or use the dashboard (docs/intake.md)');
      }
      return 0;
    }
    case 'subscribe': {
      const o = parse(rest, { source: { type: 'string' }, json: { type: 'boolean' } });
      const sourceId = required(o.source, 'source');
      const r = await subscribeSource(ctx, sourceId);
      io.out(o.json ? json(r) : describeSubscription(r));
      return 'error' in r ? 1 : 0;
    }
    case 'list': {
      const o = parse(rest, { json: { type: 'boolean' } });
      const rows = (await listSources(sql, now)).map((s) => ({
        id: s.id,
        name: s.name,
        clientId: s.clientId,
        enabled: s.enabled,
        apiToken: s.apiToken === null ? null : maskStored(() => openApiToken(keys, s.id, s.apiToken!)),
        secrets: s.secrets.map((k) => ({ secret: maskStored(() => openWebhookSecret(keys, s.id, k.secret)), expiresAt: k.expiresAt })),
        url: webhookUrlFor(config.publicUrl, s.id),
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
    case 'update': {
      const o = parse(rest, {
        source: { type: 'string' },
        name: { type: 'string' },
        client: { type: 'string' },
        'no-client': { type: 'boolean' },
        ...secretOptions('api-token'),
        'no-api-token': { type: 'boolean' },
        enable: { type: 'boolean' },
        disable: { type: 'boolean' },
        json: { type: 'boolean' },
      });
      const sourceId = required(o.source, 'source');
      if (o.client !== undefined && o['no-client']) throw new UsageError('--client and --no-client together');
      if (o.enable && o.disable) throw new UsageError('--enable and --disable together');
      const token = await secretInput(ctx, o, 'api-token');
      if (token !== undefined && o['no-api-token']) throw new UsageError('an --api-token-… and --no-api-token together');
      if (o.name !== undefined && o.name.trim() === '') throw new UsageError('--name is empty');
      const changes: SourceChanges = {
        ...(o.name !== undefined ? { name: o.name } : {}),
        ...(o.client !== undefined ? { clientId: o.client } : o['no-client'] ? { clientId: null } : {}),
        ...(token !== undefined ? { apiToken: token } : o['no-api-token'] ? { apiToken: null } : {}),
        ...(o.enable ? { enabled: true } : o.disable ? { enabled: false } : {}),
      };
      if (Object.keys(changes).length === 0) throw new UsageError('nothing to change (--name, --client, --api-token-…, --enable, …)');
      if (!(await updateSource(sql, keys, sourceId, changes))) {
        io.err(`no source ${sourceId}`);
        return 1;
      }
      const shown = {
        ...changes,
        ...(changes.apiToken !== undefined ? { apiToken: changes.apiToken === null ? null : mask(changes.apiToken) } : {}),
      };
      if (o.json) io.out(json({ id: sourceId, changed: shown }));
      else
        io.out(
          `source ${sourceId} updated: ${Object.entries(shown)
            .map(([k, v]) => `${k} = ${v === null ? '(none)' : String(v)}`)
            .join(', ')} (the intake sees it within its cache TTL)`,
        );
      return 0;
    }
    case 'rotate-secret': {
      const o = parse(rest, { source: { type: 'string' }, ...secretOptions('secret'), overlap: { type: 'string' } });
      const sourceId = required(o.source, 'source');
      const { secret, generated } = await webhookSecretInput(ctx, o);
      const overlapMs = o.overlap ? usageValue(() => parseDuration(o.overlap!)) : config.secretRotationOverlapMs;
      if (!(await rotateSourceSecret(sql, keys, { sourceId, secret, overlapMs, now }))) {
        io.err(`no source ${sourceId}`);
        return 1;
      }
      io.out(
        `source ${sourceId}: new secret ${generated ? `${secret} (generated, shown once)` : mask(secret)} active; previous secrets valid until ${new Date(now.getTime() + overlapMs).toISOString()}`,
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

/** `keys status` (stored values per key id) and `keys rotate` (re-encrypt under the first key; dry run by default). */
async function keysCommand(ctx: Ctx): Promise<number> {
  const [sub, ...rest] = ctx.args;
  const { sql, io, keys } = ctx;
  if (sub !== 'status' && sub !== 'rotate') throw new UsageError(`unknown keys command ${JSON.stringify(sub ?? '')}`);
  const o = parse(rest, sub === 'rotate' ? { batch: { type: 'string', default: '500' }, apply: { type: 'boolean' }, json: { type: 'boolean' } } : { json: { type: 'boolean' } });
  const counts = await countSecretsByKey(sql);
  const stale = counts.filter((c) => c.keyId !== keys.current.id).reduce((n, c) => n + c.count, 0);
  const withState = counts.map((c) => ({
    ...c,
    state: c.keyId === keys.current.id ? 'current' : keys.byId.has(c.keyId) ? 'older key' : c.keyId === 'plain' ? 'not encrypted' : 'KEY MISSING',
  }));
  const apply = sub === 'rotate' && !!(o as { apply?: boolean }).apply;
  if (!o.json) {
    io.out(`current key: ${keys.current.id}; keys held: ${[...keys.byId.keys()].join(', ')}`);
    io.out(table(['table', 'key', 'values', 'state'], withState.map((c) => [c.table, c.keyId, c.count, c.state])));
  }
  if (sub === 'status' || !apply || stale === 0) {
    if (o.json) io.out(json({ currentKey: keys.current.id, values: withState, toRotate: stale, applied: false }));
    else if (sub === 'rotate') io.out(stale === 0 ? 'every value is under the current key' : `dry run: ${stale} value(s) would be re-encrypted under ${keys.current.id} (add --apply)`);
    return 0;
  }
  const batchSize = usageValue(() => Number.parseInt((o as { batch?: string }).batch ?? '500', 10));
  if (!(batchSize > 0 && batchSize <= 10_000)) throw new UsageError('--batch must be in [1, 10000]');
  const r = await reencryptSecrets(sql, keys, {
    which: 'not-current',
    batchSize,
    onProgress: (p) => io.progress(`re-encrypted ${progressBar(p.done, p.total)}`),
  });
  if (process.stderr.isTTY) io.err('');
  if (o.json) io.out(json({ currentKey: keys.current.id, toRotate: stale, applied: true, written: r.written, unreadable: r.unreadable }));
  else {
    io.out(`re-encrypted ${r.written} value(s) under ${keys.current.id}`);
    for (const u of r.unreadable) io.out(`unreadable: ${u.table} row ${u.id}: ${u.reason}`);
    if (r.unreadable.length) io.out('add the key they were encrypted under to WHARF_ENCRYPTION_KEY (after the current one) and run again');
  }
  return r.unreadable.length === 0 ? 0 : 1;
}

const integerOption = (v: string | undefined, name: string): number => {
  const raw = required(v, name);
  const n = Number(raw);
  if (!/^\d{1,16}$/.test(raw) || !Number.isSafeInteger(n) || n <= 0) throw new UsageError(`--${name} must be a positive integer`);
  return n;
};

async function channelsCommand(ctx: Ctx): Promise<number> {
  const [sub, ...rest] = ctx.args;
  const { sql, io } = ctx;
  switch (sub) {
    case 'list': {
      const o = parse(rest, { source: { type: 'string' }, json: { type: 'boolean' } });
      const rows = await listChannelClients(sql, o.source);
      if (o.json) io.out(json({ channels: rows }));
      else io.out(table(['source', 'channel', 'client'], rows.map((r) => [r.sourceId, r.channelId, r.clientId])));
      return 0;
    }
    case 'set': {
      const o = parse(rest, { source: { type: 'string' }, channel: { type: 'string' }, client: { type: 'string' } });
      const row = { sourceId: required(o.source, 'source'), channelId: integerOption(o.channel, 'channel'), clientId: required(o.client, 'client') };
      if (!(await setChannelClient(sql, row))) {
        io.err(`no source ${row.sourceId}`);
        return 1;
      }
      io.out(`source ${row.sourceId}: channel ${row.channelId} → client ${row.clientId} (orders and shipments written from now on; stored rows keep their client)`);
      return 0;
    }
    case 'remove': {
      const o = parse(rest, { source: { type: 'string' }, channel: { type: 'string' } });
      const p = { sourceId: required(o.source, 'source'), channelId: integerOption(o.channel, 'channel') };
      if (!(await removeChannelClient(sql, p))) {
        io.err(`source ${p.sourceId} has no mapping for channel ${p.channelId}`);
        return 1;
      }
      io.out(`source ${p.sourceId}: channel ${p.channelId} mapping removed`);
      return 0;
    }
    default:
      throw new UsageError(`unknown channels command ${JSON.stringify(sub ?? '')}`);
  }
}

async function inventoryCommand(ctx: Ctx): Promise<number> {
  const [sub, ...rest] = ctx.args;
  const { sql, io, config, keys } = ctx;
  switch (sub) {
    case 'list': {
      const o = parse(rest, { source: { type: 'string' }, json: { type: 'boolean' } });
      const rows = await listInventoryItems(sql, o.source);
      if (o.json) io.out(json({ items: rows }));
      else io.out(table(['source', 'item', 'client', 'sku', 'name'], rows.map((r) => [r.sourceId, r.id, r.clientId, r.sku, r.name])));
      return 0;
    }
    case 'set': {
      const o = parse(rest, { source: { type: 'string' }, item: { type: 'string' }, client: { type: 'string' }, name: { type: 'string' }, sku: { type: 'string' } });
      const sourceId = required(o.source, 'source');
      const id = integerOption(o.item, 'item');
      const [known] = await sql`select 1 from sources where id = ${sourceId}`;
      if (!known) {
        io.err(`no source ${sourceId}`);
        return 1;
      }
      const w = await upsertInventoryItems(sql, { sourceId, apply: true, items: [{ id, clientId: required(o.client, 'client'), name: o.name ?? null, sku: o.sku ?? null }] });
      if (w.refused.length) {
        io.err(`inventory item ${id} belongs to another source: left alone`);
        return 1;
      }
      const attributed = await attributeStorageCharges(sql, sourceId);
      io.out(`source ${sourceId}: item ${id} → client ${o.client}${w.unchanged ? ' (unchanged)' : ''}; ${attributed} storage charge(s) attributed`);
      return 0;
    }
    case 'remove': {
      const o = parse(rest, { source: { type: 'string' }, item: { type: 'string' } });
      const p = { sourceId: required(o.source, 'source'), id: integerOption(o.item, 'item') };
      if (!(await removeInventoryItem(sql, p))) {
        io.err(`source ${p.sourceId} has no inventory item ${p.id}`);
        return 1;
      }
      io.out(`source ${p.sourceId}: inventory item ${p.id} removed (charges already attributed keep their client)`);
      return 0;
    }
    case 'load': {
      const o = parse(rest, { source: { type: 'string' }, client: { type: 'string' }, apply: { type: 'boolean' }, json: { type: 'boolean' } });
      const sourceId = required(o.source, 'source');
      const [src] = await sql<{ clientId: string | null }[]>`select client_id as "clientId" from sources where id = ${sourceId}`;
      if (!src) {
        io.err(`no source ${sourceId}`);
        return 1;
      }
      const clientId = o.client ?? src.clientId;
      if (!clientId) throw new UsageError(`source ${sourceId} has no client: give --client`);
      const token = await findPollToken(sql, keys, sourceId);
      if (token === null) {
        io.err(`source ${sourceId} has no API token (or is disabled): sources update --source ${sourceId} --api-token-stdin`);
        return 1;
      }
      const fetched = await fetchInventory(providerClientFor(config, sql, token), {
        onPage: (p) => io.progress(`read ${p.items} item(s) in ${p.pages} page(s)`),
      });
      if (process.stderr.isTTY) io.err('');
      const items = fetched.items.map((i) => ({ ...i, clientId }));
      const w = await upsertInventoryItems(sql, { sourceId, items, apply: !!o.apply });
      const attributed = o.apply ? await attributeStorageCharges(sql, sourceId) : 0;
      const report = { source: sourceId, clientId, read: fetched.items.length, skipped: fetched.skipped, pages: fetched.pages, ...w, applied: !!o.apply, attributed };
      if (o.json) io.out(json(report));
      else {
        io.out(`${fetched.items.length} item(s) read from the provider in ${fetched.pages} page(s)${fetched.skipped ? `, ${fetched.skipped} without a valid id skipped` : ''}`);
        io.out(`${o.apply ? 'stored' : 'would store'} ${w.written} for client ${clientId}; ${w.unchanged} already as they are; ${w.refused.length} owned by another source (left alone${w.refused.length ? `: ${w.refused.slice(0, 10).join(', ')}${w.refused.length > 10 ? ', …' : ''}` : ''})`);
        if (o.apply) io.out(`${attributed} storage charge(s) attributed`);
        else io.out('dry run: nothing stored (add --apply)');
      }
      return 0;
    }
    default:
      throw new UsageError(`unknown inventory command ${JSON.stringify(sub ?? '')}`);
  }
}

type SubscribeOutcome = { state: string; created: string | null; missingTopics: string[] } | { error: string };

/** Creates the source's provider subscription unless one already covers every topic; stores the state. */
async function subscribeSource(ctx: Ctx, sourceId: string): Promise<SubscribeOutcome> {
  const [s] = await listSubscribableSources(ctx.sql, ctx.keys, { sourceId });
  if (!s) return { error: `source ${sourceId} is unknown, disabled or has no API token` };
  if (!s.secret) return { error: `source ${sourceId} has no valid secret` };
  try {
    const client = providerClientFor(ctx.config, ctx.sql, s.apiToken);
    const r = await ensureSubscription(client, { url: webhookUrlFor(ctx.config.publicUrl, s.id), secret: s.secret, description: `wharf ${s.id}` });
    await saveSubscriptionState(ctx.sql, { sourceId: s.id, check: r });
    return { state: r.state, created: r.created, missingTopics: r.missingTopics };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    await saveSubscriptionState(ctx.sql, { sourceId: s.id, check: null, error: message });
    return { error: `subscribing ${sourceId} failed: ${message}` };
  }
}

function describeSubscription(r: SubscribeOutcome): string {
  if ('error' in r) return r.error;
  return r.created ? `provider subscription ${r.created} created (${WHARF_TOPICS.length} topics)` : 'provider subscription already covers every topic';
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
  io.out('\nquarantine (refusals of known sources), last 24 h');
  io.out(table(['reason', 'count'], s.quarantine24h.map((q) => [q.reason, q.count])));
  io.out(`duplicates with a changed body, last 24 h: ${s.changedBodies24h} (acknowledged, never applied: the first body stays)`);
  io.out('\npayload drift (fields the normaliser does not know or cannot read; docs/provider.md)');
  io.out(
    table(
      ['topic', 'field', 'problem', 'count', 'first seen', 'last seen'],
      s.drift.map((d) => [d.topic, d.field, d.problem, d.count, d.firstSeenAt.toISOString(), d.lastSeenAt.toISOString()]),
    ),
  );
  io.out('\nfetch by id (deliveries that named a resource without standing for it)');
  io.out(
    table(
      ['source', 'waiting', 'failing', 'oldest'],
      s.resolves.map((r) => [r.sourceId, r.waiting, r.failing, formatAge(r.oldestAgeSeconds)]),
    ),
  );
  io.out('\nwebhook subscriptions (checked against GET /webhook)');
  io.out(
    table(
      ['source', 'state', 'missing topics', 'checked', 'last error'],
      s.subscriptions.map((w) => [
        w.sourceName,
        w.state ?? 'never checked',
        w.missingTopics.join(', '),
        w.checkedAt?.toISOString(),
        w.lastError,
      ]),
    ),
  );
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
  const { inboxRetentionDays, deadRetentionDays, quarantineRetentionDays } = ctx.config;
  ctx.io.out(
    `retention: processed inbox rows > ${inboxRetentionDays} d, dead/ignored > ${deadRetentionDays} d, quarantine > ${quarantineRetentionDays} d (INBOX_RETENTION_DAYS, DEAD_RETENTION_DAYS, QUARANTINE_RETENTION_DAYS)`,
  );
  if (!o.apply) {
    ctx.io.out('dry run: nothing deleted (add --apply)');
    return 0;
  }
  const r = await pruneInbox(ctx.sql, {
    processedDays: inboxRetentionDays,
    deadDays: deadRetentionDays,
    quarantineDays: quarantineRetentionDays,
    batchSize: 5000,
    now: ctx.now,
    onBatch: (p) => ctx.io.progress(`deleted ${p.processed + p.deadOrIgnored + p.quarantine} row(s) in ${p.batches} batch(es)`),
  });
  ctx.io.out(`deleted ${r.processed} processed, ${r.deadOrIgnored} dead/ignored inbox rows, ${r.quarantine} quarantine rows`);
  return 0;
}

const COMMANDS: Record<string, (ctx: Ctx) => Promise<number>> = {
  sources: sourcesCommand,
  keys: keysCommand,
  channels: channelsCommand,
  inventory: inventoryCommand,
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
    // WHARF_ENCRYPTION_KEY, else (not in production) the key file the service uses too.
    config = withKeyRing(loadConfig({ LOG_LEVEL: 'warn', ...env }), (line) => io.err(line));
  } catch (err) {
    io.err((err as Error).message);
    return 1;
  }
  const database = await resolveDatabase(config, (line) => io.err(line)).catch((err: Error) => err);
  if (database instanceof Error) {
    io.err(`cannot reach the database: ${database.message}`);
    return 1;
  }
  const handle = createDb({ url: database.url, max: 2, applicationName: 'wharf-ops', connectTimeoutMs: config.dbConnectTimeoutMs });
  try {
    const keys = keyRingOf(config);
    await runMigrations(database.url, { afterMigrate: encryptPlaintextAfterMigrate(keys, { info: io.err, warn: io.err }) });
    return await run({ config, keys, sql: handle.sql, io, args, env, now: new Date() });
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
    await database.stop();
  }
}
