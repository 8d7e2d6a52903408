// Asking a signed-in device to let this browser in (pairing) on /login, loaded on demand: this browser's own key, the request, the comparison code computed here with the time left, and the sign-in with that key once a device approves it.

import { ApiError, api } from './api.mjs';
import { audience, signIn } from './auth.mjs';
import { describeClient, newCredentialId } from './device.mjs';
import { saveKey } from './keystore.mjs';
import { comparisonCode, formatCode } from './pairing.mjs';
import { $, clearMessages, countdown, describe, formatDuration, messagesAfter, showError, showStatus } from './ui.mjs';
import { jwkThumbprint } from './wrapped-key.mjs';

/** How often the request's status is read, in milliseconds. */
const POLL_MS = 2000;

/** Polls past the request's lifetime, for a node that notices the expiry a moment late. */
const EXTRA_POLLS = 5;

let asking = false;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Reads the request every two seconds until it is answered or has run out; resolves with its status. */
async function answer(id, seconds) {
  const polls = Math.ceil((seconds * 1000) / POLL_MS) + EXTRA_POLLS;
  for (let i = 0; i < polls; i += 1) {
    await sleep(POLL_MS);
    try {
      const { status } = await api('GET', `/enrollment/requests/${encodeURIComponent(id)}`);
      if (status !== 'pending') return status;
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) return 'expired';
      // No network for a moment: the next poll tries again.
    }
  }
  return 'expired';
}

/** Back to the button, with a way to try again. */
function again(error) {
  asking = false;
  $('pair-waiting').hidden = true;
  $('pair-button').disabled = false;
  $('pair-button').textContent = 'Ask again';
  showStatus('');
  showError(error);
}

/**
 * Makes this browser's key (P-384, non-extractable), asks for it to be approved, shows the code to compare and waits;
 * once approved, keeps the key, signs in with it and goes on with goToAccount().
 */
export async function askToJoin(goToAccount) {
  if (asking) return;
  asking = true;
  const button = $('pair-button');
  messagesAfter($('pair-waiting'));
  clearMessages();
  button.disabled = true;
  let stop = () => {};
  try {
    // The node must follow from what this device trusts (first use trusts what it shows) before it is asked anything.
    const { guard } = await import('./alarm.mjs');
    if (!(await guard(null))) return;
    showStatus('Making this browser’s own key…');
    const pair = await globalThis.crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-384' }, false, ['sign', 'verify']);
    const { kty, crv, x, y } = await globalThis.crypto.subtle.exportKey('jwk', pair.publicKey);
    const publicJwk = { kty, crv, x, y };
    const kid = await jwkThumbprint(publicJwk);
    const id = newCredentialId();
    // A label may hold no control or format characters; a user agent is not trusted to be clean.
    const label = describeClient(navigator.userAgent).replace(/[\p{Cc}\p{Cf}]/gu, '').trim().slice(0, 64) || 'Browser';
    const request = await api('POST', '/enrollment/requests', { id, kind: 'device', label, public_key: publicJwk });
    // Computed here from this device's own id and key and the node's nonce: the approving device computes its own.
    $('pair-code').textContent = formatCode(await comparisonCode(audience(), id, kid, request.node_nonce));
    $('pair-waiting').hidden = false;
    showStatus('Waiting for a device where you are signed in to approve this one…');
    const lifetime = Math.max(0, request.expires_at - request.created_at);
    stop = countdown(
      lifetime,
      (s) => {
        $('pair-left').textContent = `This request waits ${formatDuration(s)} more.`;
      },
      () => {
        $('pair-left').textContent = 'Time is up.';
      },
    );
    const status = await answer(id, lifetime);
    stop();
    if (status === 'approved') {
      showStatus('Approved. Signing in with this browser’s own key…');
      const device = { signingKey: pair.privateKey, kid, publicJwk, credentialId: id, kind: 'device' };
      await saveKey(device);
      await signIn(device);
      if (!(await guard(device, { keys: false, audit: true }))) return;
      goToAccount();
      return;
    }
    again(
      status === 'denied'
        ? 'The request was refused on your other device, so this browser was not let in. Nothing was kept here.'
        : 'No device approved the request within 5 minutes, so it ran out. Nothing was kept here.',
    );
  } catch (error) {
    stop();
    if (error?.name === 'NodeAlarm') return;
    if (error instanceof ApiError && error.slug === 'enrollment-window-closed') {
      $('enrollment-closed').hidden = false;
      again('New devices cannot join now: no window for them is open.');
    } else {
      again(describe(error));
    }
  }
}
