// The /account/totp page: two-step unlock (TOTP) on or off, its QR code drawn from the node's one SVG path, the
// confirming code, the recovery codes shown once, and new ones; every change steps up and waits for the node check.

import { ApiError, clearToken, getToken, setNotice, signedInApi } from './api.mjs';
import { secondFactorMember } from './auth.mjs';
import { stepUpThisDevice } from './device.mjs';
import { loadKey } from './keystore.mjs';
import { $, clearMessages, describe, formatTime, messagesAfter, setBusy, showError, showStatus } from './ui.mjs';

const SVG = 'http://www.w3.org/2000/svg';

/** Leaves for /login; a 401 'unauthenticated' means this session is over. */
const call = signedInApi(() => {
  clearToken();
  setNotice('revoked');
  location.replace('/login');
});

/** Resolves whether the node passed this device's checks; every write waits for it. */
let nodeChecked = Promise.resolve(false);

async function refresh() {
  const status = await call('GET', '/totp');
  $('totp-status').textContent = status.enabled
    ? `Two-step unlock is on since ${formatTime(status.enabled_at)}. Recovery codes left: ${status.recovery_codes_left}.`
    : 'Two-step unlock is off: your password alone unlocks your identity on a new device.';
  $('totp-off').hidden = status.enabled;
  $('totp-on').hidden = !status.enabled;
  return status;
}

/**
 * Draws the node's QR code: only the viewBox and the path data are taken from its SVG text (checked to be numbers and
 * path moves), into elements made here, so nothing else in it can reach the page.
 */
function drawQr(svgText) {
  const parsed = new DOMParser().parseFromString(svgText, 'image/svg+xml');
  const root = parsed.documentElement;
  const paths = root.getElementsByTagNameNS(SVG, 'path');
  const viewBox = root.getAttribute('viewBox') ?? '';
  const data = paths.length === 1 ? (paths[0].getAttribute('d') ?? '') : '';
  if (root.namespaceURI !== SVG || root.localName !== 'svg' || !/^0 0 \d{1,3} \d{1,3}$/.test(viewBox) || !/^[Mhvz0-9 -]+$/.test(data)) {
    throw new Error('the node sent a QR code that is not a plain SVG path');
  }
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', viewBox);
  svg.setAttribute('width', '232');
  svg.setAttribute('height', '232');
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', 'QR code of the secret for your authenticator app');
  // Set through the CSSOM, which the page's CSP allows: the code needs its light quiet zone in dark mode too.
  svg.style.background = '#fff';
  const path = document.createElementNS(SVG, 'path');
  path.setAttribute('d', data);
  path.setAttribute('fill', '#000');
  svg.append(path);
  $('totp-qr').replaceChildren(svg);
}

/** Shows ten recovery codes, once. */
function showCodes(codes) {
  $('totp-code-list').replaceChildren(...codes.map((code) => Object.assign(document.createElement('li'), { textContent: code })));
  $('totp-codes').hidden = false;
}

/** Steps up, then runs a write; on a refused code, says so next to the field. */
async function write(container, input, action) {
  if (!(await nodeChecked)) return;
  messagesAfter(container);
  clearMessages();
  setBusy(true, container);
  try {
    showStatus('Confirming it is you…');
    await stepUpThisDevice();
    showStatus('');
    await action();
  } catch (error) {
    showStatus('');
    if (error instanceof ApiError && error.slug === 'totp-invalid') {
      showError('That code is not right: it is wrong, expired, or was used already. Wait for the next code and try again.');
    } else if (error instanceof ApiError && error.slug === 'totp-not-pending') {
      showError('The setup is more than 15 minutes old. Start again with “Turn on”.');
    } else {
      showError(describe(error));
    }
    if (input) {
      input.value = '';
      input.focus();
    }
  }
  setBusy(false, container);
}

function onStart() {
  write($('totp-off'), null, async () => {
    const setup = await call('POST', '/totp/setup');
    drawQr(setup.qr_svg);
    $('totp-secret').textContent = setup.secret.replace(/(.{4})/g, '$1 ').trim();
    $('totp-setup').hidden = false;
    $('totp-codes').hidden = true;
    $('totp-confirm-code').focus();
  });
}

function onConfirm(event) {
  event.preventDefault();
  const input = $('totp-confirm-code');
  write($('totp-off'), input, async () => {
    const { recovery_codes: codes } = await call('POST', '/totp/confirm', { totp: input.value.trim() });
    input.value = '';
    $('totp-setup').hidden = true;
    $('totp-qr').replaceChildren();
    $('totp-secret').textContent = '';
    await refresh();
    showCodes(codes);
    showStatus('Two-step unlock is on. A new device now needs your password and a code from the app.');
  });
}

function onNewCodes(event) {
  event.preventDefault();
  const input = $('totp-code');
  if (secondFactorMember(input.value) !== 'totp') {
    messagesAfter($('totp-on'));
    showError('New recovery codes need the 6-digit code your authenticator app shows now.');
    input.focus();
    return;
  }
  write($('totp-on'), input, async () => {
    const { recovery_codes: codes } = await call('POST', '/totp/recovery-codes', { totp: input.value.trim() });
    input.value = '';
    await refresh();
    showCodes(codes);
    showStatus('These are your new recovery codes; the old ones no longer work.');
  });
}

function onDisable() {
  const input = $('totp-code');
  const code = input.value.trim();
  if (!code) {
    messagesAfter($('totp-on'));
    showError('Turning two-step unlock off needs a code from your authenticator app, or a recovery code.');
    input.focus();
    return;
  }
  write($('totp-on'), input, async () => {
    await call('DELETE', '/totp', { [secondFactorMember(code)]: code });
    input.value = '';
    $('totp-codes').hidden = true;
    await refresh();
    showStatus('Two-step unlock is off: your password alone unlocks your identity on a new device.');
  });
}

async function main() {
  if (!getToken()) return location.replace('/login');
  messagesAfter($('totp-status'));
  nodeChecked = import('./alarm.mjs')
    .then(async ({ guard }) => guard(await loadKey().catch(() => null), { audit: true }))
    .catch((error) => {
      showError(describe(error));
      return false;
    });
  $('totp-start').addEventListener('click', onStart);
  $('totp-confirm-form').addEventListener('submit', onConfirm);
  $('totp-manage-form').addEventListener('submit', onNewCodes);
  $('totp-disable').addEventListener('click', onDisable);
  try {
    await refresh();
  } catch (error) {
    showError(describe(error));
  }
}

main();
