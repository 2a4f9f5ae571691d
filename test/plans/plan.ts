import type { Sql } from '../../src/db/client.js';

/**
 * Plan checks: run a real query function with a capturing pool (createDb's onQuery), then EXPLAIN (ANALYZE, FORMAT
 * JSON) exactly the statements it sent, with their parameters, inside a transaction that is rolled back. Whatever
 * the function becomes, the plan of what it sends now is what is checked.
 */

export interface Captured {
  text: string;
  params: unknown[];
}

/** A plan node as EXPLAIN (FORMAT JSON, ANALYZE) prints it (the fields we read). */
interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  'Actual Rows'?: number;
  'Actual Loops'?: number;
  'Rows Removed by Filter'?: number;
  'Rows Removed by Index Recheck'?: number;
  'Rows Removed by Join Filter'?: number;
  'Sort Key'?: string[];
  Plans?: PlanNode[];
}

export interface PlanSummary {
  /** Every index the plan reads. */
  indexes: string[];
  /** Tables read by a sequential scan. */
  seqScans: string[];
  /** Sort nodes and how many rows each sorted (its input, all loops). */
  sorts: { key: string; rows: number }[];
  /** Rows a scan of a growing table read and threw away (filter, recheck, all loops): work a better index avoids. */
  rowsDropped: number;
  /** Rows the statement's top node produced. */
  rowsOut: number;
  /** One line per node, indented (for failure messages). */
  outline: string;
}

/** `growing`: tables whose dropped rows count (a table with a row per source and stream is read whole, rightly). */
export function summarisePlan(root: PlanNode, growing: readonly string[]): PlanSummary {
  const s: PlanSummary = { indexes: [], seqScans: [], sorts: [], rowsDropped: 0, rowsOut: 0, outline: '' };
  const lines: string[] = [];
  const walk = (n: PlanNode, depth: number) => {
    const loops = n['Actual Loops'] ?? 1;
    const rows = (n['Actual Rows'] ?? 0) * loops;
    if (n['Index Name']) s.indexes.push(n['Index Name']);
    if (n['Node Type'] === 'Seq Scan' && n['Relation Name']) s.seqScans.push(n['Relation Name']);
    if (n['Node Type'] === 'Sort' || n['Node Type'] === 'Incremental Sort') {
      // What it sorted is what its input produced (a top-N sort outputs only its limit).
      const input = n.Plans?.[0];
      s.sorts.push({ key: (n['Sort Key'] ?? []).join(', '), rows: input ? (input['Actual Rows'] ?? 0) * (input['Actual Loops'] ?? 1) : rows });
    }
    if (n['Relation Name'] && growing.includes(n['Relation Name'])) {
      s.rowsDropped += ((n['Rows Removed by Filter'] ?? 0) + (n['Rows Removed by Index Recheck'] ?? 0)) * loops;
    }
    const removed = n['Rows Removed by Filter'] ? ` removed ${n['Rows Removed by Filter'] * loops}` : '';
    lines.push(
      `${'  '.repeat(depth)}${n['Node Type']}${n['Index Name'] ? ` using ${n['Index Name']}` : ''}${n['Relation Name'] ? ` on ${n['Relation Name']}` : ''} rows ${rows}${removed}`,
    );
    for (const c of n.Plans ?? []) walk(c, depth + 1);
  };
  walk(root, 0);
  s.rowsOut = (root['Actual Rows'] ?? 0) * (root['Actual Loops'] ?? 1);
  s.outline = lines.join('\n');
  return s;
}

class Rollback extends Error {}

/** Runs `fn` in a transaction that is always rolled back; resolves with its result. */
export async function inRollback<T>(sql: Sql, fn: (tx: Sql) => Promise<T>): Promise<T> {
  let out: T | undefined;
  try {
    await sql.begin(async (tx) => {
      out = await fn(tx as unknown as Sql);
      throw new Rollback();
    });
  } catch (err) {
    if (!(err instanceof Rollback)) throw err;
  }
  return out as T;
}

/** EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) of one captured statement, executed and rolled back. */
export async function explainCaptured(sql: Sql, c: Captured, growing: readonly string[]): Promise<PlanSummary> {
  return inRollback(sql, async (tx) => {
    const rows = await tx.unsafe(`explain (analyze, format json) ${c.text}`, c.params as never[]);
    const json = (rows[0] as Record<string, unknown>)['QUERY PLAN'];
    const plan = (typeof json === 'string' ? JSON.parse(json) : json) as { Plan: PlanNode }[];
    return summarisePlan(plan[0].Plan, growing);
  });
}

/** Whitespace-normalised SQL text, for snapshots that do not change with indentation. */
export const normaliseSql = (text: string) =>
  text
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => l.trim() !== '')
    .join('\n');

/**
 * Shared buffers one captured statement touches, found in PostgreSQL's cache (hit) or read from the OS (read), from
 * EXPLAIN (ANALYZE, BUFFERS), executed and rolled back: the work a statement does, free of the machine's load (what
 * bench:scale compares besides time).
 */
export async function explainBuffers(sql: Sql, c: Captured): Promise<{ hit: number; read: number }> {
  return inRollback(sql, async (tx) => {
    const rows = await tx.unsafe(`explain (analyze, buffers, format json) ${c.text}`, c.params as never[]);
    const json = (rows[0] as Record<string, unknown>)['QUERY PLAN'];
    const plan = (typeof json === 'string' ? JSON.parse(json) : json) as { Plan: Record<string, number> }[];
    return { hit: plan[0].Plan['Shared Hit Blocks'] ?? 0, read: plan[0].Plan['Shared Read Blocks'] ?? 0 };
  });
}

/** Statements that only frame a transaction (never explained). */
export const isControlStatement = (text: string) => /^\s*(begin|commit|rollback|savepoint|release)\b/i.test(text);
