// The owner's journey in Chromium against the real node: claim, unlock on new devices, live sessions, password change, forgetting a device.
// The scenarios run in order on one node and share browser contexts A (claims), B (second device) and C (phone-sized).

import { expect, test } from '@playwright/test';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { databases, run, shot, startNode, storedKeys, watch } from './helpers.mjs';

const PASSWORD = 'Grüße, café ☃ 🔑 correct horse battery';
const NEW_PASSWORD = 'lantern orbit pebble mosaic 47';

test.describe.configure({ mode: 'serial' });

let node;
const contexts = {};
const pages = {};
const problems = [];

async function open(browser, name, options = {}) {
  const context = await browser.newContext(options);
  contexts[name] = context;
  pages[name] = watch(await context.newPage(), problems);
  return pages[name];
}


test.beforeAll(async () => {
  node = await startNode();
});

test.afterEach(async ({}, testInfo) => {
  if (testInfo.status !== testInfo.expectedStatus) {
    for (const [name, page] of Object.entries(pages)) await shot(page, testInfo, `failure-${name}`).catch(() => {});
  }
  const seen = problems.splice(0);
  expect(seen, 'no uncaught errors, CSP violations or console errors in any page').toEqual([]);
});

test.afterAll(async () => {
  for (const context of Object.values(contexts)) await context.close();
  await node?.stop();
});

test('claim in context A and land signed in', async ({ browser, request }, testInfo) => {
  const page = await open(browser, 'A');
  const token = await node.claimToken();
  await page.goto(`${node.base}/setup#${token}`);
  await expect(page, 'the claim token leaves the address bar').toHaveURL(`${node.base}/setup`);
  await expect(page.locator('#setup-submit')).toBeEnabled();
  await shot(page, testInfo, 'setup');

  await page.fill('#password', 'password1234');
  await expect(page.locator('#strength-text')).toContainText('Very weak');
  await page.fill('#password-again', 'password1234');
  await page.click('#setup-submit');
  await expect(page.locator('#error')).toContainText('too easy to guess');
  await shot(page, testInfo, 'setup-weak-password');

  await page.fill('#password', PASSWORD);
  await page.fill('#password-again', PASSWORD);
  await expect(page.locator('#strength-text')).toContainText('Very strong');
  await expect(page.locator('#error')).toBeHidden();
  await page.click('#setup-submit');
  await expect(page.locator('#setup-done')).toBeVisible({ timeout: 30_000 });
  await expect(page.locator('#setup-form-section')).toBeHidden();

  const jwks = await (await request.get(`${node.base}/.well-known/jwks.json`)).json();
  const kid = jwks.keys[0].kid;
  await expect(page.locator('#setup-kid')).toHaveText(kid);
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download-wrapped-key')]);
  expect(download.suggestedFilename()).toBe('siteid-wrapped-key.jwe');
  const jwe = await (await download.createReadStream()).toArray().then((chunks) => Buffer.concat(chunks).toString());
  expect(jwe.split('.')).toHaveLength(5);
  expect(JSON.parse(Buffer.from(jwe.split('.')[0], 'base64url'))).toMatchObject({ alg: 'PBES2-HS512+A256KW', enc: 'A256GCM', p2c: 600000 });
  await shot(page, testInfo, 'setup-done');

  // The browser keeps a key of its own, bound by the owner key, and not the owner key.
  const stored = await storedKeys(page);
  expect(stored).toHaveLength(1);
  expect(stored[0]).toMatchObject({ kind: 'device', members: ['credentialId', 'kid', 'kind', 'publicJwk', 'signingKey'], key: { type: 'private', extractable: false, usages: ['sign'] } });
  expect(stored[0].kid).not.toBe(kid);
  expect(Object.keys(stored[0].publicJwk).sort()).toEqual(['crv', 'kty', 'x', 'y']);
  expect(await page.evaluate(() => Object.keys(sessionStorage))).toEqual(['siteid.access_token']);

  // While the owner key was open, it bound the node's own key, which the JWKS now lists.
  const nodeKey = await (await request.get(`${node.base}/.well-known/siteid/node-key.json`)).json();
  expect(typeof nodeKey.binding).toBe('string');
  const [header, claims] = nodeKey.binding.split('.').slice(0, 2).map((part) => JSON.parse(Buffer.from(part, 'base64url')));
  expect(header).toEqual({ alg: 'ES384', typ: 'siteid-node-key+jwt', kid });
  expect(Object.keys(claims).sort()).toEqual(['aud', 'iat', 'sub']);
  expect(claims).toMatchObject({ aud: node.base, sub: nodeKey.kid });
  const listed = await (await request.get(`${node.base}/.well-known/jwks.json`)).json();
  expect(listed.keys.map((key) => key.kid)).toContain(nodeKey.kid);

  await page.click('text=Go to your account');
  await expect(page).toHaveURL(`${node.base}/account`);
  await expect(page.locator('#sessions li')).toHaveCount(1);
  await expect(page.locator('#sessions li.current')).toContainText('this device');
  await expect(page.locator('#audit tbody tr').first()).toBeVisible();
  await expect(page.locator('#audit tbody')).toContainText('owner.claimed');
  await expect(page.locator('#app')).toHaveAttribute('data-live', 'true');
  await shot(page, testInfo, 'account');
});

