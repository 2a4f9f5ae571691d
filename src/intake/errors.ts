import type { FastifyError } from 'fastify';
import { DatabaseUnavailableError, WharfError } from '../errors.js';
import { QuarantineReason } from './quarantine.js';
import type { VerifyFailure } from './signature.js';

/**
 * A webhook request refused on purpose. `reason` is the quarantine reason code (see quarantine.ts), safe to show the
 * sender: it names what was wrong, never a secret or an expected signature. `retryAfterSeconds` becomes `Retry-After`.
 */
export class IntakeRejection extends WharfError {
  constructor(
    code: string,
    statusCode: number,
    readonly reason: QuarantineReason,
    message: string,
    readonly retryAfterSeconds?: number,
  ) {
    super(code, statusCode, message);
    this.name = 'IntakeRejection';
  }
}

export const rejectSignature = (reason: VerifyFailure) =>
  new IntakeRejection('SIGNATURE_INVALID', 401, reason, `webhook signature rejected: ${reason}`);

export const rejectBadWebhookId = () =>
  new IntakeRejection('BAD_WEBHOOK_ID', 400, QuarantineReason.badWebhookId, 'webhook-id is too long or holds control characters');

export const rejectMalformedJson = () =>
  new IntakeRejection('MALFORMED_JSON', 400, QuarantineReason.malformedJson, 'body is not valid UTF-8 JSON');

export const rejectUnknownSource = () =>
  new IntakeRejection('SOURCE_NOT_FOUND', 404, QuarantineReason.unknownSource, 'unknown or disabled source');

export const rejectRateLimited = (retryAfterSeconds: number) =>
  new IntakeRejection(
    'RATE_LIMITED',
    429,
    QuarantineReason.rateLimited,
    `rate limit exceeded for this source, retry in ${retryAfterSeconds} s`,
    retryAfterSeconds,
  );

export const rejectClientRateLimited = (retryAfterSeconds: number) =>
  new IntakeRejection(
    'RATE_LIMITED',
    429,
    QuarantineReason.clientRateLimited,
    `too many rejected requests from this address, retry in ${retryAfterSeconds} s`,
    retryAfterSeconds,
  );

export const rejectBodyBudget = () =>
  new IntakeRejection('BUSY', 503, QuarantineReason.bodyBudget, 'too many request bodies in flight, retry later', 1);

/**
 * The one map of the framework's own errors: the code we answer with and the reason we count it under. Any other
 * client error of the framework is BAD_REQUEST / bad_request.
 */
export const FRAMEWORK_ERRORS: Readonly<Record<string, { code: string; reason: QuarantineReason }>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { code: 'BODY_TOO_LARGE', reason: QuarantineReason.bodyTooLarge },
  // A content-type header that is not a media type at all (no `type/subtype`): Fastify refuses it before our parser.
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { code: 'UNSUPPORTED_MEDIA_TYPE', reason: QuarantineReason.unsupportedMediaType },
};

export interface ErrorAnswer {
  status: number;
  /** The `error` field of the answer. */
  code: string;
  reason: QuarantineReason;
  /** Shown to the client: our own messages, or the framework's for its client errors; never internals. */
  message: string;
  retryAfterSeconds?: number;
  /** The reason is ours to show (an IntakeRejection): it goes in the answer's `reason`. */
  showReason: boolean;
}

/** What an error answers and is counted as: the one classification both the error handler and the intake use. */
export function classifyError(err: FastifyError | Error): ErrorAnswer {
  if (err instanceof IntakeRejection)
    return {
      status: err.statusCode,
      code: err.code,
      reason: err.reason,
      message: err.message,
      retryAfterSeconds: err.retryAfterSeconds,
      showReason: true,
    };
  if (err instanceof DatabaseUnavailableError)
    return { status: err.statusCode, code: err.code, reason: QuarantineReason.dbUnavailable, message: err.message, showReason: false };
  if (err instanceof WharfError) {
    const reason = err.statusCode >= 500 ? QuarantineReason.internalError : QuarantineReason.badRequest;
    return { status: err.statusCode, code: err.code, reason, message: err.message, showReason: false };
  }
  const status = (err as FastifyError).statusCode;
  if (status && status >= 400 && status < 500) {
    const known = FRAMEWORK_ERRORS[(err as FastifyError).code];
    const reason = known?.reason ?? QuarantineReason.badRequest;
    return { status, code: known?.code ?? 'BAD_REQUEST', reason, message: err.message, showReason: false };
  }
  return { status: 500, code: 'INTERNAL', reason: QuarantineReason.internalError, message: 'internal error', showReason: false };
}
