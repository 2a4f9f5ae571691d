import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { type Config, keyRingOf, SECOND } from '../config.js';
import type { Sql } from '../db/client.js';
import { InboxVia } from '../db/schema.js';
import { DatabaseUnavailableError, WharfError } from '../errors.js';
import type { NewInboxEvent } from '../inbox/insert-events.js';
import { metrics, RequestOutcome } from '../metrics.js';
import rateLimit from '@fastify/rate-limit';
import { type ByteBudget, clientAddress, createByteBudget } from './budgets.js';
import {
  classifyError,
  rejectBadWebhookId,
  rejectBodyBudget,
  rejectClientRateLimited,
  rejectMalformedJson,
  rejectRateLimited,
  rejectSignature,
  rejectUnknownSource,
} from './errors.js';
import { eventTimeOf, isKey, isStorable, MAX_KEY_CHARS, topicOf } from './event-fields.js';
import { createGroupCommitter, type GroupCommitter } from './group-commit.js';
import { createQuarantine, type Quarantine, QuarantineReason, UNRECORDED_REASONS } from './quarantine.js';
import { createSourceCache, type IntakeSource, type SourceCache } from './source-cache.js';
import { VerifyFailure, verify } from './signature.js';

/**
 * `POST /webhooks/shipbob/:sourceId`. Before the body is read (onRequest, preParsing): the client's budget of
 * unverified requests, the source (from memory: see source-cache.ts), the process-wide bound on body bytes in flight.
 * Then the route's four steps: verify the raw bytes, parse, store idempotently (group commit), reply 200 only after the
 * commit. The drain is woken afterwards through a debounced kicker, never by touching a shared row.
 * Costs and bounds of each kind of request: docs/intake.md (threat model).
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
  quarantine: Quarantine;
  sources: SourceCache;
  bodyBytes: ByteBudget;
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

/** Keys of the per-address budget held at once (≈100 bytes each). */
const MAX_CLIENT_KEYS = 50_000;

export function createIntake(deps: IntakeDeps): Intake {
  const { config, sql } = deps;
  const committer = createGroupCommitter({
    sql,
    maxInFlight: config.intakeBatchesInFlight,
    maxBatchRows: config.intakeBatchMaxRows,
    maxBatchBytes: 8 * config.webhookBodyLimitBytes,
    maxQueuedRows: config.intakeQueueMaxRows,
  });
  const quarantine = createQuarantine({
    sql,
    now: deps.now,
    maxKeys: 10_000,
    flushMs: SECOND,
    onError: (err) => deps.onBackgroundError(err, 'quarantine write failed; counts dropped'),
  });
  const sources = createSourceCache({ sql, keys: keyRingOf(config), ttlMs: config.sourceCacheTtlMs, maxEntries: 10_000, now: deps.now });
  return {
    committer,
    quarantine,
    sources,
    bodyBytes: createByteBudget(config.intakeBodyBytesInFlight),
    async close() {
      await committer.close();
      await quarantine.close();
    },
  };
}

