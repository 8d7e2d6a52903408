// Pure tests of static/js/inbox-crypto.mjs: the encryption key and its wrapped copy, ECDH-ES messages and signed plaintexts, against npm jose both ways.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hkdfSync } from 'node:crypto';
import * as jose from 'jose';
import * as inbox from '../../static/js/inbox-crypto.mjs';
import { decode, encode, encodeJson, utf8 } from '../../static/js/b64url.mjs';
import { signJwt } from '../../static/js/jws.mjs';
import { WrappedKeyError, generateOwnerKey, jwkThumbprint, sealJwk, signingKeyFromJwk } from '../../static/js/wrapped-key.mjs';
import { partJson } from './helpers.mjs';

const SENDER = 'https://sender.example';
const RECIPIENT = 'https://recipient.example';
const NOW = 1_800_000_000;
const text = (bytes) => new TextDecoder().decode(bytes);

const isWrapped = (code) => (e) => {
  assert.ok(e instanceof WrappedKeyError, `expected a WrappedKeyError, got ${e}`);
  assert.equal(e.code, code, e.message);
  return true;
};

const isInbox = (code, pattern) => (e) => {
  assert.ok(e instanceof inbox.InboxError, `expected an InboxError, got ${e}`);
  assert.equal(e.code, code, e.message);
  if (pattern) assert.match(e.message, pattern);
  return true;
};

/** The owner's signing key, one encryption key wrapped under it and opened again, as a reading device holds it. */
async function setUp() {
  const owner = await generateOwnerKey();
  const enc = await inbox.generateEncryptionKey();
  const wrapped = await inbox.wrapEncryptionKey(owner.privateJwk, enc.privateJwk);
  const opened = await inbox.openEncryptionKey(owner.privateJwk, wrapped, enc.kid);
  return { owner, enc, wrapped, opened };
}
const keys = await setUp();

/** The KEK of the encryption keys computed independently with node:crypto. */
const referenceEncKek = (ownerPrivateJwk) =>
  new Uint8Array(hkdfSync('sha256', Buffer.from(ownerPrivateJwk.d, 'base64url'), 'siteid-enc-kek-v1', 'siteid encryption key A256KW', 32));

/** A compact JWE whose protected header is replaced, for refusals that must happen before any decryption. */
const withHeader = (compact, header) => [encodeJson(header), ...compact.split('.').slice(1)].join('.');

/** A sender site: its signing key, kid and JWKS. */
async function senderSite() {
  const { privateJwk, publicJwk } = await generateOwnerKey();
  const { signingKey, kid } = await signingKeyFromJwk(privateJwk);
  return { signingKey, kid, publicJwk, jwks: { keys: [{ ...publicJwk, kid, alg: 'ES384', use: 'sig' }] } };
}
const sender = await senderSite();
const body = { subject: 'Hello', text: 'A message from one site to another.', content_type: 'text/plain' };
const signed = await inbox.signMessage(sender.signingKey, { kid: sender.kid, iss: SENDER, aud: RECIPIENT, body, now: NOW, jti: 'm-1' });
const verifyOptions = { jwks: sender.jwks, expectedIss: SENDER, expectedAud: RECIPIENT, now: NOW };

test('a new encryption key is a P-384 ECDH pair named by its RFC 7638 thumbprint', async () => {
  const { privateJwk, publicJwk, kid } = await inbox.generateEncryptionKey();
  assert.deepEqual(Object.keys(publicJwk), ['crv', 'kty', 'x', 'y']);
  assert.deepEqual(Object.keys(privateJwk).sort(), ['crv', 'd', 'kty', 'x', 'y']);
  assert.equal(publicJwk.crv, 'P-384');
  assert.equal(decode(privateJwk.d).length, 48);
  assert.equal(kid, await jose.calculateJwkThumbprint(publicJwk, 'sha256'));
  await crypto.subtle.importKey('jwk', privateJwk, { name: 'ECDH', namedCurve: 'P-384' }, false, ['deriveBits']);
});

