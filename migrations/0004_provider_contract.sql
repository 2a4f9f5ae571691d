-- Issue #13: follow the provider's documented contract (docs/provider.md).
-- OA types invoiced_status as boolean; wharf stored text ('Invoiced'/'NotInvoiced' from the simulator, null for a
-- real boolean). Existing values are converted; anything else becomes null (it never was a boolean).
ALTER TABLE "transactions" ALTER COLUMN "invoiced_status" TYPE boolean USING (
  CASE WHEN "invoiced_status" IN ('true', 'Invoiced') THEN true
       WHEN "invoiced_status" IN ('false', 'NotInvoiced') THEN false END);--> statement-breakpoint
-- A return's position in its life cycle (OA: free-string status, no update time): a return never moves back. The
-- same mapping as returnStatusRank in src/apply/normalise.ts.
CREATE OR REPLACE FUNCTION wharf_return_status_rank(status text) RETURNS int LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE lower(regexp_replace(coalesce(status, ''), '[\s_-]', '', 'g'))
    WHEN 'awaitingarrival' THEN 1 WHEN 'arrived' THEN 2 WHEN 'processing' THEN 3
    WHEN 'completed' THEN 4 WHEN 'cancelled' THEN 4 WHEN 'canceled' THEN 4 ELSE 0 END
$$;--> statement-breakpoint
-- Resources a delivery named but could not stand for (an order-centric event, a body without a status): fetched by id
-- through the API, coalesced per resource, then applied through the inbox (src/poll/resolve.ts).
CREATE TABLE IF NOT EXISTS "resolve_requests" (
	"source_id" text NOT NULL REFERENCES "sources"("id") ON DELETE CASCADE,
	"kind" text NOT NULL,
	"resource_id" bigint NOT NULL,
	"inbox_ids" bigint[] NOT NULL,
	"reason" text NOT NULL,
	"requests" integer DEFAULT 1 NOT NULL,
	"requested_at" timestamp with time zone DEFAULT now() NOT NULL,
	"due_at" timestamp with time zone NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"last_error" text,
	CONSTRAINT "resolve_requests_pk" PRIMARY KEY ("source_id", "kind", "resource_id")
);--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "resolve_requests_due_idx" ON "resolve_requests" USING btree ("source_id", "due_at");--> statement-breakpoint
-- Fields of provider payloads the normaliser does not know or cannot read, counted per topic and field.
CREATE TABLE IF NOT EXISTS "payload_drift" (
	"topic" text NOT NULL,
	"field" text NOT NULL,
	"problem" text NOT NULL,
	"count" bigint DEFAULT 0 NOT NULL,
	"first_seen_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_seen_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "payload_drift_pk" PRIMARY KEY ("topic", "field", "problem")
);--> statement-breakpoint
-- Each source's webhook subscription at the provider, as the last check (GET /webhook) found it.
CREATE TABLE IF NOT EXISTS "webhook_subscriptions" (
	"source_id" text PRIMARY KEY NOT NULL REFERENCES "sources"("id") ON DELETE CASCADE,
	"state" text NOT NULL,
	"subscription_ids" text[] DEFAULT '{}' NOT NULL,
	"missing_topics" text[] DEFAULT '{}' NOT NULL,
	"checked_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_error" text
);
