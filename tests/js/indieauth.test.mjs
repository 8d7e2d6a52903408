// Black-box IndieAuth tests against the real binary on loopback: a stock OAuth client library (oauth4webapi) finds the node
// from the owner's home page, the owner approves on the consent page, and the library redeems, refreshes, introspects,
// revokes and reads userinfo exactly as docs/protocol.md ("IndieAuth: signing in to other sites with the domain") says.
// Needs `cargo build` first (or SITEID_BIN pointing at a built binary).

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as oauth from 'oauth4webapi';
import { generateOwnerKey } from '../../static/js/wrapped-key.mjs';
import { TestNode, claimNode, requireBinary, signIn } from './inbox-helpers.mjs';
import {
  Bystander,
  FakeClient,
  OAUTH_OPTIONS,
  answerConsent,
  authorizationUrl,
  bearerAuthentication,
  fetchManual,
  parseLinkElements,
  parseLinkHeader,
  scopeList,
} from './indieauth-helpers.mjs';

const CLIENT_NAME = 'Stock Library Test Client';
const PROFILE = { name: 'Alice Example', email: 'alice@example.org' };
/** Access tokens live one hour (docs/protocol.md, "Grants and tokens"). */
const ACCESS_TOKEN_SECONDS = 3600;

/** The directives of a Content-Security-Policy header as {name: [sources]}. */
function cspDirectives(value) {
  const directives = {};
  for (const part of (value ?? '').split(';')) {
    const [name, ...sources] = part.trim().split(/\s+/);
    if (name) directives[name.toLowerCase()] = sources;
  }
  return directives;
}

/** Asserts a 302 to the client's redirect URL; resolves with the Location as a URL. */
function redirectToClient(res, client, what) {
  const location = res.headers.get('location');
  assert.equal(res.status, 302, `${what}: expected 302, got ${res.status} (Location ${location})`);
  assert.ok(location, `${what}: the redirect has a Location`);
  const url = new URL(location);
  assert.equal(`${url.origin}${url.pathname}`, client.redirectUri, `${what}: redirected to ${location}`);
  return url;
}

/** Asserts the headers RFC 6749 §5.1 wants on a token answer. */
function assertTokenHeaders(response, what) {
  assert.equal(response.status, 200, `${what}: status ${response.status}`);
  assert.match(response.headers.get('content-type') ?? '', /^application\/json\b/, `${what}: content type`);
  assert.match(response.headers.get('cache-control') ?? '', /no-store/, `${what}: Cache-Control`);
}

