// The profile form of /account, loaded on demand: the name, photo, email, note and rel=me links shown on the home page's h-card and given to sites with the profile scope.

import { ApiError } from './api.mjs';
import { $, clearMessages, describe, messagesAfter, setBusy, showError, showStatus } from './ui.mjs';

function linksText(links) {
  return links.map((link) => `${link.name} ${link.url}`).join('\n');
}

/** Reads "name URL" lines; a line without a space is a URL alone. */
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

/** Fills the form from the node and shows it; `call` is the page's signed-in API call. */
export async function openProfile(call) {
  const form = $('profile-form');
  messagesAfter($('profile-edit'));
  clearMessages();
  try {
    const profile = await call('GET', '/profile');
    $('profile-name').value = profile.name ?? '';
    $('profile-photo').value = profile.photo ?? '';
    $('profile-email').value = profile.email ?? '';
    $('profile-note').value = profile.note ?? '';
    $('profile-links').value = linksText(profile.links ?? []);
  } catch (error) {
    return showError(describe(error));
  }
  $('profile-edit').hidden = true;
  form.hidden = false;
  form.addEventListener('submit', (event) => saveProfile(event, call));
}

async function saveProfile(event, call) {
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
    showError(error instanceof ApiError && error.field ? error.message : describe(error));
  } finally {
    setBusy(false, form);
  }
}
