import fc from 'fast-check';
import t, { type Test } from 'tap';
import { normaliseEvent } from '../../src/apply/normalise.js';
import type { InboxRow } from '../../src/inbox/claim.js';
import { drainChunk } from '../../src/drain/drain-inbox.js';
import { createWorld } from '../harness/simulator/index.js';
import { freshDatabase } from '../helper.js';
import { fromChange, insertInbox, insertSources } from './factory.js';

// Property-based tests of the drain's normaliser over arbitrary JSON and mutated provider payloads: it never throws,
// what it cannot read is dead with a reason, and what it emits is what PostgreSQL accepts for each column; then whole
// chunks mixing good and hostile events through the real drain: every good event lands, nothing stays pending.

const SEED = Number(process.env.FC_SEED ?? 20_261_122);
const onFailure = (t: Test) => (err: Error) =>
  t.fail(`seed ${SEED}: ${err.message.slice(0, 3000)}\n${String((err.cause as Error | undefined)?.message ?? '').slice(0, 1000)}`);

const TOPICS = [
  'order.shipped',
  'order.delivered',
  'order_shipped',
  'order.shipment.delivered',
  'order.shipment.tracking.updated',
  'shipment_exception',
  'return.created',
  'return.completed',
  'billing.charge.created',
  'billing.refund.created',
  'poll.order',
  'poll.transaction',
  'poll.shipment.timeline',
];

const world = createWorld({ seed: 11, clients: 2, ordersPerClient: 10 });
const samples = [1, 2, 3].flatMap(() => world.step({ newOrders: 6, updates: 30, billing: 12, durationMs: 30_000 }));
const timelineSample = {
  shipment_id: 123,
  fetched_at: '2026-02-01T00:00:00Z',
  timeline: [{ log_type_id: 609, log_type_name: 'Delivered', log_type_text: 'x', timestamp: '2026-02-01T00:00:00.1234567Z', metadata: { a: 1 } }],
};

/** Values that are the wrong thing where an id, a date or an amount should be. */
const weird = fc.oneof(
  fc.constantFrom(
    -1,
    0,
    1.5,
    2 ** 53,
    2 ** 63,
    1e308,
    -0,
    '',
    ' ',
    '12a',
    '9223372036854775808',
    '0x1f',
    '1e400',
    'Infinity',
    '\u0000',
    'a\u0000b',
    '\ud800',
    '0000-12-31T23:00:00Z',
    '0001-01-01T00:00:00+01:00',
    '9999-12-31T23:59:59.999999Z',
    '9999-12-31T23:59:59-01:00',
    '2026-02-30T00:00:00Z',
    '2026-01-01T24:00:00Z',
    '2026-01-01T00:00:00+99:00',
    '2300-06-01T12:00:00.123457Z',
    '1600-01-01T00:00:00Z',
    true,
    null,
    [],
    {},
  ),
  fc.jsonValue({ maxDepth: 2 }),
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.integer(),
  fc.double(),
);

type Json = unknown;
/** One mutation of a JSON object: remove, swap a value for a weird one, or nest it in `data`/`shipment`/`order`. */
function mutate(value: Json, path: string[], how: 'remove' | 'replace' | 'nest', replacement: Json, nestKey: string): Json {
  if (path.length === 0 || typeof value !== 'object' || value === null) {
    return how === 'nest' ? { [nestKey]: value } : replacement;
  }
  const [head, ...rest] = path;
  const copy: Record<string, Json> | Json[] = Array.isArray(value) ? [...value] : { ...(value as Record<string, Json>) };
  const c = copy as Record<string, Json>;
  if (!(head in c)) return copy;
  if (rest.length === 0 && how === 'remove') delete c[head];
  else c[head] = mutate(c[head], rest, how, replacement, nestKey);
  return copy;
}

