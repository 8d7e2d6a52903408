// The node as IndieAuth provider in Chromium: a fake client on another loopback port (its metadata document, a start
// page with a PKCE S256 request, a callback that redirects to the client's other origin, where the code is redeemed
// server-side) sends a fresh tab to the consent page,
// which goes through /login (the device key signs in) and back to the same request; the owner keeps only `profile`,
// picks a lifetime and approves, Chromium follows the form's redirect under the page's form-action, and the client's
// token exchange gets scope `profile` and `me` = iss; /account/apps lists the grant and Revoke ends its tokens; Deny
// sends access_denied back; the profile set on /account fills the home page's h-card and the token answer.

import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { expect, test } from '@playwright/test';
import { CSP, requestsTo, shot, startNode, watch } from './helpers.mjs';

const PASSWORD = 'orchard violet compass tundra 83';
const CLIENT_NAME = 'Fake Reader';
const ONE_WEEK = 7 * 86_400;
const THIRTY_DAYS = 30 * 86_400;

test.describe.configure({ mode: 'serial' });

let node;
let client;
/** The issuer and profile URL: the node's public URL with a slash. */
let iss;
let context;
const pages = {};
const problems = [];
/** The access token of the tab that signs in on its way to the consent page. */
let tabToken;
/** The token answer of the first approval, whose grant the owner revokes. */
let firstGrant;
/** The token answer of the second approval, whose access token authorizes introspection. */
let secondGrant;

/** POSTs a form to url with fetch (10 s at most); resolves {status, headers, body} with body parsed as JSON when it is. */
async function postForm(url, params, headers = {}) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', ...headers },
    body: new URLSearchParams(params),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await response.text();
  let body = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Not JSON: the text stays.
  }
  return { status: response.status, headers: response.headers, body };
}

/** Text made safe for an HTML attribute or element. */
const escapeHtml = (text) => text.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function sendHtml(response, status, body) {
  response.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  response.end(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${CLIENT_NAME}</title></head><body>${body}</body></html>`);
}

/**
 * A fake IndieAuth client on 127.0.0.1: its Client ID Metadata Document at /, a start page /start?scope=S that makes a
 * fresh state and PKCE verifier (the S256 challenge computed here) and links to the node's authorization endpoint, and
 * /callback, which records the query it gets and, given a code, redeems it at the node's token endpoint.
 * Resolves {origin, clientId, redirectUri, metadataFetches, callbacks, close()}.
 */
async function startClient(nodeBase) {
  const flows = new Map();
  const metadataFetches = [];
  const callbacks = [];
  let clientId = '';
  let redirectUri = '';
  /** The client's other origin (the same server by another name), where its callback lands. */
  let landing = '';
  const server = http.createServer(async (request, response) => {
    const url = new URL(request.url, clientId);
    try {
      if (request.method === 'GET' && url.pathname === '/') {
        metadataFetches.push({ accept: request.headers.accept ?? null });
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ client_id: clientId, client_name: CLIENT_NAME, client_uri: clientId, redirect_uris: [redirectUri] }));
        return;
      }
      if (request.method === 'GET' && url.pathname === '/start') {
        const state = randomBytes(16).toString('base64url');
        const verifier = randomBytes(32).toString('base64url');
        const challenge = createHash('sha256').update(verifier).digest('base64url');
        flows.set(state, verifier);
        const authorize = new URL('/indieauth/authorize', nodeBase);
        authorize.search = new URLSearchParams({
          response_type: 'code',
          client_id: clientId,
          redirect_uri: redirectUri,
          state,
          code_challenge: challenge,
          code_challenge_method: 'S256',
          scope: url.searchParams.get('scope') ?? 'profile create',
          me: `${nodeBase}/`,
        }).toString();
        sendHtml(response, 200, `<h1>${CLIENT_NAME}</h1><p><a id="sign-in" href="${escapeHtml(authorize.href)}">Sign in with your domain</a></p>`);
        return;
      }
      if (request.method === 'GET' && url.pathname === '/callback') {
        // Like many real clients, the callback moves on to another of the client's origins: Chromium must not hold the
        // node's consent form responsible for that redirect.
        response.writeHead(302, { location: `${landing}/landed${url.search}`, 'cache-control': 'no-store' });
        response.end();
        return;
      }
      if (request.method === 'GET' && url.pathname === '/landed') {
        const entry = { query: Object.fromEntries(url.searchParams), exchange: null };
        callbacks.push(entry);
        const verifier = flows.get(entry.query.state);
        if (entry.query.code && verifier) {
          entry.exchange = await postForm(`${nodeBase}/indieauth/token`, {
            grant_type: 'authorization_code',
            code: entry.query.code,
            client_id: clientId,
            redirect_uri: redirectUri,
            code_verifier: verifier,
          });
          delete entry.exchange.headers;
        }
        const outcome = entry.query.error ? `refused: ${entry.query.error}` : entry.exchange?.status === 200 ? `signed in as ${entry.exchange.body.me}` : 'the code did not redeem';
        sendHtml(response, 200, `<h1>${CLIENT_NAME}</h1><p id="outcome">${escapeHtml(outcome)}</p>`);
        return;
      }
      sendHtml(response, 404, '<p>Not found.</p>');
    } catch (error) {
      callbacks.push({ query: null, failure: String(error) });
      sendHtml(response, 500, `<p id="outcome">${escapeHtml(String(error))}</p>`);
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${server.address().port}`;
  clientId = `${origin}/`;
  redirectUri = `${origin}/callback`;
  landing = `http://localhost:${server.address().port}`;
  return {
    origin,
    landing,
    clientId,
    redirectUri,
    metadataFetches,
    callbacks,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(resolve);
      }),
  };
}

