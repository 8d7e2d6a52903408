// This browser's own credential: a non-extractable P-384 device key bound by the owner key and registered, the owner key opened only when needed, and bindings for other credentials.

import { api } from './api.mjs';
import { signIn, stepUp, unlockWithPassword } from './auth.mjs';
import { encode } from './b64url.mjs';
import { signJwt } from './jws.mjs';
import { loadKey, saveKey } from './keystore.mjs';
import { jwkThumbprint, unlockSigningKey } from './wrapped-key.mjs';

/** What a browser of the owner may do: everything. */
export const DEVICE_CAPABILITIES = ['session', 'sessions', 'audit', 'credentials', 'recovery', 'owner', 'inbox', 'indieauth'];

/** "Chrome on Linux" from a user agent, or a shortened original. */
export function describeClient(userAgent) {
  if (!userAgent) return 'Unknown client';
  const ua = userAgent;
  const browser = /Edg\//.test(ua) ? 'Edge' : /Firefox\//.test(ua) ? 'Firefox' : /OPR\//.test(ua) ? 'Opera' : /Chrom(e|ium)\//.test(ua) ? 'Chrome' : /Safari\//.test(ua) ? 'Safari' : null;
  const os = /Android/.test(ua) ? 'Android' : /iPhone|iPad/.test(ua) ? 'iOS' : /Windows/.test(ua) ? 'Windows' : /Mac OS X/.test(ua) ? 'macOS' : /CrOS/.test(ua) ? 'ChromeOS' : /Linux/.test(ua) ? 'Linux' : null;
  if (browser) return os ? `${browser} on ${os}` : browser;
  return ua.length > 40 ? `${ua.slice(0, 40)}…` : ua;
}

/** A fresh credential id: 16 random bytes, base64url. */
export function newCredentialId() {
  return encode(globalThis.crypto.getRandomValues(new Uint8Array(16)));
}

/**
 * The owner key's binding over a credential's fields (the protocol's Binding): {id, kid, kind, label, capabilities,
 * networks, expiresAt}. Only the browser (or the command line) can make one: the node never holds the owner key.
 */
export async function bindCredential(ownerKey, { id, kid, kind, label, capabilities, networks, expiresAt }) {
  const claims = { sub: kid, kind, label, cap: capabilities, net: networks, iat: Math.floor(Date.now() / 1000), jti: id };
  if (expiresAt !== null && expiresAt !== undefined) claims.exp = expiresAt;
  return signJwt(ownerKey.signingKey, { alg: 'ES384', typ: 'siteid-credential+jwt', kid: ownerKey.kid }, claims);
}

/**
 * Steps the session up, then unwraps the owner key with the password (an unlock attempt, throttled like any) for one
 * operation; resolves with {signingKey, kid, publicJwk}, and privateJwk with {keepPrivateJwk: true}. The caller drops
 * it when done; it is never stored. The step-up comes first: with two-step unlock on, it stands in for the code.
 */
export async function ownerKeyFromPassword(password, options) {
  await stepUpThisDevice();
  const { wrappedKey, kid, unlockKey } = await unlockWithPassword(password);
  const key = await unlockSigningKey(wrappedKey, unlockKey, options);
  if (key.kid !== kid) throw new Error('the unlocked key is not the key the node names');
  return key;
}

/** Steps the session up with this device's key, or with the passkey it signed in with. */
export async function stepUpThisDevice() {
  const key = await loadKey();
  if (key) return stepUp(key);
  // A session a passkey signed in (this browser keeps no key): the passkey confirms it.
  if (typeof globalThis.PublicKeyCredential === 'function') return (await import('./passkey.mjs')).stepUpWithPasskey();
  throw new Error('This device keeps no key to confirm it is you; sign in again with your password.');
}

/**
 * Makes this browser's own key (P-384, non-extractable), binds it with ownerKey, registers it as a device credential,
 * stores it and signs in with it. The owner key is not kept: from here this browser is one revocable credential.
 * check(), when given, runs once signed in and before anything is registered (it throws to stop).
 */
export async function enrollDevice(ownerKey, check) {
  const pair = await globalThis.crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-384' }, false, ['sign', 'verify']);
  const { kty, crv, x, y } = await globalThis.crypto.subtle.exportKey('jwk', pair.publicKey);
  const publicJwk = { kty, crv, x, y };
  const kid = await jwkThumbprint(publicJwk);
  const id = newCredentialId();
  // A label may hold no control or format characters; a user agent is not trusted to be clean.
  const label = describeClient(navigator.userAgent).replace(/[\p{Cc}\p{Cf}]/gu, '').trim().slice(0, 64) || 'Browser';
  const binding = await bindCredential(ownerKey, { id, kid, kind: 'device', label, capabilities: DEVICE_CAPABILITIES, networks: [], expiresAt: null });
  // Registering needs a stepped-up session; the owner key's own session ends right after.
  await signIn(ownerKey);
  await check?.();
  await stepUp(ownerKey);
  await api('POST', '/credentials', { id, kind: 'device', label, public_key: publicJwk, capabilities: DEVICE_CAPABILITIES, networks: [], expires_at: null, binding });
  // The open owner key also binds the node key if nothing has (best effort).
  await import('./node-binding.mjs').then(({ bindNodeKey }) => bindNodeKey(ownerKey)).catch(() => false);
  try {
    await api('DELETE', '/session');
  } catch {
    // It ends by itself when idle.
  }
  const device = { signingKey: pair.privateKey, kid, publicJwk, credentialId: id, kind: 'device' };
  await saveKey(device);
  await signIn(device);
  return device;
}
