// Pure tests of static/js (no server): base64url, the wrapped-key format, keys, thumbprints, JWS and fixtures.
// Set SITEID_WRITE_FIXTURES=1 (npm run fixtures) to regenerate tests/vectors/js-wrapped-key.json.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import * as jose from 'jose';
import * as b64 from '../../static/js/b64url.mjs';
import * as wk from '../../static/js/wrapped-key.mjs';
import { claimProof, loginAssertion, signJwt } from '../../static/js/jws.mjs';
import { FAST_P2C, partJson, readVector, referenceKek, referenceVerifier, vectorPath } from './helpers.mjs';

const vector = readVector('project_pbes2_hs512_a256kw_a256gcm_p384.json');
const VECTOR_KID = 'FcrXxROUaK6hRhdZ12JeFo0hU3aNBUdzJoHGBHyj8ck';

const isCode = (code) => (e) => {
  assert.ok(e instanceof wk.WrappedKeyError, `expected a WrappedKeyError, got ${e}`);
  assert.equal(e.code, code, e.message);
  return true;
};

const joseDecrypt = (jwe, password) =>
  jose.compactDecrypt(jwe, new TextEncoder().encode(password), {
    keyManagementAlgorithms: ['PBES2-HS512+A256KW'],
    contentEncryptionAlgorithms: ['A256GCM'],
    maxPBES2Count: 10_000_000,
  });

test('base64url is strict and canonical', () => {
  for (let n = 0; n < 70; n++) {
    const bytes = crypto.getRandomValues(new Uint8Array(n));
    const text = b64.encode(bytes);
    assert.equal(text, Buffer.from(bytes).toString('base64url'));
    assert.deepEqual(b64.decode(text), bytes);
  }
  assert.equal(b64.encode(new Uint8Array([251, 255]).buffer), '-_8');
  assert.deepEqual(b64.decode('AQ'), new Uint8Array([1]));
  for (const bad of ['AQ==', 'AQ=', 'AR', 'AAB', '+/8', 'A', 'AQ ', ' AQ', 'A\nQ', 'AQ\u00e9', 'AQ.', null, 1]) {
    assert.throws(() => b64.decode(bad), SyntaxError, JSON.stringify(bad));
  }
});

test('the project vector unwraps with its password to the private JWK', async () => {
  const jwk = await wk.unwrapPrivateKey(vector.compact, vector.password_utf8);
  assert.deepEqual(jwk, vector.plaintext_jwk);
  assert.deepEqual(Object.keys(jwk), ['kty', 'crv', 'x', 'y', 'd']);
  const { alg, p2s, p2c } = vector.protected_header;
  assert.deepEqual(wk.unlockParams(vector.compact), { alg, p2s, p2c });
});

test('the KEK is PBKDF2 as specified: the verifier is HMAC-SHA-256 under kek_hex', async () => {
  const fromVector = referenceVerifier(Buffer.from(vector.kek_hex, 'hex'));
  const { p2s, p2c } = vector.protected_header;
  assert.equal(referenceKek(vector.password_utf8, p2s, p2c).toString('hex'), vector.kek_hex);
  const unlock = await wk.deriveUnlock(vector.password_utf8, { alg: 'PBES2-HS512+A256KW', p2s, p2c, kid: VECTOR_KID });
  assert.equal(unlock.unlockVerifier, fromVector);
  assert.equal(b64.decode(unlock.unlockVerifier).length, 32);
  assert.equal(Object.isFrozen(unlock), true);
  assert.equal(JSON.stringify(unlock).includes(vector.kek_hex), false);
  // The same derived key unwraps without a second PBKDF2 run.
  assert.deepEqual(await wk.unwrapPrivateKey(vector.compact, unlock), vector.plaintext_jwk);
});

