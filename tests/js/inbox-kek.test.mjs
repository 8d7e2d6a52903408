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