/** Every path of an object, up to depth 3 (field names and array indexes). */
function paths(v: Json, prefix: string[] = [], depth = 0): string[][] {
  if (typeof v !== 'object' || v === null || depth >= 3) return [];
  return Object.keys(v).flatMap((k) => [[...prefix, k], ...paths((v as Record<string, Json>)[k], [...prefix, k], depth + 1)]);
}

const mutation = fc.record({
  how: fc.constantFrom('remove', 'replace', 'replace', 'nest') as fc.Arbitrary<'remove' | 'replace' | 'nest'>,
  replacement: weird,
  nestKey: fc.constantFrom('data', 'shipment', 'order', 'transaction', 'return'),
  pick: fc.nat(),
});

const realistic: fc.Arbitrary<{ topic: string; body: Json }> = fc
  .tuple(
    fc.oneof(
      fc.constantFrom(...samples).map((c) => ({ topic: c.topic as string, body: c.payload as Json })),
      fc.constant({ topic: 'poll.shipment.timeline', body: timelineSample as Json }),
    ),
    fc.array(mutation, { minLength: 1, maxLength: 4 }),
  )
  .map(([{ topic, body }, ms]) => {
    let b = body;
    for (const m of ms) {
      const all = paths(b);
      const path = m.how === 'nest' && m.pick % 5 === 0 ? [] : all.length > 0 ? all[m.pick % all.length] : [];
      b = mutate(b, path, m.how, m.replacement, m.nestKey);
    }
    return { topic, body: b };
  });

const deep = fc.integer({ min: 5_000, max: 20_000 }).map((d) => `{"id":1,"x":${'['.repeat(d)}${']'.repeat(d)}}`);

const hostileRow: fc.Arbitrary<{ topic: string | null; body: string }> = fc.oneof(
  { weight: 5, arbitrary: realistic.map(({ topic, body }) => ({ topic, body: JSON.stringify(body) })) },
  { weight: 2, arbitrary: fc.record({ topic: fc.constantFrom(...TOPICS), body: fc.jsonValue().map((v) => JSON.stringify(v)) }) },
  { weight: 1, arbitrary: fc.record({ topic: fc.option(fc.string({ maxLength: 30 })), body: fc.string({ maxLength: 50 }) }) },
  { weight: 1, arbitrary: fc.record({ topic: fc.constantFrom('order.shipped', 'billing.charge.created', 'order.shipment.delivered'), body: deep }) },
);

// ---- what PostgreSQL accepts, column by column ----------------------------------------------------------------------

const ISO6 = /^(\d{4})-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;
const problems: string[] = [];
const expect = (ok: boolean, what: string) => {
  if (!ok) problems.push(what);
};
const isId = (v: unknown) => Number.isSafeInteger(v) && (v as number) > 0;
const isTs = (v: unknown) => {
  const m = typeof v === 'string' ? ISO6.exec(v) : null;
  return m !== null && Number(m[1]) >= 1 && Number(m[1]) <= 9999;
};
const isUs = (v: unknown) => Number.isSafeInteger(v);
/** The provider's usual shape passes through optionalIso unchecked (its fast path): PostgreSQL parses it, and a value
 * it refuses (2026-02-30) is isolated by bisection. Any other shape must have been normalised. */
const PROVIDER_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,12})?Z$/;
const tsOrNull = (v: unknown, what: string) =>
  expect(v === null || isTs(v) || (typeof v === 'string' && PROVIDER_UTC.test(v)), `${what}: ${JSON.stringify(v)}`);

