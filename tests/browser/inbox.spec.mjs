// The encrypted inbox in Chromium against real nodes: node B claimed at /setup keeps its encryption key; node A, claimed
// from here with a key made by node:crypto, sends with `siteid inbox send` and B's /account/inbox shows the message
// decrypted and verified; a forged sender shows unverified; a second device unlocks with the password (or a passkey's
// PRF copy of the owner key); rotations keep old messages readable; an identity claimed without an inbox sets one up;
// and neither the requests nor B's data directory ever hold the plaintext, the encryption key's d or the owner key's d.

import { generateKeyPairSync } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { expect, test } from '@playwright/test';
import * as jose from 'jose';
import { utf8 } from '../../static/js/b64url.mjs';
import { signMessage } from '../../static/js/inbox-crypto.mjs';
import { encryptionKek, newEncryptionKey } from '../../static/js/inbox-keys.mjs';
import { claimProof, recordSignature } from '../../static/js/jws.mjs';
import { keyStatement } from '../../static/js/key-statement.mjs';
import { deriveUnlock, generateOwnerKey, importSigningKey, jwkThumbprint, openJwk, parse, unwrapPrivateKey, wrapPrivateKey } from '../../static/js/wrapped-key.mjs';
import { postFrom, run, shot, startNode, watch } from './helpers.mjs';

const PASSWORD_B = 'harbour quilt lantern cobalt 58';
const PASSWORD_A = 'sender site owner, 61 ferns';
const PASSWORD_C = 'an identity from before the inbox 7';
const SUBJECT = 'Lunch on Thursday';
const TEXT = 'The meeting moved to Thursday.\nBring the seven blue folders, please.';
const FORGED_TEXT = 'Send the keys to this address at once.';
const MARKUP_TEXT = '<img src=x onerror="window.pwned=1"> <script>window.pwned=2</script> & plain';
const LATER_TEXT = 'A message to the inbox key a compromise rotation made.';

test.describe.configure({ mode: 'serial' });

let nodeA;
let nodeB;
const sender = {};
const contexts = {};
const pages = {};
const problems = [];
/** Every request body the browser sent, from every context. */
const bodies = [];

async function open(browser, name) {
  const context = await browser.newContext();
  context.on('request', (request) => bodies.push(request.postData() ?? ''));
  contexts[name] = context;
  pages[name] = watch(await context.newPage(), problems);
  return pages[name];
}

