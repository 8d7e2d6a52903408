// Recovery shares in Chromium against the real node: the owner splits the key into a 3-of-5 set on printable
// cards, too few or mistyped shares change nothing, three shares recover the key with a new password on a new
// device, and a deleted node's identity comes back from shares onto a new data dir with the same key.

import { existsSync } from 'node:fs';
import { expect, test } from '@playwright/test';
import { readShare, rebuildKey, splitKey } from '../../static/js/shares.mjs';
import { generateOwnerKey } from '../../static/js/wrapped-key.mjs';
import { CSP, databases, shot, startNode, storedKeys, watch } from './helpers.mjs';

const PASSWORD = 'velvet compass harbour drizzle 31';
const NEW_PASSWORD = 'copper lantern meadow quartz 58';
const RESTORED_PASSWORD = 'juniper atlas pylon biscuit 26';
const FRIENDS = ['Alice', 'Bob', 'Carol', 'Dan', 'Eve'];
const SHARE = /^([0-9A-HJKMNP-TV-Z]{4}-){25}[0-9A-HJKMNP-TV-Z]{4}$/;
const PHONE = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true };

test.describe.configure({ mode: 'serial' });

let node;
let kid;
let setId;
let shares = [];
const contexts = [];
const problems = [];

async function open(browser, options = {}) {
  const context = await browser.newContext(options);
  contexts.push(context);
  return watch(await context.newPage(), problems);
}

/** Enters a share on /recover or the setup page's restore form. */
async function enter(page, text) {
  await page.fill('#share', text);
  await page.press('#share', 'Enter');
}

/** The page came with the CSP and holds no inline script, handler or style, and no field without a label. */
async function expectClean(page, response) {
  expect(response.headers()['content-security-policy']).toBe(CSP);
  const found = await page.evaluate(() =>
    [...document.querySelectorAll('*')].flatMap((e) => [
      ...(e.localName === 'script' && !e.src ? ['an inline script'] : []),
      ...[...e.attributes].filter((a) => a.name === 'style' || a.name.startsWith('on')).map((a) => `${e.localName}[${a.name}]`),
      ...(/^(input|textarea)$/.test(e.localName) && !e.labels.length ? [`#${e.id} without a label`] : []),
    ]),
  );
  expect(found).toEqual([]);
}

/** The message of the codec's refusal (checked to be of this code and share position), which the page must show as it is. */
async function refusal(promise, code, position) {
  const error = await promise.then(() => null, (e) => e);
  expect({ code: error?.code, position: error?.position }).toEqual({ code, position });
  return error.message;
}
const read = (texts) => Promise.all(texts.map((text, i) => readShare(text, i + 1)));

/** How far the page sticks out sideways (0 or less when it fits). */
const sideways = (page) => page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);

/** What a wrong turn could have changed on the node: the wrapped key's salt and the audit log. */
async function nodeState(request) {
  const { p2s } = await (await request.get(`${node.base}/api/v1/unlock`)).json();
  return { p2s, audit: await node.audit() };
}

test.beforeAll(async () => {
  node = await startNode();
  kid = await node.init(PASSWORD);
});

test.afterEach(async ({}, testInfo) => {
  if (testInfo.status !== testInfo.expectedStatus) {
    for (const [i, context] of contexts.entries()) for (const page of context.pages()) await shot(page, testInfo, `failure-${i}`).catch(() => {});
  }
  expect(problems.splice(0), 'no uncaught errors, CSP violations or console errors in any page').toEqual([]);
});

test.afterAll(async () => {
  for (const context of contexts) await context.close();
  await node?.stop();
});

/** Collects the request bodies a page sends. */
function bodiesOf(page) {
  const sent = [];
  page.on('request', (r) => sent.push(r.postData() ?? ''));
  return sent;
}

/** Zero knowledge: no body carries a private JWK member or any part of a share's data. */
function expectNoSecrets(sent, texts) {
  const compact = (text) => text.replaceAll('-', '').toUpperCase();
  expect(sent.length).toBeGreaterThan(0);
  for (const body of sent) {
    expect(body).not.toMatch(/"d"\s*:/);
    for (const text of texts) expect(compact(body)).not.toContain(compact(text).slice(20, 44));
  }
}

