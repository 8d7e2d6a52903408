// The /account/apps page: the sites and apps signed in with this identity (IndieAuth grants), with revoke.

import { ApiError, clearToken, getToken, setNotice, signedInApi } from './api.mjs';
import { $, clearMessages, describe, formatTime, messagesAfter, showError, showStatus } from './ui.mjs';

const call = signedInApi(() => {
  clearToken();
  setNotice('revoked');
  location.replace('/login');
});

function element(tag, props = {}, ...children) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

function grantRow(grant) {
  const name = grant.client_name || new URL(grant.client_id).host;
  const revoke = element('button', { type: 'button', textContent: 'Revoke' });
  revoke.dataset.grant = grant.id;
  revoke.setAttribute('aria-label', `Revoke ${name}`);
  revoke.addEventListener('click', () => onRevoke(grant, name, revoke));
  return element(
    'tr',
    {},
    element('td', {}, element('strong', { textContent: name }), element('br'), element('code', { textContent: grant.client_uri || grant.client_id })),
    element('td', { textContent: grant.scope }),
    element('td', { textContent: formatTime(grant.created_at) }),
    element('td', { textContent: grant.last_used_at ? formatTime(grant.last_used_at) : 'never' }),
    element('td', { textContent: formatTime(grant.expires_at) }),
    element('td', {}, revoke),
  );
}

async function loadGrants() {
  const { grants } = await call('GET', '/indieauth/grants');
  $('apps-list').replaceChildren(...grants.map(grantRow));
  $('apps-table').hidden = grants.length === 0;
  $('apps-empty').hidden = grants.length !== 0;
}

async function onRevoke(grant, name, button) {
  messagesAfter($('apps-table'));
  clearMessages();
  button.disabled = true;
  try {
    await call('DELETE', `/indieauth/grants/${encodeURIComponent(grant.id)}`);
    showStatus(`${name} no longer has access.`);
    await loadGrants();
  } catch (error) {
    button.disabled = false;
    showError(describe(error));
  }
}

async function main() {
  if (!getToken()) return location.replace('/login');
  try {
    await loadGrants();
  } catch (error) {
    messagesAfter($('apps-heading'));
    showError(error instanceof ApiError && error.status === 403 ? 'This session may not see your apps: its device lacks the indieauth capability.' : describe(error));
  }
}

main();