/** What the page's browser keeps for the inbox: the records of the siteid-inbox database, or null without it. */
function inboxKeys(page) {
  return page.evaluate(async () => {
    if (!(await indexedDB.databases()).some((d) => d.name === 'siteid-inbox')) return null;
    const db = await new Promise((resolve, reject) => {
      const request = indexedDB.open('siteid-inbox');
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
    const records = await new Promise((resolve, reject) => {
      const request = db.transaction('encryption-keys').objectStore('encryption-keys').getAll();
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
    db.close();
    return records.map((r) => ({
      kid: r.kid,
      members: Object.keys(r).sort(),
      key: { type: r.privateKey.type, extractable: r.privateKey.extractable, usages: r.privateKey.usages, algorithm: r.privateKey.algorithm },
    }));
  });
}

/** The expected record of one kept encryption key. */
const keptKey = (kid) => ({ kid, members: ['kid', 'privateKey', 'publicJwk'], key: { type: 'private', extractable: false, usages: ['deriveBits'], algorithm: { name: 'ECDH', namedCurve: 'P-384' } } });

/** The node's published encryption key (use enc) from its JWKS. */
async function publishedEncryptionKey(node) {
  const jwks = await (await fetch(`${node.base}/.well-known/jwks.json`)).json();
  const keys = jwks.keys.filter((k) => k.use === 'enc');
  expect(keys).toHaveLength(1);
  return keys[0];
}

/** Claims a node over HTTP with a private JWK made here, with an encryption key unless told otherwise; resolves {signingKey, kid}. */
async function claimFromHere(node, jwk, password, { encryption = true } = {}) {
  const audience = node.base;
  const claimToken = await node.claimToken();
  const { wrappedKey, unlockVerifier } = await wrapPrivateKey({ ...jwk }, password, { p2c: 210_000 });
  const copy = { ...jwk };
  const kek = await encryptionKek(copy);
  const signingKey = await importSigningKey(copy);
  const publicJwk = { kty: 'EC', crv: 'P-384', x: jwk.x, y: jwk.y };
  const owner = { signingKey, kid: await jwkThumbprint(publicJwk) };
  const body = {
    claim_token: claimToken,
    public_key: publicJwk,
    wrapped_key: wrappedKey,
    unlock_verifier: unlockVerifier,
    proof: await claimProof(signingKey, { audience, claimToken }),
    statement: await keyStatement(owner, { newKid: owner.kid }),
    record: await recordSignature(owner, { audience, wrappedKey, unlockVerifier }),
  };
  if (encryption) body.encryption_key = (await newEncryptionKey(kek, owner)).body;
  const response = await fetch(`${audience}/api/v1/owner`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  expect(response.status, await response.clone().text()).toBe(201);
  return owner;
}

/** Posts a message (a compact JWE string or a general JSON object) to a node's inbox; resolves with its id. */
async function post(node, message) {
  const response = await fetch(`${node.base}/api/v1/inbox`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ message }) });
  const body = await response.json();
  expect(response.status, JSON.stringify(body)).toBe(201);
  return body.id;
}

/** Sends a message from node A's owner to node B with the command line; resolves with its id. */
async function sendFromA(subject, text) {
  const { code, stdout, stderr } = await run(['inbox', 'send', '--to', nodeB.base, '--from-key', sender.pem, '--from', nodeA.base, '--subject', subject, '--text', text]);
  expect(code, stderr).toBe(0);
  return stdout.trim();
}

/** Signs in at /login with the password in a fresh context and opens /account/inbox. */
async function newDeviceAtInbox(browser, name, node, password) {
  const page = await open(browser, name);
  await page.goto(`${node.base}/login`);
  await page.fill('#password', password);
  await page.click('#unlock-submit');
  await expect(page).toHaveURL(`${node.base}/account`, { timeout: 30_000 });
  await page.goto(`${node.base}/account/inbox`);
  return page;
}

/** The list item of the message with this id. */
const item = (page, id) => page.locator(`#messages li[data-id="${id}"]`);

/** B's private scalars by what they are: the owner keys' d and the encryption keys' d. */
const secrets = {};

/** Opens B's owner key here with the password, as any client would, and with it every encryption key; keeps their d. */
async function collectSecrets() {
  const params = await (await fetch(`${nodeB.base}/api/v1/unlock`)).json();
  const unlockKey = await deriveUnlock(PASSWORD_B, params);
  const unlock = { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ unlock_verifier: unlockKey.unlockVerifier }) };
  const unlocked = await (await fetch(`${nodeB.base}/api/v1/unlock`, unlock)).json();
  const owner = await unwrapPrivateKey(unlocked.wrapped_key, unlockKey);
  secrets[`the owner key ${unlocked.kid} d`] = Buffer.from(owner.d, 'base64url');
  const kek = await encryptionKek({ ...owner });
  for (const { kid, wrapped_key: wrapped } of (await asPage(pages.B1, nodeB, 'GET', '/owner/encryption-keys')).keys) {
    const parsed = parse(wrapped, true);
    const cek = await crypto.subtle.unwrapKey('raw', parsed.encryptedKey, kek, 'AES-KW', 'AES-GCM', false, ['decrypt']);
    secrets[`the encryption key ${kid} d`] = Buffer.from((await openJwk(parsed, cek)).d, 'base64url');
  }
}

