import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { drizzle } from 'drizzle-orm/postgres-js';
import { migrate } from 'drizzle-orm/postgres-js/migrator';
import postgres from 'postgres';
import t, { type Test } from 'tap';
import { createDb, type Sql } from '../../src/db/client.js';
import { runMigrations } from '../../src/db/migrate.js';
import { encryptPlaintextAfterMigrate } from '../../src/intake/secrets-at-rest.js';
import { findSourceWithSecrets, insertSource, openSourceSecrets } from '../../src/intake/sources.js';
import { migrationsDir } from '../../src/paths.js';
import { rateBudgetKey } from '../../src/provider/rate-budget.js';
import { openApiToken } from '../../src/secrets/cipher.js';
import { parseKeyRing } from '../../src/key-ring.js';
import { runOpsCli } from '../ops/run-ops.js';
import { adminUrl, withDatabase } from '../db.js';
import { freshDatabase, TEST_ENCRYPTION_KEY, testKeys } from '../helper.js';

const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const TOKEN = 'tok_live_0123456789abcdefXYZ9';

/** Every row of every table of ours, as text: what a pg_dump's data section holds. */
async function dumpText(sql: Sql): Promise<string> {
  const tables = await sql<{ name: string }[]>`select tablename as name from pg_tables where schemaname = 'public'`;
  let text = '';
  for (const { name } of tables) {
    const rows = await sql.unsafe(`select t::text as row from "${name}" t`);
    text += rows.map((r) => r.row).join('\n');
  }
  return text;
}

