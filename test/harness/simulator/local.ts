import type { Sql } from '../../../src/db/client.js';
import { insertSource } from '../../../src/intake/sources.js';
import type { KeyRing } from '../../../src/key-ring.js';
import type { World } from './world.js';

/**
 * Wires the simulator to a local wharf (`npm run simulator:local`): one wharf source per simulator client, with the
 * client's webhook secret and API token, under a fixed id (`sim-c<N>`) so the webhook URL is known before it exists.
 * Idempotent: a source already there is kept (the same seed gives the same secrets and tokens).
 */
export const simulatorSourceId = (clientId: number) => `sim-c${clientId}`;

export async function registerSimulatorSources(sql: Sql, keys: KeyRing, world: World): Promise<{ id: string; created: boolean }[]> {
  const out: { id: string; created: boolean }[] = [];
  for (const c of world.clients) {
    const id = simulatorSourceId(c.id);
    const [exists] = await sql`select 1 from sources where id = ${id}`;
    if (!exists) await insertSource(sql, keys, { id, name: `simulator ${c.name} (${id})`, secret: c.secret, apiToken: c.token, clientId: `sim-${c.id}` });
    out.push({ id, created: !exists });
  }
  return out;
}
