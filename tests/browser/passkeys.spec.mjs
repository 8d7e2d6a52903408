// Passkeys in Chromium against the real node, with Chromium's virtual authenticator (CDP WebAuthn) and the public URL
// http://localhost:PORT (WebAuthn refuses IP addresses): A registers a passkey with a PRF copy of the owner key; a
// fresh context that holds the passkey but never saw the password unlocks and gets a device key; a passkey without
// PRF signs in to a session of its own; the PRF output and the KEK appear nowhere on the node; a revoked passkey is
// refused.

import { hkdfSync } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { expect, test } from '@playwright/test';
import * as jose from 'jose';
import { shot, startNode, storedKeys, watch } from './helpers.mjs';

const PASSWORD = 'quartz lantern meadow ribbon 58';
// The PRF input and HKDF parameters as docs/protocol.md states them (not imported: the test holds the code to them).
const PRF_INPUT = 'siteid-prf-unlock-v1';
const PRF_HKDF_SALT = 'siteid-prf-kek-v1';
const PRF_HKDF_INFO = 'siteid owner key A256KW';

test.describe.configure({ mode: 'serial' });

let node;
const contexts = {};
const pages = {};
const problems = [];
const bodies = [];
let ownerKid;
let passkey;

/** A new context and page, recording every request body it sends to the node. */
async function open(browser, name) {
  const context = await browser.newContext();
  contexts[name] = context;
  const page = watch(await context.newPage(), problems);
  page.on('request', (request) => {
    if (request.url().startsWith(node.base) && request.postData()) bodies.push({ page: name, url: request.url(), body: request.postData() });
  });
  pages[name] = page;
  return page;
}

/** Gives page a virtual platform authenticator (resident keys, user verification, PRF unless prf is false); resolves with {cdp, id}. */
async function authenticator(page, { prf = true } = {}) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      ctap2Version: 'ctap2_1',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      hasPrf: prf,
      automaticPresenceSimulation: true,
    },
  });
  return { cdp, id: authenticatorId };
}

/**
 * The passkey as another authenticator holds it, its counter well ahead: a virtual authenticator counts every
 * assertion, and the node refuses a counter that does not move forward (synced passkeys report 0 instead).
 */
const ahead = (credential) => ({ ...credential, signCount: credential.signCount + 1000 });

/** The PRF output a page's authenticator gives for this site's PRF input (what the browser derives the KEK from). */
async function prfOutputIn(page) {
  return Buffer.from(
    await page.evaluate(async (input) => {
      const assertion = await navigator.credentials.get({
        publicKey: { challenge: crypto.getRandomValues(new Uint8Array(32)), userVerification: 'required', extensions: { prf: { eval: { first: new TextEncoder().encode(input) } } } },
      });
      return [...new Uint8Array(assertion.getClientExtensionResults().prf.results.first)];
    }, PRF_INPUT),
  );
}

test.beforeAll(async () => {
  node = await startNode({ localhost: true });
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

test('A signs in with the password and registers a passkey that unlocks new devices', async ({ browser }) => {
  const a = await open(browser, 'A');
  const { cdp, id } = await authenticator(a);
  await a.goto(`${node.base}/login`);
  await expect(a.locator('#passkey-button')).toBeVisible();
  await a.fill('#password', PASSWORD);
  await a.click('#unlock-submit');
  await expect(a).toHaveURL(`${node.base}/account`, { timeout: 30_000 });
  ownerKid = (await (await fetch(`${node.base}/.well-known/jwks.json`)).json()).keys[0].kid;

  await a.goto(`${node.base}/account/credentials`);
  await a.fill('#passkey-label', 'Laptop passkey');
  await a.fill('#passkey-password', PASSWORD);
  const [registration] = await Promise.all([a.waitForRequest((r) => r.url().endsWith('/api/v1/passkeys') && r.method() === 'POST'), a.click('#passkey-submit')]);
  await expect(a.locator('#status')).toContainText('It also unlocks your key on a new device', { timeout: 30_000 });
  const row = a.locator('#credentials tr', { hasText: 'Laptop passkey' });
  await expect(row).toContainText('Passkey (ES256)');
  await expect(row).toContainText('unlocks new devices');

  // The registration names the passkey by its WebAuthn credential id, binds it with the owner key, and carries the
  // PRF copy (A256KW/A256GCM) of the owner key.
  const body = registration.postDataJSON();
  expect(Object.keys(body).sort()).toEqual(['binding', 'capabilities', 'credential', 'expires_at', 'label', 'networks', 'prf_wrapped_key', 'registration_id']);
  expect(body.credential.clientExtensionResults).toEqual({});
  const header = jose.decodeProtectedHeader(body.prf_wrapped_key);
  expect(header).toEqual({ alg: 'A256KW', enc: 'A256GCM', cty: 'jwk+json', kid: ownerKid });
  const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId: id });
  expect(credentials).toHaveLength(1);
  passkey = credentials[0];
  expect(passkey.isResidentCredential).toBe(true);
  expect(Buffer.from(passkey.credentialId, 'base64').toString('base64url')).toBe(body.credential.rawId);
});

