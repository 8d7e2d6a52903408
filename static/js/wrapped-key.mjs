// The owner's key in the browser: P-384 keys, the PBES2-HS512+A256KW/A256GCM wrapped key, the unlock verifier, and the parts a passkey's PRF copy shares.

import { decode, encode, encodeJson, fromUtf8, utf8 } from './b64url.mjs';

const subtle = globalThis.crypto.subtle;

/** The only key-management algorithm. */
export const ALG = 'PBES2-HS512+A256KW';
/** The only content encryption. */
export const ENC = 'A256GCM';
/** The content type of the plaintext. */
export const CTY = 'jwk+json';
/** The fewest PBKDF2 iterations accepted. */
export const MIN_P2C = 210_000;
/** The most PBKDF2 iterations accepted, so a hostile value cannot stall the page. */
export const MAX_P2C = 10_000_000;
/** The iteration count for new keys. */
export const DEFAULT_P2C = 600_000;
/** The longest compact JWE accepted, in characters. */
export const MAX_COMPACT_LEN = 4096;

const EC = { name: 'ECDSA', namedCurve: 'P-384' };
const VERIFIER_MESSAGE = 'siteid unlock verifier v1';
const HEADER_MEMBERS = ['alg', 'enc', 'cty', 'p2s', 'p2c', 'kid'];
/** The key-management algorithm of a passkey's PRF copy. */
export const PRF_ALG = 'A256KW';
const PRF_HEADER_MEMBERS = ['alg', 'enc', 'cty', 'kid'];


/** Why a wrapped key or owner key was refused; code is malformed, wrong-password, corrupt, mismatch or bad-key. */
export class WrappedKeyError extends Error {
  constructor(code, message) {
    super(message);
    this.name = 'WrappedKeyError';
    this.code = code;
  }
}

const fail = (code, message) => {
  throw new WrappedKeyError(code, message);
};

function bytes(name, text, min, max = min) {
  let b;
  try {
    b = decode(text);
  } catch {
    fail('malformed', `the ${name} is not base64url without padding`);
  }
  if (b.length < min || b.length > max) fail('malformed', `the ${name} must be ${min === max ? min : `${min} to ${max}`} bytes`);
  return b;
}

function checkParams({ alg = ALG, p2s, p2c }) {
  if (alg !== ALG) fail('malformed', `the alg must be ${ALG}`);
  if (typeof p2s !== 'string') fail('malformed', 'the p2s is missing');
  const salt = bytes('p2s', p2s, 16, 64);
  if (!Number.isInteger(p2c) || p2c < MIN_P2C || p2c > MAX_P2C) fail('malformed', `the p2c must be an integer from ${MIN_P2C} to ${MAX_P2C}`);
  return salt;
}

/** Checks every structural rule of a wrapped key (prf: a passkey's PRF copy) without decrypting; returns its parts. */
export function parse(compact, prf = false) {
  if (typeof compact !== 'string' || compact.length > MAX_COMPACT_LEN) fail('malformed', `the wrapped key must be a string of at most ${MAX_COMPACT_LEN} characters`);
  const parts = compact.split('.');
  if (parts.length !== 5) fail('malformed', 'the wrapped key is not a compact JWE of five parts');
  let header;
  try {
    header = JSON.parse(fromUtf8(decode(parts[0])));
  } catch {
    fail('malformed', 'the protected header is not base64url JSON');
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) fail('malformed', 'the protected header is not a JSON object');
  const members = prf ? PRF_HEADER_MEMBERS : HEADER_MEMBERS;
  for (const k of Object.keys(header)) if (!members.includes(k)) fail('malformed', `the protected header member ${k} is not accepted`);
  const alg = prf ? PRF_ALG : ALG;
  if (header.alg !== alg) fail('malformed', `the alg must be ${alg}`);
  if (header.enc !== ENC) fail('malformed', `the enc must be ${ENC}`);
  if (header.cty !== CTY) fail('malformed', `the cty must be ${CTY}`);
  if ((prf || 'kid' in header) && typeof header.kid !== 'string') fail('malformed', 'the kid must be a string');
  const salt = prf ? null : checkParams(header);
  return {
    header,
    salt,
    encryptedKey: bytes('encrypted key', parts[1], 40),
    iv: bytes('initialization vector', parts[2], 12),
    ciphertext: bytes('ciphertext', parts[3], 1, 1024),
    tag: bytes('authentication tag', parts[4], 16),
    aad: utf8(parts[0]),
  };
}

/** Returns {alg, p2s, p2c, kid?} of a wrapped key after checking its whole structure. */
export function unlockParams(compact) {
  const { alg, p2s, p2c, kid } = parse(compact).header;
  return kid === undefined ? { alg, p2s, p2c } : { alg, p2s, p2c, kid };
}

function passwordBytes(password) {
  if (typeof password === 'string') return utf8(password);
  if (password instanceof Uint8Array) return password.slice();
  throw new TypeError('the password must be a string');
}

