// The owner key lifecycle in Chromium against the real node: A claims and B signs in, A replaces the owner key, B's
// renewed binding keeps it signing in while the old owner key is refused; then the node turns hostile (its answers
// rewritten in flight with page.route, no flag in the product) and B raises the alarm each time and sends nothing that
// would accept the change.

import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect, test } from '@playwright/test';
import * as jose from 'jose';
import { claimProof, loginAssertion } from '../../static/js/jws.mjs';
import { keyStatement } from '../../static/js/key-statement.mjs';
import { deriveUnlock, generateOwnerKey, importSigningKey, jwkThumbprint, unlockParams, unlockSigningKey, wrapPrivateKey } from '../../static/js/wrapped-key.mjs';
import { referenceChain } from '../js/helpers.mjs';
import { ACCEPTING, foreignKey, jwksOf, requestsTo, run, shot, startNode, storedKeys, trustOf, watch } from './helpers.mjs';

const PASSWORD = 'saffron kettle orbit meadow 72';

test.describe.configure({ mode: 'serial' });

let node;
let audience;
let oldKey;
let oldSession;
const kids = {};
const contexts = {};
const pages = {};
const problems = [];

async function open(browser, name) {
  const context = await browser.newContext();
  contexts[name] = context;
  pages[name] = watch(await context.newPage(), problems);
  return pages[name];
}

/** The payload and protected header of a compact JWS verified with npm jose against a public JWK. */
async function verified(compact, jwk) {
  const { payload, protectedHeader } = await jose.compactVerify(compact, await jose.importJWK(jwk, 'ES384'), { algorithms: ['ES384'] });
  return { header: protectedHeader, claims: JSON.parse(new TextDecoder().decode(payload)) };
}

const sha256 = (bytes) => createHash('sha256').update(bytes).digest('base64url');

