// Sign-in with a passkey on /login, loaded on demand: the button, the password field's autofill where the browser offers passkeys there, and a new device's unlock from a passkey's PRF copy of the owner key.

import { ApiError, api, setToken } from './api.mjs';
import { enrollDevice } from './device.mjs';
import { autofillSupported, signInWithPasskey } from './passkey.mjs';
import { $, clearMessages, describe, setBusy, showError, showStatus } from './ui.mjs';

/** What the page lends: {throttle(error, button, what), goToAccount()}. */
let page = null;

/** Wires the passkey button and, where the browser can, starts the autofill request. */
export async function offerPasskeys(from) {
  if (page) return;
  page = from;
  $('passkey-button').addEventListener('click', () => passkeySignIn());
  if (await autofillSupported()) passkeySignIn('conditional');
}

/** Ends a pending autofill request (the owner chose another way in). */
export function stopAutofill() {
  passkeyAutofill?.abort();
}

/** The pending autofill (conditional) passkey request, aborted when the owner picks another way in. */
let passkeyAutofill = null;

/**
 * Signs in with a passkey. With a PRF copy of the owner key (and an authenticator that gives the PRF output), the key
 * opens here and this browser gets a device key of its own, as after a password unlock; otherwise the session is the
 * passkey's own.
 */
async function passkeySignIn(mediation) {
  const { throttle, goToAccount } = page;
  passkeyAutofill?.abort();
  const controller = new AbortController();
  if (mediation === 'conditional') passkeyAutofill = controller;
  const section = $('login-passkey');
  try {
    if (!mediation) {
      clearMessages();
      setBusy(true, section);
      showStatus('Follow your browser to use your passkey…');
    }
    const { session, ownerKey } = await signInWithPasskey({ mediation, signal: controller.signal });
    setBusy(true, section);
    setToken(session.access_token);
    const { adopt, auditBeforeWriting, guard } = await import('./alarm.mjs');
    if (ownerKey) {
      // This device trusts the key the passkey opens if it is the one the node publishes.
      if (!(await adopt(ownerKey))) return;
      showStatus('Making this browser’s own key and signing in…');
      try {
        await api('DELETE', '/session');
      } catch {
        // The passkey's session ends by itself when idle.
      }
      await enrollDevice(ownerKey, auditBeforeWriting);
    } else if (!(await guard(null, { keys: true, audit: true }))) {
      return;
    }
    goToAccount();
  } catch (error) {
    // An autofill request that ends unused (aborted, dismissed) says nothing.
    if (error?.name === 'AbortError' || (mediation === 'conditional' && error?.name === 'NotAllowedError')) return;
    setBusy(false, section);
    if (error?.name === 'NodeAlarm') return;
    showStatus('');
    if (error?.name === 'NotAllowedError') showError('No passkey was used (cancelled or timed out).');
    else if (error instanceof ApiError && error.status === 429) throttle(error, $('passkey-button'), 'Too many failed sign-ins from this address.');
    else showError(error instanceof ApiError && error.slug === 'invalid-assertion' ? `Sign-in refused. ${error.message}` : describe(error));
  }
}

