// The /login page: one-step sign-in with the key this device keeps, or the password unlock of the wrapped key on a new device.

import { ApiError, api, clearToken, getToken, takeNotice } from './api.mjs';
import { signIn, unlockParams, unlockWithPassword } from './auth.mjs';
import { deleteKey, loadKey, saveKey } from './keystore.mjs';
import { $, clearMessages, countdown, describe, formatDuration, setBusy, showError, showStatus } from './ui.mjs';
import { unlockSigningKey } from './wrapped-key.mjs';

const NOTICES = {
  revoked: 'Your session was ended, from another device or because it expired.',
  'signed-out': 'You signed out.',
  forgotten: 'This device no longer holds your key. Your password unlocks it here again.',
};
const NOT_CLAIMED =
  'This node has no owner yet. Its owner claims it with the one-time setup link the node printed in its log when it first started; on the server, siteid claim-url prints it again.';

let params = null;
let throttled = false;

function goToAccount() {
  location.assign('/account');
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

async function deviceSignIn(key) {
  const section = $('login-device');
  clearMessages();
  setBusy(true, section);
  showStatus('Signing in with the key this device keeps…');
  try {
    await signIn(key);
    goToAccount();
    return;
  } catch (error) {
    showStatus('');
    if (error instanceof ApiError && error.status === 429) {
      setBusy(false, section);
      throttle(error, $('login-button'), 'Too many failed sign-ins from this address.');
      return;
    }
    if (error instanceof ApiError && error.slug === 'invalid-assertion' && (await keyIsStale(key))) return;
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
  loadParams();
}

/** Shows the one-time unlock code field, with a message when given. */
function offerUnlockCode(message) {
  $('unlock-code-field').hidden = false;
  $('unlock-code-toggle').hidden = true;
  if (message) showError(message);
  $('unlock-code').focus();
}

async function unlock(password, unlockCode) {
  if (!params && !(await loadParams())) return false;
  showStatus('Checking your password… (deriving the key takes a moment)');
  const { wrappedKey, kid, unlockKey } = await unlockWithPassword(password, params, unlockCode);
  showStatus('Unlocking your key…');
  const key = await unlockSigningKey(wrappedKey, unlockKey);
  if (key.kid !== kid) throw new Error('the unlocked key is not the key the node names');
  await saveKey(key);
  showStatus('Signing in…');
  await signIn(key);
  return true;
}

async function onUnlockSubmit(event) {
  event.preventDefault();
  if (throttled) return;
  const form = $('unlock-form');
  const password = $('password').value;
  const unlockCode = $('unlock-code-field').hidden ? '' : $('unlock-code').value.trim();
  clearMessages();
  setBusy(true, form);
  let signedIn = false;
  try {
    signedIn = await unlock(password, unlockCode);
  } catch (error) {
    showStatus('');
    setBusy(false, form);
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