/** Signs in with an owner key {signingKey, kid} over HTTP, as the old key's holder would; resolves with the status and body. */
async function signInWith(key) {
  const { nonce } = await (await fetch(`${node.base}/api/v1/auth/challenge`, { method: 'POST' })).json();
  const assertion = await loginAssertion(key.signingKey, { audience, nonce, kid: key.kid });
  const response = await fetch(`${node.base}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ assertion }) });
  return { status: response.status, body: await response.json() };
}

/** No request accepted anything, and every request that was not a read is one of those allowed. */
function expectNothingAccepted(seen, allowed) {
  expect(seen.filter((r) => ACCEPTING.test(r))).toEqual([]);
  expect(seen.filter((r) => !r.startsWith('GET ') && !allowed.includes(r))).toEqual([]);
}

/** The alarm fills the page: it names what changed, and nothing of the page it replaced is left to use. */
async function expectAlarm(page, kind, what) {
  await expect(page.locator('#alarm')).toBeVisible({ timeout: 15_000 });
  await expect(page.locator('#app')).toHaveAttribute('data-alarm', kind);
  await expect(page.locator('#alarm-what')).toHaveText(what, { useInnerText: true });
  const visible = await page.locator('#app > *:not([hidden])').evaluateAll((nodes) => nodes.map((n) => n.id || n.localName));
  expect(visible).toEqual(['h1', 'alarm']);
}

/** The device kept what it trusted and its key, whatever the node answered. */
async function expectKept(page, before) {
  expect(await trustOf(page)).toEqual(before.trust);
  expect(await storedKeys(page)).toEqual(before.keys);
}

/** The node answers honestly again: the account page works and shows no alarm. */
async function honestAgain(page) {
  await page.unrouteAll();
  await page.reload();
  await expect(page.locator('#sessions li.current')).toBeVisible();
  await expect(page.locator('#alarm')).toBeHidden();
}

/** Routes the node's JWKS to a foreign key. */
async function publishForeignKey(page, foreign) {
  await page.route('**/.well-known/jwks.json', (route) => route.fulfill({ json: { keys: [jwksOf(foreign)] } }));
}

test.beforeAll(async () => {
  node = await startNode();
});

test.afterEach(async ({}, testInfo) => {
  if (testInfo.status !== testInfo.expectedStatus) {
    for (const [name, page] of Object.entries(pages)) await shot(page, testInfo, `failure-${name}`).catch(() => {});
  }
  expect(problems.splice(0), 'no uncaught errors, CSP violations or console errors in any page').toEqual([]);
});

test.afterAll(async () => {
  for (const context of Object.values(contexts)) await context.close();
  await node?.stop();
});

test('A claims with a genesis statement and a record signature; B signs in with the password; both trust the key', async ({ browser }, testInfo) => {
  const a = await open(browser, 'A');
  await a.goto(`${node.base}/setup#${await node.claimToken()}`);
  await a.fill('#password', PASSWORD);
  await a.fill('#password-again', PASSWORD);
  const [claim] = await Promise.all([a.waitForRequest((r) => r.url().endsWith('/api/v1/owner') && r.method() === 'POST'), a.click('#setup-submit')]);
  await expect(a.locator('#setup-done')).toBeVisible({ timeout: 30_000 });
  audience = await a.locator('#app').getAttribute('data-public-url');
  const body = claim.postDataJSON();
  kids.first = await jwkThumbprint(body.public_key);
  const genesis = await verified(body.statement, body.public_key);
  expect(genesis.header).toEqual({ alg: 'ES384', typ: 'siteid-key-statement+jwt', kid: kids.first });
  expect({ ...genesis.claims, iat: 0 }).toEqual({ new: kids.first, old: null, seq: 0, iat: 0, reason: 'genesis' });
  const record = await verified(body.record, body.public_key);
  expect(record.header).toEqual({ alg: 'ES384', typ: 'siteid-owner-record+jwt', kid: kids.first });
  expect({ ...record.claims, iat: 0 }).toEqual({
    aud: audience,
    sub: kids.first,
    wrapped_key_sha256: sha256(body.wrapped_key),
    verifier_hash: sha256(Buffer.from(body.unlock_verifier, 'base64url')),
    iat: 0,
  });
  expect(await trustOf(a)).toEqual({ kid: kids.first, head: null });

  await a.click('text=Go to your account');
  await expect(a.locator('#sessions li.current')).toBeVisible();
  // Opening the account page takes the audit head as it is (first use).
  await expect.poll(async () => (await trustOf(a)).head?.seq ?? 0).toBeGreaterThan(0);
  const history = await (await fetch(`${node.base}/.well-known/siteid/keys.json`)).json();
  expect(history.keys.map((k) => k.kid)).toEqual([kids.first]);

  const b = await open(browser, 'B');
  await b.goto(`${node.base}/login`);
  await b.fill('#password', PASSWORD);
  await b.click('#unlock-submit');
  await expect(b).toHaveURL(`${node.base}/account`, { timeout: 30_000 });
  await expect(b.locator('#sessions li.current')).toBeVisible();
  expect((await trustOf(b)).kid).toBe(kids.first);
  await expect.poll(async () => (await trustOf(b)).head?.seq ?? 0).toBeGreaterThan(0);
  await shot(b, testInfo, 'account-b');

  // The owner key itself, as its holder can still unwrap it: it signs in before it is replaced.
  const params = await (await fetch(`${node.base}/api/v1/unlock`)).json();
  const unlockKey = await deriveUnlock(PASSWORD, params);
  const unlocked = await fetch(`${node.base}/api/v1/unlock`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ unlock_verifier: unlockKey.unlockVerifier }) });
  oldKey = await unlockSigningKey((await unlocked.json()).wrapped_key, unlockKey);
  expect(oldKey.kid).toBe(kids.first);
  const signedIn = await signInWith(oldKey);
  expect(signedIn.status).toBe(200);
  oldSession = signedIn.body.access_token;

  // A set of recovery shares for the first key.
  await a.goto(`${node.base}/account/recovery`);
  await a.fill('#password', PASSWORD);
  await a.fill('#threshold', '2');
  await a.fill('#count', '2');
  await a.fill('#label-1', 'Alice');
  await a.fill('#label-2', 'Bob');
  await a.click('#split-submit');
  await expect(a.locator('#cards-section')).toBeVisible({ timeout: 30_000 });
  await expect(a.locator('#sets li')).toHaveCount(1);
  await expect(a.locator('#void-prompt')).toBeHidden();
});