/** The main frame's URLs from now on, one per navigation. */
function navigations(page) {
  const seen = [];
  page.on('framenavigated', (frame) => {
    if (frame === page.mainFrame()) seen.push(frame.url());
  });
  return seen;
}

/** The CSP of every answer to GET /indieauth/authorize the page receives from now on, as {status, csp}. */
function consentAnswers(page) {
  const seen = [];
  page.on('response', (response) => {
    if (response.request().method() === 'GET' && response.url().startsWith(`${node.base}/indieauth/authorize?`)) {
      seen.push({ status: response.status(), csp: response.headers()['content-security-policy'] });
    }
  });
  return seen;
}

/** Opens the client's start page in tab and follows its sign-in link; resolves {authorizeUrl, state}. */
async function startFlow(tab, scope) {
  await tab.goto(`${client.origin}/start?${new URLSearchParams({ scope })}`);
  const authorizeUrl = await tab.locator('#sign-in').getAttribute('href');
  const state = new URL(authorizeUrl).searchParams.get('state');
  await tab.click('#sign-in');
  return { authorizeUrl, state };
}

/** Waits until tab shows what the locator names or the node's IndieAuth error page, and fails with the error page's text. */
async function notAnErrorPage(tab, expected, what) {
  await expect(tab.locator(`${expected}, #indieauth-error`).first()).toBeVisible();
  const errorPage = tab.locator('#indieauth-error');
  expect((await errorPage.count()) ? `${tab.url()}: ${await errorPage.textContent()}` : null, what).toBeNull();
}

/** Waits until tab shows the consent page signed in and ready to answer. */
async function consentReady(tab) {
  await notAnErrorPage(tab, '#consent:not([hidden])', 'the node shows the consent page, not an error page');
  await expect(tab.locator('#consent-approve')).toBeEnabled();
  await expect(tab.locator('#consent-deny')).toBeEnabled();
  await expect(tab.locator('#error')).toBeHidden();
}

/** What the fake client's callback recorded for state, once the browser shows the callback's answer. */
async function callbackFor(tab, state) {
  await notAnErrorPage(tab, '#outcome', 'the node takes the answer and redirects to the client, not to an error page');
  await expect(tab).toHaveURL(new RegExp(`^${client.landing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/landed\\?`));
  const entries = client.callbacks.filter((entry) => entry.query?.state === state);
  expect(entries, 'the client received exactly one answer for this request').toHaveLength(1);
  return entries[0];
}

/** The access token of the tab's session (read while the tab shows a page of the node: sessionStorage is per origin). */
async function sessionToken(page) {
  expect(new URL(page.url()).origin, 'the page shows the node').toBe(node.base);
  const token = await page.evaluate(() => sessionStorage.getItem('siteid.access_token'));
  expect(token, 'the page holds a session').toBeTruthy();
  return token;
}

