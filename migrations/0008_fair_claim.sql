-- The fair claim (src/inbox/claim.ts) finds the sources with pending rows by a skip scan and takes each one's oldest
-- pending rows: both are probes of this index. On a large inbox, create it first by hand with CREATE INDEX
-- CONCURRENTLY (same name and definition).
CREATE INDEX IF NOT EXISTS "inbox_events_pending_source_idx" ON "inbox_events" USING btree ("source_id","id") WHERE status = 'pending';
--> statement-breakpoint
-- reconcile_windows: per source, stream and closed window, what the provider counted, what wharf held and what the
-- reconciliation found (src/poll/reconcile.ts; `ops status` shows the newest reconciled window and any still short).
CREATE TABLE IF NOT EXISTS "reconcile_windows" (
	"source_id" text NOT NULL,
	"stream" text NOT NULL,
	"window_start" timestamp with time zone NOT NULL,
	"window_end" timestamp with time zone NOT NULL,
	"provider_count" integer,
	"wharf_count" integer NOT NULL,
	"repolled" integer DEFAULT 0 NOT NULL,
	"state" text NOT NULL,
	"checked_at" timestamp with time zone NOT NULL,
	CONSTRAINT "reconcile_windows_pk" PRIMARY KEY("source_id","stream","window_start"),
	CONSTRAINT "reconcile_windows_source_id_sources_id_fk" FOREIGN KEY ("source_id") REFERENCES "sources"("id") ON DELETE cascade
);
