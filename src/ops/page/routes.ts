import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../../config.js';
import type { Sql } from '../../db/client.js';
import { countReplayable, type ReplayFilter, replay } from '../replay.js';
import { PAGE_SCRIPT } from './client-script.js';
import { readDeadLetter, readOpsPage } from './queries.js';
import { renderDeadLetter, renderMessage, renderOverview, renderReplayDone, renderReplayPlan } from './render.js';

/**
 * The ops page: a read-only view of wharf for operators, served on the private METRICS_PORT only (register it on the
 * metrics server, never on the public app). One action writes: replaying a dead-letter group, a POST in two steps
 * (plan, then confirm) guarded against cross-site requests.
 *
 * - Auth: with OPS_PASSWORD set, every route here needs HTTP basic auth (any user name, that password; compared in
 *   constant time over digests). Without it the page is open to whoever reaches the private port.
 * - CSRF: a POST must come from this origin (Sec-Fetch-Site `same-origin` when the browser sends it, Origin equal to
 *   the Host when sent) and carry a token the page issued (HMAC of its issue time under a per-process random key,
 *   valid CSRF_TTL_MS). A form on another site can send neither.
 * - A replay is what `ops replay --apply` does (src/ops/replay.ts): rows go back to pending with via = 'replay' and the
 *   drain is woken; `log` records who-what-when like the CLI's output.
 *
 * Register with `app.register(opsPageRoutes, deps)`: the plugin's hooks and body parser stay inside its scope.
 */

export interface OpsPageDeps {
  sql: Sql;
  config: Config;
  now?: () => Date;
  /** Records a replay (the process logger). */
  log?: (fields: Record<string, unknown>, message: string) => void;
}

const CSRF_TTL_MS = 12 * 60 * 60 * 1000;
const FORM_LIMIT_BYTES = 64 * 1024;
const REPLAY_BATCH = 500;

const require = createRequire(import.meta.url);
const asset = (specifier: string) => readFileSync(require.resolve(specifier));

const digest = (s: string) => createHash('sha256').update(s).digest();

