// The /recover page: rebuild the owner key from friends' shares, sign in with it, set a new password. Setup reuses enterShares().

import { replaceWrappedKey, signIn, stepUp } from './auth.mjs';
import { enrollDevice } from './device.mjs';
import { readShare, rebuildKey } from './shares.mjs';
import { $, NO_NETWORK, describe, setBusy, showError, showStatus } from './ui.mjs';
import { importSigningKey, toPublicJwk, wrapPrivateKey } from './wrapped-key.mjs';

/** Checks shares from #share-form one by one, listing them in #shares; resolves with {privateJwk, publicJwk, kid, setId} once they rebuild the key (publicJwk, if given). */
export function enterShares(publicJwk) {
  const [form, input, list] = ['share-form', 'share', 'shares'].map($);
  const shares = [];
  const show = () => {
    list.replaceChildren(
      ...shares.map((s, i) => {
        const remove = Object.assign(document.createElement('button'), { type: 'button', className: 'secondary', textContent: 'Remove' });
        remove.setAttribute('aria-label', `Remove share no. ${s.index}`);
        remove.onclick = () => {
          shares.splice(i, 1);
          show();
          input.focus();
        };
        const item = document.createElement('li');
        item.append(`Share no. ${s.index} of set ${s.setId}; any ${s.threshold} rebuild the key. `, remove);
        return item;
      }),
    );
    $('share-label').textContent = `Share ${shares.length + 1}`;
  };
  // Enter adds the share, Shift+Enter starts a new line.
  input.onkeydown = (event) => {
    if (event.key === 'Enter' && !event.shiftKey) {
      event.preventDefault();
      form.requestSubmit();
    }
  };
  return new Promise((resolve) => {
    form.onsubmit = async (event) => {
      event.preventDefault();
      showError('');
      setBusy(true, form);
      try {
        const share = await readShare(input.value, shares.length + 1);
        // Rebuilding checks the set and duplicates too: too few shares is the one refusal to wait out.
        const key = await rebuildKey([...shares, share], { publicJwk }).catch((error) => {
          if (error.code !== 'too-few') throw error;
        });
        const n = shares.push(share);
        input.value = '';
        if (key) {
          form.hidden = list.hidden = true;
          // The shares together are the key: keep none of them once it is rebuilt.
          for (const entered of shares) entered.data.fill(0);
          shares.length = 0;
          form.onsubmit = input.onkeydown = null;
          resolve({ ...key, setId: share.setId });
        } else showStatus(`Share no. ${share.index} is valid: ${n} of the ${share.threshold} needed. Enter ${share.threshold - n} more.`);
      } catch (error) {
        showError(error.code ? error.message : describe(error));
      }
      show();
      setBusy(false, form);
      input.focus();
    };
  });
}

async function setPassword(event, rebuilt, key) {
  event.preventDefault();
  const form = $('password-form');
  const password = $('new-password').value;
  const { refusal } = await import('./strength.mjs');
  const problem = refusal(password, $('new-password-again').value);
  showError(problem);
  if (problem) return $(`new-password${problem.includes('differ') ? '-again' : ''}`).focus();
  setBusy(true, form);
  try {
    showStatus('Encrypting your key under the new password…');
    const { wrappedKey, unlockVerifier } = await wrapPrivateKey(rebuilt.privateJwk, password);
    // Choosing a password may take longer than the session's step-up window.
    await stepUp(key);
    await replaceWrappedKey(key, { wrappedKey, unlockVerifier, recoverySet: rebuilt.setId });
    delete rebuilt.privateJwk.d;
    showStatus('Making this browser’s own key and signing in…');
    await enrollDevice(key);
    form.hidden = true;
    $('recover-done').hidden = false;
    showStatus('Done: your new password is set, and this browser has a key of its own and is signed in.');
    $('recover-done').querySelector('a').focus();
  } catch (error) {
    showStatus('');
    showError(`${describe(error)} Your password was not changed.`);
  }
  setBusy(false, form);
}

async function main() {
  let keys;
  try {
    ({ keys } = await (await fetch('/.well-known/jwks.json', { cache: 'no-store' })).json());
  } catch {
    return showError(NO_NETWORK);
  }
  keys = (keys ?? []).filter((key) => key?.use !== 'enc');
  if (!keys.length) {
    $('share-form').hidden = true;
    return showError('This node has no owner yet. To restore your identity onto it, open its setup link and choose “Restore from shares”.');
  }
  $('share').focus();
  const rebuilt = await enterShares(toPublicJwk(keys[0]));
  // From here the key signs as a non-extractable CryptoKey; d stays in memory only until it is wrapped.
  const key = { signingKey: await importSigningKey({ ...rebuilt.privateJwk }), kid: rebuilt.kid, publicJwk: rebuilt.publicJwk };
  try {
    showStatus('Your shares rebuilt your key. Signing in with it…');
    await signIn(key);
  } catch (error) {
    return showError(`${describe(error)} Reload the page to try again; nothing was changed.`);
  }
  showStatus('Signed in with your rebuilt key. Choose a new password: it replaces the one you lost.');
  // The strength estimate loads when a new password is first typed.
  $('new-password').oninput = async () => (await import('./strength.mjs')).renderStrength($('new-strength'), $('new-password').value);
  $('password-form').onsubmit = (event) => setPassword(event, rebuilt, key);
  $('password-form').hidden = false;
  $('new-password').focus();
}

if ($('app').dataset.page === 'recover') main();
