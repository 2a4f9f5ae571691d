import { WharfError } from '../errors.js';

/**
 * A webhook request refused on purpose. `reason` is the quarantine reason code (see quarantine.ts), safe to show the
 * sender: it names what was wrong, never a secret or an expected signature.
 */
export class IntakeRejection extends WharfError {
  constructor(
    code: string,
    statusCode: number,
    readonly reason: string,
    message: string,
  ) {
    super(code, statusCode, message);
    this.name = 'IntakeRejection';
  }
}

export const rejectSignature = (reason: string) =>
  new IntakeRejection('SIGNATURE_INVALID', 401, reason, `webhook signature rejected: ${reason}`);

export const rejectBadWebhookId = () =>
  new IntakeRejection('BAD_WEBHOOK_ID', 400, 'bad_webhook_id', 'webhook-id is too long or holds control characters');

export const rejectMalformedJson = () =>
  new IntakeRejection('MALFORMED_JSON', 400, 'malformed_json', 'body is not valid UTF-8 JSON');

export const rejectUnknownSource = () =>
  new IntakeRejection('SOURCE_NOT_FOUND', 404, 'unknown_source', 'unknown or disabled source');

export const rejectRateLimited = (after: string) =>
  new IntakeRejection('RATE_LIMITED', 429, 'rate_limited', `rate limit exceeded for this source, retry in ${after}`);
