-- wharf:concurrently
-- Issue #17: reads that stay flat as the inbox grows (docs/scale.md). runMigrations (src/db/migrate.ts) first runs this
-- file's ADD COLUMN IF NOT EXISTS (instant: no default) and then each CREATE INDEX IF NOT EXISTS as CREATE INDEX
-- CONCURRENTLY, alone, outside any transaction; the statements below then find that work done.
--
-- The entities each drained event concerns, as the drain's normaliser read them ('shipment:123', 'order:45',
-- 'transaction:abc'; for a body it could not read, the id-like tokens of its text as 'token:…'): written by the mark
-- that ends the event, so `ops explain` finds an entity's events through an index instead of reading every body.
-- Null until drained (pending rows), and for events drained before this migration.
ALTER TABLE "inbox_events" ADD COLUMN IF NOT EXISTS "entity_keys" text[];--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "inbox_events_entity_keys_idx" ON "inbox_events" USING gin ("entity_keys") WITH (fastupdate = off) WHERE entity_keys IS NOT NULL;--> statement-breakpoint
-- Dead letters by reason, newest first (the ops page's groups: a group's newest rows and its first one). The reason as
-- its digest, '' for none: a long PostgreSQL message would not fit in a btree entry.
CREATE INDEX IF NOT EXISTS "inbox_events_dead_reason_idx" ON "inbox_events" USING btree ((coalesce(md5("last_error"), '')),"received_at","id") WHERE status = 'dead';--> statement-breakpoint
-- Dead and ignored rows counted per (status, source, topic, reason), kept exact by a trigger on every write that moves a
-- row into or out of those statuses (the drain's marks, resolve, replay, retention, any hand-written SQL), in the
-- writer's own statement and transaction. Each key has a row per slot (the writer's backend pid modulo 8), so two
-- drains marking dead rows at once do not wait on one counter row; a count is the sum over slots (a slot may be
-- negative). `ops status`, /metrics and the ops page read these instead of counting rows.
CREATE TABLE IF NOT EXISTS "inbox_finished_counts" (
	"status" text NOT NULL,
	"source_id" text NOT NULL,
	"topic" text,
	"reason" text,
	-- coalesce(md5(reason), ''): what the key and inbox_events_dead_reason_idx compare.
	"reason_key" text NOT NULL,
	"slot" integer NOT NULL,
	"count" bigint NOT NULL,
	CONSTRAINT "inbox_finished_counts_key" UNIQUE NULLS NOT DISTINCT ("status", "source_id", "topic", "reason_key", "slot")
);--> statement-breakpoint
CREATE OR REPLACE FUNCTION wharf_count_finished() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  s int := pg_backend_pid() % 8;
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.status IN ('dead', 'ignored') THEN
    INSERT INTO inbox_finished_counts AS c (status, source_id, topic, reason, reason_key, slot, count)
    VALUES (OLD.status, OLD.source_id, OLD.topic, OLD.last_error, coalesce(md5(OLD.last_error), ''), s, -1)
    ON CONFLICT (status, source_id, topic, reason_key, slot) DO UPDATE SET count = c.count - 1;
  END IF;
  IF TG_OP IN ('UPDATE', 'INSERT') AND NEW.status IN ('dead', 'ignored') THEN
    INSERT INTO inbox_finished_counts AS c (status, source_id, topic, reason, reason_key, slot, count)
    VALUES (NEW.status, NEW.source_id, NEW.topic, NEW.last_error, coalesce(md5(NEW.last_error), ''), s, 1)
    ON CONFLICT (status, source_id, topic, reason_key, slot) DO UPDATE SET count = c.count + 1;
  END IF;
  RETURN NULL;
END
$$;--> statement-breakpoint
-- The WHEN conditions are evaluated without calling the function: a processed mark, a pending insert, a duplicate's
-- count or a processed row's deletion costs a comparison, not a statement.
DROP TRIGGER IF EXISTS "inbox_events_count_insert" ON "inbox_events";--> statement-breakpoint
CREATE TRIGGER "inbox_events_count_insert" AFTER INSERT ON "inbox_events" FOR EACH ROW
  WHEN (NEW.status IN ('dead', 'ignored')) EXECUTE FUNCTION wharf_count_finished();--> statement-breakpoint
DROP TRIGGER IF EXISTS "inbox_events_count_update" ON "inbox_events";--> statement-breakpoint
CREATE TRIGGER "inbox_events_count_update" AFTER UPDATE OF "status", "source_id", "topic", "last_error" ON "inbox_events" FOR EACH ROW
  WHEN ((OLD.status IN ('dead', 'ignored') OR NEW.status IN ('dead', 'ignored'))
        AND (OLD.status, OLD.source_id, OLD.topic, OLD.last_error) IS DISTINCT FROM (NEW.status, NEW.source_id, NEW.topic, NEW.last_error))
  EXECUTE FUNCTION wharf_count_finished();--> statement-breakpoint
DROP TRIGGER IF EXISTS "inbox_events_count_delete" ON "inbox_events";--> statement-breakpoint
CREATE TRIGGER "inbox_events_count_delete" AFTER DELETE ON "inbox_events" FOR EACH ROW
  WHEN (OLD.status IN ('dead', 'ignored')) EXECUTE FUNCTION wharf_count_finished();--> statement-breakpoint
-- The rows already there, counted once: CREATE TRIGGER above locked the table against writes until this transaction
-- commits, so no write falls between this count and the triggers.
DELETE FROM "inbox_finished_counts";--> statement-breakpoint
INSERT INTO "inbox_finished_counts" (status, source_id, topic, reason, reason_key, slot, count)
SELECT status, source_id, topic, min(last_error), coalesce(md5(last_error), ''), 0, count(*)
  FROM "inbox_events" WHERE status IN ('dead', 'ignored')
 GROUP BY status, source_id, topic, coalesce(md5(last_error), '');
