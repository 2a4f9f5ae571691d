import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, readFileSync, type WriteStream } from 'node:fs';
import path from 'node:path';
import { projectRoot } from '../../../src/paths.js';

/**
 * wharf's roles as separate processes (`node --import tsx src/main.ts web|worker`), for the chaos run and the soak:
 * started, killed (SIGKILL: no handler runs, as in an OOM kill or a lost machine), restarted, and watched for exits
 * nobody asked for. Output goes to a log file per role, never to the harness's own output.
 */

export type WharfRole = 'web' | 'worker';

export interface WharfProcess {
  readonly role: WharfRole;
  /** The running process's pid, or undefined between a kill and the restart. */
  readonly pid: number | undefined;
  /** Exits the harness did not cause (a crash): each is restarted by `ensureRunning`. */
  readonly unexpectedExits: { code: number | null; signal: string | null; at: number }[];
  /** Spawns the process and resolves once its health URL answers (web: /readyz, after migrations). */
  start(): Promise<void>;
  /** SIGKILL, then waits for the exit. */
  kill(): Promise<void>;
  /** SIGTERM (graceful), then waits for the exit. */
  stop(): Promise<void>;
  /** Restarts a process that died on its own; resolves at once when it runs. */
  ensureRunning(): Promise<void>;
  /** Resident set size in MB from /proc (Linux), or undefined. */
  rssMb(): number | undefined;
}

export interface WharfProcessOptions {
  role: WharfRole;
  env: Record<string, string>;
  /** Answers < 500 once the process is ready. */
  healthUrl: string;
  /** Appended to across restarts. */
  logFile: string;
  startTimeoutMs?: number;
}

export function wharfProcess(opts: WharfProcessOptions): WharfProcess {
  let child: ChildProcess | undefined;
  let expectingExit = false;
  let log: WriteStream | undefined;
  const unexpectedExits: WharfProcess['unexpectedExits'] = [];

  const exited = (c: ChildProcess) =>
    c.exitCode !== null || c.signalCode !== null ? Promise.resolve() : new Promise<void>((r) => c.once('exit', () => r()));

  async function start(): Promise<void> {
    log ??= createWriteStream(opts.logFile, { flags: 'a' });
    log.write(`--- ${new Date().toISOString()} start ${opts.role}\n`);
    expectingExit = false;
    const c = spawn(process.execPath, ['--import', 'tsx', path.join('src', 'main.ts'), opts.role], {
      cwd: projectRoot,
      env: { ...process.env, ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = c;
    c.stdout?.pipe(log, { end: false });
    c.stderr?.pipe(log, { end: false });
    c.once('exit', (code, signal) => {
      log?.write(`--- ${new Date().toISOString()} exit ${opts.role} code=${code} signal=${signal}\n`);
      if (!expectingExit) unexpectedExits.push({ code, signal, at: Date.now() });
    });
    await waitHealthy(c);
  }

  async function waitHealthy(c: ChildProcess): Promise<void> {
    const deadline = Date.now() + (opts.startTimeoutMs ?? 60_000);
    while (Date.now() < deadline) {
      if (c.exitCode !== null || c.signalCode !== null) {
        throw new Error(`${opts.role} exited (${c.exitCode ?? c.signalCode}) before it was ready: see ${opts.logFile}`);
      }
      try {
        const res = await fetch(opts.healthUrl, { signal: AbortSignal.timeout(2000) });
        await res.arrayBuffer();
        if (res.status < 500) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`${opts.role} not ready at ${opts.healthUrl} within ${opts.startTimeoutMs ?? 60_000} ms`);
  }

  async function signal(sig: NodeJS.Signals): Promise<void> {
    const c = child;
    if (!c) return;
    expectingExit = true;
    if (c.exitCode === null && c.signalCode === null) c.kill(sig);
    await exited(c);
    child = undefined;
  }

  return {
    role: opts.role,
    get pid() {
      return child?.exitCode === null && child.signalCode === null ? child.pid : undefined;
    },
    unexpectedExits,
    start,
    kill: () => signal('SIGKILL'),
    async stop() {
      await signal('SIGTERM');
      log?.end();
      log = undefined;
    },
    async ensureRunning() {
      if (child && child.exitCode === null && child.signalCode === null) return;
      await start();
    },
    rssMb() {
      const pid = this.pid;
      if (pid === undefined) return undefined;
      try {
        const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
        return m ? Number(m[1]) / 1024 : undefined;
      } catch {
        return undefined;
      }
    },
  };
}
