// The /account/inbox page: the messages, decrypted here with the encryption keys this browser keeps (the node only ever
// has ciphertext), senders checked against the keys their sites publish, and setting the inbox up or unlocking it on
// this device (inbox-unlock.mjs, loaded on demand). Message text is shown as text, never as markup.

import { ApiError, clearToken, getToken, setNotice, signedInApi } from './api.mjs';
import { loadEncryptionKeys } from './inbox-keystore.mjs';
import { loadKey } from './keystore.mjs';
import { $, clearMessages, describe, formatDuration, formatTime, messagesAfter, setBusy, showError, showStatus } from './ui.mjs';

const PAGE_SIZE = 20;
const NO_CAPABILITY =
  'This session may not read the inbox: the device or key it signed in with lacks the inbox capability. Give it that capability under Devices and keys on your account page, then sign in again.';

/** Leaves for /login; a 401 'unauthenticated' means this session is over. */
const call = signedInApi(() => {
  clearToken();
  setNotice('revoked');
  location.replace('/login');
});

/** Resolves whether the node passed this device's checks; setting up and unlocking wait for it. */
let nodeChecked = Promise.resolve(false);
/** The node's encryption keys ({kid, wrapped_key, ...}), the current one first. */
let nodeKeys = [];
/** The encryption keys this browser keeps, by kid. */
let kept = new Map();
/** The id to ask for the next page of older messages from, or null. */
let nextBefore = null;
/** The sender-keys answer per sender origin, asked for once per page load. */
const senders = new Map();

/** The node's encryption keys this browser does not keep yet. */
const missingKeys = () => nodeKeys.filter((k) => !kept.has(k.kid));

/** The message-reading code, loaded with the first message. */
const reader = () => import('./inbox-message.mjs');

