import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { API_VERSION, type Order, SubscribableTopics, type Transaction, type TransactionQuery } from '../../../src/provider/shapes.js';
import { createRandom } from './random.js';
import { createRateLimiter, type RateLimitOptions } from './rate-limit.js';
import { type Client, createWorld, type Subscription, type World, type WorldOptions } from './world.js';

/**
 * The provider's REST API over a World, on loopback: orders (offset pages, paging in headers), shipments and their
 * timelines, returns, billing transactions (cursor pages), webhook subscriptions, the rate limit, and injectable
 * faults. `GET /_sim/truth` (no auth) serves world.truth().
 */

export const API_VERSIONS = ['2025-07', '2026-01', '2026-07'] as const;
export const DEFAULT_RATE_LIMIT: RateLimitOptions = { limit: 150, windowMs: 60_000 };
const ORDER_LIMIT = { default: 50, max: 250 };
const TRANSACTION_PAGE_SIZE = { default: 100, max: 1000 };
const DEFAULT_TRANSACTION_WINDOW_MS = 7 * 24 * 60 * 60_000;
const MAX_BODY_BYTES = 1024 * 1024;

export interface Faults {
  /** Share of authenticated requests answered 429 (x-retry-after: 1) regardless of the rate limit. */
  rate429?: number;
  /** Share of authenticated requests answered 500. */
  rate500?: number;
}

/**
 * How `GET /order` answers, each a possibility the provider's contract allows (OA documents no sort by update time,
 * no bound inclusivity and no paging headers). Mutable on the simulator: tests switch it between polls.
 */
export interface OrderListing {
  /**
   * Result order when the request sends no `SortOrder`: `newest` / `oldest` by creation (the 1.0 spec's `Newest` /
   * `Oldest`), `arbitrary` (stable, by a hash of the id), or `last_update` ((last_update_at, id) ascending: what wharf
   * once assumed). A request's `SortOrder=Newest|Oldest` wins. Default `newest`.
   */
  sort: 'newest' | 'oldest' | 'arbitrary' | 'last_update';
  /** `LastUpdateStartDate` "updated later than": `exclusive` (default) or `inclusive`; the end bound likewise. */
  bounds: 'exclusive' | 'inclusive';
  /**
   * The update time the filter compares is the order's last_update_at truncated to this many ms (1000: the provider
   * keeps whole seconds for filtering), so many orders tie on it. Bodies still carry the precise time. Default 1.
   */
  updateGranularityMs: number;
  /** Send `total-count` and the other paging headers (undocumented in OA). Default true. */
  pagingHeaders: boolean;
}

export const DEFAULT_ORDER_LISTING: OrderListing = {
  sort: 'newest',
  bounds: 'exclusive',
  updateGranularityMs: 1,
  pagingHeaders: true,
};

export interface SimulatorOptions {
  /** How GET /order sorts, bounds and pages (default DEFAULT_ORDER_LISTING). */
  orderListing?: Partial<OrderListing>;
  /** Serve this world; otherwise one is created from worldOptions. */
  world?: World;
  worldOptions?: WorldOptions;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0: a free port. */
  port?: number;
  /** Per token; default 150 per 60 s; false disables it (and the x-remaining-calls header). */
  rateLimit?: RateLimitOptions | false;
  faults?: Faults;
  /** Seeds the fault draws. Default 1. */
  seed?: number;
}

export interface SimulatorStats {
  total: number;
  /** Keyed by route, e.g. `GET /order`, `POST /transactions:query`; `unknown` for anything unmatched. */
  byEndpoint: Record<string, number>;
  /** Keyed by status code, e.g. `200`, `429`, `500`. */
  byStatus: Record<string, number>;
}

export interface Simulator {
  /** The origin, e.g. http://127.0.0.1:41234; the API lives under `${url}/2026-01`. */
  url: string;
  /** `${url}/${API_VERSION}`. */
  apiUrl: string;
  port: number;
  world: World;
  stats: SimulatorStats;
  /** Mutable: change it between requests to switch faults on or off. */
  faults: Faults;
  /** Mutable: how GET /order sorts, bounds and pages. */
  orderListing: OrderListing;
  /** Called before each authenticated request is answered (tests change the world between page reads). */
  onRequest?: (route: string) => void;
  close(): Promise<void>;
}