/** The normaliser's contract: everything it emits binds to its column (ids bigint, timestamps, numeric amount). */
function checkNormalised(row: InboxRow): string[] {
  problems.length = 0;
  const n = normaliseEvent(row);
  if (n.outcome !== 'apply') {
    expect(typeof n.reason === 'string' && n.reason.length > 0, `${n.outcome} without a reason`);
    return [...problems];
  }
  const e = n.entities;
  for (const o of e.orders) {
    expect(isId(o.id), `order id ${o.id}`);
    expect(isUs(o.eventUs), `order version ${o.eventUs}`);
    expect(o.channelId === null || isId(o.channelId), `channel id ${o.channelId}`);
    for (const f of ['createdDate', 'purchaseDate', 'lastUpdateAt'] as const) tsOrNull(o[f], `order ${f}`);
  }
  for (const s of e.shipments) {
    expect(isId(s.id), `shipment id ${s.id}`);
    expect(isUs(s.eventUs), `shipment version ${s.eventUs}`);
    expect(s.orderId === null || isId(s.orderId), `shipment order id ${s.orderId}`);
    expect(s.deliveredUs === null || isUs(s.deliveredUs), `delivered ${s.deliveredUs}`);
    for (const f of ['createdDate', 'lastUpdateAt', 'lastTrackingUpdateAt', 'actualFulfillmentDate', 'deliveryDate'] as const)
      tsOrNull(s[f], `shipment ${f}`);
  }
  for (const d of e.deliveries) expect(isId(d.shipmentId) && isUs(d.deliveredUs), `delivery ${JSON.stringify(d)}`);
  for (const x of e.timeline) {
    expect(isId(x.shipmentId), `timeline shipment ${x.shipmentId}`);
    expect(Number.isInteger(x.logTypeId) && x.logTypeId >= 0 && x.logTypeId < 2 ** 31, `log type ${x.logTypeId}`);
    expect(isTs(x.timestamp), `timeline timestamp ${x.timestamp}`);
  }
  for (const r of e.returns) {
    expect(isId(r.id) && isUs(r.eventUs), `return ${r.id}`);
    expect(r.originalShipmentId === null || isId(r.originalShipmentId), `original shipment ${r.originalShipmentId}`);
  }
  for (const x of e.transactions) {
    expect(x.transactionId.length > 0 && !/\p{Cs}/u.test(x.transactionId), `transaction id ${JSON.stringify(x.transactionId)}`);
    expect(/^-?(\d+(\.\d+)?|\d(\.\d+)?e[+-]\d+)$/.test(x.amount) && Number.isFinite(Number(x.amount)), `amount ${x.amount}`);
    expect(isUs(x.eventUs), `transaction version ${x.eventUs}`);
    expect(x.invoiceId === null || isId(x.invoiceId), `invoice id ${x.invoiceId}`);
    expect(x.refKey === null || isId(x.refKey), `ref key ${x.refKey}`);
    for (const f of ['chargeDate', 'invoiceDate'] as const) tsOrNull(x[f], `transaction ${f}`);
  }
  return [...problems];
}

let nextId = 1;
const asRow = (r: { topic: string | null; body: string }, via = 'webhook'): InboxRow => ({
  id: nextId++,
  sourceId: 'src-1',
  topic: r.topic,
  body: r.body,
  eventTime: null,
  receivedAt: '2026-02-01 10:00:00.123456+00',
  via,
});

t.test('the normaliser never throws, gives every dead event a reason, and emits only values their columns accept', async (t) => {
  try {
    fc.assert(
      fc.property(hostileRow, fc.constantFrom('webhook', 'poll', 'replay'), (r, via) => {
        const found = checkNormalised(asRow(r, via));
        if (found.length > 0) throw new Error(found.join('; '));
      }),
      { seed: SEED, numRuns: Number(process.env.FC_RUNS ?? 3000) },
    );
    t.pass('property held');
  } catch (err) {
    onFailure(t)(err as Error);
  }
});

