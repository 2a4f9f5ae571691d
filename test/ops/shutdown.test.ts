import { spawn } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import t from 'tap';
import { insertSource } from '../../src/intake/sources.js';
import { signatureHeader } from '../../src/intake/signature.js';
import { freePort } from '../../src/net.js';
import { projectRoot } from '../../src/paths.js';
import { freshDatabase, TEST_ENCRYPTION_KEY, testKeys } from '../helper.js';

const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';

/** POSTs one signed event; resolves with the status code, or 0 when the connection failed (refused, reset). */
function send(agent: http.Agent, port: number, sourceId: string, id: string): Promise<number> {
  const body = JSON.stringify({ id: Number(id.slice(4)), status: 'Processing', event_time: new Date().toISOString() });
  const ts = Math.floor(Date.now() / 1000);
  return new Promise((resolve) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path: `/webhooks/shipbob/${sourceId}`,
        method: 'POST',
        agent,
        headers: {
          'content-type': 'application/json',
          'webhook-id': id,
          'webhook-timestamp': String(ts),
          'webhook-signature': signatureHeader([SECRET], id, ts, body),
          'x-webhook-topic': 'order.shipped',
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', () => resolve(0));
    req.end(body);
  });
}

t.test('SIGTERM during a burst of webhooks loses none that were acknowledged', async (t) => {
  const { sql, url } = await freshDatabase(t);
  const sourceId = await insertSource(sql, testKeys, { name: 'acme', secret: SECRET });
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(projectRoot, 'src', 'main.ts'), 'web'], {
    cwd: projectRoot,
    env: { PATH: process.env.PATH, DATABASE_URL: url, PORT: String(port), METRICS_PORT: '0', LOG_LEVEL: 'info', SHUTDOWN_TIMEOUT_MS: '10000', WHARF_ENCRYPTION_KEY: TEST_ENCRYPTION_KEY },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let log = '';
  child.stdout.on('data', (c) => (log += c));
  const exited = new Promise<{ code: number | null; at: number }>((resolve) =>
    child.once('exit', (code) => resolve({ code, at: Date.now() })),
  );
  await new Promise<void>((resolve, reject) => {
    const check = () => (log.includes('wharf web listening') ? resolve() : undefined);
    child.stdout.on('data', check);
    child.once('exit', () => reject(new Error(`web exited before listening:\n${log}`)));
  });

  const agent = new http.Agent({ keepAlive: true, maxSockets: 20 });
  t.teardown(() => agent.destroy());
  const acked: string[] = [];
  const statuses = new Map<number, number>();
  let n = 0;
  let stopAt = Number.POSITIVE_INFINITY;
  let signalledAt = 0;
  // 20 senders in a loop; after 300 acknowledgements, SIGTERM; senders stop after the first refused connection.
  const sender = async () => {
    for (;;) {
      const id = `msg_${++n}`;
      if (n > stopAt) return;
      const status = await send(agent, port, sourceId, id);
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
      if (status >= 200 && status < 300) acked.push(id);
      if (acked.length >= 300 && !signalledAt) {
        signalledAt = Date.now();
        child.kill('SIGTERM');
      }
      if (status === 0) stopAt = Math.min(stopAt, n + 20);
    }
  };
  await Promise.all(Array.from({ length: 20 }, sender));
  if (!signalledAt) {
    // Requests failed before 300 acknowledgements (an overloaded machine): still prove the shutdown itself.
    signalledAt = Date.now();
    child.kill('SIGTERM');
  }
  const { code, at } = await exited;

  t.equal(code, 0, 'the web process exited cleanly');
  // Well inside SHUTDOWN_TIMEOUT_MS: kept-alive connections must not hold the exit until the deadline cut (9 s here).
  t.ok(at - signalledAt < 8_500, `before the deadline cut (${at - signalledAt} ms)`);
  t.ok(acked.length > 0, `${acked.length} acknowledged (statuses ${JSON.stringify([...statuses])})`);
  const stored = await sql<{ event_id: string }[]>`
    select event_id from inbox_events where source_id = ${sourceId} and event_id = any(${acked}::text[])`;
  t.equal(stored.length, acked.length, 'every acknowledged event is in the inbox');
  t.ok(statuses.get(0), 'the burst ran into the closed server (the test covered the shutdown)');
  t.notOk([...statuses.keys()].some((s) => s >= 200 && s < 300 && s !== 200 && s !== 202), 'only 200/202 acknowledgements');
});
