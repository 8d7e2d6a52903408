// Sign-in on /login with a signature pasted from openssl or ssh-keygen, loaded when its section opens: the message to sign, and reading which key signed it.

import { ApiError, api, setToken } from './api.mjs';
import { jwkFromSshSignature, readPublicKey, thumbprint } from './keys.mjs';
import { $, clearMessages, describe, messagesAfter, setBusy, showError } from './ui.mjs';

/** What the page lends: {throttle(error, button, what), goToAccount(), isThrottled()}. */
let page = null;

/** Wires the paste form once, and shows a message to sign. */
export function openPaste(from) {
  if (page) return;
  page = from;
  $('paste-form').addEventListener('submit', onPasteSubmit);
  $('paste-new').addEventListener('click', newPasteMessage);
  newPasteMessage();
}

let pasteNonce = null;

/** Shows a fresh message to sign for the paste sign-in. */
async function newPasteMessage() {
  try {
    const { nonce, message } = await api('POST', '/auth/challenge');
    pasteNonce = nonce;
    $('paste-message').textContent = message;
  } catch (error) {
    messagesAfter($('paste-form'));
    showError(describe(error));
  }
}

/** The kid and format of a pasted signature: an SSH signature names its key; otherwise the public key given does. */
async function pastedKey(signature, publicKeyText) {
  if (signature.includes('-----BEGIN SSH SIGNATURE-----')) {
    return { kid: await thumbprint(jwkFromSshSignature(signature)), format: 'sshsig' };
  }
  if (!publicKeyText.trim()) throw new Error('Paste your public key too: an openssl signature does not say which key made it.');
  const { jwk, kid } = await readPublicKey(publicKeyText);
  return { kid, format: jwk.kty === 'OKP' ? 'raw' : 'openssl' };
}

async function onPasteSubmit(event) {
  event.preventDefault();
  const { throttle, goToAccount, isThrottled } = page;
  if (isThrottled()) return;
  const form = $('paste-form');
  messagesAfter(form);
  clearMessages();
  const signature = $('paste-signature').value.trim();
  let key;
  try {
    key = await pastedKey(signature, $('paste-key').value);
  } catch (error) {
    showError(error.name === 'KeyError' ? `The public key ${error.message}.` : describe(error));
    return;
  }
  setBusy(true, form);
  try {
    const session = await api('POST', '/auth/login', { kid: key.kid, nonce: pasteNonce, signature, format: key.format });
    setToken(session.access_token);
    goToAccount();
    return;
  } catch (error) {
    if (error instanceof ApiError && error.status === 429) {
      setBusy(false, form);
      throttle(error, $('paste-submit'), 'Too many failed sign-ins from this address.');
      return;
    }
    showError(error instanceof ApiError && error.slug === 'invalid-assertion' ? `Sign-in refused. ${error.message}` : describe(error));
    if (error instanceof ApiError && /nonce/.test(error.message)) await newPasteMessage();
  }
  setBusy(false, form);
}