class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
  ) {
    super(message);
  }
}

interface Reply {
  status?: number;
  body: unknown;
  headers?: Record<string, string>;
}
interface Request {
  client: Client;
  /** This server's origin, for the absolute URLs some answers carry. */
  origin: string;
  version: string;
  url: URL;
  /** Query parameters by lower-cased name: the provider's (ASP.NET) binding ignores case. */
  query: Map<string, string>;
  params: string[];
  body: unknown;
}
interface Route {
  method: string;
  pattern: RegExp;
  name: string;
  handle(world: World, req: Request, sim: SimState): Reply;
}
interface SimState {
  orderListing: OrderListing;
}

export async function startSimulator(options: SimulatorOptions = {}): Promise<Simulator> {
  const world = options.world ?? createWorld(options.worldOptions);
  const rateLimit = options.rateLimit === undefined ? DEFAULT_RATE_LIMIT : options.rateLimit;
  const limiter = rateLimit ? createRateLimiter(rateLimit) : null;
  const faults: Faults = { ...options.faults };
  const state: SimState = { orderListing: { ...DEFAULT_ORDER_LISTING, ...options.orderListing } };
  let self: Simulator | undefined;
  const faultRng = createRandom(options.seed ?? 1);
  const stats: SimulatorStats = { total: 0, byEndpoint: {}, byStatus: {} };

  function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    if (status === 204) {
      stats.byStatus[status] = (stats.byStatus[status] ?? 0) + 1;
      res.writeHead(204, headers);
      res.end();
      return;
    }
    const json = JSON.stringify(body);
    stats.byStatus[status] = (stats.byStatus[status] ?? 0) + 1;
    res.writeHead(status, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': String(Buffer.byteLength(json)),
      ...headers,
    });
    res.end(json);
  }
  const error = (status: number, message: string) => ({ statusCode: status, message });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    stats.total++;
    const url = new URL(req.url ?? '/', 'http://simulator');
    if (req.method === 'GET' && url.pathname === '/_sim/truth') {
      count('GET /_sim/truth');
      return send(res, 200, world.truth());
    }
    const match = /^\/([^/]+)(\/.*)$/.exec(url.pathname);
    const version = match?.[1] ?? '';
    const path = match?.[2] ?? '';
    const route = ROUTES.find((r) => r.method === req.method && r.pattern.test(path));
    count(route?.name ?? 'unknown');
    if (!(API_VERSIONS as readonly string[]).includes(version)) {
      return send(res, 404, error(404, `Unknown API version in ${url.pathname}`));
    }

    const auth = req.headers.authorization ?? '';
    const client = auth.startsWith('Bearer ') ? world.clientByToken(auth.slice('Bearer '.length)) : undefined;
    if (!client) return send(res, 401, error(401, 'Unauthorized'));

    const headers: Record<string, string> = {};
    if (limiter) {
      const decision = limiter.take(client.token);
      headers['x-remaining-calls'] = String(decision.remaining);
      if (!decision.allowed) return tooMany(res, decision.retryAfterS, headers);
    }
    if (faults.rate429 && faultRng.chance(faults.rate429)) return tooMany(res, 1, headers);
    if (faults.rate500 && faultRng.chance(faults.rate500)) {
      return send(res, 500, error(500, 'An unexpected error occurred'), headers);
    }
    if (!route) return send(res, 404, error(404, `No route for ${req.method} ${path}`), headers);
    self?.onRequest?.(route.name);

    try {
      const body = req.method === 'POST' ? await readJson(req) : undefined;
      if (req.method === 'DELETE') req.resume();
      const query = new Map([...url.searchParams].map(([k, v]) => [k.toLowerCase(), v]));
      const params = (route.pattern.exec(path) ?? []).slice(1);
      const reply = route.handle(world, { client, origin: `http://${req.headers.host ?? 'simulator'}`, version, url, query, params, body }, state);
      send(res, reply.status ?? 200, reply.body, { ...headers, ...reply.headers });
    } catch (err) {
      if (!(err instanceof HttpError)) throw err;
      send(res, err.statusCode, error(err.statusCode, err.message), headers);
    }
  }

  function tooMany(res: ServerResponse, seconds: number, headers: Record<string, string>): void {
    const message = `Rate limit is exceeded. Try again in ${seconds} seconds.`;
    send(res, 429, error(429, message), { ...headers, 'x-retry-after': String(seconds) });
  }

  function count(endpoint: string): void {
    stats.byEndpoint[endpoint] = (stats.byEndpoint[endpoint] ?? 0) + 1;
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      // A simulator bug: answer like the provider's opaque 500 rather than hanging the caller.
      console.error('simulator:', err);
      if (!res.headersSent) send(res, 500, error(500, 'An unexpected error occurred'));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  const origin = `http://${options.host ?? '127.0.0.1'}:${port}`;
  self = {
    url: origin,
    apiUrl: `${origin}/${API_VERSION}`,
    port,
    world,
    stats,
    faults,
    get orderListing() {
      return state.orderListing;
    },
    set orderListing(v: OrderListing) {
      state.orderListing = v;
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // Pollers keep connections alive; without this close() waits for them to idle out.
        server.closeAllConnections();
      }),
  };
  return self;
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, 'Request body too large');
    chunks.push(chunk);
  }
  if (size === 0) return {};
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpError(400, 'Request body is not valid JSON');
  }
}

