import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

/**
 * Just enough of a Dockerfile interpreter to run our own Dockerfile's steps on this machine (no Docker engine here):
 * FROM … AS, WORKDIR, COPY [--from=stage], RUN [--mount=type=cache for npm], ENV, USER, EXPOSE, ENTRYPOINT/CMD (exec form). Each stage's
 * filesystem is a directory; the base image is this machine's Node (same major). Anything else is refused, so a new
 * instruction in the Dockerfile makes the recipe test fail rather than pass without running it.
 */

export interface Stage {
  name: string;
  base: string;
  root: string;
  workdir: string;
  env: Record<string, string>;
  user?: string;
  entrypoint: string[];
  cmd: string[];
}

function instructions(text: string): { op: string; args: string }[] {
  const lines = text.replace(/\\\n/g, ' ').split('\n');
  return lines
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const [op, ...rest] = l.split(/\s+/);
      return { op: op.toUpperCase(), args: rest.join(' ') };
    });
}

function parseEnv(args: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of args.matchAll(/(\w+)=("[^"]*"|\S+)/g)) out[m[1]] = m[2].replace(/^"|"$/g, '');
  return out;
}

/** Runs every stage of `dockerfile` with build context `context`, stage filesystems under `workRoot`. */
export function runDockerfile(
  dockerfile: string,
  context: string,
  workRoot: string,
  opts: { extraEnv?: Record<string, string>; log?: (line: string) => void } = {},
): Stage[] {
  const stages: Stage[] = [];
  let stage: Stage | undefined;
  const inStage = (p: string) => path.join(stage!.root, path.isAbsolute(p) ? p : path.join(stage!.workdir, p));
  for (const { op, args } of instructions(readFileSync(dockerfile, 'utf8'))) {
    if (op === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      if (!m) throw new Error(`FROM ${args}`);
      stage = { name: m[2] ?? String(stages.length), base: m[1], root: path.join(workRoot, m[2] ?? String(stages.length)), workdir: '/', env: {}, entrypoint: [], cmd: [] };
      mkdirSync(stage.root, { recursive: true });
      stages.push(stage);
      continue;
    }
    if (!stage) throw new Error(`${op} before FROM`);
    opts.log?.(`[${stage.name}] ${op} ${args}`);
    switch (op) {
      case 'WORKDIR':
        stage.workdir = path.posix.resolve(stage.workdir, args);
        mkdirSync(inStage('.'), { recursive: true });
        break;
      case 'ENV':
        Object.assign(stage.env, parseEnv(args));
        break;
      case 'USER':
        stage.user = args;
        break;
      case 'EXPOSE':
        break;
      case 'ENTRYPOINT':
      case 'CMD': {
        const v = JSON.parse(args) as string[];
        if (op === 'ENTRYPOINT') stage.entrypoint = v;
        else stage.cmd = v;
        break;
      }
      case 'COPY': {
        const parts = args.split(/\s+/);
        const from = parts[0].startsWith('--from=') ? parts.shift()!.slice('--from='.length) : undefined;
        const dest = parts.pop()!;
        const srcRoot = from ? stages.find((s) => s.name === from)?.root : context;
        if (!srcRoot) throw new Error(`COPY --from=${from}: no such stage`);
        const target = inStage(dest);
        const intoDir = dest.endsWith('/') || parts.length > 1;
        for (const src of parts) {
          const abs = from ? path.join(srcRoot, src) : path.join(context, src);
          if (!existsSync(abs)) throw new Error(`COPY ${src}: not found`);
          const to = intoDir && !statSync(abs).isDirectory() ? path.join(target, path.basename(src)) : target;
          mkdirSync(path.dirname(to), { recursive: true });
          cpSync(abs, to, { recursive: true });
        }
        break;
      }
      case 'RUN': {
        // A cache mount is a persistent cache outside the image: here that is this machine's own npm cache (HOME).
        const mount = /^--mount=type=cache,target=(\S+)\s+/.exec(args);
        if (mount && mount[1] !== '/root/.npm') throw new Error(`RUN: unsupported cache mount ${mount[1]}`);
        const command = mount ? args.slice(mount[0].length) : args;
        if (command.startsWith('--')) throw new Error(`RUN: unsupported flag in ${args}`);
        if (/npm cache clean/.test(command)) throw new Error('RUN: npm cache clean would wipe this machine’s cache');
        const r = spawnSync('sh', ['-c', command], {
          cwd: inStage('.'),
          env: { PATH: process.env.PATH, HOME: process.env.HOME, ...stage.env, ...opts.extraEnv },
          encoding: 'utf8',
          maxBuffer: 64 * 1024 * 1024,
        });
        if (r.status !== 0) throw new Error(`RUN ${args} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
        break;
      }
      default:
        throw new Error(`unsupported Dockerfile instruction ${op}`);
    }
  }
  return stages;
}
