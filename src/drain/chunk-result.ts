/** What a drained chunk did (drain-inbox.ts), in a file of its own: the express lane's thread sends it across. */
export interface ChunkResult {
  /** Rows claimed (fewer than asked: the inbox had no more claimable rows). */
  claimed: number;
  processed: number;
  dead: number;
  ignored: number;
  /** Pending charges attributed through a shipment or return of the chunk. */
  attributed: number;
  /** Rows dead because an entity they carry belongs to another source (counted in `dead` too). */
  refused: number;
  /** Rows left pending for the next chunk (another source's row touched the same entity first). */
  deferred: number;
  /** Versions whose event time was clamped to received_at + the tolerance (docs/tenancy.md). */
  clamped: number;
  /** Poll catches by stream (orders, transactions, timelines). */
  pollCatches: Record<string, number>;
  /** Per topic (null topic: ''), for metrics. */
  byTopic: Record<string, { processed: number; dead: number; ignored: number }>;
  /** Transactions it took: 1 unless a batch failure was bisected. */
  transactions: number;
  /** Milliseconds by phase, summed over its transactions (metrics): claim includes begin, commit is the commit's wait. */
  phases: Record<DrainPhase, number>;
  /** `received_at` (PostgreSQL text) of each processed webhook event, and when its chunk committed (epoch ms): the lag metric. */
  applied: { receivedAt: string[]; committedAt: number }[];
  /** The chunk's byte bound, not the inbox, made it short: more events may be pending. */
  cutByBytes: boolean;
}

export const DrainPhases = ['claim', 'normalise', 'upsert', 'attribution', 'commit'] as const;
export type DrainPhase = (typeof DrainPhases)[number];
