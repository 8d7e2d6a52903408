// Tests of static/js/shares.mjs against docs/shares.md: GF(2^8), Shamir splitting, the share text form, every error code, cross fixtures.
// Set SITEID_WRITE_FIXTURES=1 (npm run fixtures) to regenerate tests/vectors/js-shares.json.

import { describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as b64 from '../../static/js/b64url.mjs';
import * as wk from '../../static/js/wrapped-key.mjs';
import * as sh from '../../static/js/shares.mjs';
import { readVector, repoRoot, vectorPath } from './helpers.mjs';

const CANONICAL = /^(?:[0-9A-HJKMNP-TV-Z]{4}-){25}[0-9A-HJKMNP-TV-Z]{4}$/;
const ABC = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const ORDER_HEX = 'ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973';

const hexBytes = (hex) => Uint8Array.from(Buffer.from(hex, 'hex'));
const random = (n) => crypto.getRandomValues(new Uint8Array(n));

/** Every subset of `size` elements of `items`, in order. */
function subsets(items, size) {
  if (size === 0) return [[]];
  if (items.length < size) return [];
  const [head, ...rest] = items;
  return [...subsets(rest, size - 1).map((s) => [head, ...s]), ...subsets(rest, size)];
}

/** GF(2^8) multiplication written the textbook way (branches and all), as an independent reference. */
function referenceMul(a, b) {
  let p = 0;
  while (b) {
    if (b & 1) p ^= a;
    a <<= 1;
    if (a & 0x100) a ^= 0x11b;
    b >>= 1;
  }
  return p;
}

/** Crockford base32 of bytes through one BigInt, as an independent reference for the canonical text. */
function referenceText(bytes) {
  let n = BigInt(`0x${Buffer.from(bytes).toString('hex')}`);
  let chars = '';
  for (let i = 0; i < (bytes.length * 8) / 5; i++, n >>= 5n) chars = ABC[Number(n & 31n)] + chars;
  return chars.match(/.{4}/g).join('-');
}

/** The 65 bytes of a share built with node:crypto: version, set id, k, index, key check, data, checksum. */
function shareBytes({ version = 1, setId, threshold, index, keyCheck, data }) {
  const body = Buffer.concat([Buffer.from([version]), Buffer.from(setId, 'hex'), Buffer.from([threshold, index]), Buffer.from(keyCheck), Buffer.from(data)]);
  assert.equal(body.length, 59);
  return Uint8Array.from(Buffer.concat([body, createHash('sha256').update(body).digest().subarray(0, 6)]));
}

/** A share text with a valid checksum, whatever its fields (to make invalid shares). */
const shareText = (fields) => sh.encodeBytes(shareBytes(fields));

/** The first 4 bytes of the thumbprint digest of a public JWK. */
const keyCheckOf = async (publicJwk) => b64.decode(await wk.jwkThumbprint(publicJwk)).subarray(0, 4);

/** Shares of arbitrary 48 bytes with a given key check, made with the low-level pieces. */
function forgedSet(secret, keyCheck, { threshold = 3, count = 5, setId = '0badc0de' } = {}) {
  return sh.splitSecret(secret, threshold, count).map((data, i) => shareText({ setId, threshold, index: i + 1, keyCheck, data }));
}

/** Reads share texts in entry order (positions from 1) and rebuilds from them, as the /recover page does. */
async function rebuild(texts, options) {
  const shares = [];
  for (const text of texts) shares.push(await sh.readShare(text, shares.length + 1));
  return sh.rebuildKey(shares, options);
}

/** An assert.rejects validator for a ShareError with this code and position. */
const isShareError = (code, position) => (e) => {
  assert.ok(e instanceof sh.ShareError, `expected a ShareError, got ${e?.stack ?? e}`);
  assert.equal(e.code, code, e.message);
  assert.equal(e.position, position, `position of: ${e.message}`);
  assert.equal(e.name, 'ShareError');
  if (position !== null) assert.match(e.message, new RegExp(`\\b${position}\\b`), 'the message names the position');
  return true;
};

const owner = await wk.generateOwnerKey();
const other = await wk.generateOwnerKey();
const ownerKid = await wk.jwkThumbprint(owner.publicJwk);
const ownerSplit = await sh.splitKey(owner.privateJwk, { threshold: 3, shares: 5 });
const ownerTexts = ownerSplit.shares.map((s) => s.text);

test('the module starts with a comment saying what it owns and has no imports beyond its siblings', () => {
  const source = readFileSync(`${repoRoot}static/js/shares.mjs`, 'utf8');
  assert.match(source.split('\n')[0], /^\/\/ \S.{10,}/);
  for (const [, from] of source.matchAll(/from '([^']+)'/g)) assert.match(from, /^\.\/[\w-]+\.mjs$/);
  assert.equal(sh.MIN_THRESHOLD, 2);
  assert.equal(sh.MAX_SHARES, 16);
});

describe('GF(2^8)', () => {
  it('multiplies as FIPS 197 §4.2 does', () => {
    assert.equal(sh.gfMul(0x57, 0x83), 0xc1);
    assert.equal(sh.gfMul(0x83, 0x57), 0xc1);
    assert.equal(sh.gfMul(0x57, 0x13), 0xfe);
    assert.equal(sh.gfMul(0x57, 0x02), 0xae);
  });

  it('agrees with a textbook multiplication on all 65,536 pairs', () => {
    for (let a = 0; a < 256; a++) for (let b = 0; b < 256; b++) if (sh.gfMul(a, b) !== referenceMul(a, b)) assert.fail(`${a}·${b}`);
  });

  it('inverts all 255 nonzero elements (a · a⁻¹ = 1) and maps 0 to 0', () => {
    const seen = new Set();
    for (let a = 1; a < 256; a++) {
      const inv = sh.gfInv(a);
      assert.equal(sh.gfMul(a, inv), 1, `a = ${a}`);
      seen.add(inv);
    }
    assert.equal(seen.size, 255);
    assert.equal(sh.gfInv(0), 0);
  });
});

describe('the share codec', () => {
  it('writes 65 bytes as 104 Crockford characters in 26 groups of 4, most significant bits first', () => {
    for (const bytes of [new Uint8Array(65), new Uint8Array(65).fill(255), ...Array.from({ length: 50 }, () => random(65))]) {
      const text = sh.encodeBytes(bytes);
      assert.match(text, CANONICAL);
      assert.equal(text.length, 129);
      assert.equal(text, referenceText(bytes));
    }
    assert.equal(sh.encodeBytes(new Uint8Array(65)), Array(26).fill('0000').join('-'));
    assert.equal(sh.encodeBytes(new Uint8Array(65).fill(255)), Array(26).fill('ZZZZ').join('-'));
  });

  it('round-trips every field through encodeShare and readShare, with the checksum of the spec', async () => {
    for (let threshold = 2; threshold <= 16; threshold++) {
      for (const index of [1, threshold, 16]) {
        const fields = { setId: Buffer.from(random(4)).toString('hex'), threshold, index, keyCheck: random(4), data: random(48) };
        const text = await sh.encodeShare(fields);
        assert.equal(text, shareText(fields), 'same text as the node:crypto reference');
        const read = await sh.readShare(text);
        assert.deepEqual(read, { text, ...fields, keyCheck: Uint8Array.from(fields.keyCheck), data: Uint8Array.from(fields.data) });
      }
    }
  });

  it('reads a share leniently: lower case, O for 0, I and L for 1, spaces, line breaks and any hyphens', async () => {
    const text = ownerTexts[0];
    const bare = text.replaceAll('-', '');
    const variants = [
      text.toLowerCase(),
      bare,
      bare.toLowerCase(),
      text.replaceAll('0', 'O'),
      text.replaceAll('0', 'o'),
      text.replaceAll('1', 'I'),
      text.replaceAll('1', 'i'),
      text.replaceAll('1', 'L'),
      text.replaceAll('1', 'l'),
      text.replaceAll('-', ' '),
      text.replaceAll('-', '\t'),
      bare.match(/.{1,13}/g).join('\r\n'),
      bare.match(/.{1,8}/g).join('\n'),
      `  ${text}\n`,
      `-${text.replaceAll('-', '--')}-`,
      bare.match(/.{1,3}/g).join('-'),
      text.replace(/-/g, (_, i) => (i % 2 ? '' : ' - ')),
    ];
    for (const variant of variants) assert.equal((await sh.readShare(variant)).text, text, JSON.stringify(variant));
  });

  it('refuses U and other characters outside the alphabet, naming the character and where it is', async () => {
    const bare = ownerTexts[1].replaceAll('-', '');
    for (const [bad, at] of [['U', 1], ['u', 7], ['*', 104], ['é', 50], ['🔑', 20], ['ı', 3], ['ſ', 9]]) {
      const text = bare.slice(0, at - 1) + bad + bare.slice(at);
      await assert.rejects(sh.readShare(text, 2), (e) => isShareError('alphabet', 2)(e) && e.message.includes(`"${bad === 'u' ? 'U' : bad}"`) && e.message.includes(`character ${at}`));
    }
    // Positions count characters kept after removing separators, and a bad character wins over a bad length.
    await assert.rejects(sh.readShare(`0-0 0\n0U`, 5), (e) => isShareError('alphabet', 5)(e) && e.message.includes('character 5'));
    await assert.rejects(sh.readShare('U'), isShareError('alphabet', null));
  });

  it('refuses a length other than 104 and a mistyped character', async () => {
    const bare = ownerTexts[2].replaceAll('-', '');
    for (const text of ['', bare.slice(1), `${bare}0`, bare + bare]) await assert.rejects(sh.readShare(text, 4), isShareError('length', 4));
    for (let at = 0; at < 104; at += 7) {
      const c = bare[at] === 'Z' ? 'Y' : ABC[ABC.indexOf(bare[at]) + 1];
      await assert.rejects(sh.readShare(bare.slice(0, at) + c + bare.slice(at + 1), 3), isShareError('checksum', 3));
    }
    const i = [...bare].findIndex((c, j) => c !== bare[j + 1]);
    const swapped = bare.slice(0, i) + bare[i + 1] + bare[i] + bare.slice(i + 2);
    await assert.rejects(sh.readShare(swapped, 1), isShareError('checksum', 1));
  });

  it('refuses, after the checksum and in this order, a bad version, threshold and index', async () => {
    const ok = { setId: 'a1b2c3d4', threshold: 3, index: 2, keyCheck: random(4), data: random(48) };
    for (const version of [0, 2, 255]) await assert.rejects(sh.readShare(shareText({ ...ok, version }), 1), isShareError('version', 1));
    for (const threshold of [0, 1, 17, 255]) await assert.rejects(sh.readShare(shareText({ ...ok, threshold }), 2), isShareError('threshold', 2));
    for (const index of [0, 17, 255]) await assert.rejects(sh.readShare(shareText({ ...ok, index }), 3), isShareError('index', 3));
    await sh.readShare(shareText({ ...ok, threshold: 16, index: 16 }));
    await sh.readShare(shareText({ ...ok, threshold: 2, index: 1 }));
    // Order: checksum, version, threshold, index.
    const all = shareText({ ...ok, version: 2, threshold: 1, index: 0 });
    await assert.rejects(sh.readShare(all.replace(/^0/, '1')), isShareError('checksum', null));
    await assert.rejects(sh.readShare(all), isShareError('version', null));
    await assert.rejects(sh.readShare(shareText({ ...ok, threshold: 1, index: 0 })), isShareError('threshold', null));
    // An index above the threshold is fine: only 0 and > 16 are refused.
    assert.equal((await sh.readShare(shareText({ ...ok, threshold: 2, index: 9 }))).index, 9);
  });
});

describe('splitting and rebuilding', () => {
  it('splits a key into canonical shares of one set that carry the key check', async () => {
    assert.match(ownerSplit.setId, /^[0-9a-f]{8}$/);
    assert.equal(ownerSplit.threshold, 3);
    assert.deepEqual(ownerSplit.shares.map((s) => s.index), [1, 2, 3, 4, 5]);
    const keyCheck = await keyCheckOf(owner.publicJwk);
    for (const { index, text } of ownerSplit.shares) {
      assert.match(text, CANONICAL);
      const read = await sh.readShare(text);
      assert.deepEqual({ ...read, data: null }, { text, setId: ownerSplit.setId, threshold: 3, index, keyCheck: Uint8Array.from(keyCheck), data: null });
    }
    const again = await sh.splitKey(owner.privateJwk, { threshold: 3, shares: 5 });
    assert.notEqual(again.setId, ownerSplit.setId);
    assert.notEqual(again.shares[0].text, ownerSplit.shares[0].text);
    assert.ok(owner.privateJwk.d, 'splitKey leaves the caller’s JWK alone');
  });

  it('rebuilds the key from every subset of k or more shares, in any order', async () => {
    for (const size of [3, 4, 5]) {
      for (const subset of subsets(ownerTexts, size)) {
        for (const order of [subset, [...subset].reverse()]) {
          const rebuilt = await rebuild(order, { publicJwk: owner.publicJwk });
          assert.deepEqual(rebuilt.privateJwk, owner.privateJwk);
          assert.deepEqual(rebuilt.publicJwk, owner.publicJwk);
          assert.equal(rebuilt.kid, ownerKid);
        }
      }
    }
    const read = await Promise.all(ownerTexts.map((t, i) => sh.readShare(t, i + 1)));
    assert.equal((await sh.rebuildKey([read[4], read[1], read[0]])).privateJwk.d, owner.privateJwk.d);
  });

  it('rebuilds 2-of-2, 2-of-16 and 16-of-16 splits', async () => {
    for (const [threshold, shares] of [[2, 2], [2, 16], [16, 16]]) {
      const split = await sh.splitKey(owner.privateJwk, { threshold, shares });
      const texts = split.shares.map((s) => s.text);
      for (const subset of threshold === 2 ? subsets(texts, 2) : [texts]) assert.equal((await rebuild(subset)).kid, ownerKid);
      await assert.rejects(rebuild(texts.slice(0, threshold - 1)), isShareError('too-few', null));
    }
  });

  it('interpolates any k of n points back to the secret, and k - 1 points do not give it', () => {
    for (let n = 2; n <= 6; n++) {
      for (let k = 2; k <= n; k++) {
        const secret = random(48);
        const points = sh.splitSecret(secret, k, n).map((data, i) => ({ index: i + 1, data }));
        for (const subset of subsets(points, k)) {
          assert.deepEqual(sh.combineSecret(subset), secret);
          for (const p of points) assert.deepEqual(sh.combineSecret(subset, p.index), p.data, 'every share lies on the polynomials');
        }
        for (const subset of subsets(points, k - 1)) if (k > 2) assert.notDeepEqual(sh.combineSecret(subset), secret);
      }
    }
  });

  it('leaves every secret byte possible given k - 1 shares (k = 3)', () => {
    // For k = 3 and any two shares, every candidate secret byte fits exactly one polynomial: nothing is ruled out.
    const points = sh.splitSecret(new Uint8Array([0x42]), 3, 3).map((data, i) => ({ index: i + 1, data }));
    const pair = points.slice(0, 2);
    const thirds = new Set();
    for (let s = 0; s < 256; s++) thirds.add(sh.combineSecret([{ index: 0, data: new Uint8Array([s]) }, ...pair], 3)[0]);
    assert.equal(thirds.size, 256);
  });

  it('draws coefficients from all 256 values: with k = 2 a share byte equals the secret byte about once in 256', () => {
    const SPLITS = 20_000;
    const secret = Uint8Array.from({ length: 48 }, (_, j) => (j * 37 + 11) & 255);
    const trials = SPLITS * secret.length;
    const p = 1 / 256;
    const mean = trials * p;
    const bound = 5 * Math.sqrt(trials * p * (1 - p));
    const count = (split) => {
      const equal = [0, 0, 0];
      for (let n = 0; n < SPLITS; n++) {
        const shares = split(secret);
        for (let x = 0; x < 3; x++) for (let j = 0; j < secret.length; j++) equal[x] += shares[x][j] === secret[j];
      }
      return equal;
    };
    for (const [x, equal] of count((s) => sh.splitSecret(s, 2, 3)).entries()) {
      assert.ok(Math.abs(equal - mean) <= bound, `share ${x + 1}: ${equal} equal bytes, expected ${mean} ± ${bound.toFixed(0)}`);
    }
    // The same statistic catches coefficients drawn from 1..255 (RUSTSEC-2024-0398): they never equal the secret.
    const biased = (s) => {
      const a = random(s.length);
      return [1, 2, 3].map((x) => s.map((b, j) => b ^ sh.gfMul(1 + (a[j] % 255), x)));
    };
    for (const equal of count(biased)) assert.ok(Math.abs(equal - mean) > bound);
  });

  it('refuses bad thresholds and share counts with a RangeError, and a bad private key', async () => {
    for (const options of [{ threshold: 1, shares: 3 }, { threshold: 0, shares: 3 }, { threshold: 4, shares: 3 }, { threshold: 2, shares: 17 }, { threshold: 17, shares: 17 }, { threshold: 2.5, shares: 3 }, { threshold: '2', shares: 3 }, {}]) {
      await assert.rejects(sh.splitKey(owner.privateJwk, options), RangeError, JSON.stringify(options));
    }
    const short = b64.encode(b64.decode(owner.privateJwk.d).subarray(1));
    const long = b64.encode(new Uint8Array([0, ...b64.decode(owner.privateJwk.d)]));
    for (const d of [short, long, b64.encode(new Uint8Array(48)), b64.encode(hexBytes(ORDER_HEX)), other.privateJwk.d]) {
      await assert.rejects(sh.splitKey({ ...owner.privateJwk, d }, { threshold: 2, shares: 3 }), TypeError);
    }
    await assert.rejects(sh.splitKey(owner.publicJwk, { threshold: 2, shares: 3 }), TypeError);
  });
});

describe('rebuilding refuses', () => {
  const keyCheck = () => keyCheckOf(owner.publicJwk);

  it('a share that fails on its own, with its entry position', async () => {
    const bad = `${ownerTexts[2].slice(0, -1)}${ownerTexts[2].endsWith('0') ? '1' : '0'}`;
    await assert.rejects(rebuild([ownerTexts[0], ownerTexts[1], bad]), isShareError('checksum', 3));
    await assert.rejects(rebuild([ownerTexts[0], `U${ownerTexts[1].slice(1)}`, bad]), isShareError('alphabet', 2));
  });

  it('mixed sets: another set id, threshold or key check than share 1', async () => {
    const other3 = (await sh.splitKey(owner.privateJwk, { threshold: 3, shares: 5 })).shares.map((s) => s.text);
    await assert.rejects(rebuild([ownerTexts[0], ownerTexts[1], other3[2]]), isShareError('mixed-sets', 3));
    const read = await sh.readShare(ownerTexts[1]);
    for (const change of [{ setId: 'ffffffff' }, { threshold: 4 }, { keyCheck: new Uint8Array(4) }]) {
      const forged = shareText({ ...read, ...change });
      await assert.rejects(rebuild([ownerTexts[0], forged, ownerTexts[2], ownerTexts[3]]), isShareError('mixed-sets', 2), JSON.stringify(change));
    }
    // Mixed sets are found before a duplicate index that comes earlier.
    await assert.rejects(rebuild([ownerTexts[0], ownerTexts[0], other3[2]]), isShareError('mixed-sets', 3));
  });

  it('a duplicate index, naming both positions', async () => {
    await assert.rejects(rebuild([ownerTexts[1], ownerTexts[0], ownerTexts[2], ownerTexts[0]]), (e) => isShareError('duplicate-index', 4)(e) && /\b2\b/.test(e.message));
    // A duplicate is found before too few shares.
    await assert.rejects(rebuild([ownerTexts[3], ownerTexts[3]]), isShareError('duplicate-index', 2));
  });

  it('too few shares', async () => {
    await assert.rejects(rebuild(ownerTexts.slice(0, 2)), isShareError('too-few', null));
    await assert.rejects(rebuild([]), isShareError('too-few', null));
  });

  it('an extra share off the polynomials, naming it', async () => {
    const read = await sh.readShare(ownerTexts[3]);
    const data = read.data.slice();
    data[47] ^= 1;
    const altered = shareText({ ...read, data });
    await assert.rejects(rebuild([...ownerTexts.slice(0, 3), altered]), isShareError('inconsistent', 4));
    await assert.rejects(rebuild([...ownerTexts.slice(0, 3), ownerTexts[4], altered]), isShareError('inconsistent', 5));
    // When an altered share is among the first k, the first good extra share is the one that no longer fits.
    await assert.rejects(rebuild([ownerTexts[0], altered, ownerTexts[2], ownerTexts[4]]), isShareError('inconsistent', 4));
  });

  it('a rebuilt value that is not a P-384 scalar (0, the order, 2^384 - 1)', async () => {
    for (const secret of [new Uint8Array(48), hexBytes(ORDER_HEX), new Uint8Array(48).fill(255)]) {
      await assert.rejects(rebuild(forgedSet(secret, await keyCheck()).slice(1, 4)), isShareError('not-a-key', null));
    }
  });

  it('a key whose thumbprint does not start with the key check', async () => {
    const forged = forgedSet(b64.decode(other.privateJwk.d), await keyCheck());
    await assert.rejects(rebuild(forged.slice(0, 3), { publicJwk: owner.publicJwk }), isShareError('key-check', null));
    // A forged set with the other key's own key check rebuilds that key; a wrong first share breaks the key check.
    const fine = forgedSet(b64.decode(other.privateJwk.d), await keyCheckOf(other.publicJwk));
    assert.equal((await rebuild(fine.slice(2))).privateJwk.d, other.privateJwk.d);
    const read = await sh.readShare(fine[0]);
    const data = read.data.slice();
    data[0] ^= 0x80;
    await assert.rejects(rebuild([shareText({ ...read, data }), fine[1], fine[2]]), (e) => ['key-check', 'not-a-key'].includes(e.code));
  });

  it('the key of another owner when the public key is given', async () => {
    await assert.rejects(rebuild(ownerTexts.slice(0, 3), { publicJwk: other.publicJwk }), isShareError('wrong-key', null));
    assert.equal((await rebuild(ownerTexts.slice(0, 3), { publicJwk: owner.publicJwk })).kid, ownerKid);
  });
});

// Fixtures shared with the Rust implementation (same field names both ways).

const JS_FIXTURE = 'js-shares.json';

/** Checks a shares fixture: canonical texts of one set, and every k-subset rebuilds private_jwk and kid. */
async function checkFixture(fixture, name) {
  for (const field of ['description', 'private_jwk', 'kid', 'set_id', 'threshold', 'shares']) assert.ok(field in fixture, `${name} has no ${field}`);
  const publicJwk = wk.toPublicJwk(fixture.private_jwk);
  assert.equal(await wk.jwkThumbprint(publicJwk), fixture.kid);
  const keyCheck = await keyCheckOf(publicJwk);
  for (const [i, text] of fixture.shares.entries()) {
    const read = await sh.readShare(text, i + 1);
    assert.equal(read.text, text, 'the fixture holds canonical texts');
    assert.equal(read.setId, fixture.set_id);
    assert.equal(read.threshold, fixture.threshold);
    assert.deepEqual(read.keyCheck, Uint8Array.from(keyCheck));
  }
  const all = subsets(fixture.shares, fixture.threshold);
  assert.ok(all.length >= 10);
  for (const subset of all) {
    const rebuilt = await rebuild(subset, { publicJwk });
    assert.equal(rebuilt.privateJwk.d, fixture.private_jwk.d);
    assert.equal(rebuilt.kid, fixture.kid);
  }
  assert.equal((await rebuild(fixture.shares)).kid, fixture.kid);
}

async function writeJsFixture() {
  const rust = readVector('rust-wrapped-key.json');
  const privateJwk = { ...rust.public_jwk, d: rust.d };
  const split = await sh.splitKey(privateJwk, { threshold: 3, shares: 5 });
  const fixture = {
    description:
      'Recovery shares (docs/shares.md) of the key of rust-wrapped-key.json, made by static/js/shares.mjs (WebCrypto), read by the Rust tests. Any 3 rebuild the key. Test data only. Regenerate with `npm run fixtures`.',
    private_jwk: privateJwk,
    kid: await wk.jwkThumbprint(privateJwk),
    set_id: split.setId,
    threshold: split.threshold,
    shares: split.shares.map((s) => s.text),
  };
  writeFileSync(vectorPath(JS_FIXTURE), `${JSON.stringify(fixture, null, 2)}\n`);
}

test('the committed JS shares fixture still rebuilds from every 3 of its 5 shares', async () => {
  if (process.env.SITEID_WRITE_FIXTURES === '1' || !existsSync(vectorPath(JS_FIXTURE))) {
    assert.equal(process.env.SITEID_WRITE_FIXTURES, '1', `tests/vectors/${JS_FIXTURE} is missing: run \`npm run fixtures\` and commit it`);
    await writeJsFixture();
  }
  const fixture = readVector(JS_FIXTURE);
  const rust = readVector('rust-wrapped-key.json');
  assert.deepEqual(fixture.private_jwk, { ...rust.public_jwk, d: rust.d }, 'the JS fixture shares the key of rust-wrapped-key.json');
  assert.equal(fixture.shares.length, 5);
  assert.equal(fixture.threshold, 3);
  await checkFixture(fixture, JS_FIXTURE);
});

test('the Rust shares fixture rebuilds here from every k-subset', async () => {
  const fixture = readVector(
    'rust-shares.json',
    'The Rust fixture is missing: the Rust implementation must generate it (same fields as js-shares.json: description, private_jwk, kid, set_id, threshold, shares).',
  );
  await checkFixture(fixture, 'rust-shares.json');
});

test('every case of shares-invalid.json gives the same code and position here', async () => {
  const { cases } = readVector(
    'shares-invalid.json',
    'tests/vectors/shares-invalid.json is missing: run `SITEID_WRITE_FIXTURES=1 cargo test cross_fixtures`.',
  );
  assert.ok(cases.length >= 15);
  for (const { description, shares, public_jwk: publicJwk, code, position } of cases) {
    const run = rebuild(shares, { publicJwk });
    if (code === null || code === undefined) await run;
    else await assert.rejects(run, isShareError(code, position ?? null), description);
  }
});

test('the BigInt fallback computes the same public key as WebCrypto', async () => {
  const { multiplyBase } = sh;
  const order = 0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n;
  const toB64 = (n) => Buffer.from(n.toString(16).padStart(96, '0'), 'hex').toString('base64url');
  const [gx, gy] = multiplyBase(1n);
  const [nx, ny] = multiplyBase(order - 1n);
  assert.equal(nx, gx, '(n-1)·G = -G has the x of G');
  assert.equal(ny, 2n ** 384n - 2n ** 128n - 2n ** 96n + 2n ** 32n - 1n - gy, 'and the negated y');
  for (let i = 0; i < 8; i++) {
    const pair = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-384' }, true, ['sign']);
    const jwk = await crypto.subtle.exportKey('jwk', pair.privateKey);
    const d = BigInt(`0x${Buffer.from(jwk.d, 'base64url').toString('hex')}`);
    const [x, y] = multiplyBase(d);
    assert.deepEqual([toB64(x), toB64(y)], [jwk.x, jwk.y]);
  }
});

test('rebuilding works in an engine that refuses PKCS#8 without a public key', async () => {
  const fixture = readVector('rust-shares.json', 'run `SITEID_WRITE_FIXTURES=1 cargo test cross_fixtures`');
  const { subtle } = crypto;
  const importKey = subtle.importKey;
  let refused = 0;
  subtle.importKey = function (format, ...rest) {
    if (format === 'pkcs8') {
      refused++;
      return Promise.reject(new DOMException('unsupported', 'NotSupportedError'));
    }
    return importKey.call(this, format, ...rest);
  };
  try {
    const shares = await Promise.all(fixture.shares.slice(0, 3).map((text, i) => sh.readShare(text, i + 1)));
    const { kid, privateJwk } = await sh.rebuildKey(shares);
    assert.ok(refused > 0, 'the PKCS#8 import was tried and refused');
    assert.equal(kid, fixture.kid);
    assert.equal(privateJwk.d, fixture.private_jwk.d);
  } finally {
    subtle.importKey = importKey;
  }
});
