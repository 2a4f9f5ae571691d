-- The fair claim (src/inbox/claim.ts) finds the sources with pending rows by a skip scan and takes each one's oldest
-- pending rows: both are probes of this index. On a large inbox, create it first by hand with CREATE INDEX
-- CONCURRENTLY (same name and definition).
CREATE INDEX IF NOT EXISTS "inbox_events_pending_source_idx" ON "inbox_events" USING btree ("source_id","id") WHERE status = 'pending';