test('A replaces the owner key; the history verifies with npm jose; the old key signs nothing in; old shares are void', async ({}, testInfo) => {
  const a = pages.A;
  const sent = [];
  a.on('request', (r) => sent.push(r.postData() ?? ''));
  await a.goto(`${node.base}/account`);
  await expect(a.locator('#sessions li.current')).toBeVisible();
  await a.check('#reason-rotation');
  await a.fill('#rotate-password', PASSWORD);
  await shot(a, testInfo, 'account-rotate');
  const [rotation] = await Promise.all([a.waitForRequest((r) => r.url().endsWith('/api/v1/owner/rotate')), a.click('#rotate-submit')]);
  await expect(a.locator('#status')).toContainText('The owner key is replaced', { timeout: 30_000 });
  await expect(a.locator('#error')).toBeHidden();
  await expect(a.locator('#rotate-done')).toBeVisible();
  await shot(a, testInfo, 'account-rotated');

  const body = rotation.postDataJSON();
  expect(Object.keys(body).sort()).toEqual(['bindings', 'encryption_keys', 'node_key_binding', 'old_unlock_verifier', 'proof', 'public_key', 'record', 'statement', 'unlock_verifier', 'wrapped_key']);
  kids.second = await jwkThumbprint(body.public_key);
  // The inbox's encryption key from the claim, wrapped and bound again by the new key; a routine rotation adds none.
  const encKid = (await (await fetch(`${node.base}/.well-known/jwks.json`)).json()).keys.find((k) => k.use === 'enc').kid;
  expect(body.encryption_keys.map((k) => k.kid)).toEqual([encKid]);
  const encBinding = await verified(body.encryption_keys[0].binding, body.public_key);
  expect(encBinding.header).toEqual({ alg: 'ES384', typ: 'siteid-enc-key+jwt', kid: kids.second });
  expect(kids.second).not.toBe(kids.first);
  const statement = await verified(body.statement, oldKey.publicJwk);
  expect(statement.header).toEqual({ alg: 'ES384', typ: 'siteid-key-statement+jwt', kid: kids.first });
  expect({ ...statement.claims, iat: 0 }).toEqual({ new: kids.second, old: kids.first, seq: 1, iat: 0, reason: 'rotation' });
  const proof = await verified(body.proof, body.public_key);
  expect(proof.header).toEqual({ alg: 'ES384', typ: 'siteid-rotate+jwt' });
  expect(Object.keys(proof.claims).sort()).toEqual(['aud', 'exp', 'iat', 'nonce']);
  expect((await verified(body.record, body.public_key)).claims.wrapped_key_sha256).toBe(sha256(body.wrapped_key));
  expect(JSON.parse(Buffer.from(body.wrapped_key.split('.')[0], 'base64url')).kid).toBe(kids.second);
  // The new key bound the node's own key again in the rotation itself, and the node serves that binding.
  const nodeKey = await (await fetch(`${node.base}/.well-known/siteid/node-key.json`)).json();
  expect(nodeKey.binding).toBe(body.node_key_binding);
  const nodeBinding = await verified(nodeKey.binding, body.public_key);
  expect(nodeBinding.header).toEqual({ alg: 'ES384', typ: 'siteid-node-key+jwt', kid: kids.second });
  expect(nodeBinding.claims).toMatchObject({ aud: node.base, sub: nodeKey.kid });
  // Both browsers' credentials are bound again by the new key.
  expect(body.bindings).toHaveLength(2);
  for (const binding of body.bindings) expect((await verified(binding, body.public_key)).header.kid).toBe(kids.second);
  // Zero knowledge: no request carried a private key member or the password.
  for (const request of sent) {
    expect(request).not.toMatch(/"d"\s*:/);
    expect(request).not.toContain(PASSWORD);
  }

  const jwks = await (await fetch(`${node.base}/.well-known/jwks.json`)).json();
  expect(jwks.keys.map((k) => k.kid)).toEqual([kids.second, encKid, nodeKey.kid]);
  const history = await (await fetch(`${node.base}/.well-known/siteid/keys.json`)).json();
  expect(history.keys.map((k) => k.kid)).toEqual([kids.first, kids.second]);
  expect((await verified(history.keys[0].statement, history.keys[0].jwk)).claims.reason).toBe('genesis');
  expect((await verified(history.keys[1].statement, history.keys[0].jwk)).claims).toMatchObject({ new: kids.second, old: kids.first, seq: 1 });
  await expect(verified(history.keys[1].statement, history.keys[1].jwk)).rejects.toThrow();
  expect((await trustOf(a)).kid).toBe(kids.second);

  expect((await signInWith(oldKey)).status, 'the old owner key signs nothing in').toBe(401);
  const oldSessionNow = await fetch(`${node.base}/api/v1/session`, { headers: { authorization: `Bearer ${oldSession}` } });
  expect(oldSessionNow.status, 'the old owner key’s session ended').toBe(401);
  await expect(a.locator('#audit tbody')).toContainText('owner.rotated');

  await a.goto(`${node.base}/account/recovery`);
  await expect(a.locator('#sets li')).toHaveCount(1);
  await expect(a.locator('#sets li')).toContainText('Void');
  await expect(a.locator('#void-prompt')).toBeVisible();
  await shot(a, testInfo, 'recovery-void');
});

