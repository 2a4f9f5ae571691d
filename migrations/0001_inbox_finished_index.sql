-- The mark that ends each drained event is a non-HOT update (status is in the pending index's predicate), so every
-- index of inbox_events gains an entry per event: (status, received_at) is kept for dead and ignored rows only.
-- On a large inbox, create the new index first by hand with CREATE INDEX CONCURRENTLY (same name and definition):
-- this migration then only drops the old one.
DROP INDEX IF EXISTS "inbox_events_status_received_idx";--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "inbox_events_finished_idx" ON "inbox_events" USING btree ("status","received_at") WHERE status in ('dead', 'ignored');
