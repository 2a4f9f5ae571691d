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
import type { Order, Return, TimelineEntry, TransactionPage, TransactionQuery } from './shapes.js';

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
  /** One return (the provider lists none); ProviderNotFoundError when it does not know the id for this token. */
  getReturn(returnId: number, signal?: AbortSignal): Promise<Return>;
  /** The first page of a query, or the page a cursor token names (a cursor overrides the body, as the API says). */
  queryTransactions(req: { query: TransactionQuery } | { cursor: string }, signal?: AbortSignal): Promise<TransactionPage>;
  readonly stats: ProviderClientStats;
}

interface Call {
  method: 'GET' | 'POST';
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
    async getReturn(returnId, signal) {
      const what = 'GET /return/:id';
      const { body } = await call({ method: 'GET', path: `return/${returnId}`, what }, signal);
      const ret = body as Return;
      if (typeof ret !== 'object' || ret === null || Number(ret.id) !== returnId) {
        throw new ProviderResponseError(what, 'expected the return asked for');
      }
      return ret;
    },
    async queryTransactions(req, signal) {
      const what = 'POST /transactions:query';
      const path = 'cursor' in req ? `transactions:query?Cursor=${encodeURIComponent(req.cursor)}` : 'transactions:query';
      const { body } = await call({ method: 'POST', path, body: 'cursor' in req ? {} : req.query, what }, signal);
      const page = body as TransactionPage;
      if (typeof page !== 'object' || page === null || !Array.isArray(page.items)) {
        throw new ProviderResponseError(what, 'expected { items[] }');
      }
      return page;
    },
  };
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