test('B accepts the rotation it can verify and keeps signing in with its renewed binding', async ({}, testInfo) => {
  const b = pages.B;
  const deviceKid = (await storedKeys(b))[0].kid;
  const headBefore = (await trustOf(b)).head;
  await b.reload();
  await expect(b.locator('#sessions li.current')).toBeVisible();
  await expect(b.locator('#alarm')).toBeHidden();
  expect((await trustOf(b)).kid).toBe(kids.second);
  expect((await trustOf(b)).head.seq).toBeGreaterThan(headBefore.seq);
  await b.click('#sign-out');
  await expect(b).toHaveURL(`${node.base}/login`);
  await b.click('#login-button');
  await expect(b).toHaveURL(`${node.base}/account`);
  await expect(b.locator('#sessions li.current')).toBeVisible();
  expect((await storedKeys(b))[0].kid, 'the same device key').toBe(deviceKid);
  await shot(b, testInfo, 'account-b-after-rotation');
});

test('a hostile node with a foreign public key and wrapped key: B raises the alarm at sign-in and accepts nothing', async ({}, testInfo) => {
  const b = pages.B;
  await b.click('#sign-out');
  await expect(b).toHaveURL(`${node.base}/login`);
  const before = { trust: await trustOf(b), keys: await storedKeys(b) };
  const foreign = await foreignKey();
  await publishForeignKey(b, foreign);
  await b.route('**/api/v1/unlock', (route) =>
    route.fulfill({ json: route.request().method() === 'GET' ? { ...unlockParams(foreign.wrappedKey), kid: foreign.kid } : { wrapped_key: foreign.wrappedKey, kid: foreign.kid } }),
  );
  const seen = requestsTo(b, node.base);
  await b.click('#login-button');
  await expectAlarm(b, 'key-swapped', 'The owner key was swapped without a statement.');
  await expect(b.locator('#alarm-detail')).toContainText(foreign.kid);
  await shot(b, testInfo, 'alarm-foreign-key');

  // The owner's password does not open the foreign wrapped key: the alarm stays.
  await b.fill('#alarm-password', PASSWORD);
  await b.click('#alarm-submit');
  await expect(b.locator('#alarm-result')).toContainText('does not open the key', { timeout: 30_000 });
  await expect(b.locator('#alarm')).toBeVisible();
  expectNothingAccepted(seen, ['POST /api/v1/unlock']);
  expect(seen).not.toContain('POST /api/v1/auth/login');
  await expectKept(b, before);

  // Once the node answers honestly again, B signs in as before.
  await b.unrouteAll();
  await b.goto(`${node.base}/login`);
  await expect(b).toHaveURL(`${node.base}/account`);
  await expect(b.locator('#sessions li.current')).toBeVisible();
});

