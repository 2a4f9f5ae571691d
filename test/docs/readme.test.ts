import { readFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { projectRoot } from '../../src/paths.js';

const read = (f: string) => readFileSync(path.join(projectRoot, f), 'utf8');

t.test('the README documents every environment variable config.ts reads', async (t) => {
  const keys = [...read('src/config.ts').matchAll(/r\.\w+\('([A-Z][A-Z0-9_]+)'/g)].map((m) => m[1]);
  t.ok(keys.length > 20, 'found the keys');
  const readme = read('README.md');
  const missing = keys.filter((k) => !readme.includes(`\`${k}\``));
  t.same(missing, [], 'missing from the README configuration table');
});

t.test('.ci/run runs exactly the README test command', async (t) => {
  t.match(read('README.md'), /^npm test\b/m);
  t.match(read('.ci/run'), /^npm test$/m);
});
