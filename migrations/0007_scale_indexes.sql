-- wharf:concurrently
-- Every CREATE INDEX IF NOT EXISTS and DROP INDEX IF EXISTS of this file is first run by runMigrations
-- (src/db/migrate.ts) as CREATE/DROP INDEX CONCURRENTLY, one at a time, outside any transaction, so a large shipments
-- or transactions table keeps taking writes while the index builds; the statements below then find the work done.
--
-- Due timelines per source, in the order listDueTimelines reads them: a never-checked shipment (null) sorts first,
-- as '-infinity'. The old index had neither source_id nor this order, so each call read every source's undelivered
-- shipments and sorted them (docs/scale.md).
CREATE INDEX IF NOT EXISTS "shipments_timeline_due_source_idx" ON "shipments" USING btree ("source_id",(coalesce("timeline_next_check_at", '-infinity'::timestamptz)),"id") WHERE delivered_at IS NULL AND status NOT IN ('Cancelled', 'CleanSweeped');--> statement-breakpoint
DROP INDEX IF EXISTS "shipments_timeline_due_idx";--> statement-breakpoint
-- A source's pending charges on returns, by return id (listUnknownReturns): the (reference_type, reference_id) index
-- made it read every source's.
CREATE INDEX IF NOT EXISTS "transactions_pending_return_idx" ON "transactions" USING btree ("source_id","reference_id") WHERE attribution_status = 'pending' AND reference_type = 'Return';
--> statement-breakpoint
-- Each drained event leaves a dead row version (the mark), whose entry the claim and the pending count step over until
-- VACUUM removes it (bench:scale: a claim of 500 reads 130 buffers with 40,000 such entries, 33 after a VACUUM). By
-- default autovacuum waits for dead rows worth 20% of the table, which grows with retention: 120,000 in a 30-day inbox
-- of 600,000 rows. Every 2% instead (docs/scale.md).
ALTER TABLE "inbox_events" SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_vacuum_insert_scale_factor = 0.02);
