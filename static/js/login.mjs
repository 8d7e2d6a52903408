// The /login page: one-step sign-in with this device's key, sign-in with a passkey (which unlocks the key on a new device where it has a PRF copy), the password unlock of the wrapped key that enrolls a new device (with a TOTP or recovery code when two-step unlock is on), asking a signed-in device to approve this one (as the enrollment mode allows), and sign-in with a signature pasted from openssl or ssh-keygen; each checks the node against what this device trusts first.

import { ApiError, api, clearToken, getToken, setToken, takeNotice } from './api.mjs';
import { signIn, unlockParams, unlockWithPassword } from './auth.mjs';
import { enrollDevice } from './device.mjs';
import { deleteKey, loadKey } from './keystore.mjs';
import { $, clearMessages, countdown, describe, formatDuration, messagesAfter, setBusy, showError, showStatus } from './ui.mjs';
import { unlockSigningKey } from './wrapped-key.mjs';

const NOTICES = {
  revoked: 'Your session was ended, from another device or because it expired.',
  'signed-out': 'You signed out.',
  forgotten: 'This device no longer holds a key. Your password signs it in again as a new device.',
};
const NOT_CLAIMED =
  'This node has no owner yet. Its owner claims it with the one-time setup link the node printed in its log when it first started; on the server, siteid claim-url prints it again.';

let params = null;
let throttled = false;

/** Where a page that sent the visitor to sign in asked to go back to: only an IndieAuth request on this node. */
const RETURN_TO = 'siteid.return_to';

function goToAccount() {
  const back = sessionStorage.getItem(RETURN_TO);
  sessionStorage.removeItem(RETURN_TO);
  location.assign(back?.startsWith('/indieauth/authorize?') ? back : '/account');
}

/** Shows a throttling error whose time left counts down, keeping the button disabled until the time is up. */
function throttle(error, button, what) {
  throttled = true;
  button.disabled = true;
  showError(`${what} Try again in `);
  // Only the number changes each second; aria-live off keeps screen readers from re-reading the alert every time.
  const left = document.createElement('span');
  left.setAttribute('aria-live', 'off');
  $('error').append(left, '.');
  countdown(
    error.retryAfter ?? 60,
    (seconds) => {
      left.textContent = formatDuration(seconds);
    },
    () => {
      throttled = false;
      button.disabled = false;
      showError('');
      showStatus('You can try again now.');
    },
  );
}

const REVOKED_DEVICE =
  'This device was removed from your identity (its key was revoked on another device), so it cannot sign in with it any more. The key was deleted from this browser; your password signs it in again as a new device.';

async function deviceSignIn(key) {
  const section = $('login-device');
  clearMessages();
  setBusy(true, section);
  showStatus('Signing in with the key this device keeps…');
  try {
    // The node's key must follow from the one this device trusts before it signs anything for it.
    const { auditBeforeWriting, guard } = await import('./alarm.mjs');
    if (!(await guard(key))) return;
    if (key.kind === 'owner') {
      // A browser from before device keys kept the owner key itself: it gets its own key now and forgets the owner's.
      showStatus('Giving this browser its own key…');
      await enrollDevice(key, auditBeforeWriting);
    } else {
      await signIn(key);
      if (!(await guard(key, { keys: false, audit: true }))) return;
    }
    goToAccount();
    return;
  } catch (error) {
    showStatus('');
    if (error?.name === 'NodeAlarm') return;
    if (error instanceof ApiError && error.status === 429) {
      setBusy(false, section);
      throttle(error, $('login-button'), 'Too many failed sign-ins from this address.');
      return;
    }
    if (error instanceof ApiError && error.slug === 'network-not-allowed') {
      showError('This device’s key may not be used from the network you are on now.');
      setBusy(false, section);
      return;
    }
    if (error instanceof ApiError && error.slug === 'invalid-assertion') {
      if (key.kind === 'device' && /not a registered key/.test(error.message)) {
        await deleteKey();
        setBusy(false, section);
        showUnlock();
        showError(REVOKED_DEVICE);
        return;
      }
      if (key.kind === 'owner' && (await keyIsStale(key))) return;
    }
    showError(describe(error));
  }
  setBusy(false, section);
}

/** After a refused assertion: if the node's key is another one, forget ours and offer the password. */
async function keyIsStale(key) {
  let kid = null;
  try {
    kid = (await unlockParams()).kid;
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 404)) return false;
  }
  if (kid === key.kid) return false;
  await deleteKey();
  setBusy(false, $('login-device'));
  showUnlock(kid ? 'The key this device kept is not this node’s key any more, so it was deleted. Your password unlocks the current one.' : '');
  return true;
}

async function loadParams() {
  try {
    params = await unlockParams();
    return true;
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      showError(NOT_CLAIMED);
      $('unlock-form').hidden = true;
    } else {
      showError(describe(error));
    }
    return false;
  }
}

function showUnlock(message = '') {
  $('login-device').hidden = true;
  $('unlock-form').hidden = false;
  if (message) showStatus(message);
  $('password').focus();
  loadParams().then((claimed) => claimed && offerPairing());
  offerPasskeys();
}

/** Offers pairing with a signed-in device; without an open window, approval mode takes the password form away and window mode both. */
async function offerPairing() {
  const { mode, window: open } = await api('GET', '/enrollment').catch(() => ({}));
  const closed = !open && (mode === 'approval' || mode === 'window');
  if (closed) $('unlock-form').hidden = true;
  $('login-pair').hidden = closed && mode === 'window';
  $('enrollment-closed').hidden = !$('login-pair').hidden;
}