// Counterexamples the property found, kept as examples.
t.test('counterexamples: what the normaliser used to throw or emit for PostgreSQL to refuse', async (t) => {
  const late = normaliseEvent(
    asRow({
      topic: 'order.shipment.delivered',
      body: JSON.stringify({ id: 5, status: 'Completed', created_date: '9999-12-31T23:59:59-01:00', event_time: '9999-12-31T23:59:59.999999+00:00' }),
    }),
  );
  t.equal(late.outcome, 'apply');
  if (late.outcome === 'apply') {
    t.equal(late.entities.shipments[0].createdDate, null, 'a date past 2255 is not an instant (was +010000-01-01…)');
    t.equal(late.entities.shipments[0].eventUs, 1769940000123456, 'nor a version: received_at is');
  }
  const early = normaliseEvent(
    asRow({ topic: 'order.shipment.delivered', body: JSON.stringify({ id: 5, status: 'Completed', event_time: '0001-01-01T00:00:00+01:00' }) }),
  );
  if (early.outcome === 'apply') t.equal(early.entities.shipments[0].eventUs > 0, true, 'a version in year 0 falls back to received_at');

  // A delivery_date optionalIso passes but parseMicros refuses (once it refuses year 0): deliveredUs must not be
  // undefined, or the upsert's isoFromMicros(undefined) throws RangeError out of the chunk (retried forever).
  const year0 = normaliseEvent(
    asRow({ topic: 'order.shipment.delivered', body: JSON.stringify({ id: 6, status: 'Completed', delivery_date: '0000-12-31T23:00:00Z', event_time: '2026-02-01T00:00:00Z' }) }),
  );
  if (year0.outcome === 'apply') t.equal(year0.entities.shipments[0].deliveredUs, null, 'no delivery time rather than undefined');
  else t.fail('a bad delivery_date alone does not make the shipment dead here');

  const blank = normaliseEvent(asRow({ topic: 'billing.charge.created', body: '{"transaction_id":"T1","amount":"  "}' }));
  t.match(blank, { outcome: 'dead', reason: 'transaction amount missing or not a number' }, 'a blank amount is not 0');
  const hex = normaliseEvent(asRow({ topic: 'billing.charge.created', body: '{"transaction_id":"T1","amount":"0x1f"}' }));
  t.equal(hex.outcome, 'dead', 'a hexadecimal amount is not 31');
  const surrogate = normaliseEvent(asRow({ topic: 'billing.charge.created', body: '{"transaction_id":"\\ud800","amount":1}' }));
  t.match(surrogate, { outcome: 'dead', reason: 'transaction id missing or invalid' }, 'a lone surrogate transaction id');
});