test('the owner makes a 3-of-5 set of shares on printable cards', async ({ browser, request }, testInfo) => {
  const page = await open(browser);
  const sent = [];
  page.on('request', (r) => sent.push(r.postData() ?? ''));
  await page.goto(`${node.base}/login`);
  await page.fill('#password', PASSWORD);
  await page.click('#unlock-submit');
  await expect(page).toHaveURL(`${node.base}/account`, { timeout: 30_000 });
  await page.click('text=Make or review recovery shares');
  await expect(page).toHaveURL(`${node.base}/account/recovery`);
  await expectClean(page, await page.reload());
  await expect(page.locator('#sets')).toHaveText('None yet.');
  await expect(page.locator('#threshold')).toHaveValue('3');
  await expect(page.locator('#count')).toHaveValue('5');
  await expect(page.locator('#labels input')).toHaveCount(5);
  await expect(page.locator('#split-section')).toContainText('until the key itself is replaced');
  await expect(page.locator('#split-section')).toContainText('Changing your password does not invalidate');
  for (const [i, name] of FRIENDS.entries()) await page.getByLabel(`Friend ${i + 1}`, { exact: true }).fill(name);

  await page.fill('#password', 'not my password, sorry');
  await page.click('#split-submit');
  await expect(page.locator('#error')).toHaveText('Wrong password. No shares were made.', { timeout: 30_000 });
  await expect(page.locator('#cards-section')).toBeHidden();

  await page.fill('#password', PASSWORD);
  await page.click('#split-submit');
  await expect(page.locator('.card')).toHaveCount(5, { timeout: 30_000 });
  await expect(page.locator('#error')).toBeHidden();
  await expect(page.locator('#password')).toHaveValue('');
  shares = await page.locator('.card .share').allTextContents();
  for (const text of shares) expect(text).toMatch(SHARE);
  expect(new Set(shares).size).toBe(5);
  setId = await page.locator('.card code').first().textContent();
  expect(setId).toMatch(/^[0-9a-f]{8}$/);
  const second = page.locator('.card').nth(1);
  await expect(second).toContainText('Recovery share for Bob');
  await expect(second).toContainText(`Share 2 of 5 in set ${setId}`);
  await expect(second).toContainText('Any 3 shares of this set rebuild');
  await expect(second).toContainText(`${node.base}/recover`);
  await expect(second).toContainText('safe and private');
  await expect(page.locator('#sets li')).toHaveCount(1);
  await expect(page.locator('#sets li')).toContainText(`Set ${setId}: any 3 of 5 (Alice, Bob, Carol, Dan, Eve)`);
  await shot(page, testInfo, 'recovery-cards');

  // The node knows the set's metadata, and no share ever left the page.
  const token = await page.evaluate(() => sessionStorage.getItem('siteid.access_token'));
  const answer = await request.get(`${node.base}/api/v1/recovery/sets`, { headers: { authorization: `Bearer ${token}` } });
  expect((await answer.json()).sets).toEqual([expect.objectContaining({ set_id: setId, threshold: 3, shares: 5, labels: FRIENDS, kid })]);
  for (const body of sent) for (const text of shares) expect(body).not.toContain(text.slice(0, 24));
  expect(await node.audit()).toContain('recovery.set_created');

  // Printed, only the cards show, one to a page.
  await page.emulateMedia({ media: 'print' });
  await expect(page.locator('nav')).toBeHidden();
  await expect(page.locator('#split-form')).toBeHidden();
  await expect(page.locator('#print')).toBeHidden();
  await expect(page.locator('#sets')).toBeHidden();
  await expect(page.locator('.card').first()).toBeVisible();
  expect(await page.locator('.card').first().evaluate((card) => getComputedStyle(card).breakAfter)).toBe('page');
  await shot(page, testInfo, 'recovery-print');
  const pdf = (await page.pdf({ format: 'A4' })).toString('latin1');
  expect(pdf.match(/\/Type\s*\/Page\b/g), 'one card a page').toHaveLength(5);
  await page.emulateMedia({ media: 'screen' });

  await page.setViewportSize(PHONE.viewport);
  expect(await sideways(page), 'nothing sticks out sideways on a phone').toBeLessThanOrEqual(0);
  await shot(page, testInfo, 'recovery-phone');
});