test('the wrapped encryption key has the exact header and opens with npm jose under an HKDF KEK computed with node:crypto', async () => {
  const { owner, enc, wrapped } = keys;
  assert.equal(JSON.stringify(partJson(wrapped, 0)), JSON.stringify({ alg: 'A256KW', enc: 'A256GCM', cty: 'jwk+json', kid: enc.kid }));
  assert.equal(inbox.ENC_KEK_SALT, 'siteid-enc-kek-v1');
  assert.equal(inbox.ENC_KEK_INFO, 'siteid encryption key A256KW');
  const { plaintext, protectedHeader } = await jose.compactDecrypt(wrapped, referenceEncKek(owner.privateJwk), {
    keyManagementAlgorithms: ['A256KW'],
    contentEncryptionAlgorithms: ['A256GCM'],
  });
  assert.equal(protectedHeader.kid, enc.kid);
  const jwk = JSON.parse(text(plaintext));
  assert.deepEqual(Object.keys(jwk).sort(), ['crv', 'd', 'kty', 'x', 'y']);
  assert.deepEqual(jwk, enc.privateJwk);
});

test('npm jose wraps an encryption key under the same KEK and openEncryptionKey opens it', async () => {
  const { owner, enc } = keys;
  const fromJose = await new jose.CompactEncrypt(utf8(JSON.stringify(enc.privateJwk)))
    .setProtectedHeader({ alg: 'A256KW', enc: 'A256GCM', cty: 'jwk+json', kid: enc.kid })
    .encrypt(referenceEncKek(owner.privateJwk));
  const opened = await inbox.openEncryptionKey(owner.privateJwk, fromJose, enc.kid);
  assert.equal(opened.kid, enc.kid);
  assert.deepEqual(opened.publicJwk, enc.publicJwk);
});

test('an opened encryption key is non-extractable, derives bits only and matches the published public key', async () => {
  const { enc, opened, wrapped, owner } = keys;
  assert.equal(opened.privateKey.extractable, false);
  assert.deepEqual(opened.privateKey.usages, ['deriveBits']);
  assert.equal(opened.privateKey.algorithm.name, 'ECDH');
  assert.deepEqual(opened.publicJwk, enc.publicJwk);
  assert.deepEqual(Object.keys(opened.publicJwk), ['crv', 'kty', 'x', 'y']);
  assert.equal(JSON.stringify(opened).includes(enc.privateJwk.d), false);
  await assert.rejects(crypto.subtle.exportKey('jwk', opened.privateKey));
  const withoutKid = await inbox.openEncryptionKey(owner.privateJwk, wrapped);
  assert.equal(withoutKid.kid, enc.kid);
});

test('a KEK derived once from the owner key wraps and opens like the owner key itself', async () => {
  const { owner, enc } = keys;
  const kek = await inbox.encryptionKek(owner.privateJwk);
  assert.equal(kek.extractable, false);
  const wrapped = await inbox.wrapEncryptionKey(kek, enc.privateJwk);
  assert.equal((await inbox.openEncryptionKey(owner.privateJwk, wrapped, enc.kid)).kid, enc.kid);
  assert.equal((await inbox.openEncryptionKey(kek, keys.wrapped, enc.kid)).kid, enc.kid);
});

test('openEncryptionKey refuses a wrong owner key, a wrong kid and an extra header member', async () => {
  const { owner, enc, wrapped } = keys;
  const stranger = await generateOwnerKey();
  await assert.rejects(inbox.openEncryptionKey(stranger.privateJwk, wrapped, enc.kid), isWrapped('wrong-key'));
  const other = await inbox.generateEncryptionKey();
  await assert.rejects(inbox.openEncryptionKey(owner.privateJwk, wrapped, other.kid), isWrapped('mismatch'));
  const kek = await inbox.encryptionKek(owner.privateJwk);
  const misnamed = await sealJwk(enc.privateJwk, kek, { alg: 'A256KW', enc: 'A256GCM', cty: 'jwk+json', kid: other.kid });
  await assert.rejects(inbox.openEncryptionKey(owner.privateJwk, misnamed), isWrapped('mismatch'));
  const extra = await sealJwk(enc.privateJwk, kek, { alg: 'A256KW', enc: 'A256GCM', cty: 'jwk+json', kid: enc.kid, typ: 'JWE' });
  await assert.rejects(inbox.openEncryptionKey(owner.privateJwk, extra, enc.kid), isWrapped('malformed'));
  const twice = `${encode(utf8(`{"alg":"A256KW","enc":"A256GCM","cty":"jwk+json","kid":"${enc.kid}","kid":"${enc.kid}"}`))}.${wrapped.split('.').slice(1).join('.')}`;
  await assert.rejects(inbox.openEncryptionKey(owner.privateJwk, twice, enc.kid), (e) => isWrapped('malformed')(e) && /twice/.test(e.message));
  const pbes2 = withHeader(wrapped, { alg: 'PBES2-HS512+A256KW', enc: 'A256GCM', cty: 'jwk+json', kid: enc.kid });
  await assert.rejects(inbox.openEncryptionKey(owner.privateJwk, pbes2, enc.kid), isWrapped('malformed'));
  const parts = wrapped.split('.');
  parts[3] = encode(decode(parts[3]).map((b, i) => (i === 0 ? b ^ 1 : b)));
  await assert.rejects(inbox.openEncryptionKey(owner.privateJwk, parts.join('.'), enc.kid), isWrapped('corrupt'));
});

