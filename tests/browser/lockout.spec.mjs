// A flood of wrong passwords from other networks pauses password unlock for everyone; the owner gets a new device in
// anyway with a one-time unlock code made on a signed-in device.

import { expect, test } from '@playwright/test';
import { postFrom, shot, startNode, watch } from './helpers.mjs';

const PASSWORD = 'quiet harbour lantern 2026';

test.describe.configure({ mode: 'serial' });

let node;
const problems = [];

test.beforeAll(async () => {
  node = await startNode();
  await node.init(PASSWORD);
});

test.afterAll(async () => {
  await node?.stop();
});

async function unlockOnNewDevice(browser, password) {
  const context = await browser.newContext();
  const page = watch(await context.newPage(), problems);
  await page.goto(`${node.base}/login`);
  await expect(page.locator('#unlock-form')).toBeVisible();
  await page.fill('#password', password);
  await page.click('#unlock-submit');
  return { context, page };
}

test('a one-time code gets the owner past a full node-wide window', async ({ browser }, testInfo) => {
  test.setTimeout(120_000);
  const a = await unlockOnNewDevice(browser, PASSWORD);
  await expect(a.page).toHaveURL(`${node.base}/account`, { timeout: 60_000 });

  // Four networks of three addresses, ten wrong passwords each: the node-wide window (100) fills.
  const wrong = { unlock_verifier: Buffer.alloc(32, 7).toString('base64url') };
  const statuses = [];
  for (let net = 10; net < 14; net += 1) {
    for (let host = 1; host <= 3; host += 1) {
      for (let i = 0; i < 10; i += 1) statuses.push((await postFrom(node.base, `127.0.${net}.${host}`, '/api/v1/unlock', wrong)).status);
    }
  }
  expect(statuses.filter((s) => s === 401)).toHaveLength(100);

  const b = await unlockOnNewDevice(browser, PASSWORD);
  await expect(b.page.locator('#error')).toContainText('password unlock is paused', { timeout: 60_000 });
  await expect(b.page.locator('#unlock-code-field')).toBeVisible();
  await expect(b.page.locator('#unlock-submit')).toBeEnabled();
  await shot(b.page, testInfo, 'login-paused');

  await a.page.click('#unlock-code-make');
  await expect(a.page.locator('#unlock-code')).toHaveText(/^[0-9A-Z]{4}(-[0-9A-Z]{4}){3}$/);
  const code = await a.page.locator('#unlock-code').textContent();
  await shot(a.page, testInfo, 'account-code');

  await b.page.fill('#unlock-code', code.toLowerCase());
  await b.page.click('#unlock-submit');
  await expect(b.page).toHaveURL(`${node.base}/account`, { timeout: 60_000 });
  const audit = await node.audit();
  expect(audit).toContain('unlock_code.used');
  expect(audit).not.toContain(code);
  await a.context.close();
  await b.context.close();
  expect(problems, 'no uncaught errors, CSP violations or console errors').toEqual([]);
});