describe('a stock OAuth client library (oauth4webapi) signs in to a site with the node as its IndieAuth server', () => {
  let node;
  let client;
  let bystander;
  let session;
  let me;
  let as;
  let discovery;
  /** An access token of a grant used only to authorize introspection calls. */
  let inspector;

  /** Discovery as a client does it: the home page's Link header (checked against its <link> element), then RFC 8414 metadata. */
  async function discover() {
    const home = await fetchManual(`${node.base}/`);
    const html = await home.text();
    const fromHeader = parseLinkHeader(home.headers.get('link')).find((l) => l.rel === 'indieauth-metadata');
    const fromElement = parseLinkElements(html).find((l) => l.rel === 'indieauth-metadata');
    assert.ok(fromHeader, `GET / has a Link header with rel="indieauth-metadata": ${home.headers.get('link')}`);
    const metadataUrl = new URL(fromHeader.href);
    // The metadata URL is the issuer followed by /.well-known/oauth-authorization-server (RFC 8414 §3).
    const issuerUrl = new URL(metadataUrl.href.replace(/\.well-known\/oauth-authorization-server$/, ''));
    const response = await oauth.discoveryRequest(issuerUrl, { ...OAUTH_OPTIONS, algorithm: 'oauth2' });
    const server = await oauth.processDiscoveryResponse(issuerUrl, response);
    return { home, html, fromHeader, fromElement, metadataUrl, issuerUrl, response, server };
  }

  /** Sends the authorization request and checks the consent page; resolves with what the rest of the flow needs. */
  async function requestAuthorization(scope) {
    const verifier = oauth.generateRandomCodeVerifier();
    const state = oauth.generateRandomState();
    const authUrl = authorizationUrl(as, client, { scope, state, codeChallenge: await oauth.calculatePKCECodeChallenge(verifier) });
    const page = await fetchManual(authUrl);
    const html = await page.text();
    assert.equal(page.status, 200, `GET ${authUrl}: ${page.status} ${html.slice(0, 500)}`);
    return { verifier, state, authUrl, page, html };
  }

  /** Approves a request keeping `keep` (all its scopes unless given); resolves with the callback URL and the request. */
  async function approve(scope, { keep = scopeList(scope), lifetime } = {}) {
    const request = await requestAuthorization(scope);
    const res = await answerConsent(node, session, request.authUrl, { keep, lifetime });
    const callback = redirectToClient(res, client, 'POST /indieauth/consent (approve)');
    return { ...request, callback };
  }

  /** Redeems the code of a callback at the token endpoint; resolves with the raw response (unprocessed). */
  function redeem(callback, state, verifier) {
    const params = oauth.validateAuthResponse(as, client.oauthClient, callback, state);
    return oauth.authorizationCodeGrantRequest(as, client.oauthClient, oauth.None(), params, client.redirectUri, verifier, OAUTH_OPTIONS);
  }

  /** The whole sign-in: authorization, consent, redemption; resolves with the processed token answer. */
  async function signInTo(scope, options) {
    const { callback, state, verifier } = await approve(scope, options);
    const response = await redeem(callback, state, verifier);
    assertTokenHeaders(response, 'POST /indieauth/token (authorization_code)');
    return oauth.processAuthorizationCodeResponse(as, client.oauthClient, response);
  }

  /** Introspects a token, authorized with `bearer` (the inspector's token unless given); resolves with the processed answer. */
  async function introspect(token, bearer = inspector) {
    const response = await oauth.introspectionRequest(as, client.oauthClient, bearerAuthentication(bearer), token, OAUTH_OPTIONS);
    return oauth.processIntrospectionResponse(as, client.oauthClient, response);
  }

  /** Refreshes; resolves with the raw response. */
  function refresh(refreshToken) {
    return oauth.refreshTokenGrantRequest(as, client.oauthClient, oauth.None(), refreshToken, OAUTH_OPTIONS);
  }

  before(async () => {
    requireBinary();
    node = await TestNode.start('indieauth');
    client = await FakeClient.start(CLIENT_NAME);
    bystander = await Bystander.start();
    const owner = await claimNode(node, (await generateOwnerKey()).privateJwk, { withEncryptionKey: false });
    session = await signIn(node, owner);
    await node.expect(200, 'PUT', '/api/v1/profile', { token: session, body: PROFILE });
    me = `${node.base}/`;
    discovery = await discover();
    as = discovery.server;
    inspector = (await signInTo('create')).access_token;
  });

  after(async () => {
    await Promise.all([node?.stop(), client?.stop(), bystander?.stop()]);
  });

  it('finds the metadata from the home page (Link header and <link> element) and the issuer is the public URL with a slash', async () => {
    const { home, fromHeader, fromElement, metadataUrl, response } = discovery;
    assert.equal(home.status, 200);
    assert.equal(fromHeader.href, `${node.base}/.well-known/oauth-authorization-server`);
    assert.deepEqual(fromElement, fromHeader, 'the <link rel="indieauth-metadata"> names the same URL as the Link header');
    const links = parseLinkHeader(home.headers.get('link'));
    assert.ok(links.some((l) => l.rel === 'authorization_endpoint' && l.href === `${node.base}/indieauth/authorize`), JSON.stringify(links));
    assert.ok(links.some((l) => l.rel === 'token_endpoint' && l.href === `${node.base}/indieauth/token`), JSON.stringify(links));
    const head = await fetchManual(`${node.base}/`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('link'), home.headers.get('link'), 'HEAD / carries the same Link header');
    assert.equal(response.url, metadataUrl.href, 'oauth4webapi fetched the metadata URL the home page names');
    assert.equal(as.issuer, me, 'the issuer is exactly the public URL with a trailing slash');
    assert.equal(as.authorization_endpoint, `${node.base}/indieauth/authorize`);
    assert.equal(as.token_endpoint, `${node.base}/indieauth/token`);
    assert.equal(as.introspection_endpoint, `${node.base}/indieauth/introspect`);
    assert.equal(as.revocation_endpoint, `${node.base}/indieauth/revoke`);
    assert.equal(as.userinfo_endpoint, `${node.base}/indieauth/userinfo`);
    assert.deepEqual(as.code_challenge_methods_supported, ['S256']);
    assert.equal(as.authorization_response_iss_parameter_supported, true);
    assert.ok(as.scopes_supported.includes('profile') && as.scopes_supported.includes('create'), JSON.stringify(as.scopes_supported));
  });

  it('shows the consent page, and an approval redeemed at the token endpoint gives me, scope, expiry, refresh token and profile', async () => {
    const { html, page, authUrl, state, verifier } = await requestAuthorization('profile create');
    assert.match(page.headers.get('content-type') ?? '', /^text\/html\b/);
    assert.ok(html.includes(CLIENT_NAME), 'the consent page shows the client_name of the metadata document');
    assert.ok(html.includes(client.clientId), 'the consent page shows the full client_id');
    const formAction = cspDirectives(page.headers.get('content-security-policy'))['form-action'] ?? [];
    assert.ok(formAction.includes(client.origin), `CSP form-action ${JSON.stringify(formAction)} includes the client's origin ${client.origin}`);
    const lookups = client.requests.filter((r) => r.method === 'GET' && r.url === '/');
    assert.ok(lookups.length >= 1, 'the node fetched the client metadata document');
    assert.match(lookups[0].accept ?? '', /application\/json/, 'the lookup asks for JSON');

    const res = await answerConsent(node, session, authUrl, { keep: ['profile', 'create'], lifetime: 2_592_000 });
    const callback = redirectToClient(res, client, 'POST /indieauth/consent (approve)');
    assert.equal(callback.searchParams.get('state'), state);
    assert.equal(callback.searchParams.get('iss'), me);
    assert.match(callback.searchParams.get('code') ?? '', /^[A-Za-z0-9_-]{43}$/);

    const response = await redeem(callback, state, verifier);
    assertTokenHeaders(response, 'POST /indieauth/token (authorization_code)');
    const tokens = await oauth.processAuthorizationCodeResponse(as, client.oauthClient, response);
    assert.equal(tokens.token_type, 'bearer', 'oauth4webapi lowercases the token type; the node sent Bearer');
    assert.equal(tokens.me, me);
    assert.deepEqual(scopeList(tokens.scope), ['create', 'profile']);
    assert.ok(Number.isInteger(tokens.expires_in) && tokens.expires_in > 0 && tokens.expires_in <= ACCESS_TOKEN_SECONDS, `expires_in ${tokens.expires_in}`);
    assert.equal(typeof tokens.access_token, 'string');
    assert.equal(typeof tokens.refresh_token, 'string');
    assert.notEqual(tokens.refresh_token, tokens.access_token);
    assert.equal(tokens.profile?.name, PROFILE.name, JSON.stringify(tokens.profile));
    assert.equal(tokens.profile.url, me);
    assert.equal(tokens.profile.email, undefined, 'no email without the email scope');
  });

  it('answers userinfo for a token with profile: the profile plus sub = me', async () => {
    const tokens = await signInTo('profile');
    const response = await oauth.userInfoRequest(as, client.oauthClient, tokens.access_token, OAUTH_OPTIONS);
    assert.equal(response.status, 200);
    const info = await oauth.processUserInfoResponse(as, client.oauthClient, me, response);
    assert.equal(info.sub, me);
    assert.equal(info.name, PROFILE.name);
    assert.equal(info.url, me);
    assert.equal(info.email, undefined, 'no email without the email scope');
  });

  it('keeps only the scopes the owner left ticked: create alone gives scope create, no profile, and no userinfo', async () => {
    const tokens = await signInTo('profile create', { keep: ['create'] });
    assert.equal(tokens.scope, 'create');
    assert.equal(tokens.profile, undefined, JSON.stringify(tokens.profile));
    assert.equal(tokens.me, me);
    const response = await oauth.userInfoRequest(as, client.oauthClient, tokens.access_token, OAUTH_OPTIONS);
    assert.equal(response.status, 403);
    assert.match(response.headers.get('www-authenticate') ?? '', /^Bearer\b.*error="insufficient_scope"/);
    await assert.rejects(oauth.processUserInfoResponse(as, client.oauthClient, me, response), { name: 'WWWAuthenticateChallengeError' });
  });

  it('rotates the refresh token; the used one presented again is invalid_grant and revokes the whole grant', async () => {
    const first = await signInTo('profile create');
    const response = await refresh(first.refresh_token);
    assertTokenHeaders(response, 'POST /indieauth/token (refresh_token)');
    const second = await oauth.processRefreshTokenResponse(as, client.oauthClient, response);
    assert.equal(second.token_type, 'bearer');
    assert.equal(second.me, me);
    assert.deepEqual(scopeList(second.scope), ['create', 'profile']);
    assert.equal(typeof second.refresh_token, 'string');
    assert.notEqual(second.access_token, first.access_token);
    assert.notEqual(second.refresh_token, first.refresh_token);
    assert.equal((await introspect(second.access_token)).active, true, 'the refreshed access token works');

    await assert.rejects(
      refresh(first.refresh_token).then((r) => oauth.processRefreshTokenResponse(as, client.oauthClient, r)),
      { name: 'ResponseBodyError', error: 'invalid_grant', status: 400 },
    );
    assert.deepEqual(await introspect(second.access_token), { active: false }, 'the reuse revoked the newest access token');
    await assert.rejects(
      refresh(second.refresh_token).then((r) => oauth.processRefreshTokenResponse(as, client.oauthClient, r)),
      { name: 'ResponseBodyError', error: 'invalid_grant' },
      'the reuse revoked the newest refresh token too',
    );
  });

  it('introspects an active access token with Bearer authorization, and refuses introspection without it (401)', async () => {
    const tokens = await signInTo('profile create');
    const answer = await introspect(tokens.access_token);
    assert.equal(answer.active, true);
    assert.equal(answer.me, me);
    assert.equal(answer.client_id, client.clientId);
    assert.deepEqual(scopeList(answer.scope), ['create', 'profile']);
    assert.ok(Number.isInteger(answer.exp) && Number.isInteger(answer.iat), `exp ${answer.exp}, iat ${answer.iat}`);
    assert.ok(answer.exp > answer.iat && answer.exp - answer.iat <= ACCESS_TOKEN_SECONDS, `exp ${answer.exp}, iat ${answer.iat}`);
    assert.deepEqual(await introspect(tokens.access_token, tokens.access_token), answer, 'a token may authorize its own introspection');
    assert.deepEqual(await introspect(tokens.refresh_token), { active: false }, 'a refresh token introspects as inactive');
    assert.deepEqual(await introspect('not-a-token-of-this-node'), { active: false });

    const bare = await oauth.introspectionRequest(as, client.oauthClient, oauth.None(), tokens.access_token, OAUTH_OPTIONS);
    assert.equal(bare.status, 401);
    const challenge = bare.headers.get('www-authenticate') ?? '';
    assert.match(challenge, /^Bearer\b/, `WWW-Authenticate: ${challenge}`);
    assert.doesNotMatch(challenge, /error=/, 'no error code without a token (RFC 6750 §3.1)');
    await assert.rejects(oauth.processIntrospectionResponse(as, client.oauthClient, bare), { name: 'WWWAuthenticateChallengeError' });

    const unusable = await oauth.introspectionRequest(as, client.oauthClient, bearerAuthentication('garbage'), tokens.access_token, OAUTH_OPTIONS);
    assert.equal(unusable.status, 401);
    assert.match(unusable.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
  });

  it('revokes a token (200), after which its whole grant is inactive; revoking garbage is also 200', async () => {
    const tokens = await signInTo('create');
    const response = await oauth.revocationRequest(as, client.oauthClient, oauth.None(), tokens.access_token, OAUTH_OPTIONS);
    assert.equal(response.status, 200);
    assert.equal(await oauth.processRevocationResponse(response), undefined);
    assert.deepEqual(await introspect(tokens.access_token), { active: false });
    await assert.rejects(
      refresh(tokens.refresh_token).then((r) => oauth.processRefreshTokenResponse(as, client.oauthClient, r)),
      { name: 'ResponseBodyError', error: 'invalid_grant' },
      'revoking the access token revoked the grant, its refresh token included',
    );

    const garbage = await oauth.revocationRequest(as, client.oauthClient, oauth.None(), 'not-a-token-of-this-node', OAUTH_OPTIONS);
    assert.equal(garbage.status, 200);
    assert.equal(await oauth.processRevocationResponse(garbage), undefined);
    assert.equal((await introspect(inspector)).active, true, 'other grants are untouched');
  });

  for (const [label, method] of [['plain PKCE', 'plain'], ['a missing code_challenge_method', null]]) {
    it(`refuses ${label} with a redirect carrying error=invalid_request, state and iss`, async () => {
      const verifier = oauth.generateRandomCodeVerifier();
      const state = oauth.generateRandomState();
      const codeChallenge = method === 'plain' ? verifier : await oauth.calculatePKCECodeChallenge(verifier);
      const authUrl = authorizationUrl(as, client, { scope: 'create', state, codeChallenge, method });
      const res = await fetchManual(authUrl);
      const callback = redirectToClient(res, client, `GET /indieauth/authorize with ${label}`);
      assert.equal(callback.searchParams.get('error'), 'invalid_request');
      assert.equal(callback.searchParams.get('state'), state);
      assert.equal(callback.searchParams.get('iss'), me);
      assert.equal(callback.searchParams.get('code'), null);
      assert.throws(() => oauth.validateAuthResponse(as, client.oauthClient, callback, state), {
        name: 'AuthorizationResponseError',
        error: 'invalid_request',
      });
    });
  }

  it('stops a redirect_uri the client does not list on an HTML error page (400) without redirecting anywhere', async () => {
    const verifier = oauth.generateRandomCodeVerifier();
    const redirectUri = `${bystander.origin}/callback`;
    const authUrl = authorizationUrl(as, client, {
      scope: 'create',
      state: oauth.generateRandomState(),
      codeChallenge: await oauth.calculatePKCECodeChallenge(verifier),
      redirectUri,
    });
    const res = await fetchManual(authUrl);
    const html = await res.text();
    assert.equal(res.status, 400, `GET ${authUrl}: ${res.status} ${html.slice(0, 500)}`);
    assert.match(res.headers.get('content-type') ?? '', /^text\/html\b/);
    assert.equal(res.headers.get('location'), null, 'no Location header');
    assert.deepEqual(bystander.requests, [], 'nothing was sent to the unlisted redirect URL');
  });

  it('refuses a code presented a second time (invalid_grant) and revokes the tokens of its first redemption', async () => {
    const { callback, state, verifier } = await approve('profile create');
    const firstResponse = await redeem(callback, state, verifier);
    const first = await oauth.processAuthorizationCodeResponse(as, client.oauthClient, firstResponse);
    assert.equal((await introspect(first.access_token)).active, true);

    const again = await redeem(callback, state, verifier);
    assert.equal(again.status, 400);
    assert.match(again.headers.get('content-type') ?? '', /^application\/json\b/);
    assert.equal(again.headers.get('www-authenticate'), null, 'a token endpoint error carries no challenge');
    await assert.rejects(oauth.processAuthorizationCodeResponse(as, client.oauthClient, again), { name: 'ResponseBodyError', error: 'invalid_grant' });
    assert.deepEqual(await introspect(first.access_token), { active: false }, 'the first redemption\'s access token was revoked');
    await assert.rejects(
      refresh(first.refresh_token).then((r) => oauth.processRefreshTokenResponse(as, client.oauthClient, r)),
      { name: 'ResponseBodyError', error: 'invalid_grant' },
      'the first redemption\'s refresh token was revoked',
    );
  });

  it('refuses a wrong code_verifier (invalid_grant), which spends the code', async () => {
    const { callback, state, verifier } = await approve('create');
    const wrong = await redeem(callback, state, oauth.generateRandomCodeVerifier());
    await assert.rejects(oauth.processAuthorizationCodeResponse(as, client.oauthClient, wrong), {
      name: 'ResponseBodyError',
      error: 'invalid_grant',
      status: 400,
    });
    const right = await redeem(callback, state, verifier);
    await assert.rejects(
      oauth.processAuthorizationCodeResponse(as, client.oauthClient, right),
      { name: 'ResponseBodyError', error: 'invalid_grant' },
      'the code was spent by the refused redemption',
    );
  });

  it('sends the client access_denied with state and iss when the owner denies', async () => {
    const { authUrl, state } = await requestAuthorization('profile create');
    const res = await answerConsent(node, session, authUrl, { decision: 'deny' });
    const callback = redirectToClient(res, client, 'POST /indieauth/consent (deny)');
    assert.equal(callback.searchParams.get('error'), 'access_denied');
    assert.equal(callback.searchParams.get('state'), state);
    assert.equal(callback.searchParams.get('iss'), me);
    assert.equal(callback.searchParams.get('code'), null);
    assert.throws(() => oauth.validateAuthResponse(as, client.oauthClient, callback, state), { name: 'AuthorizationResponseError', error: 'access_denied' });
  });
});
