import { readFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { projectRoot } from '../../src/paths.js';

// fly.toml has no TOML parser in our dependencies: these read the few settings production relies on.
const fly = readFileSync(path.join(projectRoot, 'fly.toml'), 'utf8');

t.test('fly.toml restarts both process groups always (wharf lets a process crash and relies on that)', async (t) => {
  const restart = /\[\[restart\]\]\s*\n((?:\s+\w+\s*=.*\n)+)/.exec(fly);
  t.ok(restart, 'a [[restart]] section');
  t.match(restart?.[1] ?? '', /policy\s*=\s*"always"/, 'policy always');
  t.match(restart?.[1] ?? '', /processes\s*=\s*\["web",\s*"worker"\]/, 'for web and worker');
});

t.test('fly.toml names its placeholders, runs production and migrates before a release', async (t) => {
  t.match(fly, /^app = "<your-app>"$/m, 'the app name is a placeholder');
  t.match(fly, /^primary_region = "<your-region>"$/m, 'so is the region');
  t.match(fly, /NODE_ENV = "production"/, 'NODE_ENV=production: DATABASE_URL is required');
  t.match(fly, /release_command = "migrate"/, 'migrations run as the release command');
});
