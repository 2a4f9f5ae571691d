import type { Queryable } from '../db/client.js';
import type { KeyRing } from '../key-ring.js';
import { openApiToken, openWebhookSecret } from '../secrets/cipher.js';
import type { ProviderClient } from '../provider/client.js';
import { SubscribableTopics, type WebhookSubscription } from '../provider/shapes.js';

/**
 * wharf manages each source's webhook subscription at the provider (POST/GET /{version}/webhook, docs/provider.md §1.5):
 * `ensureSubscription` creates one for the topics wharf applies, with wharf's URL and the source's secret, unless an
 * enabled one already covers them; `checkSubscription` reads the list and says what is wrong. The provider disables a
 * subscription after repeated failed deliveries (`enabled: false`) and offers no way to re-enable it: the fix is a new
 * subscription (`ops sources subscribe`), which is what the state `disabled` asks an operator to do.
 */

/** The topics wharf applies and subscribes to: every topic of the 2026-01 enum. */
export const WHARF_TOPICS: readonly string[] = SubscribableTopics;

export const SubscriptionStates = {
  ok: 'ok',
  /** No subscription sends to this source's URL. */
  missing: 'missing',
  /** Subscriptions to this URL exist, none enabled (the provider gave up on it). */
  disabled: 'disabled',
  /** Enabled subscriptions to this URL lack some of WHARF_TOPICS. */
  topicsMissing: 'topics_missing',
  /** The check itself failed (see last_error). */
  error: 'error',
} as const;
export type SubscriptionState = (typeof SubscriptionStates)[keyof typeof SubscriptionStates];

export interface SubscriptionCheck {
  state: SubscriptionState;
  subscriptionIds: string[];
  missingTopics: string[];
}

/** Trailing slashes and case of scheme/host do not make another URL. */
const sameUrl = (a: string, b: string): boolean => {
  try {
    return new URL(a).href.replace(/\/+$/, '') === new URL(b).href.replace(/\/+$/, '');
  } catch {
    return a === b;
  }
};

/** What the provider's list says about the subscription(s) sending to `url`. Pure. */
export function judgeSubscriptions(list: readonly WebhookSubscription[], url: string, topics = WHARF_TOPICS): SubscriptionCheck {
  const mine = list.filter((s) => sameUrl(s.url, url));
  const enabled = mine.filter((s) => s.enabled !== false);
  const covered = new Set(enabled.flatMap((s) => s.topics));
  const missingTopics = topics.filter((x) => !covered.has(x));
  const subscriptionIds = mine.map((s) => String(s.id));
  if (mine.length === 0) return { state: SubscriptionStates.missing, subscriptionIds, missingTopics: [...topics] };
  if (enabled.length === 0) return { state: SubscriptionStates.disabled, subscriptionIds, missingTopics: [...topics] };
  if (missingTopics.length > 0) return { state: SubscriptionStates.topicsMissing, subscriptionIds, missingTopics };
  return { state: SubscriptionStates.ok, subscriptionIds, missingTopics: [] };
}

export async function checkSubscription(client: ProviderClient, url: string, signal?: AbortSignal): Promise<SubscriptionCheck> {
  return judgeSubscriptions(await client.listWebhooks(signal), url);
}

/**
 * Makes sure an enabled subscription sends every topic wharf applies to `url`, signed with `secret`: creates one for
 * the missing topics (all of them when none is enabled). Returns the state after, and whether it created one.
 */
export async function ensureSubscription(
  client: ProviderClient,
  p: { url: string; secret: string; description?: string },
  signal?: AbortSignal,
): Promise<SubscriptionCheck & { created: string | null }> {
  const before = await checkSubscription(client, p.url, signal);
  if (before.state === SubscriptionStates.ok) return { ...before, created: null };
  const created = await client.createWebhook(
    { topics: before.missingTopics, url: p.url, secret: p.secret, description: p.description ?? 'wharf' },
    signal,
  );
  return { state: SubscriptionStates.ok, subscriptionIds: [...before.subscriptionIds, created.id], missingTopics: [], created: created.id };
}

/** Stores a source's subscription state (the `ops status` section and the /metrics gauge read it). One statement. */
export async function saveSubscriptionState(
  sql: Queryable,
  p: { sourceId: string; check: SubscriptionCheck | null; error?: string | null },
): Promise<void> {
  const state = p.check?.state ?? SubscriptionStates.error;
  await sql`
    insert into webhook_subscriptions as w (source_id, state, subscription_ids, missing_topics, checked_at, last_error)
    values (${p.sourceId}, ${state}, ${p.check?.subscriptionIds ?? []}::text[], ${p.check?.missingTopics ?? []}::text[], now(),
            ${p.error?.slice(0, 500) ?? null})
    on conflict (source_id) do update set state = excluded.state, subscription_ids = excluded.subscription_ids,
      missing_topics = excluded.missing_topics, checked_at = now(), last_error = excluded.last_error`;
}

/** Enabled sources with an API token, with their webhook URL's id and newest valid secret. */
export async function listSubscribableSources(sql: Queryable, keys: KeyRing, p: { sourceId?: string } = {}) {
  const rows = await sql<{ id: string; apiToken: string; secret: string | null }[]>`
    select s.id, s.api_token as "apiToken",
           (select k.secret from source_secrets k where k.source_id = s.id and (k.expires_at is null or k.expires_at > now())
             order by k.id desc limit 1) as secret
      from sources s
     where s.enabled and s.api_token is not null and (${p.sourceId ?? null}::text is null or s.id = ${p.sourceId ?? null})
     order by s.id`;
  // Stored encrypted (src/secrets/cipher.ts): decrypted here, for the provider call that needs them.
  return rows.map((r) => ({
    id: r.id,
    apiToken: openApiToken(keys, r.id, r.apiToken),
    secret: r.secret === null ? null : openWebhookSecret(keys, r.id, r.secret),
  }));
}

/** The URL the provider must send a source's webhooks to (PUBLIC_URL + the intake route). */
export const webhookUrlFor = (publicUrl: string, sourceId: string): string => `${publicUrl}/webhooks/shipbob/${sourceId}`;
