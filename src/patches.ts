import { readFileSync } from 'node:fs';
import path from 'node:path';

/**
 * Throws unless the files of a dependency carry our patch (patches/*.patch, applied by patch-package): the marker
 * `wharf patch` is in every file a patch changes. `npm ci` and `npm install` apply them (our postinstall);
 * `npm install <package>` and `--ignore-scripts` do not, so the image runs `npx patch-package` itself. Read once per
 * call: callers check at start-up, never on a hot path.
 */
export function assertPatched(name: string, dir: string, files: readonly string[]): void {
  const unpatched = files.filter((f) => !readFileSync(path.join(dir, f), 'utf8').includes('wharf patch'));
  if (unpatched.length > 0) throw new Error(`${name} is not patched (${unpatched.join(', ')} in ${dir}): run \`npx patch-package\``);
}
