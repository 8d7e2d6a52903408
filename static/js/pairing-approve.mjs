// New devices' requests to join on /account (pairing), loaded on demand: each with where it comes from, its comparison code computed here and its time left; approving binds the new device with the owner key the password (or a passkey's PRF copy) opens, denying refuses it.

import { ApiError } from './api.mjs';
import { audience } from './auth.mjs';
import { DEVICE_CAPABILITIES, bindCredential, describeClient, ownerKeyFromPassword, stepUpThisDevice } from './device.mjs';
import { comparisonCode, formatCode } from './pairing.mjs';
import { $, clearMessages, countdown, describe, formatDuration, formatTime, messagesAfter, setBusy, showError, showStatus } from './ui.mjs';

/** The requests on screen, by request id: {item, stop} (stop ends the item's countdown). */
const shown = new Map();

/** The page's signed-in API call. */
let call = null;

/** Ids of requests being added (their code is computed asynchronously), so that an event and a reload add each once. */
const adding = new Set();

/** Ids of requests answered or run out while this page was open: a list read before the answer does not bring them back. */
const answered = new Set();

function element(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

/** Shows requests ({request_id, kind, label, kid, node_nonce, ip, user_agent, expires_at, status}) not on screen yet. */
export async function showRequests(requests, pageCall) {
  call = pageCall;
  for (const request of requests) await add(request);
}

/** An event from the page's socket: a new request shows up, an answered one (here or on another device) goes away. */
export async function onEnrollmentEvent(message, pageCall) {
  call = pageCall;
  if (message.event === 'enrollment.requested') await add(message);
  else if (message.event === 'enrollment.answered') remove(message.request_id);
}

/** Takes a request off the screen; the page's messages move out of its item first. */
function remove(id) {
  answered.add(id);
  const entry = shown.get(id);
  if (!entry) return;
  shown.delete(id);
  entry.stop();
  if (entry.item.contains($('progress'))) messagesAfter($('pairing-requests'));
  entry.item.remove();
  $('pairing').hidden = shown.size === 0;
}

let fields = 0;

async function add(request) {
  const id = request.request_id;
  if (request.status !== 'pending' || shown.has(id) || adding.has(id) || answered.has(id)) return;
  adding.add(id);
  let code;
  try {
    // Computed here from the request, never taken from anyone: the new device computes its own.
    code = formatCode(await comparisonCode(audience(), id, request.kid, request.node_nonce));
  } finally {
    adding.delete(id);
  }
  fields += 1;
  const password = element('input', { type: 'password', id: `pairing-password-${fields}`, name: 'password', autocomplete: 'current-password', required: true });
  const approveButton = element('button', { type: 'submit', textContent: 'Approve' });
  const denyButton = element('button', { type: 'button', className: 'secondary', textContent: 'Deny' });
  // A passkey with a PRF copy of the owner key opens it without the password.
  const passkeyButton = element('button', { type: 'button', className: 'secondary', textContent: 'Approve with a passkey' });
  passkeyButton.hidden = typeof globalThis.PublicKeyCredential !== 'function' || $('app').dataset.passkeys !== 'true';
  const form = element(
    'form',
    { method: 'post' },
    element('label', { htmlFor: password.id }, 'Your password: the new device is bound with your owner key, unlocked in this browser for a moment'),
    password,
    approveButton,
    ' ',
    passkeyButton,
    ' ',
    denyButton,
  );
  const left = element('span', {});
  const what = request.kind === 'device' ? 'a browser' : 'a key';
  const item = element(
    'li',
    {},
    element('p', {}, element('strong', { className: 'pairing-label' }, request.label), ` (${what}) from ${request.ip}, ${describeClient(request.user_agent)}`),
    element('p', {}, 'Code: ', element('output', { className: 'code pairing-code' }, code), element('br'), element('strong', {}, 'Approve only if the new device shows the same code.')),
    element('p', {}, `Waits until ${formatTime(request.expires_at)} `, left),
    form,
  );
  item.dataset.requestId = id;
  const seconds = Math.min(300, request.expires_at - Date.now() / 1000);
  if (seconds < 1 || answered.has(id)) return;
  const stop = countdown(
    seconds,
    (s) => {
      left.textContent = `(${formatDuration(s)} left)`;
    },
    () => remove(id),
  );
  shown.set(id, { item, stop });
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    approve(request, form, password, () => ownerKeyFromPassword(password.value));
  });
  passkeyButton.addEventListener('click', () => approve(request, form, password, ownerKeyFromPasskey));
  denyButton.addEventListener('click', () => deny(request, form));
  $('pairing-requests').append(item);
  $('pairing').hidden = false;
}

/** Handles a refusal common to approving and denying; true when the request is gone. */
function closed(error, id) {
  if (error instanceof ApiError && (error.slug === 'enrollment-request-closed' || error.slug === 'enrollment-request-not-found')) {
    remove(id);
    showError('This request was answered already (perhaps on another device), or it ran out.');
    return true;
  }
  return false;
}

/**
 * The owner key from a passkey's PRF copy: this session steps up first (approving needs it), then the passkey signs in
 * once for the copy only, and that second session ends at once.
 */
async function ownerKeyFromPasskey() {
  await stepUpThisDevice();
  const { signInWithPasskey } = await import('./passkey.mjs');
  const { session, ownerKey } = await signInWithPasskey();
  await fetch('/api/v1/session', { method: 'DELETE', headers: { authorization: `Bearer ${session.access_token}` }, credentials: 'omit' }).catch(() => {});
  if (!ownerKey) throw new Error('This passkey does not open your key in this browser (it holds no copy of it, or the authenticator gives no PRF output). Use your password.');
  return ownerKey;
}

/** Approves with the owner key unlock() opens: it binds the new device with what this session may do, no more. */
async function approve(request, form, password, unlock) {
  const id = request.request_id;
  messagesAfter(form);
  clearMessages();
  setBusy(true, form);
  try {
    showStatus('Unlocking your owner key… (deriving the key takes a moment)');
    const ownerKey = await unlock();
    const { capabilities: held } = await call('GET', '/session');
    const capabilities = DEVICE_CAPABILITIES.filter((c) => held.includes(c));
    const binding = await bindCredential(ownerKey, { id, kid: request.kid, kind: request.kind, label: request.label, capabilities, networks: [], expiresAt: null });
    showStatus('Approving…');
    await call('POST', `/enrollment/requests/${encodeURIComponent(id)}/approve`, { capabilities, networks: [], expires_at: null, binding });
    setBusy(false);
    remove(id);
    showStatus(`Approved: ${request.label} signs in with its own key now. It is listed under Devices and keys, where you can revoke it.`);
    return;
  } catch (error) {
    password.value = '';
    setBusy(false, form);
    showStatus('');
    if (closed(error, id)) return;
    if (error instanceof ApiError && error.slug === 'wrong-unlock-verifier') {
      showError('Wrong password. Nothing was approved.');
      password.focus();
    } else {
      showError(`${describe(error)} Nothing was approved.`);
    }
  }
}

async function deny(request, form) {
  const id = request.request_id;
  messagesAfter(form);
  clearMessages();
  setBusy(true, form);
  try {
    await call('POST', `/enrollment/requests/${encodeURIComponent(id)}/deny`);
    setBusy(false);
    remove(id);
    showStatus(`Refused: ${request.label} was not let in.`);
  } catch (error) {
    setBusy(false, form);
    if (!closed(error, id)) showError(describe(error));
  }
}
