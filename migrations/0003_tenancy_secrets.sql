-- Tenant isolation and secrets at rest (docs/tenancy.md).
--
-- Ownership: entities stay keyed by the provider's id; the source that stored a row first owns it and the upserts
-- refuse every other source (an owner guard, no key change). Existing rows are carried over as they stand: their
-- source_id becomes their owner.
--
-- No version from the future: an event time more than the webhook tolerance (default 5 minutes) past its arrival is
-- clamped there by the drain from now on. Rows already pinned by such a time are clamped the same way, against the
-- time they were written (updated_at), so a genuine later update can land again.
UPDATE "orders" SET "event_time" = "updated_at" + interval '5 minutes' WHERE "event_time" > "updated_at" + interval '5 minutes';--> statement-breakpoint
UPDATE "shipments" SET "event_time" = "updated_at" + interval '5 minutes' WHERE "event_time" > "updated_at" + interval '5 minutes';--> statement-breakpoint
UPDATE "returns" SET "event_time" = "updated_at" + interval '5 minutes' WHERE "event_time" > "updated_at" + interval '5 minutes';--> statement-breakpoint
UPDATE "transactions" SET "event_time" = "updated_at" + interval '5 minutes' WHERE "event_time" > "updated_at" + interval '5 minutes';--> statement-breakpoint
-- Inventory items as the loader reads them from the provider (name and SKU, for `ops inventory list`).
ALTER TABLE "inventory_items" ADD COLUMN IF NOT EXISTS "name" text;--> statement-breakpoint
ALTER TABLE "inventory_items" ADD COLUMN IF NOT EXISTS "sku" text;--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "inventory_items_source_idx" ON "inventory_items" USING btree ("source_id");--> statement-breakpoint
-- Secrets at rest: the rate budget keys on the token's SHA-256, which SQL can no longer compute once the token is
-- encrypted, so it is stored beside it.
ALTER TABLE "sources" ADD COLUMN IF NOT EXISTS "api_token_hash" text;--> statement-breakpoint
UPDATE "sources" SET "api_token_hash" = encode(sha256(convert_to("api_token", 'UTF8')), 'hex') WHERE "api_token" IS NOT NULL;--> statement-breakpoint
-- A migration holds no key: every existing value is marked `plain:` here, and the process that holds the key
-- (wharf or an ops command, right after migrating, under the migration lock) encrypts them (`v1:<key id>:…`).
UPDATE "sources" SET "api_token" = 'plain:' || "api_token" WHERE "api_token" IS NOT NULL;--> statement-breakpoint
UPDATE "source_secrets" SET "secret" = 'plain:' || "secret";
