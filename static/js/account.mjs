// The /account page: sessions (live over the WebSocket), the audit log, password change, replacing the owner key,
// forgetting this device, signing out (which forgets the inbox's keys), and new devices' requests and the enrollment
// setting (on demand); it first checks the node against what this device trusts.

import { ApiError, api, clearToken, getToken, setNotice, signedInApi } from './api.mjs';
import { replaceWrappedKey, unlockWithPassword } from './auth.mjs';
import { describeClient, stepUpThisDevice } from './device.mjs';
import { deleteKey, loadKey } from './keystore.mjs';
import { forgetTrust } from './trust.mjs';
import { $, clearMessages, countdown, describe, formatDuration, formatTime, messagesAfter, setBusy, showError, showStatus } from './ui.mjs';
import { importSigningKey, jwkThumbprint, unwrapPrivateKey, wrapPrivateKey } from './wrapped-key.mjs';

const AUDIT_PAGE = 20;

let session = null;
let quiet = false; // true while this page ends its own session: the socket closing is expected
let left = false;
let socket = null;
let retries = 0;
let refreshTimer = null;
let newestSeq = null;
let nextBefore = null;

/** Leaves for /login with a notice for it; the first call wins. */
function leave(notice) {
  if (left) return;
  left = true;
  quiet = true;
  socket?.close(1000);
  clearToken();
  setNotice(notice);
  location.replace('/login');
}

/** API calls of this signed-in page: a 401 means the session is over, so it goes to /login. */
const call = signedInApi(() => leave('revoked'));

function element(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

/** "just now", "5 min ago", "3 h ago", or a date. */
function ago(unixSeconds) {
  const seconds = Date.now() / 1000 - unixSeconds;
  if (seconds < 90) return 'just now';
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
  return formatTime(unixSeconds);
}

function sessionItem(s) {
  const item = element('li', { className: s.current ? 'current' : '' });
  item.dataset.sessionId = s.id;
  const who = element('span', { className: 'who', title: s.user_agent ?? '' }, describeClient(s.user_agent));
  if (s.current) who.append(' ', element('strong', { className: 'badge' }, 'this device'));
  const when = element('small', {}, `${s.ip} · signed in ${formatTime(s.created_at)} · active ${ago(s.last_seen_at)}`);
  item.append(element('span', { className: 'about' }, who, element('br'), when));
  if (!s.current) {
    const button = element('button', { type: 'button', className: 'secondary', textContent: 'Revoke' });
    button.setAttribute('aria-label', `Revoke the session of ${describeClient(s.user_agent)} from ${s.ip}, signed in ${formatTime(s.created_at)}`);
    button.addEventListener('click', () => revoke(s.id, button));
    item.append(button);
  }
  return item;
}

async function refreshSessions() {
  const { sessions } = await call('GET', '/sessions');
  // This device first, then the others newest first.
  sessions.sort((x, y) => y.current - x.current);
  $('sessions').replaceChildren(...sessions.map(sessionItem));
  $('revoke-others').disabled = !sessions.some((s) => !s.current);
}

async function revoke(id, button) {
  messagesAfter($('revoke-others'));
  clearMessages();
  button.disabled = true;
  try {
    await call('DELETE', `/sessions/${encodeURIComponent(id)}`);
    showStatus('The session was revoked; that device is signed out.');
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 404)) showError(describe(error));
  }
  await refreshAll();
}

async function revokeOthers() {
  messagesAfter($('revoke-others'));
  clearMessages();
  const button = $('revoke-others');
  button.disabled = true;
  try {
    const { revoked } = await call('POST', '/sessions/revoke-others');
    showStatus(revoked === 1 ? 'One other session was signed out.' : `${revoked} other sessions were signed out.`);
  } catch (error) {
    showError(describe(error));
  }
  await refreshAll();
}

function details(detail) {
  if (!detail || typeof detail !== 'object') return '';
  return Object.entries(detail)
    .filter(([k, v]) => !(k === 'kid' && v === session.kid))
    .map(([k, v]) => `${k.replaceAll('_', ' ')}: ${typeof v === 'object' ? JSON.stringify(v) : v}`)
    .join(', ');
}

function auditRow(entry) {
  const row = element('tr');
  row.dataset.seq = entry.seq;
  const time = element('time', { dateTime: new Date(entry.at * 1000).toISOString() }, formatTime(entry.at));
  row.append(element('td', {}, time), element('td', {}, element('code', {}, ...entry.event.split('.').flatMap((part, i) => (i ? [element('wbr'), `.${part}`] : [part])))), element('td', {}, entry.ip ?? ''), element('td', { title: entry.user_agent ?? '' }, details(entry.detail)));
  return row;
}

