// Page-level checks in Chromium: the CSP on every HTML page and no inline code, and the messages for an
// unclaimed node, a bad setup link, no network and throttling (with its countdown).

import { expect, test } from '@playwright/test';
import { CSP, databases, shot, startNode, watch } from './helpers.mjs';

const PAGES = ['/', '/setup', '/login', '/account', '/account/credentials', '/account/totp', '/account/inbox', '/account/apps'];
const PASSWORD = 'quiet meadow tractor violin 9';

test.describe.configure({ mode: 'serial' });

let node;
const problems = [];

test.beforeAll(async () => {
  node = await startNode();
});

test.afterAll(async () => {
  await node?.stop();
});

test.afterEach(async () => {
  expect(problems.splice(0), 'no uncaught errors, CSP violations or console errors in any page').toEqual([]);
});

/** Every tag of a document with its attribute names, from the raw HTML (what the server sent, before any script ran). */
function tags(html) {
  return [...html.matchAll(/<([a-zA-Z][\w-]*)((?:[^>"']|"[^"]*"|'[^']*')*)>/g)].map(([, name, rest]) => ({
    name: name.toLowerCase(),
    rest,
    attributes: [...rest.matchAll(/([^\s=/"']+)(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s>]+))?/g)].map((m) => m[1].toLowerCase()),
  }));
}

test('every HTML page has the CSP, no inline script, handler or style, and labelled inputs', async ({ page, request }) => {
  watch(page, problems);
  for (const claimed of [false, true]) {
    if (claimed) await node.init(PASSWORD);
    for (const path of PAGES) {
      const response = await request.get(`${node.base}${path}`);
      expect(response.status(), path).toBe(200);
      const headers = response.headers();
      expect(headers['content-type'], path).toBe('text/html; charset=utf-8');
      expect(headers['content-security-policy'], path).toBe(CSP);
      expect(headers['x-content-type-options'], path).toBe('nosniff');
      expect(headers['cross-origin-opener-policy'], path).toBe('same-origin');
      const html = await response.text();
      for (const tag of tags(html)) {
        if (tag.name === 'script') expect(tag.attributes, `${path}: a script without src: <script${tag.rest}>`).toContain('src');
        for (const attribute of tag.attributes) {
          expect(attribute.startsWith('on'), `${path}: an inline handler in <${tag.name}${tag.rest}>`).toBe(false);
          expect(attribute, `${path}: an inline style in <${tag.name}${tag.rest}>`).not.toBe('style');
        }
      }
      expect(html, `${path}: a javascript: URL`).not.toMatch(/(href|src|action)\s*=\s*["']?\s*javascript:/i);
      // The page as the browser runs it: every script comes from this origin's /assets/.
      await page.goto(`${node.base}${path}`);
      const scripts = await page.evaluate(() => [...document.scripts].map((s) => ({ src: s.src, inline: s.text.trim().length })));
      for (const script of scripts) {
        expect(script.inline, path).toBe(0);
        expect(script.src.startsWith(`${node.base}/assets/`), `${path}: ${script.src}`).toBe(true);
      }
      const unlabelled = await page.evaluate(() => [...document.querySelectorAll('input')].filter((i) => !i.labels.length).map((i) => i.id));
      expect(unlabelled, `${path}: inputs without a label`).toEqual([]);
    }
  }
});

test('the login page explains an unclaimed node', async ({ browser }, testInfo) => {
  const other = await startNode();
  try {
    const page = watch(await browser.newPage(), problems);
    await page.goto(`${other.base}/login`);
    await expect(page.locator('#error')).toContainText('no owner yet');
    await expect(page.locator('#unlock-form')).toBeHidden();
    await shot(page, testInfo, 'login-unclaimed');
    await page.goto(`${other.base}/setup`);
    await expect(page.locator('#error')).toContainText('needs the setup link');
    await expect(page.locator('#setup-form')).toBeHidden();
    await shot(page, testInfo, 'setup-without-token');
    await page.goto(`${other.base}/setup#not-the-claim-token`);
    await expect(page).toHaveURL(`${other.base}/setup`);
    await page.fill('#password', PASSWORD);
    await page.fill('#password-again', PASSWORD);
    await page.click('#setup-submit');
    await expect(page.locator('#error')).toContainText('wrong or was already used', { timeout: 30_000 });
    await expect(page.locator('#setup-done')).toBeHidden();
    expect(await databases(page)).toEqual([]);
    await shot(page, testInfo, 'setup-wrong-token');
    await page.close();
  } finally {
    await other.stop();
  }
});

test('setup on a claimed node says it already has an owner', async ({ page }, testInfo) => {
  watch(page, problems);
  await page.goto(`${node.base}/setup#whatever`);
  await expect(page.locator('#error')).toContainText('already has an owner');
  await expect(page.locator('#setup-form')).toBeHidden();
  await shot(page, testInfo, 'setup-already-claimed');
  await page.click('#error a[href="/login"]');
  await expect(page).toHaveURL(`${node.base}/login`);
  await expect(page.locator('#unlock-form')).toBeVisible();
});

test('no network is reported as such', async ({ page }, testInfo) => {
  watch(page, problems);
  await page.goto(`${node.base}/login`);
  await expect(page.locator('#unlock-form')).toBeVisible();
  await page.route('**/api/v1/**', (route) => route.abort('internetdisconnected'));
  await page.fill('#password', PASSWORD);
  await page.click('#unlock-submit');
  await expect(page.locator('#error')).toContainText('No network');
  await expect(page.locator('#unlock-submit')).toBeEnabled();
  await shot(page, testInfo, 'login-no-network');
  await page.unroute('**/api/v1/**');
  // The network is back: the same form now works.
  await page.click('#unlock-submit');
  await expect(page).toHaveURL(`${node.base}/account`, { timeout: 30_000 });
});

test('throttled password attempts show the time left, counting down', async ({ page }, testInfo) => {
  watch(page, problems);
  await page.goto(`${node.base}/login`);
  await expect(page.locator('#unlock-form')).toBeVisible();
  let throttled = false;
  for (let attempt = 0; attempt < 12 && !throttled; attempt++) {
    await page.fill('#password', `wrong guess number ${attempt}`);
    await page.click('#unlock-submit');
    const error = page.locator('#error');
    await expect(error).toContainText(/Wrong password|Too many/, { timeout: 30_000 });
    throttled = (await error.textContent()).includes('Too many');
    if (!throttled) await expect(page.locator('#unlock-submit')).toBeEnabled();
  }
  expect(throttled, 'the node throttles after 10 wrong passwords').toBe(true);
  const error = page.locator('#error');
  await expect(error).toContainText(/Try again in \d+ min \d\d s\./);
  await expect(page.locator('#unlock-submit')).toBeDisabled();
  const first = await error.textContent();
  await expect(error).not.toHaveText(first, { timeout: 3_000 });
  expect(await databases(page)).toEqual([]);
  await shot(page, testInfo, 'login-throttled');
});
