// The owner's encryption keys in the browser: a P-384 ECDH key pair, its A256KW copy under a KEK derived from the owner key, the owner key's siteid-enc-key+jwt binding, and opening and re-wrapping a copy.

import { decode, utf8 } from './b64url.mjs';
import { signJwt } from './jws.mjs';
import { jsonPart } from './strict-json.mjs';
import { CTY, ENC, PRF_ALG, WrappedKeyError, importSigningKey, jwkThumbprint, openJwk, parse, sealJwk, toPublicJwk } from './wrapped-key.mjs';

const subtle = globalThis.crypto.subtle;
const ECDH = { name: 'ECDH', namedCurve: 'P-384' };

/** HKDF-SHA-256 salt that turns the owner key's private scalar into the KEK of the encryption keys. */
export const ENC_KEK_SALT = 'siteid-enc-kek-v1';
/** HKDF-SHA-256 info of the same derivation. */
export const ENC_KEK_INFO = 'siteid encryption key A256KW';
/** The typ of the owner key's binding of an encryption key. */
export const BINDING_TYP = 'siteid-enc-key+jwt';

/** Decodes the 48-byte private scalar d of the owner's P-384 private JWK. */
function ownerScalar(ownerPrivateJwk) {
  toPublicJwk(ownerPrivateJwk);
  let d;
  try {
    d = decode(ownerPrivateJwk.d);
  } catch {
    throw new WrappedKeyError('bad-key', 'the owner key member d is not base64url');
  }
  if (d.length !== 48) throw new WrappedKeyError('bad-key', 'the owner key member d must be 48 bytes');
  return d;
}

/** The bare public JWK {crv, kty, x, y} of a P-384 JWK, in RFC 7638 member order. */
function encPublicJwk(jwk) {
  const { crv, kty, x, y } = toPublicJwk(jwk);
  return { crv, kty, x, y };
}

/**
 * The KEK of the encryption keys: HKDF-SHA-256 of the owner key's 48-byte private scalar d with ENC_KEK_SALT and
 * ENC_KEK_INFO, as a non-extractable AES-KW key. Derive it once at unlock to keep it after d is gone.
 */
export async function encryptionKek(ownerPrivateJwk) {
  const d = ownerScalar(ownerPrivateJwk);
  try {
    const base = await subtle.importKey('raw', d, 'HKDF', false, ['deriveKey']);
    const params = { name: 'HKDF', hash: 'SHA-256', salt: utf8(ENC_KEK_SALT), info: utf8(ENC_KEK_INFO) };
    return await subtle.deriveKey(params, base, { name: 'AES-KW', length: 256 }, false, ['wrapKey', 'unwrapKey']);
  } finally {
    d.fill(0);
  }
}

/** Whether a value is an AES-KW CryptoKey (a KEK from encryptionKek) rather than an owner private JWK. */
const isKek = (value) => typeof CryptoKey === 'function' && value instanceof CryptoKey && value.algorithm?.name === 'AES-KW';

/** Imports a P-384 ECDH private JWK non-extractably and proves by one ECDH round trip that d belongs to x and y. */
async function importEcdhPrivate(jwk) {
  const { kty, crv, x, y, d } = jwk;
  let ok = false;
  let privateKey;
  try {
    privateKey = await subtle.importKey('jwk', { kty, crv, x, y, d }, ECDH, false, ['deriveBits']);
    const publicKey = await subtle.importKey('jwk', { kty, crv, x, y }, ECDH, true, []);
    const probe = await subtle.generateKey(ECDH, false, ['deriveBits']);
    const mine = new Uint8Array(await subtle.deriveBits({ name: 'ECDH', public: probe.publicKey }, privateKey, 384));
    const theirs = new Uint8Array(await subtle.deriveBits({ name: 'ECDH', public: publicKey }, probe.privateKey, 384));
    ok = mine.length === 48 && mine.every((b, i) => b === theirs[i]);
  } catch {
    // Refused below.
  }
  if (!ok) throw new WrappedKeyError('bad-key', 'the encryption key is invalid or does not match its public coordinates');
  return privateKey;
}

/** Makes a new P-384 ECDH key pair; returns {privateJwk: {kty, crv, x, y, d}, publicJwk: {crv, kty, x, y}, kid}. */
export async function generateEncryptionKey() {
  const pair = await subtle.generateKey(ECDH, true, ['deriveBits']);
  const { x, y, d } = await subtle.exportKey('jwk', pair.privateKey);
  const privateJwk = { kty: 'EC', crv: 'P-384', x, y, d };
  const publicJwk = encPublicJwk(privateJwk);
  return { privateJwk, publicJwk, kid: await jwkThumbprint(publicJwk) };
}

/**
 * Wraps an encryption private JWK under the owner key (its private JWK, or a KEK from encryptionKek): a compact JWE
 * with the protected header exactly {"alg":"A256KW","enc":"A256GCM","cty":"jwk+json","kid":<enc kid>}.
 */
