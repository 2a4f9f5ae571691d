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
  rejectBadWebhookId,
  rejectMalformedJson,
  rejectRateLimited,
  rejectSignature,
  rejectUnknownSource,
} from './errors.js';
import { eventTimeOf, isKey, isStorable, MAX_KEY_CHARS, topicOf } from './event-fields.js';
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

/** A header or URL value as a quarantine row can hold it: cut short, NULs and lone surrogates replaced. */
const forQuarantine = (v: string | undefined): string | null =>
  v === undefined ? null : v.slice(0, MAX_KEY_CHARS).replace(/\p{Cs}/gu, '\ufffd').replaceAll('\u0000', '\ufffd');

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
  // A content-type header that is not a media type at all (no `type/subtype`): Fastify refuses it before our parser.
  if ((err as FastifyError).code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return QuarantineReason.unsupportedMediaType;
  return status ? `http_${status}` : 'internal_error';
}

/** The intake plugin: register with `app.register(intakeRoutes, { deps, intake })`. Scoped: its raw-body parser applies here only. */
export async function intakeRoutes(app: FastifyInstance, opts: { deps: IntakeDeps; intake: Intake }) {
  const { config, now } = opts.deps;
  const { committer, quarantine, sources } = opts.intake;
  const reasons = new WeakMap<FastifyRequest, string>();
  const outcomes = new WeakMap<FastifyRequest, (typeof RequestOutcome)[keyof typeof RequestOutcome]>();

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
    const outcome =
      reply.statusCode >= 500 ? RequestOutcome.error : reply.statusCode >= 400 ? RequestOutcome.rejected : (outcomes.get(request) ?? RequestOutcome.stored);
    metrics.webhookRequestSeconds.observe({ outcome }, reply.elapsedTime / 1000);
    if (reply.statusCode < 400) return;
    const body = Buffer.isBuffer(request.body) ? request.body : undefined;
    const reason = reasons.get(request) ?? `http_${reply.statusCode}`;
    metrics.webhookRequests.inc({
      outcome: reply.statusCode >= 500 ? RequestOutcome.error : RequestOutcome.rejected,
      reason,
    });
    quarantine.record({
      // One unstorable value would fail the writer's whole batch, other requests' rows included.
      sourceId: forQuarantine((request.params as { sourceId?: string }).sourceId),
      reason,
      statusCode: reply.statusCode,
      eventId: forQuarantine(header(request, 'webhook-id')),
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

      // 1. The source (cached): unknown and disabled look the same from outside. An id no source can have (a NUL
      // would make PostgreSQL refuse the look-up) is unknown without asking.
      if (!isKey(sourceId)) throw rejectUnknownSource();
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
      // Genuine but unstorable: too long for the inbox's unique index, or characters PostgreSQL refuses. Stored, it
      // would fail the whole group-commit batch (503 for every request in it, again on every retry).
      if (!isKey(id as string)) throw rejectBadWebhookId();

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
        if (v !== undefined && isStorable(v)) headers[name] = v;
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
        outcomes.set(request, RequestOutcome.duplicate);
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