// --- parameters -----------------------------------------------------------------------------------------------

function integerParam(query: Map<string, string>, name: string, fallback: number): number {
  const raw = query.get(name.toLowerCase());
  if (raw === undefined || raw === '') return fallback;
  if (!/^-?\d+$/.test(raw)) throw new HttpError(400, `${name} must be an integer`);
  return Number(raw);
}

/** A date parameter as an ISO string with milliseconds, the format the world stores, so strings compare as times. */
function dateValue(raw: unknown, name: string): string | undefined {
  if (raw === undefined || raw === null || raw === '') return undefined;
  const ms = typeof raw === 'string' ? Date.parse(raw) : Number.NaN;
  if (Number.isNaN(ms)) throw new HttpError(400, `${name} must be a date-time`);
  return new Date(ms).toISOString();
}

/** First index whose key is >= bound (or > bound when `after`) in a list whose keys do not decrease. */
function bisect<T, K extends string | number>(list: readonly T[], key: (item: T) => K, bound: K, after = false): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const k = key(list[mid]);
    if (k < bound || (after && k === bound)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function between<T>(list: readonly T[], key: (item: T) => string, from?: string, to?: string): readonly T[] {
  const lo = from === undefined ? 0 : bisect(list, key, from);
  const hi = to === undefined ? list.length : bisect(list, key, to, true);
  return list.slice(lo, Math.max(lo, hi));
}

// --- routes ---------------------------------------------------------------------------------------------------

/**
 * Orders whose update time (last_update_at truncated to `updateGranularityMs`) is within LastUpdateStartDate and
 * LastUpdateEndDate (each optional; exclusive or inclusive per `bounds`), in the listing's sort order (or the
 * request's `SortOrder=Newest|Oldest`, by creation). Pages are offsets into the current result: an order updated
 * mid-paging moves (or leaves the range), shifting later pages, as an offset-paged API does. `next-page` is a path
 * (with the version), relative to the origin.
 */
function listOrders(world: World, req: Request, sim: SimState): Reply {
  const listing = sim.orderListing;
  const from = dateValue(req.query.get('lastupdatestartdate'), 'LastUpdateStartDate');
  const to = dateValue(req.query.get('lastupdateenddate'), 'LastUpdateEndDate');
  const page = integerParam(req.query, 'Page', 1);
  const limit = integerParam(req.query, 'Limit', ORDER_LIMIT.default);
  if (limit < 1 || limit > ORDER_LIMIT.max) throw new HttpError(400, `Limit must be between 1 and ${ORDER_LIMIT.max}`);
  if (page < 1) throw new HttpError(400, 'Page must be 1 or more');
  const sortParam = req.query.get('sortorder');
  if (sortParam !== undefined && sortParam !== '' && sortParam !== 'Newest' && sortParam !== 'Oldest') {
    throw new HttpError(400, 'SortOrder must be Newest or Oldest');
  }
  const ids = req.query.get('ids');
  const idSet = ids ? new Set(ids.split(',').map((x) => Number(x.trim()))) : null;

  const g = Math.max(1, listing.updateGranularityMs);
  const filterMs = (o: Order) => {
    const ms = Date.parse(o.last_update_at ?? '');
    return Math.floor(ms / g) * g;
  };
  const fromMs = from === undefined ? undefined : Date.parse(from);
  const toMs = to === undefined ? undefined : Date.parse(to);
  const exclusive = listing.bounds === 'exclusive';
  const sorted = world.ordersByLastUpdate(req.client.id);
  // The list is sorted by last_update_at, so the truncated time is monotonic in it: bisect both ends.
  const lo = fromMs === undefined ? 0 : bisect(sorted, filterMs, fromMs, exclusive);
  const hi = toMs === undefined ? sorted.length : bisect(sorted, filterMs, toMs, !exclusive);
  let matching = sorted.slice(lo, Math.max(lo, hi));
  if (idSet) matching = matching.filter((o) => idSet.has(o.id));
  const sort = sortParam === 'Newest' ? 'newest' : sortParam === 'Oldest' ? 'oldest' : listing.sort;
  if (sort === 'newest') matching.sort((a, b) => b.id - a.id);
  else if (sort === 'oldest') matching.sort((a, b) => a.id - b.id);
  else if (sort === 'arbitrary') matching.sort((a, b) => scramble(a.id) - scramble(b.id) || a.id - b.id);

  const totalPages = Math.ceil(matching.length / limit);
  const headers: Record<string, string> = {};
  if (listing.pagingHeaders) {
    headers['total-count'] = String(matching.length);
    headers['total-pages'] = String(totalPages);
    headers['page-number'] = String(page);
    if (page < totalPages) {
      const next = new URLSearchParams([...req.url.searchParams].filter(([k]) => k.toLowerCase() !== 'page'));
      next.set('Page', String(page + 1));
      headers['next-page'] = `/${req.version}/order?${next}`;
    }
  }
  return { body: matching.slice((page - 1) * limit, page * limit), headers };
}


/** A stable pseudo-random rank of an id (an integer hash): the "arbitrary but stable" order. */
function scramble(id: number): number {
  let h = Math.imul(id ^ 0x9e3779b9, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

function getOrder(world: World, req: Request): Reply {
  const order = world.order(req.client.id, Number(req.params[0]));
  if (!order) throw new HttpError(404, 'Order not found');
  return { body: order };
}

function getShipment(world: World, req: Request): Reply {
  const shipment = world.shipment(req.client.id, Number(req.params[0]));
  if (!shipment) throw new HttpError(404, 'Shipment not found');
  return { body: shipment };
}

function getTimeline(world: World, req: Request): Reply {
  const timeline = world.timeline(req.client.id, Number(req.params[0]));
  if (!timeline) throw new HttpError(404, 'Shipment not found');
  return { body: timeline };
}

const RETURN_LIMIT = { default: 50, max: 250 };

/**
 * GET /return (OA `/2026-01/return`): filters `Ids`, `Status` (comma lists; status compared without spaces),
 * `StartDate`/`EndDate` on insert_date and `CompletedStartDate`/`CompletedEndDate` on completed_date (all inclusive),
 * `SortOrder` Asc|Desc by creation (Desc, newest first, is the default), `Cursor` = page number, `Limit`. Answers
 * `{items, first, next, last, prev}` with absolute URLs. No last-update filter: the provider documents none.
 */
function listReturns(world: World, req: Request): Reply {
  const q = req.query;
  const list = (name: string) => q.get(name)?.split(',').map((v) => v.trim()).filter((v) => v !== '');
  const ids = list('ids')?.map(Number);
  const statuses = list('status')?.map((v) => v.replace(/\s/g, '').toLowerCase());
  const from = dateValue(q.get('startdate'), 'StartDate');
  const to = dateValue(q.get('enddate'), 'EndDate');
  const completedFrom = dateValue(q.get('completedstartdate'), 'CompletedStartDate');
  const completedTo = dateValue(q.get('completedenddate'), 'CompletedEndDate');
  const sortOrder = q.get('sortorder') ?? 'Desc';
  if (sortOrder !== 'Asc' && sortOrder !== 'Desc') throw new HttpError(400, 'SortOrder must be Asc or Desc');
  const page = integerParam(q, 'Cursor', 1);
  const limit = integerParam(q, 'Limit', RETURN_LIMIT.default);
  if (limit < 1 || limit > RETURN_LIMIT.max) throw new HttpError(400, `Limit must be between 1 and ${RETURN_LIMIT.max}`);
  if (page < 1) throw new HttpError(400, 'Cursor must be 1 or more');
  const ms = (v: string | null) => (v === null ? Number.NaN : Date.parse(v));
  let items = world.returnsOf(req.client.id).filter((r) => {
    if (ids && !ids.includes(r.id)) return false;
    if (statuses && !statuses.includes(r.status.replace(/\s/g, '').toLowerCase())) return false;
    if (from && ms(r.insert_date) < Date.parse(from)) return false;
    if (to && ms(r.insert_date) > Date.parse(to)) return false;
    if (completedFrom && !(ms(r.completed_date) >= Date.parse(completedFrom))) return false;
    if (completedTo && !(ms(r.completed_date) <= Date.parse(completedTo))) return false;
    return true;
  });
  items = items.slice().sort((a, b) => a.id - b.id);
  if (sortOrder === 'Desc') items.reverse();
  const pages = Math.max(1, Math.ceil(items.length / limit));
  const url = (n: number) => {
    const u = new URL(req.url.toString());
    u.searchParams.set('Cursor', String(n));
    return `${req.origin}${u.pathname}?${u.searchParams}`;
  };
  return {
    body: {
      items: items.slice((page - 1) * limit, page * limit),
      first: url(1),
      next: page < pages ? url(page + 1) : null,
      last: url(pages),
      prev: page > 1 ? url(page - 1) : null,
    },
  };
}

function getReturn(world: World, req: Request): Reply {
  const ret = world.returnById(req.client.id, Number(req.params[0]));
  if (!ret) throw new HttpError(404, 'Return not found');
  return { body: ret };
}

/** A transaction query with its defaults filled in, plus where the page starts; cursors are this, encoded. */
interface TransactionCursor {
  from: string;
  to: string;
  pageSize: number;
  referenceTypes?: string[];
  transactionTypes?: string[];
  invoicedStatus?: boolean;
  descending: boolean;
  offset: number;
}

const encodeCursor = (c: TransactionCursor): string => Buffer.from(JSON.stringify(c)).toString('base64url');

function decodeCursor(raw: string): TransactionCursor {
  try {
    const c = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as TransactionCursor;
    if (typeof c.from === 'string' && Number.isInteger(c.offset) && Number.isInteger(c.pageSize)) return c;
  } catch {
    // fall through: same answer as a well-formed but foreign cursor
  }
  throw new HttpError(400, 'Invalid Cursor');
}

function stringList(value: unknown, name: string): string[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) {
    throw new HttpError(400, `${name} must be an array of strings`);
  }
  return value.length > 0 ? value : undefined;
}

/** OA `invoiced_status`: boolean or null (both); anything else is a 400, as ASP.NET binding refuses it. */
function booleanOrNull(v: unknown, name: string): boolean | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw new HttpError(400, `${name} must be a boolean`);
  return v;
}

function parseTransactionQuery(body: unknown, nowMs: number): TransactionCursor {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new HttpError(400, 'Body must be an object');
  }
  const q = body as TransactionQuery;
  const pageSize = q.page_size ?? TRANSACTION_PAGE_SIZE.default;
  if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > TRANSACTION_PAGE_SIZE.max) {
    throw new HttpError(400, `page_size must be between 1 and ${TRANSACTION_PAGE_SIZE.max}`);
  }
  if (q.sort_order !== undefined && q.sort_order !== 'Ascending' && q.sort_order !== 'Descending') {
    throw new HttpError(400, 'sort_order must be Ascending or Descending');
  }
  return {
    from: dateValue(q.from_date, 'from_date') ?? new Date(nowMs - DEFAULT_TRANSACTION_WINDOW_MS).toISOString(),
    to: dateValue(q.to_date, 'to_date') ?? new Date(nowMs).toISOString(),
    pageSize,
    referenceTypes: stringList(q.reference_types, 'reference_types'),
    transactionTypes: stringList(q.transaction_types, 'transaction_types'),
    invoicedStatus: booleanOrNull(q.invoiced_status, 'invoiced_status'),
    descending: q.sort_order === 'Descending',
    offset: 0,
  };
}

