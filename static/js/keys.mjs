// Public keys as people paste them (JWK, PEM SubjectPublicKeyInfo, OpenSSH lines, the key inside an SSH signature), read in the browser and named by their RFC 7638 thumbprint, so that a binding names the key the owner gave and never one the node suggests.

import { encode, utf8 } from './b64url.mjs';

/** A pasted key that cannot be used; the message completes "The key ...". */
export class KeyError extends Error {
  constructor(message) {
    super(message);
    this.name = 'KeyError';
  }
}

const P256_SPKI = hex('3059301306072a8648ce3d020106082a8648ce3d030107034200');
const P384_SPKI = hex('3076301006072a8648ce3d020106052b81040022036200');
const ED25519_SPKI = hex('302a300506032b6570032100');
const MAX_TEXT = 8192;

function hex(text) {
  return Uint8Array.from(text.match(/../g), (pair) => Number.parseInt(pair, 16));
}

function startsWith(bytes, prefix) {
  return bytes.length >= prefix.length && prefix.every((b, i) => bytes[i] === b);
}

function standardBase64(text) {
  const compact = text.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact) || compact.length % 4 !== 0) throw new KeyError('is not valid base64');
  return Uint8Array.from(atob(compact), (c) => c.charCodeAt(0));
}

/** Big-endian bytes without leading zeros (at least one byte), as JWK members carry integers. */
function minimal(bytes) {
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start += 1;
  return bytes.subarray(start);
}

/** The members RFC 7638 hashes for each key type, in their required order. */
function canonical(jwk) {
  switch (jwk?.kty) {
    case 'EC':
      if (jwk.crv !== 'P-256' && jwk.crv !== 'P-384') throw new KeyError(`is on curve ${jwk.crv}; P-256 and P-384 are accepted`);
      return { crv: jwk.crv, kty: 'EC', x: jwk.x, y: jwk.y };
    case 'OKP':
      if (jwk.crv !== 'Ed25519') throw new KeyError(`is an OKP key on ${jwk.crv}; only Ed25519 is accepted`);
      return { crv: 'Ed25519', kty: 'OKP', x: jwk.x };
    case 'RSA':
      return { e: jwk.e, kty: 'RSA', n: jwk.n };
    default:
      throw new KeyError('is not a P-256, P-384, Ed25519 or RSA key');
  }
}

/** The RFC 7638 thumbprint (SHA-256, base64url) of a public JWK of any accepted type. */
export async function thumbprint(jwk) {
  const members = canonical(jwk);
  for (const [name, value] of Object.entries(members)) {
    if (typeof value !== 'string' || !value) throw new KeyError(`has no ${name}`);
  }
  return encode(await globalThis.crypto.subtle.digest('SHA-256', utf8(JSON.stringify(members))));
}

/** The algorithm a key signs with unless its JWK names another. */
export function defaultAlgorithm(jwk) {
  if (jwk.kty === 'EC') return jwk.crv === 'P-256' ? 'ES256' : 'ES384';
  if (jwk.kty === 'OKP') return 'EdDSA';
  return 'RS256';
}

/** Reads SSH wire-format strings (RFC 4251 §5) one after the other. */
function wireReader(bytes) {
  let at = 0;
  return {
    string() {
      if (at + 4 > bytes.length) throw new KeyError('is cut short');
      const length = new DataView(bytes.buffer, bytes.byteOffset + at, 4).getUint32(0);
      at += 4;
      if (at + length > bytes.length) throw new KeyError('is cut short');
      const value = bytes.subarray(at, at + length);
      at += length;
      return value;
    },
    text() {
      return new TextDecoder().decode(this.string());
    },
    done() {
      return at === bytes.length;
    },
  };
}

/** The public JWK of an SSH public key blob (RFC 4253 §6.6, RFC 5656, RFC 8709). */
export function jwkFromSshBlob(blob) {
  const reader = wireReader(blob);
  const type = reader.text();
  let jwk;
  if (type === 'ssh-ed25519') {
    const x = reader.string();
    if (x.length !== 32) throw new KeyError('is an Ed25519 key of the wrong length');
    jwk = { kty: 'OKP', crv: 'Ed25519', x: encode(x) };
  } else if (type === 'ecdsa-sha2-nistp256' || type === 'ecdsa-sha2-nistp384') {
    const size = type.endsWith('256') ? 32 : 48;
    reader.string();
    const point = reader.string();
    if (point.length !== 1 + 2 * size || point[0] !== 4) throw new KeyError('is an EC key whose point is not uncompressed');
    jwk = { kty: 'EC', crv: size === 32 ? 'P-256' : 'P-384', x: encode(point.subarray(1, 1 + size)), y: encode(point.subarray(1 + size)) };
  } else if (type === 'ssh-rsa') {
    const e = reader.string();
    const n = reader.string();
    jwk = { kty: 'RSA', e: encode(minimal(e)), n: encode(minimal(n)) };
  } else {
    throw new KeyError(`is of SSH type ${type}, which is not accepted`);
  }
  if (!reader.done()) throw new KeyError('has bytes after the key');
  return jwk;
}