t.test('whole chunks mixing good and hostile events through the real drain: every good event lands, nothing stays pending', async (t) => {
  const { sql } = await freshDatabase(t);
  await insertSources(sql, 2);
  // Hostile rows are sent by src-1 (some are real payloads of either client, mutated or not): the good ones are src-1's
  // too, or a hostile copy of a client-2 entity would own it and refuse its good events (docs/tenancy.md).
  const good = samples.filter((c) => !c.topic.startsWith('billing.') && c.clientId === 1);
  let runs = 0;

  await fc
    .assert(
      fc.asyncProperty(
        fc.array(fc.tuple(hostileRow, fc.constantFrom('\u0000', '\ud800', '')), { minLength: 1, maxLength: 12 }),
        fc.subarray(good, { minLength: 1, maxLength: 12 }),
        fc.nat(),
        async (hostile, goods, shuffle) => {
          runs++;
          // A NUL or lone-surrogate escape in a string: valid JSON that jsonb and text refuse (only PostgreSQL can tell).
          const bad = hostile.map(([r, poison]) => ({
            sourceId: 'src-1',
            topic: r.topic,
            body: poison === '' ? r.body : r.body.replace(/"([^"\\]*)"(?=\s*[,}\]])/, `"$1${poison === '\u0000' ? '\\u0000' : '\\ud800'}"`),
            kind: 'hostile' as const,
          }));
          const fine = goods.map((c) => ({ ...fromChange(c), kind: 'good' as const }));
          const all = [...bad, ...fine].map((e, i) => ({ e, k: (i * 7919 + shuffle) % 101 })).sort((a, b) => a.k - b.k).map((x) => x.e);
          const ids = await insertInbox(sql, all);
          const r = await drainChunk(sql, 500); // throws: the property fails
          const rows = await sql`select id::int, status, last_error from inbox_events where id = any(${ids}::bigint[])`;
          const byId = new Map(rows.map((x) => [x.id, x]));
          if (r.claimed !== all.length) throw new Error(`claimed ${r.claimed} of ${all.length}`);
          for (const [i, e] of all.entries()) {
            const row = byId.get(ids[i]);
            if (!row || row.status === 'pending') throw new Error(`event ${i} (${e.kind}) still pending`);
            if (row.status !== 'processed' && !row.last_error) throw new Error(`event ${i} ${row.status} without a reason`);
            if (e.kind === 'good' && row.status !== 'processed')
              throw new Error(`a good ${e.topic} event is ${row.status}: ${row.last_error}`);
          }
        },
      ),
      { seed: SEED, numRuns: Number(process.env.FC_CHUNK_RUNS ?? 25) },
    )
    .catch(onFailure(t));

  const [{ dead, pending }] = await sql`
    select count(*) filter (where status = 'dead')::int as dead, count(*) filter (where status = 'pending')::int as pending
      from inbox_events`;
  t.equal(pending, 0, 'nothing left pending');
  t.ok(dead > 0, `${dead} hostile events dead-lettered over ${runs} chunks`);
  const [{ n }] = await sql`select count(*)::int as n from inbox_events where status = 'dead' and last_error like 'apply failed:%'`;
  t.ok(n > 0, `${n} of them isolated by bisection (PostgreSQL refused them)`);
});

t.test('a body nested 300,000 deep: the normaliser does not throw, PostgreSQL refuses it, bisection dead-letters it', async (t) => {
  const { sql } = await freshDatabase(t);
  await insertSources(sql, 1);
  const d = 300_000;
  const deepBody = `{"id":7,"status":"Completed","event_time":"2026-02-01T00:00:00Z","x":${'['.repeat(d)}${']'.repeat(d)}}`;
  t.doesNotThrow(() => normaliseEvent(asRow({ topic: 'order.shipped', body: deepBody })));
  await insertInbox(sql, [
    { topic: 'order.shipment.delivered', body: deepBody },
    { topic: 'order.shipment.delivered', body: { id: 8, status: 'Completed', event_time: '2026-02-01T00:00:00Z' } },
  ]);
  const r = await drainChunk(sql, 500);
  t.match(r, { claimed: 2, processed: 1, dead: 1 });
  const [dead] = await sql`select last_error from inbox_events where status = 'dead'`;
  t.match(dead.last_error, /^apply failed: stack depth limit exceeded/);
  const shipments = await sql`select id::int from shipments`;
  t.same(shipments.map((s) => s.id), [8]);
});

t.test('a charge whose transaction id is a lone surrogate is dead, and its chunk lands (it used to throw every time)', async (t) => {
  const { sql } = await freshDatabase(t);
  await insertSources(sql, 1);
  // PostgreSQL stores U+FFFD for the lone surrogate: the id read back matched no input and the chunk threw a TypeError.
  await insertInbox(sql, [
    { topic: 'billing.charge.created', body: '{"transaction_id":"\\ud800","amount":1,"reference_type":"Shipment","reference_id":"99"}' },
    { topic: 'billing.charge.created', body: { transaction_id: 'T-ok', amount: 2, reference_type: 'Shipment', reference_id: '99' } },
  ]);
  const r = await drainChunk(sql, 500);
  t.match(r, { claimed: 2, processed: 1, dead: 1 });
  const txns = await sql`select transaction_id, attribution_status from transactions`;
  t.same(txns.map((x) => ({ ...x })), [{ transaction_id: 'T-ok', attribution_status: 'pending' }]);
});
