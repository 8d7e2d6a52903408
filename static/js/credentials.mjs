// The /account/credentials page: the devices and keys that may sign in, and adding, editing, resetting and revoking them; every binding is made here with the owner key unlocked from the password for a moment.

import { ApiError, clearToken, getToken, setNotice, signedInApi } from './api.mjs';
import { audience } from './auth.mjs';
import { bindCredential, newCredentialId, ownerKeyFromPassword, stepUpThisDevice } from './device.mjs';
import { readPublicKey } from './keys.mjs';
import { deleteKey, loadKey } from './keystore.mjs';
import { $, clearMessages, describe, formatTime, messagesAfter, setBusy, showError, showStatus } from './ui.mjs';

const CAPABILITIES = [
  ['session', 'sign in and keep a session, open a WebSocket'],
  ['sessions', 'see and end sessions'],
  ['audit', 'read the audit log'],
  ['credentials', 'add, change and revoke devices and keys'],
  ['recovery', 'make recovery shares'],
  ['owner', 'change the password, and everything else'],
  ['inbox', 'read and delete private messages'],
  ['indieauth', 'approve sign-ins to other sites'],
];
const KINDS = { owner: 'Owner key', device: 'Browser', key: 'Key', passkey: 'Passkey' };
const FIELD_INPUTS = { public_key: 'public-key', label: 'label', networks: 'networks', expires_at: 'expires', capabilities: 'cap-session' };

/** What the form does: {mode: 'add'} or {mode: 'edit' | 'reset', credential}. */
let editing = { mode: 'add' };

