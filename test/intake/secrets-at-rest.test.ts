import t from 'tap';
import { TEST_ENCRYPTION_KEY } from '../helper.js';
import { delivery, intakeApp } from './factory.js';

// The intake reads webhook secrets encrypted at rest (docs/tenancy.md): decrypted when the source cache loads them.

const OTHER = `k9:${Buffer.alloc(32, 99).toString('base64')}`;

t.test('a secret stored under an older key still verifies once a new key is prepended', async (t) => {
  const { post, source, sql } = await intakeApp(t, { WHARF_ENCRYPTION_KEY: `${OTHER},${TEST_ENCRYPTION_KEY}` });
  const [stored] = await sql`select secret from source_secrets where source_id = ${source.id}`;
  t.match(stored.secret, /^v1:test:/, 'stored encrypted, under the key it was written with');
  t.notMatch(stored.secret, source.secret.slice(6));
  t.equal((await post(delivery(source.secret))).statusCode, 200);
});

t.test('a secret the intake cannot decrypt answers 503, never a 2xx nor a misleading 401, and shows no value', async (t) => {
  const { post, source } = await intakeApp(t, { WHARF_ENCRYPTION_KEY: OTHER });
  const res = await post(delivery(source.secret));
  t.equal(res.statusCode, 503, 'nothing acknowledged: the provider retries once the key is back');
  t.notMatch(res.body, source.secret.slice(6));
  t.notMatch(res.body, /v1:/);
});
