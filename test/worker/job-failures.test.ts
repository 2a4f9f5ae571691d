import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import t from 'tap';
import { insertSource } from '../../src/intake/sources.js';
import { metrics } from '../../src/metrics.js';
import { listPollRuns } from '../../src/poll/poll-runs.js';
import { startWorker } from '../../src/worker/runner.js';
import { freshDatabase, testConfig, testKeys } from '../helper.js';
import { waitFor } from '../wait.js';

// A poll whose provider answers 503 to everything, run by the real worker (startWorker): the failed attempt feeds
// wharf_worker_job_failures_total, the provider calls are counted by endpoint and status, and poll_runs keeps the run
// with its error.

t.test('a failing job is counted by task, and its poll run is logged with the error', async (t) => {
  const provider = createServer((_req, res) => {
    res.writeHead(503, { 'content-type': 'application/json' });
    res.end('{"message":"down"}');
  });
  await new Promise<void>((resolve) => provider.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => provider.close(() => resolve())));
  const db = await freshDatabase(t);
  const config = testConfig(db.url, {
    PROVIDER_BASE_URL: `http://127.0.0.1:${(provider.address() as AddressInfo).port}`,
    PROVIDER_CALLS_PER_MINUTE: '60000',
    WORKER_CONCURRENCY: '1',
    HEARTBEAT_INTERVAL_MS: '1000',
  });
  await insertSource(db.sql, testKeys, { id: 'down', name: 'down', secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', apiToken: 'pat_down' });
  const failuresBefore = (await metrics.jobFailures.get()).values.find((v) => v.labels.task === 'poll_stream')?.value ?? 0;

  await db.sql`select graphile_worker.add_job('poll_stream', json_build_object('sourceId', 'down', 'stream', 'orders'), max_attempts => 1)`;
  const worker = await startWorker(config, db.url, pino({ level: 'silent' }));
  t.teardown(() => worker.stop(Date.now() + 5000));

  const [run] = await waitFor(
    async () => {
      const runs = await listPollRuns(db.sql, { sourceId: 'down', limit: 1 });
      return runs.length ? runs : undefined;
    },
    'the failed poll run',
    60_000,
    100,
  );
  t.equal(run.outcome, 'error');
  t.match(run.error, /503/, 'with the provider’s answer');
  t.ok(run.calls >= 1, `${run.calls} calls recorded`);
  const failures = await waitFor(
    async () => {
      const v = (await metrics.jobFailures.get()).values.find((x) => x.labels.task === 'poll_stream')?.value ?? 0;
      return v > failuresBefore ? v : undefined;
    },
    'the job failure counted',
    10_000,
  );
  t.equal(failures - failuresBefore, 1, 'wharf_worker_job_failures_total{task="poll_stream"} counts the attempt');
  const calls = (await metrics.providerRequests.get()).values.find((v) => v.labels.endpoint === 'GET /order' && v.labels.status === '503');
  t.ok((calls?.value ?? 0) >= run.calls, 'wharf_provider_requests_total{endpoint="GET /order",status="503"}');
});
