-- Webhook trust per source (src/poll/trust.ts, docs/polling.md "Webhook trust and the adaptive interval").
-- source_trust_days: per source and UTC day of the change, the events applied (by how they came; added once a minute by
-- the ops sampler, src/worker/ops-samples.ts) and the poll catches (added by the drain's existing catch statement,
-- src/poll/catches.ts). Pruned with the ops samples.
CREATE TABLE IF NOT EXISTS "source_trust_days" (
	"source_id" text NOT NULL,
	"day" date NOT NULL,
	"webhook_applied" bigint DEFAULT 0 NOT NULL,
	"poll_applied" bigint DEFAULT 0 NOT NULL,
	"replay_applied" bigint DEFAULT 0 NOT NULL,
	"catches" bigint DEFAULT 0 NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "source_trust_days_pk" PRIMARY KEY("source_id","day"),
	CONSTRAINT "source_trust_days_source_id_sources_id_fk" FOREIGN KEY ("source_id") REFERENCES "sources"("id") ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "source_trust_days_day_idx" ON "source_trust_days" USING btree ("day");
--> statement-breakpoint
-- poll_intervals: the poll interval poll_schedule chose for each polled source, and why (shown by `ops status`).
CREATE TABLE IF NOT EXISTS "poll_intervals" (
	"source_id" text PRIMARY KEY NOT NULL,
	"interval_ms" integer NOT NULL,
	"reason" text NOT NULL,
	"share" double precision,
	"events" bigint NOT NULL,
	"budget_floor_ms" integer NOT NULL,
	"decided_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "poll_intervals_source_id_sources_id_fk" FOREIGN KEY ("source_id") REFERENCES "sources"("id") ON DELETE cascade
);
