import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { secretKey } from '../../src/intake/signature.js';
import { findSourceWithSecrets as findStored, openSourceSecrets } from '../../src/intake/sources.js';
import type { Sql } from '../../src/db/client.js';
import { freshDatabase, testKeys } from '../helper.js';

/** The source with its secrets decrypted (they are stored encrypted). */
async function findSourceWithSecrets(sql: Sql, id: string, now: Date) {
  const s = await findStored(sql, id, now);
  return s && { ...s, secrets: openSourceSecrets(testKeys, s) };
}
import { runOpsCli } from './run-ops.js';

const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const NEXT_SECRET = 'whsec_dGhpcyBpcyB0aGUgbmV4dCBzZWNyZXQsIDMyIGJ5dGU=';
const TOKEN = 'tok_live_0123456789abcdefXYZ9';

t.test('the sources commands register, list masked, rotate with overlap, and disable', async (t) => {
  const { sql, url } = await freshDatabase(t);
  const env = { PUBLIC_URL: 'https://wharf.example.com/' };

  // Secrets never in argv: the secret from the environment, the token from a file.
  const dir = mkdtempSync(path.join(tmpdir(), 'wharf-cli-'));
  chmodSync(dir, 0o755);
  const tokenFile = path.join(dir, 'token');
  writeFileSync(tokenFile, `${TOKEN}\n`);
  const added = await runOpsCli(url, ['sources', 'add', '--name', 'acme', '--api-token-file', tokenFile, '--client', 'c-1', '--no-subscribe', '--json'], {
    ...env,
    WHARF_SOURCE_SECRET: SECRET,
  });
  t.equal(added.code, 0, added.stderr);
  const { id, url: hookUrl } = JSON.parse(added.stdout.trim());
  t.match(id, /^src_[0-9a-f]{16}$/, 'prints the new id');
  t.equal(hookUrl, `https://wharf.example.com/webhooks/shipbob/${id}`, 'prints the webhook URL under PUBLIC_URL');
  const stored = await findSourceWithSecrets(sql, id, new Date());
  t.same(stored?.secrets, [SECRET], 'the secret is stored');
  t.notMatch(added.stdout, SECRET.slice(6), 'a given secret is not printed');
  t.equal(stored?.clientId, 'c-1');

  const dup = await runOpsCli(url, ['sources', 'add', '--name', 'acme', '--secret-file', '-'], env, SECRET);
  t.equal(dup.code, 1, 'a duplicate name fails');
  t.notMatch(dup.stderr + dup.stdout, SECRET.slice(6), 'the failure does not echo the secret');

  const listed = await runOpsCli(url, ['sources', 'list'], env);
  t.equal(listed.code, 0);
  t.notMatch(listed.stdout, SECRET.slice(6, -4), 'list never prints the secret');
  t.notMatch(listed.stdout, TOKEN.slice(0, -4), 'list never prints the token');
  t.match(listed.stdout, 'whsec_…LaSw', 'list shows the secret masked');
  t.match(listed.stdout, '…XYZ9', 'list shows the token masked');

  const before = Date.now();
  const rotated = await runOpsCli(url, ['sources', 'rotate-secret', '--source', id, '--secret-file', '-', '--overlap', '2h'], env, `${NEXT_SECRET}\n`);
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
    ['whsec_…dGU=', 'whsec_…LaSw'],
    'list --json masks both current secrets',
  );

  const disabled = await runOpsCli(url, ['sources', 'disable', '--source', id], env);
  t.equal(disabled.code, 0);
  t.equal((await findSourceWithSecrets(sql, id, new Date()))?.enabled, false, 'disable turns the source off');
  t.equal((await runOpsCli(url, ['sources', 'enable', '--source', id], env)).code, 0);
  t.equal((await findSourceWithSecrets(sql, id, new Date()))?.enabled, true, 'enable turns it back on');

  t.equal((await runOpsCli(url, ['sources', 'disable', '--source', 'src_nope'], env)).code, 1, 'an unknown source fails');
  const bad = await runOpsCli(url, ['sources', 'add', '--name', 'x'], { ...env, WHARF_SOURCE_SECRET: 'not-a-secret' });
  t.equal(bad.code, 2, 'a malformed secret is a usage error');
  t.notMatch(bad.stderr, 'not-a-secret', 'and it is not echoed');
});

t.test('secrets: argv refused, the length rule enforced, one generated and printed once when none is given', async (t) => {
  const { sql, url } = await freshDatabase(t);
  const argv = await runOpsCli(url, ['sources', 'add', '--name', 'a', '--secret', SECRET]);
  t.equal(argv.code, 2, '--secret in argv is refused');
  t.match(argv.stderr, /--secret-file/, 'saying what to use instead');
  t.notMatch(argv.stderr + argv.stdout, SECRET.slice(6), 'without echoing it');
  t.equal((await runOpsCli(url, ['sources', 'add', '--name', 'a', '--api-token', 'tok_123'])).code, 2, '--api-token in argv is refused');

  const empty = await runOpsCli(url, ['sources', 'add', '--name', 'a'], { WHARF_SOURCE_SECRET: 'whsec_A' });
  t.equal(empty.code, 2, 'whsec_A (a 0-byte key) is refused');
  t.match(empty.stderr, /24\.\.64 bytes \(this one has 0\)/, 'with the rule in the error');
  const short = `whsec_${Buffer.alloc(23, 1).toString('base64')}`;
  t.equal((await runOpsCli(url, ['sources', 'add', '--name', 'a'], { WHARF_SOURCE_SECRET: short })).code, 2, '23 bytes refused');
  const long = `whsec_${Buffer.alloc(65, 1).toString('base64')}`;
  t.equal((await runOpsCli(url, ['sources', 'add', '--name', 'a'], { WHARF_SOURCE_SECRET: long })).code, 2, '65 bytes refused');
  const [{ n }] = await sql`select count(*)::int as n from sources`;
  t.equal(n, 0, 'nothing added');

  const generated = await runOpsCli(url, ['sources', 'add', '--name', 'gen', '--json']);
  t.equal(generated.code, 0, generated.stderr);
  const out = JSON.parse(generated.stdout.trim());
  t.match(out.secret, /^whsec_/, 'a secret is generated and printed');
  t.equal(secretKey(out.secret).length, 32, 'of 32 bytes');
  t.same((await findSourceWithSecrets(sql, out.id, new Date()))?.secrets, [out.secret], 'and stored');
  const listed = await runOpsCli(url, ['sources', 'list']);
  t.notMatch(listed.stdout, out.secret.slice(6, -4), 'never shown again');
  const human = await runOpsCli(url, ['sources', 'add', '--name', 'gen2']);
  t.match(human.stdout, /secret \(shown once[^)]*\): whsec_/, 'the human output says it is shown once');

  const rotated = await runOpsCli(url, ['sources', 'rotate-secret', '--source', out.id]);
  t.equal(rotated.code, 0, rotated.stderr);
  t.match(rotated.stdout, /whsec_\S+ \(generated, shown once\)/, 'rotate-secret generates one too');
  t.equal((await findSourceWithSecrets(sql, out.id, new Date()))?.secrets.length, 2);
});
