// The key that wraps the owner's encryption keys is the same in the browser module, in node:crypto and in the node
// (tests/vectors/encryption_kek.json, which src/jose/jwe.rs checks too): a JWE that npm jose wraps under the vector's
// KEK opens with inbox-crypto.mjs from the owner key alone.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hkdfSync } from 'node:crypto';
import * as jose from 'jose';
import { generateEncryptionKey, openEncryptionKey } from '../../static/js/inbox-crypto.mjs';
import { readVector } from './helpers.mjs';

const vector = readVector('encryption_kek.json');

test('node:crypto derives the KEK the vector records', () => {
  const d = Buffer.from(vector.owner_private_jwk.d, 'base64url');
  const kek = Buffer.from(hkdfSync('sha256', d, Buffer.from('siteid-enc-kek-v1'), Buffer.from('siteid encryption key A256KW'), 32));
  assert.equal(kek.toString('hex'), vector.kek_hex);
});

test('an encryption key jose wraps under the vector KEK opens with the owner key in inbox-crypto.mjs', async () => {
  const { privateJwk, kid } = await generateEncryptionKey();
  const plaintext = new TextEncoder().encode(JSON.stringify({ kty: privateJwk.kty, crv: privateJwk.crv, x: privateJwk.x, y: privateJwk.y, d: privateJwk.d }));
  const compact = await new jose.CompactEncrypt(plaintext)
    .setProtectedHeader({ alg: 'A256KW', enc: 'A256GCM', cty: 'jwk+json', kid })
    .encrypt(Buffer.from(vector.kek_hex, 'hex'));
  const opened = await openEncryptionKey({ ...vector.owner_private_jwk }, compact, kid);
  assert.equal(opened.kid, kid);
  assert.equal(opened.privateKey.extractable, false);
  const wrongOwner = { ...vector.owner_private_jwk, d: Buffer.alloc(48, 7).toString('base64url') };
  await assert.rejects(openEncryptionKey(wrongOwner, compact, kid));
});

test('a device checks the published encryption key against the owner key’s binding', async () => {
  const { checkEncryptionKey, NodeAlarm } = await import('../../static/js/node-check.mjs');
  const { generateOwnerKey, importSigningKey, jwkThumbprint } = await import('../../static/js/wrapped-key.mjs');
  const { signJwt } = await import('../../static/js/jws.mjs');
  const made = async () => {
    const { privateJwk, publicJwk } = await generateOwnerKey();
    return { publicJwk, kid: await jwkThumbprint(publicJwk), signingKey: await importSigningKey({ ...privateJwk }) };
  };
  const owner = await made();
  const enc = await generateEncryptionKey();
  const bind = (signingKey, claims) => signJwt(signingKey, { alg: 'ES384', typ: 'siteid-enc-key+jwt', kid: owner.kid }, claims);
  const jwks = { keys: [{ ...owner.publicJwk, kid: owner.kid, use: 'sig' }, { ...enc.publicJwk, kid: enc.kid, use: 'enc', alg: 'ECDH-ES+A256KW' }] };
  const history = (binding) => ({ keys: [], encryption_key: { kid: enc.kid, jwk: enc.publicJwk, binding } });
  const good = await bind(owner.signingKey, { sub: enc.kid, use: 'enc', iat: 1 });
  await checkEncryptionKey(jwks, history(good), owner.publicJwk, owner.kid);
  await checkEncryptionKey({ keys: [jwks.keys[0]] }, { keys: [] }, owner.publicJwk, owner.kid);
  const stranger = await made();
  const cases = [
    history(await bind(stranger.signingKey, { sub: enc.kid, use: 'enc', iat: 1 })),
    history(await bind(owner.signingKey, { sub: 'another', use: 'enc', iat: 1 })),
    history(await bind(owner.signingKey, { sub: enc.kid, use: 'enc', iat: 1, extra: true })),
    { keys: [] },
  ];
  for (const bad of cases) {
    await assert.rejects(checkEncryptionKey(jwks, bad, owner.publicJwk, owner.kid), (error) => error instanceof NodeAlarm && error.kind === 'key-swapped');
  }
});