test('the password is used exactly as given: no trimming, no normalisation', async () => {
  const { p2s, p2c } = vector.protected_header;
  for (const pw of [`${vector.password_utf8} `, ` ${vector.password_utf8}`, vector.password_utf8.toUpperCase(), '']) {
    await assert.rejects(wk.unwrapPrivateKey(vector.compact, pw), isCode('wrong-password'), JSON.stringify(pw));
  }
  const trailing = await wk.deriveUnlock(`${vector.password_utf8}\n`, { p2s, p2c });
  assert.notEqual(trailing.unlockVerifier, referenceVerifier(Buffer.from(vector.kek_hex, 'hex')));
  // U+2603 has no decomposition, so check normalisation with a password that has one.
  const nfc = 'caf\u00e9 \u212b';
  const nfd = nfc.normalize('NFD');
  assert.notEqual(nfc, nfd);
  const { privateJwk } = await wk.generateOwnerKey();
  const { wrappedKey } = await wk.wrapPrivateKey(privateJwk, nfc, { p2c: FAST_P2C });
  await assert.rejects(wk.unwrapPrivateKey(wrappedKey, nfd), isCode('wrong-password'));
  await assert.rejects(wk.unwrapPrivateKey(wrappedKey, nfc.normalize('NFC')), isCode('wrong-password'), 'U+212B must not become U+00C5');
  assert.equal((await wk.unwrapPrivateKey(wrappedKey, nfc)).d, privateJwk.d);
});

test('wrap then unwrap round-trips, with the exact header and an independent verifier', async () => {
  const { privateJwk, publicJwk } = await wk.generateOwnerKey();
  assert.deepEqual(Object.keys(privateJwk), ['kty', 'crv', 'x', 'y', 'd']);
  assert.deepEqual(publicJwk, { kty: 'EC', crv: 'P-384', x: privateJwk.x, y: privateJwk.y });
  for (const m of ['x', 'y', 'd']) assert.equal(b64.decode(privateJwk[m]).length, 48);
  const password = 'pässwörd ☃ 🔑';
  const { wrappedKey, unlockVerifier } = await wk.wrapPrivateKey(privateJwk, password, { p2c: FAST_P2C });
  const parts = wrappedKey.split('.');
  assert.equal(parts.length, 5);
  const headerText = Buffer.from(parts[0], 'base64url').toString('utf8');
  const header = JSON.parse(headerText);
  const kid = await wk.jwkThumbprint(publicJwk);
  assert.equal(headerText, `{"alg":"PBES2-HS512+A256KW","enc":"A256GCM","cty":"jwk+json","p2s":"${header.p2s}","p2c":210000,"kid":"${kid}"}`);
  assert.equal(wk.unlockParams(wrappedKey).kid, kid);
  assert.equal(b64.decode(header.p2s).length, 16);
  assert.deepEqual([1, 2, 4].map((i) => b64.decode(parts[i]).length), [40, 12, 16]);
  assert.equal(unlockVerifier, referenceVerifier(referenceKek(password, header.p2s, FAST_P2C)));
  assert.deepEqual(await wk.unwrapPrivateKey(wrappedKey, password), privateJwk);
  const unlock = await wk.deriveUnlock(password, wk.unlockParams(wrappedKey));
  assert.equal(unlock.unlockVerifier, unlockVerifier);
  assert.deepEqual(await wk.unwrapPrivateKey(wrappedKey, unlock), privateJwk);
  const again = await wk.wrapPrivateKey(privateJwk, password, { p2c: FAST_P2C });
  assert.notEqual(again.wrappedKey.split('.')[0], parts[0], 'a fresh salt per wrap');
  assert.notEqual(again.unlockVerifier, unlockVerifier);
});

test('new keys default to p2c 600000 and open with npm jose', async () => {
  const { privateJwk } = await wk.generateOwnerKey();
  const { wrappedKey } = await wk.wrapPrivateKey(privateJwk, 'default count');
  assert.equal(wk.unlockParams(wrappedKey).p2c, 600_000);
  const { plaintext, protectedHeader } = await joseDecrypt(wrappedKey, 'default count');
  assert.equal(protectedHeader.p2c, 600_000);
  assert.deepEqual(JSON.parse(new TextDecoder().decode(plaintext)), privateJwk);
});

