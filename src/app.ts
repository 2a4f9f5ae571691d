import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest, LogController } from 'fastify';
import type { Config } from './config.js';
import type { DbHandle, Sql } from './db/client.js';
import { migrationsApplied } from './db/migrate.js';
import { createDrainKicker } from './drain/kick-drain.js';
import { classifyError } from './intake/errors.js';
import { createIntake, intakeRoutes } from './intake/route.js';

export interface AppDeps {
  config: Config;
  db: DbHandle;
  now?: () => Date;
}

/** Per-request lines at debug: at info they would dominate the webhook hot path. Failures keep their level. */
class DebugRequestLog extends LogController {
  incomingRequest(request: FastifyRequest) {
    if (!this.isLogDisabled(request)) request.log.debug({ req: request }, 'incoming request');
  }
  requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply) {
    if (error) super.requestCompleted(error, request, reply);
    else if (!this.isLogDisabled(request)) reply.log.debug({ res: reply, responseTime: reply.elapsedTime }, 'request completed');
  }
}

/**
 * The one error handler, over the one classification (src/intake/errors.ts): our errors answer their status with their
 * code and message (written to be shown), the framework's client errors their status and a code from the one map;
 * anything else 500 with nothing of its internals. The intake's refusals carry their `reason`; 429 and 503 `Retry-After`.
 */
function handleError(err: FastifyError | Error, request: FastifyRequest, reply: FastifyReply) {
  const a = classifyError(err);
  if (a.status >= 500 && a.code === 'INTERNAL') request.log.error({ err }, 'unhandled error');
  else if (a.status >= 500) request.log.warn({ code: a.code, cause: causeOf(err) }, a.message);
  if (a.retryAfterSeconds !== undefined) reply.header('retry-after', String(a.retryAfterSeconds));
  const reason = a.showReason ? { reason: a.reason } : {};
  return reply.code(a.status).send({ error: a.code, ...reason, message: a.message });
}

/** The cause's message only: a driver error may carry a connection string or a query. */
function causeOf(err: Error): string | undefined {
  const cause = err.cause as { code?: string; message?: string } | undefined;
  return cause?.code ?? cause?.message?.slice(0, 200);
}

/**
 * Whether the database answers and every migration is applied, asked at most once per `cacheMs` whatever the number
 * of probes (a flood of /readyz costs one query a second), each ask bounded by `timeoutMs`.
 */
export function createReadiness(sql: Sql, timeoutMs: number, cacheMs = 1000): () => Promise<boolean> {
  let last: { at: number; ready: boolean } | undefined;
  let asking: Promise<boolean> | undefined;
  const ask = async () => {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        migrationsApplied(sql),
        new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs))),
      ]);
    } catch {
      return false;
    } finally {
      clearTimeout(timer);
    }
  };
  return () => {
    if (last && Date.now() - last.at < cacheMs) return Promise.resolve(last.ready);
    asking ??= ask().then((ready) => {
      last = { at: Date.now(), ready };
      asking = undefined;
      return ready;
    });
    return asking;
  };
}

/**
 * Builds the public HTTP app (never listens: server code and tests decide that): the webhook intake, `/healthz` and
 * `/readyz`. No `/metrics` here: that is the private metrics server's (src/ops/metrics-server.ts). The server's
 * timeouts are set here because Node takes them at construction: a request's headers and body must arrive within
 * HTTP_REQUEST_TIMEOUT_MS (headers within HTTP_HEADERS_TIMEOUT_MS), checked every HTTP_TIMEOUT_CHECK_INTERVAL_MS.
 */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const { config, db } = deps;
  const now = deps.now ?? (() => new Date());
  const app = Fastify({
    // Node's http server reads these at construction; Fastify's own requestTimeout (default: none) is set on the
    // server afterwards, so both are given the same value.
    http: {
      requestTimeout: config.httpRequestTimeoutMs,
      headersTimeout: config.httpHeadersTimeoutMs,
      connectionsCheckingInterval: config.httpTimeoutCheckIntervalMs,
    },
    requestTimeout: config.httpRequestTimeoutMs,
    keepAliveTimeout: config.httpKeepAliveTimeoutMs,
    logger: {
      level: config.logLevel,
      redact: ['req.headers.authorization', 'req.headers["webhook-signature"]', 'headers["webhook-signature"]'],
    },
    logController: new DebugRequestLog(),
    requestIdHeader: 'x-request-id',
  });
  app.setErrorHandler(handleError);

  const kicker = createDrainKicker(db.sql, config.drainKickDebounceMs, (err) =>
    app.log.warn({ cause: causeOf(err as Error) }, 'drain kick failed (the cron safety net will run it)'),
  );
  const intakeDeps = {
    config,
    sql: db.sql,
    now,
    onStored: () => kicker.kick(),
    onBackgroundError: (err: unknown, what: string) => app.log.warn({ cause: causeOf(err as Error) }, what),
  };
  const intake = createIntake(intakeDeps);
  app.decorate('intake', intake);
  app.addHook('onClose', async () => {
    await intake.close();
    await kicker.close();
  });
  await app.register(intakeRoutes, { deps: intakeDeps, intake });

  // Cheap: /healthz touches nothing; /readyz asks the database at most once a second (bounded by INTAKE_TIMEOUT_MS).
  const ready = createReadiness(db.sql, config.intakeTimeoutMs);
  app.get('/healthz', async () => ({ ok: true }));
  app.get('/readyz', async (_req, reply) => {
    const ok = await ready();
    return reply.code(ok ? 200 : 503).send({ ready: ok });
  });
  return app;
}
