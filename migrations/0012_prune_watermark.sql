-- Issue #17: a prune run starts where the last complete one ended (pruneInbox, src/inbox/prune.ts; docs/scale.md).
-- Before, each run walked the processed rows in id order from the first id, so it read again every dead and ignored
-- row kept (DEAD_RETENTION_DAYS, longer) before the processed cutoff: a cost that grew with the data.
--
-- One row. processed_after_id, the watermark: every inbox row with an id at or below it is dead or ignored (or gone),
-- so the processed walk starts after it. reopened counts the rows that went back within the walk's reach (the trigger
-- below); a run stores its new watermark only if that count did not move while it walked.
CREATE TABLE IF NOT EXISTS "inbox_prune_state" (
	"id" boolean PRIMARY KEY DEFAULT true CHECK ("id"),
	"processed_after_id" bigint DEFAULT 0 NOT NULL,
	"reopened" bigint DEFAULT 0 NOT NULL
);--> statement-breakpoint
-- 0: the first run after this migration walks from the first id, as every run did before, and stores where it ended.
INSERT INTO "inbox_prune_state" ("id") VALUES (true) ON CONFLICT ("id") DO NOTHING;--> statement-breakpoint
-- A row that becomes pending or processed again (a replay of dead or ignored rows, src/ops/replay.ts, or hand-written
-- SQL) must be seen by a later walk: the watermark goes below it, and the count tells a run walking at that moment,
-- which may have passed the row already, not to store its own. The drain's marks (pending -> processed, dead or
-- ignored), its re-marks (processed -> dead) and resolve's dead marks never meet the WHEN condition, which is evaluated
-- without calling the function: for them it costs a comparison.
--
-- Inserts need no trigger. The service inserts only pending rows (insertInboxEvents); the harness seeders also insert
-- processed, dead and ignored ones. Every one of them takes its id from the sequence, above the ids already given out,
-- among them every bound a run found (an id received a retention ago), so above the watermark. Only an insert with an
-- explicit id could land below it.
--
-- One update of the state row per statement, and again only for a lower id: the row versions a transaction makes
-- cannot be pruned before it ends, so an update per replayed row would make each one step over all the earlier ones
-- (a replay of n rows: n * n / 2 tuple visits; 5,000 rows took 0.3-1.1 s more). Within one statement that updates
-- inbox_events nothing raises the watermark (after the first update this transaction holds the row's lock, and this
-- function only lowers it), so a row whose id is not below the lowest one already handled needs nothing more. That id
-- is kept in transaction-local settings (reverted with its transaction or savepoint, as the update is), with the
-- statement's start time so that the next statement starts afresh: after a prune run in the same transaction, say.
-- Statements sent in one simple-query message share that time; only a hand-written raise among them would be missed.
CREATE OR REPLACE FUNCTION wharf_reopen_pruned() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF current_setting('wharf.prune_reopen_statement', true) = statement_timestamp()::text
     AND NEW.id >= nullif(current_setting('wharf.prune_reopen_below', true), '')::bigint THEN
    RETURN NULL;
  END IF;
  UPDATE inbox_prune_state SET processed_after_id = least(processed_after_id, NEW.id - 1), reopened = reopened + 1;
  PERFORM set_config('wharf.prune_reopen_statement', statement_timestamp()::text, true),
          set_config('wharf.prune_reopen_below', NEW.id::text, true);
  RETURN NULL;
END
$$;--> statement-breakpoint
DROP TRIGGER IF EXISTS "inbox_events_prune_reopen" ON "inbox_events";--> statement-breakpoint
CREATE TRIGGER "inbox_events_prune_reopen" AFTER UPDATE OF "status" ON "inbox_events" FOR EACH ROW
  WHEN (NEW.status IN ('pending', 'processed') AND OLD.status NOT IN ('pending', 'processed'))
  EXECUTE FUNCTION wharf_reopen_pruned();
