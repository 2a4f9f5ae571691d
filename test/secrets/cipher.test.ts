import { mkdtempSync, readFileSync, statSync, chmodSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';
import { keyRingOf, loadConfig } from '../../src/config.js';
import { withKeyRing } from '../../src/secrets/key-file.js';
import { ConfigError } from '../../src/errors.js';
import { keyIdOf, openSecret, sealSecret, SecretUnreadableError } from '../../src/secrets/cipher.js';
import { loadOrCreateKeyFile } from '../../src/secrets/key-file.js';
import { generateKeyLine, parseKeyRing } from '../../src/key-ring.js';

const K1 = `k1:${Buffer.alloc(32, 1).toString('base64')}`;
const K2 = `k2:${Buffer.alloc(32, 2).toString('base64')}`;
const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';

t.test('a value is sealed under the first key with its id, and opens only for what and whom it was sealed', async (t) => {
  const ring = parseKeyRing(K1);
  const stored = sealSecret(ring, SECRET, 'webhook-secret', 'src-a');
  t.match(stored, /^v1:k1:[A-Za-z0-9_-]+$/, 'v1:<key id>:<base64url>');
  t.notMatch(stored, SECRET.slice(6), 'no plaintext in it');
  t.not(sealSecret(ring, SECRET, 'webhook-secret', 'src-a'), stored, 'a fresh nonce each time');
  t.equal(openSecret(ring, stored, 'webhook-secret', 'src-a'), SECRET);
  t.throws(() => openSecret(ring, stored, 'webhook-secret', 'src-b'), SecretUnreadableError, 'copied onto another source: refused');
  t.throws(() => openSecret(ring, stored, 'api-token', 'src-a'), SecretUnreadableError, 'read as another kind: refused');
  const flipped = `${stored.slice(0, -2)}${stored.at(-2) === 'A' ? 'B' : 'A'}${stored.at(-1)}`;
  t.throws(() => openSecret(ring, flipped, 'webhook-secret', 'src-a'), SecretUnreadableError, 'altered: refused');
  const err = t.throws(() => openSecret(ring, `plain:${SECRET}`, 'webhook-secret', 'src-a')) as Error;
  t.notMatch(err.message, SECRET.slice(6), 'errors never carry the value');
});

t.test('a ring of several keys opens values under any of them; rotation prepends the new one', async (t) => {
  const old = sealSecret(parseKeyRing(K1), 'tok_live_123456789', 'api-token', 's');
  const rotated = parseKeyRing(`${K2}, ${K1}`);
  t.equal(rotated.current.id, 'k2', 'the first listed encrypts');
  t.equal(openSecret(rotated, old, 'api-token', 's'), 'tok_live_123456789', 'values under the older key still open');
  t.equal(keyIdOf(sealSecret(rotated, 'x', 'api-token', 's')), 'k2');
  const err = t.throws(() => openSecret(parseKeyRing(K2), old, 'api-token', 's')) as Error;
  t.match(err.message, /key k1/, 'a missing key is named');
});

t.test('a malformed key list is refused without echoing key material', async (t) => {
  for (const bad of ['', 'nokey', `k1:${Buffer.alloc(16, 9).toString('base64')}`, `bad id:${Buffer.alloc(32).toString('base64')}`, `${K1},${K1}`]) {
    const err = t.throws(() => parseKeyRing(bad)) as Error;
    const material = bad.split(':')[1];
    if (material) t.notMatch(err.message, material, `no material in: ${err.message}`);
  }
  const err = t.throws(() => loadConfig({ WHARF_ENCRYPTION_KEY: 'k1:c2hvcnRzZWNyZXQ=' })) as ConfigError;
  t.type(err, ConfigError);
  t.match(err.message, /WHARF_ENCRYPTION_KEY/);
  t.notMatch(err.message, 'c2hvcnRzZWNyZXQ', 'the config error does not echo it either');
  t.equal(loadConfig({ WHARF_ENCRYPTION_KEY: `${K2},${K1}` }).encryptionKeys?.current.id, 'k2');
  t.match(generateKeyLine('k9'), /^k9:[A-Za-z0-9+/]{43}=$/);
});

t.test('production refuses to start without a key; elsewhere a key file beside the data is created (mode 600) and kept', async (t) => {
  const err = t.throws(() => loadConfig({ NODE_ENV: 'production' })) as ConfigError;
  t.match(err.message, /WHARF_ENCRYPTION_KEY is required when NODE_ENV=production/);
  t.ok(loadConfig({ NODE_ENV: 'production', DATABASE_URL: 'postgres://u@db/wharf', WHARF_ENCRYPTION_KEY: K1 }).encryptionKeys, 'with a key it starts');

  const dir = mkdtempSync(path.join(tmpdir(), 'wharf-keys-'));
  const config = withKeyRing(loadConfig({ EMBEDDED_PG_DIR: path.join(dir, 'pg') }));
  const file = path.join(dir, 'encryption.key');
  t.equal(statSync(file).mode & 0o777, 0o600, 'created beside the data directory, mode 600');
  const again = withKeyRing(loadConfig({ EMBEDDED_PG_DIR: path.join(dir, 'pg') }));
  t.equal(keyRingOf(again).current.id, keyRingOf(config).current.id, 'the next start reads the same key');
  t.same(keyRingOf(again).current.key, keyRingOf(config).current.key);
  t.equal(withKeyRing(loadConfig({ EMBEDDED_PG_DIR: path.join(dir, 'pg'), WHARF_ENCRYPTION_KEY: K1 })).encryptionKeys?.current.id, 'k1', 'the variable wins');

  chmodSync(file, 0o644);
  const lines: string[] = [];
  loadOrCreateKeyFile(file, (l) => lines.push(l));
  t.equal(statSync(file).mode & 0o777, 0o600, 'a file readable by others is narrowed back to 600');
  t.match(lines.join('\n'), /now mode 600/);
  t.notMatch(lines.join('\n'), readFileSync(file, 'utf8').split(':')[1].trim(), 'the log line holds no key');

  writeFileSync(file, 'garbage\n');
  t.throws(() => loadOrCreateKeyFile(file), ConfigError, 'a broken key file stops the start');
  t.throws(() => keyRingOf(loadConfig({})), ConfigError, 'no ring: refused, not a plaintext fallback');
});