/** Calls the node's API with a session's access token; resolves {status, body}. */
async function api(token, method, path) {
  const response = await fetch(`${node.base}/api/v1${path}`, { method, headers: { authorization: `Bearer ${token}`, accept: 'application/json' }, signal: AbortSignal.timeout(10_000) });
  return { status: response.status, body: response.status === 204 ? null : await response.json() };
}

const introspect = (bearer, token) => postForm(`${node.base}/indieauth/introspect`, { token }, { authorization: `Bearer ${bearer}` });

test.beforeAll(async () => {
  node = await startNode();
  iss = `${node.base}/`;
  client = await startClient(node.base);
});

test.afterEach(async ({}, testInfo) => {
  if (testInfo.status !== testInfo.expectedStatus) {
    for (const [name, page] of Object.entries(pages)) await shot(page, testInfo, `failure-${name}`).catch(() => {});
  }
  const seen = problems.splice(0);
  expect(seen, 'no uncaught errors, CSP violations or console errors in any page').toEqual([]);
});

test.afterAll(async () => {
  await context?.close();
  await client?.close();
  await node?.stop();
});

test('the owner claims the node in the browser, whose device credential may approve sign-ins', async ({ browser }) => {
  context = await browser.newContext();
  const page = watch(await context.newPage(), problems);
  pages.claim = page;
  await page.goto(`${node.base}/setup#${await node.claimToken()}`);
  await expect(page.locator('#setup-submit')).toBeEnabled();
  await page.fill('#password', PASSWORD);
  await page.fill('#password-again', PASSWORD);
  await page.click('#setup-submit');
  await expect(page.locator('#setup-done')).toBeVisible({ timeout: 30_000 });

  const token = await sessionToken(page);
  const session = await api(token, 'GET', '/session');
  expect(session.status).toBe(200);
  expect(session.body.capabilities).toContain('indieauth');
  const { body } = await api(token, 'GET', '/credentials');
  const current = body.credentials.filter((credential) => credential.current);
  expect(current).toHaveLength(1);
  expect(current[0].kind).toBe('device');
  expect(current[0].capabilities, 'a new device gets the indieauth capability').toContain('indieauth');
});

test('a fresh tab signs in with the device key on the way, keeps only profile and approves Fake Reader', async ({}, testInfo) => {
  const tab = watch(await context.newPage(), problems);
  pages.tab = tab;
  const toNode = requestsTo(tab, node.base);
  const visited = navigations(tab);
  const answers = consentAnswers(tab);

  const { authorizeUrl, state } = await startFlow(tab, 'profile create');
  await consentReady(tab);
  await expect(tab, 'the browser is back at the same request').toHaveURL(authorizeUrl);
  expect(visited, 'the consent page sent the tab without a session to /login and /login sent it back').toEqual([
    `${client.origin}/start?scope=profile+create`,
    authorizeUrl,
    `${node.base}/login`,
    authorizeUrl,
  ]);
  expect(toNode, 'the tab signed in with its device key').toContain('POST /api/v1/auth/login');
  expect(toNode, 'and not with the password').not.toContain('POST /api/v1/unlock');
  tabToken = await sessionToken(tab);

  await expect(tab.locator('#consent-client-name')).toHaveText(CLIENT_NAME);
  await expect(tab.locator('#consent-client-id')).toHaveText(client.clientId);
  await expect(tab.locator('#consent-redirect')).toHaveText(client.origin);
  await expect(tab.locator('#consent-me')).toHaveText(iss);
  await expect(tab.locator('#consent'), 'the node read the client metadata').not.toContainText('publishes nothing');
  expect(client.metadataFetches.length, 'the node fetched the client metadata document').toBeGreaterThan(0);
  await expect(tab.locator('input[name="scope.profile"]')).toBeChecked();
  await expect(tab.locator('input[name="scope.create"]')).toBeChecked();
  await expect(tab.locator('#consent-scopes input[type="checkbox"]')).toHaveCount(2);
  await expect(tab.locator('#consent-lifetime')).toHaveValue(String(THIRTY_DAYS));

  const consentCsp = CSP.replace("form-action 'self'", `form-action 'self' ${client.origin}`);
  expect(answers.length, 'the consent page was loaded before and after sign-in').toBe(2);
  for (const answer of answers) expect(answer).toEqual({ status: 200, csp: consentCsp });

  await tab.locator('input[name="scope.create"]').uncheck();
  await tab.selectOption('#consent-lifetime', String(ONE_WEEK));
  await shot(tab, testInfo, 'consent');
  await tab.click('#consent-approve');

  const callback = await callbackFor(tab, state);
  expect(Object.keys(callback.query).sort(), 'the code comes back with state and iss only').toEqual(['code', 'iss', 'state']);
  expect(callback.query.iss).toBe(iss);
  expect(callback.query.code).toMatch(/^[A-Za-z0-9_-]{43}$/);
  expect(callback.exchange.status, JSON.stringify(callback.exchange.body)).toBe(200);
  expect(callback.exchange.body).toMatchObject({ token_type: 'Bearer', scope: 'profile', me: iss, access_token: expect.any(String), refresh_token: expect.any(String), expires_in: expect.any(Number) });
  expect(callback.exchange.body.expires_in).toBeLessThanOrEqual(3600);
  expect(callback.exchange.body.profile, 'the profile scope gives the profile').toMatchObject({ url: iss });
  await expect(tab.locator('#outcome')).toHaveText(`signed in as ${iss}`);
  await shot(tab, testInfo, 'client-signed-in');
  firstGrant = callback.exchange.body;

  const grants = await api(tabToken, 'GET', '/indieauth/grants');
  expect(grants.status).toBe(200);
  expect(grants.body.grants).toHaveLength(1);
  const [grant] = grants.body.grants;
  expect(grant).toMatchObject({ client_id: client.clientId, client_name: CLIENT_NAME, redirect_uri: client.redirectUri, scope: 'profile' });
  expect(grant.expires_at - grant.created_at, 'the lifetime chosen').toBe(ONE_WEEK);
  const session = await api(tabToken, 'GET', '/session');
  expect(grant.credential_id, 'the device credential approved it').toBe(session.body.credential_id);

  const audit = await node.audit();
  expect(audit).toContain('indieauth.approved');
  expect(audit).toContain('indieauth.code_redeemed');
});

