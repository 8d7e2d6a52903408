// The IndieAuth consent page: sends a visitor without a session through sign-in and back, checks that this session may approve sign-ins (capability indieauth), and puts the session's access token into the form when the owner answers, so that only this page can submit it.

import { ApiError, api, clearToken, getToken } from './api.mjs';
import { $, describe, showError, showStatus } from './ui.mjs';

/** Where /login sends the visitor back to after signing in. */
const RETURN_TO = 'siteid.return_to';
const NO_CAPABILITY =
  'This device may not approve sign-ins to other sites: it lacks the indieauth capability. Give it that capability under Devices and keys on your account page (from a device that has it), then sign in again.';

function signInFirst() {
  sessionStorage.setItem(RETURN_TO, location.pathname + location.search);
  location.replace('/login');
}

async function main() {
  if (!getToken()) return signInFirst();
  let session;
  try {
    session = await api('GET', '/session');
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      clearToken();
      return signInFirst();
    }
    return showError(describe(error));
  }
  $('consent').hidden = false;
  if (!session.capabilities.includes('indieauth')) return showError(NO_CAPABILITY);
  const form = $('consent-form');
  form.addEventListener('submit', () => {
    $('consent-session').value = getToken() ?? '';
    showStatus('Sending your answer…');
  });
  for (const button of form.querySelectorAll('button')) button.disabled = false;
}

main();
