/**
 * Sends the named statements in the order their keys are written and awaits them all: on one connection they are
 * pipelined (PostgreSQL runs them one after the other, without a round trip between them). postgres.js starts a query
 * at its first `then` or `execute`, so the order is fixed here rather than left to how the callers' awaits interleave.
 * Resolves with each statement's rows under its name. The first error rejects (later statements of an aborted
 * transaction fail after it).
 */
export async function pipeline<const Q extends Record<string, PendingStatement>>(
  queries: Q,
): Promise<{ [K in keyof Q]: Awaited<Q[K]> }> {
  const entries = Object.entries(queries);
  for (const [, q] of entries) q.execute();
  const results = await Promise.all(entries.map(([, q]) => q));
  return Object.fromEntries(entries.map(([k], i) => [k, results[i]])) as { [K in keyof Q]: Awaited<Q[K]> };
}

/** A postgres.js query not started yet (what `sql\`…\`` returns). */
export interface PendingStatement extends PromiseLike<unknown> {
  execute(): unknown;
}