test('two shares of three, or a repeated, mistyped or foreign share give the right message and change nothing', async ({ browser, request }, testInfo) => {
  const before = await nodeState(request);
  const page = await open(browser);
  await page.goto(`${node.base}/login`);
  await page.click('text=Forgot your password?');
  await expect(page).toHaveURL(`${node.base}/recover`);
  await expectClean(page, await page.reload());
  await expect(page.locator('#share')).toBeFocused();

  await enter(page, shares[0].toLowerCase().replaceAll('-', ' '));
  await expect(page.locator('#status')).toContainText('1 of the 3 needed. Enter 2 more.');
  await expect(page.locator('#shares li')).toHaveCount(1);
  await expect(page.locator('#share')).toHaveValue('');

  await enter(page, shares[0]);
  await expect(page.locator('#error')).toHaveText(await refusal(rebuildKey(await read([shares[0], shares[0]])), 'duplicate-index', 2));
  await expect(page.locator('#shares li')).toHaveCount(1);

  // One character changed: the checksum catches it and names the share.
  const typo = shares[1].replace(/^(.{10})(.)/, (_, head, c) => head + (c === '7' ? '8' : '7'));
  await enter(page, typo);
  await expect(page.locator('#error')).toHaveText(await refusal(readShare(typo, 2), 'checksum', 2));
  await expect(page.locator('#shares li')).toHaveCount(1);
  await expect(page.locator('#share')).toHaveValue(typo);
  await shot(page, testInfo, 'recover-typo');

  // A share of another key's set.
  const { privateJwk } = await generateOwnerKey();
  const foreign = (await splitKey(privateJwk, { threshold: 3, shares: 3 })).shares.map((share) => share.text);
  await enter(page, foreign[0]);
  await expect(page.locator('#error')).toHaveText(await refusal(rebuildKey(await read([shares[0], foreign[0]])), 'mixed-sets', 2));

  await enter(page, shares[1]);
  await expect(page.locator('#status')).toContainText('2 of the 3 needed. Enter 1 more.');
  await expect(page.locator('#error')).toBeHidden();
  await expect(page.locator('#shares li')).toHaveCount(2);
  await expect(page.locator('#password-form')).toBeHidden();
  await shot(page, testInfo, 'recover-two-of-three');

  // Removed, the shares make room for a whole set of another key, which the node's JWKS key refuses.
  await page.click('#shares li:first-child button');
  await page.click('#shares li:first-child button');
  await expect(page.locator('#shares li')).toHaveCount(0);
  await expect(page.locator('#share-label')).toHaveText('Share 1');
  for (const text of foreign) await enter(page, text);
  const publicJwk = (await (await request.get(`${node.base}/.well-known/jwks.json`)).json()).keys[0];
  await expect(page.locator('#error')).toHaveText(await refusal(rebuildKey(await read(foreign), { publicJwk }), 'wrong-key', null));
  await expect(page.locator('#shares li')).toHaveCount(2);
  await expect(page.locator('#password-form')).toBeHidden();

  expect(await nodeState(request)).toEqual(before);
  expect(await databases(page)).toEqual([]);
  expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
});