function element(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

/** Leaves for /login; a 401 means this session is over. */
function leave(notice) {
  clearToken();
  setNotice(notice);
  location.replace('/login');
}

/** API calls of this page: a 401 leaves for /login. */
const call = signedInApi(() => leave('revoked'));

function lastUsed(at) {
  return at ? formatTime(at) : 'never';
}

function row(credential) {
  const name = element('td', {}, credential.label);
  if (credential.current) name.append(' ', element('strong', { className: 'badge' }, 'this device'));
  let kind = `${KINDS[credential.kind] ?? credential.kind} (${credential.alg})`;
  if (credential.passkey) {
    const { authenticator, aaguid, unlocks, backed_up: synced } = credential.passkey;
    kind += `: ${authenticator ?? (aaguid ? `authenticator ${aaguid}` : 'authenticator not named')}${synced ? ', synced' : ''}${unlocks ? ', unlocks new devices' : ''}`;
  }
  const networks = credential.networks.length ? credential.networks.join(', ') : 'anywhere';
  const expires = credential.expires_at ? formatTime(credential.expires_at) : 'never';
  const actions = element('td');
  if (credential.kind !== 'owner') {
    const button = (text, label, action) => {
      const b = element('button', { type: 'button', className: 'secondary', textContent: text });
      b.setAttribute('aria-label', `${label} ${credential.label}`);
      b.addEventListener('click', () => action(credential, b));
      return b;
    };
    actions.append(button('Edit', 'Edit', startEdit), ' ');
    if (credential.kind !== 'passkey') actions.append(button('Reset key', 'Give a new key to', startReset), ' ');
    actions.append(button('Revoke', 'Revoke', revoke));
  }
  const tr = element('tr', {}, name, element('td', {}, kind), element('td', {}, credential.capabilities.join(', ')), element('td', {}, networks), element('td', {}, expires), element('td', {}, lastUsed(credential.last_used_at)), actions);
  tr.dataset.credentialId = credential.id;
  return tr;
}

async function refresh() {
  const { credentials } = await call('GET', '/credentials');
  $('credentials').tBodies[0].replaceChildren(...credentials.map(row));
}

function selectedCapabilities() {
  return CAPABILITIES.map(([name]) => name).filter((name) => $(`cap-${name}`).checked);
}

function networks() {
  return $('networks').value.split(/[\s,]+/).filter(Boolean);
}

/** The expiry as unix seconds (the end of the chosen day, local time), or null. */
function expiresAt() {
  const value = $('expires').value;
  if (!value) return null;
  const at = Math.floor(new Date(`${value}T23:59:59`).getTime() / 1000);
  if (!Number.isFinite(at)) throw new Error('The expiry date is not a date.');
  return at;
}

/** Sets the form up for a mode; the fields show the credential's current values when editing. */
function setMode(mode, credential = null) {
  editing = { mode, credential };
  const heading = { add: 'Add a key', edit: `Edit ${credential?.label}`, reset: `Give ${credential?.label} a new key` }[mode];
  $('form-heading').textContent = heading;
  $('form-intro').hidden = mode === 'edit';
  $('key-field').hidden = mode === 'edit';
  $('fields').hidden = mode === 'reset';
  $('credential-submit').textContent = { add: 'Add the key', edit: 'Save the changes', reset: 'Replace the key' }[mode];
  $('credential-cancel').hidden = mode === 'add';
  $('public-key').value = '';
  $('password').value = '';
  $('label').value = credential?.label ?? '';
  for (const [name] of CAPABILITIES) $(`cap-${name}`).checked = credential ? credential.capabilities.includes(name) : name === 'session';
  $('networks').value = credential?.networks.join(' ') ?? '';
  $('expires').value = credential?.expires_at ? new Date(credential.expires_at * 1000).toLocaleDateString('en-CA') : '';
  messagesAfter($('credential-form'));
}

function startEdit(credential) {
  clearMessages();
  setMode('edit', credential);
  $('label').focus();
}

function startReset(credential) {
  clearMessages();
  setMode('reset', credential);
  $('public-key').focus();
}

/** Makes the request for the form's mode, with a binding by the owner key unlocked from the password. */
async function submit(event) {
  event.preventDefault();
  if (!(await nodeChecked)) return;
  const form = $('credential-form');
  messagesAfter(form);
  clearMessages();
  const { mode, credential } = editing;
  let request;
  try {
    const key = mode === 'edit' ? null : await readPublicKey($('public-key').value);
    const fields = mode === 'reset'
      ? { label: credential.label, capabilities: credential.capabilities, networks: credential.networks, expiresAt: credential.expires_at }
      : { label: $('label').value.trim(), capabilities: selectedCapabilities(), networks: networks(), expiresAt: expiresAt() };
    const id = credential?.id ?? newCredentialId();
    const kind = credential?.kind ?? 'key';
    const kid = key ? key.kid : credential.kid;
    request = { key, fields, id, kind, kid };
  } catch (error) {
    showError(error.name === 'KeyError' ? `The public key ${error.message}.` : describe(error));
    $(mode === 'edit' ? 'expires' : 'public-key').focus();
    return;
  }
  setBusy(true, form);
  try {
    showStatus('Unlocking your owner key… (deriving the key takes a moment)');
    const ownerKey = await ownerKeyFromPassword($('password').value);
    const { key, fields, id, kind, kid } = request;
    const binding = await bindCredential(ownerKey, { id, kid, kind, ...fields });
    const body = { label: fields.label, capabilities: fields.capabilities, networks: fields.networks, expires_at: fields.expiresAt, binding };
    if (mode === 'add') {
      await call('POST', '/credentials', { id, kind, public_key: key.publicKey, ...body });
      showStatus(`Added ${fields.label}. It signs in with the key you pasted.`);
    } else if (mode === 'edit') {
      await call('PATCH', `/credentials/${encodeURIComponent(id)}`, body);
      showStatus(`Saved ${fields.label}. Its sessions ended if its rights, networks or expiry changed.`);
    } else {
      await call('PUT', `/credentials/${encodeURIComponent(id)}/key`, { public_key: key.publicKey, binding });
      showStatus(`${fields.label} has a new key; the old one can no longer sign in.`);
    }
    setMode('add');
    await refresh();
  } catch (error) {
    showStatus('');
    $('password').value = '';
    if (error instanceof ApiError && error.slug === 'wrong-unlock-verifier') {
      showError('Wrong password. Nothing was changed.');
      $('password').focus();
    } else if (error instanceof ApiError && error.status === 409) {
      showError('This key is registered already, or was and has been revoked: a revoked key can never come back. Make a new key pair.');
    } else if (error instanceof ApiError && error.status === 422) {
      showError(`${describe(error)} Nothing was changed.`);
      const input = FIELD_INPUTS[error.field];
      if (input) $(input).focus();
    } else {
      showError(`${describe(error)} Nothing was changed.`);
    }
  }
  setBusy(false, form);
}

/** Revokes on the second click, so one slip does not lock a device out. */
async function revoke(credential, button) {
  if (!(await nodeChecked)) return;
  messagesAfter($('credentials'));
  clearMessages();
  if (button.dataset.confirm !== 'yes') {
    button.dataset.confirm = 'yes';
    button.textContent = 'Click again to revoke';
    setTimeout(() => {
      delete button.dataset.confirm;
      button.textContent = 'Revoke';
    }, 5000);
    return;
  }
  button.disabled = true;
  try {
    showStatus('Confirming it is you…');
    await stepUpThisDevice();
    await call('DELETE', `/credentials/${encodeURIComponent(credential.id)}`);
    if (credential.current) {
      await deleteKey();
      leave('forgotten');
      return;
    }
    showStatus(`${credential.label} is revoked: its sessions ended and its key can never sign in again.`);
    await refresh();
  } catch (error) {
    showStatus('');
    showError(describe(error));
    button.disabled = false;
  }
}

/** Resolves whether the node passed this device's checks; every write waits for it. */
let nodeChecked = Promise.resolve(false);

async function main() {
  if (!getToken()) return location.replace('/login');
  messagesAfter($('credentials'));
  // No change goes to a node that does not follow from what this device verified (every write waits for the check).
  nodeChecked = import('./alarm.mjs')
    .then(async ({ guard }) => guard(await loadKey().catch(() => null), { audit: true }))
    .catch((error) => {
      showError(describe(error));
      return false;
    });
  for (const [name, what] of CAPABILITIES) {
    const box = element('input', { type: 'checkbox', id: `cap-${name}`, name: 'capabilities', value: name });
    $('capabilities').append(element('div', { className: 'check' }, box, element('label', { htmlFor: `cap-${name}` }, element('code', {}, name), `: ${what}`)));
  }
  $('login-command').textContent = `siteid login --node ${audience()} --key key.pem`;
  setMode('add');
  $('credential-form').addEventListener('submit', submit);
  if (typeof globalThis.PublicKeyCredential === 'function' && $('app').dataset.passkeys === 'true') {
    $('passkey-form').addEventListener('submit', async (event) => {
      event.preventDefault();
      if (await nodeChecked) (await import('./credentials-passkey.mjs')).addPasskey({ refresh });
    });
  } else {
    $('passkey-form').hidden = true;
    $('passkey-unsupported').hidden = false;
    if ($('app').dataset.passkeys !== 'true') $('passkey-unsupported').textContent = 'This node cannot use passkeys: browsers accept them only for a site named by a domain name, and its public URL is an IP address.';
  }
  $('credential-cancel').addEventListener('click', () => {
    clearMessages();
    setMode('add');
  });
  try {
    await refresh();
  } catch (error) {
    showError(describe(error));
  }
}

main();
