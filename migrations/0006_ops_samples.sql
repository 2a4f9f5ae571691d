-- The ops page's time series (src/worker/ops-samples.ts): the sample_ops_metrics cron task writes one row per minute
-- (inbox depth, oldest pending age, events applied, webhook -> applied lag) and, per source, one row for each minute in
-- which it received events or its polls caught some. Kept OPS_SAMPLE_RETENTION_DAYS (default 7), pruned by the
-- sampler itself. ops_source_state carries each source's running figures from one sample to the next.
CREATE TABLE IF NOT EXISTS "ops_samples" (
	"at" timestamp with time zone PRIMARY KEY NOT NULL,
	"window_ms" integer NOT NULL,
	"inbox_pending" integer NOT NULL,
	"pending_capped" boolean NOT NULL,
	"oldest_pending_age_s" double precision,
	"dead" integer NOT NULL,
	"applied" integer NOT NULL,
	"lag_p50_ms" double precision,
	"lag_p99_ms" double precision,
	"lag_count" integer NOT NULL,
	"max_inbox_id" bigint NOT NULL,
	"scan_from_id" bigint NOT NULL,
	"sampled_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE IF NOT EXISTS "ops_source_samples" (
	"at" timestamp with time zone NOT NULL,
	"source_id" text NOT NULL,
	"webhook_events" integer NOT NULL,
	"poll_events" integer NOT NULL,
	"replay_events" integer NOT NULL,
	"catches" integer NOT NULL,
	CONSTRAINT "ops_source_samples_at_source_id_pk" PRIMARY KEY("at","source_id")
);
--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "ops_source_samples_source_at_idx" ON "ops_source_samples" USING btree ("source_id","at");
--> statement-breakpoint
CREATE TABLE IF NOT EXISTS "ops_source_state" (
	"source_id" text PRIMARY KEY NOT NULL,
	"last_webhook_at" timestamp with time zone,
	"catches_total" bigint DEFAULT 0 NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