function element(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

/** "812 bytes" or "3.4 KB". */
function formatSize(bytes) {
  return bytes < 1024 ? `${bytes} bytes` : `${(bytes / 1024).toFixed(1)} KB`;
}

/** The sender's keys as the node fetched them for this page ({iss, keys, inbox}); one request per origin. */
function senderKeys(origin) {
  if (!senders.has(origin)) senders.set(origin, call('GET', `/inbox/sender-keys?iss=${encodeURIComponent(origin)}`));
  return senders.get(origin);
}

/**
 * Checks a signed message against its sender's published keys; resolves with what verifyMessage says. The node fetches
 * the keys (this page may only talk to its own origin); the check itself runs here.
 */
async function verifySigned(jws, { siteOrigin, unverifiedClaims, verifyMessage }) {
  let claims;
  try {
    ({ claims } = unverifiedClaims(jws));
  } catch (error) {
    return { verified: false, reason: error.message };
  }
  const origin = siteOrigin(claims.iss);
  let jwks = { keys: [] };
  let expectedIss = null;
  if (origin) {
    try {
      const answer = await senderKeys(origin);
      jwks = { keys: answer.keys };
      expectedIss = answer.iss;
    } catch (error) {
      const why = error instanceof ApiError && error.status ? error.message : describe(error);
      return { verified: false, reason: `the keys of ${origin} could not be fetched (${why})`, claims };
    }
  }
  return verifyMessage(jws, { jwks, expectedIss, expectedAud: location.origin });
}

/** Decrypts and reads one message; resolves with {body, sender, verified} or {problem}. */
async function readMessage(message) {
  const lib = await reader();
  let header;
  try {
    header = lib.messageHeader(message.message);
  } catch (error) {
    return { problem: `This message cannot be read: ${error.message}.` };
  }
  const key = kept.get(header.kid);
  if (!key) {
    const known = nodeKeys.some((k) => k.kid === header.kid);
    return { locked: true, problem: known ? 'This browser does not hold the key this message is encrypted to yet: unlock the inbox above.' : `This message is encrypted to a key your inbox no longer has (${header.kid}).` };
  }
  let plain;
  try {
    plain = lib.parsePlaintext(await lib.decryptMessage(key.privateKey, message.message));
  } catch (error) {
    return { problem: `This message does not decrypt: ${error.message}.` };
  }
  if (plain.kind === 'plain') return { body: plain.body, sender: 'Not signed: the sender is not known.', verified: false };
  const result = await verifySigned(plain.jws, lib);
  if (result.verified) return { body: result.body, sender: `From ${new URL(result.iss).host}, verified`, verified: true, sent: result.iat };
  const body = result.claims?.body;
  const readable = body !== null && typeof body === 'object' && typeof body.text === 'string';
  return { body: readable ? body : { text: '(the text of this message cannot be read)' }, sender: `Unverified: ${result.reason}`, verified: false };
}

/** The read state line of a message. */
function readState(message) {
  return message.read_at === null ? 'Unread' : `Read ${formatTime(message.read_at)}`;
}

/** A list item for one stored message: its receipt facts now, its decrypted content once read; with Mark read and Delete. */
function messageItem(message) {
  const subject = element('h3', { textContent: 'Decrypting…' });
  const sender = element('p', { className: 'sender' });
  const state = element('span', { textContent: readState(message) });
  const facts = element('p', { className: 'advice' }, `Received ${formatTime(message.received_at)} · ${formatSize(message.size)} · `, state);
  const text = element('p', { className: 'message-text' });
  const markRead = element('button', { type: 'button', textContent: 'Mark read', hidden: message.read_at !== null });
  const remove = element('button', { type: 'button', className: 'secondary', textContent: 'Delete' });
  const actions = element('p', {}, markRead, ' ', remove);
  const item = element('li', { className: 'card' }, subject, sender, facts, text, actions);
  item.dataset.id = message.id;
  const path = `/inbox/${encodeURIComponent(message.id)}`;
  markRead.addEventListener('click', () =>
    act(item, actions, async () => {
      await call('POST', `${path}/read`);
      message.read_at = Math.floor(Date.now() / 1000);
      state.textContent = readState(message);
      markRead.hidden = true;
    }),
  );
  remove.addEventListener('click', () =>
    act(item, actions, async () => {
      await call('DELETE', path);
      messagesAfter($('messages'));
      item.remove();
      showStatus('The message was deleted.');
      $('inbox-empty').hidden = $('messages').children.length > 0;
    }),
  );
  const show = async () => {
    const read = await readMessage(message).catch((error) => ({ problem: describe(error) }));
    if (read.problem) {
      subject.textContent = read.locked ? '(locked message)' : '(unreadable message)';
      sender.textContent = read.problem;
      return;
    }
    subject.textContent = read.body.subject || '(no subject)';
    sender.textContent = read.sent === undefined ? read.sender : `${read.sender} · sent ${formatTime(read.sent)}`;
    sender.className = read.verified ? 'sender verified' : 'sender unverified';
    text.textContent = read.body.text;
  };
  return { item, show };
}

/** Runs a message's action with its buttons disabled and the page's messages under them. */
async function act(item, actions, action) {
  messagesAfter(actions);
  clearMessages();
  setBusy(true, item);
  try {
    await action();
  } catch (error) {
    showError(describe(error));
  }
  setBusy(false, item);
}

/** Lists the newest messages (first) or the next older page, and decrypts them. */
async function loadMessages(first) {
  const list = $('messages');
  const query = `?limit=${PAGE_SIZE}${!first && nextBefore ? `&before=${encodeURIComponent(nextBefore)}` : ''}`;
  const page = await call('GET', `/inbox${query}`);
  // The page's messages may sit in an item (after its buttons): they move out before the items go.
  if (list.contains($('status'))) messagesAfter(list);
  if (first) list.replaceChildren();
  nextBefore = page.next_before;
  $('inbox-more').hidden = !nextBefore;
  const items = page.messages.map(messageItem);
  list.append(...items.map((m) => m.item));
  $('inbox-empty').hidden = list.children.length > 0;
  await Promise.all(items.map((m) => m.show()));
}

/** Reads the node's and this browser's keys and shows what fits: set up, unlock, and the messages. */
async function refresh() {
  try {
    nodeKeys = (await call('GET', '/owner/encryption-keys')).keys;
  } catch (error) {
    showError(error instanceof ApiError && error.slug === 'insufficient-capability' ? NO_CAPABILITY : describe(error));
    return;
  }
  kept = await loadEncryptionKeys().catch(() => new Map());
  const missing = missingKeys();
  const hasKeys = nodeKeys.length > 0;
  $('inbox-setup').hidden = hasKeys;
  $('inbox-unlock').hidden = !missing.length;
  $('inbox-reload').hidden = $('inbox-messages').hidden = !hasKeys;
  if (missing.length && kept.size) {
    $('inbox-unlock-why').textContent = `This browser holds ${kept.size} of your inbox's ${nodeKeys.length} keys: messages encrypted to the others stay closed until your password opens them here.`;
  }
  const passkeys = typeof globalThis.PublicKeyCredential === 'function' && $('app').dataset.passkeys === 'true';
  $('inbox-unlock-passkey').hidden = !passkeys;
  if (hasKeys) await loadMessages(true);
}

/** The words for a failed setup or unlock. */
function unlockRefusal(error) {
  if (error instanceof ApiError && error.slug === 'wrong-unlock-verifier') return 'The password is wrong. Nothing was changed.';
  if (error instanceof ApiError && error.status === 429) return `Too many wrong passwords. Try again in ${formatDuration(error.retryAfter ?? 60)}.`;
  if (error?.name === 'NotAllowedError') return 'No passkey was used (cancelled or timed out).';
  if (error?.name === 'WrappedKeyError') return `Your inbox's key does not open with your owner key: ${error.message}`;
  return describe(error);
}

const CHECKING = 'Checking your password… (deriving the key takes a moment)';
const UNLOCKED = 'The inbox is unlocked on this device.';

/** Runs a setup or unlock in container, after the node check; refreshes the page once it is done. */
async function unlockStep(container, status, step, done) {
  if (!(await nodeChecked)) return;
  messagesAfter(container);
  clearMessages();
  setBusy(true, container);
  let ok = false;
  try {
    showStatus(status);
    const unlock = await import('./inbox-unlock.mjs');
    await step(unlock);
    ok = true;
  } catch (error) {
    showStatus('');
    showError(unlockRefusal(error));
  }
  setBusy(false, container);
  if (!ok) return;
  container.reset?.();
  // The section goes away once done: the word comes at the top.
  messagesAfter(document.querySelector('#app > nav'));
  showStatus(done);
  await refresh().catch((error) => showError(describe(error)));
}

function onSetUp(event) {
  event.preventDefault();
  const form = $('inbox-setup-form');
  const password = $('inbox-setup-password').value;
  unlockStep(form, CHECKING, (unlock) => unlock.setUpInbox(call, password), 'Your inbox is set up: others can now send you encrypted messages, and this browser reads them.');
}

function onUnlock(event) {
  event.preventDefault();
  const password = $('inbox-unlock-password').value;
  unlockStep($('inbox-unlock-form'), CHECKING, (unlock) => unlock.unlockWithPassword(password, missingKeys()), UNLOCKED);
}

function onPasskey() {
  unlockStep($('inbox-unlock'), 'Follow your browser to use your passkey…', (unlock) => unlock.unlockWithPasskey(missingKeys()), UNLOCKED);
}

async function main() {
  if (!getToken()) return location.replace('/login');
  messagesAfter(document.querySelector('#app > nav'));
  nodeChecked = import('./alarm.mjs')
    .then(async ({ guard }) => guard(await loadKey().catch(() => null), { audit: true }))
    .catch((error) => {
      showError(describe(error));
      return false;
    });
  $('inbox-setup-form').addEventListener('submit', onSetUp);
  $('inbox-unlock-form').addEventListener('submit', onUnlock);
  $('inbox-unlock-passkey').addEventListener('click', onPasskey);
  $('inbox-reload').addEventListener('click', async () => {
    messagesAfter(document.querySelector('#app > nav'));
    clearMessages();
    await refresh().catch((error) => showError(describe(error)));
  });
  $('inbox-more').addEventListener('click', async () => {
    messagesAfter($('inbox-more'));
    await loadMessages(false).catch((error) => showError(describe(error)));
  });
  try {
    await refresh();
  } catch (error) {
    showError(describe(error));
  }
}

main();
