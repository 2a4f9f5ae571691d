/** `npm run ops -- <command> …`: a thin CLI over src/ops (see src/ops/cli.ts and docs/operations.md). */
import { runOps } from '../src/ops/cli.js';

process.exitCode = await runOps(process.argv.slice(2));
