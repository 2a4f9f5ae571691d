/**
 * `npm run demo [-- --seconds 40]`: wharf end to end against the provider simulator on a throwaway embedded database
 * (src/ops/demo.ts). Prints progress, a summary, and as its last line
 * {"demo":"done","received","applied","poll_catches","dead","matches_world"}.
 */
import { parseArgs } from 'node:util';
import { runDemo } from '../test/harness/demo.js';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '40' } } });
const seconds = Number(values.seconds);
if (!Number.isFinite(seconds) || seconds < 5 || seconds > 600) {
  console.error('--seconds must be between 5 and 600');
  process.exit(2);
}
const out = (line: string) => process.stdout.write(`${line}\n`);
const s = await runDemo({ durationMs: seconds * 1000, out });
out('');
out(`received ${s.received} events, applied ${s.applied}, ${s.pollCatches} caught by polling, ${s.dead} dead`);
out(s.matchesWorld ? "wharf's database matches the simulator's world" : `differences:\n  ${s.mismatches.join('\n  ')}`);
out(
  JSON.stringify({
    demo: 'done',
    received: s.received,
    applied: s.applied,
    poll_catches: s.pollCatches,
    dead: s.dead,
    matches_world: s.matchesWorld,
  }),
);
process.exit(s.matchesWorld ? 0 : 1);
