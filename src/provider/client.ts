import { setTimeout as delay } from 'node:timers/promises';
import { SECOND } from '../config.js';
import { metrics } from '../metrics.js';
import {
  ProviderAuthError,
  ProviderNotFoundError,
  ProviderRequestError,
  ProviderResponseError,
  ProviderUnavailableError,
} from './errors.js';
import type { RateBudget } from './rate-budget.js';
import type {
  CreatedWebhookSubscription,
  InventoryItem,
  Order,
  Return,
  ReturnPage,
  Shipment,
  TimelineEntry,
  TransactionPage,
  TransactionQuery,
  WebhookSubscription,
} from './shapes.js';

/**
 * The provider's REST API as the poller uses it. Every HTTP attempt (retries included: the provider counts them)
 * first takes a token from the shared rate budget. 429: the budget is blocked for `x-retry-after` seconds for every
 * process, then the call is retried (bounded). 5xx and network errors: retried with exponential backoff and full
 * jitter (bounded attempts). Other 4xx: a typed error at once. The token is sent in one header and appears nowhere
 * else: not in URLs, errors or logs.
 */

export const ORDER_PAGE_LIMIT = 250;
export const TRANSACTION_PAGE_SIZE = 1000;

export interface ProviderClientOptions {
  /** The API origin, e.g. https://api.shipbob.com (a path prefix is kept). */
  baseUrl: string;
  /** Dated API version, e.g. 2026-01. */
  version: string;
  token: string;
  budget: RateBudget;
  fetch?: typeof fetch;
  /** Attempts for 5xx and network errors, the first included. Default 5. */
  maxAttempts?: number;
  /** 429s tolerated for one call before giving up (each waits as told). Default 20. */
  max429?: number;
  /** First backoff ceiling; doubles per failure up to retryMaxMs. Defaults 500 and 30 s. */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** Per attempt. Default 30 s. */
  timeoutMs?: number;
}

export interface OrderPageRequest {
  /** LastUpdateStartDate, inclusive (sent as given, so the provider's own precision survives a round trip). */
  from?: string;
  /** LastUpdateEndDate, inclusive. */
  to?: string;
  /** 1-based. Default 1. */
  page?: number;
  /** Default and maximum 250. */
  limit?: number;
}

export const RETURN_PAGE_LIMIT = 250;

/** GET /return filters (OA): comma lists, inclusive dates on creation and completion, `Cursor` a page number. */
export interface ReturnListRequest {
  ids?: readonly number[];
  statuses?: readonly string[];
  /** Created on or after. */
  startDate?: string;
  /** Completed on or after. */
  completedStartDate?: string;
  /** 1-based page. */
  cursor?: number;
  limit?: number;
}

export interface OrderPage {
  orders: Order[];
  /** The page `next-page` points to (its `Page`), or null when this is the last page. */
  nextPage: number | null;
  totalCount: number | null;
}

export interface ProviderClientStats {
  /** HTTP attempts made. */
  calls: number;
  /** Attempts after a call's first (429s included). */
  retries: number;
  /** 429 answers. */
  throttled: number;
  /** Wall time inside fetch, body read included: the provider's (and the network's) share. */
  providerMs: number;
}

export interface ProviderClient {
  listOrders(req: OrderPageRequest, signal?: AbortSignal): Promise<OrderPage>;
  getTimeline(shipmentId: number, signal?: AbortSignal): Promise<TimelineEntry[]>;
  /** GET /order/{id} (with its shipments); ProviderNotFoundError when the token's account has no such order. */
  getOrder(orderId: number, signal?: AbortSignal): Promise<Order>;
  /** GET /shipment/{id}; ProviderNotFoundError when unknown. */
  getShipment(shipmentId: number, signal?: AbortSignal): Promise<Shipment>;
  /** One return; ProviderNotFoundError when it does not know the id for this token. */
  getReturn(returnId: number, signal?: AbortSignal): Promise<Return>;
  /** A page of GET /return, oldest first; `nextCursor` is the page `next` points to, null on the last. */
  listReturns(req: ReturnListRequest, signal?: AbortSignal): Promise<{ items: Return[]; nextCursor: number | null }>;
  /** The first page of a query, or the page a cursor token names (a cursor overrides the body, as the API says). */
  queryTransactions(req: { query: TransactionQuery } | { cursor: string }, signal?: AbortSignal): Promise<TransactionPage>;
  /**
   * One page of the account's inventory items (`GET /inventory`): the first page, or the one its previous page's
   * `next` names. `next` must stay under the API's root (the bearer token never goes elsewhere).
   */
  listInventory(req: { pageSize?: number } | { next: string }, signal?: AbortSignal): Promise<InventoryPage>;
  /** Every webhook subscription of the token's account (GET /webhook, following `next`). */
  listWebhooks(signal?: AbortSignal): Promise<WebhookSubscription[]>;
  /** POST /webhook: a subscription sending `topics` to `url`, signed with `secret`. */
  createWebhook(
    req: { topics: readonly string[]; url: string; secret: string; description?: string },
    signal?: AbortSignal,
  ): Promise<CreatedWebhookSubscription>;
  readonly stats: ProviderClientStats;
}