test('a fresh context B unlocks with the password and signs in', async ({ browser }, testInfo) => {
  const page = await open(browser, 'B');
  await page.goto(`${node.base}/login`);
  await expect(page.locator('#unlock-form')).toBeVisible();
  await expect(page.locator('#login-device')).toBeHidden();
  await expect(page.locator('#password')).toBeFocused();
  await shot(page, testInfo, 'login-new-device');
  await page.fill('#password', PASSWORD);
  await page.click('#unlock-submit');
  await expect(page).toHaveURL(`${node.base}/account`, { timeout: 30_000 });
  await expect(page.locator('#sessions li')).toHaveCount(2);
  const stored = await storedKeys(page);
  expect(stored).toHaveLength(1);
  expect(stored[0].key.extractable).toBe(false);
  const ownerKid = (await (await page.request.get(`${node.base}/.well-known/jwks.json`)).json()).keys[0].kid;
  expect(stored[0].kid, 'B holds a device key, not the owner key').not.toBe(ownerKid);
  expect(stored[0].kid).not.toBe((await storedKeys(pages.A))[0].kid);

  // A's page shows the new sign-in without a reload.
  await expect(pages.A.locator('#sessions li')).toHaveCount(2);
  await expect(pages.A.locator('#status')).toContainText('New sign-in');
  await shot(pages.A, testInfo, 'account-after-new-sign-in');
});

test('a wrong password shows the error and stores no key', async ({ browser }, testInfo) => {
  const page = await open(browser, 'W');
  await page.goto(`${node.base}/login`);
  // Hold the answer a little, so that the progress indicator is surely seen while the page works.
  await page.route('**/api/v1/unlock', async (route) => {
    if (route.request().method() === 'POST') await new Promise((resolve) => setTimeout(resolve, 500));
    await route.continue();
  });
  await page.fill('#password', 'not the password at all, sorry');
  await page.press('#password', 'Enter');
  await expect(page.locator('#progress')).toBeVisible();
  await expect(page.locator('#unlock-submit')).toBeDisabled();
  await expect(page.locator('#error')).toContainText('Wrong password', { timeout: 30_000 });
  await expect(page.locator('#progress')).toBeHidden();
  await expect(page.locator('#unlock-submit')).toBeEnabled();
  await expect(page).toHaveURL(`${node.base}/login`);
  expect(await databases(page)).toEqual([]);
  expect(await storedKeys(page)).toBeNull();
  expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
  await shot(page, testInfo, 'login-wrong-password');
});

