#!/usr/bin/env node
// `wharf …` / `npx wharf …`: the ops CLI (src/ops/cli.ts). In the image it runs the compiled JavaScript; in a
// checkout, the TypeScript sources through tsx. Its stdout is only what the command prints (no npm banner), so
// `npx wharf status --json` is exactly one JSON document.
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const compiled = `${root}dist/scripts/ops.js`;
if (existsSync(compiled)) {
  await import(pathToFileURL(compiled).href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import(pathToFileURL(`${root}scripts/ops.ts`).href);
}
