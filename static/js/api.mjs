// The node's HTTP API from the page: JSON requests, problem+json errors, and the bearer access token in sessionStorage.

const TOKEN = 'siteid.access_token';
const NOTICE = 'siteid.notice';

/** A refused or failed API call: status 0 with slug 'network' when the node could not be reached. */
export class ApiError extends Error {
  constructor(status, problem = {}) {
    super(problem.detail || problem.title || (status ? `the node answered ${status}` : 'the node could not be reached'));
    this.name = 'ApiError';
    this.status = status;
    /** The last part of the problem type, e.g. 'wrong-unlock-verifier'; 'network' when unreachable. */
    this.slug = status ? String(problem.type ?? '').replace('urn:siteid:problem:', '') : 'network';
    /** Seconds to wait on a 429, from Retry-After or the problem's retry_after. */
    this.retryAfter = problem.retry_after ?? null;
    this.field = problem.field ?? null;
    /** On a 429: which throttle window is full, 'client', 'network' or 'node'. */
    this.scope = problem.scope ?? null;
  }
}

/** The access token of this tab's session, or null. */
export function getToken() {
  return sessionStorage.getItem(TOKEN);
}

/** Keeps the access token for this tab (sessionStorage: gone when the tab closes). */
export function setToken(token) {
  sessionStorage.setItem(TOKEN, token);
}

/** Forgets the access token. */
export function clearToken() {
  sessionStorage.removeItem(TOKEN);
}

/** Leaves a one-time notice for the next page (e.g. 'revoked', 'signed-out', 'forgotten'). */
export function setNotice(notice) {
  sessionStorage.setItem(NOTICE, notice);
}

/** Reads and removes the notice left by the previous page, or null. */
export function takeNotice() {
  const notice = sessionStorage.getItem(NOTICE);
  sessionStorage.removeItem(NOTICE);
  return notice;
}

/**
 * Calls /api/v1<path> with an optional JSON body and the bearer token when there is one.
 * Resolves with the parsed JSON (null for 204); rejects with an ApiError.
 */
export async function api(method, path, body) {
  const headers = { accept: 'application/json' };
  const token = getToken();
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let response;
  try {
    response = await fetch(`/api/v1${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'omit',
      cache: 'no-store',
    });
  } catch {
    throw new ApiError(0);
  }
  let json = null;
  if (response.status !== 204) {
    try {
      json = await response.json();
    } catch {
      json = null;
    }
  }
  if (!response.ok) {
    const problem = json && typeof json === 'object' ? { ...json } : {};
    const header = Number.parseInt(response.headers.get('retry-after') ?? '', 10);
    if (problem.retry_after == null && Number.isFinite(header)) problem.retry_after = header;
    throw new ApiError(response.status, problem);
  }
  return json;
}

/**
 * An api() for signed-in pages: a 401 'unauthenticated' means the session is over, so it runs leave() (which takes the
 * page to /login) and never settles.
 */
export function signedInApi(leave) {
  return async (method, path, body) => {
    try {
      return await api(method, path, body);
    } catch (error) {
      if (error instanceof ApiError && error.status === 401 && error.slug === 'unauthenticated') {
        leave();
        await new Promise(() => {});
      }
      throw error;
    }
  };
}