test('a hostile node whose history lacks the statement, or was rewritten: B raises the alarm on the account page', async ({}, testInfo) => {
  const b = pages.B;
  const before = { trust: await trustOf(b), keys: await storedKeys(b) };
  const real = await (await fetch(`${node.base}/.well-known/siteid/keys.json`)).json();
  const foreign = await foreignKey();
  await publishForeignKey(b, foreign);
  await b.route('**/.well-known/siteid/keys.json', (route) =>
    route.fulfill({ json: { keys: [...real.keys, { kid: foreign.kid, jwk: foreign.publicJwk, since: Math.floor(Date.now() / 1000) }] } }),
  );
  let seen = requestsTo(b, node.base);
  await b.reload();
  await expectAlarm(b, 'key-swapped', 'The owner key was swapped without a statement.');
  await expect(b.locator('#alarm-detail')).toContainText('no statement');
  await shot(b, testInfo, 'alarm-history-without-statement');
  expectNothingAccepted(seen, []);

  // A history started afresh by the foreign key, with its own genesis: the key B trusts is gone from it.
  await b.unroute('**/.well-known/siteid/keys.json');
  const genesis = await keyStatement(foreign, { newKid: foreign.kid });
  await b.route('**/.well-known/siteid/keys.json', (route) => route.fulfill({ json: { keys: [{ kid: foreign.kid, jwk: foreign.publicJwk, since: 1, statement: genesis }] } }));
  seen = requestsTo(b, node.base);
  await b.reload();
  await expectAlarm(b, 'history-rewritten', 'The key history was rewritten.');
  await shot(b, testInfo, 'alarm-history-rewritten');
  expectNothingAccepted(seen, []);
  await expectKept(b, before);

  await honestAgain(b);
});

test('a hostile node whose audit chain was rewritten from the start: B raises the alarm at sign-in and on the account page', async ({}, testInfo) => {
  const b = pages.B;
  await b.click('#sign-out');
  await expect(b).toHaveURL(`${node.base}/login`);
  const before = { trust: await trustOf(b), keys: await storedKeys(b) };
  expect(before.trust.head.seq).toBeGreaterThan(3);
  let rewrites = 0;
  await b.route((url) => url.pathname === '/api/v1/audit/chain', async (route) => {
    // The whole real chain, one entry changed at its start and every hash after it recomputed: consistent in itself.
    const entries = [];
    for (let after = 0, more = true, pages = 0; more && pages < 20; pages += 1) {
      const page = await (await route.fetch({ url: `${node.base}/api/v1/audit/chain?after=${after}&limit=500` })).json();
      entries.push(...page.entries);
      more = page.more;
      after = page.head.seq;
      if (page.entries.length) after = page.entries.at(-1).seq;
    }
    expect(entries[0].seq).toBe(1);
    const rewritten = referenceChain(entries.map(({ hash, ...entry }) => (entry.seq === 1 ? { ...entry, at: entry.at - 3600 } : entry)));
    const asked = new URL(route.request().url());
    const after = Number(asked.searchParams.get('after') ?? 0);
    const limit = Number(asked.searchParams.get('limit') ?? 100);
    const page = rewritten.filter((e) => e.seq > after).slice(0, limit);
    const head = rewritten.at(-1);
    rewrites += 1;
    await route.fulfill({ json: { base: null, head: { seq: head.seq, hash: head.hash }, entries: page, more: page.length > 0 && page.at(-1).seq < head.seq } });
  });
  let seen = requestsTo(b, node.base);
  await b.click('#login-button');
  await expectAlarm(b, 'audit-rewritten', 'The audit log was rewritten.');
  await shot(b, testInfo, 'alarm-audit-rewritten');
  expect(rewrites).toBeGreaterThan(0);
  expectNothingAccepted(seen, ['POST /api/v1/auth/challenge', 'POST /api/v1/auth/login']);
  expect(await trustOf(b)).toEqual(before.trust);

  // Signed in, the account page raises it again and asks nothing more of the node.
  seen = requestsTo(b, node.base);
  await b.goto(`${node.base}/account`);
  await expectAlarm(b, 'audit-rewritten', 'The audit log was rewritten.');
  expectNothingAccepted(seen, []);
  await expectKept(b, before);

  await honestAgain(b);
  await expect.poll(async () => (await trustOf(b)).head.seq).toBeGreaterThan(before.trust.head.seq);
});

