// The node key read by an independent library: npm `jose` verifies the owner key's binding of the node key (made here with
// the browser's own signJwt) and the node's proof over a challenge and this client's nonce, from what the real node publishes.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import * as jose from 'jose';
import { signJwt } from '../../static/js/jws.mjs';
import { generateOwnerKey } from '../../static/js/wrapped-key.mjs';
import { TestNode, claimNode, requireBinary, signIn } from './inbox-helpers.mjs';

let node;
let owner;

before(async () => {
  requireBinary();
  node = await TestNode.start('node-key');
  owner = await claimNode(node, (await generateOwnerKey()).privateJwk, { withEncryptionKey: false });
});

after(async () => {
  await node?.stop();
});

test('jose verifies the binding and the node proof the node publishes', async () => {
  const published = await node.expect(200, 'GET', '/.well-known/siteid/node-key.json');
  assert.equal(published.binding, null, 'unbound until the owner key binds it');
  assert.equal(await jose.calculateJwkThumbprint(published.jwk, 'sha256'), published.kid);

  const token = await signIn(node, owner);
  const binding = await signJwt(
    owner.signingKey,
    { alg: 'ES384', typ: 'siteid-node-key+jwt', kid: owner.kid },
    { aud: node.base, sub: published.kid, iat: Math.floor(Date.now() / 1000) },
  );
  await node.expect(204, 'PUT', '/api/v1/node-key/binding', { token, body: { binding } });
  const bound = await node.expect(200, 'GET', '/.well-known/siteid/node-key.json');
  const ownerKey = await jose.importJWK({ ...owner.publicJwk, alg: 'ES384' }, 'ES384');
  const { payload: claims, protectedHeader } = await jose.jwtVerify(bound.binding, ownerKey, {
    typ: 'siteid-node-key+jwt',
    audience: node.base,
    algorithms: ['ES384'],
  });
  assert.equal(protectedHeader.kid, owner.kid);
  assert.equal(claims.sub, bound.kid);

  const jwks = await node.expect(200, 'GET', '/.well-known/jwks.json');
  assert.ok(jwks.keys.some((key) => key.kid === bound.kid && key.use === 'sig'), 'the JWKS lists the bound node key');

  const clientNonce = randomBytes(24).toString('base64url');
  const challenge = await node.expect(200, 'POST', '/api/v1/auth/challenge', { body: { client_nonce: clientNonce } });
  const nodeKey = await jose.importJWK({ ...bound.jwk }, 'ES384');
  const proof = await jose.jwtVerify(challenge.node_signature, nodeKey, {
    typ: 'siteid-node-proof+jwt',
    audience: node.base,
    algorithms: ['ES384'],
  });
  assert.equal(proof.protectedHeader.kid, bound.kid);
  assert.deepEqual(Object.keys(proof.payload).sort(), ['aud', 'client_nonce', 'iat', 'nonce']);
  assert.equal(proof.payload.nonce, challenge.nonce);
  assert.equal(proof.payload.client_nonce, clientNonce);
  await assert.rejects(jose.jwtVerify(challenge.node_signature, ownerKey), 'the owner key did not sign the proof');
});

test('a device raises the alarm at a node key in the JWKS that the owner key did not bind for this node', async () => {
  const { NodeAlarm } = await import('../../static/js/node-check.mjs');
  const { checkNodeKey } = await import('../../static/js/node-key-check.mjs');
  const { importSigningKey, jwkThumbprint } = await import('../../static/js/wrapped-key.mjs');
  const made = async () => {
    const { privateJwk, publicJwk } = await generateOwnerKey();
    return { publicJwk, kid: await jwkThumbprint(publicJwk), signingKey: await importSigningKey({ ...privateJwk }) };
  };
  const ownerKey = await made();
  const nodeKey = await made();
  const origin = 'https://id.example';
  globalThis.location = { origin };
  try {
    const bind = (signer, claims) => signJwt(signer.signingKey, { alg: 'ES384', typ: 'siteid-node-key+jwt', kid: ownerKey.kid }, claims);
    const iat = Math.floor(Date.now() / 1000);
    const ownerEntry = { ...ownerKey.publicJwk, kid: ownerKey.kid, use: 'sig', alg: 'ES384' };
    const nodeEntry = { ...nodeKey.publicJwk, kid: nodeKey.kid, use: 'sig', alg: 'ES384' };
    const jwks = { keys: [ownerEntry, nodeEntry] };
    const good = { kid: nodeKey.kid, jwk: nodeEntry, binding: await bind(ownerKey, { aud: origin, sub: nodeKey.kid, iat }) };
    await checkNodeKey(jwks, good, ownerKey.publicJwk, ownerKey.kid);
    await checkNodeKey({ keys: [ownerEntry] }, { ...good, binding: null }, ownerKey.publicJwk, ownerKey.kid);
    const stranger = await made();
    const cases = [
      [jwks, { ...good, binding: null }],
      [jwks, { ...good, binding: await bind(stranger, { aud: origin, sub: nodeKey.kid, iat }) }],
      [jwks, { ...good, binding: await bind(ownerKey, { aud: 'https://other.example', sub: nodeKey.kid, iat }) }],
      [jwks, { ...good, binding: await bind(ownerKey, { aud: origin, sub: nodeKey.kid, iat, extra: 1 }) }],
      [{ keys: [ownerEntry, { ...stranger.publicJwk, kid: stranger.kid, use: 'sig' }] }, good],
      [{ keys: [...jwks.keys, { ...stranger.publicJwk, kid: stranger.kid, use: 'sig' }] }, good],
    ];
    for (const [listed, published] of cases) {
      await assert.rejects(checkNodeKey(listed, published, ownerKey.publicJwk, ownerKey.kid), (error) => error instanceof NodeAlarm && error.kind === 'key-swapped');
    }
  } finally {
    delete globalThis.location;
  }
});