async function jwkFromSpki(der) {
  for (const [prefix, crv, size] of [
    [P256_SPKI, 'P-256', 32],
    [P384_SPKI, 'P-384', 48],
  ]) {
    if (startsWith(der, prefix)) {
      const point = der.subarray(prefix.length);
      if (point.length !== 1 + 2 * size || point[0] !== 4) throw new KeyError('is an EC key whose point is not uncompressed');
      return { kty: 'EC', crv, x: encode(point.subarray(1, 1 + size)), y: encode(point.subarray(1 + size)) };
    }
  }
  if (startsWith(der, ED25519_SPKI) && der.length === ED25519_SPKI.length + 32) {
    return { kty: 'OKP', crv: 'Ed25519', x: encode(der.subarray(ED25519_SPKI.length)) };
  }
  try {
    const key = await globalThis.crypto.subtle.importKey('spki', der, { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, true, ['verify']);
    const { n, e } = await globalThis.crypto.subtle.exportKey('jwk', key);
    return { kty: 'RSA', n, e };
  } catch {
    throw new KeyError('is not a P-256, P-384, Ed25519 or RSA public key');
  }
}

/**
 * Reads a pasted public key: a JWK, a PEM SubjectPublicKeyInfo or an OpenSSH public key line. Resolves with
 * {publicKey, jwk, kid, alg}: publicKey as POST /credentials takes it (the JWK object, or the text), jwk the canonical
 * members, alg the one algorithm it will sign with.
 */
export async function readPublicKey(text) {
  const trimmed = String(text ?? '').trim();
  if (!trimmed) throw new KeyError('is empty');
  if (trimmed.length > MAX_TEXT) throw new KeyError('is longer than any public key');
  let jwk;
  let publicKey;
  let alg = null;
  if (trimmed.startsWith('{')) {
    let parsed;
    try {
      parsed = JSON.parse(trimmed);
    } catch {
      throw new KeyError('looks like a JWK but is not valid JSON');
    }
    if (['d', 'p', 'q', 'dp', 'dq', 'qi', 'k'].some((member) => member in parsed)) {
      throw new KeyError('is a private key: paste only the public key');
    }
    jwk = canonical(parsed);
    alg = typeof parsed.alg === 'string' ? parsed.alg : null;
    publicKey = parsed;
  } else if (trimmed.startsWith('-----BEGIN')) {
    const match = trimmed.match(/^-----BEGIN PUBLIC KEY-----([\s\S]*?)-----END PUBLIC KEY-----$/);
    if (!match) {
      const hint = trimmed.includes('PRIVATE KEY') ? 'is a private key: paste only the public key (openssl pkey -in key.pem -pubout)' : 'is PEM but not a PUBLIC KEY block (openssl pkey -pubin -in key.pem prints one)';
      throw new KeyError(hint);
    }
    jwk = await jwkFromSpki(standardBase64(match[1]));
    publicKey = trimmed;
  } else {
    const [type, body] = trimmed.split(/\s+/);
    if (!body) throw new KeyError('is not a JWK, a PEM public key or an OpenSSH public key line');
    jwk = jwkFromSshBlob(standardBase64(body));
    if (canonicalSshType(jwk) !== type) throw new KeyError(`names type ${type} but holds another key`);
    publicKey = trimmed;
  }
  const kid = await thumbprint(jwk);
  return { publicKey, jwk: canonical(jwk), kid, alg: alg ?? defaultAlgorithm(jwk) };
}

function canonicalSshType(jwk) {
  if (jwk.kty === 'OKP') return 'ssh-ed25519';
  if (jwk.kty === 'EC') return jwk.crv === 'P-256' ? 'ecdsa-sha2-nistp256' : 'ecdsa-sha2-nistp384';
  return 'ssh-rsa';
}

/** The public JWK inside an armored SSH signature (PROTOCOL.sshsig), for naming the key that made it. */
export function jwkFromSshSignature(armored) {
  const match = String(armored ?? '').match(/-----BEGIN SSH SIGNATURE-----([\s\S]*?)-----END SSH SIGNATURE-----/);
  if (!match) throw new KeyError('is not an armored SSH signature');
  const bytes = standardBase64(match[1]);
  const magic = utf8('SSHSIG');
  if (!startsWith(bytes, magic)) throw new KeyError('is not an SSH signature');
  const reader = wireReader(bytes.subarray(magic.length + 4));
  return jwkFromSshBlob(reader.string());
}
