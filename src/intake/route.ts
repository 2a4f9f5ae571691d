import { createHash } from 'node:crypto';
import rateLimit from '@fastify/rate-limit';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { type Config, SECOND } from '../config.js';
import type { Sql } from '../db/client.js';
import { InboxVia } from '../db/schema.js';
import { DatabaseUnavailableError, WharfError } from '../errors.js';
import type { NewInboxEvent } from '../inbox/insert-events.js';
import { metrics, RequestOutcome } from '../metrics.js';
import {
  IntakeRejection,
  rejectMalformedJson,
  rejectRateLimited,
  rejectSignature,
  rejectUnknownSource,
} from './errors.js';
import { eventTimeOf, topicOf } from './event-fields.js';
import { createGroupCommitter, type GroupCommitter } from './group-commit.js';
import { createQuarantineWriter, QuarantineReason, type QuarantineWriter } from './quarantine.js';
import { createSourceCache, type IntakeSource, type SourceCache } from './source-cache.js';
import { verify, VerifyFailure } from './signature.js';

/**
 * `POST /webhooks/shipbob/:sourceId`: look up the source, verify the raw bytes, parse, store idempotently (group
 * commit), reply 200 only after the commit. Nothing else happens in the request path; the drain is woken afterwards
 * through a debounced kicker, never by touching a shared row.
 */

export interface IntakeDeps {
  config: Config;
  sql: Sql;
  now: () => Date;
  /** Called after a commit that stored something new (the drain kicker). */
  onStored: () => void;
  onBackgroundError: (err: unknown, what: string) => void;
}

export interface Intake {
  committer: GroupCommitter;
  quarantine: QuarantineWriter;
  sources: SourceCache;
  close(): Promise<void>;
}

declare module 'fastify' {
  interface FastifyInstance {
    intake: Intake;
  }
}

/** Delivery headers kept with the event (never the signature). */
const KEPT_HEADERS = ['webhook-id', 'webhook-timestamp', 'x-webhook-topic', 'user-agent', 'content-type'] as const;
const EMPTY = Buffer.alloc(0);
const STORED = '{"status":"stored"}';
const DUPLICATE = '{"status":"duplicate"}';
const MAX_QUARANTINED_ID = 200;
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export function createIntake(deps: IntakeDeps): Intake {
  const { config, sql } = deps;
  const committer = createGroupCommitter({
    sql,
    maxInFlight: config.intakeBatchesInFlight,
    maxBatchRows: config.intakeBatchMaxRows,
    maxBatchBytes: 8 * config.webhookBodyLimitBytes,
    maxQueuedRows: config.intakeQueueMaxRows,
  });
  const quarantine = createQuarantineWriter({
    sql,
    maxBuffered: 10_000,
    maxBatch: 500,
    delayMs: 50,
    onError: (err) => deps.onBackgroundError(err, 'quarantine write failed; rows dropped'),
  });
  const sources = createSourceCache({ sql, ttlMs: config.sourceCacheTtlMs, maxEntries: 10_000, now: deps.now });
  return {
    committer,
    quarantine,
    sources,
    async close() {
      await committer.close();
      await quarantine.close();
    },
  };
}

const header = (req: FastifyRequest, name: string): string | undefined => {
  const v = req.headers[name];
  return typeof v === 'string' ? v : undefined;
};

/** Waits for a database step until `deadline`; any failure or lateness is the database being unavailable. */
function bounded<T>(p: Promise<T>, deadline: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.catch((err) => {
      throw err instanceof WharfError ? err : new DatabaseUnavailableError({ cause: err });
    }),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new DatabaseUnavailableError()), Math.max(0, deadline - Date.now()));
    }),
  ]).finally(() => clearTimeout(timer));
}

/** The reason code a rejection is quarantined under. */
function reasonOf(err: FastifyError | Error): string {
  if (err instanceof IntakeRejection) return err.reason;
  if (err instanceof DatabaseUnavailableError) return QuarantineReason.dbUnavailable;
  const status = (err as FastifyError).statusCode;
  if ((err as FastifyError).code === 'FST_ERR_CTP_BODY_TOO_LARGE' || status === 413) return QuarantineReason.bodyTooLarge;
  return status ? `http_${status}` : 'internal_error';
}