interface Call {
  method: 'GET' | 'POST' | 'DELETE';
  /** Relative to the versioned root, e.g. `order?Page=2`. */
  path: string;
  body?: unknown;
  /** For messages: method and route, never the query string. */
  what: string;
}

export function createProviderClient(options: ProviderClientOptions): ProviderClient {
  const root = `${options.baseUrl.replace(/\/+$/, '')}/${options.version}`;
  const doFetch = options.fetch ?? fetch;
  const maxAttempts = options.maxAttempts ?? 5;
  const max429 = options.max429 ?? 20;
  const retryBaseMs = options.retryBaseMs ?? 500;
  const retryMaxMs = options.retryMaxMs ?? 30 * SECOND;
  const timeoutMs = options.timeoutMs ?? 30 * SECOND;
  const { budget } = options;
  const stats: ProviderClientStats = { calls: 0, retries: 0, throttled: 0, providerMs: 0 };
  const authorization = `Bearer ${options.token}`;

  async function call(c: Call, signal?: AbortSignal): Promise<{ body: unknown; headers: Headers }> {
    let failures = 0;
    let throttles = 0;
    for (let attempt = 1; ; attempt++) {
      await budget.acquire(signal);
      stats.calls++;
      if (attempt > 1) stats.retries++;
      const started = performance.now();
      let res: Response;
      let text: string;
      try {
        const timeout = AbortSignal.timeout(timeoutMs);
        res = await doFetch(`${root}/${c.path}`, {
          method: c.method,
          headers: {
            authorization,
            accept: 'application/json',
            ...(c.body === undefined ? {} : { 'content-type': 'application/json' }),
          },
          body: c.body === undefined ? undefined : JSON.stringify(c.body),
          signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
        });
        text = await res.text();
      } catch (err) {
        const ms = performance.now() - started;
        stats.providerMs += ms;
        // c.what is the endpoint's template ("GET /shipment/:id/timeline"): a bounded label, never an id or a token.
        metrics.providerRequests.inc({ endpoint: c.what, status: signal?.aborted ? 'aborted' : 'network' });
        metrics.providerRequestSeconds.observe({ endpoint: c.what }, ms / 1000);
        signal?.throwIfAborted();
        if (++failures >= maxAttempts) throw new ProviderUnavailableError(null, c.what, failures, { cause: err });
        await backoff(failures, signal);
        continue;
      }
      const ms = performance.now() - started;
      stats.providerMs += ms;
      metrics.providerRequests.inc({ endpoint: c.what, status: String(res.status) });
      metrics.providerRequestSeconds.observe({ endpoint: c.what }, ms / 1000);

      const remaining = remainingCalls(res.headers);
      if (remaining !== undefined) await budget.observeRemaining(remaining);
      if (res.status === 429) {
        stats.throttled++;
        metrics.provider429s.inc();
        await budget.block(retryAfterMs(res.headers, text));
        if (++throttles > max429) throw new ProviderUnavailableError(429, c.what, attempt);
        continue; // acquire() waits for the block to end
      }
      if (res.status >= 500) {
        if (++failures >= maxAttempts) throw new ProviderUnavailableError(res.status, c.what, failures);
        await backoff(failures, signal);
        continue;
      }
      if (res.status === 401 || res.status === 403) throw new ProviderAuthError(res.status, c.what);
      if (res.status === 404) throw new ProviderNotFoundError(c.what);
      if (res.status >= 400) throw new ProviderRequestError(res.status, c.what, errorDetail(text));
      try {
        return { body: JSON.parse(text), headers: res.headers };
      } catch {
        throw new ProviderResponseError(c.what, 'body is not JSON');
      }
    }
  }

  /** Full jitter: a uniform draw up to the doubling ceiling, so processes that failed together retry apart. */
  function backoff(failures: number, signal?: AbortSignal): Promise<void> {
    const ceiling = Math.min(retryMaxMs, retryBaseMs * 2 ** (failures - 1));
    return delay(Math.floor(Math.random() * ceiling), undefined, { signal });
  }

  return {
    stats,
    async listOrders(req, signal) {
      const q = new URLSearchParams();
      if (req.from !== undefined) q.set('LastUpdateStartDate', req.from);
      if (req.to !== undefined) q.set('LastUpdateEndDate', req.to);
      q.set('Page', String(req.page ?? 1));
      q.set('Limit', String(Math.min(req.limit ?? ORDER_PAGE_LIMIT, ORDER_PAGE_LIMIT)));
      const what = 'GET /order';
      const { body, headers } = await call({ method: 'GET', path: `order?${q}`, what }, signal);
      if (!Array.isArray(body)) throw new ProviderResponseError(what, 'expected an array of orders');
      return { orders: body as Order[], nextPage: nextPageNumber(headers, root), totalCount: intHeader(headers, 'total-count') };
    },
    async getTimeline(shipmentId, signal) {
      const what = 'GET /shipment/:id/timeline';
      const { body } = await call({ method: 'GET', path: `shipment/${shipmentId}/timeline`, what }, signal);
      if (!Array.isArray(body)) throw new ProviderResponseError(what, 'expected an array of timeline entries');
      return body as TimelineEntry[];
    },
    async getOrder(orderId, signal) {
      const what = 'GET /order/:id';
      const { body } = await call({ method: 'GET', path: `order/${orderId}`, what }, signal);
      const order = body as Order;
      if (typeof order !== 'object' || order === null || Number(order.id) !== orderId) {
        throw new ProviderResponseError(what, 'expected the order asked for');
      }
      return order;
    },
    async getShipment(shipmentId, signal) {
      const what = 'GET /shipment/:id';
      const { body } = await call({ method: 'GET', path: `shipment/${shipmentId}`, what }, signal);
      const shipment = body as Shipment;
      if (typeof shipment !== 'object' || shipment === null || Number(shipment.id) !== shipmentId) {
        throw new ProviderResponseError(what, 'expected the shipment asked for');
      }
      return shipment;
    },
    async getReturn(returnId, signal) {
      const what = 'GET /return/:id';
      const { body } = await call({ method: 'GET', path: `return/${returnId}`, what }, signal);
      const ret = body as Return;
      if (typeof ret !== 'object' || ret === null || Number(ret.id) !== returnId) {
        throw new ProviderResponseError(what, 'expected the return asked for');
      }
      return ret;
    },
    async listReturns(req, signal) {
      const q = new URLSearchParams();
      if (req.ids?.length) q.set('Ids', req.ids.join(','));
      if (req.statuses?.length) q.set('Status', req.statuses.join(','));
      if (req.startDate) q.set('StartDate', req.startDate);
      if (req.completedStartDate) q.set('CompletedStartDate', req.completedStartDate);
      q.set('SortOrder', 'Asc');
      q.set('Cursor', String(req.cursor ?? 1));
      q.set('Limit', String(Math.min(req.limit ?? RETURN_PAGE_LIMIT, RETURN_PAGE_LIMIT)));
      const what = 'GET /return';
      const { body } = await call({ method: 'GET', path: `return?${q}`, what }, signal);
      const page = body as ReturnPage;
      if (typeof page !== 'object' || page === null || !Array.isArray(page.items)) {
        throw new ProviderResponseError(what, 'expected { items[] }');
      }
      // `next` is a URL (OA format uri) whose Cursor is the next page number.
      let nextCursor: number | null = null;
      if (typeof page.next === 'string' && page.next !== '') {
        const n = Number(new URL(page.next, root).searchParams.get('Cursor') ?? Number.NaN);
        nextCursor = Number.isInteger(n) && n > (req.cursor ?? 1) ? n : null;
      }
      return { items: page.items, nextCursor };
    },
    async listWebhooks(signal) {
      const what = 'GET /webhook';
      const all: WebhookSubscription[] = [];
      let cursor: string | null = null;
      for (let pages = 0; pages < 100; pages++) {
        const path = cursor ? `webhook?RecordsPerPage=100&Cursor=${encodeURIComponent(cursor)}` : 'webhook?RecordsPerPage=100';
        const { body } = await call({ method: 'GET', path, what }, signal);
        const page = body as { items?: unknown; next?: unknown };
        if (typeof page !== 'object' || page === null || !Array.isArray(page.items)) {
          throw new ProviderResponseError(what, 'expected { items[] }');
        }
        all.push(...(page.items as WebhookSubscription[]));
        // `next` is not described (token or URL): a URL's Cursor parameter, else the value itself.
        const next = typeof page.next === 'string' && page.next !== '' ? page.next : null;
        if (next === null) break;
        cursor = URL.canParse(next) ? (new URL(next).searchParams.get('Cursor') ?? null) : next;
        if (cursor === null) break;
      }
      return all;
    },
    async createWebhook(req, signal) {
      const what = 'POST /webhook';
      const { body } = await call(
        { method: 'POST', path: 'webhook', body: { topics: req.topics, url: req.url, secret: req.secret, description: req.description ?? null }, what },
        signal,
      );
      const created = body as CreatedWebhookSubscription;
      if (typeof created !== 'object' || created === null || created.id === undefined) {
        throw new ProviderResponseError(what, 'expected the created subscription');
      }
      return { ...created, id: String(created.id) };
    },
    async queryTransactions(req, signal) {
      const what = 'POST /transactions:query';
      // OA types `next` as a string without saying token or URL: a URL's Cursor parameter, else the token itself.
      const cursor = 'cursor' in req ? (URL.canParse(req.cursor) ? (new URL(req.cursor).searchParams.get('Cursor') ?? req.cursor) : req.cursor) : null;
      const path = cursor !== null ? `transactions:query?Cursor=${encodeURIComponent(cursor)}` : 'transactions:query';
      const { body } = await call({ method: 'POST', path, body: 'cursor' in req ? {} : req.query, what }, signal);
      const page = body as TransactionPage;
      if (typeof page !== 'object' || page === null || !Array.isArray(page.items)) {
        throw new ProviderResponseError(what, 'expected { items[] }');
      }
      return page;
    },
    async listInventory(req, signal) {
      const what = 'GET /inventory';
      const path = 'next' in req ? pathUnderRoot(req.next, root, what) : `inventory?PageSize=${Math.min(req.pageSize ?? 250, 250)}`;
      const { body } = await call({ method: 'GET', path, what }, signal);
      const page = body as InventoryPage;
      if (typeof page !== 'object' || page === null || !Array.isArray(page.items)) {
        throw new ProviderResponseError(what, 'expected { items[] }');
      }
      return { items: page.items, next: typeof page.next === 'string' && page.next !== '' ? page.next : null };
    },
  };
}

