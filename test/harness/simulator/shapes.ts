import type { Shipment } from '../../../src/provider/shapes.js';
import type { ChangeEvent } from './world.js';

/**
 * The webhook body shapes the provider documents for a change, beyond "the resource" (docs/provider.md §2), so tests
 * can send every one of them:
 * - `order_centric`: the shape of the one official dated example (`order.shipment.tracking_received`): `order_id`,
 *   `reference_id`, `status`, `tracking{carrier, carrier_service, tracking_id, tracking_url}`, no shipment id. Applied
 *   to every `order.shipment.*` change (the docs do not rule out that those topics share it).
 * - `per_shipment`: `order.shipped` "fires per shipment": one delivery per shipment, its body the Shipment.
 * - `resource` (default): the resource itself (legacy docs: "the full data model of the underlying resource").
 */
export type WebhookShape = 'resource' | 'order_centric' | 'per_shipment';

type Loose = { topic: string; clientId: number; payload: Record<string, unknown> };

/** The change events re-shaped; events the shape does not apply to pass as they are. */
export function reshape(events: readonly ChangeEvent[], shape: WebhookShape): ChangeEvent[] {
  if (shape === 'resource') return [...events];
  const out: Loose[] = [];
  for (const e of events as unknown as Loose[]) {
    const p = e.payload;
    if (shape === 'order_centric' && e.topic.startsWith('order.shipment.')) {
      const s = p as unknown as Shipment & { event_time: string };
      out.push({
        topic: e.topic,
        clientId: e.clientId,
        payload: {
          event_time: s.event_time,
          order_id: s.order_id,
          reference_id: s.reference_id,
          status: s.status,
          tracking: s.tracking
            ? {
                carrier: s.tracking.carrier,
                carrier_service: s.tracking.carrier_service,
                tracking_id: s.tracking.tracking_number,
                tracking_url: s.tracking.tracking_url,
              }
            : null,
        },
      });
    } else if (shape === 'per_shipment' && e.topic === 'order.shipped' && Array.isArray(p.shipments)) {
      for (const s of p.shipments as Shipment[]) out.push({ topic: e.topic, clientId: e.clientId, payload: { ...s, event_time: p.event_time } });
    } else out.push(e);
  }
  return out as unknown as ChangeEvent[];
}
