/**
 * `npm run simulator -- [--port 4010] [--seed 1] [--clients 3] [--orders 100] [--rate-limit 150]
 *   [--webhook-url http://127.0.0.1:3000/webhooks/shipbob/sim-c{client}]  (npm run simulator:local registers those sources)`
 *
 * Serves the provider simulator and prints each client's API token and webhook secret. With --webhook-url (where
 * `{client}` becomes the client id) the world changes every second and the changes are sent as signed webhooks with
 * the provider's habits (drops, duplicates, reordering, retries). --rate-limit 0 turns the rate limit off.
 */
import { parseArgs } from 'node:util';
import { createWebhookSender, PROVIDER_HABITS, startSimulator } from '../test/harness/simulator/index.js';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '4010' },
    seed: { type: 'string', default: '1' },
    clients: { type: 'string', default: '3' },
    orders: { type: 'string', default: '100' },
    'rate-limit': { type: 'string', default: '150' },
    'webhook-url': { type: 'string' },
  },
});

function integer(name: keyof typeof values): number {
  const n = Number(values[name]);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer, got ${values[name]}`);
  return n;
}

const rateLimit = integer('rate-limit');
const sim = await startSimulator({
  port: integer('port'),
  // The world starts now, so timestamps in the demo read as live.
  worldOptions: {
    seed: integer('seed'),
    clients: integer('clients'),
    ordersPerClient: integer('orders'),
    start: Date.now(),
  },
  rateLimit: rateLimit > 0 ? { limit: rateLimit, windowMs: 60_000 } : false,
});
console.log(`provider simulator on ${sim.apiUrl} (truth: ${sim.url}/_sim/truth)`);
for (const c of sim.world.clients) console.log(`client ${c.id}: token ${c.token} secret ${c.secret}`);

const template = values['webhook-url'];
let ticker: NodeJS.Timeout | undefined;
const sender = template
  ? createWebhookSender({
      ...PROVIDER_HABITS,
      target: (clientId) => template.replaceAll('{client}', String(clientId)),
      secretFor: (clientId) => [sim.world.clients[clientId - 1].secret],
    })
  : undefined;
if (sender) {
  console.log(`sending webhooks to ${template}`);
  ticker = setInterval(() => {
    sender.enqueue(sim.world.step());
    console.log(JSON.stringify(sender.stats));
  }, 1000);
}

// Deliveries still waiting for a retry are abandoned: a demo stops when asked, not when the target recovers.
async function stop(): Promise<void> {
  clearInterval(ticker);
  await sim.close();
  process.exit(0);
}
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
