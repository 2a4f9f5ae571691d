import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest, LogController } from 'fastify';
import type { Config } from './config.js';
import type { DbHandle } from './db/client.js';
import { migrationsApplied } from './db/migrate.js';
import { WharfError } from './errors.js';
import { createIntake, intakeRoutes } from './intake/route.js';
import { registry } from './metrics.js';
import { renderMetrics } from './ops/metrics-gauges.js';
import { createDrainKicker } from './drain/kick-drain.js';

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

/** Friendlier codes for the framework's own client errors; any other is BAD_REQUEST. */
const FRAMEWORK_CODES: Record<string, string> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
};

/**
 * The one error handler: WharfErrors answer their status with their code and message (written to be shown); other
 * client errors their status and a generic code; anything else 500 with nothing of its internals.
 */
function handleError(err: FastifyError | Error, request: FastifyRequest, reply: FastifyReply) {
  if (err instanceof WharfError) {
    if (err.statusCode >= 500) request.log.warn({ code: err.code, cause: causeOf(err) }, err.message);
    const reason = 'reason' in err ? { reason: err.reason } : {};
    return reply.code(err.statusCode).send({ error: err.code, ...reason, message: err.message });
  }
  const status = (err as FastifyError).statusCode;
  if (status && status >= 400 && status < 500) {
    const code = FRAMEWORK_CODES[(err as FastifyError).code] ?? 'BAD_REQUEST';
    return reply.code(status).send({ error: code, message: err.message });
  }
  request.log.error({ err }, 'unhandled error');
  return reply.code(500).send({ error: 'INTERNAL', message: 'internal error' });
}

/** The cause's message only: a driver error may carry a connection string or a query. */
function causeOf(err: Error): string | undefined {
  const cause = err.cause as { code?: string; message?: string } | undefined;
  return cause?.code ?? cause?.message?.slice(0, 200);
}

/** Builds the HTTP app (never listens: server code and tests decide that). */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const { config, db } = deps;
  const now = deps.now ?? (() => new Date());
  const app = Fastify({
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

  app.get('/healthz', async () => ({ ok: true }));
  app.get('/readyz', async (_req, reply) => {
    try {
      // Bounded: an unreachable database answers 503 in at most INTAKE_TIMEOUT_MS, never a hanging probe.
      let timer: NodeJS.Timeout | undefined;
      const ready = await Promise.race([
        migrationsApplied(db.sql),
        new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), config.intakeTimeoutMs))),
      ]).finally(() => clearTimeout(timer));
      return reply.code(ready ? 200 : 503).send({ ready });
    } catch {
      return reply.code(503).send({ ready: false });
    }
  });
  // Prometheus: this process's counters plus database gauges read at scrape time (bounded, src/ops/status.ts).
  app.get('/metrics', async (_req, reply) => {
    const body = await renderMetrics(db.sql, config, { web: config.dbPoolMax });
    return reply.type(registry.contentType).send(body);
  });
  return app;
}