test('three shares recover the key on a new phone with a new password; the old password stops working', async ({ browser }, testInfo) => {
  const page = await open(browser, PHONE);
  const sent = bodiesOf(page);
  await page.goto(`${node.base}/recover`);
  for (const text of [shares[4], shares[0], shares[2]]) await enter(page, text);
  await expect(page.locator('#password-form')).toBeVisible();
  await expect(page.locator('#new-password')).toBeFocused();
  await expect(page.locator('#share-form')).toBeHidden();
  // As the issue orders it: rebuilt and checked, then signed in, then the new password.
  await expect(page.locator('#status')).toContainText('Signed in with your rebuilt key');
  expect(await page.evaluate(() => sessionStorage.length), 'a session before the password is set').toBe(1);

  await page.fill('#new-password', 'password1234');
  await page.fill('#new-password-again', 'password1234');
  await page.click('#password-submit');
  await expect(page.locator('#error')).toContainText('too easy to guess');
  await page.fill('#new-password', NEW_PASSWORD);
  await expect(page.locator('#new-strength')).toContainText('strong');
  await page.fill('#new-password-again', NEW_PASSWORD);
  await page.click('#password-submit');
  await expect(page.locator('#recover-done')).toBeVisible({ timeout: 30_000 });
  await expect(page.locator('#error')).toBeHidden();
  expectNoSecrets(sent, shares);
  const stored = await storedKeys(page);
  expect(stored).toHaveLength(1);
  expect(stored[0]).toMatchObject({ kind: 'device', key: { type: 'private', extractable: false, usages: ['sign'] } });
  expect(stored[0].kid, 'the phone keeps a device key, not the rebuilt owner key').not.toBe(kid);
  expect(await sideways(page), 'nothing sticks out sideways on a phone').toBeLessThanOrEqual(0);
  await shot(page, testInfo, 'recover-done');

  await page.click('text=Go to your account');
  await expect(page).toHaveURL(`${node.base}/account`);
  await expect(page.locator('#sessions li.current')).toContainText('this device');
  await expect(page.locator('#audit tbody')).toContainText('owner.recovered');
  await expect(page.locator('#audit tbody')).toContainText(`recovery set: ${setId}`);

  // Another new device: the old password no longer unlocks, the new one does.
  const other = await open(browser);
  await other.goto(`${node.base}/login`);
  await other.fill('#password', PASSWORD);
  await other.click('#unlock-submit');
  await expect(other.locator('#error')).toContainText('Wrong password', { timeout: 30_000 });
  await other.fill('#password', NEW_PASSWORD);
  await other.click('#unlock-submit');
  await expect(other).toHaveURL(`${node.base}/account`, { timeout: 30_000 });

  // The shares stay valid for the key: the set is still listed as current.
  await other.goto(`${node.base}/account/recovery`);
  await expect(other.locator('#sets li')).toHaveText(new RegExp(`^Set ${setId}: any 3 of 5 .*\\.$`));
});

test("a deleted node's identity is restored from shares onto a new data dir, with the same key", async ({ browser, request }, testInfo) => {
  const before = (await (await request.get(`${node.base}/.well-known/jwks.json`)).json()).keys.find((k) => k.use === 'sig');
  expect(before.kid).toBe(kid);
  const oldDir = node.dataDir;
  // The old node's pages would keep reconnecting to it.
  for (const context of contexts.splice(0)) await context.close();
  await node.stop();
  expect(existsSync(oldDir)).toBe(false);

  node = await startNode();
  const page = await open(browser);
  const sent = bodiesOf(page);
  await page.goto(`${node.base}/setup#${await node.claimToken()}`);
  await page.click('#restore');
  await expect(page.locator('#share')).toBeFocused();
  await expect(page.locator('#setup-form')).toBeHidden();
  await enter(page, shares[1]);
  await enter(page, shares[3]);
  await expect(page.locator('#status')).toContainText('Enter 1 more.');
  await shot(page, testInfo, 'setup-restore-shares');
  await enter(page, shares[4]);
  await expect(page.locator('#setup-form')).toBeVisible();
  await expect(page.locator('#status')).toContainText(`Your shares rebuilt the key ${kid}`);
  await expect(page.locator('#setup-submit')).toHaveText('Restore my identity');
  await page.fill('#password', RESTORED_PASSWORD);
  await page.fill('#password-again', RESTORED_PASSWORD);
  await page.click('#setup-submit');
  await expect(page.locator('#setup-done')).toBeVisible({ timeout: 30_000 });
  await expect(page.locator('#setup-kid')).toHaveText(kid);
  expectNoSecrets(sent, shares);
  await shot(page, testInfo, 'setup-restored');

  const published = (await (await request.get(`${node.base}/.well-known/jwks.json`)).json()).keys;
  // The restored identity's signing key, beside the new inbox key the claim brought and the new node's own key, which the
  // restored owner key bound.
  const nodeKid = (await (await request.get(`${node.base}/.well-known/siteid/node-key.json`)).json()).kid;
  expect(published.map((k) => k.use).sort()).toEqual(['enc', 'sig', 'sig']);
  const after = published.filter((k) => k.use === 'sig' && k.kid !== nodeKid);
  expect({ kid: after[0].kid, x: after[0].x, y: after[0].y }).toEqual({ kid: before.kid, x: before.x, y: before.y });
  expect((await storedKeys(page))[0]).toMatchObject({ kind: 'device', key: { extractable: false } });
  expect(await node.audit()).toMatch(new RegExp(`owner\\.claimed.*"recovery_set":"${setId}"`));

  await page.click('text=Go to your account');
  await expect(page).toHaveURL(`${node.base}/account`);
  await expect(page.locator('#sessions li.current')).toContainText('this device');
});