export async function wrapEncryptionKey(ownerPrivateJwkOrKek, encPrivateJwk) {
  await importEcdhPrivate(encPrivateJwk ?? {});
  let kek = ownerPrivateJwkOrKek;
  if (!isKek(kek)) {
    if (ownerPrivateJwkOrKek?.x === encPrivateJwk.x) throw new WrappedKeyError('bad-key', 'the encryption key must not be the owner signing key');
    await importSigningKey({ ...ownerPrivateJwkOrKek });
    kek = await encryptionKek(ownerPrivateJwkOrKek);
  }
  const kid = await jwkThumbprint(encPrivateJwk);
  return sealJwk(encPrivateJwk, kek, { alg: PRF_ALG, enc: ENC, cty: CTY, kid });
}

/** Opens a wrapped encryption key with the checks of openEncryptionKey; resolves with {jwk (with d), privateKey, kid}. */
async function openWrapped(ownerPrivateJwkOrKek, compact, expectedKid) {
  const parsed = parse(compact, true);
  try {
    jsonPart(compact.split('.')[0], 'protected header');
  } catch (e) {
    throw new WrappedKeyError('malformed', e.message);
  }
  const { kid } = parsed.header;
  if (expectedKid !== undefined && kid !== expectedKid) throw new WrappedKeyError('mismatch', `the wrapped encryption key is ${kid}, not ${expectedKid}`);
  const kek = isKek(ownerPrivateJwkOrKek) ? ownerPrivateJwkOrKek : await encryptionKek(ownerPrivateJwkOrKek);
  let cek;
  try {
    cek = await subtle.unwrapKey('raw', parsed.encryptedKey, kek, 'AES-KW', 'AES-GCM', false, ['decrypt']);
  } catch {
    throw new WrappedKeyError('wrong-key', 'the encryption key does not open with this owner key');
  }
  const jwk = await openJwk(parsed, cek);
  try {
    const privateKey = await importEcdhPrivate(jwk);
    if ((await jwkThumbprint(jwk)) !== kid) throw new WrappedKeyError('mismatch', 'the kid of the wrapped encryption key is not the thumbprint of the key inside');
    return { jwk, privateKey, kid };
  } catch (e) {
    delete jwk.d;
    throw e;
  }
}

/**
 * Opens a wrapped encryption key with the owner key (its private JWK, or a KEK from encryptionKek); checks the header
 * exactly, expectedKid when given, that d matches x and y, and that the kid is the key's thumbprint. Resolves with
 * {privateKey (non-extractable ECDH, usages ["deriveBits"]), publicJwk, kid}; no private JWK is left behind.
 */
export async function openEncryptionKey(ownerPrivateJwkOrKek, compact, expectedKid) {
  const { jwk, privateKey, kid } = await openWrapped(ownerPrivateJwkOrKek, compact, expectedKid);
  delete jwk.d;
  return { privateKey, publicJwk: encPublicJwk(jwk), kid };
}

/** The owner key {signingKey, kid}'s binding of the encryption key kid: {"sub":kid,"use":"enc","iat"} as a siteid-enc-key+jwt. */
export function encryptionKeyBinding(owner, kid, now = Math.floor(Date.now() / 1000)) {
  return signJwt(owner.signingKey, { alg: 'ES384', typ: BINDING_TYP, kid: owner.kid }, { sub: kid, use: 'enc', iat: now });
}

/**
 * Makes a new encryption key for the owner key {signingKey, kid} whose KEK is kek (from encryptionKek). Resolves with
 * {body: {public_key, wrapped_key, binding} as the node takes it, privateKey (non-extractable, deriveBits), publicJwk, kid}.
 */
export async function newEncryptionKey(kek, owner) {
  const { privateJwk, publicJwk, kid } = await generateEncryptionKey();
  try {
    const wrappedKey = await wrapEncryptionKey(kek, privateJwk);
    const privateKey = await importEcdhPrivate(privateJwk);
    const binding = await encryptionKeyBinding(owner, kid);
    return { body: { public_key: publicJwk, wrapped_key: wrappedKey, binding }, privateKey, publicJwk, kid };
  } finally {
    delete privateJwk.d;
  }
}

/**
 * Re-wraps a stored encryption key for a new owner key: opened with oldKek, wrapped under newKek and bound by newOwner
 * {signingKey, kid}. Resolves with {kid, wrapped_key, binding}, a member of a rotation's encryption_keys.
 */
export async function rewrapEncryptionKey(oldKek, newKek, newOwner, compact, kid) {
  const { jwk } = await openWrapped(oldKek, compact, kid);
  try {
    return { kid, wrapped_key: await wrapEncryptionKey(newKek, jwk), binding: await encryptionKeyBinding(newOwner, kid) };
  } finally {
    delete jwk.d;
  }
}
