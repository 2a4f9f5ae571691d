-- wharf:concurrently
-- Reconciliation of orders against the provider's total-count (src/poll/reconcile.ts, docs/polling.md): an order
-- counts as complete when wharf holds as many of its shipments as the provider listed on it, so losing one shipment
-- of a multi-shipment order shows in the count.
--
-- A source's orders by last update (wharfOrderCount, per closed day): the index CREATE INDEX CONCURRENTLY builds first
-- (src/db/migrate.ts); it starts with source_id, so it also serves what orders_source_idx served, which it replaces.
CREATE INDEX IF NOT EXISTS "orders_source_last_update_idx" ON "orders" USING btree ("source_id","last_update_at");--> statement-breakpoint
DROP INDEX IF EXISTS "orders_source_idx";--> statement-breakpoint
-- The number of shipments the provider listed on the order, in the version the row holds (null: that version listed
-- none, as a webhook body may; set by upsertOrdersAndShipments). Nullable without a default: no table rewrite.
ALTER TABLE "orders" ADD COLUMN IF NOT EXISTS "shipment_count" integer;