/**
 * Transactions whose charge_date is in [from_date, to_date] (default: the last 7 days of world time), sorted by
 * (charge_date, transaction_id), ascending unless sort_order is Descending. The cursor carries the whole query
 * (defaults resolved on the first page, so the window does not slide while paging) and an offset; a `Cursor`
 * query parameter overrides the body. Offsets shift if a back-dated transaction lands inside the window mid-scan.
 */
function queryTransactions(world: World, req: Request): Reply {
  const rawCursor = req.query.get('cursor');
  const c = rawCursor ? decodeCursor(rawCursor) : parseTransactionQuery(req.body, world.now());
  let items = between(world.transactionsByChargeDate(req.client.id), (t: Transaction) => t.charge_date, c.from, c.to);
  if (c.referenceTypes) items = items.filter((t) => c.referenceTypes?.includes(t.reference_type));
  if (c.transactionTypes) items = items.filter((t) => c.transactionTypes?.includes(t.transaction_type));
  if (typeof c.invoicedStatus === 'boolean') items = items.filter((t) => t.invoiced_status === c.invoicedStatus);
  if (c.descending) items = items.slice().reverse();

  const at = (offset: number): string => encodeCursor({ ...c, offset });
  const lastOffset = Math.max(0, Math.floor((items.length - 1) / c.pageSize) * c.pageSize);
  return {
    body: {
      items: items.slice(c.offset, c.offset + c.pageSize),
      first: at(0),
      last: at(lastOffset),
      next: c.offset + c.pageSize < items.length ? at(c.offset + c.pageSize) : null,
      prev: c.offset > 0 ? at(Math.max(0, c.offset - c.pageSize)) : null,
    },
  };
}

