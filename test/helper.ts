import type { Test } from 'tap';
import { createDb, type DbHandle, type DbOptions } from '../src/db/client.js';
import { loadConfig, type Config } from '../src/config.js';
import { parseKeyRing } from '../src/key-ring.js';
import { createTestDatabase } from './db.js';

/** The encryption key every test runs with (WHARF_ENCRYPTION_KEY in testConfig and the ops CLI's env). */
export const TEST_ENCRYPTION_KEY = `test:${Buffer.alloc(32, 7).toString('base64')}`;
export const testKeys = parseKeyRing(TEST_ENCRYPTION_KEY);

export interface TestDatabase extends DbHandle {
  url: string;
}

/** A fresh migrated database for this test (dropped at teardown), with a small pool open on it. */
export async function freshDatabase(t: Test, opts: Partial<DbOptions> = {}): Promise<TestDatabase> {
  const created = await createTestDatabase(t.name);
  const handle = createDb({ url: created.url, max: 5, ...opts });
  t.teardown(async () => {
    await handle.close(1);
    await created.drop();
  });
  return { ...handle, url: created.url };
}

/** A config for tests: defaults, plus overrides, pointing at the given database. */
export function testConfig(url: string, env: Record<string, string> = {}): Config {
  return loadConfig({ DATABASE_URL: url, LOG_LEVEL: 'silent', PORT: '0', WHARF_ENCRYPTION_KEY: TEST_ENCRYPTION_KEY, ...env });
}
