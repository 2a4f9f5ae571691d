import { mkdtempSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { drainChunk } from '../../src/drain/drain-inbox.js';
import { runOps, type OpsIo } from '../../src/ops/cli.js';
import { openApiToken } from '../../src/secrets/cipher.js';
import { rateBudgetKey } from '../../src/provider/rate-budget.js';
import { at, chargeBody, insertInbox, shipmentBody } from '../apply/factory.js';
import { startSimulator } from '../harness/simulator/index.js';
import { freshDatabase, TEST_ENCRYPTION_KEY, testKeys } from '../helper.js';

const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const order = (id: number, t: number, over: Record<string, unknown> = {}) => ({
  id,
  status: 'Processing',
  shipments: [shipmentBody(id - 900_000, t)],
  event_time: at(t),
  ...over,
});

/** Runs an ops command in this process (so stdin can be given), with the test key and the given env. */
async function ops(url: string, argv: string[], opts: { env?: Record<string, string>; stdin?: string } = {}) {
  let stdout = '';
  let stderr = '';
  const io: OpsIo = {
    out: (s) => (stdout += `${s}\n`),
    err: (s) => (stderr += `${s}\n`),
    progress: (s) => (stderr += `${s}\n`),
    readStdin: async () => opts.stdin ?? '',
  };
  const code = await runOps(argv, { DATABASE_URL: url, WHARF_ENCRYPTION_KEY: TEST_ENCRYPTION_KEY, ...opts.env }, io);
  return { code, stdout, stderr };
}

t.test("a source's whole life from the CLI: add with secrets from stdin and env, update name, client, token, enabled", async (t) => {
  const { sql, url } = await freshDatabase(t);
  const added = await ops(url, ['sources', 'add', '--name', 'acme', '--secret-stdin', '--api-token-env', 'ACME_TOKEN', '--json'], {
    stdin: `${SECRET}\n`,
    env: { ACME_TOKEN: 'tok_first_0123456789' },
  });
  t.equal(added.code, 0, added.stderr);
  const { id } = JSON.parse(added.stdout);

  const dir = mkdtempSync(path.join(tmpdir(), 'wharf-token-'));
  const file = path.join(dir, 'token');
  writeFileSync(file, 'tok_second_ABCDEFGHIJ\n');
  chmodSync(file, 0o600);
  const updated = await ops(url, ['sources', 'update', '--source', id, '--name', 'acme-eu', '--client', 'c-eu', '--api-token-file', file, '--disable']);
  t.equal(updated.code, 0, updated.stderr);
  t.match(updated.stdout, 'name = acme-eu, clientId = c-eu, apiToken = …GHIJ, enabled = false');
  t.notMatch(updated.stdout + updated.stderr, 'tok_second_ABCDEF', 'the token is masked');
  const [row] = await sql`select name, client_id, enabled, api_token, api_token_hash from sources where id = ${id}`;
  t.same({ name: row.name, client: row.client_id, enabled: row.enabled }, { name: 'acme-eu', client: 'c-eu', enabled: false });
  t.equal(openApiToken(testKeys, id, row.api_token), 'tok_second_ABCDEFGHIJ', 'the token from the file, encrypted');
  t.equal(row.api_token_hash, rateBudgetKey('tok_second_ABCDEFGHIJ'), 'and its budget hash follows it');

  const piped = await ops(url, ['sources', 'update', '--source', id, '--api-token-stdin', '--enable'], { stdin: 'tok_third_KLMNOPQRST' });
  t.equal(piped.code, 0, piped.stderr);
  const [after] = await sql`select enabled, api_token from sources where id = ${id}`;
  t.equal(openApiToken(testKeys, id, after.api_token), 'tok_third_KLMNOPQRST');
  t.equal(after.enabled, true);

  const cleared = await ops(url, ['sources', 'update', '--source', id, '--no-api-token', '--no-client']);
  t.equal(cleared.code, 0, cleared.stderr);
  const [none] = await sql`select client_id, api_token, api_token_hash from sources where id = ${id}`;
  t.same({ ...none }, { client_id: null, api_token: null, api_token_hash: null });

  t.equal((await ops(url, ['sources', 'update', '--source', id])).code, 2, 'nothing to change is a usage error');
  t.equal((await ops(url, ['sources', 'update', '--source', 'src_nope', '--name', 'x'])).code, 1, 'an unknown source fails');
  const twice = await ops(url, ['sources', 'update', '--source', id, '--api-token-env', 'NOPE_UNSET']);
  t.equal(twice.code, 2, 'an unset variable is a usage error');
});

t.test('channels map to clients; inventory items are set by hand or loaded from the provider, and storage charges attribute', async (t) => {
  const sim = await startSimulator({ worldOptions: { seed: 12, clients: 2, ordersPerClient: 5, productsPerClient: 260 } });
  t.teardown(() => sim.close());
  const { sql, url } = await freshDatabase(t);
  const env = { PROVIDER_BASE_URL: sim.url, PROVIDER_CALLS_PER_MINUTE: '60000' };
  const [c1, c2] = sim.world.clients;
  const add = async (c: typeof c1, client: string) =>
    JSON.parse((await ops(url, ['sources', 'add', '--name', c.name, '--secret-env', 'S', '--api-token-env', 'T', '--client', client, '--json'], { env: { S: c.secret, T: c.token } })).stdout).id as string;
  const a = await add(c1, 'client-a');
  const b = await add(c2, 'client-b');

  t.equal((await ops(url, ['channels', 'set', '--source', a, '--channel', '42', '--client', 'client-a-eu'])).code, 0);
  const channels = JSON.parse((await ops(url, ['channels', 'list', '--json'])).stdout).channels;
  t.same(channels, [{ sourceId: a, channelId: 42, clientId: 'client-a-eu' }]);
  await insertInbox(sql, [{ sourceId: a, topic: 'order.shipped', body: order(900_001, 1, { channel: { id: 42, name: 'eu' } }) }]);
  await drainChunk(sql, 500);
  t.equal((await sql`select client_id from shipments where id = 1`)[0].client_id, 'client-a-eu', 'a shipment of channel 42 goes to its client');
  t.equal((await ops(url, ['channels', 'remove', '--source', a, '--channel', '42'])).code, 0);
  t.equal((await ops(url, ['channels', 'remove', '--source', a, '--channel', '42'])).code, 1, 'removing twice fails');

  const items = sim.world.truth().inventory;
  const mine = items.filter((i) => i.client_id === c1.id);
  const item = mine[0];
  // A storage charge that arrived before its item was known: unattributable.
  await insertInbox(sql, [{ sourceId: a, topic: 'billing.charge.created', body: chargeBody('T-storage', 0, 1, { reference_type: 'FC', reference_id: `5-${item.id}-Shelf` }) }]);
  await drainChunk(sql, 500);

  const dry = await ops(url, ['inventory', 'load', '--source', a, '--json'], { env });
  t.equal(dry.code, 0, dry.stderr);
  t.match(JSON.parse(dry.stdout), { read: mine.length, pages: 2, written: mine.length, applied: false, attributed: 0 }, 'two pages, following next');
  t.equal((await sql`select count(*)::int as n from inventory_items`)[0].n, 0, 'a dry run stores nothing');

  const dryText = await ops(url, ['inventory', 'load', '--source', a], { env });
  t.match(dryText.stdout, 'dry run: nothing stored (add --apply)');
  t.match(dryText.stderr, /read \d+ item\(s\) in \d+ page\(s\)/, 'a progress line per page');
  t.equal((await ops(url, ['inventory', 'load', '--source', a, '--apply'], { env })).code, 0);
  const stored = JSON.parse((await ops(url, ['inventory', 'list', '--source', a, '--json'])).stdout).items;
  t.same(
    stored.map((i: { id: number; clientId: string; sku: string }) => [i.id, i.clientId, i.sku]),
    mine.sort((x, y) => x.id - y.id).map((i) => [i.id, 'client-a', i.sku]),
    "every item of source a's account, with its client",
  );
  const [charge] = await sql`select client_id, attribution_status from transactions where transaction_id = 'T-storage'`;
  t.same({ ...charge }, { client_id: 'client-a', attribution_status: 'attributed' }, 'the storage charge now attributes');

  // Source b cannot take source a's item over, by hand or by load.
  const stolen = await ops(url, ['inventory', 'set', '--source', b, '--item', String(item.id), '--client', 'client-b']);
  t.equal(stolen.code, 1);
  t.match(stolen.stderr, 'belongs to another source');
  t.equal((await sql`select client_id from inventory_items where id = ${item.id}`)[0].client_id, 'client-a');
  t.equal((await ops(url, ['inventory', 'set', '--source', a, '--item', String(item.id), '--client', 'client-a2'])).code, 0);
  t.equal((await sql`select client_id from inventory_items where id = ${item.id}`)[0].client_id, 'client-a2', 'its owner can');
  t.equal((await ops(url, ['inventory', 'remove', '--source', a, '--item', String(item.id)])).code, 0);
  const second = JSON.parse((await ops(url, ['inventory', 'load', '--source', a, '--apply', '--json'], { env })).stdout);
  t.match(second, { written: 1, unchanged: mine.length - 1, refused: [] }, 'a second load writes only what changed');
});