/** OA `Webhooks.Topics` per version: 2026-07 adds topics a 2026-01 subscription refuses. */
const TOPICS_BY_VERSION: Record<string, readonly string[]> = {
  '2025-07': SubscribableTopics,
  '2026-01': SubscribableTopics,
  '2026-07': [
    ...SubscribableTopics,
    'order.delivered',
    'order.shipment.tracking.updated',
    'order.shipment.address.updated',
    'order.shipment.line_item.added',
    'order.shipment.line_item.removed',
    'order.shipment.line_item.updated',
    'order.shipment.shipping_service.updated',
    'order.shipment.tracking_received',
  ],
};

/** The list item (OA `Webhooks.V2.WebhookViewModelV2`): string id, `enabled`, never the secret. */
const listed = (s: Subscription) => ({
  id: String(s.id),
  created_at: s.created_at,
  description: s.description,
  enabled: s.enabled,
  topics: s.topics,
  url: s.url,
});

/** GET /webhook: `{ items, next, prev }`, `RecordsPerPage` (default 50) and `Cursor` (an opaque offset here). */
function listWebhooks(world: World, req: Request): Reply {
  const per = integerParam(req.query, 'RecordsPerPage', 50);
  const raw = req.query.get('cursor');
  const offset = raw ? Number(Buffer.from(raw, 'base64url').toString('utf8')) : 0;
  if (!Number.isInteger(offset) || offset < 0) throw new HttpError(400, 'Invalid Cursor');
  const all = world.subscriptions(req.client.id);
  const cursor = (n: number) => Buffer.from(String(n)).toString('base64url');
  return {
    body: {
      items: all.slice(offset, offset + per).map(listed),
      next: offset + per < all.length ? cursor(offset + per) : null,
      prev: offset > 0 ? cursor(Math.max(0, offset - per)) : null,
    },
  };
}

