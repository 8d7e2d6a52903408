// Adding a passkey on /account/credentials, loaded on demand: the owner key unlocked from the password binds the passkey and, where the authenticator has PRF, is wrapped for it.

import { ApiError } from './api.mjs';
import { DEVICE_CAPABILITIES, bindCredential, ownerKeyFromPassword } from './device.mjs';
import { readPublicKey } from './keys.mjs';
import { registerPasskey } from './passkey.mjs';
import { $, clearMessages, describe, messagesAfter, setBusy, showError, showStatus } from './ui.mjs';

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
    showStatus('Unlocking your owner key… (deriving the key takes a moment)');
    const { privateJwk, ...ownerKey } = await ownerKeyFromPassword($('passkey-password').value, { keepPrivateJwk: true });
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