/** A `next` link (absolute, or a path with the version) as a path under the versioned root; refuses any other place. */
function pathUnderRoot(next: string, root: string, what: string): string {
  const url = new URL(next, `${root}/`);
  const base = new URL(`${root}/`);
  if (url.origin !== base.origin || !url.pathname.startsWith(base.pathname)) {
    throw new ProviderResponseError(what, 'next link points outside the API');
  }
  return `${url.pathname.slice(base.pathname.length)}${url.search}`;
}

export interface InventoryPage {
  items: InventoryItem[];
  /** The next page's link, null on the last page. */
  next: string | null;
}

/** `x-remaining-calls`, or `X-RateLimit-Remaining` (the provider's FAQ names both). */
function remainingCalls(headers: Headers): number | undefined {
  return intHeader(headers, 'x-remaining-calls') ?? intHeader(headers, 'x-ratelimit-remaining') ?? undefined;
}

/** `x-retry-after` in seconds (not `Retry-After`); else the seconds in the message; else 1 s. */
function retryAfterMs(headers: Headers, body: string): number {
  const header = Number(headers.get('x-retry-after'));
  if (headers.get('x-retry-after') !== null && Number.isFinite(header) && header >= 0) return header * SECOND;
  const said = /try again in (\d+(?:\.\d+)?) seconds?/i.exec(body);
  return said ? Number(said[1]) * SECOND : SECOND;
}

function intHeader(headers: Headers, name: string): number | null {
  const raw = headers.get(name);
  return raw !== null && /^\d+$/.test(raw.trim()) ? Number(raw) : null;
}

/** `next-page` is a path with the version (`/2026-01/order?…&Page=3`), resolved against the API's origin. */
function nextPageNumber(headers: Headers, root: string): number | null {
  const next = headers.get('next-page');
  if (!next) return null;
  const page = Number(new URL(next, root).searchParams.get('Page') ?? Number.NaN);
  if (!Number.isInteger(page) || page < 1) throw new ProviderResponseError('GET /order', 'next-page has no Page');
  return page;
}

/** The provider's `message`, shortened: enough to diagnose, never a request header. */
function errorDetail(text: string): string {
  try {
    const message = (JSON.parse(text) as { message?: unknown }).message;
    if (typeof message === 'string') return message.slice(0, 200);
  } catch {
    // not JSON: fall through
  }
  return text.slice(0, 200);
}