test('a reset made on the server is a break B raises the alarm about; the owner’s password on B makes B trust it', async ({}, testInfo) => {
  const b = pages.B;
  const before = { trust: await trustOf(b), keys: await storedKeys(b) };
  const passwordFile = path.join(node.dataDir, 'password.txt');
  await writeFile(passwordFile, `${PASSWORD}\n`, { mode: 0o600 });
  const reset = await run(['owner', 'rotate', '--data-dir', node.dataDir, '--password-file', passwordFile, '--reason', 'reset']);
  expect(reset.code, reset.stderr).toBe(0);
  const jwksKid = async () => (await (await fetch(`${node.base}/.well-known/jwks.json`)).json()).keys[0].kid;
  await expect.poll(jwksKid, { message: 'the running node follows the reset' }).not.toBe(kids.second);
  kids.third = await jwksKid();

  const seen = requestsTo(b, node.base);
  await b.reload();
  await expectAlarm(b, 'reset', 'The owner key was reset without the old key’s signature.');
  await expect(b.locator('#alarm-detail')).toContainText(kids.third);
  await shot(b, testInfo, 'alarm-reset');
  expectNothingAccepted(seen, []);
  expect(await trustOf(b)).toEqual(before.trust);

  // "I made this change": the password opens the key the node publishes, so B trusts the node as it is now.
  await b.fill('#alarm-password', PASSWORD);
  await b.click('#alarm-submit');
  await expect(b.locator('#sessions li.current')).toBeVisible({ timeout: 30_000 });
  await expect(b.locator('#alarm')).toBeHidden();
  expect((await trustOf(b)).kid).toBe(kids.third);
  expect(await storedKeys(b)).toEqual(before.keys);
  expectNothingAccepted(seen, ['POST /api/v1/unlock']);
});

test('a node claimed without a key history is signed by the next password change, and then its key can be replaced', async ({ browser }, testInfo) => {
  const legacy = await startNode();
  try {
    // A claim as clients made it before key histories: no statement, no record.
    const { privateJwk, publicJwk } = await generateOwnerKey();
    const { wrappedKey, unlockVerifier } = await wrapPrivateKey({ ...privateJwk }, PASSWORD, { p2c: 210_000 });
    const claimToken = await legacy.claimToken();
    const proof = await claimProof(await importSigningKey(privateJwk), { audience: legacy.base, claimToken });
    const claimed = await fetch(`${legacy.base}/api/v1/owner`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ claim_token: claimToken, public_key: publicJwk, wrapped_key: wrappedKey, unlock_verifier: unlockVerifier, proof }),
    });
    expect(claimed.status).toBe(201);
    const history = async () => (await (await fetch(`${legacy.base}/.well-known/siteid/keys.json`)).json()).keys;
    expect(await history()).toEqual([]);

    const context = await browser.newContext();
    contexts.legacy = context;
    const page = watch(await context.newPage(), problems);
    pages.legacy = page;
    await page.goto(`${legacy.base}/login`);
    await page.fill('#password', PASSWORD);
    await page.click('#unlock-submit');
    await expect(page).toHaveURL(`${legacy.base}/account`, { timeout: 30_000 });
    await expect(page.locator('#app')).toHaveAttribute('data-live', 'true');

    // Replacing the key is refused until the history is signed, before the password is even derived.
    await page.fill('#rotate-password', PASSWORD);
    await page.click('#rotate-submit');
    await expect(page.locator('#error')).toContainText('no signed key history');

    const NEW_PASSWORD = 'granite willow comet parcel 64';
    const [change] = await Promise.all([
      page.waitForRequest((r) => r.url().endsWith('/api/v1/owner/wrapped-key')),
      (async () => {
        await page.fill('#current-password', PASSWORD);
        await page.fill('#new-password', NEW_PASSWORD);
        await page.fill('#new-password-again', NEW_PASSWORD);
        await page.click('#password-submit');
      })(),
    ]);
    await expect(page.locator('#status')).toContainText('Password changed', { timeout: 30_000 });
    const kid = await jwkThumbprint(publicJwk);
    const { claims } = await verified(change.postDataJSON().statement, publicJwk);
    expect(claims).toMatchObject({ new: kid, old: null, seq: 0, reason: 'genesis' });
    expect((await history()).map((k) => k.kid)).toEqual([kid]);

    await page.check('#reason-compromise');
    await page.fill('#rotate-password', NEW_PASSWORD);
    await page.click('#rotate-submit');
    await expect(page.locator('#status')).toContainText('The owner key is replaced', { timeout: 30_000 });
    const keys = await history();
    expect(keys).toHaveLength(2);
    expect((await verified(keys[1].statement, publicJwk)).claims).toMatchObject({ old: kid, seq: 1, reason: 'compromise' });
    expect((await trustOf(page)).kid).toBe(keys[1].kid);
    await shot(page, testInfo, 'legacy-rotated');
  } finally {
    await legacy.stop();
  }
});
