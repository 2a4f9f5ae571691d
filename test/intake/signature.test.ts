import t from 'tap';
import { secretKey, sign, signatureHeader, VerifyFailure, verify } from '../../src/intake/signature.js';

// Standard Webhooks verification, unit by unit, starting from the specification's public vector.

const VECTOR = {
  secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  id: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
  timestamp: '1614265330',
  body: Buffer.from('{"test": 2432232314}'),
  signature: 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
};
const nowMs = Number(VECTOR.timestamp) * 1000;
const base = {
  id: VECTOR.id,
  timestamp: VECTOR.timestamp,
  signature: VECTOR.signature,
  body: VECTOR.body,
  keys: [secretKey(VECTOR.secret)],
  nowMs,
  toleranceMs: 5 * 60_000,
};

t.test('signs and verifies the public test vector', async (t) => {
  t.equal(`v1,${sign(VECTOR.secret, VECTOR.id, VECTOR.timestamp, VECTOR.body)}`, VECTOR.signature);
  t.equal(verify(base), null);
});

t.test('accepts an unpadded signature, several entries, and any of several keys', async (t) => {
  t.equal(verify({ ...base, signature: VECTOR.signature.replace(/=+$/, '') }), null);
  t.equal(verify({ ...base, signature: `v1,${Buffer.alloc(32).toString('base64')} ${VECTOR.signature}` }), null);
  t.equal(verify({ ...base, signature: `v2,abc ${VECTOR.signature}` }), null, 'unknown versions are skipped');
  t.equal(verify({ ...base, keys: [secretKey('whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAA'), base.keys[0]] }), null);
  const header = signatureHeader(['whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAA', VECTOR.secret], VECTOR.id, 1614265330, VECTOR.body);
  t.equal(verify({ ...base, signature: header }), null);
});

t.test('rejects a tampered or re-serialised body', async (t) => {
  t.equal(verify({ ...base, body: Buffer.from('{"test": 2432232315}') }), VerifyFailure.badSignature);
  t.equal(verify({ ...base, body: Buffer.from(JSON.stringify(JSON.parse(VECTOR.body.toString()))) }), VerifyFailure.badSignature);
  t.equal(verify({ ...base, id: 'msg_other' }), VerifyFailure.badSignature, 'the id is signed');
});

t.test('rejects malformed signature entries without throwing', async (t) => {
  for (const signature of ['v1', 'v1,', 'v1,!!!!', 'v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=', 'v1,g0hM9SsE', `v1,${Buffer.alloc(33).toString('base64')}`]) {
    t.equal(verify({ ...base, signature }), VerifyFailure.badSignature, signature);
  }
  t.equal(verify({ ...base, keys: [] }), VerifyFailure.badSignature, 'no valid secret');
});

t.test('timestamps: integers only, within the tolerance either way', async (t) => {
  t.equal(verify({ ...base, nowMs: nowMs + 5 * 60_000 }), null, 'exactly at the tolerance');
  t.equal(verify({ ...base, nowMs: nowMs + 5 * 60_000 + 1000 }), VerifyFailure.staleTimestamp);
  t.equal(verify({ ...base, nowMs: nowMs - 5 * 60_000 - 1000 }), VerifyFailure.futureTimestamp);
  for (const timestamp of ['1614265330.0', '-1614265330', '0x60381eb2', ' 1614265330', '1e9', '']) {
    const r = verify({ ...base, timestamp });
    t.ok(r === VerifyFailure.badTimestamp || r === VerifyFailure.missingHeaders, `${JSON.stringify(timestamp)}: ${r}`);
  }
});

t.test('missing headers', async (t) => {
  t.equal(verify({ ...base, id: undefined }), VerifyFailure.missingHeaders);
  t.equal(verify({ ...base, timestamp: undefined }), VerifyFailure.missingHeaders);
  t.equal(verify({ ...base, signature: undefined }), VerifyFailure.missingHeaders);
});
