import { spawn } from 'node:child_process';
import path from 'node:path';
import { projectRoot } from '../../src/paths.js';
import { TEST_ENCRYPTION_KEY } from '../helper.js';

/** Runs `scripts/ops.ts` as a child process (as `npm run ops --` does) against the given database. */
export function runOpsCli(
  url: string,
  args: string[],
  env: Record<string, string> = {},
  input?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(projectRoot, 'scripts', 'ops.ts'), ...args], {
      cwd: projectRoot,
      env: { PATH: process.env.PATH, DATABASE_URL: url, WHARF_ENCRYPTION_KEY: TEST_ENCRYPTION_KEY, ...env },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.on('error', reject);
    child.stdin.end(input ?? '');
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}
