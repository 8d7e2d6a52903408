// Pairing in Chromium against the real node: device A (signed in with the password) sets approval mode on its account
// page; a new device B, whose login page then offers no password, asks to join; A sees the request with the code B
// shows and approves it with the password; B signs in with its own key. A denies a second new device, which is told so;
// in window mode a new device is told that enrollment is closed until A opens a window.

import { expect, test } from '@playwright/test';
import { jwkThumbprint } from '../../static/js/wrapped-key.mjs';
import { shot, startNode, storedKeys, watch } from './helpers.mjs';

const PASSWORD = 'harbour tulip cinder velvet 41';

test.describe.configure({ mode: 'serial' });

let node;
const contexts = {};
const pages = {};
const problems = [];

async function open(browser, name) {
  const context = await browser.newContext();
  contexts[name] = context;
  pages[name] = watch(await context.newPage(), problems);
  return pages[name];
}

/** A new device opens /login, checks that only pairing (and passkeys) is offered, asks, and resolves with its request body. */
async function ask(page) {
  await page.goto(`${node.base}/login`);
  await expect(page.locator('#login-pair')).toBeVisible();
  await expect(page.locator('#unlock-form')).toBeHidden();
  await expect(page.locator('#enrollment-closed')).toBeHidden();
  const [request] = await Promise.all([
    page.waitForRequest((r) => r.url().endsWith('/api/v1/enrollment/requests') && r.method() === 'POST'),
    page.click('#pair-button'),
  ]);
  await expect(page.locator('#pair-code')).toHaveText(/^\d{3} \d{3}$/);
  await expect(page.locator('#pair-left')).toContainText('more');
  return request.postDataJSON();
}

/** The request as A's account page shows it (pushed over its WebSocket). */
function shownOn(page, id) {
  return page.locator(`#pairing-requests li[data-request-id="${id}"]`);
}

