// Adding a passkey on /account/credentials, loaded on demand: the owner key unlocked from the password binds the passkey and, where the authenticator has PRF, is wrapped for it.

import { ApiError } from './api.mjs';
import { unlockWithPassword } from './auth.mjs';
import { DEVICE_CAPABILITIES, bindCredential, stepUpThisDevice } from './device.mjs';
import { readPublicKey } from './keys.mjs';
import { registerPasskey } from './passkey.mjs';
import { $, clearMessages, describe, messagesAfter, setBusy, showError, showStatus } from './ui.mjs';
import { importSigningKey, jwkThumbprint, toPublicJwk, unwrapPrivateKey } from './wrapped-key.mjs';

/**
 * Like ownerKeyFromPassword, and also resolves with the private JWK, for wrapping the owner key once more (a passkey's
 * PRF copy): {ownerKey, privateJwk}. The caller drops both when done.
 */
async function ownerKeyWithJwkFromPassword(password) {
  const { wrappedKey, kid, unlockKey } = await unlockWithPassword(password);
  const jwk = await unwrapPrivateKey(wrappedKey, unlockKey);
  const privateJwk = { ...jwk };
  const publicJwk = toPublicJwk(jwk);
  const ownerKey = { signingKey: await importSigningKey(jwk), publicJwk, kid: await jwkThumbprint(publicJwk) };
  if (ownerKey.kid !== kid) throw new Error('the unlocked key is not the key the node names');
  return { ownerKey, privateJwk };
}

/** Registers a passkey: the owner key, unlocked from the password, binds it and (where PRF works) is wrapped for it. */
export async function addPasskey({ refresh }) {
  const form = $('passkey-form');
  messagesAfter(form);
  clearMessages();
  const label = $('passkey-label').value.trim();
  const unlock = $('passkey-unlock').checked;
  // A passkey that may unlock the owner key can do all the owner key can; one that may not just signs in and reads.
  const capabilities = unlock ? DEVICE_CAPABILITIES : ['session', 'sessions', 'audit'];
  setBusy(true, form);
  try {
    // A fresh step-up first: with two-step unlock on, the session stands in for the code.
    showStatus('Confirming it is you…');
    await stepUpThisDevice();
    showStatus('Unlocking your owner key… (deriving the key takes a moment)');
    const { ownerKey, privateJwk } = await ownerKeyWithJwkFromPassword($('passkey-password').value);
    showStatus('Follow your browser to make the passkey…');
    const { unlocks } = await registerPasskey({ ownerKey, privateJwk: unlock ? privateJwk : null, label, capabilities, bind: bindCredential, readPublicKey });
    form.reset();
    $('passkey-unlock').checked = true;
    showStatus(unlock && !unlocks ? `Added ${label}. It signs you in, but this authenticator does not support PRF, so it cannot unlock your key on a new device: use your password there.` : `Added ${label}.${unlocks ? ' It also unlocks your key on a new device where it is synced.' : ''}`);
    await refresh();
  } catch (error) {
    showStatus('');
    $('passkey-password').value = '';
    if (error instanceof ApiError && error.slug === 'wrong-unlock-verifier') showError('Wrong password. No passkey was added.');
    else if (error?.name === 'NotAllowedError') showError('The passkey was not made (cancelled or timed out). No passkey was added.');
    else if (error?.name === 'InvalidStateError') showError('This authenticator holds a passkey for this site already.');
    else showError(`${describe(error)} No passkey was added.`);
  }
  setBusy(false, form);
}