/**
 * POST /webhook (OA): `topics` (required, `Webhooks.Topics` of the version), `url` (required; HTTPS, except loopback
 * for tests), `description`, `secret`. 200 with the created subscription, its secret included (the only time it is
 * shown); 422 for input it cannot accept.
 */
function createWebhook(world: World, req: Request): Reply {
  const b = (req.body ?? {}) as { topics?: unknown; url?: unknown; description?: unknown; secret?: unknown };
  const invalid = (message: string) => new HttpError(422, message);
  const topics = Array.isArray(b.topics) && b.topics.every((x) => typeof x === 'string') ? (b.topics as string[]) : null;
  if (!topics || topics.length === 0) throw invalid('topics must be a non-empty array of strings');
  const allowed = TOPICS_BY_VERSION[req.version] ?? SubscribableTopics;
  const unknown = topics.filter((x) => !allowed.includes(x));
  if (unknown.length > 0) throw invalid(`unknown topics for ${req.version}: ${unknown.join(', ')}`);
  if (typeof b.url !== 'string' || !URL.canParse(b.url)) throw invalid('url must be an absolute URL');
  const url = new URL(b.url);
  const loopback = url.hostname === '127.0.0.1' || url.hostname === 'localhost' || url.hostname === '[::1]';
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) throw invalid('url must use HTTPS');
  if (b.description !== undefined && b.description !== null && typeof b.description !== 'string') {
    throw invalid('description must be a string');
  }
  if (b.secret !== undefined && b.secret !== null && (typeof b.secret !== 'string' || !b.secret.startsWith('whsec_'))) {
    throw invalid('secret must be a whsec_ string');
  }
  const subscription = world.subscribe(req.client.id, {
    topics,
    url: b.url,
    description: (b.description as string | null | undefined) ?? undefined,
    secret: (b.secret as string | null | undefined) ?? undefined,
  });
  const { enabled: _enabled, ...created } = subscription;
  return { status: 200, body: { ...created, id: String(subscription.id) } };
}

