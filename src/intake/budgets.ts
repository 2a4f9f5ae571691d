import type { IncomingMessage } from 'node:http';
import type { TrustProxy } from '../config.js';

/**
 * The intake's bound on request-body bytes being received at once (per process), and the client address the
 * unverified budget is keyed on. (The request budgets themselves are @fastify/rate-limit limiters: route.ts.)
 */

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
