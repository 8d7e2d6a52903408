// Two-step unlock in Chromium: turning TOTP on at /account/totp (codes computed here with node:crypto from the secret the
// page shows), the ten recovery codes shown once, and a new device whose password needs a code; a wrong code is refused
// with a visible message.

import { expect, test } from '@playwright/test';
import { createHmac, generateKeyPairSync } from 'node:crypto';
import { shot, startNode, watch } from './helpers.mjs';

const PASSWORD = 'amber falcon window 2031';

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

/** RFC 4648 base32 (no padding) to bytes. */
function base32Decode(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const bytes = [];
  let buffer = 0;
  let bits = 0;
  for (const character of text) {
    buffer = (buffer << 5) | alphabet.indexOf(character);
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      bytes.push((buffer >> bits) & 0xff);
    }
  }
  return Buffer.from(bytes);
}

/** The RFC 6238 code (HMAC-SHA-1, 6 digits, 30 s) of a secret at a time in milliseconds. */
function totp(secret, at) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(at / 1000 / 30)));
  const digest = createHmac('sha1', secret).update(counter).digest();
  const offset = digest[19] & 0x0f;
  return String((digest.readUInt32BE(offset) & 0x7fffffff) % 1_000_000).padStart(6, '0');
}

async function signInWithPassword(browser) {
  const context = await browser.newContext();
  const page = watch(await context.newPage(), problems);
  await page.goto(`${node.base}/login`);
  await expect(page.locator('#unlock-form')).toBeVisible();
  await page.fill('#password', PASSWORD);
  await page.click('#unlock-submit');
  return { context, page };
}

test('TOTP turned on at /account/totp makes a new device give a code with its password', async ({ browser }, testInfo) => {
  test.setTimeout(120_000);
  const a = await signInWithPassword(browser);
  await expect(a.page).toHaveURL(`${node.base}/account`, { timeout: 60_000 });
  await a.page.click('a[href="/account/totp"]');
  await expect(a.page).toHaveURL(`${node.base}/account/totp`);
  await expect(a.page.locator('#totp-status')).toContainText('off');

  await a.page.click('#totp-start');
  await expect(a.page.locator('#totp-setup')).toBeVisible();
  await expect(a.page.locator('#totp-qr svg path')).toHaveCount(1);
  const secretText = (await a.page.locator('#totp-secret').textContent()).replace(/\s/g, '');
  expect(secretText).toMatch(/^[A-Z2-7]{32}$/);
  const secret = base32Decode(secretText);
  await shot(a.page, testInfo, 'totp-setup');

  await a.page.fill('#totp-confirm-code', totp(secret, Date.now()));
  await a.page.click('#totp-confirm-submit');
  await expect(a.page.locator('#totp-code-list li')).toHaveCount(10);
  const codes = await a.page.locator('#totp-code-list li').allTextContents();
  for (const code of codes) expect(code).toMatch(/^[0-9a-z]{4}(-[0-9a-z]{4}){3}$/);
  await expect(a.page.locator('#totp-status')).toContainText('on since');
  await expect(a.page.locator('#totp-on')).toBeVisible();
  await shot(a.page, testInfo, 'totp-recovery-codes');

  // A fresh context: the password alone is not enough.
  const b = await signInWithPassword(browser);
  await expect(b.page.locator('#totp-field')).toBeVisible({ timeout: 60_000 });
  await expect(b.page.locator('#status')).toContainText('Your password is right');
  const now = Date.now();
  const window = [-1, 0, 1, 2].map((step) => totp(secret, now + step * 30_000));
  const wrong = ['000000', '111111', '222222'].find((code) => !window.includes(code));
  await b.page.fill('#totp', wrong);
  await b.page.click('#unlock-submit');
  await expect(b.page.locator('#error')).toContainText('That code is not right', { timeout: 60_000 });
  await expect(b.page).toHaveURL(`${node.base}/login`);
  await shot(b.page, testInfo, 'login-wrong-code');

  // The confirming code's step is used; the next step's code is within the window of one step either side.
  await b.page.fill('#totp', totp(secret, Date.now() + 30_000));
  await b.page.click('#unlock-submit');
  await expect(b.page).toHaveURL(`${node.base}/account`, { timeout: 60_000 });

  // A signed-in device needs no code to unwrap the owner key: it steps up first (its own key), and
  // the fresh session stands in for the code. Adding a key binds it with the owner key this way.
  await b.page.goto(`${node.base}/account/credentials`);
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  await b.page.fill('#public-key', publicKey.export({ type: 'spki', format: 'pem' }));
  await b.page.fill('#label', 'TOTP page key');
  await b.page.fill('#password', PASSWORD);
  await b.page.click('#credential-submit');
  await expect(b.page.locator('#status')).toContainText('Added TOTP page key', { timeout: 60_000 });

  const audit = await node.audit();
  expect(audit).toContain('totp.enabled');
  expect(audit).toContain('"second_factor":"totp"');
  expect(audit).toContain('"second_factor":"session"');
  expect(audit).not.toContain(secretText);
  await a.context.close();
  await b.context.close();
  expect(problems, 'no uncaught errors, CSP violations or console errors').toEqual([]);
});
