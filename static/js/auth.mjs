// Signing in with the owner key (challenge, assertion, session), step-up, and password unlock of the wrapped key.

import { api, setToken } from './api.mjs';
import { loginAssertion } from './jws.mjs';
import { deriveUnlock } from './wrapped-key.mjs';

/** The node's public URL: the audience of every proof and assertion. */
export function audience() {
  return document.getElementById('app').dataset.publicUrl;
}

/** A login assertion over a fresh challenge, signed by the key {signingKey, kid}. */
export async function freshAssertion({ signingKey, kid }) {
  const { nonce } = await api('POST', '/auth/challenge');
  return loginAssertion(signingKey, { audience: audience(), nonce, kid });
}

/** Signs in with the key {signingKey, kid}; keeps the access token for this tab and resolves with the login answer. */
export async function signIn(key) {
  const session = await api('POST', '/auth/login', { assertion: await freshAssertion(key) });
  setToken(session.access_token);
  return session;
}

/** Makes the current session freshly authenticated for the next 5 minutes (POST /auth/reauth). */
export async function stepUp(key) {
  await api('POST', '/auth/reauth', { assertion: await freshAssertion(key) });
}

/** GET /unlock: {alg, p2s, p2c, kid}; an ApiError 404 'not-claimed' before a claim. */
export function unlockParams() {
  return api('GET', '/unlock');
}

/**
 * Derives the KEK from the password once, proves it to the node, and resolves with
 * {wrappedKey, kid, unlockKey} (the UnlockKey opens wrappedKey). A wrong password rejects with
 * ApiError 401 'wrong-unlock-verifier' and leaves nothing behind.
 */
export async function unlockWithPassword(password, params) {
  const unlockKey = await deriveUnlock(password, params ?? (await unlockParams()));
  const { wrapped_key: wrappedKey, kid } = await api('POST', '/unlock', { unlock_verifier: unlockKey.unlockVerifier });
  return { wrappedKey, kid, unlockKey };
}