test('zero knowledge: the PRF output and the KEK appear in no request and nowhere in the database; jose opens the copy', async () => {
  const prf = await prfOutputIn(pages.A);
  const kek = Buffer.from(hkdfSync('sha256', prf, Buffer.from(PRF_HKDF_SALT), Buffer.from(PRF_HKDF_INFO), 32));
  const forms = (bytes) => [bytes.toString('base64url'), bytes.toString('base64'), bytes.toString('hex')];
  const leaks = [];
  for (const { page, url, body } of bodies) {
    for (const [name, secret] of [['PRF output', prf], ['KEK', kek]]) {
      if (forms(secret).some((form) => body.includes(form))) leaks.push(`${page} ${url}: the ${name}`);
    }
  }
  expect(leaks).toEqual([]);
  for (const file of ['siteid.sqlite3', 'siteid.sqlite3-wal']) {
    const bytes = await readFile(path.join(node.dataDir, file)).catch(() => Buffer.alloc(0));
    for (const secret of [prf, kek]) {
      expect(bytes.includes(secret), `${file} holds no raw secret`).toBe(false);
      for (const form of forms(secret)) expect(bytes.includes(Buffer.from(form)), `${file} holds no encoded secret`).toBe(false);
    }
  }
  // An independent JOSE library opens the copy with the KEK derived as the protocol document says.
  const copy = bodies.map((b) => b.body).find((b) => b.includes('prf_wrapped_key'));
  const { plaintext } = await jose.compactDecrypt(JSON.parse(copy).prf_wrapped_key, new Uint8Array(kek));
  const jwk = JSON.parse(new TextDecoder().decode(plaintext));
  expect(await jose.calculateJwkThumbprint({ kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y })).toBe(ownerKid);
});

test('A approves a new device that asks to join with its passkey instead of the password', async ({ browser }) => {
  const a = pages.A;
  await a.goto(`${node.base}/account`);
  await expect(a.locator('#sessions li.current')).toBeVisible();
  const b = await open(browser, 'pairing');
  await b.goto(`${node.base}/login`);
  const [sent] = await Promise.all([
    b.waitForRequest((r) => r.url().endsWith('/api/v1/enrollment/requests') && r.method() === 'POST'),
    b.click('#pair-button'),
  ]);
  const id = sent.postDataJSON().id;
  await expect(b.locator('#pair-code')).toHaveText(/^\d{3} \d{3}$/);
  const request = a.locator(`#pairing-requests li[data-request-id="${id}"]`);
  await expect(request).toBeVisible();
  expect(await request.locator('.pairing-code').textContent()).toBe(await b.locator('#pair-code').textContent());
  const [approved] = await Promise.all([
    a.waitForResponse((r) => r.url().endsWith(`/api/v1/enrollment/requests/${id}/approve`), { timeout: 30_000 }),
    request.locator('button', { hasText: 'Approve with a passkey' }).click(),
  ]);
  expect(approved.status()).toBe(201);
  await expect(b).toHaveURL(`${node.base}/account`, { timeout: 30_000 });
  await expect(b.locator('#sessions li.current')).toBeVisible();
});