test("A revokes B's session and B's page goes to /login without reload", async ({}, testInfo) => {
  const a = pages.A;
  const b = pages.B;
  const bSession = await b.locator('#sessions li.current').getAttribute('data-session-id');
  expect(bSession).toBeTruthy();
  await expect(b.locator('#app')).toHaveAttribute('data-live', 'true');
  await a.click(`#sessions li[data-session-id="${bSession}"] button`);
  await expect(b).toHaveURL(`${node.base}/login`, { timeout: 5_000 });
  await expect(a.locator('#sessions li')).toHaveCount(1);
  // B still holds the key, but does not sign straight back in after being signed out elsewhere.
  await expect(b.locator('#login-device')).toBeVisible();
  await expect(b.locator('#unlock-form')).toBeHidden();
  await expect(b.locator('#status')).toContainText('Your session was ended');
  expect(await b.evaluate(() => sessionStorage.getItem('siteid.access_token'))).toBeNull();
  await shot(b, testInfo, 'login-after-revocation');

  await b.click('#login-button');
  await expect(b).toHaveURL(`${node.base}/account`);
  await expect(a.locator('#sessions li')).toHaveCount(2);
});

test('A changes the password; B still signs in with its key; C needs the new password', async ({ browser }, testInfo) => {
  const a = pages.A;
  await a.fill('#current-password', 'a wrong current password');
  await a.fill('#new-password', NEW_PASSWORD);
  await a.fill('#new-password-again', NEW_PASSWORD);
  await a.click('#password-submit');
  await expect(a.locator('#error')).toContainText('current password is wrong', { timeout: 30_000 });

  await a.fill('#current-password', PASSWORD);
  await a.click('#password-submit');
  await expect(a.locator('#status')).toContainText('Password changed', { timeout: 30_000 });
  await expect(a.locator('#error')).toBeHidden();
  await expect(a.locator('#current-password')).toHaveValue('');
  await expect(a.locator('#audit tbody')).toContainText('wrapped_key.replaced');
  await shot(a, testInfo, 'account-password-changed');

  // B signs out and back in with the key it keeps: no password involved.
  const b = pages.B;
  await b.click('#sign-out');
  await expect(b).toHaveURL(`${node.base}/login`);
  await expect(b.locator('#status')).toContainText('You signed out');
  await b.click('#login-button');
  await expect(b).toHaveURL(`${node.base}/account`);
  await expect(b.locator('#sessions li.current')).toHaveCount(1);

  // C, a new phone-sized device: the old password no longer unlocks, the new one does.
  const c = await open(browser, 'C', { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true, colorScheme: 'dark' });
  await c.goto(`${node.base}/login`);
  await c.fill('#password', PASSWORD);
  await c.click('#unlock-submit');
  await expect(c.locator('#error')).toContainText('Wrong password', { timeout: 30_000 });
  expect(await databases(c)).toEqual([]);
  await shot(c, testInfo, 'phone-login-old-password');
  await c.fill('#password', NEW_PASSWORD);
  await c.click('#unlock-submit');
  await expect(c).toHaveURL(`${node.base}/account`, { timeout: 30_000 });
  await expect(c.locator('#sessions li.current')).toContainText('this device');
  await expect(c.locator('#audit tbody tr').first()).toBeVisible();
  const overflow = await c.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  expect(overflow, 'nothing sticks out sideways on a phone').toBeLessThanOrEqual(0);
  await shot(c, testInfo, 'phone-account');
});

test('"forget this device" in B leaves nothing in its IndexedDB', async ({}, testInfo) => {
  const b = pages.B;
  expect(await storedKeys(b)).toHaveLength(1);
  const sessionsBefore = await pages.A.locator('#sessions li').count();
  await b.click('#forget-device');
  await expect(b).toHaveURL(`${node.base}/login`);
  await expect(b.locator('#unlock-form')).toBeVisible();
  await expect(b.locator('#status')).toContainText('no longer holds a key');
  expect(await databases(b)).toEqual([]);
  expect(await b.evaluate(() => sessionStorage.getItem('siteid.access_token'))).toBeNull();
  expect(await b.evaluate(() => localStorage.getItem('siteid.trust')), 'nor what it trusted of the node').toBeNull();
  await expect(pages.A.locator('#sessions li')).toHaveCount(sessionsBefore - 1);
  await shot(b, testInfo, 'login-after-forget');
});

