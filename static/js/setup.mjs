// The /setup#<claim token> page: choose a password, make (or restore from shares) and wrap the owner key and the inbox's encryption key here, claim the node, keep the keys, sign in.

import { ApiError, api } from './api.mjs';
import { audience } from './auth.mjs';
import { enrollDevice } from './device.mjs';
import { claimProof, recordSignature } from './jws.mjs';
import { keyStatement } from './key-statement.mjs';
import { estimate, refusal, renderStrength } from './strength.mjs';
import { saveTrust } from './trust.mjs';
import { $, clearMessages, describe, setBusy, showError, showStatus } from './ui.mjs';
import { generateOwnerKey, importSigningKey, jwkThumbprint, wrapPrivateKey } from './wrapped-key.mjs';

const CLAIM = 'siteid.claim_token';
/** The key rebuilt from recovery shares, {privateJwk, publicJwk, kid, setId}, or null to make a new one. */
let restored = null;
const NO_TOKEN =
  'This page needs the setup link with its claim token (…/setup#…). The node printed it in its log when it first started; on the server, siteid claim-url prints it again.';

/** Takes the claim token out of the address bar (kept for this tab only, so a reload still works). */
function takeClaimToken() {
  const fromHash = decodeURIComponent(location.hash.slice(1));
  if (fromHash) {
    sessionStorage.setItem(CLAIM, fromHash);
    history.replaceState(null, '', location.pathname + location.search);
  }
  return sessionStorage.getItem(CLAIM);
}

function showStrength() {
  const password = $('password').value;
  const { score } = estimate(password);
  // The meter runs 0-5 so that even a very weak password shows a (red) sliver.
  $('strength').value = password ? score + 1 : 0;
  renderStrength($('strength-text'), password);
}

function claimRefusal(error) {
  if (error instanceof ApiError && error.status === 401) {
    sessionStorage.removeItem(CLAIM);
    return 'This setup link is wrong or was already used. On the server, siteid claim-url prints the current link.';
  }
  if (error instanceof ApiError && error.status === 403) {
    sessionStorage.removeItem(CLAIM);
    return 'This node already has an owner. If that is you, sign in instead.';
  }
  return describe(error);
}

async function claim(claimToken, password) {
  showStatus(restored ? 'Encrypting your key under your password…' : 'Making your key and encrypting it under your password…');
  // A copy of the rebuilt key: importing it below drops its d, and a refused claim may be tried again.
  const { privateJwk, publicJwk } = restored ? { ...restored, privateJwk: { ...restored.privateJwk } } : await generateOwnerKey();
  const { wrappedKey, unlockVerifier } = await wrapPrivateKey(privateJwk, password);
  // The inbox's encryption key is wrapped under a KEK derived from the owner key's d, so the KEK comes first.
  const inboxKeys = await import('./inbox-keys.mjs');
  const encryptionKek = await inboxKeys.encryptionKek(privateJwk);
  // From here on the private scalar exists only inside this non-extractable CryptoKey.
  const signingKey = await importSigningKey(privateJwk);
  const kid = await jwkThumbprint(publicJwk);
  const proof = await claimProof(signingKey, { audience: audience(), claimToken });
  // The key's genesis statement starts its public history; the record signature covers what the node keeps of it.
  const statement = await keyStatement({ signingKey, kid }, { newKid: kid });
  const record = await recordSignature({ signingKey, kid }, { audience: audience(), wrappedKey, unlockVerifier });
  const encryption = await inboxKeys.newEncryptionKey(encryptionKek, { signingKey, kid });
  showStatus('Claiming this node…');
  const answer = await api('POST', '/owner', {
    claim_token: claimToken, public_key: publicJwk, wrapped_key: wrappedKey, unlock_verifier: unlockVerifier, proof, statement, record,
    encryption_key: encryption.body, ...(restored && { recovery_set: restored.setId }),
  });
  sessionStorage.removeItem(CLAIM);
  if (restored) delete restored.privateJwk.d;
  if (answer.kid !== kid) throw new Error('the node answered with another key id than this key’s');
  saveTrust({ kid });
  // This browser reads the inbox with the key it made; a key it cannot keep opens again with the password on /account/inbox.
  await (await import('./inbox-keystore.mjs')).saveEncryptionKey(encryption).catch(() => {});
  showStatus('Making this browser’s own key and signing in…');
  await enrollDevice({ signingKey, kid, publicJwk });
  return { kid, wrappedKey };
}

function finish({ kid, wrappedKey }) {
  $('setup-form-section').hidden = true;
  $('setup-kid').textContent = kid;
  const link = $('download-wrapped-key');
  link.href = URL.createObjectURL(new Blob([wrappedKey], { type: 'application/jose' }));
  link.download = 'siteid-wrapped-key.jwe';
  $('setup-done').hidden = false;
  showStatus('Done: this node is yours, and this browser has a key of its own and is signed in.');
  const heading = $('setup-done').querySelector('h2');
  heading.tabIndex = -1;
  heading.focus();
}

/** "Restore from shares": the key comes from friends' shares (checked by the key check they carry) instead of being made. */
async function restore() {
  const { enterShares } = await import('./recover.mjs');
  for (const id of ['setup-intro', 'restore-offer', 'setup-form']) $(id).hidden = true;
  $('share-form').hidden = false;
  $('share').focus();
  showStatus('Enter your friends’ shares one by one. Your key is rebuilt here, in this browser; the shares never leave it.');
  restored = await enterShares();
  $('setup-submit').textContent = 'Restore my identity';
  $('setup-form').hidden = false;
  showStatus(`Your shares rebuilt the key ${restored.kid}. Choose the password that protects it from now on.`);
  $('password').focus();
}

async function main() {
  const form = $('setup-form');
  const claimToken = takeClaimToken();
  // A setup link pasted into this tab only changes the fragment: start over with it.
  addEventListener('hashchange', () => location.reload());
  $('password').addEventListener('input', showStrength);
  $('restore').addEventListener('click', () => restore().catch((error) => showError(describe(error))));
  // A complaint about the password goes away as soon as it is being fixed.
  form.addEventListener('input', () => claimToken && showError(''));
  showStrength();
  if (!claimToken) {
    showError(NO_TOKEN);
    $('setup-form-section').hidden = true;
  }
  // A claimed node answers GET /unlock; say so before anyone types a password.
  api('GET', '/unlock').then(
    () => {
      sessionStorage.removeItem(CLAIM);
      $('setup-form-section').hidden = true;
      showError('This node already has an owner. If that is you, ');
      $('error').append(Object.assign(document.createElement('a'), { href: '/login', textContent: 'sign in' }), ' instead.');
    },
    () => {},
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearMessages();
    const password = $('password').value;
    const problem = refusal(password, $('password-again').value);
    if (problem) {
      showError(problem);
      $(problem.includes('differ') ? 'password-again' : 'password').focus();
      return;
    }
    setBusy(true, form);
    let done = null;
    try {
      done = await claim(claimToken, password);
    } catch (error) {
      showStatus('');
      showError(claimRefusal(error));
    } finally {
      setBusy(false, form);
    }
    if (done) {
      form.reset();
      finish(done);
    }
  });
}

main();