/** An API call with a page's own session. */
async function asPage(page, node, method, route) {
  const token = await page.evaluate(() => sessionStorage.getItem('siteid.access_token'));
  const response = await fetch(`${node.base}/api/v1${route}`, { method, headers: { authorization: `Bearer ${token}` } });
  return response.status === 204 ? null : response.json();
}

test.beforeAll(async () => {
  [nodeA, nodeB] = await Promise.all([startNode(), startNode()]);
});

test.afterEach(async ({}, testInfo) => {
  if (testInfo.status !== testInfo.expectedStatus) {
    for (const [name, page] of Object.entries(pages)) await shot(page, testInfo, `failure-${name}`).catch(() => {});
  }
  expect(problems.splice(0), 'no uncaught errors, CSP violations or console errors in any page').toEqual([]);
});

test.afterAll(async () => {
  for (const context of Object.values(contexts)) await context.close();
  await Promise.all([nodeA?.stop(), nodeB?.stop()]);
});

test('node B is claimed at /setup with an encryption key, which the browser keeps as a non-extractable ECDH key', async ({ browser }, testInfo) => {
  const page = await open(browser, 'B1');
  await page.goto(`${nodeB.base}/setup#${await nodeB.claimToken()}`);
  await page.fill('#password', PASSWORD_B);
  await page.fill('#password-again', PASSWORD_B);
  const [claim] = await Promise.all([page.waitForRequest((r) => r.url().endsWith('/api/v1/owner') && r.method() === 'POST'), page.click('#setup-submit')]);
  await expect(page.locator('#setup-done')).toBeVisible({ timeout: 30_000 });
  const body = claim.postDataJSON();
  const ownerKid = await jwkThumbprint(body.public_key);
  const { public_key: encPublic, wrapped_key: wrapped, binding } = body.encryption_key;
  expect(Object.keys(body.encryption_key).sort()).toEqual(['binding', 'public_key', 'wrapped_key']);
  const encKid = await jwkThumbprint(encPublic);
  expect(encKid).not.toBe(ownerKid);
  expect(JSON.parse(Buffer.from(wrapped.split('.')[0], 'base64url'))).toEqual({ alg: 'A256KW', enc: 'A256GCM', cty: 'jwk+json', kid: encKid });
  const { payload, protectedHeader } = await jose.compactVerify(binding, await jose.importJWK(body.public_key, 'ES384'), { algorithms: ['ES384'] });
  expect(protectedHeader).toEqual({ alg: 'ES384', typ: 'siteid-enc-key+jwt', kid: ownerKid });
  const claims = JSON.parse(new TextDecoder().decode(payload));
  expect({ ...claims, iat: 0 }).toEqual({ sub: encKid, use: 'enc', iat: 0 });
  expect((await publishedEncryptionKey(nodeB)).kid).toBe(encKid);
  expect(await inboxKeys(page)).toEqual([keptKey(encKid)]);

  await page.click('text=Go to your account');
  await page.click('a[href="/account/inbox"]');
  await expect(page).toHaveURL(`${nodeB.base}/account/inbox`);
  await expect(page.locator('#inbox-empty')).toBeVisible();
  await expect(page.locator('#inbox-setup')).toBeHidden();
  await expect(page.locator('#inbox-unlock')).toBeHidden();
  await shot(page, testInfo, 'inbox-empty');
});