async function loadAudit() {
  const query = nextBefore === null ? '' : `&before=${nextBefore}`;
  const page = await call('GET', `/audit?limit=${AUDIT_PAGE}${query}`);
  const body = $('audit').tBodies[0];
  body.append(...page.entries.map(auditRow));
  if (newestSeq === null && page.entries.length) newestSeq = page.entries[0].seq;
  nextBefore = page.next_before;
  $('audit-more').hidden = nextBefore === null;
}

/** Adds the entries newer than the newest shown at the top. */
async function refreshAuditTop() {
  if (newestSeq === null) return loadAudit();
  const page = await call('GET', `/audit?limit=${AUDIT_PAGE}`);
  const fresh = page.entries.filter((e) => e.seq > newestSeq);
  if (!fresh.length) return;
  newestSeq = fresh[0].seq;
  $('audit').tBodies[0].prepend(...fresh.map(auditRow));
}

async function refreshAll() {
  try {
    await refreshSessions();
    await refreshAuditTop();
  } catch (error) {
    showError(describe(error));
  }
}

function scheduleRefresh() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(refreshAll, 100);
}

/** The requests of new devices, loaded when one waits for an answer. */
const pairing = () => import('./pairing-approve.mjs');

async function loadPairing() {
  if (!session.capabilities.includes('credentials')) return;
  const { requests } = await call('GET', '/enrollment/requests');
  if (requests.length) (await pairing()).showRequests(requests, call);
}

function onEvent(message) {
  if (quiet) return;
  if (message.event.startsWith('enrollment.')) pairing().then((m) => m.onEnrollmentEvent(message, call));
  const ended = message.event === 'session.revoked' || message.event === 'session.ended';
  if (ended && message.session_id === session.session_id) {
    leave('revoked');
    return;
  }
  if (message.event === 'session.created') {
    messagesAfter($('revoke-others'));
    showStatus(`New sign-in: ${describeClient(message.user_agent)} from ${message.ip}.`);
  }
  scheduleRefresh();
}