test('wrapPrivateKey refuses iteration counts and keys outside the format', async () => {
  const { privateJwk } = await wk.generateOwnerKey();
  for (const p2c of [209_999, 10_000_001, 600_000.5, '600000', 0, -1, Infinity, null]) {
    await assert.rejects(wk.wrapPrivateKey(privateJwk, 'pw', { p2c }), isCode('malformed'), String(p2c));
  }
  const { x, y } = privateJwk;
  for (const bad of [{ kty: 'EC', crv: 'P-384', x, y }, { ...privateJwk, crv: 'P-256' }, { ...privateJwk, kty: 'RSA' }, { ...privateJwk, d: privateJwk.d.slice(2) }, null]) {
    await assert.rejects(wk.wrapPrivateKey(bad, 'pw', { p2c: FAST_P2C }), isCode('bad-key'));
  }
});

test('every structural refusal happens before any key derivation', async (t) => {
  const subtle = globalThis.crypto.subtle;
  let derivations = 0;
  const deriveBits = subtle.deriveBits;
  subtle.deriveBits = function (...args) {
    derivations++;
    return deriveBits.apply(this, args);
  };
  t.after(() => {
    delete subtle.deriveBits;
  });

  const [, ek, iv, ct, tag] = vector.compact.split('.');
  const baseHeader = { alg: 'PBES2-HS512+A256KW', enc: 'A256GCM', cty: 'jwk+json', p2s: vector.protected_header.p2s, p2c: 10_000_000 };
  const h = (changes) => b64.encodeJson({ ...baseHeader, ...changes });
  const join = (...parts) => parts.join('.');
  const valid = join(h({}), ek, iv, ct, tag);
  // The valid base passes the structure checks (with the largest p2c, which would take seconds to derive).
  assert.deepEqual(wk.unlockParams(valid), { alg: baseHeader.alg, p2s: baseHeader.p2s, p2c: 10_000_000 });
  assert.equal(wk.unlockParams(join(h({ kid: VECTOR_KID }), ek, iv, ct, tag)).kid, VECTOR_KID);

  const bytes = (n) => b64.encode(new Uint8Array(n));
  const cases = {
    'alg HS256': join(h({ alg: 'PBES2-HS256+A128KW' }), ek, iv, ct, tag),
    'alg dir': join(h({ alg: 'dir' }), ek, iv, ct, tag),
    'alg missing': join(h({ alg: undefined }), ek, iv, ct, tag),
    'enc A128GCM': join(h({ enc: 'A128GCM' }), ek, iv, ct, tag),
    'enc CBC': join(h({ enc: 'A256CBC-HS512' }), ek, iv, ct, tag),
    'cty other case': join(h({ cty: 'JWK+JSON' }), ek, iv, ct, tag),
    'cty missing': join(h({ cty: undefined }), ek, iv, ct, tag),
    'zip member': join(h({ zip: 'DEF' }), ek, iv, ct, tag),
    'crit member': join(h({ crit: ['p2c'] }), ek, iv, ct, tag),
    'jku member': join(h({ jku: 'https://evil.example/' }), ek, iv, ct, tag),
    'kid not a string': join(h({ kid: 7 }), ek, iv, ct, tag),
    'p2s 15 bytes': join(h({ p2s: bytes(15) }), ek, iv, ct, tag),
    'p2s 65 bytes': join(h({ p2s: bytes(65) }), ek, iv, ct, tag),
    'p2s padded': join(h({ p2s: `${baseHeader.p2s}==` }), ek, iv, ct, tag),
    'p2s not a string': join(h({ p2s: 16 }), ek, iv, ct, tag),
    'p2s missing': join(h({ p2s: undefined }), ek, iv, ct, tag),
    'p2c too low': join(h({ p2c: 209_999 }), ek, iv, ct, tag),
    'p2c too high': join(h({ p2c: 10_000_001 }), ek, iv, ct, tag),
    'p2c huge': join(h({ p2c: 1e300 }), ek, iv, ct, tag),
    'p2c fraction': join(h({ p2c: 600_000.5 }), ek, iv, ct, tag),
    'p2c string': join(h({ p2c: '600000' }), ek, iv, ct, tag),
    'p2c negative': join(h({ p2c: -600_000 }), ek, iv, ct, tag),
    'p2c missing': join(h({ p2c: undefined }), ek, iv, ct, tag),
    'header not JSON': join(b64.encode(new TextEncoder().encode('{"alg":')), ek, iv, ct, tag),
    'header array': join(b64.encodeJson([baseHeader]), ek, iv, ct, tag),
    'header null': join(b64.encodeJson(null), ek, iv, ct, tag),
    'header not UTF-8': join(b64.encode(new Uint8Array([0x7b, 0xff, 0x7d])), ek, iv, ct, tag),
    'header padded': join(`${h({})}=`, ek, iv, ct, tag),
    'encrypted key 32 bytes': join(h({}), bytes(32), iv, ct, tag),
    'encrypted key 48 bytes': join(h({}), bytes(48), iv, ct, tag),
    'encrypted key empty': join(h({}), '', iv, ct, tag),
    'iv 16 bytes': join(h({}), ek, bytes(16), ct, tag),
    'iv 11 bytes': join(h({}), ek, bytes(11), ct, tag),
    'tag 15 bytes': join(h({}), ek, iv, ct, bytes(15)),
    'tag 12 bytes': join(h({}), ek, iv, ct, bytes(12)),
    'ciphertext empty': join(h({}), ek, iv, '', tag),
    'ciphertext 1025 bytes': join(h({}), ek, iv, bytes(1025), tag),
    'tag padded': join(h({}), ek, iv, ct, `${tag}==`),
    'tag non-canonical bits': join(h({}), ek, iv, ct, tag.slice(0, -1) + { A: 'B', Q: 'R', g: 'h', w: 'x' }[tag.at(-1)]),
    'ciphertext standard alphabet': join(h({}), ek, iv, `${ct.slice(0, -4)}+/+/`, tag),
    'iv with whitespace': join(h({}), ek, `${iv.slice(0, 8)} ${iv.slice(8)}`, ct, tag),
    'encrypted key with newline': join(h({}), `${ek}\n`, iv, ct, tag),
    'four parts': join(h({}), ek, iv, ct),
    'six parts': join(h({}), ek, iv, ct, tag, tag),
    'JWS shape': join(h({}), ct, tag),
    'empty string': '',
    'oversize': join(h({ kid: 'k'.repeat(4096) }), ek, iv, ct, tag),
    'oversize by one': `${valid}${'.'.repeat(4097 - valid.length)}`,
  };
  assert.ok(valid.length <= 4096);
  for (const [name, compact] of Object.entries(cases)) {
    assert.throws(() => wk.unlockParams(compact), isCode('malformed'), name);
    await assert.rejects(wk.unwrapPrivateKey(compact, vector.password_utf8), isCode('malformed'), name);
  }
  for (const notString of [undefined, null, 42, { compact: valid }, [valid]]) {
    assert.throws(() => wk.unlockParams(notString), isCode('malformed'));
    await assert.rejects(wk.unwrapPrivateKey(notString, vector.password_utf8), isCode('malformed'));
  }
  // deriveUnlock checks the parameters from the server the same way.
  for (const params of [{ p2s: baseHeader.p2s, p2c: 10_000_001 }, { p2s: bytes(8), p2c: FAST_P2C }, { alg: 'PBES2-HS256+A128KW', p2s: baseHeader.p2s, p2c: FAST_P2C }, { p2c: FAST_P2C }, {}, null]) {
    await assert.rejects(wk.deriveUnlock('pw', params), isCode('malformed'), JSON.stringify(params));
  }
  assert.equal(derivations, 0, 'no PBKDF2 run may start for a malformed wrapped key');
  await wk.deriveUnlock('pw', { p2s: baseHeader.p2s, p2c: FAST_P2C });
  assert.equal(derivations, 1, 'the spy sees a real derivation');
});

