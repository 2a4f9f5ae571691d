import t from 'tap';
import { loadConfig } from '../../src/config.js';
import { ConfigError } from '../../src/errors.js';
import { TEST_ENCRYPTION_KEY } from '../helper.js';

t.test('defaults are complete and frozen', async (t) => {
  const c = loadConfig({});
  t.equal(c.port, 3000);
  t.equal(c.drainChunkSize, 500);
  t.equal(c.databaseUrl, undefined);
  t.ok(Object.isFrozen(c));
});

t.test('a bad env is refused with every bad key in one error, and no secret echoed', async (t) => {
  const err = t.throws(() =>
    loadConfig({ PORT: 'eighty', DRAIN_CHUNK_SIZE: '0', WHARF_ROLE: 'boss', DATABASE_URL: 'not a url:secretpw' }),
  ) as ConfigError;
  t.type(err, ConfigError);
  t.match(err.message, /PORT/);
  t.match(err.message, /DRAIN_CHUNK_SIZE/);
  t.match(err.message, /WHARF_ROLE/);
  t.match(err.message, /DATABASE_URL/);
  t.notMatch(err.message, /secretpw/);
  t.equal(err.problems.length, 4);
});

t.test('values are coerced with units', async (t) => {
  const c = loadConfig({ PORT: '8080', WEBHOOK_TOLERANCE_MS: '1000', PUBLIC_URL: 'https://x.example/' });
  t.equal(c.port, 8080);
  t.equal(c.webhookToleranceMs, 1000);
  t.equal(c.publicUrl, 'https://x.example');
});

t.test('production refuses to start without DATABASE_URL (never an embedded database there)', async (t) => {
  const err = t.throws(() => loadConfig({ NODE_ENV: 'production' })) as ConfigError;
  t.type(err, ConfigError);
  t.match(err.message, /DATABASE_URL is required when NODE_ENV=production/);
  const ok = loadConfig({ NODE_ENV: 'production', DATABASE_URL: 'postgres://u@db/wharf', WHARF_ENCRYPTION_KEY: TEST_ENCRYPTION_KEY });
  t.equal(ok.databaseUrl, 'postgres://u@db/wharf');
  t.doesNotThrow(() => loadConfig({ NODE_ENV: 'development' }), 'development may use the embedded database');
});

t.test('WEB_DATABASE_URL is the web pool’s URL and needs DATABASE_URL beside it', async (t) => {
  const c = loadConfig({ DATABASE_URL: 'postgres://u@db:5432/wharf', WEB_DATABASE_URL: 'postgres://u@pooler:6432/wharf' });
  t.equal(c.webDatabaseUrl, 'postgres://u@pooler:6432/wharf');
  t.equal(loadConfig({ DATABASE_URL: 'postgres://u@db/wharf' }).webDatabaseUrl, undefined, 'unset: the web uses DATABASE_URL');
  const err = t.throws(() => loadConfig({ WEB_DATABASE_URL: 'postgres://u@pooler:6432/wharf' })) as ConfigError;
  t.match(err.message, /WEB_DATABASE_URL needs DATABASE_URL/);
});

t.test('the sandbox is one setting away; an explicit PROVIDER_BASE_URL wins', async (t) => {
  t.equal(loadConfig({}).providerBaseUrl, 'https://api.shipbob.com');
  t.equal(loadConfig({ PROVIDER_ENVIRONMENT: 'sandbox' }).providerBaseUrl, 'https://sandbox-api.shipbob.com');
  t.equal(loadConfig({ PROVIDER_ENVIRONMENT: 'sandbox', PROVIDER_BASE_URL: 'http://127.0.0.1:1' }).providerBaseUrl, 'http://127.0.0.1:1');
  t.throws(() => loadConfig({ PROVIDER_ENVIRONMENT: 'staging' }), /PROVIDER_ENVIRONMENT/);
});

t.test('the adaptive poll interval: bounds follow POLL_INTERVAL_MS, out-of-order bounds and bad shares are refused', async (t) => {
  const d = loadConfig({});
  t.same(
    [d.pollIntervalMinMs, d.pollIntervalMs, d.pollIntervalMaxMs, d.pollTrustMissShare, d.pollTrustReliableShare, d.pollTrustMinEvents, d.pollBudgetShare],
    [60_000, 300_000, 1_800_000, 0.01, 0.001, 200, 0.5],
  );
  const fast = loadConfig({ POLL_INTERVAL_MS: '5000' });
  t.same([fast.pollIntervalMinMs, fast.pollIntervalMaxMs], [1000, 30_000], 'a fifth and six times the base');
  t.equal(loadConfig({ POLL_TRUST_MISS_SHARE: '0.05', POLL_TRUST_RELIABLE_SHARE: '0' }).pollTrustMissShare, 0.05);
  const err = t.throws(() =>
    loadConfig({
      POLL_INTERVAL_MIN_MS: '600000',
      POLL_TRUST_MISS_SHARE: '1.5',
      POLL_BUDGET_SHARE: 'half',
      POLL_TRUST_MIN_EVENTS: '0',
    }),
  ) as ConfigError;
  t.match(err.message, /POLL_INTERVAL_MIN_MS \(600000\) <= POLL_INTERVAL_MS \(300000\)/);
  t.match(err.message, /POLL_TRUST_MISS_SHARE must be a decimal in \[0\.0001, 1\], got "1\.5"/);
  t.match(err.message, /POLL_BUDGET_SHARE must be a decimal/);
  t.match(err.message, /POLL_TRUST_MIN_EVENTS/);
  const order = t.throws(() => loadConfig({ POLL_TRUST_MISS_SHARE: '0.01', POLL_TRUST_RELIABLE_SHARE: '0.02' })) as ConfigError;
  t.match(order.message, /POLL_TRUST_RELIABLE_SHARE \(0\.02\) must be below POLL_TRUST_MISS_SHARE/);
  t.throws(() => loadConfig({ POLL_INTERVAL_MAX_MS: '60000' }), /POLL_INTERVAL_MAX_MS \(60000\)/, 'a max below the base');
});