test('a device that holds the passkey but none of the site data unlocks with it and gets a device key', async () => {
  // A's tab keeps the authenticator (and the passkey's PRF secret); everything of the site is deleted from it, so it
  // is a new device where the passkey is synced. The autofill is turned off here so that the button is used.
  const a = pages.A;
  const cdp = await a.context().newCDPSession(a);
  await cdp.send('Storage.clearDataForOrigin', { origin: node.base, storageTypes: 'all' });
  await a.context().clearCookies();
  await a.context().addInitScript(() => {
    PublicKeyCredential.isConditionalMediationAvailable = async () => false;
  });
  await a.goto(`${node.base}/login`);
  expect((await storedKeys(a)) ?? []).toEqual([]);
  const before = bodies.length;
  await a.click('#passkey-button');
  await expect(a).toHaveURL(`${node.base}/account`, { timeout: 30_000 });
  await expect(a.locator('#sessions li.current')).toBeVisible();
  const keys = await storedKeys(a);
  expect(keys).toHaveLength(1);
  expect(keys[0].kind).toBe('device');
  const sent = bodies.slice(before).map((x) => new URL(x.url).pathname);
  expect(sent, 'no password unlock was tried').not.toContain('/api/v1/unlock');
  expect(sent).toContain('/api/v1/credentials');
  expect(await node.audit()).toContain('passkey.wrapped_key_served');
});

test('B, a fresh context with the passkey, signs in from the autofill to a session of its own', async ({ browser }) => {
  // Chromium's virtual authenticator answers a conditional (autofill) request at once, as if the owner picked the
  // passkey there. A credential moved with WebAuthn.getCredentials/addCredential keeps its key but not its PRF secret,
  // so B's authenticator gives no PRF output: B gets the passkey's own session and no key on the device.
  const b = await open(browser, 'B');
  const { cdp, id } = await authenticator(b);
  await cdp.send('WebAuthn.addCredential', { authenticatorId: id, credential: ahead(passkey) });
  await b.goto(`${node.base}/login`);
  await expect(b).toHaveURL(`${node.base}/account`, { timeout: 30_000 });
  await expect(b.locator('#sessions li.current')).toBeVisible();
  expect((await storedKeys(b)) ?? []).toEqual([]);
  const signIn = bodies.find((x) => x.page === 'B' && x.url.endsWith('/api/v1/auth/passkey'));
  expect(JSON.parse(signIn.body).unlock).toBe(false);
  // With no key on the device, the passkey itself confirms a sensitive step.
  await b.click('#unlock-code-make');
  await expect(b.locator('#unlock-code-shown')).toBeVisible();
  expect(bodies.some((x) => x.page === 'B' && x.url.endsWith('/api/v1/auth/passkey/reauth'))).toBe(true);
});

test('replacing the owner key drops the passkey\'s copy with a visible notice; the passkey stays bound', async () => {
  const a = pages.A;
  await a.goto(`${node.base}/account`);
  // The page wires its forms once it has checked the node.
  await expect(a.locator('#sessions li.current')).toBeVisible();
  await a.fill('#rotate-password', PASSWORD);
  await a.click('#rotate-submit');
  await expect(a.locator('#status')).toContainText('1 passkey(s) no longer unlock your key', { timeout: 60_000 });
  await a.goto(`${node.base}/account/credentials`);
  const row = a.locator('#credentials tr', { hasText: 'Laptop passkey' });
  await expect(row).toContainText('Passkey (ES256)');
  await expect(row).not.toContainText('unlocks new devices');
  expect(await node.audit()).toContain('passkey.wrapped_keys_dropped');
});

test('A revokes the passkey; a context that holds it is refused', async ({ browser }) => {
  const a = pages.A;
  await a.goto(`${node.base}/account/credentials`);
  const revoke = a.getByRole('button', { name: 'Revoke Laptop passkey' });
  await revoke.click();
  await revoke.click();
  await expect(a.locator('#status')).toContainText('Laptop passkey is revoked');
  const d = await open(browser, 'D');
  const { cdp, id } = await authenticator(d);
  await cdp.send('WebAuthn.addCredential', { authenticatorId: id, credential: ahead(passkey) });
  await d.goto(`${node.base}/login`);
  await expect(d.locator('#error')).toContainText('is by a passkey that is not registered');
  await expect(d).toHaveURL(`${node.base}/login`);
});