/** What the hooks learn about a request before the handler runs. */
interface RequestState {
  address: string;
  /** Null: unknown or disabled (or an id no source can have). */
  source: IntakeSource | null;
  /** The per-address budget's key: the address and the source (an unknown one shares the key ''). */
  budgetKey: string;
  /** The signature matched: nothing this request does is charged to the address's unverified budget. */
  verified: boolean;
  reason?: QuarantineReason;
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

/** The intake plugin: register with `app.register(intakeRoutes, { deps, intake })`. Scoped: its hooks and raw-body parser apply here only. */
export async function intakeRoutes(app: FastifyInstance, opts: { deps: IntakeDeps; intake: Intake }) {
  const { config, now } = opts.deps;
  const { committer, quarantine, sources, bodyBytes } = opts.intake;
  const states = new WeakMap<FastifyRequest, RequestState>();
  const outcomes = new WeakMap<FastifyRequest, (typeof RequestOutcome)[keyof typeof RequestOutcome]>();

  // The two budgets are @fastify/rate-limit limiters (its in-memory LRU store, bounded in keys) that the hooks call
  // where the request's state decides, rather than the plugin's own hook, which would count every request:
  // - verified deliveries per source (RATE_LIMIT_*), counted once the signature matched: nobody without the secret
  //   can spend a source's budget;
  // - refused requests per (client address, source) (UNVERIFIED_LIMIT_*), read before the body (a read does not
  //   count) and charged once a request is refused, so genuine traffic from the same address never spends it.
  // One store for both (keys cannot collide: a budget key holds a NUL, a source id never does), bounded in keys.
  await app.register(rateLimit, { global: false, cache: MAX_CLIENT_KEYS });
  const sourceBudget = app.createRateLimit({
    max: config.rateLimitMax,
    timeWindow: config.rateLimitWindowMs,
    keyGenerator: (req) => states.get(req)?.source?.id ?? '',
  });
  const unverifiedBudget = app.createRateLimit({
    max: config.unverifiedLimitMax,
    timeWindow: config.unverifiedLimitWindowMs,
    keyGenerator: (req) => states.get(req)?.budgetKey ?? '',
  });

  // Any content type: the provider says application/json, but verification is on bytes and parsing is ours.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: config.webhookBodyLimitBytes }, (_req, body, done) =>
    done(null, body),
  );

  // 1. Before the body: the address's unverified budget, then the source. A refusal here reads nothing and writes
  // nothing; the source comes from memory (at most one directory query a second for ids never seen).
  app.addHook('onRequest', async (request) => {
    const deadline = Date.now() + config.intakeTimeoutMs;
    const sourceId = (request.params as { sourceId: string }).sourceId;
    const address = clientAddress(request.raw, config.trustProxy);
    const state: RequestState = { address, source: null, budgetKey: `${address}\u0000`, verified: false };
    states.set(request, state); // before the look-up, so a failed one is still counted under its reason
    // An id no source can have (a NUL would make PostgreSQL refuse the look-up) is unknown without asking.
    const source = isKey(sourceId) ? await bounded(sources.get(sourceId), deadline) : null;
    if (source?.enabled) {
      state.source = source;
      state.budgetKey = `${address}\u0000${source.id}`;
    }
    const spent = await unverifiedBudget(request, { increment: false });
    if (!spent.isAllowed && spent.remaining === 0) throw rejectClientRateLimited(Math.max(1, spent.ttlInSeconds));
    if (!state.source) throw rejectUnknownSource();
  });

  // 2. Bytes in flight, process-wide: reserved from content-length (a chunked body reserves the whole limit) before
  // anything is read, released when the response is done or the connection dies.
  app.addHook('preParsing', async (request, reply, payload) => {
    const declared = header(request, 'content-length');
    const length = declared === undefined ? undefined : Number(declared);
    if (length !== undefined && !(length >= 0 && length <= config.webhookBodyLimitBytes)) return payload; // the parser answers 413 unread
    const n = length ?? config.webhookBodyLimitBytes;
    if (n === 0) return payload;
    if (!bodyBytes.tryReserve(n)) throw rejectBodyBudget();
    reply.raw.once('close', () => bodyBytes.release(n));
    return payload;
  });

  app.addHook('onError', async (request, _reply, error) => {
    const state = states.get(request);
    if (state) state.reason = classifyError(error).reason;
  });

  // A refusal before the body was read closes the connection, so an unread body is never drained.
  app.addHook('onSend', async (request, reply) => {
    if (reply.statusCode >= 400 && request.body === undefined) reply.header('connection', 'close');
  });

