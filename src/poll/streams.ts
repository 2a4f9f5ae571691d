/**
 * What wharf polls, per source: a stream has its own cursor row (`poll_cursors`), job queue and inbox topic. The poll
 * topics are wharf's own (never a provider topic), so the drain can tell a polled event from a webhook.
 */
export const PollStreams = ['orders', 'transactions', 'timelines', 'returns'] as const;
export type PollStream = (typeof PollStreams)[number];

export const isPollStream = (v: unknown): v is PollStream => (PollStreams as readonly unknown[]).includes(v);

export const PollTopics = {
  order: 'poll.order',
  transaction: 'poll.transaction',
  timeline: 'poll.shipment.timeline',
  return: 'poll.return',
  /** Resources fetched by id because a delivery named them without standing for them (src/poll/resolve.ts). */
  resolvedOrder: 'poll.resolved.order',
  resolvedShipment: 'poll.resolved.shipment',
  resolvedReturn: 'poll.resolved.return',
} as const satisfies Record<string, string>;

const streamByTopic: Record<string, PollStream> = {
  [PollTopics.order]: 'orders',
  [PollTopics.transaction]: 'transactions',
  [PollTopics.timeline]: 'timelines',
  [PollTopics.return]: 'returns',
};

/** The stream a poll topic belongs to, or null for any other topic. */
export const streamOfPollTopic = (topic: string | null): PollStream | null => (topic && streamByTopic[topic]) || null;
