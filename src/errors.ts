/** The few errors wharf raises on purpose. Each has a literal code and the HTTP status it maps to. */
export class WharfError extends Error {
  constructor(
    readonly code: string,
    readonly statusCode: number,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'WharfError';
  }
}

/** Configuration that cannot run; lists every bad key at once. */
export class ConfigError extends WharfError {
  constructor(readonly problems: string[]) {
    super('CONFIG_INVALID', 500, `invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

/** The database did not answer in time or refused: the provider should retry. */
export class DatabaseUnavailableError extends WharfError {
  constructor(options?: { cause?: unknown }) {
    super('DB_UNAVAILABLE', 503, 'database unavailable, retry later', options);
    this.name = 'DatabaseUnavailableError';
  }
}

export class NotFoundError extends WharfError {
  constructor(what: string) {
    super('NOT_FOUND', 404, `${what} not found`);
    this.name = 'NotFoundError';
  }
}

export class UsageError extends WharfError {
  constructor(message: string) {
    super('USAGE', 400, message);
    this.name = 'UsageError';
  }
}