/** The intake plugin: register with `app.register(intakeRoutes, { deps, intake })`. Scoped: its raw-body parser applies here only. */
export async function intakeRoutes(app: FastifyInstance, opts: { deps: IntakeDeps; intake: Intake }) {
  const { config, now } = opts.deps;
  const { committer, quarantine, sources } = opts.intake;
  const reasons = new WeakMap<FastifyRequest, string>();

  // Any content type: the provider says application/json, but verification is on bytes and parsing is ours.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: config.webhookBodyLimitBytes }, (_req, body, done) =>
    done(null, body),
  );

  await app.register(rateLimit, {
    global: false,
    errorResponseBuilder: (_req, ctx) => rejectRateLimited(ctx.after),
  });

  app.addHook('onError', async (request, _reply, error) => {
    reasons.set(request, reasonOf(error));
  });

  // Every refused request leaves a trace, after the answer is sent (the writer buffers; it never delays a reply).
  app.addHook('onResponse', async (request, reply) => {
    if (reply.statusCode < 400) return;
    const body = Buffer.isBuffer(request.body) ? request.body : undefined;
    const reason = reasons.get(request) ?? `http_${reply.statusCode}`;
    metrics.webhookRequests.inc({
      outcome: reply.statusCode >= 500 ? RequestOutcome.error : RequestOutcome.rejected,
      reason,
    });
    quarantine.record({
      sourceId: (request.params as { sourceId?: string }).sourceId ?? null,
      reason,
      statusCode: reply.statusCode,
      eventId: header(request, 'webhook-id')?.slice(0, MAX_QUARANTINED_ID) ?? null,
      sizeBytes: body ? body.length : Number(header(request, 'content-length')) || 0,
      bodySha256: body ? createHash('sha256').update(body).digest('hex') : null,
      remoteAddr: request.ip ?? null,
    });
  });

  app.post<{ Params: { sourceId: string } }>(
    '/webhooks/shipbob/:sourceId',
    {
      bodyLimit: config.webhookBodyLimitBytes,
      config: {
        rateLimit: {
          max: config.rateLimitMax,
          timeWindow: config.rateLimitWindowMs,
          keyGenerator: (req: FastifyRequest) => (req.params as { sourceId: string }).sourceId,
        },
      },
    },
    async (request, reply: FastifyReply) => {
      const deadline = Date.now() + config.intakeTimeoutMs;
      const { sourceId } = request.params;

      // 1. The source (cached): unknown and disabled look the same from outside.
      let source = await bounded(sources.get(sourceId), deadline);
      if (!source?.enabled) throw rejectUnknownSource();

      // 2. The signature, on the raw bytes.
      const body = Buffer.isBuffer(request.body) ? request.body : EMPTY;
      const id = header(request, 'webhook-id');
      const verifyWith = (s: IntakeSource) =>
        verify({
          id,
          timestamp: header(request, 'webhook-timestamp'),
          signature: header(request, 'webhook-signature'),
          body,
          keys: s.keys,
          nowMs: now().getTime(),
          toleranceMs: config.webhookToleranceMs,
        });
      let failure = verifyWith(source);
      if (failure === VerifyFailure.badSignature) {
        // Maybe the secret was rotated since we cached it: reload once (at most once a second per source).
        const fresh = sources.refresh(sourceId, SECOND);
        if (fresh) {
          source = await bounded(fresh, deadline);
          if (!source?.enabled) throw rejectUnknownSource();
          failure = verifyWith(source);
        }
      }
      if (failure) throw rejectSignature(failure);

      // 3. Parse (only to validate and to read the topic and event time; the stored body is the text as received).
      let text: string;
      let parsed: unknown;
      try {
        text = utf8.decode(body);
        parsed = JSON.parse(text);
      } catch {
        throw rejectMalformedJson();
      }

      // 4. Store: resolves only after the commit of this request's batch.
      const headers: Record<string, string> = {};
      for (const name of KEPT_HEADERS) {
        const v = header(request, name);
        if (v !== undefined) headers[name] = v;
      }
      const row: NewInboxEvent = {
        sourceId,
        eventId: id as string,
        topic: topicOf(headers['x-webhook-topic'], parsed),
        body: text,
        headers,
        eventTime: eventTimeOf(parsed),
        via: InboxVia.webhook,
      };
      const result = await committer.submit(row, Math.max(0, deadline - Date.now()));

      // 5. Acknowledge.
      if (result.inserted) {
        opts.deps.onStored();
        metrics.webhookRequests.inc({ outcome: RequestOutcome.stored, reason: 'ok' });
      } else {
        metrics.webhookDuplicates.inc();
        metrics.webhookRequests.inc({ outcome: RequestOutcome.duplicate, reason: 'ok' });
      }
      return reply
        .code(200)
        .type('application/json')
        .send(result.inserted ? STORED : DUPLICATE);
    },
  );
}