test('a wrong password is reported as such; damaged data as corrupt', async () => {
  await assert.rejects(wk.unwrapPrivateKey(vector.compact, 'correct horse battery staple'), (e) => {
    isCode('wrong-password')(e);
    assert.match(e.message, /wrong password/);
    return true;
  });
  const parts = vector.compact.split('.');
  const ct = b64.decode(parts[3]);
  ct[0] ^= 1;
  const flipped = [parts[0], parts[1], parts[2], b64.encode(ct), parts[4]].join('.');
  await assert.rejects(wk.unwrapPrivateKey(flipped, vector.password_utf8), isCode('corrupt'));
  // A changed protected header changes the AAD.
  const withKid = [b64.encodeJson({ ...vector.protected_header, kid: VECTOR_KID }), ...parts.slice(1)].join('.');
  await assert.rejects(wk.unwrapPrivateKey(withKid, vector.password_utf8), isCode('corrupt'));
});

test('an unlock key derived for other parameters is refused before use', async () => {
  const other = await wk.deriveUnlock(vector.password_utf8, { p2s: b64.encode(new Uint8Array(16)), p2c: FAST_P2C });
  await assert.rejects(wk.unwrapPrivateKey(vector.compact, other), isCode('mismatch'));
});

test('the signing key is non-extractable, matches its public key and consumes d', async () => {
  const jwk = { ...vector.plaintext_jwk };
  const key = await wk.importSigningKey(jwk);
  assert.equal(key.extractable, false);
  assert.equal(key.type, 'private');
  assert.deepEqual(key.algorithm, { name: 'ECDSA', namedCurve: 'P-384' });
  assert.deepEqual(key.usages, ['sign']);
  await assert.rejects(crypto.subtle.exportKey('jwk', key));
  await assert.rejects(crypto.subtle.exportKey('pkcs8', key));
  assert.equal('d' in jwk, false, 'd is dropped from the caller-facing object');
  const verifyKey = await wk.importVerifyKey(vector.public_jwk);
  const data = new TextEncoder().encode('hello');
  const sig = await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-384' }, key, data);
  assert.equal(sig.byteLength, 96);
  assert.equal(await crypto.subtle.verify({ name: 'ECDSA', hash: 'SHA-384' }, verifyKey, sig, data), true);

  const { privateJwk: other } = await wk.generateOwnerKey();
  await assert.rejects(wk.importSigningKey({ ...vector.plaintext_jwk, d: other.d }), isCode('bad-key'));
  await assert.rejects(wk.importSigningKey(vector.public_jwk), isCode('bad-key'));

  const unlocked = await wk.unlockSigningKey(vector.compact, vector.password_utf8);
  assert.deepEqual(Object.keys(unlocked).sort(), ['kid', 'publicJwk', 'signingKey']);
  assert.equal(unlocked.signingKey.extractable, false);
  assert.deepEqual(unlocked.publicJwk, vector.public_jwk);
  assert.equal(unlocked.kid, VECTOR_KID);
});