test('/account/apps lists Fake Reader, and Revoke ends its tokens', async ({}, testInfo) => {
  const tab = pages.tab;
  expect((await introspect(firstGrant.access_token, firstGrant.access_token)).body).toEqual({
    active: true,
    me: iss,
    client_id: client.clientId,
    scope: 'profile',
    exp: expect.any(Number),
    iat: expect.any(Number),
    token_type: 'Bearer',
  });

  await tab.goto(`${node.base}/account/apps`);
  await expect(tab.locator('#apps-table')).toBeVisible();
  const rows = tab.locator('#apps-list tr');
  await expect(rows).toHaveCount(1);
  await expect(rows.first()).toContainText(CLIENT_NAME);
  await expect(rows.first()).toContainText(client.clientId);
  await expect(rows.first().locator('td').nth(1)).toHaveText('profile');
  await shot(tab, testInfo, 'apps');

  await tab.getByRole('button', { name: `Revoke ${CLIENT_NAME}` }).click();
  await expect(tab.locator('#status')).toContainText(`${CLIENT_NAME} no longer has access`);
  await expect(tab.locator('#apps-empty')).toBeVisible();
  await expect(tab.locator('#apps-table')).toBeHidden();
  await expect(rows).toHaveCount(0);
  await expect(tab.locator('#error')).toBeHidden();
  await shot(tab, testInfo, 'apps-revoked');

  const refresh = await postForm(`${node.base}/indieauth/token`, { grant_type: 'refresh_token', refresh_token: firstGrant.refresh_token, client_id: client.clientId });
  expect(refresh.status).toBe(400);
  expect(refresh.body.error, 'the revoked grant refreshes no more').toBe('invalid_grant');
  const ownUse = await introspect(firstGrant.access_token, firstGrant.access_token);
  expect(ownUse.status, 'a revoked token authorizes no introspection').toBe(401);
  expect(ownUse.headers.get('www-authenticate')).toContain('error="invalid_token"');

  // A second approval from the signed-in tab (no sign-in on the way), keeping both scopes, whose token asks about the first.
  const visited = navigations(tab);
  const { authorizeUrl, state } = await startFlow(tab, 'profile create');
  await consentReady(tab);
  expect(visited, 'a signed-in tab goes straight to the consent page').toEqual([`${client.origin}/start?scope=profile+create`, authorizeUrl]);
  await tab.click('#consent-approve');
  const callback = await callbackFor(tab, state);
  expect(callback.exchange.status, JSON.stringify(callback.exchange.body)).toBe(200);
  expect(callback.exchange.body).toMatchObject({ scope: 'profile create', me: iss });
  secondGrant = callback.exchange.body;

  for (const token of [firstGrant.access_token, firstGrant.refresh_token]) {
    const answer = await introspect(secondGrant.access_token, token);
    expect(answer.status).toBe(200);
    expect(answer.body, 'the revoked grant’s tokens are inactive').toEqual({ active: false });
  }
  expect((await introspect(secondGrant.access_token, secondGrant.access_token)).body).toMatchObject({ active: true, scope: 'profile create', client_id: client.clientId, me: iss });

  await tab.goto(`${node.base}/account/apps`);
  await expect(rows).toHaveCount(1);
  await expect(rows.first().locator('td').nth(1)).toHaveText('profile create');
  expect(await node.audit()).toContain('indieauth.token_revoked');
});