test('an encryption key whose d does not match its coordinates, or that is the owner key, is not wrapped or opened', async () => {
  const { owner, enc } = keys;
  const other = await inbox.generateEncryptionKey();
  const mixed = { ...enc.privateJwk, d: other.privateJwk.d };
  await assert.rejects(inbox.wrapEncryptionKey(owner.privateJwk, mixed), isWrapped('bad-key'));
  await assert.rejects(inbox.wrapEncryptionKey(owner.privateJwk, owner.privateJwk), isWrapped('bad-key'));
  const stranger = await generateOwnerKey();
  await assert.rejects(inbox.wrapEncryptionKey({ ...owner.privateJwk, d: stranger.privateJwk.d }, enc.privateJwk), isWrapped('bad-key'));
  const kek = await inbox.encryptionKek(owner.privateJwk);
  const sealedMixed = await sealJwk(mixed, kek, { alg: 'A256KW', enc: 'A256GCM', cty: 'jwk+json', kid: enc.kid });
  await assert.rejects(inbox.openEncryptionKey(owner.privateJwk, sealedMixed, enc.kid), isWrapped('bad-key'));
});

for (const alg of ['ECDH-ES+A256KW', 'ECDH-ES']) {
  test(`a message npm jose encrypts with CompactEncrypt and ${alg} decrypts with the opened key`, async () => {
    const { enc, opened } = keys;
    const plaintext = utf8(`compact ${alg} ✓`);
    const jwe = await new jose.CompactEncrypt(plaintext)
      .setProtectedHeader({ alg, enc: 'A256GCM', kid: enc.kid })
      .encrypt(await jose.importJWK(enc.publicJwk, alg));
    assert.deepEqual(await inbox.decryptMessage(opened.privateKey, jwe), plaintext);
    const header = inbox.messageHeader(jwe);
    assert.equal(header.kid, enc.kid);
    assert.equal(header.alg, alg);
  });

  test(`a message npm jose encrypts with GeneralEncrypt and ${alg} decrypts as an object and as JSON text`, async () => {
    const { enc, opened } = keys;
    const plaintext = utf8(`general ${alg}`);
    const jwe = await new jose.GeneralEncrypt(plaintext)
      .setProtectedHeader({ enc: 'A256GCM' })
      .addRecipient(await jose.importJWK(enc.publicJwk, alg))
      .setUnprotectedHeader({ alg, kid: enc.kid })
      .encrypt();
    assert.equal(jwe.recipients.length, 1);
    assert.deepEqual(await inbox.decryptMessage(opened.privateKey, jwe), plaintext);
    assert.deepEqual(await inbox.decryptMessage(opened.privateKey, JSON.stringify(jwe)), plaintext);
    assert.deepEqual(await inbox.decryptMessage(opened.privateKey, JSON.stringify(jwe, null, 2)), plaintext);
  });

  test(`a message encryptMessage makes with ${alg} decrypts with npm jose, its header in the documented order`, async () => {
    const { enc, opened } = keys;
    const plaintext = utf8(`from the browser ${alg}`);
    const jwe = await inbox.encryptMessage(enc.publicJwk, plaintext, { kid: enc.kid, alg, cty: 'JWT' });
    const header = partJson(jwe, 0);
    assert.deepEqual(Object.keys(header), ['alg', 'enc', 'kid', 'epk', 'cty']);
    assert.deepEqual(Object.keys(header.epk).sort(), ['crv', 'kty', 'x', 'y']);
    assert.equal(jwe.split('.')[1] === '', alg === 'ECDH-ES');
    const result = await jose.compactDecrypt(jwe, await jose.importJWK({ ...enc.privateJwk }, alg), {
      keyManagementAlgorithms: [alg],
      contentEncryptionAlgorithms: ['A256GCM'],
    });
    assert.deepEqual(result.plaintext, plaintext);
    assert.deepEqual(result.protectedHeader, header);
    assert.deepEqual(await inbox.decryptMessage(opened.privateKey, jwe), plaintext);
  });
}