test('the thumbprint follows RFC 7638 and agrees with node:crypto and npm jose', async () => {
  const { crv, kty, x, y } = vector.public_jwk;
  const canonical = `{"crv":"${crv}","kty":"${kty}","x":"${x}","y":"${y}"}`;
  const reference = createHash('sha256').update(canonical).digest('base64url');
  assert.equal(reference, VECTOR_KID);
  assert.equal(await wk.jwkThumbprint(vector.public_jwk), VECTOR_KID);
  assert.equal(await wk.jwkThumbprint({ y, x, d: vector.plaintext_jwk.d, crv, kty, kid: 'ignored' }), VECTOR_KID);
  assert.equal(await jose.calculateJwkThumbprint(vector.public_jwk, 'sha256'), VECTOR_KID);
  const { publicJwk } = await wk.generateOwnerKey();
  assert.equal(await wk.jwkThumbprint(publicJwk), await jose.calculateJwkThumbprint(publicJwk, 'sha256'));
  await assert.rejects(wk.jwkThumbprint({ ...publicJwk, crv: 'P-256' }), isCode('bad-key'));
});

test('npm jose decrypts what this module wraps, and this module unwraps what jose encrypts', async () => {
  const { privateJwk } = await wk.generateOwnerKey();
  const password = 'jose ☃ interop';
  const { wrappedKey } = await wk.wrapPrivateKey(privateJwk, password, { p2c: FAST_P2C });
  const { plaintext, protectedHeader } = await joseDecrypt(wrappedKey, password);
  assert.deepEqual(protectedHeader, partJson(wrappedKey, 0));
  assert.equal(new TextDecoder().decode(plaintext), JSON.stringify(privateJwk));

  const p2s = crypto.getRandomValues(new Uint8Array(16));
  const fromJose = await new jose.CompactEncrypt(new TextEncoder().encode(JSON.stringify(privateJwk)))
    .setProtectedHeader({ alg: 'PBES2-HS512+A256KW', enc: 'A256GCM', cty: 'jwk+json' })
    .setKeyManagementParameters({ p2s, p2c: FAST_P2C })
    .encrypt(new TextEncoder().encode(password));
  assert.equal(wk.unlockParams(fromJose).p2s, b64.encode(p2s));
  assert.deepEqual(await wk.unwrapPrivateKey(fromJose, password), privateJwk);
});