test('the key stored in IndexedDB is not extractable', async () => {
  const result = await pages.A.evaluate(async () => {
    const db = await new Promise((resolve, reject) => {
      const request = indexedDB.open('siteid');
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
    const record = await new Promise((resolve, reject) => {
      const request = db.transaction('keys').objectStore('keys').get('owner');
      // The record's name predates device keys; it holds this browser's own key.
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
    db.close();
    const key = record.signingKey;
    const attempt = (format) => crypto.subtle.exportKey(format, key).then(() => 'exported', (e) => e.name);
    return { extractable: key.extractable, jwk: await attempt('jwk'), pkcs8: await attempt('pkcs8'), record: JSON.stringify(record) };
  });
  expect(result.extractable).toBe(false);
  expect(result.jwk).toBe('InvalidAccessError');
  expect(result.pkcs8).toBe('InvalidAccessError');
  expect(result.record).not.toContain('"d"');
});

test('the account page makes one-time unlock codes', async ({}, testInfo) => {
  const a = pages.A;
  await a.reload();
  // The page takes its controls in hand once it has checked the node and gone live.
  await expect(a.locator('#app')).toHaveAttribute('data-live', 'true');
  const codes = [];
  for (let i = 0; i < 2; i += 1) {
    await a.click('#unlock-code-make');
    // The old code leaves the screen at once, so a code read after this is the new one.
    if (i > 0) await expect(a.locator('#unlock-code')).not.toHaveText(codes[0]);
    await expect(a.locator('#unlock-code-shown')).toBeVisible();
    await expect(a.locator('#unlock-code')).toHaveText(/^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}$/);
    await expect(a.locator('#unlock-code-left')).toContainText('valid for');
    codes.push(await a.locator('#unlock-code').textContent());
  }
  expect(codes[0]).not.toBe(codes[1]);
  await shot(a, testInfo, 'account-unlock-code');
});

test('the audit log pages back with "Older entries"', async ({}, testInfo) => {
  const a = pages.A;
  await a.reload();
  await expect(a.locator('#audit tbody tr')).toHaveCount(20);
  await expect(a.locator('#audit-more')).toBeVisible();
  await a.click('#audit-more');
  await expect.poll(() => a.locator('#audit tbody tr').count()).toBeGreaterThan(20);
  const seqs = await a.locator('#audit tbody tr').evaluateAll((rows) => rows.map((r) => Number(r.dataset.seq)));
  expect(seqs).toEqual([...seqs].sort((x, y) => y - x));
  expect(new Set(seqs).size).toBe(seqs.length);
  await shot(a, testInfo, 'account-audit-paged');
});

test("A revokes D's device; D's next action says so, and nothing D keeps signs in", async ({ browser }, testInfo) => {
  const d = await open(browser, 'D');
  await d.goto(`${node.base}/login`);
  await d.fill('#password', NEW_PASSWORD);
  await d.click('#unlock-submit');
  await expect(d).toHaveURL(`${node.base}/account`, { timeout: 30_000 });
  await expect(d.locator('#app')).toHaveAttribute('data-live', 'true');
  const dKid = (await storedKeys(d))[0].kid;

  const a = pages.A;
  await a.goto(`${node.base}/account/credentials`);
  const rows = a.locator('#credentials tbody tr');
  await expect(rows.first()).toContainText('Owner key');
  await expect(a.locator('#credentials tbody tr.current, #credentials tbody tr:has(.badge)')).toHaveCount(1);
  const dRow = rows.last();
  await expect(dRow).toContainText('Browser');
  await shot(a, testInfo, 'credentials');
  const revoke = dRow.getByRole('button', { name: /^Revoke/ });
  await revoke.click();
  await expect(revoke).toHaveText('Click again to revoke');
  await revoke.click();
  await expect(a.locator('#status')).toContainText('is revoked');

  // D's socket closes and its page leaves for /login; its key is refused there, deleted, and the password offered.
  await expect(d).toHaveURL(`${node.base}/login`, { timeout: 5_000 });
  await d.click('#login-button');
  await expect(d.locator('#error')).toContainText('removed from your identity');
  await expect(d.locator('#unlock-form')).toBeVisible();
  expect(await databases(d)).toEqual([]);
  await shot(d, testInfo, 'login-after-device-revoked');

  // The revoked key itself, used directly, is refused for good.
  const listed = await a.evaluate(async () => (await (await fetch('/api/v1/credentials', { headers: { authorization: `Bearer ${sessionStorage.getItem('siteid.access_token')}` } })).json()).credentials);
  expect(listed.map((c) => c.kid)).not.toContain(dKid);
});

test('a key pasted in A signs in from the command line, and an SSH signature pasted on /login signs in', async ({ browser }, testInfo) => {
  const work = mkdtempSync(path.join(tmpdir(), 'siteid-keys-'));
  const pem = path.join(work, 'key.pem');
  execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384', '-out', pem]);
  const publicPem = execFileSync('openssl', ['pkey', '-in', pem, '-pubout']).toString();
  const ssh = path.join(work, 'id_ed25519');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'playwright', '-f', ssh]);

  const a = pages.A;
  await a.goto(`${node.base}/account/credentials`);
  const add = async (publicKey, label) => {
    await a.fill('#public-key', publicKey);
    await a.fill('#label', label);
    await a.check('#cap-audit');
    await a.fill('#password', NEW_PASSWORD);
    await a.click('#credential-submit');
    await expect(a.locator('#status')).toContainText(`Added ${label}`, { timeout: 30_000 });
  };
  await add(publicPem, 'openssl key');
  await add(readFileSync(`${ssh}.pub`, 'utf8'), 'ssh key');
  await expect(a.locator('#credentials tbody')).toContainText('Key (ES384)');
  await expect(a.locator('#credentials tbody')).toContainText('Key (EdDSA)');
  await shot(a, testInfo, 'credentials-keys-added');

  const signedIn = await run(['login', '--node', node.base, '--key', pem]);
  expect(signedIn.code, signedIn.stderr).toBe(0);
  const token = signedIn.stdout.trim();
  const session = await (await a.request.get(`${node.base}/api/v1/session`, { headers: { authorization: `Bearer ${token}` } })).json();
  expect(session.capabilities).toEqual(['session', 'audit']);

  const e = await open(browser, 'E');
  await e.goto(`${node.base}/login`);
  await e.click('#paste-section summary');
  await expect(e.locator('#paste-message')).toHaveText(/^siteid login http:\/\/127\.0\.0\.1:\d+ \S+$/);
  const message = await e.locator('#paste-message').textContent();
  const armored = execFileSync('ssh-keygen', ['-Y', 'sign', '-f', ssh, '-n', 'siteid-login'], { input: message }).toString();
  writeFileSync(path.join(work, 'signature'), armored);
  await e.fill('#paste-signature', armored);
  await shot(e, testInfo, 'login-paste-signature');
  await e.click('#paste-submit');
  await expect(e).toHaveURL(`${node.base}/account`);
  expect(await databases(e), 'a pasted signature stores no key').toEqual([]);

  // Rename one key and give the other a new one, each bound again with the owner key.
  const row = (label) => a.locator('#credentials tbody tr', { hasText: label });
  await row('openssl key').getByRole('button', { name: 'Edit openssl key' }).click();
  await expect(a.locator('#form-heading')).toHaveText('Edit openssl key');
  await a.fill('#label', 'renamed key');
  await a.fill('#password', NEW_PASSWORD);
  await a.click('#credential-submit');
  await expect(a.locator('#status')).toContainText('Saved renamed key', { timeout: 30_000 });
  await expect(row('renamed key')).toHaveCount(1);
  const replacement = path.join(work, 'id_replacement');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'playwright', '-f', replacement]);
  await row('ssh key').getByRole('button', { name: 'Give a new key to ssh key' }).click();
  await a.fill('#public-key', readFileSync(`${replacement}.pub`, 'utf8'));
  await a.fill('#password', NEW_PASSWORD);
  await a.click('#credential-submit');
  await expect(a.locator('#status')).toContainText('ssh key has a new key', { timeout: 30_000 });
  await shot(a, testInfo, 'credentials-renamed-and-reset');
  const old = await run(['login', '--node', node.base, '--key', ssh]);
  expect(old.code, 'the replaced key no longer signs in').not.toBe(0);
  const renewed = await run(['login', '--node', node.base, '--key', replacement]);
  expect(renewed.code, renewed.stderr).toBe(0);
});