/** Listens for session events; a 4401 close means this session ended, anything else reconnects with backoff. */
function connect() {
  const token = getToken();
  if (!token) return leave('revoked');
  const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/api/v1/ws`);
  socket = ws;
  ws.addEventListener('message', (m) => {
    let message;
    try {
      message = JSON.parse(m.data);
    } catch {
      return;
    }
    if (message.type === 'challenge') ws.send(JSON.stringify({ type: 'auth', access_token: token }));
    else if (message.type === 'ready') {
      if (retries > 0) scheduleRefresh(); // Events may have been missed while disconnected.
      // Requests waiting for an answer, read once the socket would show new ones, so that none falls in between.
      loadPairing().catch((error) => showError(describe(error)));
      retries = 0;
      $('app').dataset.live = 'true';
    } else if (message.type === 'event') onEvent(message);
  });
  ws.addEventListener('close', (event) => {
    if (socket !== ws || quiet) return;
    delete $('app').dataset.live;
    if (event.code === 4401) {
      leave('revoked');
      return;
    }
    const delay = Math.min(30, 2 ** retries);
    retries += 1;
    setTimeout(connect, delay * 1000);
  });
}

async function changePassword(event) {
  event.preventDefault();
  const form = $('password-form');
  messagesAfter(form);
  clearMessages();
  const current = $('current-password').value;
  const next = $('new-password').value;
  const { refusal } = await strength();
  const problem = next === current ? 'The new password is the same as the current one.' : refusal(next, $('new-password-again').value);
  if (problem) {
    showError(problem);
    $(problem.includes('differ') ? 'new-password-again' : 'new-password').focus();
    return;
  }
  setBusy(true, form);
  try {
    // A fresh step-up first: with two-step unlock on, the session stands in for the code.
    showStatus('Confirming it is you…');
    await stepUpThisDevice();
    showStatus('Checking your current password… (deriving the key takes a moment)');
    const { wrappedKey, kid, unlockKey } = await unlockWithPassword(current);
    showStatus('Encrypting your key under the new password…');
    const jwk = await unwrapPrivateKey(wrappedKey, unlockKey);
    if ((await jwkThumbprint(jwk)) !== kid) throw new Error('the unlocked key is not the key the node names');
    let rewrapped;
    let signingKey;
    try {
      rewrapped = await wrapPrivateKey(jwk, next);
      signingKey = await importSigningKey(jwk);
    } finally {
      delete jwk.d;
    }
    await replaceWrappedKey({ signingKey, kid }, { ...rewrapped, oldUnlockVerifier: unlockKey.unlockVerifier }, call);
    form.reset();
    (await strength()).renderStrength($('new-strength'), '');
    showStatus('Password changed. Devices you signed in with go on working; new devices need the new password, and the old one no longer unlocks.');
    refreshAuditTop().catch(() => {});
  } catch (error) {
    showStatus('');
    if (error instanceof ApiError && error.slug === 'wrong-unlock-verifier') {
      showError('The current password is wrong. Nothing was changed.');
      setBusy(false, form);
      $('current-password').select();
      return;
    }
    if (error instanceof ApiError && error.status === 429) {
      showError(`Too many wrong passwords. Try again in ${formatDuration(error.retryAfter ?? 60)}. Nothing was changed.`);
    } else {
      showError(`${describe(error)} Nothing was changed.`);
    }
  }
  setBusy(false, form);
}

/** Stops the countdown of the unlock code on screen, if any. */
let stopUnlockCodeCountdown = () => {};

/** Takes the unlock code shown, if any, off the screen. */
function hideUnlockCode() {
  stopUnlockCodeCountdown();
  $('unlock-code').value = '';
  $('unlock-code-shown').hidden = true;
}

/** Makes a one-time unlock code for a new device (after a step-up with the key this device keeps) and shows it until it expires. */
async function makeUnlockCode() {
  const button = $('unlock-code-make');
  messagesAfter(button);
  clearMessages();
  hideUnlockCode();
  const section = button.parentElement;
  setBusy(true, section);
  try {
    showStatus('Confirming it is you…');
    await stepUpThisDevice();
    const { code, expires_in: expiresIn } = await call('POST', '/unlock-codes');
    showStatus('');
    $('unlock-code').value = code;
    $('unlock-code-shown').hidden = false;
    stopUnlockCodeCountdown = countdown(
      expiresIn,
      (seconds) => {
        $('unlock-code-left').textContent = `(valid for ${formatDuration(seconds)})`;
      },
      hideUnlockCode,
    );
  } catch (error) {
    showStatus('');
    showError(describe(error));
  }
  setBusy(false, section);
}

async function forgetDevice() {
  messagesAfter($('forget-device'));
  clearMessages();
  const section = $('forget-device').parentElement;
  setBusy(true, section);
  quiet = true;
  // This browser's credential is revoked first, so that nothing it kept could sign in again; the key goes either way.
  const key = await loadKey().catch(() => null);
  if (key?.kind === 'device') {
    try {
      await stepUpThisDevice();
      await api('DELETE', `/credentials/${encodeURIComponent(key.credentialId)}`);
    } catch {
      // The key is deleted below; revoke the credential from another device (Account, Devices and keys).
    }
  }
  try {
    await deleteKey();
    forgetTrust();
  } catch (error) {
    quiet = false;
    setBusy(false, section);
    showError(`The key stored in this browser could not be deleted: ${error.message}`);
    return;
  }
  try {
    await api('DELETE', '/session');
  } catch {
    // The key is gone; a session the node could not be told about ends by itself when idle.
  }
  leave('forgotten');
}

async function signOut() {
  clearMessages();
  const button = $('sign-out');
  messagesAfter(button.parentElement);
  button.disabled = true;
  quiet = true;
  try {
    await api('DELETE', '/session');
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 401)) {
      quiet = false;
      button.disabled = false;
      showError(describe(error));
      return;
    }
  }
  // The inbox's keys go with the session; this device's own key stays, for signing in again.
  await (await import('./inbox-keystore.mjs')).forgetEncryptionKeys().catch(() => {});
  leave('signed-out');
}

/** The password strength estimate, loaded when a new password is first typed. */
const strength = () => import('./strength.mjs');

async function main() {
  messagesAfter(document.querySelector('#app > nav'));
  if (!getToken()) {
    location.replace('/login');
    return;
  }
  try {
    session = await call('GET', '/session');
    // Nothing more is asked of a node whose key or audit log does not follow from what this device verified.
    const { guard } = await import('./alarm.mjs');
    if (!(await guard(await loadKey().catch(() => null), { audit: true }))) return;
  } catch (error) {
    showError(describe(error));
    return;
  }
  $('sign-out').addEventListener('click', signOut);
  $('revoke-others').addEventListener('click', revokeOthers);
  $('audit-more').addEventListener('click', async () => {
    messagesAfter($('audit-more'));
    try {
      await loadAudit();
    } catch (error) {
      showError(describe(error));
    }
  });
  $('profile-edit').addEventListener('click', async () => (await import('./profile.mjs')).openProfile(call));
  $('password-form').addEventListener('submit', changePassword);
  $('new-password').addEventListener('input', async () => (await strength()).renderStrength($('new-strength'), $('new-password').value));
  $('rotate-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    (await import('./rotate.mjs')).onRotate(call, refreshAll);
  });
  $('rotate-new-password').addEventListener('input', async () => (await strength()).renderStrength($('rotate-strength'), $('rotate-new-password').value));
  $('forget-device').addEventListener('click', forgetDevice);
  $('unlock-code-make').addEventListener('click', makeUnlockCode);
  $('enrollment-section').addEventListener('toggle', async () => $('enrollment-section').open && (await import('./enrollment-settings.mjs')).openEnrollment(call));
  connect();
  try {
    await refreshSessions();
    await loadAudit();
  } catch (error) {
    showError(describe(error));
  }
}

main();
