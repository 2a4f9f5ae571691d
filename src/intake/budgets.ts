import type { IncomingMessage } from 'node:http';
import type { TrustProxy } from '../config.js';

/**
 * The intake's in-memory budgets (per process): fixed-window counters per key, and the bound on request-body bytes
 * being received at once. Both are bounded in memory whatever the traffic.
 */

export interface WindowCounter {
  /** Adds `n` to the key's count in the current window; returns the count after it. */
  add(key: string, n?: number): number;
  /** The key's count in the current window. */
  count(key: string): number;
  /** Whole seconds until the key's window ends (at least 1). */
  retryAfterSeconds(key: string): number;
  readonly size: number;
}

/**
 * Counts per key in fixed windows of `windowMs`. At most `maxKeys` keys are held: past it the oldest window goes first
 * (a key evicted early simply starts a fresh window; see docs/intake.md).
 */
export function createWindowCounter(opts: { windowMs: number; maxKeys: number; now: () => number }): WindowCounter {
  const windows = new Map<string, { start: number; count: number }>();
  const current = (key: string) => {
    const now = opts.now();
    const w = windows.get(key);
    if (w && now - w.start < opts.windowMs) return w;
    return undefined;
  };
  return {
    add(key, n = 1) {
      let w = current(key);
      if (!w) {
        w = { start: opts.now(), count: 0 };
        windows.delete(key);
        windows.set(key, w);
        while (windows.size > opts.maxKeys) windows.delete(windows.keys().next().value as string);
      }
      w.count += n;
      return w.count;
    },
    count(key) {
      return current(key)?.count ?? 0;
    },
    retryAfterSeconds(key) {
      const w = current(key);
      return w ? Math.max(1, Math.ceil((w.start + opts.windowMs - opts.now()) / 1000)) : 1;
    },
    get size() {
      return windows.size;
    },
  };
}

export interface ByteBudget {
  /** Reserves `n` bytes; false (nothing reserved) when that would exceed the bound. */
  tryReserve(n: number): boolean;
  release(n: number): void;
  readonly inFlight: number;
}

export function createByteBudget(maxBytes: number): ByteBudget {
  let inFlight = 0;
  return {
    tryReserve(n) {
      if (inFlight + n > maxBytes) return false;
      inFlight += n;
      return true;
    },
    release(n) {
      inFlight = Math.max(0, inFlight - n);
    },
    get inFlight() {
      return inFlight;
    },
  };
}

const ADDRESS = /^[0-9A-Fa-f:.]{2,45}$/;

/**
 * The client's address. `off`: the TCP peer. `fly`: Fly's proxy sets `Fly-Client-IP` (a client cannot forge it through
 * Fly). `x-forwarded-for`: the last hop, the one the nearest proxy appended (earlier hops are the client's to invent).
 * Anything that does not look like an address falls back to the TCP peer.
 */
export function clientAddress(raw: IncomingMessage, trust: TrustProxy): string {
  const peer = raw.socket.remoteAddress ?? 'unknown';
  let claimed: string | undefined;
  if (trust === 'fly') {
    const h = raw.headers['fly-client-ip'];
    claimed = typeof h === 'string' ? h.trim() : undefined;
  } else if (trust === 'x-forwarded-for') {
    const h = raw.headers['x-forwarded-for'];
    const list = typeof h === 'string' ? h : Array.isArray(h) ? h.join(',') : undefined;
    claimed = list?.split(',').at(-1)?.trim();
  }
  return claimed && ADDRESS.test(claimed) ? claimed : peer;
}