test('claim proofs and login assertions are ES384 JWTs that npm jose verifies', async () => {
  const { privateJwk, publicJwk } = await wk.generateOwnerKey();
  const signingKey = await wk.importSigningKey(privateJwk);
  const joseKey = await jose.importJWK({ ...publicJwk, alg: 'ES384' }, 'ES384');
  const audience = 'http://127.0.0.1:8080';
  const now = Math.floor(Date.now() / 1000);

  const proof = await claimProof(signingKey, { audience, claimToken: 'claim-token-1' });
  const [h, c, s] = proof.split('.');
  assert.equal(Buffer.from(h, 'base64url').toString(), '{"alg":"ES384","typ":"siteid-claim+jwt"}');
  assert.equal(b64.decode(s).length, 96);
  const claims = JSON.parse(Buffer.from(c, 'base64url').toString());
  assert.deepEqual(Object.keys(claims), ['aud', 'nonce', 'iat', 'exp']);
  assert.equal(claims.aud, audience);
  assert.equal(claims.nonce, 'claim-token-1');
  assert.ok(Math.abs(claims.iat - now) <= 2);
  assert.equal(claims.exp - claims.iat, 300);
  const verified = await jose.jwtVerify(proof, joseKey, { algorithms: ['ES384'], audience, typ: 'siteid-claim+jwt' });
  assert.deepEqual(verified.payload, claims);
  await assert.rejects(jose.jwtVerify(proof, joseKey, { algorithms: ['ES384'], audience: `${audience}/` }));
  const { publicJwk: otherPublic } = await wk.generateOwnerKey();
  await assert.rejects(jose.compactVerify(proof, await jose.importJWK(otherPublic, 'ES384')));

  const kid = await wk.jwkThumbprint(publicJwk);
  const assertion = await loginAssertion(signingKey, { audience, nonce: 'challenge', kid, now: 1_700_000_000 });
  assert.deepEqual(partJson(assertion, 0), { alg: 'ES384', typ: 'siteid-login+jwt', kid });
  assert.deepEqual(partJson(assertion, 1), { aud: audience, nonce: 'challenge', iat: 1_700_000_000, exp: 1_700_000_300 });
  const { protectedHeader } = await jose.compactVerify(assertion, joseKey, { algorithms: ['ES384'] });
  assert.equal(protectedHeader.kid, kid);

  await assert.rejects(signJwt(signingKey, { alg: 'none' }, {}), TypeError);
  await assert.rejects(claimProof(signingKey, { audience, claimToken: undefined }), TypeError);
});