/** Runs PBKDF2 once; returns the unlock verifier and the KEK as a non-extractable AES-KW key. */
async function derive(password, salt, p2c, usage) {
  const pw = passwordBytes(password);
  const alg = utf8(ALG);
  const fullSalt = new Uint8Array(alg.length + 1 + salt.length);
  fullSalt.set(alg);
  fullSalt.set(salt, alg.length + 1);
  let kekBytes;
  try {
    const base = await subtle.importKey('raw', pw, 'PBKDF2', false, ['deriveBits']);
    kekBytes = new Uint8Array(await subtle.deriveBits({ name: 'PBKDF2', hash: 'SHA-512', salt: fullSalt, iterations: p2c }, base, 256));
    const mac = await subtle.importKey('raw', kekBytes, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
    const verifier = encode(await subtle.sign('HMAC', mac, utf8(VERIFIER_MESSAGE)));
    const kek = await subtle.importKey('raw', kekBytes, 'AES-KW', false, [usage]);
    return { verifier, kek };
  } finally {
    pw.fill(0);
    kekBytes?.fill(0);
  }
}

/** The KEK derived from the password for one salt and iteration count, plus its unlock verifier. */
export class UnlockKey {
  #kek;

  constructor(kek, p2s, p2c, unlockVerifier) {
    this.#kek = kek;
    /** The p2s this key was derived with. */
    this.p2s = p2s;
    /** The p2c this key was derived with. */
    this.p2c = p2c;
    /** base64url(HMAC-SHA-256(KEK, "siteid unlock verifier v1")), sent to POST /api/v1/unlock. */
    this.unlockVerifier = unlockVerifier;
    Object.freeze(this);
  }

  /** Unwraps the CEK of a parsed wrapped key (internal). */
  unwrapCek(parsed) {
    if (parsed.header.p2s !== this.p2s || parsed.header.p2c !== this.p2c) fail('mismatch', 'the wrapped key uses another p2s or p2c than the unlock parameters');
    return subtle.unwrapKey('raw', parsed.encryptedKey, this.#kek, 'AES-KW', 'AES-GCM', false, ['decrypt']);
  }
}

/** Derives the KEK once from the password and the unlock parameters {alg?, p2s, p2c} (e.g. from GET /api/v1/unlock). */
export async function deriveUnlock(password, params) {
  const salt = checkParams(params ?? {});
  const { verifier, kek } = await derive(password, salt, params.p2c, 'unwrapKey');
  return new UnlockKey(kek, params.p2s, params.p2c, verifier);
}

function checkPrivateJwk(jwk, needD = true) {
  if (jwk === null || typeof jwk !== 'object' || jwk.kty !== 'EC' || jwk.crv !== 'P-384') fail('bad-key', 'the key must be an EC P-384 JWK');
  for (const m of needD ? ['x', 'y', 'd'] : ['x', 'y']) {
    let b;
    try {
      b = decode(jwk[m]);
    } catch {
      fail('bad-key', `the key member ${m} is not base64url`);
    }
    if (b.length !== 48) fail('bad-key', `the key member ${m} must be 48 bytes`);
  }
}

/** Returns the bare public JWK {kty, crv, x, y} of a P-384 JWK. */
export function toPublicJwk(jwk) {
  checkPrivateJwk(jwk, false);
  return { kty: 'EC', crv: 'P-384', x: jwk.x, y: jwk.y };
}

/** Makes a new P-384 key pair; returns {privateJwk: {kty, crv, x, y, d}, publicJwk: {kty, crv, x, y}}. */
export async function generateOwnerKey() {
  const pair = await subtle.generateKey(EC, true, ['sign', 'verify']);
  const { x, y, d } = await subtle.exportKey('jwk', pair.privateKey);
  const privateJwk = { kty: 'EC', crv: 'P-384', x, y, d };
  checkPrivateJwk(privateJwk);
  return { privateJwk, publicJwk: toPublicJwk(privateJwk) };
}

/**
 * Wraps a private JWK under a password with a fresh salt, CEK and IV, naming the key by its thumbprint in the kid
 * header; returns {wrappedKey, unlockVerifier}.
 */
export async function wrapPrivateKey(privateJwk, password, { p2c = DEFAULT_P2C } = {}) {
  checkPrivateJwk(privateJwk);
  const salt = globalThis.crypto.getRandomValues(new Uint8Array(16));
  const p2s = encode(salt);
  checkParams({ p2s, p2c });
  const { verifier, kek } = await derive(password, salt, p2c, 'wrapKey');
  const header = { alg: ALG, enc: ENC, cty: CTY, p2s, p2c, kid: await jwkThumbprint(privateJwk) };
  return { wrappedKey: await sealJwk(privateJwk, kek, header), unlockVerifier: verifier };
}

/** Encrypts a private JWK under a fresh CEK and IV, the CEK wrapped with the AES-KW key kek; returns the compact JWE. */
export async function sealJwk(privateJwk, kek, header) {
  checkPrivateJwk(privateJwk);
  const rand = (n) => globalThis.crypto.getRandomValues(new Uint8Array(n));
  const protectedB64 = encodeJson(header);
  const { kty, crv, x, y, d } = privateJwk;
  const plaintext = utf8(JSON.stringify({ kty, crv, x, y, d }));
  const iv = rand(12);
  const cek = await subtle.generateKey({ name: 'AES-GCM', length: 256 }, true, ['encrypt']);
  const encryptedKey = await subtle.wrapKey('raw', cek, kek, 'AES-KW');
  const sealed = new Uint8Array(await subtle.encrypt({ name: 'AES-GCM', iv, additionalData: utf8(protectedB64), tagLength: 128 }, cek, plaintext));
  plaintext.fill(0);
  const n = sealed.length - 16;
  return [protectedB64, encode(encryptedKey), encode(iv), encode(sealed.subarray(0, n)), encode(sealed.subarray(n))].join('.');
}

/** Decrypts a parsed JWE's content with its CEK; returns the checked private JWK {kty, crv, x, y, d}. */
export async function openJwk(parsed, cek) {
  const sealed = new Uint8Array(parsed.ciphertext.length + 16);
  sealed.set(parsed.ciphertext);
  sealed.set(parsed.tag, parsed.ciphertext.length);
  let plaintext;
  let jwk;
  try {
    plaintext = new Uint8Array(await subtle.decrypt({ name: 'AES-GCM', iv: parsed.iv, additionalData: parsed.aad, tagLength: 128 }, cek, sealed));
    jwk = JSON.parse(fromUtf8(plaintext));
  } catch {
    fail('corrupt', 'the wrapped key is damaged: its content does not decrypt');
  } finally {
    plaintext?.fill(0);
  }
  checkPrivateJwk(jwk);
  return { kty: 'EC', crv: 'P-384', x: jwk.x, y: jwk.y, d: jwk.d };
}

/** Decrypts a wrapped key with a password or an UnlockKey from deriveUnlock; returns the private JWK {kty, crv, x, y, d}. */
export async function unwrapPrivateKey(compact, passwordOrUnlockKey) {
  const parsed = parse(compact);
  const unlock = passwordOrUnlockKey instanceof UnlockKey ? passwordOrUnlockKey : await deriveUnlock(passwordOrUnlockKey, parsed.header);
  let cek;
  try {
    cek = await unlock.unwrapCek(parsed);
  } catch (e) {
    if (e instanceof WrappedKeyError) throw e;
    fail('wrong-password', 'wrong password: the wrapped key does not open with it');
  }
  return openJwk(parsed, cek);
}

/** Imports a public JWK as an ECDSA P-384 verification key. */
export function importVerifyKey(publicJwk) {
  return subtle.importKey('jwk', toPublicJwk(publicJwk), EC, true, ['verify']);
}

/**
 * Imports a private JWK as a non-extractable ECDSA P-384 signing key, checks that d belongs to x and y,
 * and then deletes d from the given object so the scalar lives on only inside the CryptoKey.
 */
export async function importSigningKey(privateJwk) {
  checkPrivateJwk(privateJwk);
  const { kty, crv, x, y, d } = privateJwk;
  const ecdsa = { name: 'ECDSA', hash: 'SHA-384' };
  const probe = utf8(VERIFIER_MESSAGE);
  let key;
  let ok = false;
  try {
    key = await subtle.importKey('jwk', { kty, crv, x, y, d }, EC, false, ['sign']);
    ok = await subtle.verify(ecdsa, await importVerifyKey(privateJwk), await subtle.sign(ecdsa, key, probe), probe);
  } catch {
    // Refused below.
  }
  if (!ok) fail('bad-key', 'the private key is invalid or does not match its public coordinates');
  delete privateJwk.d;
  return key;
}

/** Unwraps the owner's key and imports it; returns {signingKey, publicJwk, kid} with no private JWK left behind. */
export async function unlockSigningKey(compact, passwordOrUnlockKey, options) {
  return signingKeyFromJwk(await unwrapPrivateKey(compact, passwordOrUnlockKey), options);
}

/**
 * Imports an opened private JWK as the owner's signing key; resolves with {signingKey, publicJwk, kid}, and with
 * privateJwk (a copy, for wrapping the key once more) only when keepPrivateJwk is asked for.
 */
export async function signingKeyFromJwk(jwk, { keepPrivateJwk = false } = {}) {
  const privateJwk = keepPrivateJwk ? { ...jwk } : null;
  const signingKey = await importSigningKey(jwk);
  const publicJwk = toPublicJwk(jwk);
  const key = { signingKey, publicJwk, kid: await jwkThumbprint(publicJwk) };
  return privateJwk ? { ...key, privateJwk } : key;
}

/** The RFC 7638 thumbprint (SHA-256, base64url) of a P-384 JWK: the key id everywhere. */
export async function jwkThumbprint(jwk) {
  const { crv, kty, x, y } = toPublicJwk(jwk);
  return encode(await subtle.digest('SHA-256', utf8(JSON.stringify({ crv, kty, x, y }))));
}
