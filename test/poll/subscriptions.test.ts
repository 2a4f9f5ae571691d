import t from 'tap';
import { createProviderClient } from '../../src/provider/client.js';
import { createRateBudget } from '../../src/provider/rate-budget.js';
import { API_VERSION } from '../../src/provider/shapes.js';
import { judgeSubscriptions, WHARF_TOPICS } from '../../src/poll/subscriptions.js';
import { checkSubscriptionsTask } from '../../src/worker/tasks/check_subscriptions.js';
import { readStatus } from '../../src/ops/status.js';
import { startSimulator } from '../harness/simulator/index.js';
import { freshDatabase, testConfig } from '../helper.js';
import { runOpsCli } from '../ops/run-ops.js';

// wharf creates and checks each source's webhook subscription at the provider (the simulator follows OA's
// POST/GET /webhook shapes and status codes).

t.test('sources add creates the subscription; the scheduled check reports missing, disabled and topics missing', async (t) => {
  const sim = await startSimulator({ worldOptions: { seed: 41, clients: 2, ordersPerClient: 0 }, rateLimit: false });
  t.teardown(() => sim.close());
  const { sql, url } = await freshDatabase(t);
  const env = { PROVIDER_BASE_URL: sim.url, PUBLIC_URL: 'http://127.0.0.1:3999' };
  const [alice, bob] = sim.world.clients;

  // Secrets and tokens through the environment (never argv).
  const added = await runOpsCli(url, ['sources', 'add', '--name', 'alice', '--secret-env', 'S', '--api-token-env', 'T', '--json'], {
    ...env,
    S: alice.secret,
    T: alice.token,
  });
  t.equal(added.code, 0, added.stderr);
  const { id, subscription } = JSON.parse(added.stdout.trim());
  t.match(subscription, { state: 'ok', created: String });
  const [sub] = sim.world.subscriptions(alice.id);
  t.same(
    { url: sub.url, secret: sub.secret, topics: sub.topics },
    { url: `http://127.0.0.1:3999/webhooks/shipbob/${id}`, secret: alice.secret, topics: [...WHARF_TOPICS] },
    "wharf's URL, the source's secret, every topic wharf applies",
  );
  const again = await runOpsCli(url, ['sources', 'subscribe', '--source', id, '--json'], env);
  t.match(JSON.parse(again.stdout.trim()), { state: 'ok', created: null }, 'subscribe is idempotent');
  t.equal(sim.world.subscriptions(alice.id).length, 1);

  const bobAdded = await runOpsCli(url, ['sources', 'add', '--name', 'bob', '--secret-env', 'S', '--api-token-env', 'T', '--no-subscribe', '--json'], {
    ...env,
    S: bob.secret,
    T: bob.token,
  });
  const bobId = JSON.parse(bobAdded.stdout.trim()).id;
  const config = testConfig(url, env);
  const task = checkSubscriptionsTask({ config, db: { sql, close: async () => {} } as never, now: () => new Date() });
  const logger = { info() {}, warn() {}, error() {}, debug() {} };
  const run = () => task(undefined, { logger, abortSignal: undefined } as never);
  await run();
  let status = await readStatus(sql, { staleAfterMs: 60_000 });
  const states = () => Object.fromEntries(status.subscriptions.map((s) => [s.sourceId, [s.state, s.missingTopics.length]]));
  t.same(states(), { [id]: ['ok', 0], [bobId]: ['missing', WHARF_TOPICS.length] });

  sim.world.setSubscriptionEnabled(sub.id, false); // the provider gave up after repeated failures
  sim.world.subscribe(bob.id, { topics: ['order.shipped'], url: `http://127.0.0.1:3999/webhooks/shipbob/${bobId}`, secret: bob.secret });
  await run();
  status = await readStatus(sql, { staleAfterMs: 60_000 });
  t.same(states(), { [id]: ['disabled', WHARF_TOPICS.length], [bobId]: ['topics_missing', WHARF_TOPICS.length - 1] });

  const fixed = await runOpsCli(url, ['sources', 'subscribe', '--source', bobId, '--json'], env);
  t.match(JSON.parse(fixed.stdout.trim()), { state: 'ok', created: String });
  t.same(sim.world.subscriptions(bob.id)[1].topics, WHARF_TOPICS.filter((x) => x !== 'order.shipped'), 'only the missing topics');
  t.ok(sim.stats.byStatus['200'] > 0);
});

t.test('the judgement is by URL and enabled topics', async (t) => {
  const base = { created_at: '', description: null };
  const url = 'https://w.example/webhooks/shipbob/s1';
  t.match(judgeSubscriptions([], url), { state: 'missing' });
  t.match(judgeSubscriptions([{ ...base, id: '1', url: `${url}/`, enabled: true, topics: [...WHARF_TOPICS] }], url), { state: 'ok' });
  t.match(judgeSubscriptions([{ ...base, id: '1', url: 'https://other/x', enabled: true, topics: [...WHARF_TOPICS] }], url), { state: 'missing' });
  // The provider's client follows its shapes: a real call through the client.
  const sim = await startSimulator({ worldOptions: { seed: 42, clients: 1, ordersPerClient: 0 }, rateLimit: false });
  t.teardown(() => sim.close());
  const { sql } = await freshDatabase(t);
  const token = sim.world.clients[0].token;
  const client = createProviderClient({ baseUrl: sim.url, version: API_VERSION, token, budget: createRateBudget(sql, { token, callsPerMinute: 6000 }) });
  const created = await client.createWebhook({ topics: ['order.shipped'], url: 'https://w.example/a', secret: sim.world.clients[0].secret });
  t.type(created.id, 'string');
  t.same((await client.listWebhooks()).map((s) => [s.id, s.enabled]), [[created.id, true]]);
});
