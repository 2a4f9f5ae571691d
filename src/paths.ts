import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The project root (the folder holding package.json), whether we run from src/ with tsx or from dist/. */
export const projectRoot = (() => {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json')) || existsSync(path.join(dir, 'tsconfig.build.json')) === false) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('cannot find the project root');
    dir = up;
  }
  return dir;
})();

export const migrationsDir = path.join(projectRoot, 'migrations');
