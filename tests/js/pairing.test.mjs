// The pairing comparison code in the browser's module: the documented test vector, an independent node:crypto reference,
// and a real request to the real node in approval mode, where the new device's code and the approving device's agree.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, test } from 'node:test';
import { bindCredential, DEVICE_CAPABILITIES, newCredentialId } from '../../static/js/device.mjs';
import { loginAssertion } from '../../static/js/jws.mjs';
import { comparisonCode, formatCode } from '../../static/js/pairing.mjs';
import { generateOwnerKey, jwkThumbprint } from '../../static/js/wrapped-key.mjs';
import { TestNode, claimNode, requireBinary, signIn } from './inbox-helpers.mjs';

/** The code as docs/protocol.md states it, computed with node:crypto. */
function referenceCode(publicUrl, requestId, kid, nodeNonce) {
  const digest = createHash('sha256').update(['siteid-pairing-v1', publicUrl, requestId, kid, nodeNonce].join('\0')).digest();
  return String(digest.readUInt32BE(0) % 1_000_000).padStart(6, '0');
}

test('the documented test vector gives 205431', async () => {
  assert.equal(await comparisonCode('https://example.com', 'req', 'kid', 'nonce'), '205431');
  assert.equal(referenceCode('https://example.com', 'req', 'kid', 'nonce'), '205431');
  assert.equal(formatCode('205431'), '205 431');
});

test('every input changes the code, and a small code keeps its leading zeros', async () => {
  const codes = new Set(
    await Promise.all([
      comparisonCode('https://example.com', 'req', 'kid', 'nonce'),
      comparisonCode('https://example.org', 'req', 'kid', 'nonce'),
      comparisonCode('https://example.com', 'req2', 'kid', 'nonce'),
      comparisonCode('https://example.com', 'req', 'kid2', 'nonce'),
      comparisonCode('https://example.com', 'req', 'kid', 'nonce2'),
    ]),
  );
  assert.equal(codes.size, 5);
  // About one nonce in ten gives a code below 100000; 200 tries miss one with a chance of 1e-9.
  const nonce = Array.from({ length: 200 }, (_, i) => `n${i}`).find((n) => referenceCode('https://example.com', 'req', 'kid', n) < '100000');
  assert.ok(nonce, 'a nonce with a leading zero');
  const code = await comparisonCode('https://example.com', 'req', 'kid', nonce);
  assert.match(code, /^0\d{5}$/);
  assert.equal(code, referenceCode('https://example.com', 'req', 'kid', nonce));
  assert.equal(formatCode(code), `${code.slice(0, 3)} ${code.slice(3)}`);
});

let node;
let owner;

before(async () => {
  requireBinary();
  node = await TestNode.start('pairing');
  owner = await claimNode(node, (await generateOwnerKey()).privateJwk, { withEncryptionKey: false });
});

after(async () => {
  await node?.stop();
});

test('the new device and the approving device compute the same code for a real request, which approved signs in', async () => {
  // The approving device: the owner signs in, steps up and sets approval mode.
  const token = await signIn(node, owner);
  const { nonce } = await node.expect(200, 'POST', '/api/v1/auth/challenge');
  const assertion = await loginAssertion(owner.signingKey, { audience: node.base, nonce, kid: owner.kid });
  await node.expect(204, 'POST', '/api/v1/auth/reauth', { token, body: { assertion } });
  const settings = await node.expect(200, 'PUT', '/api/v1/enrollment', { token, body: { mode: 'approval' } });
  assert.equal(settings.mode, 'approval');
  assert.equal(settings.window, null);

  // The new device: its own key and request, and the code from what it holds and the node's nonce.
  const pair = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-384' }, false, ['sign', 'verify']);
  const { kty, crv, x, y } = await crypto.subtle.exportKey('jwk', pair.publicKey);
  const publicJwk = { kty, crv, x, y };
  const kid = await jwkThumbprint(publicJwk);
  const id = newCredentialId();
  const sent = await node.expect(201, 'POST', '/api/v1/enrollment/requests', { body: { id, kind: 'device', label: 'Phone', public_key: publicJwk } });
  assert.equal(sent.status, 'pending');
  const onNewDevice = await comparisonCode(node.base, id, kid, sent.node_nonce);

  // The approving device reads the request and computes the code from it.
  const { requests } = await node.expect(200, 'GET', '/api/v1/enrollment/requests', { token });
  const seen = requests.find((r) => r.request_id === id);
  assert.ok(seen, 'the request is listed');
  const onApprover = await comparisonCode(node.base, seen.request_id, seen.kid, seen.node_nonce);
  assert.match(onNewDevice, /^\d{6}$/);
  assert.equal(onApprover, onNewDevice);
  assert.equal(onNewDevice, referenceCode(node.base, id, kid, sent.node_nonce));

  // Approved with a binding by the owner key, the new device's own key signs in.
  const capabilities = DEVICE_CAPABILITIES.filter((c) => c !== 'owner');
  const binding = await bindCredential(owner, { id, kid, kind: 'device', label: 'Phone', capabilities, networks: [], expiresAt: null });
  const credential = await node.expect(201, 'POST', `/api/v1/enrollment/requests/${id}/approve`, { token, body: { capabilities, networks: [], expires_at: null, binding } });
  assert.equal(credential.kid, kid);
  assert.equal((await node.expect(200, 'GET', `/api/v1/enrollment/requests/${id}`)).status, 'approved');
  const deviceToken = await signIn(node, { signingKey: pair.privateKey, kid });
  const session = await node.expect(200, 'GET', '/api/v1/session', { token: deviceToken });
  assert.equal(session.credential_id, id);
  assert.deepEqual([...session.capabilities].sort(), [...capabilities].sort());
});