  // Every refusal is counted in the process's metrics; those of a known source also in the quarantine (bounded
  // counters and a few samples, written after the answer is sent). Unverified refusals charge the address's budget.
  app.addHook('onResponse', async (request, reply) => {
    const outcome =
      reply.statusCode >= 500 ? RequestOutcome.error : reply.statusCode >= 400 ? RequestOutcome.rejected : (outcomes.get(request) ?? RequestOutcome.stored);
    metrics.webhookRequestSeconds.observe({ outcome }, reply.elapsedTime / 1000);
    if (reply.statusCode < 400) return;
    const state = states.get(request);
    const reason = state?.reason ?? QuarantineReason.badRequest;
    metrics.webhookRequests.inc({
      outcome: reply.statusCode >= 500 ? RequestOutcome.error : RequestOutcome.rejected,
      reason,
    });
    if (!state) return;
    if (!state.verified && reply.statusCode < 500 && reason !== QuarantineReason.clientRateLimited)
      await unverifiedBudget(request);
    if (!state.source || UNRECORDED_REASONS.has(reason)) return;
    const body = Buffer.isBuffer(request.body) ? request.body : null;
    quarantine.record({
      sourceId: state.source.id,
      reason,
      statusCode: reply.statusCode,
      // One unstorable value would fail the writer's whole statement, other requests' counts included.
      eventId: forQuarantine(header(request, 'webhook-id')),
      sizeBytes: body ? body.length : Number(header(request, 'content-length')) || 0,
      body,
      remoteAddr: state.address,
    });
  });

  app.post<{ Params: { sourceId: string } }>(
    '/webhooks/shipbob/:sourceId',
    { bodyLimit: config.webhookBodyLimitBytes },
    async (request, reply: FastifyReply) => {
      const deadline = Date.now() + config.intakeTimeoutMs;
      const state = states.get(request)!;
      let source = state.source!;
      const sourceId = source.id;

      // 3. The signature, on the raw bytes.
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
          const reloaded = await bounded(fresh, deadline);
          if (!reloaded?.enabled) throw rejectUnknownSource();
          source = reloaded;
          failure = verifyWith(source);
        }
      }
      if (failure) throw rejectSignature(failure);
      state.verified = true;

      // 4. The source's budget counts verified deliveries only: nobody without the secret can spend it.
      const budget = await sourceBudget(request);
      if (!budget.isAllowed && budget.isExceeded) throw rejectRateLimited(Math.max(1, budget.ttlInSeconds));
      // Genuine but unstorable: too long for the inbox's unique index, or characters PostgreSQL refuses. Stored, it
      // would fail the whole group-commit batch (503 for every request in it, again on every retry).
      if (!isKey(id as string)) throw rejectBadWebhookId();

      // 5. Parse (only to validate and to read the topic and event time; the stored body is the text as received).
      let text: string;
      let parsed: unknown;
      try {
        text = utf8.decode(body);
        parsed = JSON.parse(text);
      } catch {
        throw rejectMalformedJson();
      }

      // 6. Store: resolves only after the commit of this request's batch.
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

      // 7. Acknowledge. The provider never changes a delivery's body: a stored id with another body is not applied
      // again (the first body stays), only acknowledged, counted and kept as quarantine evidence.
      if (result.inserted) {
        opts.deps.onStored();
        metrics.webhookRequests.inc({ outcome: RequestOutcome.stored, reason: 'ok' });
      } else {
        outcomes.set(request, RequestOutcome.duplicate);
        metrics.webhookDuplicates.inc();
        metrics.webhookRequests.inc({ outcome: RequestOutcome.duplicate, reason: result.sameBody ? 'ok' : QuarantineReason.changedBody });
        if (!result.sameBody) {
          metrics.webhookChangedBodies.inc();
          quarantine.record({
            sourceId,
            reason: QuarantineReason.changedBody,
            statusCode: 200,
            eventId: row.eventId,
            sizeBytes: body.length,
            body,
            remoteAddr: state.address,
          });
        }
      }
      return reply
        .code(200)
        .type('application/json')
        .send(result.inserted ? STORED : DUPLICATE);
    },
  );
}

