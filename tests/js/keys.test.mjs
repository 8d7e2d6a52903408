// Tests of static/js/keys.mjs: pasted public keys read in the browser name the same kid as npm jose's RFC 7638 thumbprint and as the node (vectors from ssh-keygen), and a binding made with device.mjs verifies with npm jose.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as jose from 'jose';
import { bindCredential } from '../../static/js/device.mjs';
import { KeyError, jwkFromSshSignature, readPublicKey, thumbprint } from '../../static/js/keys.mjs';
import { generateOwnerKey, importSigningKey, jwkThumbprint } from '../../static/js/wrapped-key.mjs';
import { vectorPath } from './helpers.mjs';

test('thumbprints match RFC 7638 and RFC 8037', async () => {
  const rsa = {
    kty: 'RSA',
    n: '0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw',
    e: 'AQAB',
    alg: 'RS256',
    kid: '2011-04-29',
  };
  assert.equal(await thumbprint(rsa), 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs');
  const ed25519 = { kty: 'OKP', crv: 'Ed25519', x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo' };
  assert.equal(await thumbprint(ed25519), 'kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k');
});

test('PEM and JWK keys of every accepted type name the kid npm jose computes', async () => {
  const pairs = [
    ['ec', { namedCurve: 'P-256' }, 'ES256'],
    ['ec', { namedCurve: 'P-384' }, 'ES384'],
    ['ed25519', {}, 'EdDSA'],
    ['rsa', { modulusLength: 2048 }, 'RS256'],
  ];
  for (const [type, options, alg] of pairs) {
    const { publicKey } = generateKeyPairSync(type, options);
    const pem = publicKey.export({ type: 'spki', format: 'pem' });
    const jwk = publicKey.export({ format: 'jwk' });
    const expected = await jose.calculateJwkThumbprint(jwk, 'sha256');
    const fromPem = await readPublicKey(pem);
    assert.equal(fromPem.kid, expected, `${type} PEM`);
    assert.equal(fromPem.alg, alg);
    assert.equal(fromPem.publicKey, pem.trim());
    const fromJwk = await readPublicKey(JSON.stringify(jwk));
    assert.equal(fromJwk.kid, expected, `${type} JWK`);
    assert.deepEqual(fromJwk.publicKey, jwk);
  }
});

test('OpenSSH lines from ssh-keygen name the same kid as the private key files do', async () => {
  for (const name of ['openssh-ec256', 'openssh-rsa', 'openssh-ed25519-passphrase-secret']) {
    const line = readFileSync(vectorPath(`keys/${name}.pub`), 'utf8');
    const read = await readPublicKey(line);
    assert.equal(read.kid, await jose.calculateJwkThumbprint(read.jwk, 'sha256'), name);
    assert.equal(read.publicKey, line.trim());
  }
  const rsa = await readPublicKey(readFileSync(vectorPath('keys/openssh-rsa.pub'), 'utf8'));
  assert.equal(rsa.alg, 'RS256');
  assert.notEqual(Buffer.from(rsa.jwk.n, 'base64url')[0], 0, 'n has no leading zero byte');
});

test('private keys, other curves, mislabelled lines and garbage are refused with a reason', async () => {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
  const refusals = [
    privateKey.export({ type: 'pkcs8', format: 'pem' }),
    JSON.stringify(privateKey.export({ format: 'jwk' })),
    generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).publicKey.export({ type: 'spki', format: 'pem' }),
    readFileSync(vectorPath('keys/openssh-rsa.pub'), 'utf8').replace('ssh-rsa', 'ssh-ed25519'),
    'ssh-ed25519 not!base64',
    '',
    'x'.repeat(9000),
  ];
  for (const text of refusals) {
    await assert.rejects(readPublicKey(text), KeyError, text.slice(0, 40));
  }
});

test('the key inside a real SSH signature is the signer key', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'siteid-sshsig-'));
  const key = path.join(dir, 'id');
  try {
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
  } catch (error) {
    throw new Error(`ssh-keygen is needed (apt-get install openssh-client; scripts/test installs it): ${error.message}`);
  }
  const armored = execFileSync('ssh-keygen', ['-Y', 'sign', '-f', key, '-n', 'siteid-login'], { input: 'siteid login http://127.0.0.1:1 abc' }).toString();
  const signer = await readPublicKey(readFileSync(`${key}.pub`, 'utf8'));
  assert.equal(await thumbprint(jwkFromSshSignature(armored)), signer.kid);
  assert.throws(() => jwkFromSshSignature('-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----'), KeyError);
});

test('a binding by the owner key is a siteid-credential+jwt that npm jose verifies, exp only when given', async () => {
  const { privateJwk, publicJwk } = await generateOwnerKey();
  const ownerKey = { signingKey: await importSigningKey(privateJwk), kid: await jwkThumbprint(publicJwk) };
  const fields = { id: 'AAAAAAAAAAAAAAAAAAAAAA', kid: 'the-credential-kid', kind: 'key', label: 'a script', capabilities: ['session'], networks: ['127.0.9.0/24'] };
  const binding = await bindCredential(ownerKey, { ...fields, expiresAt: null });
  const { payload, protectedHeader } = await jose.jwtVerify(binding, await jose.importJWK({ ...publicJwk, alg: 'ES384' }), { typ: 'siteid-credential+jwt', algorithms: ['ES384'] });
  assert.deepEqual(protectedHeader, { alg: 'ES384', typ: 'siteid-credential+jwt', kid: ownerKey.kid });
  assert.deepEqual(Object.keys(payload).sort(), ['cap', 'iat', 'jti', 'kind', 'label', 'net', 'sub']);
  assert.equal(payload.sub, fields.kid);
  assert.equal(payload.jti, fields.id);
  const expiring = await bindCredential(ownerKey, { ...fields, expiresAt: 2_000_000_000 });
  assert.equal(jose.decodeJwt(expiring).exp, 2_000_000_000);
});
