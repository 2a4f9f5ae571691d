/**
 * The provider's rate limit: a sliding window per key (its docs: 150 requests per minute per user per application,
 * across all endpoints). A sliding log rather than fixed buckets, so a burst at a bucket edge cannot double the rate.
 */
export interface RateLimitOptions {
  limit: number;
  windowMs: number;
}

export interface RateDecision {
  allowed: boolean;
  /** Calls left in the window after this one. */
  remaining: number;
  /** When refused: whole seconds until the oldest call leaves the window (at least 1). */
  retryAfterS: number;
}

export function createRateLimiter({ limit, windowMs }: RateLimitOptions, now: () => number = Date.now) {
  const calls = new Map<string, number[]>();
  return {
    /** Counts a call for key unless the window is full; refused calls are not counted. */
    take(key: string): RateDecision {
      const t = now();
      const log = calls.get(key) ?? [];
      calls.set(key, log);
      let expired = 0;
      while (expired < log.length && log[expired] <= t - windowMs) expired++;
      if (expired > 0) log.splice(0, expired);
      if (log.length >= limit) {
        return { allowed: false, remaining: 0, retryAfterS: Math.max(1, Math.ceil((log[0] + windowMs - t) / 1000)) };
      }
      log.push(t);
      return { allowed: true, remaining: limit - log.length, retryAfterS: 0 };
    },
  };
}
