// The /account/recovery page: split the owner key into shares on printable cards for friends; list the sets made.
// The shares never leave the page: the node gets each set's id, k, n and labels.

import { ApiError, api, getToken } from './api.mjs';
import { audience, unlockParams, unlockWithPassword } from './auth.mjs';
import { stepUpThisDevice } from './device.mjs';
import { loadKey } from './keystore.mjs';
import { splitKey } from './shares.mjs';
import { $, clearMessages, describe, formatTime, messagesAfter, setBusy, showError, showStatus } from './ui.mjs';
import { jwkThumbprint, unwrapPrivateKey } from './wrapped-key.mjs';

let ownerKid = null;

const make = (tag, props) => Object.assign(document.createElement(tag), props);

/** One labelled input per friend, as many as #count asks for; typed labels stay. */
function showLabels() {
  const box = $('labels');
  const n = Math.min(16, Math.max(2, Number($('count').value) || 2));
  $('threshold').max = n;
  while (box.children.length - 1 > n) box.lastElementChild.remove();
  for (let i = box.children.length; i <= n; i++) {
    const row = make('div');
    row.append(make('label', { htmlFor: `label-${i}`, textContent: `Friend ${i}` }), make('input', { id: `label-${i}`, maxLength: 64, required: true, autocomplete: 'off' }));
    box.append(row);
  }
}

/** Whether a set was made for an owner key since replaced (the node marks it void): its shares rebuild nothing now. */
const isVoid = (set) => set.void === true || set.kid !== ownerKid;

async function listSets() {
  const { sets } = await api('GET', '/recovery/sets');
  const items = sets.map((s) => {
    const old = isVoid(s);
    const item = make('li', { className: old ? 'void' : '', textContent: `Set ${s.set_id}: any ${s.threshold} of ${s.shares} (${s.labels.join(', ')}), made ${formatTime(s.created_at)}.` });
    if (old) item.append(' ', make('strong', { textContent: 'Void: made for an owner key since replaced, its shares no longer rebuild your key.' }));
    return item;
  });
  $('sets').replaceChildren(...(items.length ? items : [make('li', { textContent: 'None yet.' })]));
  // Void sets protect nothing: the owner needs a new set for the current key.
  $('void-prompt').hidden = !sets.length || !sets.every(isVoid);
}

function showCards(set, labels) {
  const cards = set.shares.map(({ index, text }) => {
    const card = $('card').content.firstElementChild.cloneNode(true);
    const values = { label: labels[index - 1], index, n: set.shares.length, k: set.threshold, set: set.setId, url: audience() };
    for (const slot of card.querySelectorAll('[data-slot]')) slot.textContent = values[slot.dataset.slot];
    // Line breaks only between the groups of four.
    card.querySelector('.share').append(...text.split('-').flatMap((group, i) => (i ? ['-', make('wbr'), group] : [group])));
    return card;
  });
  $('cards').replaceChildren(...cards);
  $('cards-section').hidden = false;
  $('cards-heading').tabIndex = -1;
  $('cards-heading').focus();
}

async function split(event) {
  event.preventDefault();
  const form = $('split-form');
  clearMessages();
  const threshold = Number($('threshold').value);
  const shares = Number($('count').value);
  const labels = [...$('labels').querySelectorAll('input')].map((input) => input.value.trim());
  const bad = labels.findIndex((label) => !label || /[\p{Cc}\p{Cf}]/u.test(label));
  if (bad >= 0) {
    showError(`Give friend ${bad + 1} a name of 1 to 64 characters.`);
    $(`label-${bad + 1}`).focus();
    return;
  }
  setBusy(true, form);
  try {
    // A fresh step-up first: with two-step unlock on, the session stands in for the code.
    showStatus('Confirming it is you…');
    await stepUpThisDevice();
    showStatus('Checking your password… (deriving the key takes a moment)');
    const { wrappedKey, kid, unlockKey } = await unlockWithPassword($('password').value);
    const jwk = await unwrapPrivateKey(wrappedKey, unlockKey);
    if ((await jwkThumbprint(jwk)) !== kid) throw new Error('the unlocked key is not the key the node names');
    const set = await splitKey(jwk, { threshold, shares });
    delete jwk.d;
    await api('POST', '/recovery/sets', { set_id: set.setId, threshold, shares, labels });
    $('password').value = '';
    showCards(set, labels);
    showStatus(`Set ${set.setId} is made: give each friend their card.`);
    listSets().catch((error) => showError(describe(error)));
  } catch (error) {
    showStatus('');
    const wrong = error instanceof ApiError && error.slug === 'wrong-unlock-verifier';
    showError(wrong ? 'Wrong password. No shares were made.' : `${describe(error)} No shares were made.`);
  }
  setBusy(false, form);
}

async function main() {
  if (!getToken()) return location.replace('/login');
  messagesAfter($('split-form'));
  try {
    await api('GET', '/session');
    // Shares are made of the owner key: nothing is asked of a node that does not follow from what this device verified.
    const { guard } = await import('./alarm.mjs');
    if (!(await guard(await loadKey().catch(() => null), { audit: true }))) return;
    ownerKid = (await unlockParams()).kid;
    showLabels();
    $('count').addEventListener('input', showLabels);
    $('split-form').addEventListener('submit', split);
    $('print').addEventListener('click', () => print());
    await listSets();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) location.replace('/login');
    else showError(describe(error));
  }
}

main();
