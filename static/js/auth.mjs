// Signing in with the owner key (challenge, assertion, session), step-up, password unlock of the wrapped key, and
// replacing the wrapped key with the owner key's proof.

import { api, setToken } from './api.mjs';
import { loginAssertion, recordSignature, rewrapProof } from './jws.mjs';
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

/** The request member a typed code goes in: six digits (spaces anywhere) are a TOTP code, anything else a recovery code. */
export function secondFactorMember(code) {
  return /^\d{6}$/.test(code.replace(/\s+/g, '')) ? 'totp' : 'recovery_code';
}

/** GET /unlock: {alg, p2s, p2c, kid}; an ApiError 404 'not-claimed' before a claim. */
export function unlockParams() {
  return api('GET', '/unlock');
}

/**
 * Derives the KEK from the password once, proves it to the node (with a one-time unlock code and a TOTP or recovery
 * code when given), and resolves
 * with {wrappedKey, kid, unlockKey} (the UnlockKey opens wrappedKey). A wrong password rejects with ApiError 401
 * 'wrong-unlock-verifier', a wrong code with 'wrong-unlock-code'; nothing is left behind.
 */
export async function unlockWithPassword(password, params, unlockCode, secondFactor) {
  const unlockKey = await deriveUnlock(password, params ?? (await unlockParams()));
  const body = { unlock_verifier: unlockKey.unlockVerifier };
  if (unlockCode) body.unlock_code = unlockCode;
  if (secondFactor) body[secondFactorMember(secondFactor)] = secondFactor;
  const { wrapped_key: wrappedKey, kid } = await api('POST', '/unlock', body);
  return { wrappedKey, kid, unlockKey };
}

/**
 * Replaces the wrapped key (PUT /owner/wrapped-key) with {wrappedKey, unlockVerifier} from wrapPrivateKey, signed off by
 * the key {signingKey, kid} (proof and record signature). oldUnlockVerifier proves the current password; it is left out
 * only with recoverySet, when the password is what was lost. A node with an empty key history gets the key's genesis
 * statement too. The session must have stepped up.
 */
export async function replaceWrappedKey(key, { wrappedKey, unlockVerifier, oldUnlockVerifier, recoverySet }, call = api) {
  const history = await fetch('/.well-known/siteid/keys.json', { cache: 'no-store' }).then((r) => (r.ok ? r.json() : null), () => null);
  const { nonce } = await api('POST', '/auth/challenge');
  const proof = await rewrapProof(key.signingKey, { audience: audience(), nonce, kid: key.kid, wrappedKey, unlockVerifier });
  const record = await recordSignature(key, { audience: audience(), wrappedKey, unlockVerifier });
  const body = { wrapped_key: wrappedKey, unlock_verifier: unlockVerifier, proof, record };
  if (history?.keys?.length === 0) body.statement = await (await import('./key-statement.mjs')).keyStatement(key, { newKid: key.kid });
  if (oldUnlockVerifier) body.old_unlock_verifier = oldUnlockVerifier;
  if (recoverySet) body.recovery_set = recoverySet;
  await call('PUT', '/owner/wrapped-key', body);
}