// Fixtures shared with the Rust implementation (same field names both ways).

const JS_FIXTURE = 'js-wrapped-key.json';
const RUST_FIXTURE = 'rust-wrapped-key.json';

async function writeJsFixture() {
  // NFC "ü", "ß" and a decomposed "é" (e + U+0301): any normalisation, trimming or re-encoding changes the bytes.
  const password = 'Grüße, cafe\u0301 ☃ 🔑';
  const { privateJwk, publicJwk } = await wk.generateOwnerKey();
  const { wrappedKey, unlockVerifier } = await wk.wrapPrivateKey(privateJwk, password, { p2c: FAST_P2C });
  const fixture = {
    description:
      'Owner wrapped key produced by static/js/wrapped-key.mjs (WebCrypto). The password is used as its exact UTF-8 bytes: it mixes NFC characters with a decomposed e + U+0301, so no normalisation may be applied. kid is the RFC 7638 thumbprint of public_jwk; d is the private scalar inside wrapped_key. Regenerate with `npm run fixtures`.',
    password,
    p2c: FAST_P2C,
    wrapped_key: wrappedKey,
    unlock_verifier: unlockVerifier,
    kid: await wk.jwkThumbprint(publicJwk),
    public_jwk: publicJwk,
    d: privateJwk.d,
  };
  // Non-ASCII as \u escapes, so no editor or tool can normalise the password in the file.
  const ascii = JSON.stringify(fixture, null, 2).replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  writeFileSync(vectorPath(JS_FIXTURE), `${ascii}\n`);
}

/** Checks a shared fixture: structure, unwrap, verifier (two ways), kid and key consistency. */
async function checkFixture(fixture) {
  for (const field of ['description', 'password', 'p2c', 'wrapped_key', 'unlock_verifier', 'kid', 'public_jwk', 'd']) {
    assert.ok(field in fixture, `the fixture has no ${field}`);
  }
  const params = wk.unlockParams(fixture.wrapped_key);
  assert.equal(params.p2c, fixture.p2c);
  const reference = referenceVerifier(referenceKek(fixture.password, params.p2s, params.p2c));
  assert.equal(fixture.unlock_verifier, reference, 'unlock_verifier is HMAC-SHA-256(KEK, "siteid unlock verifier v1")');
  const unlock = await wk.deriveUnlock(fixture.password, params);
  assert.equal(unlock.unlockVerifier, fixture.unlock_verifier);
  const jwk = await wk.unwrapPrivateKey(fixture.wrapped_key, unlock);
  assert.deepEqual(jwk, { ...fixture.public_jwk, d: fixture.d });
  assert.equal(await wk.jwkThumbprint(fixture.public_jwk), fixture.kid);
  await wk.importSigningKey(jwk);
  for (const form of ['NFC', 'NFD']) {
    const other = fixture.password.normalize(form);
    if (other !== fixture.password) await assert.rejects(wk.unwrapPrivateKey(fixture.wrapped_key, other), isCode('wrong-password'), form);
  }
}

test('the committed JS fixture still unwraps and its verifier matches', async () => {
  if (process.env.SITEID_WRITE_FIXTURES === '1' || !existsSync(vectorPath(JS_FIXTURE))) {
    assert.equal(process.env.SITEID_WRITE_FIXTURES, '1', `tests/vectors/${JS_FIXTURE} is missing: run \`npm run fixtures\` and commit it`);
    await writeJsFixture();
  }
  await checkFixture(readVector(JS_FIXTURE));
});

test('the Rust fixture unwraps here and its verifier and kid match', async () => {
  const fixture = readVector(
    RUST_FIXTURE,
    'The Rust implementation must generate it (same fields as js-wrapped-key.json: description, password, p2c, wrapped_key, unlock_verifier, kid, public_jwk, d).',
  );
  await checkFixture(fixture);
});
