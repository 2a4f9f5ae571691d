-- poll_runs: the sync-run log, one row per poll run of a source's stream (src/poll/poll-runs.ts), listed by
-- `ops polls` and pruned after POLL_RUN_RETENTION_DAYS by the hourly prune task.
CREATE TABLE IF NOT EXISTS "poll_runs" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"source_id" text NOT NULL,
	"stream" text NOT NULL,
	"started_at" timestamp with time zone NOT NULL,
	"finished_at" timestamp with time zone NOT NULL,
	"duration_ms" integer NOT NULL,
	"window_from" timestamp with time zone,
	"window_to" timestamp with time zone,
	"pages" integer DEFAULT 0 NOT NULL,
	"events" integer DEFAULT 0 NOT NULL,
	"inserted" integer DEFAULT 0 NOT NULL,
	"calls" integer DEFAULT 0 NOT NULL,
	"throttled" integer DEFAULT 0 NOT NULL,
	"provider_ms" integer DEFAULT 0 NOT NULL,
	"outcome" text NOT NULL,
	"error" text,
	CONSTRAINT "poll_runs_source_id_sources_id_fk" FOREIGN KEY ("source_id") REFERENCES "sources"("id") ON DELETE cascade
);--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "poll_runs_started_idx" ON "poll_runs" USING btree ("started_at");--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "poll_runs_source_stream_idx" ON "poll_runs" USING btree ("source_id","stream","started_at");
