// The inbox in the browser, in one module: the owner's encryption keys (inbox-keys.mjs), reading messages
// (inbox-message.mjs), and sending them: ECDH-ES JWEs (RFC 7516, RFC 7518 §4.6) of plaintexts signed by a sender site.

import { encode, encodeJson, utf8 } from './b64url.mjs';
import { signJwt } from './jws.mjs';
import { ECDH_ES, ECDH_ES_A256KW, MAX_MESSAGE_LEN, MESSAGE_TYP, agreedKey, bodyProblem, fail, siteOrigin } from './inbox-message.mjs';
import { ENC, jwkThumbprint, toPublicJwk } from './wrapped-key.mjs';

export { ENC_KEK_INFO, ENC_KEK_SALT, encryptionKek, generateEncryptionKey, openEncryptionKey, wrapEncryptionKey } from './inbox-keys.mjs';
export {
  ECDH_ES,
  ECDH_ES_A256KW,
  InboxError,
  MAX_IAT_AHEAD,
  MAX_MESSAGE_LEN,
  MESSAGE_TYP,
  decryptMessage,
  messageHeader,
  parsePlaintext,
  siteOrigin,
  unverifiedClaims,
  verifyMessage,
} from './inbox-message.mjs';

const subtle = globalThis.crypto.subtle;
const ECDH = { name: 'ECDH', namedCurve: 'P-384' };

/**
 * Encrypts plaintext bytes to a P-384 public JWK as a compact JWE (enc A256GCM, a fresh ephemeral key), with the
 * protected header {alg, enc, kid, epk, cty?}; kid defaults to the key's thumbprint. A JWK whose use is not enc is refused.
 */
export async function encryptMessage(recipientPublicJwk, plaintextBytes, { kid, alg = ECDH_ES_A256KW, cty } = {}) {
  if (alg !== ECDH_ES_A256KW && alg !== ECDH_ES) fail('unsupported', `the alg must be ${ECDH_ES_A256KW} or ${ECDH_ES}`);
  if (!(plaintextBytes instanceof Uint8Array) || plaintextBytes.length === 0) throw new TypeError('the plaintext must be a non-empty Uint8Array');
  if (plaintextBytes.length > MAX_MESSAGE_LEN) fail('too-large', `the message is over ${MAX_MESSAGE_LEN} bytes`);
  if (cty !== undefined && (typeof cty !== 'string' || cty === '')) throw new TypeError('the cty must be a non-empty string');
  if (recipientPublicJwk?.use !== undefined && recipientPublicJwk.use !== 'enc') fail('bad-key', 'the recipient key is not an encryption key (its use is not enc)');
  let recipient;
  try {
    recipient = await subtle.importKey('jwk', toPublicJwk(recipientPublicJwk), ECDH, true, []);
  } catch {
    fail('bad-key', 'the recipient key is not a P-384 public key');
  }
  const keyId = kid ?? (await jwkThumbprint(recipientPublicJwk));
  if (typeof keyId !== 'string' || keyId === '') throw new TypeError('the kid must be a non-empty string');
  const ephemeral = await subtle.generateKey(ECDH, false, ['deriveBits']);
  const { kty, crv, x, y } = await subtle.exportKey('jwk', ephemeral.publicKey);
  const header = { alg, enc: ENC, kid: keyId, epk: { kty, crv, x, y } };
  if (cty !== undefined) header.cty = cty;
  const protectedB64 = encodeJson(header);
  const derived = await agreedKey(ephemeral.privateKey, recipient, alg);
  let cek;
  let encryptedKey = '';
  try {
    if (alg === ECDH_ES) {
      cek = await subtle.importKey('raw', derived, 'AES-GCM', false, ['encrypt']);
    } else {
      const kek = await subtle.importKey('raw', derived, 'AES-KW', false, ['wrapKey']);
      cek = await subtle.generateKey({ name: 'AES-GCM', length: 256 }, true, ['encrypt']);
      encryptedKey = encode(await subtle.wrapKey('raw', cek, kek, 'AES-KW'));
    }
  } finally {
    derived.fill(0);
  }
  const iv = globalThis.crypto.getRandomValues(new Uint8Array(12));
  const sealed = new Uint8Array(await subtle.encrypt({ name: 'AES-GCM', iv, additionalData: utf8(protectedB64), tagLength: 128 }, cek, plaintextBytes));
  const n = sealed.length - 16;
  const compact = [protectedB64, encryptedKey, encode(iv), encode(sealed.subarray(0, n)), encode(sealed.subarray(n))].join('.');
  if (compact.length > MAX_MESSAGE_LEN) fail('too-large', `the message is over ${MAX_MESSAGE_LEN} characters once encrypted`);
  return compact;
}

/** Signs a message as its sender site: an ES384 compact JWS {"alg":"ES384","typ":"siteid-message+jwt","kid"} over {iss, aud, iat, jti, body}. */
export async function signMessage(signingKey, { kid, iss, aud, body, now = Math.floor(Date.now() / 1000), jti = encode(globalThis.crypto.getRandomValues(new Uint8Array(16))) }) {
  if (typeof kid !== 'string' || kid === '') throw new TypeError('the kid must be a non-empty string');
  const issuer = siteOrigin(iss);
  const audience = siteOrigin(aud);
  if (issuer === null || audience === null) throw new TypeError('iss and aud must be site URLs such as https://example.org');
  if (!Number.isInteger(now) || now < 0) throw new TypeError('now must be a non-negative integer of seconds');
  if (typeof jti !== 'string' || jti === '') throw new TypeError('the jti must be a non-empty string');
  const problem = bodyProblem(body);
  if (problem) throw new TypeError(problem);
  const { subject, text, content_type: contentType } = body;
  const claimsBody = { ...(subject === undefined ? {} : { subject }), text, ...(contentType === undefined ? {} : { content_type: contentType }) };
  return signJwt(signingKey, { alg: 'ES384', typ: MESSAGE_TYP, kid }, { iss: issuer, aud: audience, iat: now, jti, body: claimsBody });
}
