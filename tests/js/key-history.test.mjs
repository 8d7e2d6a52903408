// Tests of static/js/node-check.mjs (key history) with statements made by static/js/key-statement.mjs: a history of
// genesis, rotation, compromise and reset verifies, every tampering is refused, each statement verifies with npm jose
// too (and a tampered one does not), and the owner record signature from jws.mjs has the claims the protocol names.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as jose from 'jose';
import { encode, encodeJson } from '../../static/js/b64url.mjs';
import { recordSignature } from '../../static/js/jws.mjs';
import { keyStatement } from '../../static/js/key-statement.mjs';
import { NodeAlarm, checkKeyHistory, verifyHistory } from '../../static/js/node-check.mjs';
import { generateOwnerKey, importSigningKey, jwkThumbprint } from '../../static/js/wrapped-key.mjs';
import { partJson } from './helpers.mjs';

async function ownerKey() {
  const { privateJwk, publicJwk } = await generateOwnerKey();
  return { signingKey: await importSigningKey(privateJwk), kid: await jwkThumbprint(publicJwk), jwk: publicJwk };
}

const [k1, k2, k3, k4, stranger] = await Promise.all([ownerKey(), ownerKey(), ownerKey(), ownerKey(), ownerKey()]);

/** A history of keys, each step {key, reason}: rotation and compromise signed by the key before, reset by the key itself. */
async function history(steps) {
  const keys = [];
  for (const [seq, { key, reason }] of steps.entries()) {
    const before = keys[seq - 1];
    const signer = seq === 0 || reason === 'reset' ? key : steps[seq - 1].key;
    const statement = await keyStatement(signer, seq === 0 ? { newKid: key.kid } : { newKid: key.kid, oldKid: before.kid, seq, reason });
    keys.push({ kid: key.kid, jwk: key.jwk, since: 1_700_000_000 + seq, statement });
  }
  return { keys };
}

const full = await history([{ key: k1 }, { key: k2, reason: 'rotation' }, { key: k3, reason: 'compromise' }]);

/** Resolves with the kind of the NodeAlarm that check throws (failing if it throws anything else or nothing). */
async function alarmKind(check) {
  try {
    await check;
  } catch (error) {
    assert.ok(error instanceof NodeAlarm, `a NodeAlarm, not ${error}`);
    assert.ok(error.message.length > 10);
    return error.kind;
  }
  assert.fail('the check passed');
}

/** A copy of full with entry i changed by change(entry). */
function tampered(i, change) {
  const copy = structuredClone(full);
  change(copy.keys[i]);
  return copy;
}

/** Re-signs the parts of a statement as given, with another key. */
async function resign(signer, header, claims) {
  const input = `${encodeJson(header)}.${encodeJson(claims)}`;
  const signature = await globalThis.crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-384' }, signer.signingKey, new TextEncoder().encode(input));
  return `${input}.${encode(signature)}`;
}

test('a history of genesis, rotation and compromise verifies and leads every kid in it to the current key', async () => {
  assert.deepEqual(await verifyHistory(full), [
    { kid: k1.kid, reason: 'genesis' },
    { kid: k2.kid, reason: 'rotation' },
    { kid: k3.kid, reason: 'compromise' },
  ]);
  for (const trusted of [k1, k2, k3]) assert.equal((await checkKeyHistory(full, k3.kid, trusted.kid)).length, 3);
  const genesis = partJson(full.keys[0].statement, 1);
  assert.deepEqual(Object.keys(genesis).sort(), ['iat', 'new', 'old', 'reason', 'seq']);
  assert.deepEqual({ ...genesis, iat: 0 }, { new: k1.kid, old: null, seq: 0, iat: 0, reason: 'genesis' });
  assert.deepEqual(partJson(full.keys[1].statement, 0), { alg: 'ES384', typ: 'siteid-key-statement+jwt', kid: k1.kid });
});

test('every statement of a valid history verifies with npm jose, by the key before it', async () => {
  for (const [i, entry] of full.keys.entries()) {
    const signer = full.keys[Math.max(0, i - 1)];
    const { payload, protectedHeader } = await jose.compactVerify(entry.statement, await jose.importJWK(signer.jwk, 'ES384'), { algorithms: ['ES384'] });
    assert.equal(protectedHeader.typ, 'siteid-key-statement+jwt');
    assert.equal(protectedHeader.kid, signer.kid);
    assert.equal(JSON.parse(new TextDecoder().decode(payload)).new, entry.kid);
    assert.equal(await jose.calculateJwkThumbprint(entry.jwk, 'sha256'), entry.kid);
  }
});

test('a reset verifies as a history but is a break for a device that trusts a key before it', async () => {
  const withReset = await history([{ key: k1 }, { key: k2, reason: 'rotation' }, { key: k3, reason: 'reset' }, { key: k4, reason: 'rotation' }]);
  assert.equal((await verifyHistory(withReset))[2].reason, 'reset');
  assert.equal(await alarmKind(checkKeyHistory(withReset, k4.kid, k1.kid)), 'reset');
  assert.equal(await alarmKind(checkKeyHistory(withReset, k4.kid, k2.kid)), 'reset');
  assert.equal((await checkKeyHistory(withReset, k4.kid, k3.kid)).length, 4, 'after the reset, the chain holds again');
  const [, , reset] = withReset.keys;
  assert.equal(partJson(reset.statement, 0).kid, k3.kid, 'a reset is signed by the new key');
  await jose.compactVerify(reset.statement, await jose.importJWK(k3.jwk, 'ES384'));
});

