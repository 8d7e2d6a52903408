// Opening the inbox on /account/inbox, loaded on demand: the owner key opened here for a moment (with the password
// after a step-up, or from a passkey's PRF copy), a first encryption key made and uploaded for an identity without one,
// and every encryption key opened and kept as a non-extractable key. The owner key's d is forgotten once the KEK is
// derived; neither it nor any encryption key's d leaves this browser.

import { ownerKeyFromPassword } from './device.mjs';
import { encryptionKek, newEncryptionKey, openEncryptionKey } from './inbox-keys.mjs';
import { saveEncryptionKey } from './inbox-keystore.mjs';

/** The KEK of the encryption keys from an opened owner key's private JWK, whose d is deleted right after. */
async function kekOf(privateJwk) {
  try {
    return await encryptionKek(privateJwk);
  } finally {
    delete privateJwk.d;
  }
}

/** Opens each of keys ({kid, wrapped_key}) with the KEK and keeps it on this device; resolves with their kids. */
async function keepAll(kek, keys) {
  const kids = [];
  for (const { kid, wrapped_key: wrappedKey } of keys) {
    await saveEncryptionKey(await openEncryptionKey(kek, wrappedKey, kid));
    kids.push(kid);
  }
  return kids;
}

/**
 * Sets up the inbox of an identity without encryption keys: the password opens the owner key (stepping up first), which
 * makes, wraps and binds a new encryption key; it is uploaded (PUT /owner/encryption-key) and kept here. Resolves with its kid.
 */
export async function setUpInbox(call, password) {
  const { privateJwk, ...owner } = await ownerKeyFromPassword(password, { keepPrivateJwk: true });
  const key = await newEncryptionKey(await kekOf(privateJwk), owner);
  // The session stepped up just before the password unlock.
  await call('PUT', '/owner/encryption-key', key.body);
  await saveEncryptionKey(key);
  return key.kid;
}

/** Opens the encryption keys this browser lacks with the password (the owner key, after a step-up) and keeps them. */
export async function unlockWithPassword(password, keys) {
  const { privateJwk } = await ownerKeyFromPassword(password, { keepPrivateJwk: true });
  return keepAll(await kekOf(privateJwk), keys);
}

/**
 * Opens the encryption keys this browser lacks with a passkey's PRF copy of the owner key: the passkey signs in once,
 * for the copy only, and that session ends at once (this page keeps its own).
 */
export async function unlockWithPasskey(keys) {
  const { signInWithPasskey } = await import('./passkey.mjs');
  const { session, ownerKey } = await signInWithPasskey({ keyOptions: { keepPrivateJwk: true } });
  await fetch('/api/v1/session', { method: 'DELETE', headers: { authorization: `Bearer ${session.access_token}` }, credentials: 'omit' }).catch(() => {});
  if (!ownerKey) throw new Error('this passkey does not open your key in this browser (it holds no copy of it, or the authenticator gives no PRF output). Use your password.');
  return keepAll(await kekOf(ownerKey.privateJwk), keys);
}
