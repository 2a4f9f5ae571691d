/** A drain in its own process, for the test that kills one mid-chunk: `drain-child.ts <database url>`. */
import { createDb } from '../../src/db/client.js';
import { drainChunk } from '../../src/drain/drain-inbox.js';

const db = createDb({ url: process.argv[2], max: 1, applicationName: 'drain-child' });
const result = await drainChunk(db.sql, 500);
console.log(JSON.stringify(result));
await db.close();