test('encryptMessage names the key by its thumbprint by default and refuses a signing key', async () => {
  const { enc, owner } = keys;
  const jwe = await inbox.encryptMessage({ ...enc.publicJwk, kid: enc.kid, use: 'enc', alg: 'ECDH-ES+A256KW' }, utf8('hi'));
  assert.equal(partJson(jwe, 0).kid, enc.kid);
  assert.equal(partJson(jwe, 0).alg, 'ECDH-ES+A256KW');
  await assert.rejects(inbox.encryptMessage({ ...owner.publicJwk, use: 'sig' }, utf8('hi')), isInbox('bad-key'));
  await assert.rejects(inbox.encryptMessage({ ...enc.publicJwk, x: owner.publicJwk.x }, utf8('hi')), isInbox('bad-key'));
  await assert.rejects(inbox.encryptMessage(enc.publicJwk, utf8('hi'), { alg: 'RSA-OAEP' }), isInbox('unsupported'));
  await assert.rejects(inbox.encryptMessage(enc.publicJwk, new Uint8Array(200 * 1024)), isInbox('too-large'));
});

test('decryptMessage refuses zip and crit before decrypting', async () => {
  const { enc, opened } = keys;
  const jwe = await inbox.encryptMessage(enc.publicJwk, utf8('hi'));
  const header = partJson(jwe, 0);
  await assert.rejects(inbox.decryptMessage(opened.privateKey, withHeader(jwe, { ...header, zip: 'DEF' })), isInbox('unsupported', /zip/));
  await assert.rejects(inbox.decryptMessage(opened.privateKey, withHeader(jwe, { ...header, crit: ['exp'], exp: 1 })), isInbox('unsupported', /crit/));
  const general = await new jose.GeneralEncrypt(utf8('hi'))
    .setProtectedHeader({ enc: 'A256GCM' })
    .addRecipient(await jose.importJWK(enc.publicJwk, 'ECDH-ES+A256KW'))
    .setUnprotectedHeader({ alg: 'ECDH-ES+A256KW', kid: enc.kid })
    .encrypt();
  await assert.rejects(inbox.decryptMessage(opened.privateKey, { ...general, unprotected: { zip: 'DEF' } }), isInbox('unsupported', /zip/));
});

