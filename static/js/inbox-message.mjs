// Reading the inbox's messages in the browser: ECDH-ES JWEs (RFC 7516, RFC 7518 §4.6) checked strictly and decrypted with
// the owner's encryption key, and their plaintexts: signed messages from sites, verified against the sender's JWKS.

import { decode, fromUtf8, utf8 } from './b64url.mjs';
import { isObject, jsonObject, jsonPart } from './strict-json.mjs';
import { ENC } from './wrapped-key.mjs';

const subtle = globalThis.crypto.subtle;
const ECDH = { name: 'ECDH', namedCurve: 'P-384' };

/** The key-management algorithm of a message: ECDH-ES with the CEK wrapped by A256KW. */
export const ECDH_ES_A256KW = 'ECDH-ES+A256KW';
/** The direct key-agreement algorithm of a message: the Concat KDF output is the CEK. */
export const ECDH_ES = 'ECDH-ES';
/** The longest message accepted, in characters of its serialization (the node refuses larger ones with 413). */
export const MAX_MESSAGE_LEN = 256 * 1024;
/** The typ of a signed plaintext. */
export const MESSAGE_TYP = 'siteid-message+jwt';
/** How far ahead of the reader's clock a signed message's iat may be, in seconds. */
export const MAX_IAT_AHEAD = 300;

const MESSAGE_HEADER_MEMBERS = ['alg', 'enc', 'kid', 'epk', 'apu', 'apv', 'typ', 'cty'];
const GENERAL_MEMBERS = ['protected', 'unprotected', 'recipients', 'iv', 'ciphertext', 'tag', 'aad'];
/** The most bytes apu and apv may decode to, as the node accepts them. */
const MAX_PARTY_INFO_LEN = 64;
const RECIPIENT_MEMBERS = ['header', 'encrypted_key'];
const EPK_MEMBERS = ['kty', 'crv', 'x', 'y'];
const BODY_MEMBERS = ['subject', 'text', 'content_type'];
const CLAIM_MEMBERS = ['iss', 'aud', 'iat', 'jti', 'body'];
const SIGNED_HEADER_MEMBERS = ['alg', 'typ', 'kid'];
const SIGNATURE_ALGS = {
  ES384: { crv: 'P-384', hash: 'SHA-384', size: 48 },
  ES256: { crv: 'P-256', hash: 'SHA-256', size: 32 },
};
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/** Why a message was refused; code is malformed, unsupported, too-large, bad-key or undecryptable. */
export class InboxError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'InboxError';
    this.code = code;
  }
}

/** Throws an InboxError with a code and a sentence (shared with sending). */
export const fail = (code, message) => {
  throw new InboxError(code, message);
};

/** Decodes one base64url member of a message and checks its length (max null: no upper bound). */
function messageBytes(name, text, min, max = min) {
  if (typeof text !== 'string') fail('malformed', `the ${name} must be a base64url string`);
  let b;
  try {
    b = decode(text);
  } catch {
    fail('malformed', `the ${name} is not base64url without padding`);
  }
  if (b.length < min || (max !== null && b.length > max)) fail('malformed', `the ${name} must be ${min === max ? min : `at least ${min}`} bytes`);
  return b;
}

/** The Concat KDF of RFC 7518 §4.6.2 (SHA-256) over the shared secret z for algorithmId, PartyUInfo apu and PartyVInfo apv. */
async function concatKdf(z, algorithmId, apu = new Uint8Array(0), apv = new Uint8Array(0), bits = 256) {
  const id = utf8(algorithmId);
  const rounds = Math.ceil(bits / 256);
  const out = new Uint8Array(rounds * 32);
  const input = new Uint8Array(4 + z.length + 4 + id.length + 4 + apu.length + 4 + apv.length + 4);
  const view = new DataView(input.buffer);
  let at = 4;
  input.set(z, at);
  at += z.length;
  for (const field of [id, apu, apv]) {
    view.setUint32(at, field.length);
    input.set(field, at + 4);
    at += 4 + field.length;
  }
  view.setUint32(at, bits);
  try {
    for (let round = 1; round <= rounds; round++) {
      view.setUint32(0, round);
      out.set(new Uint8Array(await subtle.digest('SHA-256', input)), (round - 1) * 32);
    }
  } finally {
    input.fill(0);
  }
  return out.subarray(0, bits / 8);
}

