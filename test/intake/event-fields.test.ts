import t from 'tap';
import { eventTimeOf, topicOf } from '../../src/intake/event-fields.js';
import { parseInstant as parseEventTime } from '../../src/time.js';

t.test('event times are instants in one canonical form (UTC, microseconds); anything else is null', async (t) => {
  t.equal(parseEventTime('2025-10-23T15:55:09.3614767Z'), '2025-10-23T15:55:09.361476Z', 'the provider\'s 7 digits, to microseconds');
  t.equal(parseEventTime('2025-10-23T15:55:09+02:00'), '2025-10-23T13:55:09.000000Z');
  t.equal(parseEventTime('2025-10-23T15:55:09'), '2025-10-23T15:55:09.000000Z', 'no zone: UTC');
  t.equal(parseEventTime('2026-01-15T10:00Z'), '2026-01-15T10:00:00.000000Z', 'no seconds: the same rule as the drain');
  for (const bad of ['2025-02-29T00:00:00Z', '2025-13-01T00:00:00Z', '2025-10-23T24:00:00Z', 'yesterday', 42, null, '2025-10-23']) {
    t.equal(parseEventTime(bad), null, String(bad));
  }
  t.equal(parseEventTime('2024-02-29T00:00:00Z'), '2024-02-29T00:00:00.000000Z', 'a leap day');
});

t.test('event time and topic are found where the provider puts them', async (t) => {
  t.equal(eventTimeOf({ last_update_at: '2026-01-01T00:00:00Z' }), '2026-01-01T00:00:00.000000Z');
  t.equal(eventTimeOf({ event_time: 'garbage', last_tracking_update_at: '2026-01-02T00:00:00Z' }), '2026-01-02T00:00:00.000000Z');
  t.equal(eventTimeOf([1, 2]), null);
  t.equal(topicOf('order.shipped', { topic: 'x' }), 'order.shipped');
  t.equal(topicOf(undefined, { type: 'return.created' }), 'return.created');
  t.equal(topicOf(undefined, 'text'), null);
});
