-- Quarantine bounded whatever the flood: refusals of known sources are counted per (source, reason, hour) here, and
-- only a few samples per key stay in "quarantine". Existing quarantine rows stay as samples (pruned by age).
CREATE TABLE IF NOT EXISTS "quarantine_counts" (
	"source_id" text NOT NULL,
	"reason" text NOT NULL,
	"bucket" timestamp with time zone NOT NULL,
	"status_code" integer NOT NULL,
	"count" bigint NOT NULL,
	"bytes" bigint NOT NULL,
	CONSTRAINT "quarantine_counts_pk" PRIMARY KEY("source_id","reason","bucket")
);--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "quarantine_counts_bucket_idx" ON "quarantine_counts" USING btree ("bucket");