/** The Concat KDF key of an ECDH-ES agreement: the KEK (ECDH-ES+A256KW) or the CEK (ECDH-ES), as raw bytes (shared with sending). */
export async function agreedKey(privateKey, publicKey, alg, apu = undefined, apv = undefined) {
  const z = new Uint8Array(await subtle.deriveBits({ name: 'ECDH', public: publicKey }, privateKey, 384));
  try {
    return await concatKdf(z, alg === ECDH_ES ? ENC : alg, apu, apv);
  } finally {
    z.fill(0);
  }
}

/** Reads a compact string, general-JSON text or general-JSON object into its parts, checking only the serialization. */
function messageParts(jwe) {
  if (typeof jwe === 'string') {
    if (jwe.length > MAX_MESSAGE_LEN) fail('too-large', `the message is over ${MAX_MESSAGE_LEN} characters`);
    if (/^[A-Za-z0-9_.-]*$/.test(jwe)) {
      const parts = jwe.split('.');
      if (parts.length !== 5) fail('malformed', 'the message is not a compact JWE of five parts');
      let header;
      try {
        header = jsonPart(parts[0], 'protected header');
      } catch (e) {
        fail('malformed', e.message);
      }
      return { headers: [header], aad: parts[0], encryptedKey: parts[1] === '' ? undefined : parts[1], iv: parts[2], ciphertext: parts[3], tag: parts[4] };
    }
    try {
      return generalParts(jsonObject(jwe, 'message'));
    } catch (e) {
      if (e instanceof InboxError) throw e;
      fail('malformed', `${e.message} (neither a compact JWE nor general JSON)`);
    }
  }
  if (!isObject(jwe)) fail('malformed', 'the message must be a compact JWE string or a general JSON JWE');
  if (JSON.stringify(jwe).length > MAX_MESSAGE_LEN) fail('too-large', `the message is over ${MAX_MESSAGE_LEN} characters`);
  return generalParts(jwe);
}

/** Checks a general-JSON JWE object with exactly one recipient; returns its headers and parts. */
function generalParts(json) {
  if (!Object.hasOwn(json, 'recipients')) fail('malformed', Object.hasOwn(json, 'encrypted_key') || Object.hasOwn(json, 'header') ? 'the flattened JSON serialization is not accepted' : 'the message has no recipients');
  for (const k of Object.keys(json)) if (!GENERAL_MEMBERS.includes(k)) fail('malformed', `the message member ${k} is not accepted`);
  if (!Array.isArray(json.recipients) || json.recipients.length !== 1) fail('malformed', 'the message must have exactly one recipient');
  const [recipient] = json.recipients;
  if (!isObject(recipient)) fail('malformed', 'the recipient is not a JSON object');
  for (const k of Object.keys(recipient)) if (!RECIPIENT_MEMBERS.includes(k)) fail('malformed', `the recipient member ${k} is not accepted`);
  const headers = [];
  if (Object.hasOwn(json, 'protected')) {
    if (typeof json.protected !== 'string' || json.protected === '') fail('malformed', 'the protected member must be a non-empty base64url string');
    try {
      headers.push(jsonPart(json.protected, 'protected header'));
    } catch (e) {
      fail('malformed', e.message);
    }
  }
  for (const [owner, name] of [[json, 'unprotected'], [recipient, 'header']]) {
    if (!Object.hasOwn(owner, name)) continue;
    if (!isObject(owner[name])) fail('malformed', `the ${name} header is not a JSON object`);
    headers.push(owner[name]);
  }
  for (const k of ['iv', 'ciphertext', 'tag']) if (typeof json[k] !== 'string') fail('malformed', `the message member ${k} must be a string`);
  if (Object.hasOwn(recipient, 'encrypted_key') && typeof recipient.encrypted_key !== 'string') fail('malformed', 'the encrypted_key must be a string');
  // RFC 7516 §5.1: the additional data is the protected header, and ".aad" when there is an aad.
  let aad = json.protected ?? '';
  if (Object.hasOwn(json, 'aad')) {
    messageBytes('aad', json.aad, 1, null);
    aad += `.${json.aad}`;
  }
  return { headers, aad, encryptedKey: recipient.encrypted_key, iv: json.iv, ciphertext: json.ciphertext, tag: json.tag };
}