test.beforeAll(async () => {
  node = await startNode();
  await node.init(PASSWORD);
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

test('A sets approval mode; B asks without a password, A sees the same code and approves; B signs in with its own key', async ({ browser }, testInfo) => {
  const a = await open(browser, 'A');
  await a.goto(`${node.base}/login`);
  // In open mode the password and pairing are both offered.
  await expect(a.locator('#login-pair')).toBeVisible();
  await expect(a.locator('#unlock-form')).toBeVisible();
  await a.fill('#password', PASSWORD);
  await a.click('#unlock-submit');
  await expect(a).toHaveURL(`${node.base}/account`, { timeout: 30_000 });
  await expect(a.locator('#sessions li.current')).toBeVisible();
  await expect(a.locator('#pairing')).toBeHidden();

  await a.click('#enrollment-section summary');
  await expect(a.locator('#enrollment-window-state')).toHaveText('No window for new devices is open.');
  await expect(a.locator('#enrollment-mode')).toHaveValue('open');
  await a.selectOption('#enrollment-mode', 'approval');
  await a.click('#enrollment-mode-save');
  await expect(a.locator('#status')).toContainText('Saved: a new device now asks', { timeout: 15_000 });
  const settings = await (await fetch(`${node.base}/api/v1/enrollment`)).json();
  expect(settings.mode).toBe('approval');

  const b = await open(browser, 'B');
  const sent = await ask(b);
  expect(sent.kind).toBe('device');
  expect(sent.label).toBe('Chrome on Linux');
  const codeOnB = await b.locator('#pair-code').textContent();
  await shot(b, testInfo, 'b-asking');

  const request = shownOn(a, sent.id);
  await expect(request).toBeVisible();
  await expect(a.locator('#pairing')).toBeVisible();
  await expect(request.locator('.pairing-label')).toHaveText('Chrome on Linux');
  await expect(request).toContainText('Approve only if the new device shows the same code.');
  expect(await request.locator('.pairing-code').textContent()).toBe(codeOnB);
  await shot(a, testInfo, 'a-request');

  await request.locator('input[type=password]').fill(PASSWORD);
  // (The status line is not asserted: B's sign-in, announced on A's socket, may replace it at once.)
  const [approved] = await Promise.all([
    a.waitForResponse((r) => r.url().endsWith(`/api/v1/enrollment/requests/${sent.id}/approve`), { timeout: 30_000 }),
    request.locator('button[type=submit]').click(),
  ]);
  expect(approved.status()).toBe(201);
  const granted = await approved.json();
  expect(granted.kind).toBe('device');
  expect([...granted.capabilities].sort()).toEqual(['audit', 'credentials', 'inbox', 'indieauth', 'owner', 'recovery', 'session', 'sessions']);
  await expect(request).toHaveCount(0);
  await expect(a.locator('#pairing')).toBeHidden();

  // B noticed the approval and signed in with the key it made and kept.
  await expect(b).toHaveURL(`${node.base}/account`, { timeout: 30_000 });
  await expect(b.locator('#sessions li.current')).toBeVisible();
  const kid = await jwkThumbprint(sent.public_key);
  const stored = await storedKeys(b);
  expect(stored).toHaveLength(1);
  expect(stored[0]).toMatchObject({ kind: 'device', kid, key: { type: 'private', extractable: false } });

  // A's list of devices shows B's credential as a browser.
  await a.goto(`${node.base}/account/credentials`);
  const row = a.locator(`#credentials tr[data-credential-id="${sent.id}"]`);
  await expect(row).toBeVisible();
  await expect(row.locator('td').nth(1)).toContainText('Browser');
  await expect(row).not.toContainText('this device');
});

test('A denies another new device, which is told and may ask again', async ({ browser }) => {
  const a = pages.A;
  await a.goto(`${node.base}/account`);
  await expect(a.locator('#sessions li.current')).toBeVisible();
  const c = await open(browser, 'C');
  const sent = await ask(c);
  const request = shownOn(a, sent.id);
  await expect(request).toBeVisible();
  expect(await request.locator('.pairing-code').textContent()).toBe(await c.locator('#pair-code').textContent());
  await request.locator('button', { hasText: 'Deny' }).click();
  await expect(a.locator('#status')).toContainText('Refused: Chrome on Linux was not let in.');
  await expect(request).toHaveCount(0);

  await expect(c.locator('#error')).toContainText('refused on your other device', { timeout: 15_000 });
  await expect(c.locator('#pair-waiting')).toBeHidden();
  await expect(c.locator('#pair-button')).toHaveText('Ask again');
  await expect(c.locator('#pair-button')).toBeEnabled();
  expect(await storedKeys(c)).toBeNull();
  const status = await (await fetch(`${node.base}/api/v1/enrollment/requests/${sent.id}`)).json();
  expect(status.status).toBe('denied');
});

test('in window mode a new device is told enrollment is closed until A opens a window, which A can close again', async ({ browser }) => {
  const a = pages.A;
  await a.goto(`${node.base}/account`);
  await expect(a.locator('#sessions li.current')).toBeVisible();
  await a.click('#enrollment-section summary');
  await expect(a.locator('#enrollment-mode')).toHaveValue('approval');
  await a.selectOption('#enrollment-mode', 'window');
  await a.click('#enrollment-mode-save');
  await expect(a.locator('#status')).toContainText('Saved: your password lets a new device in only while', { timeout: 15_000 });

  const d = await open(browser, 'D');
  await d.goto(`${node.base}/login`);
  await expect(d.locator('#enrollment-closed')).toBeVisible();
  await expect(d.locator('#enrollment-closed')).toContainText('siteid enroll --minutes 10');
  await expect(d.locator('#unlock-form')).toBeHidden();
  await expect(d.locator('#login-pair')).toBeHidden();

  await a.fill('#enrollment-minutes', '5');
  await a.click('#enrollment-window-open');
  await expect(a.locator('#enrollment-window-state')).toContainText('is open until', { timeout: 15_000 });
  await expect(a.locator('#enrollment-window-close')).toBeVisible();
  const opened = await (await fetch(`${node.base}/api/v1/enrollment`)).json();
  expect(opened.mode).toBe('window');
  expect(opened.window.closes_at - opened.window.opened_at).toBe(300);

  // With the window open, the password and pairing are both offered.
  await d.reload();
  await expect(d.locator('#login-pair')).toBeVisible();
  await expect(d.locator('#unlock-form')).toBeVisible();
  await expect(d.locator('#enrollment-closed')).toBeHidden();

  await a.click('#enrollment-window-close');
  await expect(a.locator('#enrollment-window-state')).toHaveText('No window for new devices is open.');
  await expect(a.locator('#enrollment-window-close')).toBeHidden();
  expect((await (await fetch(`${node.base}/api/v1/enrollment`)).json()).window).toBeNull();
});