/** A database at the schema before migration 0003 (0000 and 0001 only), dropped at teardown. */
async function databaseBefore0003(t: Test): Promise<{ url: string; sql: Sql }> {
  const name = `wharf_pre0003_${process.pid}_${Date.now()}`;
  const admin = postgres(adminUrl(), { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database "${name}"`);
  const url = withDatabase(adminUrl(), name);
  const folder = mkdtempSync(path.join(tmpdir(), 'wharf-mig-'));
  mkdirSync(path.join(folder, 'meta'));
  const journal = JSON.parse(readFileSync(path.join(migrationsDir, 'meta', '_journal.json'), 'utf8'));
  journal.entries = journal.entries.filter((e: { tag: string }) => e.tag < '0002');
  for (const e of journal.entries) cpSync(path.join(migrationsDir, `${e.tag}.sql`), path.join(folder, `${e.tag}.sql`));
  writeFileSync(path.join(folder, 'meta', '_journal.json'), JSON.stringify(journal));
  const raw = postgres(url, { max: 1, onnotice: () => {} });
  await migrate(drizzle(raw), { migrationsFolder: folder });
  await raw.end();
  const { sql, close } = createDb({ url, max: 2 });
  t.teardown(async () => {
    await close();
    await admin.unsafe(`drop database if exists "${name}" with (force)`);
    await admin.end();
  });
  return { url, sql };
}

t.test('the 0003 migration marks existing secrets and tokens, and the first start encrypts them; pinned rows are clamped', async (t) => {
  const { url, sql } = await databaseBefore0003(t);
  await sql`insert into sources (id, name, client_id, api_token) values ('src-a', 'acme', 'c-1', ${TOKEN}), ('src-b', 'hooks', null, null)`;
  await sql`insert into source_secrets (source_id, secret) values ('src-a', ${SECRET}), ('src-b', 'whsec_b2xkIG9uZSBmb3IgYg==')`;
  await sql`insert into orders (id, source_id, status, event_time, event_inbox_id, updated_at)
            values (1, 'src-a', 'Pinned', '2250-01-01T00:00:00Z', 1, '2026-11-01T00:00:00Z'),
                   (2, 'src-a', 'Fine', '2026-10-01T00:00:00Z', 2, '2026-11-01T00:00:00Z')`;
  const lines: string[] = [];
  const log = { info: (l: string) => lines.push(l), warn: (l: string) => lines.push(`WARN ${l}`) };
  await runMigrations(url, { afterMigrate: encryptPlaintextAfterMigrate(testKeys, log) });
  t.match(lines.join('\n'), /encrypted 3 stored secret\(s\) and token\(s\) under key test/);

  const [src] = await sql`select api_token, api_token_hash from sources where id = 'src-a'`;
  t.match(src.api_token, /^v1:test:/, 'the token is encrypted');
  t.equal(openApiToken(testKeys, 'src-a', src.api_token), TOKEN, 'and decrypts to what it was');
  t.equal(src.api_token_hash, rateBudgetKey(TOKEN), 'its hash is the rate budget key');
  const stored = await findSourceWithSecrets(sql, 'src-a', new Date());
  t.same(openSourceSecrets(testKeys, stored!), [SECRET], 'the secret too');
  const dump = await dumpText(sql);
  t.notMatch(dump, SECRET.slice(6), 'no secret in plain text in the dump');
  t.notMatch(dump, TOKEN, 'no token in plain text in the dump');
  t.notMatch(dump, 'b2xkIG9uZSBmb3IgYg', 'nor the other source');

  const orders = await sql`select id::int, event_time from orders order by id`;
  t.equal(orders[0].event_time.toISOString(), '2026-11-01T00:05:00.000Z', 'a row pinned in 2250 is clamped to its write + 5 min');
  t.equal(orders[1].event_time.toISOString(), '2026-10-01T00:00:00.000Z', 'others are untouched');

  lines.length = 0;
  await runMigrations(url, { afterMigrate: encryptPlaintextAfterMigrate(testKeys, log) });
  t.same(lines, [], 'the next start has nothing to do');
});

t.test('keys rotate: a dry run counts, --apply re-encrypts everything under the new first key with progress', async (t) => {
  const { sql, url } = await freshDatabase(t);
  for (let i = 0; i < 7; i++) await insertSource(sql, testKeys, { name: `s${i}`, secret: SECRET, apiToken: i % 2 ? TOKEN : null });
  const NEW = `k2:${Buffer.alloc(32, 42).toString('base64')}`;
  const env = { WHARF_ENCRYPTION_KEY: `${NEW},${TEST_ENCRYPTION_KEY}` };

  const dry = await runOpsCli(url, ['keys', 'rotate'], env);
  t.equal(dry.code, 0, dry.stderr);
  t.match(dry.stdout, 'dry run: 10 value(s) would be re-encrypted under k2 (add --apply)');
  t.match((await sql`select count(*)::int as n from source_secrets where secret like 'v1:test:%'`)[0].n, 7, 'nothing written');

  const applied = await runOpsCli(url, ['keys', 'rotate', '--apply', '--batch', '3'], env);
  t.equal(applied.code, 0, applied.stderr);
  t.match(applied.stdout, 're-encrypted 10 value(s) under k2');
  t.match(applied.stderr, /re-encrypted .*10\/10/, 'a progress line');
  const output = dry.stdout + dry.stderr + applied.stdout + applied.stderr;
  t.notMatch(output, SECRET.slice(6, -4), 'no secret in any output');
  t.notMatch(output, TOKEN.slice(0, -4), 'no token in any output');

  const onlyNew = parseKeyRing(NEW);
  const [any] = await sql`select id from sources order by name limit 1`;
  t.same(openSourceSecrets(onlyNew, (await findSourceWithSecrets(sql, any.id, new Date()))!), [SECRET], 'readable with the new key alone');
  const status = JSON.parse((await runOpsCli(url, ['keys', 'status', '--json'], { WHARF_ENCRYPTION_KEY: NEW })).stdout);
  t.same(
    status.values.map((v: { table: string; keyId: string; count: number; state: string }) => [v.table, v.keyId, v.count, v.state]),
    [
      ['source_secrets', 'k2', 7, 'current'],
      ['sources', 'k2', 3, 'current'],
    ],
  );
  const missing = await runOpsCli(url, ['sources', 'list'], { WHARF_ENCRYPTION_KEY: TEST_ENCRYPTION_KEY });
  t.match(missing.stdout, '(unreadable)', 'a list without the key shows values as unreadable, not an error or a value');
});
