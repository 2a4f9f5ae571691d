import { WharfError } from '../errors.js';

/**
 * What the provider client throws. Messages name the method, path and status, never a header or the token.
 * `retryable` tells a task whether throwing (graphile-worker retries) can help.
 */
export class ProviderError extends WharfError {
  constructor(
    code: string,
    readonly status: number | null,
    readonly retryable: boolean,
    message: string,
    options?: { cause?: unknown },
  ) {
    // 502: from wharf's point of view the upstream failed, whatever it answered.
    super(code, 502, message, options);
    this.name = 'ProviderError';
  }
}

/** 401 or 403: a wrong, revoked or under-scoped token. Retrying cannot help. */
export class ProviderAuthError extends ProviderError {
  constructor(status: number, what: string) {
    super('PROVIDER_AUTH', status, false, `${what}: provider refused the token (${status})`);
    this.name = 'ProviderAuthError';
  }
}

/** 404: the resource (a shipment's timeline) does not exist for this account. */
export class ProviderNotFoundError extends ProviderError {
  constructor(what: string) {
    super('PROVIDER_NOT_FOUND', 404, false, `${what}: not found (404)`);
    this.name = 'ProviderNotFoundError';
  }
}

/** 400 or 422 (or another 4xx): our request is wrong, e.g. an expired cursor. */
export class ProviderRequestError extends ProviderError {
  constructor(status: number, what: string, detail: string) {
    super('PROVIDER_BAD_REQUEST', status, false, `${what}: provider rejected the request (${status}): ${detail}`);
    this.name = 'ProviderRequestError';
  }
}

/** 5xx or network failures after every attempt, or 429s beyond the bound. A later run may succeed. */
export class ProviderUnavailableError extends ProviderError {
  constructor(status: number | null, what: string, attempts: number, options?: { cause?: unknown }) {
    const why = status === null ? 'network error' : `status ${status}`;
    super('PROVIDER_UNAVAILABLE', status, true, `${what}: ${why} after ${attempts} attempts`, options);
    this.name = 'ProviderUnavailableError';
  }
}

/** A 2xx whose body is not what the API documents. */
export class ProviderResponseError extends ProviderError {
  constructor(what: string, detail: string) {
    super('PROVIDER_BAD_RESPONSE', 200, true, `${what}: unexpected response: ${detail}`);
    this.name = 'ProviderResponseError';
  }
}