/** Merges disjoint headers and checks every member of a message's JOSE header. */
function checkHeader(headers) {
  const header = {};
  for (const h of headers) {
    for (const [k, v] of Object.entries(h)) {
      if (Object.hasOwn(header, k)) fail('malformed', `the header member ${k} appears in more than one header`);
      header[k] = v;
    }
  }
  if (Object.hasOwn(header, 'zip')) fail('unsupported', 'compressed messages (zip) are not accepted');
  if (Object.hasOwn(header, 'crit')) fail('unsupported', 'critical header extensions (crit) are not understood');
  for (const k of Object.keys(header)) if (!MESSAGE_HEADER_MEMBERS.includes(k)) fail('malformed', `the header member ${k} is not accepted`);
  if (header.alg !== ECDH_ES_A256KW && header.alg !== ECDH_ES) fail('unsupported', `the alg must be ${ECDH_ES_A256KW} or ${ECDH_ES}`);
  if (header.enc !== ENC) fail('unsupported', `the enc must be ${ENC}`);
  if (typeof header.kid !== 'string' || header.kid === '') fail('malformed', 'the kid must be a non-empty string');
  for (const name of ['typ', 'cty']) {
    if (Object.hasOwn(header, name) && (typeof header[name] !== 'string' || header[name] === '' || header[name].length > 64)) fail('malformed', `the ${name} must be a string of 1 to 64 characters`);
  }
  for (const name of ['apu', 'apv']) if (Object.hasOwn(header, name)) messageBytes(name, header[name], 0, MAX_PARTY_INFO_LEN);
  const { epk } = header;
  if (!isObject(epk)) fail('malformed', 'the epk must be a JWK object');
  for (const k of Object.keys(epk)) if (!EPK_MEMBERS.includes(k)) fail('malformed', `the epk member ${k} is not accepted`);
  if (epk.kty !== 'EC' || epk.crv !== 'P-384') fail('malformed', 'the epk must be an EC P-384 key');
  messageBytes('epk x', epk.x, 48);
  messageBytes('epk y', epk.y, 48);
  return header;
}

/** The merged, checked JOSE header {alg, enc, kid, epk, cty?} of a message, without decrypting (to pick the key by kid). */
export function messageHeader(jwe) {
  return checkHeader(messageParts(jwe).headers);
}

/**
 * Decrypts a message (compact JWE, or general JSON with one recipient, as an object or its text) with the owner's
 * ECDH P-384 private CryptoKey; returns the plaintext bytes. Refuses zip, crit, unknown and repeated members.
 */
export async function decryptMessage(privateKey, jwe) {
  const ok = typeof CryptoKey === 'function' && privateKey instanceof CryptoKey && privateKey.type === 'private' && privateKey.algorithm?.name === 'ECDH';
  if (!ok || privateKey.algorithm.namedCurve !== 'P-384' || !privateKey.usages.includes('deriveBits')) {
    throw new TypeError('the key must be a P-384 ECDH private CryptoKey for deriveBits');
  }
  const parts = messageParts(jwe);
  const header = checkHeader(parts.headers);
  const kw = header.alg === ECDH_ES_A256KW;
  if (kw && parts.encryptedKey === undefined) fail('malformed', `an ${ECDH_ES_A256KW} message needs an encrypted key`);
  if (!kw && parts.encryptedKey !== undefined) fail('malformed', `an ${ECDH_ES} message must have no encrypted key`);
  const encryptedKey = kw ? messageBytes('encrypted key', parts.encryptedKey, 40) : null;
  const iv = messageBytes('initialization vector', parts.iv, 12);
  const ciphertext = messageBytes('ciphertext', parts.ciphertext, 1, null);
  const tag = messageBytes('authentication tag', parts.tag, 16);
  let epk;
  try {
    epk = await subtle.importKey('jwk', { kty: 'EC', crv: 'P-384', x: header.epk.x, y: header.epk.y }, ECDH, true, []);
  } catch {
    fail('malformed', 'the epk is not a point on P-384');
  }
  const party = (name) => (Object.hasOwn(header, name) ? messageBytes(name, header[name], 0, MAX_PARTY_INFO_LEN) : undefined);
  const derived = await agreedKey(privateKey, epk, header.alg, party('apu'), party('apv'));
  let cek;
  try {
    if (kw) {
      const kek = await subtle.importKey('raw', derived, 'AES-KW', false, ['unwrapKey']);
      cek = await subtle.unwrapKey('raw', encryptedKey, kek, 'AES-KW', 'AES-GCM', false, ['decrypt']);
    } else {
      cek = await subtle.importKey('raw', derived, 'AES-GCM', false, ['decrypt']);
    }
  } catch {
    fail('undecryptable', 'the message does not open with this key');
  } finally {
    derived.fill(0);
  }
  const sealed = new Uint8Array(ciphertext.length + 16);
  sealed.set(ciphertext);
  sealed.set(tag, ciphertext.length);
  try {
    return new Uint8Array(await subtle.decrypt({ name: 'AES-GCM', iv, additionalData: utf8(parts.aad), tagLength: 128 }, cek, sealed));
  } catch {
    fail('undecryptable', 'the message does not open with this key, or it was altered');
  }
}

