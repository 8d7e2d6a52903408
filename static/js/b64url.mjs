// Strict base64url without padding (RFC 7515 §2) and UTF-8 helpers for the JOSE modules.

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const VALUES = new Map([...ALPHABET].map((c, i) => [c, i]));

/** Encodes bytes (Uint8Array or ArrayBuffer) as base64url without padding. */
export function encode(bytes) {
  const b = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  let out = '';
  for (let i = 0; i < b.length; i += 3) {
    const n = (b[i] << 16) | ((b[i + 1] ?? 0) << 8) | (b[i + 2] ?? 0);
    const chars = Math.min(4, Math.ceil(((b.length - i) * 8) / 6));
    for (let j = 0; j < chars; j++) out += ALPHABET[(n >> (18 - 6 * j)) & 63];
  }
  return out;
}

/** Decodes canonical base64url without padding; throws a SyntaxError on anything else. */
export function decode(text) {
  if (typeof text !== 'string' || !/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) {
    throw new SyntaxError('not base64url without padding');
  }
  const out = new Uint8Array(Math.floor((text.length * 3) / 4));
  let bits = 0;
  let acc = 0;
  let k = 0;
  for (const c of text) {
    acc = ((acc << 6) | VALUES.get(c)) & 0xffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[k++] = (acc >> bits) & 255;
    }
  }
  if (acc & ((1 << bits) - 1)) throw new SyntaxError('not canonical base64url (stray trailing bits)');
  return out;
}

/** Encodes a string as UTF-8 bytes, exactly as given (no trimming, no normalisation). */
export function utf8(text) {
  return new TextEncoder().encode(text);
}

/** Decodes UTF-8 bytes, refusing invalid sequences. */
export function fromUtf8(bytes) {
  return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
}

/** Encodes a value as JSON and then as base64url. */
export function encodeJson(value) {
  return encode(utf8(JSON.stringify(value)));
}