/** DELETE /webhook/{id}: 204, no body; another account's or an unknown id: 404. */
function deleteWebhook(world: World, req: Request): Reply {
  if (!world.unsubscribe(req.client.id, Number(req.params[0]))) throw new HttpError(404, 'Webhook not found');
  return { status: 204, body: undefined };
}

// --- inventory (issue #12: the inventory loader) ------------------------------------------------------------------

/**
 * `GET /inventory` (OA `Inventory.InventoryResponsePagedResponse`): the account's items, `PageSize` per page (default
 * 50, at most 250), no page parameter in the contract: the next page is the response's `next` link (here an opaque
 * `Cursor` the simulator reads back). Items carry what the loader reads: `inventory_id`, `name`, `sku`.
 */
function listInventory(world: World, req: Request): Reply {
  const pageSize = integerParam(req.query, 'PageSize', 50);
  if (pageSize < 1 || pageSize > 250) throw new HttpError(400, 'PageSize must be between 1 and 250');
  const offset = integerParam(req.query, 'Cursor', 0);
  const items = world
    .truth()
    .inventory.filter((i) => i.client_id === req.client.id)
    .sort((a, b) => a.id - b.id);
  const page = items.slice(offset, offset + pageSize).map((i) => ({ inventory_id: i.id, name: i.name, sku: i.sku }));
  const nextOffset = offset + pageSize;
  const link = (o: number) => `/${req.version}/inventory?PageSize=${pageSize}&Cursor=${o}`; // a path, as next-page is
  return {
    body: { items: page, first: link(0), last: null, next: nextOffset < items.length ? link(nextOffset) : null, prev: null },
  };
}

const INVENTORY_ROUTES: Route[] = [{ method: 'GET', pattern: /^\/inventory$/, name: 'GET /inventory', handle: listInventory }];

const ROUTES: Route[] = [
  { method: 'GET', pattern: /^\/order$/, name: 'GET /order', handle: listOrders },
  { method: 'GET', pattern: /^\/order\/(\d+)$/, name: 'GET /order/:id', handle: getOrder },
  { method: 'GET', pattern: /^\/shipment\/(\d+)$/, name: 'GET /shipment/:id', handle: getShipment },
  {
    method: 'GET',
    pattern: /^\/shipment\/(\d+)\/timeline$/,
    name: 'GET /shipment/:id/timeline',
    handle: getTimeline,
  },
  { method: 'GET', pattern: /^\/return$/, name: 'GET /return', handle: listReturns },
  { method: 'GET', pattern: /^\/return\/(\d+)$/, name: 'GET /return/:id', handle: getReturn },
  { method: 'POST', pattern: /^\/transactions:query$/, name: 'POST /transactions:query', handle: queryTransactions },
  { method: 'GET', pattern: /^\/webhook$/, name: 'GET /webhook', handle: listWebhooks },
  { method: 'POST', pattern: /^\/webhook$/, name: 'POST /webhook', handle: createWebhook },
  ...INVENTORY_ROUTES,
  { method: 'DELETE', pattern: /^\/webhook\/(\d+)$/, name: 'DELETE /webhook/:id', handle: deleteWebhook },
];