test('a message node A sends with siteid inbox send appears decrypted and verified', async ({}, testInfo) => {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
  sender.pem = path.join(nodeA.dataDir, 'a.pem');
  await writeFile(sender.pem, privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
  const owner = await claimFromHere(nodeA, privateKey.export({ format: 'jwk' }), PASSWORD_A);
  sender.kid = owner.kid;
  sender.id = await sendFromA(SUBJECT, TEXT);

  const page = pages.B1;
  await page.click('#inbox-reload');
  const message = item(page, sender.id);
  await expect(message.locator('h3')).toHaveText(SUBJECT);
  await expect(message.locator('.sender')).toContainText(`From ${new URL(nodeA.base).host}, verified`);
  await expect(message.locator('.sender')).toHaveClass(/\bverified\b/);
  await expect(message.locator('.message-text')).toHaveText(TEXT, { useInnerText: false });
  await expect(message).toContainText('Unread');
  await shot(page, testInfo, 'inbox-verified');
});

test('a forged sender signature shows the body marked unverified, and message text is never markup', async ({}, testInfo) => {
  const enc = await publishedEncryptionKey(nodeB);
  const recipient = { kty: enc.kty, crv: enc.crv, x: enc.x, y: enc.y };
  // Signed by a key A does not publish, naming A's key and A as the sender.
  const forger = await generateOwnerKey();
  const jws = await signMessage(await importSigningKey(forger.privateJwk), { kid: sender.kid, iss: nodeA.base, aud: nodeB.base, body: { subject: 'Urgent', text: FORGED_TEXT } });
  const compact = await new jose.CompactEncrypt(utf8(jws))
    .setProtectedHeader({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM', kid: enc.kid, cty: 'JWT' })
    .encrypt(await jose.importJWK(recipient, 'ECDH-ES+A256KW'));
  sender.forged = await post(nodeB, compact);
  // An anonymous JSON body whose text looks like markup, in the general JSON serialization.
  const general = await new jose.GeneralEncrypt(utf8(JSON.stringify({ subject: '<b>Hi</b>', text: MARKUP_TEXT })))
    .setProtectedHeader({ enc: 'A256GCM' })
    .addRecipient(await jose.importJWK(recipient, 'ECDH-ES+A256KW'))
    .setUnprotectedHeader({ alg: 'ECDH-ES+A256KW', kid: enc.kid })
    .encrypt();
  sender.anonymous = await post(nodeB, general);

  const page = pages.B1;
  await page.click('#inbox-reload');
  const forged = item(page, sender.forged);
  await expect(forged.locator('h3')).toHaveText('Urgent');
  await expect(forged.locator('.message-text')).toHaveText(FORGED_TEXT);
  await expect(forged.locator('.sender')).toContainText('Unverified: the signature does not verify');
  await expect(forged.locator('.sender')).toHaveClass(/\bunverified\b/);
  const anonymous = item(page, sender.anonymous);
  await expect(anonymous.locator('h3')).toHaveText('<b>Hi</b>');
  await expect(anonymous.locator('.message-text')).toHaveText(MARKUP_TEXT);
  await expect(anonymous.locator('.sender')).toContainText('Not signed');
  expect(await page.locator('#messages img, #messages script, #messages b').count()).toBe(0);
  expect(await page.evaluate(() => window.pwned)).toBeUndefined();
  // The genuine message is still verified beside them.
  await expect(item(page, sender.id).locator('.sender')).toContainText('verified');
  await shot(page, testInfo, 'inbox-forged');
});

test('Mark read and Delete change the stored messages', async () => {
  const page = pages.B1;
  const message = item(page, sender.id);
  await message.getByRole('button', { name: 'Mark read' }).click();
  await expect(message).toContainText('Read ');
  await expect(message.getByRole('button', { name: 'Mark read' })).toBeHidden();
  expect((await asPage(page, nodeB, 'GET', `/inbox/${sender.id}`)).read_at).toEqual(expect.any(Number));
  await item(page, sender.anonymous).getByRole('button', { name: 'Delete' }).click();
  await expect(item(page, sender.anonymous)).toHaveCount(0);
  await expect(page.locator('#status')).toHaveText('The message was deleted.');
  expect(await page.locator('#messages > :not(li)').count(), 'the list holds only messages').toBe(0);
  await page.click('#inbox-reload');
  await expect(item(page, sender.id)).toContainText('Read ');
  await expect(page.locator('#messages > li')).toHaveCount(2);
  const listed = await asPage(page, nodeB, 'GET', '/inbox');
  expect(listed.messages.map((m) => m.id).sort()).toEqual([sender.id, sender.forged].sort());
});

test('a second device unlocks the inbox with the password; signing out forgets its inbox keys', async ({ browser }, testInfo) => {
  const page = await newDeviceAtInbox(browser, 'B2', nodeB, PASSWORD_B);
  await expect(page.locator('#inbox-unlock')).toBeVisible();
  await expect(item(page, sender.id).locator('.sender')).toContainText('does not hold the key');
  expect(await inboxKeys(page)).toBeNull();
  await shot(page, testInfo, 'inbox-locked');
  await page.fill('#inbox-unlock-password', PASSWORD_B);
  await page.click('#inbox-unlock-submit');
  await expect(page.locator('#status')).toContainText('unlocked on this device', { timeout: 30_000 });
  await expect(page.locator('#inbox-unlock')).toBeHidden();
  await expect(item(page, sender.id).locator('.message-text')).toHaveText(TEXT);
  await expect(item(page, sender.id).locator('.sender')).toContainText(`From ${new URL(nodeA.base).host}, verified`);
  await expect(item(page, sender.forged).locator('.sender')).toContainText('Unverified');
  expect(await inboxKeys(page)).toEqual([keptKey((await publishedEncryptionKey(nodeB)).kid)]);

  await page.click('a[href="/account"]');
  // The account page wires its buttons once it has checked the node.
  await expect(page.locator('#sessions li.current')).toBeVisible();
  await page.click('#sign-out');
  await expect(page).toHaveURL(`${nodeB.base}/login`);
  expect(await inboxKeys(page)).toBeNull();
  expect(await page.evaluate(async () => (await indexedDB.databases()).map((d) => d.name))).toEqual(['siteid']);
});

test('a compromise rotation re-wraps the inbox key and adds a new one; every message stays readable', async ({ browser }, testInfo) => {
  const page = pages.B1;
  const oldKid = (await publishedEncryptionKey(nodeB)).kid;
  // The keys the rotation replaces are gone from the node after it: their d is taken now.
  await collectSecrets();
  await page.goto(`${nodeB.base}/account`);
  // The page wires its forms once it has checked the node.
  await expect(page.locator('#sessions li.current')).toBeVisible();
  await page.check('#reason-compromise');
  await page.fill('#rotate-password', PASSWORD_B);
  const [rotation] = await Promise.all([page.waitForRequest((r) => r.url().endsWith('/api/v1/owner/rotate')), page.click('#rotate-submit')]);
  await expect(page.locator('#status')).toContainText('The owner key is replaced', { timeout: 60_000 });
  await expect(page.locator('#status')).toContainText('new encryption key');
  const body = rotation.postDataJSON();
  expect(body.encryption_keys.map((k) => k.kid)).toEqual([oldKid]);
  expect(Object.keys(body.encryption_key).sort()).toEqual(['binding', 'public_key', 'wrapped_key']);
  const newKid = (await publishedEncryptionKey(nodeB)).kid;
  expect(newKid).not.toBe(oldKid);
  const later = await sendFromA('After the rotation', LATER_TEXT);

  // This device kept the new key it made and still holds the old one.
  await page.goto(`${nodeB.base}/account/inbox`);
  await expect(item(page, later).locator('.message-text')).toHaveText(LATER_TEXT);
  await expect(item(page, sender.id).locator('.message-text')).toHaveText(TEXT);
  expect((await inboxKeys(page)).map((k) => k.kid).sort()).toEqual([oldKid, newKid].sort());

  // A new device opens both keys, re-wrapped and wrapped under the new owner key, with the password.
  const other = await newDeviceAtInbox(browser, 'B3', nodeB, PASSWORD_B);
  await other.fill('#inbox-unlock-password', PASSWORD_B);
  await other.click('#inbox-unlock-submit');
  await expect(other.locator('#inbox-unlock')).toBeHidden({ timeout: 30_000 });
  await expect(item(other, later).locator('.sender')).toContainText('verified');
  await expect(item(other, sender.id).locator('.message-text')).toHaveText(TEXT);
  expect((await inboxKeys(other)).map((k) => k.kid).sort()).toEqual([oldKid, newKid].sort());
  await shot(other, testInfo, 'inbox-after-rotation');
});

test('an identity claimed without an inbox sets one up with the password', async ({ browser }, testInfo) => {
  const nodeC = await startNode();
  try {
    const { privateJwk } = await generateOwnerKey();
    await claimFromHere(nodeC, privateJwk, PASSWORD_C, { encryption: false });
    const page = await newDeviceAtInbox(browser, 'C1', nodeC, PASSWORD_C);
    await expect(page.locator('#inbox-setup')).toBeVisible();
    await expect(page.locator('#inbox-messages')).toBeHidden();
    await shot(page, testInfo, 'inbox-setup');
    await page.fill('#inbox-setup-password', PASSWORD_C);
    const [put] = await Promise.all([page.waitForRequest((r) => r.url().endsWith('/api/v1/owner/encryption-key')), page.click('#inbox-setup-submit')]);
    await expect(page.locator('#status')).toContainText('Your inbox is set up', { timeout: 30_000 });
    await expect(page.locator('#inbox-setup')).toBeHidden();
    await expect(page.locator('#inbox-empty')).toBeVisible();
    const kid = (await publishedEncryptionKey(nodeC)).kid;
    expect(await jwkThumbprint(put.postDataJSON().public_key)).toBe(kid);
    expect(await inboxKeys(page)).toEqual([keptKey(kid)]);

    // A session whose credential lacks the inbox capability is told so.
    await page.route('**/api/v1/owner/encryption-keys', (route) =>
      route.fulfill({ status: 403, contentType: 'application/problem+json', json: { type: 'urn:siteid:problem:insufficient-capability', title: 'Forbidden', status: 403, detail: 'This needs the inbox capability.' } }),
    );
    await page.reload();
    await expect(page.locator('#error')).toContainText('lacks the inbox capability');
    await expect(page.locator('#inbox-setup')).toBeHidden();
    await expect(page.locator('#inbox-messages')).toBeHidden();
  } finally {
    // Its page goes before its node does.
    await contexts.C1?.close();
    delete contexts.C1;
    delete pages.C1;
    await nodeC.stop();
  }
});

test('older messages come a page at a time', async () => {
  const enc = await publishedEncryptionKey(nodeB);
  const recipient = await jose.importJWK({ kty: enc.kty, crv: enc.crv, x: enc.x, y: enc.y }, 'ECDH-ES+A256KW');
  // Ten a minute per client address: twenty come from two loopback addresses.
  for (let n = 1; n <= 20; n++) {
    const message = await new jose.CompactEncrypt(utf8(`note ${n}`)).setProtectedHeader({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM', kid: enc.kid }).encrypt(recipient);
    const { status } = await postFrom(nodeB.base, n <= 10 ? '127.0.0.2' : '127.0.0.3', '/api/v1/inbox', { message });
    expect(status).toBe(201);
  }
  const page = pages.B1;
  await page.click('#inbox-reload');
  await expect(page.locator('#messages > li')).toHaveCount(20);
  await expect(page.locator('#inbox-more')).toBeVisible();
  await page.click('#inbox-more');
  await expect(page.locator('#messages > li')).toHaveCount(23);
  await expect(page.locator('#inbox-more')).toBeHidden();
  await expect(item(page, sender.id).locator('.message-text')).toHaveText(TEXT);
  // Each message once: the second page starts where the first ended.
  await expect(page.locator('#messages .message-text', { hasText: /^note \d+$/ })).toHaveCount(20);
  const notes = await page.locator('#messages .message-text', { hasText: /^note \d+$/ }).allTextContents();
  expect(notes.map((t) => Number(t.slice(5))).sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
});

test('a passkey with a PRF copy of the owner key unlocks the inbox on a device without its keys', async ({ browser }, testInfo) => {
  const nodeP = await startNode({ localhost: true });
  try {
    await nodeP.init(PASSWORD_C);
    const page = await open(browser, 'P1');
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('WebAuthn.enable');
    const options = { protocol: 'ctap2', ctap2Version: 'ctap2_1', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true, hasPrf: true, automaticPresenceSimulation: true };
    await cdp.send('WebAuthn.addVirtualAuthenticator', { options });
    await page.goto(`${nodeP.base}/login`);
    await page.fill('#password', PASSWORD_C);
    await page.click('#unlock-submit');
    await expect(page).toHaveURL(`${nodeP.base}/account`, { timeout: 30_000 });
    await page.goto(`${nodeP.base}/account/credentials`);
    await page.fill('#passkey-label', 'Laptop passkey');
    await page.fill('#passkey-password', PASSWORD_C);
    await page.click('#passkey-submit');
    await expect(page.locator('#status')).toContainText('It also unlocks your key on a new device', { timeout: 30_000 });

    await page.goto(`${nodeP.base}/account/inbox`);
    await expect(page.locator('#inbox-unlock')).toBeVisible();
    const sent = [];
    page.on('request', (request) => sent.push(`${request.method()} ${new URL(request.url()).pathname}`));
    await page.click('#inbox-unlock-passkey');
    await expect(page.locator('#status')).toContainText('unlocked on this device', { timeout: 30_000 });
    await expect(page.locator('#inbox-unlock')).toBeHidden();
    expect(await inboxKeys(page)).toEqual([keptKey((await publishedEncryptionKey(nodeP)).kid)]);
    expect(sent, 'no password unlock').not.toContain('POST /api/v1/unlock');
    // The passkey's own session ended at once; the page's session goes on.
    expect(sent).toEqual(expect.arrayContaining(['POST /api/v1/auth/passkey', 'DELETE /api/v1/session']));
    await page.reload();
    await expect(page).toHaveURL(`${nodeP.base}/account/inbox`);
    await expect(page.locator('#inbox-empty')).toBeVisible();
    await shot(page, testInfo, 'inbox-passkey-unlocked');
  } finally {
    await contexts.P1?.close();
    delete contexts.P1;
    delete pages.P1;
    await nodeP.stop();
  }
});

test('zero knowledge: no request and nothing in B’s data directory holds a plaintext, the encryption key’s d or the owner key’s d', async () => {
  await collectSecrets();
  expect(Object.keys(secrets)).toHaveLength(4);
  for (const text of [TEXT, FORGED_TEXT, MARKUP_TEXT, LATER_TEXT]) secrets[`the plaintext ${JSON.stringify(text.slice(0, 20))}`] = Buffer.from(text, 'utf8');

  const files = [];
  const walk = async (dir) => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) await walk(full);
      else if (entry.isFile()) files.push({ name: path.relative(nodeB.dataDir, full), bytes: await readFile(full) });
    }
  };
  await walk(nodeB.dataDir);
  expect(files.map((f) => f.name)).toEqual(expect.arrayContaining(['siteid.sqlite3', 'siteid.sqlite3-wal']));
  files.push({ name: 'the node’s log', bytes: Buffer.from(nodeB.stderr()) }, { name: 'the browser’s request bodies', bytes: Buffer.from(bodies.join('\n')) });
  expect(bodies.some((b) => b.includes('encryption_key'))).toBe(true);
  for (const [what, secret] of Object.entries(secrets)) {
    const forms = [secret, Buffer.from(secret.toString('base64url')), Buffer.from(secret.toString('base64')), Buffer.from(secret.toString('hex')), Buffer.from(secret.toString('hex').toUpperCase())];
    for (const file of files) {
      for (const form of forms) expect(file.bytes.includes(form), `${what} in ${file.name}`).toBe(false);
    }
  }
});
