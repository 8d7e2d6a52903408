// Recovery shares (docs/shares.md): Shamir sharing of the owner's P-384 key, and the share text form.

import { decode, encode } from './b64url.mjs';
import { jwkThumbprint } from './wrapped-key.mjs';

const { subtle } = crypto;
const hex = (b) => Array.from(b, (v) => (v + 256).toString(16).slice(1)).join('');
const unhex = (s) => Uint8Array.from(s.match(/../g), (h) => parseInt(h, 16));
const ABC = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const ORDER = 0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n;

export const MIN_THRESHOLD = 2;
export const MAX_SHARES = 16;

/** A refusal: .code is the spec's error code, .position a 1-based share position or null. */
export class ShareError extends Error {
  constructor(code, position, message) {
    super(message);
    Object.assign(this, { name: 'ShareError', code, position });
  }
}

const fail = (code, position, message) => {
  throw new ShareError(code, position, message);
};

/** Multiplies in GF(2^8) mod 0x11B without tables or data-dependent branches. */
export function gfMul(a, b) {
  let p = 0;
  for (let i = 0; i < 8; i++, b >>= 1) {
    p ^= a & -(b & 1);
    a = (a << 1) ^ (0x11b & -(a >> 7));
  }
  return p;
}

/** The inverse a^254 (0 for 0). */
export function gfInv(a) {
  let r = 1;
  for (let i = 0; i < 7; i++) r = gfMul(r, (a = gfMul(a, a)));
  return r;
}

/** Splits secret bytes into data arrays for indices 1..count (coefficients: any byte). */
export function splitSecret(secret, threshold, count) {
  const out = Array.from({ length: count }, () => new Uint8Array(secret.length));
  const coef = crypto.getRandomValues(new Uint8Array(secret.length * threshold));
  secret.forEach((s, j) => {
    coef[j * threshold] = s;
    out.forEach((y, x) => {
      for (let c = threshold; c--; ) y[j] = gfMul(y[j], x + 1) ^ coef[j * threshold + c];
    });
  });
  coef.fill(0);
  return out;
}

/** Evaluates at `at` (0: the secret) the polynomials through [{index, data}]. */
export function combineSecret(points, at = 0) {
  const out = new Uint8Array(points[0].data.length);
  for (const { index, data } of points) {
    let l = 1;
    for (const p of points) if (p.index !== index) l = gfMul(l, gfMul(at ^ p.index, gfInv(p.index ^ index)));
    data.forEach((y, j) => (out[j] ^= gfMul(y, l)));
  }
  return out;
}

const checksum = async (b) => hex(new Uint8Array(await subtle.digest('SHA-256', b.subarray(0, 59)))).slice(0, 12);

/** The canonical text of 65 bytes. */
export function encodeBytes(bytes) {
  let text = '';
  let acc = 0;
  let bits = 0;
  for (const v of bytes) for (acc = (acc << 8) | v, bits += 8; bits >= 5; ) text += ABC[(acc >> (bits -= 5)) & 31];
  return text.match(/..../g).join('-');
}

/** The text of a share {version = 1, setId, threshold, index, keyCheck, data}, unchecked. */
export async function encodeShare({ version = 1, setId, threshold, index, keyCheck, data }) {
  const b = new Uint8Array(65);
  b.set([version, ...unhex(setId), threshold, index, ...keyCheck, ...data]);
  b.set(unhex(await checksum(b)), 59);
  const text = encodeBytes(b);
  b.fill(0);
  return text;
}

/** Reads a share's text as the spec's reader does; `position` goes into errors. */
export async function readShare(text, position = null) {
  const no = (code, message) => fail(code, position, `${position ? `Share ${position}` : 'This share'} ${message}`);
  const chars = [...String(text).replace(/[ \t\r\n-]/g, '').replace(/[a-z]/g, (c) => c.toUpperCase())];
  const b = new Uint8Array(65);
  let acc = 0;
  let bits = 0;
  let k = 0;
  chars.forEach((c, i) => {
    const v = ABC.indexOf(c === 'O' ? '0' : c === 'I' || c === 'L' ? '1' : c);
    if (v < 0) no('alphabet', `has "${c}" at character ${i + 1}, which is not in shares.`);
    acc = (acc << 5) | v;
    if ((bits += 5) >= 8) b[k++] = acc >> (bits -= 8);
  });
  if (chars.length !== 104) no('length', `has ${chars.length} characters, not 104.`);
  if ((await checksum(b)) !== hex(b.subarray(59))) no('checksum', 'has a typo: its checksum does not match.');
  if (b[0] !== 1) no('version', `is of an unknown version (${b[0]}).`);
  if (b[5] < 2 || b[5] > 16) no('threshold', `is damaged (threshold ${b[5]}).`);
  if (b[6] < 1 || b[6] > 16) no('index', `is damaged (number ${b[6]}).`);
  const share = { text: encodeBytes(b), setId: hex(b.subarray(1, 5)), threshold: b[5], index: b[6], keyCheck: b.slice(7, 11), data: b.slice(11, 59) };
  b.fill(0);
  return share;
}

/** {publicJwk, kid, check (hex key check)} of a 48-byte scalar, or null if it is 0 or ≥ the order. */
async function publicOf(d) {
  const n = d.length === 48 && BigInt(`0x${hex(d)}`);
  if (!n || n >= ORDER) return null;
  let x, y;
  // PKCS#8 of an ECPrivateKey without publicKey: Chromium and Node compute d·G.
  const der = unhex(`304e020100301006072a8648ce3d020106052b81040022043730350201010430${hex(d)}`);
  try {
    const key = await subtle.importKey('pkcs8', der, { name: 'ECDSA', namedCurve: 'P-384' }, true, ['sign']);
    ({ x, y } = await subtle.exportKey('jwk', key));
  } catch {
    // Engines that want the public key in the PKCS#8: compute it here.
    [x, y] = multiplyBase(n).map((c) => encode(unhex(c.toString(16).padStart(96, '0'))));
  } finally {
    der.fill(0);
  }
  const publicJwk = { kty: 'EC', crv: 'P-384', x, y };
  const kid = await jwkThumbprint(publicJwk);
  return { publicJwk, kid, check: hex(decode(kid)).slice(0, 8) };
}

