// The /account/apps page: the sites and apps signed in with this identity (IndieAuth grants) with revoke, and the owner's profile they may see.

import { ApiError, clearToken, getToken, setNotice, signedInApi } from './api.mjs';
import { $, clearMessages, describe, formatTime, messagesAfter, setBusy, showError, showStatus } from './ui.mjs';

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
    element('td', {}, element('strong', { textContent: name }), element('br'), element('code', { textContent: grant.client_id })),
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

function linksText(links) {
  return links.map((link) => `${link.name} ${link.url}`).join('\n');
}

function parseLinks(text) {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean)
    .map((line) => {
      const at = line.lastIndexOf(' ');
      return at < 0 ? { name: '', url: line } : { name: line.slice(0, at).trim(), url: line.slice(at + 1) };
    });
}

async function loadProfile() {
  const profile = await call('GET', '/profile');
  $('profile-name').value = profile.name ?? '';
  $('profile-photo').value = profile.photo ?? '';
  $('profile-email').value = profile.email ?? '';
  $('profile-note').value = profile.note ?? '';
  $('profile-links').value = linksText(profile.links ?? []);
}

async function onSaveProfile(event) {
  event.preventDefault();
  const form = $('profile-form');
  messagesAfter(form);
  clearMessages();
  setBusy(true, form);
  try {
    await call('PUT', '/profile', {
      name: $('profile-name').value,
      photo: $('profile-photo').value,
      email: $('profile-email').value,
      note: $('profile-note').value,
      links: parseLinks($('profile-links').value),
    });
    showStatus('Your profile is saved.');
  } catch (error) {
    showError(error instanceof ApiError && error.field ? `${error.message}` : describe(error));
  } finally {
    setBusy(false, form);
  }
}

async function main() {
  if (!getToken()) return location.replace('/login');
  $('profile-form').addEventListener('submit', onSaveProfile);
  try {
    await loadGrants();
  } catch (error) {
    messagesAfter($('apps-heading'));
    showError(error instanceof ApiError && error.status === 403 ? 'This session may not see your apps: its device lacks the indieauth capability.' : describe(error));
  }
  await loadProfile().catch(() => {});
}

main();