test('decryptMessage refuses a header member repeated across protected, unprotected and recipient headers, or inside one', async () => {
  const { enc, opened } = keys;
  const general = await new jose.GeneralEncrypt(utf8('hi'))
    .setProtectedHeader({ enc: 'A256GCM' })
    .addRecipient(await jose.importJWK(enc.publicJwk, 'ECDH-ES+A256KW'))
    .setUnprotectedHeader({ alg: 'ECDH-ES+A256KW', kid: enc.kid })
    .encrypt();
  const again = /more than one header/;
  await assert.rejects(inbox.decryptMessage(opened.privateKey, { ...general, unprotected: { kid: enc.kid } }), isInbox('malformed', again));
  await assert.rejects(inbox.decryptMessage(opened.privateKey, { ...general, protected: encodeJson({ enc: 'A256GCM', kid: enc.kid }) }), isInbox('malformed', again));
  await assert.rejects(inbox.decryptMessage(opened.privateKey, { ...general, unprotected: { enc: 'A256GCM' } }), isInbox('malformed', again));
  const twiceInProtected = { ...general, protected: encode(utf8('{"enc":"A256GCM","enc":"A256GCM"}')) };
  await assert.rejects(inbox.decryptMessage(opened.privateKey, twiceInProtected), isInbox('malformed', /twice/));
  const json = JSON.stringify(general);
  const twiceInText = json.replace('"ciphertext":', `"ciphertext":"${general.ciphertext}","ciphertext":`);
  await assert.rejects(inbox.decryptMessage(opened.privateKey, twiceInText), isInbox('malformed', /twice/));
  const compact = await inbox.encryptMessage(enc.publicJwk, utf8('hi'));
  const headerText = JSON.stringify(partJson(compact, 0)).replace('"enc":"A256GCM"', '"enc":"A256GCM","enc":"A256GCM"');
  const twiceInCompact = [encode(utf8(headerText)), ...compact.split('.').slice(1)].join('.');
  await assert.rejects(inbox.decryptMessage(opened.privateKey, twiceInCompact), isInbox('malformed', /twice/));
});

