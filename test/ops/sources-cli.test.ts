import t from 'tap';
import { findSourceWithSecrets } from '../../src/intake/sources.js';
import { freshDatabase } from '../helper.js';
import { runOpsCli } from './run-ops.js';

const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const NEXT_SECRET = 'whsec_dGhpcyBpcyB0aGUgbmV4dCBzZWNyZXQ=';
const TOKEN = 'tok_live_0123456789abcdefXYZ9';

t.test('the sources commands register, list masked, rotate with overlap, and disable', async (t) => {
  const { sql, url } = await freshDatabase(t);
  const env = { PUBLIC_URL: 'https://wharf.example.com/' };

  const added = await runOpsCli(url, ['sources', 'add', '--name', 'acme', '--secret', SECRET, '--api-token', TOKEN, '--client', 'c-1', '--no-subscribe', '--json'], env);
  t.equal(added.code, 0, added.stderr);
  const { id, url: hookUrl } = JSON.parse(added.stdout.trim());
  t.match(id, /^src_[0-9a-f]{16}$/, 'prints the new id');
  t.equal(hookUrl, `https://wharf.example.com/webhooks/shipbob/${id}`, 'prints the webhook URL under PUBLIC_URL');
  const stored = await findSourceWithSecrets(sql, id, new Date());
  t.same(stored?.secrets, [SECRET], 'the secret is stored');
  t.equal(stored?.clientId, 'c-1');

  const dup = await runOpsCli(url, ['sources', 'add', '--name', 'acme', '--secret', SECRET], env);
  t.equal(dup.code, 1, 'a duplicate name fails');
  t.notMatch(dup.stderr + dup.stdout, SECRET.slice(6), 'the failure does not echo the secret');

  const listed = await runOpsCli(url, ['sources', 'list'], env);
  t.equal(listed.code, 0);
  t.notMatch(listed.stdout, SECRET.slice(6, -4), 'list never prints the secret');
  t.notMatch(listed.stdout, TOKEN.slice(0, -4), 'list never prints the token');
  t.match(listed.stdout, 'whsec_…LaSw', 'list shows the secret masked');
  t.match(listed.stdout, '…XYZ9', 'list shows the token masked');

  const before = Date.now();
  const rotated = await runOpsCli(url, ['sources', 'rotate-secret', '--source', id, '--secret', NEXT_SECRET, '--overlap', '2h'], env);
  t.equal(rotated.code, 0, rotated.stderr);
  t.notMatch(rotated.stdout, NEXT_SECRET.slice(6, -4), 'rotate does not print the new secret');
  const now = new Date();
  t.same((await findSourceWithSecrets(sql, id, now))?.secrets, [NEXT_SECRET, SECRET], 'both secrets verify during the overlap');
  const inOverlap = new Date(before + 2 * 3600_000 - 60_000);
  t.same((await findSourceWithSecrets(sql, id, inOverlap))?.secrets, [NEXT_SECRET, SECRET], 'the old one still verifies near the end');
  const after = new Date(Date.now() + 2 * 3600_000 + 60_000);
  t.same((await findSourceWithSecrets(sql, id, after))?.secrets, [NEXT_SECRET], 'only the new one after the overlap');

  const listedJson = JSON.parse((await runOpsCli(url, ['sources', 'list', '--json'], env)).stdout);
  t.same(
    listedJson.sources[0].secrets.map((s: { secret: string }) => s.secret),
    ['whsec_…ZXQ=', 'whsec_…LaSw'],
    'list --json masks both current secrets',
  );

  const disabled = await runOpsCli(url, ['sources', 'disable', '--source', id], env);
  t.equal(disabled.code, 0);
  t.equal((await findSourceWithSecrets(sql, id, new Date()))?.enabled, false, 'disable turns the source off');
  t.equal((await runOpsCli(url, ['sources', 'enable', '--source', id], env)).code, 0);
  t.equal((await findSourceWithSecrets(sql, id, new Date()))?.enabled, true, 'enable turns it back on');

  t.equal((await runOpsCli(url, ['sources', 'disable', '--source', 'src_nope'], env)).code, 1, 'an unknown source fails');
  const bad = await runOpsCli(url, ['sources', 'add', '--name', 'x', '--secret', 'not-a-secret'], env);
  t.equal(bad.code, 2, 'a malformed secret is a usage error');
  t.notMatch(bad.stderr, 'not-a-secret', 'and it is not echoed');
});