const P = 2n ** 384n - 2n ** 128n - 2n ** 96n + 2n ** 32n - 1n;
const G = [
  0xaa87ca22be8b05378eb1c71ef320ad746e1d3b628ba79b9859f741e082542a385502f25dbf55296c3a545e3872760ab7n,
  0x3617de4a96262c6f5d9e98bf9292dc29f8f41dbd289a147ce9da3113b5f0b8c00a60b1ce1d7e819d7a431d7c90ea0e5fn,
];
const mod = (a) => ((a % P) + P) % P;

/** Doubles a Jacobian point [X, Y, Z] on P-384 (a = -3). */
function double([X, Y, Z]) {
  const zz = (Z * Z) % P;
  const yy = (Y * Y) % P;
  const s = (4n * X * yy) % P;
  const m = (3n * (X - zz) * (X + zz)) % P;
  const x3 = mod(m * m - 2n * s);
  return [x3, mod(m * (s - x3) - 8n * yy * yy), mod(2n * Y * Z)];
}

/** Adds the affine point [x, y] to the Jacobian point R; null is the point at infinity. */
function addAffine(R, [x, y]) {
  if (!R) return [x, y, 1n];
  const [X, Y, Z] = R;
  const zz = (Z * Z) % P;
  const h = mod(x * zz - X);
  const r = mod(y * zz * Z - Y);
  if (h === 0n) return r === 0n ? double(R) : null;
  const hh = (h * h) % P;
  const hhh = (h * hh) % P;
  const v = (X * hh) % P;
  const x3 = mod(r * r - hhh - 2n * v);
  return [x3, mod(r * (v - x3) - Y * hhh), (Z * h) % P];
}

/** n·G as affine BigInt coordinates, by double-and-add (only ever run on the owner's own device). */
export function multiplyBase(n) {
  let R = null;
  for (let i = 383n; i >= 0n; i--) {
    if (R) R = double(R);
    if ((n >> i) & 1n) R = addAffine(R, G);
  }
  let inverse = 1n;
  for (let b = R[2], e = P - 2n; e; e >>= 1n, b = (b * b) % P) if (e & 1n) inverse = (inverse * b) % P;
  const zz = (inverse * inverse) % P;
  return [(R[0] * zz) % P, (R[1] * zz * inverse) % P];
}

/** Splits a private P-384 JWK into `shares` texts of which any `threshold` rebuild it. */
export async function splitKey(privateJwk, { threshold: k, shares: n }) {
  if (!([k, n].every(Number.isInteger) && k >= 2 && k <= n && n <= 16)) throw new RangeError('need 2 ≤ threshold ≤ shares ≤ 16');
  const d = decode(privateJwk?.d ?? '');
  const pub = await publicOf(d);
  if (pub?.kid !== (await jwkThumbprint(privateJwk).catch(() => 0))) throw new TypeError('not a P-384 JWK whose d matches x and y');
  const setId = hex(crypto.getRandomValues(new Uint8Array(4)));
  const shares = [];
  for (const [i, data] of splitSecret(d, k, n).entries()) {
    shares.push({ index: i + 1, text: await encodeShare({ setId, threshold: k, index: i + 1, keyCheck: unhex(pub.check), data }) });
    data.fill(0);
  }
  d.fill(0);
  return { setId, threshold: k, shares };
}

/** Rebuilds {privateJwk, publicJwk, kid} from readShare results in entry order, checking as the spec says. */
export async function rebuildKey(shares, { publicJwk } = {}) {
  const [first] = shares;
  const k = first?.threshold;
  const base = shares.slice(0, k);
  shares.forEach((s, i) => {
    if (s.setId !== first.setId || s.threshold !== k || hex(s.keyCheck) !== hex(first.keyCheck)) fail('mixed-sets', i + 1, `Share ${i + 1} is from another set than share 1.`);
  });
  shares.forEach((s, i) => {
    const j = shares.findIndex((t) => t.index === s.index) + 1;
    if (j <= i) fail('duplicate-index', i + 1, `Shares ${j} and ${i + 1} are the same share.`);
  });
  if (!(shares.length >= k)) fail('too-few', null, k ? `This set needs ${k} shares; only ${shares.length} given.` : 'No shares were given.');
  shares.forEach((s, i) => {
    if (i >= k && hex(combineSecret(base, s.index)) !== hex(s.data)) fail('inconsistent', i + 1, `Share ${i + 1} does not fit the others: it is damaged or forged.`);
  });
  const d = combineSecret(base);
  const forged = 'These shares do not rebuild the key: one of them is damaged or forged.';
  try {
    const pub = await publicOf(d);
    if (!pub) fail('not-a-key', null, forged);
    if (pub.check !== hex(first.keyCheck)) fail('key-check', null, forged);
    if (publicJwk && (await jwkThumbprint(publicJwk)) !== pub.kid) fail('wrong-key', null, "These shares rebuild another key than this node's owner key.");
    return { privateJwk: { ...pub.publicJwk, d: encode(d) }, publicJwk: pub.publicJwk, kid: pub.kid };
  } finally {
    d.fill(0);
  }
}