test('decryptMessage refuses a wrong enc, two recipients, flattened JSON, unknown members and a bad epk', async () => {
  const { enc, opened } = keys;
  const recipientKey = await jose.importJWK(enc.publicJwk, 'ECDH-ES+A256KW');
  for (const wrongEnc of ['A128GCM', 'A256CBC-HS512']) {
    const jwe = await new jose.CompactEncrypt(utf8('hi')).setProtectedHeader({ alg: 'ECDH-ES+A256KW', enc: wrongEnc, kid: enc.kid }).encrypt(recipientKey);
    await assert.rejects(inbox.decryptMessage(opened.privateKey, jwe), isInbox('unsupported', /enc/));
  }
  const two = await new jose.GeneralEncrypt(utf8('hi'))
    .setProtectedHeader({ enc: 'A256GCM' })
    .addRecipient(recipientKey)
    .setUnprotectedHeader({ alg: 'ECDH-ES+A256KW', kid: enc.kid })
    .addRecipient(recipientKey)
    .setUnprotectedHeader({ alg: 'ECDH-ES+A256KW', kid: enc.kid })
    .encrypt();
  assert.equal(two.recipients.length, 2);
  await assert.rejects(inbox.decryptMessage(opened.privateKey, two), isInbox('malformed', /exactly one recipient/));
  const flattened = await new jose.FlattenedEncrypt(utf8('hi')).setProtectedHeader({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM', kid: enc.kid }).encrypt(recipientKey);
  await assert.rejects(inbox.decryptMessage(opened.privateKey, flattened), isInbox('malformed', /flattened/));
  const compact = await inbox.encryptMessage(enc.publicJwk, utf8('hi'));
  const header = partJson(compact, 0);
  const refused = [
    [{ ...header, typ: '' }, /typ/],
    [{ ...header, apu: 'A'.repeat(90) }, /apu/],
    [{ ...header, jku: 'https://evil.example/jwks' }, /jku/],
    [{ ...header, alg: 'ECDH-ES+A128KW' }, /alg/],
    [{ ...header, kid: 7 }, /kid/],
    [{ ...header, epk: { ...header.epk, d: header.epk.x } }, /epk member d/],
    [{ ...header, epk: { ...header.epk, crv: 'P-256' } }, /P-384/],
    [{ ...header, epk: { ...header.epk, y: header.epk.x } }, /not a point/],
  ];
  for (const [bad, reason] of refused) {
    await assert.rejects(inbox.decryptMessage(opened.privateKey, withHeader(compact, bad)), (e) => e instanceof inbox.InboxError && reason.test(e.message), JSON.stringify(bad));
  }
  await assert.rejects(inbox.decryptMessage(opened.privateKey, `${compact}.x`), isInbox('malformed', /five parts/));
  await assert.rejects(inbox.decryptMessage(opened.privateKey, { ...two, recipients: [two.recipients[0]], aad: '' }), isInbox('malformed', /aad/));
  const noKey = compact.split('.');
  noKey[1] = '';
  await assert.rejects(inbox.decryptMessage(opened.privateKey, noKey.join('.')), isInbox('malformed', /encrypted key/));
  await assert.rejects(inbox.decryptMessage(opened.privateKey, 'x'.repeat(inbox.MAX_MESSAGE_LEN + 1)), isInbox('too-large'));
  await assert.rejects(inbox.decryptMessage(await crypto.subtle.generateKey({ name: 'AES-GCM', length: 256 }, false, ['decrypt']), compact), TypeError);
});

test('a message for another key, or altered in transit, does not open', async () => {
  const { enc, opened } = keys;
  const other = await inbox.generateEncryptionKey();
  const jwe = await inbox.encryptMessage(other.publicJwk, utf8('not for you'), { kid: enc.kid });
  await assert.rejects(inbox.decryptMessage(opened.privateKey, jwe), isInbox('undecryptable'));
  const mine = await inbox.encryptMessage(enc.publicJwk, utf8('for you'));
  const parts = mine.split('.');
  parts[3] = encode(decode(parts[3]).map((b, i) => (i === 0 ? b ^ 1 : b)));
  await assert.rejects(inbox.decryptMessage(opened.privateKey, parts.join('.')), isInbox('undecryptable'));
  const header = partJson(mine, 0);
  await assert.rejects(inbox.decryptMessage(opened.privateKey, withHeader(mine, { ...header, cty: 'text/plain' })), isInbox('undecryptable'));
});

test('a signed message is an ES384 JWT that npm jose verifies, with the exact header and claims', async () => {
  assert.equal(JSON.stringify(partJson(signed, 0)), JSON.stringify({ alg: 'ES384', typ: 'siteid-message+jwt', kid: sender.kid }));
  assert.deepEqual(Object.keys(partJson(signed, 1)), ['iss', 'aud', 'iat', 'jti', 'body']);
  const { payload, protectedHeader } = await jose.jwtVerify(signed, await jose.importJWK(sender.publicJwk, 'ES384'), {
    algorithms: ['ES384'],
    typ: 'siteid-message+jwt',
    issuer: SENDER,
    audience: RECIPIENT,
    currentDate: new Date(NOW * 1000),
  });
  assert.equal(protectedHeader.kid, sender.kid);
  assert.deepEqual(payload, { iss: SENDER, aud: RECIPIENT, iat: NOW, jti: 'm-1', body });
  const normalised = await inbox.signMessage(sender.signingKey, { kid: sender.kid, iss: 'https://Sender.Example:443/', aud: `${RECIPIENT}/`, body: { text: 'x' }, now: NOW });
  const claims = partJson(normalised, 1);
  assert.equal(claims.iss, SENDER);
  assert.equal(claims.aud, RECIPIENT);
  assert.equal(decode(claims.jti).length, 16);
  await assert.rejects(inbox.signMessage(sender.signingKey, { kid: sender.kid, iss: `${SENDER}/blog`, aud: RECIPIENT, body: { text: 'x' } }), TypeError);
  await assert.rejects(inbox.signMessage(sender.signingKey, { kid: sender.kid, iss: SENDER, aud: RECIPIENT, body: { text: 'x', html: '<b>' } }), TypeError);
});

test('verifyMessage reports a good message as verified, comparing iss and aud as origins', async () => {
  assert.deepEqual(await inbox.verifyMessage(signed, verifyOptions), { verified: true, iss: SENDER, body, iat: NOW, jti: 'm-1', kid: sender.kid });
  const loose = { ...verifyOptions, expectedIss: 'https://SENDER.example/', expectedAud: 'https://recipient.example:443' };
  assert.equal((await inbox.verifyMessage(signed, loose)).verified, true);
  assert.equal((await inbox.verifyMessage(signed, { ...verifyOptions, now: NOW - inbox.MAX_IAT_AHEAD })).verified, true);
  const es256 = await jose.generateKeyPair('ES256');
  const es256Jwk = { ...(await jose.exportJWK(es256.publicKey)), kid: 'k256' };
  const fromJose = await new jose.SignJWT({ iss: SENDER, aud: RECIPIENT, iat: NOW, jti: 'j', body: { text: 'from jose' } })
    .setProtectedHeader({ alg: 'ES256', typ: 'siteid-message+jwt', kid: 'k256' })
    .sign(es256.privateKey);
  const result = await inbox.verifyMessage(fromJose, { ...verifyOptions, jwks: { keys: [es256Jwk] } });
  assert.deepEqual(result, { verified: true, iss: SENDER, body: { text: 'from jose' }, iat: NOW, jti: 'j', kid: 'k256' });
});

test('verifyMessage reports unverified, with a reason and the readable claims, for a wrong key, aud, iss or typ and a tampered body', async () => {
  const impostor = await senderSite();
  const forged = await inbox.signMessage(impostor.signingKey, { kid: sender.kid, iss: SENDER, aud: RECIPIENT, body, now: NOW, jti: 'f' });
  const toOther = await inbox.signMessage(sender.signingKey, { kid: sender.kid, iss: SENDER, aud: 'https://other.example', body, now: NOW, jti: 'a' });
  const wrongTyp = await signJwt(sender.signingKey, { alg: 'ES384', typ: 'JWT', kid: sender.kid }, partJson(signed, 1));
  const [h, , s] = signed.split('.');
  const tampered = `${h}.${encodeJson({ ...partJson(signed, 1), body: { text: 'Send money.' } })}.${s}`;
  const cases = [
    ['a wrong key', forged, verifyOptions, /signature/],
    ['a wrong aud', toOther, verifyOptions, /addressed to https:\/\/other\.example/],
    ['a wrong iss', signed, { ...verifyOptions, expectedIss: 'https://impostor.example' }, /from https:\/\/sender\.example.*impostor/],
    ['an iss with a path', signed, { ...verifyOptions, expectedIss: `${SENDER}/blog` }, /no site/],
    ['a wrong typ', wrongTyp, verifyOptions, /typ/],
    ['a tampered body', tampered, verifyOptions, /signature/],
  ];
  for (const [name, jws, options, reason] of cases) {
    const result = await inbox.verifyMessage(jws, options);
    assert.equal(result.verified, false, name);
    assert.match(result.reason, reason, name);
    assert.equal(typeof result.claims?.body?.text, 'string', name);
  }
  assert.equal((await inbox.verifyMessage(tampered, verifyOptions)).claims.body.text, 'Send money.');
});

test('verifyMessage refuses extra claims or header members, a future iat, an encryption key and an unusable key set', async () => {
  const sign = (header, claims) => signJwt(sender.signingKey, { alg: 'ES384', typ: 'siteid-message+jwt', kid: sender.kid, ...header }, { ...partJson(signed, 1), ...claims });
  const cases = [
    ['an extra claim', await sign({}, { exp: NOW + 60 }), verifyOptions, /claim exp/],
    ['an extra header member', await sign({ jku: 'https://x.example' }, {}), verifyOptions, /jku/],
    ['an extra body member', await sign({}, { body: { text: 'x', html: '<b>' } }), verifyOptions, /body member html/],
    ['a body without text', await sign({}, { body: { subject: 'x' } }), verifyOptions, /text/],
    ['a future iat', await sign({}, { iat: NOW + inbox.MAX_IAT_AHEAD + 1 }), verifyOptions, /future/],
    ['a missing jti', await sign({}, { jti: undefined }), verifyOptions, /jti/],
    ['a key published for encryption', signed, { ...verifyOptions, jwks: { keys: [{ ...sender.jwks.keys[0], use: 'enc' }] } }, /no ES384 signing key/],
    ['an unknown kid', signed, { ...verifyOptions, jwks: { keys: [{ ...sender.jwks.keys[0], kid: 'other' }] } }, /no ES384 signing key/],
    ['two keys under one kid', signed, { ...verifyOptions, jwks: { keys: [sender.jwks.keys[0], sender.jwks.keys[0]] } }, /more than one/],
    ['no key set', signed, { ...verifyOptions, jwks: null }, /not a JWKS/],
    ['not a JWS', 'hello', verifyOptions, /not a compact JWS/],
  ];
  for (const [name, jws, options, reason] of cases) {
    const result = await inbox.verifyMessage(jws, options);
    assert.equal(result.verified, false, name);
    assert.match(result.reason, reason, name);
  }
});

test('parsePlaintext tells signed messages, JSON bodies and plain text apart', () => {
  assert.deepEqual(inbox.parsePlaintext(utf8(signed)), { kind: 'signed', jws: signed });
  assert.deepEqual(inbox.parsePlaintext(utf8('Hello there.\n')), { kind: 'plain', text: 'Hello there.\n', body: { text: 'Hello there.\n' } });
  assert.deepEqual(inbox.parsePlaintext(utf8('{"subject":"Hi","text":"Body"}')), { kind: 'plain', text: 'Body', body: { subject: 'Hi', text: 'Body' } });
  for (const verbatim of ['{"text":"a","html":"<b>"}', '{"subject":"no text"}', '{"text":1}', '{"text":"a","text":"b"}', '{not json', 'a.b.c', `${signed} `]) {
    assert.deepEqual(inbox.parsePlaintext(utf8(verbatim)), { kind: 'plain', text: verbatim, body: { text: verbatim } }, verbatim);
  }
  const otherJwt = `${encodeJson({ alg: 'ES384', typ: 'JWT' })}.${encodeJson({})}.${encode(new Uint8Array(96))}`;
  assert.equal(inbox.parsePlaintext(utf8(otherJwt)).kind, 'plain');
  assert.throws(() => inbox.parsePlaintext(new Uint8Array([0xff, 0xfe])), isInbox('malformed', /UTF-8/));
});

test('a signed message travels encrypted from a sender site and is read and verified by the recipient', async () => {
  const { enc, opened } = keys;
  const jwe = await inbox.encryptMessage(enc.publicJwk, utf8(signed), { kid: enc.kid, cty: 'JWT' });
  const read = inbox.parsePlaintext(await inbox.decryptMessage(opened.privateKey, jwe));
  assert.equal(read.kind, 'signed');
  const { claims } = inbox.unverifiedClaims(read.jws);
  const result = await inbox.verifyMessage(read.jws, { ...verifyOptions, expectedIss: claims.iss });
  assert.equal(result.verified, true);
  assert.deepEqual(result.body, body);
});

test('siteOrigin accepts bare http(s) origins only, normalised', () => {
  const accepted = [
    ['https://example.org', 'https://example.org'],
    ['https://Example.ORG/', 'https://example.org'],
    ['https://example.org:443/./', 'https://example.org'],
    ['http://127.0.0.1:8080', 'http://127.0.0.1:8080'],
    ['https://bücher.example', 'https://xn--bcher-kva.example'],
  ];
  for (const [input, origin] of accepted) assert.equal(inbox.siteOrigin(input), origin, input);
  for (const refused of ['https://example.org/blog', 'https://example.org/?', 'https://example.org/#x', 'https://u:p@example.org', 'ftp://example.org', ' https://example.org', 'example.org', '', null]) {
    assert.equal(inbox.siteOrigin(refused), null, String(refused));
  }
});

test('messages with apu and apv, a typ, or general JSON with aad, as npm jose makes them, decrypt as the node accepts them', async () => {
  const { enc, opened } = keys;
  const recipientKey = await jose.importJWK(enc.publicJwk, 'ECDH-ES+A256KW');
  for (const alg of ['ECDH-ES+A256KW', 'ECDH-ES']) {
    const withParties = await new jose.CompactEncrypt(utf8('with parties'))
      .setProtectedHeader({ alg, enc: 'A256GCM', kid: enc.kid, typ: 'JWE' })
      .setKeyManagementParameters({ apu: utf8('Alice'), apv: utf8('Bob') })
      .encrypt(recipientKey);
    assert.equal(text(await inbox.decryptMessage(opened.privateKey, withParties)), 'with parties');
    const withAad = await new jose.GeneralEncrypt(utf8('with aad'))
      .setProtectedHeader({ enc: 'A256GCM' })
      .setAdditionalAuthenticatedData(utf8('context'))
      .addRecipient(recipientKey)
      .setUnprotectedHeader({ alg, kid: enc.kid })
      .encrypt();
    assert.equal(text(await inbox.decryptMessage(opened.privateKey, withAad)), 'with aad');
    const altered = { ...withAad, aad: encode(utf8('other')) };
    await assert.rejects(inbox.decryptMessage(opened.privateKey, altered), isInbox('undecryptable'));
  }
});