export async function opsPageRoutes(app: FastifyInstance, deps: OpsPageDeps): Promise<void> {
  const now = deps.now ?? (() => new Date());
  const assets: Record<string, { type: string; body: Buffer | string }> = {
    'uplot.iife.min.js': { type: 'text/javascript; charset=utf-8', body: asset('uplot/dist/uPlot.iife.min.js') },
    'uplot.min.css': { type: 'text/css; charset=utf-8', body: asset('uplot/dist/uPlot.min.css') },
    'page.js': { type: 'text/javascript; charset=utf-8', body: PAGE_SCRIPT },
  };
  const csrfKey = randomBytes(32);
  const sign = (issued: string) => createHmac('sha256', csrfKey).update(`csrf:${issued}`).digest('base64url');
  const issueToken = () => {
    const issued = String(Date.now());
    return `${issued}.${sign(issued)}`;
  };
  const tokenValid = (token: unknown) => {
    if (typeof token !== 'string') return false;
    const [issued, mac] = token.split('.');
    if (!issued || !mac || !/^\d{1,15}$/.test(issued)) return false;
    if (Date.now() - Number(issued) > CSRF_TTL_MS) return false;
    return timingSafeEqual(digest(mac), digest(sign(issued)));
  };

  const password = deps.config.opsPassword;
  const expected = password === undefined ? undefined : digest(password);
  app.addHook('onRequest', async (req, reply) => {
    reply.header('x-frame-options', 'DENY');
    reply.header('x-content-type-options', 'nosniff');
    reply.header('cache-control', 'no-store');
    reply.header(
      'content-security-policy',
      "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
    );
    if (!expected) return;
    const given = basicPassword(req.headers.authorization);
    // Digest both sides: equal lengths for timingSafeEqual, and the time says nothing about the length.
    if (given === undefined || !timingSafeEqual(digest(given), expected)) {
      return reply.code(401).header('www-authenticate', 'Basic realm="wharf ops", charset="UTF-8"').type('text/plain').send('authentication required');
    }
  });
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: FORM_LIMIT_BYTES }, (_req, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)));
  });

  const html = (reply: FastifyReply, body: string, code = 200) => reply.code(code).type('text/html; charset=utf-8').send(body);

  app.get<{ Querystring: { refresh?: string } }>('/', async (req, reply) => {
    const data = await readOpsPage(deps.sql, { now: now(), staleAfterMs: deps.config.staleLockAfterMs });
    // `?refresh=60`: the page reloads itself every 60 s (a wall screen); 10 s at the least.
    const refresh = /^\d{1,5}$/.test(req.query.refresh ?? '') ? Math.max(10, Number(req.query.refresh)) : undefined;
    return html(reply, renderOverview(data, issueToken(), refresh));
  });

  app.get<{ Params: { name: string } }>('/assets/:name', async (req, reply) => {
    const a = assets[req.params.name];
    if (!a) return reply.code(404).type('text/plain').send('not found');
    return reply.type(a.type).header('cache-control', 'public, max-age=3600').send(a.body);
  });

  app.get<{ Params: { id: string } }>('/dead/:id', async (req, reply) => {
    if (!/^\d{1,18}$/.test(req.params.id)) return html(reply, renderMessage('Not found', 'No such inbox row.'), 404);
    const row = await readDeadLetter(deps.sql, Number(req.params.id));
    if (!row) return html(reply, renderMessage('Not found', 'No dead or ignored inbox row with this id (replayed or pruned since?).'), 404);
    return html(reply, renderDeadLetter(row));
  });

  /** Refuses a POST that is not from this page; returns the form (null when refused). */
  const checkedForm = (req: FastifyRequest, reply: FastifyReply): Record<string, string> | null => {
    const refuse = (why: string) => {
      void html(reply, renderMessage('Refused', why), 403);
      return null;
    };
    const site = req.headers['sec-fetch-site'];
    if (site !== undefined && site !== 'same-origin') return refuse('cross-site request');
    const origin = req.headers.origin;
    if (origin !== undefined && !sameOrigin(origin, req.headers.host)) return refuse('cross-origin request');
    const form = (req.body ?? {}) as Record<string, string>;
    if (typeof form !== 'object' || !tokenValid(form.csrf)) return refuse('missing or expired form token: reload the page and try again');
    return form;
  };
  const filterOf = (form: Record<string, string>): ReplayFilter | undefined => {
    if (form.reason_null === '1') return { status: 'dead', reason: null };
    if (typeof form.reason === 'string') return { status: 'dead', reason: form.reason };
    return undefined;
  };

  app.post('/replay/plan', async (req, reply) => {
    const form = checkedForm(req, reply);
    if (!form) return reply;
    const filter = filterOf(form);
    if (!filter) return html(reply, renderMessage('Bad request', 'no dead-letter group given'), 400);
    const byTopic = await countReplayable(deps.sql, filter);
    return html(reply, renderReplayPlan({ reason: filter.reason ?? null, byTopic, csrf: issueToken() }));
  });

  app.post('/replay', async (req, reply) => {
    const form = checkedForm(req, reply);
    if (!form) return reply;
    const filter = filterOf(form);
    if (!filter) return html(reply, renderMessage('Bad request', 'no dead-letter group given'), 400);
    // The confirmation was for a number: if the group changed since (more dead letters, or a replay elsewhere), the
    // new plan is shown to confirm again rather than replaying what was not shown.
    const expectedTotal = Number(form.expected);
    const byTopic = await countReplayable(deps.sql, filter);
    const total = byTopic.reduce((n, x) => n + x.count, 0);
    if (total !== expectedTotal)
      return html(reply, renderReplayPlan({ reason: filter.reason ?? null, byTopic, csrf: issueToken(), changedFrom: Number.isFinite(expectedTotal) ? expectedTotal : 0 }), 409);
    const result = await replay(deps.sql, filter, {
      batchSize: REPLAY_BATCH,
      total,
      // The drain applies them in the background; the page does not hold the request open for it.
      waitMs: 0,
    });
    deps.log?.(
      { action: 'replay', reason: filter.reason, planned: expectedTotal, requeued: result.ids.length, remoteAddr: req.ip },
      `ops page: requeued ${result.ids.length} dead event(s) for replay`,
    );
    return html(reply, renderReplayDone({ reason: filter.reason ?? null, requeued: result.ids.length, outcome: result.outcome }));
  });
}

/** The password of a `Basic` Authorization header (any user name), or undefined. */
function basicPassword(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (!m) return undefined;
  const decoded = Buffer.from(m[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? undefined : decoded.slice(colon + 1);
}

function sameOrigin(origin: string, host: string | undefined): boolean {
  if (!host) return false;
  try {
    return new URL(origin).host === host;
  } catch {
    return false;
  }
}
