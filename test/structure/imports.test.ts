// The import graph of src/, read from the files themselves: no cycle between files or folders (type-only imports
// included), imports point down the layers, and nothing in src/ reaches into the test harnesses.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { projectRoot } from '../../src/paths.js';

const src = path.join(projectRoot, 'src');

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = path.join(dir, f);
    return statSync(p).isDirectory() ? filesUnder(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Each file's relative imports (static, dynamic and type-only), as paths relative to src/. */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of filesUnder(src)) {
    const text = readFileSync(file, 'utf8');
    const specs = [...text.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)['"](\.{1,2}\/[^'"]+)['"]/g)].map((m) => m[1]);
    graph.set(
      path.relative(src, file),
      specs.map((s) => path.relative(src, path.resolve(path.dirname(file), s)).replace(/\.js$/, '.ts')),
    );
  }
  return graph;
}


function findCycle(edges: Map<string, Set<string>>): string[] | null {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (n: string): string[] | null => {
    if (state.get(n) === 'done') return null;
    if (state.get(n) === 'open') return [...stack.slice(stack.indexOf(n)), n];
    state.set(n, 'open');
    stack.push(n);
    for (const m of edges.get(n) ?? []) {
      const c = visit(m);
      if (c) return c;
    }
    stack.pop();
    state.set(n, 'done');
    return null;
  };
  for (const n of edges.keys()) {
    const c = visit(n);
    if (c) return c;
  }
  return null;
}

/**
 * The layers, lowest first: a file may import its own folder and the folders of lower layers only. The root files of
 * src/ are split: the base modules everything may use, and the process entry points at the top.
 */
const BASE = ['config.ts', 'errors.ts', 'paths.ts', 'net.ts', 'time.ts', 'metrics.ts', 'key-ring.ts', 'patches.ts'];
const TOP = ['app.ts', 'web.ts', 'main.ts'];
const LAYERS: string[][] = [['base'], ['db', 'secrets'], ['provider', 'inbox'], ['poll'], ['apply'], ['drain', 'intake'], ['worker'], ['ops'], ['top']];
/** A folder, or the base or top group of root files (within a group, the cycle test is the rule). */
const unitOf = (file: string) =>
  file.includes(path.sep) ? file.split(path.sep)[0] : BASE.includes(file) ? 'base' : TOP.includes(file) ? 'top' : file;
const layerOf = (file: string) => LAYERS.findIndex((l) => l.includes(unitOf(file)));

t.test('no import cycle between the files of src/ (type-only imports included)', async (t) => {
  const graph = importGraph();
  const edges = new Map([...graph].map(([f, to]) => [f, new Set(to)]));
  t.equal(findCycle(edges)?.join(' → ') ?? null, null);
});

t.test('no import cycle between the folders of src/ (its root files as two groups: base and entry points)', async (t) => {
  const edges = new Map<string, Set<string>>();
  for (const [file, to] of importGraph()) {
    const from = unitOf(file);
    const set = edges.get(from) ?? new Set();
    for (const target of to) if (unitOf(target) !== from) set.add(unitOf(target));
    edges.set(from, set);
  }
  t.equal(findCycle(edges)?.join(' → ') ?? null, null);
});

t.test('every import points down the layers (or within its own folder), and src/ never imports test/', async (t) => {
  const upward: string[] = [];
  for (const [file, to] of importGraph()) {
    t.not(layerOf(file), -1, `${file} is in a known layer`);
    for (const target of to) {
      if (target.startsWith('..')) upward.push(`${file} → ${target} (outside src/)`);
      else if (unitOf(target) !== unitOf(file) && layerOf(target) >= layerOf(file)) upward.push(`${file} → ${target}`);
    }
  }
  t.same(upward, []);
});