/**
 * The origin of a site URL, or null: an http(s) URL without credentials, query or fragment whose path is "/" after
 * WHATWG URL normalisation, so "https://Example.org", "https://example.org/" and "https://example.org:443/./" are all
 * "https://example.org"; a path such as "/blog" is refused, since a site's keys live at its origin's /.well-known/jwks.json.
 */
export function siteOrigin(text) {
  if (typeof text !== 'string' || text !== text.trim() || /[\u0000-\u001f\u007f]/.test(text)) return null;
  let url;
  try {
    url = new URL(text);
  } catch {
    return null;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return null;
  if (url.username || url.password || url.pathname !== '/' || url.href.includes('?') || url.href.includes('#')) return null;
  return url.origin;
}

/** Checks a message body {subject?, text, content_type?}; returns an error sentence or null (shared with sending). */
export function bodyProblem(body) {
  if (!isObject(body)) return 'the body is not a JSON object';
  for (const k of Object.keys(body)) if (!BODY_MEMBERS.includes(k)) return `the body member ${k} is not accepted`;
  if (typeof body.text !== 'string') return 'the body text is not a string';
  for (const k of ['subject', 'content_type']) if (Object.hasOwn(body, k) && typeof body[k] !== 'string') return `the body ${k} is not a string`;
  return null;
}

/** Splits a compact JWS and parses its header and claims; throws a plain Error for anything that does not parse. */
function readJws(jwsText) {
  if (typeof jwsText !== 'string' || jwsText.length > MAX_MESSAGE_LEN || !COMPACT_JWS.test(jwsText)) throw new Error('the signed message is not a compact JWS');
  const [h, p, s] = jwsText.split('.');
  const header = jsonPart(h, 'signed message header');
  const claims = jsonPart(p, 'signed message claims');
  return { header, claims, input: `${h}.${p}`, signature: s };
}

/** The header and claims of a signed message without any check of its signature: never trust them. */
export function unverifiedClaims(jwsText) {
  const { header, claims } = readJws(jwsText);
  return { header, claims };
}

/** The one public key of a JWKS that the kid names for alg (kty EC, its crv, use absent or sig, alg absent or equal), or an error sentence. */
async function senderKey(jwks, kid, alg) {
  if (!isObject(jwks) || !Array.isArray(jwks.keys)) return { problem: 'the sender’s key set is not a JWKS' };
  const { crv, size } = SIGNATURE_ALGS[alg];
  const found = jwks.keys.filter((k) => isObject(k) && k.kid === kid && k.kty === 'EC' && k.crv === crv && (k.use === undefined || k.use === 'sig') && (k.alg === undefined || k.alg === alg));
  if (found.length === 0) return { problem: `the sender publishes no ${alg} signing key with kid ${kid}` };
  if (found.length > 1) return { problem: `the sender publishes more than one key with kid ${kid}` };
  const [{ x, y }] = found;
  try {
    if (decode(x).length !== size || decode(y).length !== size) throw new Error('size');
    return { key: await subtle.importKey('jwk', { kty: 'EC', crv, x, y }, { name: 'ECDSA', namedCurve: crv }, false, ['verify']) };
  } catch {
    return { problem: `the sender’s key ${kid} is not a valid ${crv} public key` };
  }
}

/**
 * Verifies a signed message against the sender's JWKS. Resolves with {verified: true, iss, body, iat, jti, kid}, or
 * with {verified: false, reason, claims?} (claims when they parse, so a forged message stays readable); never throws
 * for the message or the key set. iss and aud compare by siteOrigin.
 */
export async function verifyMessage(jwsText, { jwks, expectedIss, expectedAud, now = Math.floor(Date.now() / 1000) }) {
  if (siteOrigin(expectedAud) === null) throw new TypeError('expectedAud must be a site URL such as https://example.org');
  if (!Number.isInteger(now)) throw new TypeError('now must be an integer of seconds');
  const unverified = (reason, claims) => (claims === undefined ? { verified: false, reason } : { verified: false, reason, claims });
  let parsed;
  try {
    parsed = readJws(jwsText);
  } catch (e) {
    let claims;
    try {
      claims = jsonPart(jwsText.split('.')[1], 'claims');
    } catch {
      // Nothing readable.
    }
    return unverified(e.message, claims);
  }
  const { header, claims, input, signature } = parsed;
  const fault = (reason) => unverified(reason, claims);
  for (const k of Object.keys(header)) if (!SIGNED_HEADER_MEMBERS.includes(k)) return fault(`the header member ${k} is not accepted`);
  if (header.typ !== MESSAGE_TYP) return fault(`the typ is not ${MESSAGE_TYP}`);
  if (!Object.hasOwn(SIGNATURE_ALGS, header.alg)) return fault('the alg is not ES384 or ES256');
  if (typeof header.kid !== 'string' || header.kid === '') return fault('the kid is missing');
  for (const k of Object.keys(claims)) if (!CLAIM_MEMBERS.includes(k)) return fault(`the claim ${k} is not accepted`);
  for (const k of CLAIM_MEMBERS) if (!Object.hasOwn(claims, k)) return fault(`the claim ${k} is missing`);
  const problem = bodyProblem(claims.body);
  if (problem) return fault(problem);
  if (typeof claims.jti !== 'string' || claims.jti === '') return fault('the jti is not a non-empty string');
  if (!Number.isInteger(claims.iat) || claims.iat < 0) return fault('the iat is not a whole number of seconds');
  const issuer = siteOrigin(claims.iss);
  if (issuer === null) return fault('the iss is not a site URL');
  const keysFrom = siteOrigin(expectedIss);
  if (issuer !== keysFrom) return fault(`the message says it is from ${issuer}, but the keys are those of ${keysFrom ?? 'no site'}`);
  const { key, problem: keyProblem } = await senderKey(jwks, header.kid, header.alg);
  if (keyProblem) return fault(keyProblem);
  const { hash, size } = SIGNATURE_ALGS[header.alg];
  let valid = false;
  try {
    const sig = decode(signature);
    valid = sig.length === 2 * size && (await subtle.verify({ name: 'ECDSA', hash }, key, sig, utf8(input)));
  } catch {
    // Refused below.
  }
  if (!valid) return fault(`the signature does not verify with the key ${header.kid} of ${issuer}`);
  if (siteOrigin(claims.aud) !== siteOrigin(expectedAud)) return fault(`the message is addressed to ${String(claims.aud)}, not to ${siteOrigin(expectedAud)}`);
  if (claims.iat > now + MAX_IAT_AHEAD) return fault('the iat is more than 5 minutes in the future');
  return { verified: true, iss: issuer, body: claims.body, iat: claims.iat, jti: claims.jti, kid: header.kid };
}

/**
 * Reads a decrypted plaintext: a compact JWS whose header has typ siteid-message+jwt is {kind: 'signed', jws}. Anything
 * else is an anonymous message {kind: 'plain', text, body}: a JSON object with a string text and only the string members
 * subject, text and content_type is that body; any other UTF-8 is the text verbatim, with body {text}. Throws on invalid UTF-8.
 */
export function parsePlaintext(bytes) {
  let text;
  try {
    text = fromUtf8(bytes);
  } catch {
    throw new InboxError('malformed', 'the message is not UTF-8 text');
  }
  if (COMPACT_JWS.test(text)) {
    try {
      if (jsonPart(text.split('.')[0], 'header').typ === MESSAGE_TYP) return { kind: 'signed', jws: text };
    } catch {
      // Plain text that only looks like a JWS.
    }
  }
  if (text.startsWith('{')) {
    try {
      const body = jsonObject(text, 'body');
      if (bodyProblem(body) === null) return { kind: 'plain', text: body.text, body };
    } catch {
      // Not a body: the text as it is.
    }
  }
  return { kind: 'plain', text, body: { text } };
}
