CREATE TABLE "channel_clients" (
	"source_id" text NOT NULL,
	"channel_id" bigint NOT NULL,
	"client_id" text NOT NULL,
	CONSTRAINT "channel_clients_source_id_channel_id_pk" PRIMARY KEY("source_id","channel_id")
);
--> statement-breakpoint
CREATE TABLE "inbox_events" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"source_id" text NOT NULL,
	"event_id" text NOT NULL,
	"topic" text,
	"body" text NOT NULL,
	"headers" jsonb,
	"event_time" timestamp with time zone,
	"received_at" timestamp with time zone DEFAULT now() NOT NULL,
	"via" text DEFAULT 'webhook' NOT NULL,
	"status" text DEFAULT 'pending' NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"last_error" text,
	"duplicate_count" integer DEFAULT 0 NOT NULL,
	"processed_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "inventory_items" (
	"id" bigint PRIMARY KEY NOT NULL,
	"source_id" text NOT NULL,
	"client_id" text,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "lock_releases" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"worker_id" text NOT NULL,
	"job_ids" text[] NOT NULL,
	"queue_names" text[] NOT NULL,
	"last_seen_at" timestamp with time zone,
	"released_at" timestamp with time zone DEFAULT now() NOT NULL,
	"released_by" text NOT NULL
);
--> statement-breakpoint
CREATE TABLE "orders" (
	"id" bigint PRIMARY KEY NOT NULL,
	"source_id" text NOT NULL,
	"client_id" text,
	"reference_id" text,
	"order_number" text,
	"status" text,
	"channel_id" bigint,
	"channel_name" text,
	"created_date" timestamp with time zone,
	"purchase_date" timestamp with time zone,
	"last_update_at" timestamp with time zone,
	"data" jsonb,
	"event_time" timestamp with time zone NOT NULL,
	"event_inbox_id" bigint NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "poll_cursors" (
	"source_id" text NOT NULL,
	"stream" text NOT NULL,
	"cursor_time" timestamp with time zone,
	"cursor_token" text,
	"window_end" timestamp with time zone,
	"last_run_at" timestamp with time zone,
	"last_success_at" timestamp with time zone,
	"last_error" text,
	"catches" bigint DEFAULT 0 NOT NULL,
	"backfill_since" timestamp with time zone,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "poll_cursors_source_id_stream_pk" PRIMARY KEY("source_id","stream")
);
--> statement-breakpoint
CREATE TABLE "quarantine" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"source_id" text,
	"reason" text NOT NULL,
	"status_code" integer NOT NULL,
	"event_id" text,
	"size_bytes" integer NOT NULL,
	"body_sha256" text,
	"remote_addr" text,
	"received_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "rate_budgets" (
	"key" text PRIMARY KEY NOT NULL,
	"tokens" numeric NOT NULL,
	"refilled_at" timestamp with time zone DEFAULT now() NOT NULL,
	"blocked_until" timestamp with time zone,
	"calls" bigint DEFAULT 0 NOT NULL,
	"throttled" bigint DEFAULT 0 NOT NULL
);
--> statement-breakpoint
CREATE TABLE "returns" (
	"id" bigint PRIMARY KEY NOT NULL,
	"source_id" text NOT NULL,
	"client_id" text,
	"reference_id" text,
	"status" text,
	"original_shipment_id" bigint,
	"order_id" bigint,
	"data" jsonb,
	"event_time" timestamp with time zone NOT NULL,
	"event_inbox_id" bigint NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "shipment_timeline" (
	"shipment_id" bigint NOT NULL,
	"log_type_id" integer NOT NULL,
	"timestamp" timestamp with time zone NOT NULL,
	"log_type_name" text,
	"log_type_text" text,
	"metadata" jsonb,
	CONSTRAINT "shipment_timeline_shipment_id_log_type_id_timestamp_pk" PRIMARY KEY("shipment_id","log_type_id","timestamp")
);
--> statement-breakpoint
CREATE TABLE "shipments" (
	"id" bigint PRIMARY KEY NOT NULL,
	"order_id" bigint,
	"source_id" text NOT NULL,
	"client_id" text,
	"reference_id" text,
	"status" text,
	"tracking_carrier" text,
	"tracking_number" text,
	"tracking_url" text,
	"created_date" timestamp with time zone,
	"last_update_at" timestamp with time zone,
	"last_tracking_update_at" timestamp with time zone,
	"actual_fulfillment_date" timestamp with time zone,
	"delivery_date" timestamp with time zone,
	"delivered_at" timestamp with time zone,
	"data" jsonb,
	"event_time" timestamp with time zone NOT NULL,
	"event_inbox_id" bigint NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"timeline_checked_at" timestamp with time zone,
	"timeline_next_check_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "source_secrets" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"source_id" text NOT NULL,
	"secret" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"expires_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "sources" (
	"id" text PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"client_id" text,
	"api_token" text,
	"enabled" boolean DEFAULT true NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "sources_name_unique" UNIQUE("name")
);
--> statement-breakpoint
CREATE TABLE "transactions" (
	"transaction_id" text PRIMARY KEY NOT NULL,
	"source_id" text NOT NULL,
	"amount" numeric NOT NULL,
	"currency_code" text,
	"charge_date" timestamp with time zone,
	"invoice_id" bigint,
	"invoice_date" timestamp with time zone,
	"invoice_type" text,
	"invoiced_status" text,
	"reference_id" text,
	"reference_type" text,
	"transaction_fee" text,
	"transaction_type" text,
	"fulfillment_center" text,
	"taxes" jsonb,
	"additional_details" jsonb,
	"client_id" text,
	"attribution_status" text DEFAULT 'pending' NOT NULL,
	"attribution_reason" text,
	"event_time" timestamp with time zone NOT NULL,
	"event_inbox_id" bigint NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "worker_heartbeats" (
	"worker_id" text PRIMARY KEY NOT NULL,
	"host" text NOT NULL,
	"pid" integer NOT NULL,
	"started_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_seen_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "channel_clients" ADD CONSTRAINT "channel_clients_source_id_sources_id_fk" FOREIGN KEY ("source_id") REFERENCES "public"."sources"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "poll_cursors" ADD CONSTRAINT "poll_cursors_source_id_sources_id_fk" FOREIGN KEY ("source_id") REFERENCES "public"."sources"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "source_secrets" ADD CONSTRAINT "source_secrets_source_id_sources_id_fk" FOREIGN KEY ("source_id") REFERENCES "public"."sources"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "inbox_events_source_event_uq" ON "inbox_events" USING btree ("source_id","event_id");--> statement-breakpoint
CREATE INDEX "inbox_events_pending_idx" ON "inbox_events" USING btree ("id") WHERE status = 'pending';--> statement-breakpoint
CREATE INDEX "inbox_events_status_received_idx" ON "inbox_events" USING btree ("status","received_at");--> statement-breakpoint
CREATE INDEX "orders_source_idx" ON "orders" USING btree ("source_id");--> statement-breakpoint
CREATE INDEX "quarantine_received_idx" ON "quarantine" USING btree ("received_at");--> statement-breakpoint
CREATE INDEX "returns_shipment_idx" ON "returns" USING btree ("original_shipment_id");--> statement-breakpoint
CREATE INDEX "shipments_order_idx" ON "shipments" USING btree ("order_id");--> statement-breakpoint
CREATE INDEX "shipments_timeline_due_idx" ON "shipments" USING btree ("timeline_next_check_at") WHERE delivered_at IS NULL AND status NOT IN ('Cancelled', 'CleanSweeped');--> statement-breakpoint
CREATE INDEX "source_secrets_source_idx" ON "source_secrets" USING btree ("source_id");--> statement-breakpoint
CREATE INDEX "transactions_pending_ref_idx" ON "transactions" USING btree ("reference_type","reference_id") WHERE attribution_status = 'pending';--> statement-breakpoint
CREATE INDEX "transactions_charge_date_idx" ON "transactions" USING btree ("charge_date");