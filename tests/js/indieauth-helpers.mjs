// Helpers for the IndieAuth tests against the real binary: a fake client on loopback, discovery from the home page, the consent form and oauth4webapi options.

import http from 'node:http';
import * as oauth from 'oauth4webapi';

/** How long one HTTP request to a test node may take, in milliseconds. */
export const REQUEST_TIMEOUT_MS = 10_000;

/** The options every oauth4webapi request takes: plain http on loopback is allowed, and every request is bounded. */
export const OAUTH_OPTIONS = Object.freeze({
  [oauth.allowInsecureRequests]: true,
  signal: () => AbortSignal.timeout(REQUEST_TIMEOUT_MS),
});

/** fetch with a bounded timeout and no redirect following, so every answer is seen as the node sent it. */
export function fetchManual(url, init = {}) {
  return fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS), ...init });
}

/** Starts a node:http server on a free 127.0.0.1 port; resolves with the server and its origin. */
function listen(handler) {
  const server = http.createServer(handler);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve({ server, origin: `http://127.0.0.1:${server.address().port}` }));
  });
}

/** Closes a server, dropping kept-alive connections so the close cannot hang. */
function close(server) {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/**
 * A fake IndieAuth client on 127.0.0.1: its client metadata document (draft-parecki-oauth-client-id-metadata-document)
 * at `/`, its redirect URL `/callback`. Every request it receives is recorded in `requests` as {method, url, accept}.
 */
export class FakeClient {
  constructor(server, origin, name) {
    this.server = server;
    this.origin = origin;
    this.name = name;
    this.clientId = `${origin}/`;
    this.redirectUri = `${origin}/callback`;
    this.requests = [];
  }

  /** Starts a client named `name` that lists its callback as its only redirect URL. */
  static async start(name) {
    let client;
    const { server, origin } = await listen((req, res) => {
      client.requests.push({ method: req.method, url: req.url, accept: req.headers.accept ?? null });
      if (req.url === '/') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(client.metadata()));
      } else if (req.url.startsWith('/callback')) {
        res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
        res.end('signed in');
      } else {
        res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
        res.end('not found');
      }
    });
    client = new FakeClient(server, origin, name);
    return client;
  }

  /** The client metadata document served at the client_id. */
  metadata() {
    return { client_id: this.clientId, client_name: this.name, client_uri: this.clientId, redirect_uris: [this.redirectUri] };
  }

  /** The client as oauth4webapi describes a public client. */
  get oauthClient() {
    return { client_id: this.clientId, token_endpoint_auth_method: 'none' };
  }

  /** Stops the server. */
  stop() {
    return close(this.server);
  }
}

/** A loopback server that records every request and answers 404; used as an address nobody may be sent to. */
export class Bystander {
  constructor(server, origin) {
    this.server = server;
    this.origin = origin;
    this.requests = [];
  }

  /** Starts the server on a free 127.0.0.1 port. */
  static async start() {
    let bystander;
    const { server, origin } = await listen((req, res) => {
      bystander.requests.push({ method: req.method, url: req.url });
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('not found');
    });
    bystander = new Bystander(server, origin);
    return bystander;
  }

  /** Stops the server. */
  stop() {
    return close(this.server);
  }
}

/** The {url: rel} pairs of a Link header, in order (targets are absolute in the node's answers). */
export function parseLinkHeader(value) {
  const links = [];
  for (const match of (value ?? '').matchAll(/<([^>]*)>\s*;\s*rel="([^"]*)"/g)) links.push({ href: match[1], rel: match[2] });
  return links;
}

/** The {href, rel} of every <link> element of an HTML page that has both attributes, in order. */
export function parseLinkElements(html) {
  const links = [];
  for (const [element] of html.matchAll(/<link\b[^>]*>/gi)) {
    const rel = /\brel="([^"]*)"/i.exec(element);
    const href = /\bhref="([^"]*)"/i.exec(element);
    if (rel && href) links.push({ href: href[1].replaceAll('&amp;', '&'), rel: rel[1] });
  }
  return links;
}

/**
 * The authorization request URL for a client, as a stock client builds it: PKCE S256 unless `method` says otherwise
 * (null leaves code_challenge_method out), the client's redirect URL unless `redirectUri` is given, and `extra`
 * parameters last.
 */
export function authorizationUrl(as, client, { scope, state, codeChallenge, method = 'S256', redirectUri = client.redirectUri, extra = {} }) {
  const url = new URL(as.authorization_endpoint);
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('client_id', client.clientId);
  url.searchParams.set('redirect_uri', redirectUri);
  url.searchParams.set('state', state);
  url.searchParams.set('code_challenge', codeChallenge);
  if (method !== null) url.searchParams.set('code_challenge_method', method);
  if (scope !== undefined) url.searchParams.set('scope', scope);
  for (const [name, value] of Object.entries(extra)) url.searchParams.set(name, value);
  return url;
}

/**
 * Answers the consent page the way its form does: POST /indieauth/consent with the authorization request's query
 * string, the tab's session token, the decision, one `scope.<name>=1` per scope kept and the lifetime in seconds.
 * Resolves with the raw answer (redirects are not followed).
 */
export function answerConsent(node, sessionToken, authUrl, { decision = 'approve', keep = [], lifetime = 2_592_000 } = {}) {
  const form = new URLSearchParams();
  form.set('request', authUrl.search.slice(1));
  form.set('session', sessionToken);
  form.set('decision', decision);
  for (const scope of keep) form.set(`scope.${scope}`, '1');
  form.set('lifetime', String(lifetime));
  return fetchManual(`${node.base}/indieauth/consent`, { method: 'POST', body: form });
}

/** A client authentication for oauth4webapi that sends `Authorization: Bearer <token>`, as the node's introspection wants. */
export function bearerAuthentication(token) {
  return (_as, _client, _body, headers) => {
    headers.set('authorization', `Bearer ${token}`);
  };
}

/** A scope string as a sorted list, for comparisons that do not depend on order. */
export function scopeList(scope) {
  return (scope ?? '').split(' ').filter(Boolean).sort();
}
