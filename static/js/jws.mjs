// ES384 compact JWS signing with WebCrypto: the owner's claim proof, login assertion, rewrap proof and record signature.

import { decode, encode, encodeJson, utf8 } from './b64url.mjs';

/** The longest lifetime (exp - iat) of a proof or assertion, in seconds. */
export const PROOF_LIFETIME = 300;

/** Signs header and claims as an ES384 compact JWS; WebCrypto already returns the 96-byte r || s signature. */
export async function signJwt(signingKey, header, claims) {
  if (header?.alg !== 'ES384') throw new TypeError('the header alg must be ES384');
  const input = `${encodeJson(header)}.${encodeJson(claims)}`;
  const signature = await globalThis.crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-384' }, signingKey, utf8(input));
  return `${input}.${encode(signature)}`;
}

function claims(audience, nonce, now) {
  if (typeof audience !== 'string' || typeof nonce !== 'string' || !Number.isInteger(now)) {
    throw new TypeError('audience and nonce must be strings and now an integer');
  }
  return { aud: audience, nonce, iat: now, exp: now + PROOF_LIFETIME };
}

/** The proof for POST /api/v1/owner: a siteid-claim+jwt over the node's URL and the claim token. */
export async function claimProof(signingKey, { audience, claimToken, now = Math.floor(Date.now() / 1000) }) {
  return signJwt(signingKey, { alg: 'ES384', typ: 'siteid-claim+jwt' }, claims(audience, claimToken, now));
}

/** A login assertion: a siteid-login+jwt over the node's URL and the server's challenge, naming the key by kid. */
export async function loginAssertion(signingKey, { audience, nonce, kid, now = Math.floor(Date.now() / 1000) }) {
  if (typeof kid !== 'string') throw new TypeError('kid must be a string');
  return signJwt(signingKey, { alg: 'ES384', typ: 'siteid-login+jwt', kid }, claims(audience, nonce, now));
}

/** The base64url SHA-256 of a string's UTF-8 bytes, as a rewrap proof names the members it covers. */
export async function memberDigest(text) {
  return encode(await globalThis.crypto.subtle.digest('SHA-256', utf8(text)));
}

/**
 * The proof for PUT /api/v1/owner/wrapped-key: a siteid-rewrap+jwt over the node's URL and a fresh challenge,
 * binding the new wrapped key and unlock verifier exactly as sent.
 */
export async function rewrapProof(signingKey, { audience, nonce, kid, wrappedKey, unlockVerifier, now = Math.floor(Date.now() / 1000) }) {
  if (typeof kid !== 'string' || typeof wrappedKey !== 'string' || typeof unlockVerifier !== 'string') {
    throw new TypeError('kid, wrappedKey and unlockVerifier must be strings');
  }
  const body = {
    ...claims(audience, nonce, now),
    wrapped_key_sha256: await memberDigest(wrappedKey),
    unlock_verifier_sha256: await memberDigest(unlockVerifier),
  };
  return signJwt(signingKey, { alg: 'ES384', typ: 'siteid-rewrap+jwt', kid }, body);
}

/** The owner record signature: the owner key {signingKey, kid} signs off its wrapped key and its unlock verifier's hash. */
export async function recordSignature(owner, { audience, wrappedKey, unlockVerifier, now = Math.floor(Date.now() / 1000) }) {
  const verifierHash = encode(await globalThis.crypto.subtle.digest('SHA-256', decode(unlockVerifier)));
  const claims = { aud: audience, sub: owner.kid, wrapped_key_sha256: await memberDigest(wrappedKey), verifier_hash: verifierHash, iat: now };
  return signJwt(owner.signingKey, { alg: 'ES384', typ: 'siteid-owner-record+jwt', kid: owner.kid }, claims);
}