test('a current key that the history does not end at is a key swapped without a statement', async () => {
  assert.equal(await alarmKind(checkKeyHistory(full, stranger.kid, k3.kid)), 'key-swapped');
  assert.equal(await alarmKind(checkKeyHistory(full, k2.kid, k2.kid)), 'key-swapped', 'the node went back to an older key');
});

test('an entry without its statement is a key swapped without a statement', async () => {
  const withStranger = structuredClone(full);
  withStranger.keys.push({ kid: stranger.kid, jwk: stranger.jwk, since: 1_800_000_000 });
  assert.equal(await alarmKind(checkKeyHistory(withStranger, stranger.kid, k3.kid)), 'key-swapped');
  assert.equal(await alarmKind(verifyHistory(tampered(1, (e) => (e.statement = '')))), 'key-swapped');
});

test('a history that no longer holds the trusted key was rewritten', async () => {
  const foreign = await history([{ key: stranger }]);
  assert.equal(await alarmKind(checkKeyHistory(foreign, stranger.kid, k3.kid)), 'history-rewritten');
  const restarted = await history([{ key: k4 }, { key: stranger, reason: 'rotation' }]);
  assert.equal(await alarmKind(checkKeyHistory(restarted, stranger.kid, k1.kid)), 'history-rewritten');
});

test('an empty history (a node from before key statements) keeps only the same key', async () => {
  assert.deepEqual(await checkKeyHistory({ keys: [] }, k1.kid, k1.kid), []);
  assert.equal(await alarmKind(checkKeyHistory({ keys: [] }, stranger.kid, k1.kid)), 'key-swapped');
});

test('every kind of tampering with a history is refused as rewritten', async () => {
  const cases = {
    'claims changed under the old signature': () =>
      tampered(1, (e) => {
        const [, , signature] = e.statement.split('.');
        e.statement = `${encodeJson(partJson(e.statement, 0))}.${encodeJson({ ...partJson(e.statement, 1), reason: 'compromise' })}.${signature}`;
      }),
    'another key in place of the one the kid names': () => tampered(2, (e) => (e.jwk = stranger.jwk)),
    'a kid that is not the key’s thumbprint': () => tampered(2, (e) => (e.kid = stranger.kid)),
    'entries in another order': () => ({ keys: [full.keys[0], full.keys[2], full.keys[1]] }),
    'the genesis left out': () => ({ keys: full.keys.slice(1) }),
    'a statement that is not a JWS': () => tampered(1, (e) => (e.statement = 'not.a.jws.at.all')),
    'a list that is not one': () => ({ keys: 'k1' }),
  };
  for (const [what, make] of Object.entries(cases)) {
    assert.equal(await alarmKind(verifyHistory(await make())), 'history-rewritten', what);
  }
});

test('statements that do not say exactly what the protocol says are refused, even when validly signed', async () => {
  const header = { alg: 'ES384', typ: 'siteid-key-statement+jwt', kid: k1.kid };
  const claims = { new: k2.kid, old: k1.kid, seq: 1, iat: 1_700_000_000, reason: 'rotation' };
  const variants = {
    'signed by a stranger under the old kid': await resign(stranger, header, claims),
    'signed by the new key for a rotation': await resign(k2, { ...header, kid: k2.kid }, claims),
    'another typ': await resign(k1, { ...header, typ: 'JWT' }, claims),
    'an extra header member': await resign(k1, { ...header, cty: 'x' }, claims),
    'an extra claim': await resign(k1, header, { ...claims, note: 'hi' }),
    'a missing claim': await resign(k1, header, { new: k2.kid, old: k1.kid, seq: 1, reason: 'rotation' }),
    'another seq': await resign(k1, header, { ...claims, seq: 2 }),
    'another old kid': await resign(k1, header, { ...claims, old: stranger.kid }),
    'an unknown reason': await resign(k1, header, { ...claims, reason: 'because' }),
    'another new kid': await resign(k1, header, { ...claims, new: stranger.kid }),
  };
  for (const [what, statement] of Object.entries(variants)) {
    assert.equal(await alarmKind(verifyHistory(tampered(1, (e) => (e.statement = statement)))), 'history-rewritten', what);
  }
  // npm jose agrees that the stranger's statement is not the old key's.
  await assert.rejects(jose.compactVerify(variants['signed by a stranger under the old kid'], await jose.importJWK(k1.jwk, 'ES384')));
  const genesis = await resign(k1, header, { ...claims, new: k1.kid, old: null, seq: 0, reason: 'rotation' });
  assert.equal(await alarmKind(verifyHistory(tampered(0, (e) => (e.statement = genesis)))), 'history-rewritten', 'a first entry that is no genesis');
});

test('the owner record signature names the wrapped key and the SHA-256 of the verifier bytes, and verifies with npm jose', async () => {
  const verifierBytes = Buffer.alloc(32, 7);
  const unlockVerifier = verifierBytes.toString('base64url');
  const wrappedKey = 'header.key.iv.ciphertext.tag';
  const record = await recordSignature(k1, { audience: 'https://id.example', wrappedKey, unlockVerifier, now: 1_700_000_000 });
  const { payload, protectedHeader } = await jose.compactVerify(record, await jose.importJWK(k1.jwk, 'ES384'));
  assert.deepEqual(protectedHeader, { alg: 'ES384', typ: 'siteid-owner-record+jwt', kid: k1.kid });
  assert.deepEqual(JSON.parse(new TextDecoder().decode(payload)), {
    aud: 'https://id.example',
    sub: k1.kid,
    wrapped_key_sha256: createHash('sha256').update(wrappedKey, 'ascii').digest('base64url'),
    verifier_hash: createHash('sha256').update(verifierBytes).digest('base64url'),
    iat: 1_700_000_000,
  });
});
