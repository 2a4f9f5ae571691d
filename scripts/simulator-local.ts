/**
 * `npm run simulator:local`: the provider simulator wired to the wharf a local `npm start` runs. It registers one
 * source per simulator client in that wharf's database (DATABASE_URL, else the embedded server `npm start` keeps),
 * then sends the simulated world's changes as signed webhooks to `PUBLIC_URL/webhooks/shipbob/sim-c<N>`.
 * Start wharf with `PROVIDER_BASE_URL=http://127.0.0.1:4010 npm start` to have its poller read the simulator too.
 * Options: [--port 4010] [--seed 1] [--clients 2] [--orders 50] [--interval 1000] (ms between world steps).
 */
import { parseArgs } from 'node:util';
import { keyRingOf, loadConfig } from '../src/config.js';
import { createDb } from '../src/db/client.js';
import { findRunningDatabase } from '../src/db/resolve.js';
import { withKeyRing } from '../src/secrets/key-file.js';
import { createWebhookSender, PROVIDER_HABITS, startSimulator } from '../test/harness/simulator/index.js';
import { registerSimulatorSources, simulatorSourceId } from '../test/harness/simulator/local.js';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '4010' },
    seed: { type: 'string', default: '1' },
    clients: { type: 'string', default: '2' },
    orders: { type: 'string', default: '50' },
    interval: { type: 'string', default: '1000' },
  },
});
const int = (k: keyof typeof values) => {
  const n = Number(values[k]);
  if (!Number.isInteger(n) || n < 0) {
    console.error(`--${k} must be a non-negative integer`);
    process.exit(2);
  }
  return n;
};

// The service's key (WHARF_ENCRYPTION_KEY, else the key file beside the embedded data): the sources are stored encrypted.
const config = withKeyRing(loadConfig(), (line) => console.error(line));
const database = await findRunningDatabase(config).catch((err: Error) => {
  console.error(`${err.message}\n(start wharf first: npm start)`);
  process.exit(1);
});
const db = createDb({ url: database.url, max: 1, applicationName: 'wharf-simulator' });
const sim = await startSimulator({
  port: int('port'),
  worldOptions: { seed: int('seed'), clients: int('clients'), ordersPerClient: int('orders'), start: Date.now() },
});
const sources = await registerSimulatorSources(db.sql, keyRingOf(config), sim.world);
await db.close();
console.log(`provider simulator on ${sim.apiUrl}`);
for (const s of sources) console.log(`source ${s.id} ${s.created ? 'added to' : 'already in'} wharf: ${config.publicUrl}/webhooks/shipbob/${s.id}`);
console.log(`for polling too, run wharf with PROVIDER_BASE_URL=${sim.url}`);

const sender = createWebhookSender({
  ...PROVIDER_HABITS,
  target: (clientId) => `${config.publicUrl}/webhooks/shipbob/${simulatorSourceId(clientId)}`,
  secretFor: (clientId) => [sim.world.clients[clientId - 1].secret],
});
const ticker = setInterval(() => {
  sender.enqueue(sim.world.step());
  console.log(JSON.stringify(sender.stats));
}, Math.max(50, int('interval')));

async function stop(): Promise<void> {
  clearInterval(ticker);
  await sim.close();
  process.exit(0);
}
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
