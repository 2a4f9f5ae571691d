-- wharf:concurrently
-- The claim's per-source reads (src/inbox/claim.ts) get an index that no other index can stand in for. Autovacuum
-- analyzes the inbox when it is drained, as it mostly is: with no pending row in the sample, every scan of pending
-- rows is estimated at one row, and the planner then served the per-source reads from inbox_events_pending_idx (id
-- order, where status = 'pending') with a filter and a sort of every pending row: 200 ms claims during a backfill
-- (test/inbox/claim.test.ts). This index's predicate is written as a range, which status = 'pending' implies (so
-- every query that used the old index may use this one) but which does not imply status = 'pending': the claim's
-- per-source reads say the range, and the pending id index cannot serve them, whatever the statistics say.
CREATE INDEX IF NOT EXISTS "inbox_events_pending_by_source_idx" ON "inbox_events" USING btree ("source_id","id") WHERE status between 'pending' and 'pending';--> statement-breakpoint
DROP INDEX IF EXISTS "inbox_events_pending_source_idx";