/** Shows the passkey button where WebAuthn works; the sign-in code loads on demand. */
async function offerPasskeys() {
  if (typeof globalThis.PublicKeyCredential !== 'function' || $('app').dataset.passkeys !== 'true') return;
  $('login-passkey').hidden = false;
  (await import('./login-passkey.mjs')).offerPasskeys({ throttle, goToAccount });
}

/** Shows the one-time unlock code field, with a message when given. */
function offerUnlockCode(message) {
  $('unlock-code-field').hidden = false;
  $('unlock-code-toggle').hidden = true;
  if (message) showError(message);
  $('unlock-code').focus();
}

/** Two-step unlock: shows the code field after a totp-required or totp-invalid answer. */
function offerSecondFactor(slug) {
  $('totp-field').hidden = false;
  $('totp').required = true;
  $('totp').value = '';
  if (slug === 'totp-invalid') showError('That code is not right: it is wrong, expired or was used already. Wait for the next code, or use a recovery code.');
  else showStatus('Your password is right. Now type the code from your authenticator app, or a recovery code.');
  $('totp').focus();
}

async function unlock(password, unlockCode, secondFactor) {
  if (!params && !(await loadParams())) return false;
  showStatus('Checking your password… (deriving the key takes a moment)');
  const { wrappedKey, unlockKey } = await unlockWithPassword(password, params, unlockCode, secondFactor);
  showStatus('Unlocking your key…');
  const key = await unlockSigningKey(wrappedKey, unlockKey);
  // This device trusts the key the password opens if it is the one the node publishes.
  const { adopt, auditBeforeWriting } = await import('./alarm.mjs');
  if (!(await adopt(key))) return false;
  showStatus('Making this browser’s own key and signing in…');
  await enrollDevice(key, auditBeforeWriting);
  return true;
}

async function onUnlockSubmit(event) {
  event.preventDefault();
  if (throttled) return;
  const form = $('unlock-form');
  const password = $('password').value;
  const unlockCode = $('unlock-code-field').hidden ? '' : $('unlock-code').value.trim();
  const secondFactor = $('totp-field').hidden ? '' : $('totp').value.trim();
  clearMessages();
  setBusy(true, form);
  // A pending autofill passkey request would hold the credential manager: the password is the way in now.
  if (!$('login-passkey').hidden) (await import('./login-passkey.mjs')).stopAutofill();
  let signedIn = false;
  try {
    signedIn = await unlock(password, unlockCode, secondFactor);
  } catch (error) {
    showStatus('');
    if (error?.name === 'NodeAlarm') return;
    setBusy(false, form);
    // A missing code leaves a one-time unlock code live; a wrong one uses it up.
    if (error instanceof ApiError && (error.slug === 'totp-required' || error.slug === 'totp-invalid')) {
      if (error.slug === 'totp-invalid' && unlockCode) $('unlock-code').value = '';
      offerSecondFactor(error.slug);
      return;
    }
    if (unlockCode) $('unlock-code').value = ''; // A code is used up by any attempt with it.
    if (error instanceof ApiError && error.slug === 'wrong-unlock-verifier') {
      showError(unlockCode ? 'Wrong password. The unlock code is used up; make a new one and try again.' : 'Wrong password. Nothing was stored on this device; try again.');
    } else if (error instanceof ApiError && error.slug === 'wrong-unlock-code') {
      offerUnlockCode('That unlock code is wrong, was used already or has expired. Make a new one and try again.');
      return;
    } else if (error instanceof ApiError && error.field === 'unlock_code') {
      offerUnlockCode('That is not an unlock code: it has 16 letters and digits, like 7KQ2-M9XD-3FHT-PW4C.');
      return;
    } else if (error instanceof ApiError && error.status === 429 && (error.scope === 'node' || error.scope === 'network')) {
      const where = error.scope === 'node' ? 'on this node' : 'from your network';
      offerUnlockCode(`Too many wrong passwords ${where} today, so password unlock is paused. A one-time unlock code lets your password through now.`);
      return;
    } else if (error instanceof ApiError && error.status === 429 && error.slug === 'too-many-attempts') {
      throttle(error, $('unlock-submit'), 'Too many wrong passwords.');
    } else if (error instanceof ApiError && error.status === 404) {
      showError(NOT_CLAIMED);
    } else {
      // The wrapped key may have changed under us (a password change elsewhere): fetch fresh parameters next time.
      params = null;
      showError(describe(error));
    }
    $('password').select();
    return;
  }
  if (signedIn) {
    form.reset();
    goToAccount();
  } else {
    setBusy(false, form);
  }
}

async function main() {
  const notice = takeNotice();
  if (notice && NOTICES[notice]) showStatus(NOTICES[notice]);
  $('unlock-form').addEventListener('submit', onUnlockSubmit);
  $('unlock-code-toggle').addEventListener('click', () => offerUnlockCode());
  $('pair-button').addEventListener('click', async () => (await import('./pairing-request.mjs')).askToJoin(goToAccount));
  // The paste sign-in (and the key parsing it needs) loads when its section opens.
  $('paste-section').addEventListener('toggle', async () => {
    if ($('paste-section').open) (await import('./login-paste.mjs')).openPaste({ throttle, goToAccount, isThrottled: () => throttled });
  });
  if (getToken()) {
    try {
      await api('GET', '/session');
      goToAccount();
      return;
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) clearToken();
    }
  }
  let key = null;
  try {
    key = await loadKey();
  } catch {
    key = null;
  }
  if (!key) {
    showUnlock();
    return;
  }
  $('login-device').hidden = false;
  $('login-button').addEventListener('click', () => deviceSignIn(key));
  // Sign in at once, unless the owner just signed out or was signed out: then wait for the click.
  if (notice === 'signed-out' || notice === 'revoked') $('login-button').focus();
  else deviceSignIn(key);
}

main();
