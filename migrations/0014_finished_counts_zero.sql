-- wharf:concurrently
-- Issue #17: a prune run's last step deletes the dead-and-ignored counters that fell to zero (deleteEmptyCounters,
-- src/inbox/prune.ts). Without an index that delete reads the whole of inbox_finished_counts, whose size follows the
-- counters' churn (each dead or ignored row's insert and delete updates one of them; 100 counters filled 239 pages
-- after seeding a year of dead letters), not its rows: it grew with the data (bench:scale's prune run with nothing to
-- delete, 7 -> 239 buffers). The index holds only the counters at zero. Its cost: a counter's update is no longer
-- HOT (count is in the predicate), on the dead and ignored rows' path only, never the drain's processed marks.
CREATE INDEX IF NOT EXISTS "inbox_finished_counts_zero_idx" ON "inbox_finished_counts" USING btree ("slot") WHERE count = 0;