test('Deny sends access_denied back to the client with state and iss', async ({}, testInfo) => {
  const tab = pages.tab;
  const answers = consentAnswers(tab);
  const { state } = await startFlow(tab, 'profile');
  await consentReady(tab);
  await expect(tab.locator('#consent-scopes input[type="checkbox"]')).toHaveCount(1);
  expect(answers.map((answer) => answer.csp)).toEqual([CSP.replace("form-action 'self'", `form-action 'self' ${client.origin}`)]);
  await tab.click('#consent-deny');

  const callback = await callbackFor(tab, state);
  expect(Object.keys(callback.query).sort()).toEqual(['error', 'error_description', 'iss', 'state']);
  expect(callback.query).toMatchObject({ error: 'access_denied', state, iss });
  expect(callback.exchange).toBeNull();
  await expect(tab.locator('#outcome')).toHaveText('refused: access_denied');
  await shot(tab, testInfo, 'client-denied');

  const grants = await api(tabToken, 'GET', '/indieauth/grants');
  expect(grants.body.grants.map((grant) => grant.scope), 'a denial grants nothing').toEqual(['profile create']);
  expect(await node.audit()).toContain('indieauth.denied');
});

test('the profile set on /account fills the home page h-card and what clients with the profile scope receive', async ({}, testInfo) => {
  const tab = pages.tab;
  await tab.goto(`${node.base}/account`);
  // The page wires its buttons once it has checked the node.
  await expect(tab.locator('#sessions li.current')).toBeVisible();
  await tab.click('#profile-edit');
  await expect(tab.locator('#profile-form')).toBeVisible();
  await tab.fill('#profile-name', 'Orchard Owner');
  await tab.fill('#profile-photo', 'https://photos.example/me.jpg');
  await tab.fill('#profile-email', 'owner@orchard.example');
  await tab.fill('#profile-links', 'Code https://git.example/owner');
  await tab.click('#profile-save');
  await expect(tab.locator('#status')).toHaveText('Your profile is saved.');
  await shot(tab, testInfo, 'profile-saved');

  const home = await fetch(`${node.base}/`, { signal: AbortSignal.timeout(10_000) });
  const html = await home.text();
  expect(html).toContain('<a class="p-name u-url u-uid" href="' + iss + '">Orchard Owner</a>');
  expect(html).toContain('class="u-photo" src="https://photos.example/me.jpg"');
  expect(html).toContain('<a class="u-email" href="mailto:owner@orchard.example">');
  expect(html).toContain('<a rel="me" class="u-url" href="https://git.example/owner">Code</a>');
  expect(home.headers.get('content-security-policy')).toBe(CSP.replace("img-src 'self' data:", "img-src 'self' data: https://photos.example"));

  const { state } = await startFlow(tab, 'profile email');
  await consentReady(tab);
  await tab.click('#consent-approve');
  const callback = await callbackFor(tab, state);
  expect(callback.exchange.body.profile).toEqual({ name: 'Orchard Owner', url: iss, photo: 'https://photos.example/me.jpg', email: 'owner@orchard.example' });
  expect(await node.audit()).toContain('profile.changed');
});
