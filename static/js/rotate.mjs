// Replacing the owner key from /account: a new key made and wrapped here, the old key's statement handing over to it,
// the kept credentials and the inbox's encryption keys bound again by it, and this device's trusted kid moved on once
// the node shows the change.

import { ApiError, api } from './api.mjs';
import { alarmIsUp, guard } from './alarm.mjs';
import { audience, unlockWithPassword } from './auth.mjs';
import { bindCredential, stepUpThisDevice } from './device.mjs';
import { PROOF_LIFETIME, recordSignature, signJwt } from './jws.mjs';
import { keyStatement } from './key-statement.mjs';
import { refusal, renderStrength } from './strength.mjs';
import { $, clearMessages, describe, formatDuration, messagesAfter, setBusy, showError, showStatus } from './ui.mjs';
import { generateOwnerKey, importSigningKey, jwkThumbprint, unwrapPrivateKey, wrapPrivateKey } from './wrapped-key.mjs';

const NO_HISTORY = 'This node has no signed key history yet (it is older than key statements). Change your password once to sign it; then the key can be replaced.';

/** The new key's proof for POST /owner/rotate: a siteid-rotate+jwt over the node's URL and a fresh challenge. */
async function rotateProof(signingKey) {
  const { nonce } = await api('POST', '/auth/challenge');
  const now = Math.floor(Date.now() / 1000);
  return signJwt(signingKey, { alg: 'ES384', typ: 'siteid-rotate+jwt' }, { aud: audience(), nonce, iat: now, exp: now + PROOF_LIFETIME });
}

/** Bindings by newKey for every live credential but the owner key, its fields unchanged; expired ones are let go. */
async function rebind(call, newKey) {
  const { credentials } = await call('GET', '/credentials');
  // A row that fails its check on the node (written into its database by someone else) is not bound again.
  // One another credential approved keeps its approver's binding.
  const kept = credentials.filter((c) => c.kind !== 'owner' && !c.tampered && !c.approved_by && (c.expires_at ?? Infinity) > Date.now() / 1000);
  return Promise.all(kept.map((c) => bindCredential(newKey, { ...c, expiresAt: c.expires_at })));
}

/** The node's encryption keys (GET /owner/encryption-keys), or null for a session without the inbox capability. */
async function encryptionKeys(call) {
  try {
    return (await call('GET', '/owner/encryption-keys')).keys;
  } catch (error) {
    if (error instanceof ApiError && error.slug === 'insufficient-capability') return null;
    throw error;
  }
}

/**
 * The rotation's encryption key members: every stored key opened with the old key's KEK, wrapped under the new key's
 * and bound by the new key (encryption_keys); for a compromise, or a node without keys, a new current key
 * (encryption_key, with fresh: the key to keep on this device).
 */
async function encryptionMembers(keys, oldKek, newKek, newKey, reason) {
  const inboxKeys = await import('./inbox-keys.mjs');
  const members = { encryption_keys: await Promise.all(keys.map((k) => inboxKeys.rewrapEncryptionKey(oldKek, newKek, newKey, k.wrapped_key, k.kid))) };
  if (reason !== 'compromise' && keys.length) return { members };
  const fresh = await inboxKeys.newEncryptionKey(newKek, newKey);
  return { members: { ...members, encryption_key: fresh.body }, fresh };
}

/**
 * Replaces the owner key: the current one, unlocked with the password, signs the statement; the new one is wrapped under
 * newPassword or the same password and signs the bindings, record and proof. As at the claim, only its wrapped key and
 * unlock verifier leave the browser. The inbox's encryption keys are wrapped and bound again by the new key, and a
 * compromise adds a new one. Resolves with the answer {kid, seq, revoked, ...} and rebound, the credentials kept.
 */
export async function rotateOwnerKey(call, { password, newPassword, reason }, progress = () => {}) {
  const history = await (await fetch('/.well-known/siteid/keys.json', { cache: 'no-store' })).json();
  // The node's own refusal, before any password is derived.
  if (!history.keys?.length) throw new ApiError(409, { type: 'urn:siteid:problem:no-key-history' });
  // A fresh step-up first: with two-step unlock on, the session stands in for the code.
  progress('Confirming it is you…');
  await stepUpThisDevice();
  const { wrappedKey: current, kid: oldKid, unlockKey } = await unlockWithPassword(password);
  if (history.keys.at(-1).kid !== oldKid) throw new Error('the node’s key history does not end at the key the node names');
  const oldJwk = await unwrapPrivateKey(current, unlockKey);
  if ((await jwkThumbprint(oldJwk)) !== oldKid) throw new Error('the unlocked key is not the key the node names');
  // The encryption keys open with KEKs derived from the keys' d, which importing a key deletes: they come first.
  const keys = await encryptionKeys(call);
  const kekOf = async (jwk) => (await import('./inbox-keys.mjs')).encryptionKek(jwk);
  const oldKek = keys?.length ? await kekOf(oldJwk) : null;
  const oldKey = { signingKey: await importSigningKey(oldJwk), kid: oldKid };
  progress('Making the new key and encrypting it under your password…');
  const { privateJwk, publicJwk } = await generateOwnerKey();
  const { wrappedKey, unlockVerifier } = await wrapPrivateKey(privateJwk, newPassword || password);
  const newKek = keys ? await kekOf(privateJwk) : null;
  // From here the new private scalar lives only inside this non-extractable CryptoKey.
  const newKey = { signingKey: await importSigningKey(privateJwk), kid: await jwkThumbprint(publicJwk) };
  progress('Binding your devices and keys to the new key…');
  const bindings = await rebind(call, newKey);
  const inbox = keys ? await encryptionMembers(keys, oldKek, newKek, newKey, reason) : { members: {} };
  const record = await recordSignature(newKey, { audience: audience(), wrappedKey, unlockVerifier });
  const statement = await keyStatement(oldKey, { newKid: newKey.kid, oldKid, seq: history.keys.length, reason });
  const proof = await rotateProof(newKey.signingKey);
  // The new key binds the node's own key in the rotation itself, so it stays published.
  const nodeKey = await import('./node-binding.mjs').then((m) => m.rotationBinding(newKey)).catch(() => null);
  const answer = await call('POST', '/owner/rotate', {
    public_key: publicJwk, wrapped_key: wrappedKey, unlock_verifier: unlockVerifier, old_unlock_verifier: unlockKey.unlockVerifier,
    proof, statement, bindings, record, ...inbox.members, ...(nodeKey ? { node_key_binding: nodeKey } : {}),
  });
  if (answer.kid !== newKey.kid) throw new Error('the node answered with another key id than the new key’s');
  // The re-wrapped keys are the same keys this device keeps already; a new one is kept too (else the password opens it).
  if (inbox.fresh) await (await import('./inbox-keystore.mjs')).saveEncryptionKey(inbox.fresh).catch(() => {});
  return { ...answer, rebound: bindings.length, newEncryptionKey: !!inbox.fresh };
}

/** The "Replace the owner key" form on /account; done() runs after a replacement (to show the new audit entries). */
export async function onRotate(call, done) {
  const form = $('rotate-form');
  messagesAfter(form);
  clearMessages();
  $('rotate-done').hidden = true;
  const password = $('rotate-password').value;
  const newPassword = $('rotate-new-password').value;
  const problem = newPassword && (newPassword === password ? 'The new password is the same as the current one.' : refusal(newPassword, $('rotate-new-password-again').value));
  if (problem) {
    showError(problem);
    $(problem.includes('differ') ? 'rotate-new-password-again' : 'rotate-new-password').focus();
    return;
  }
  setBusy(true, form);
  try {
    showStatus('Checking your password… (deriving the key takes a moment)');
    const answer = await rotateOwnerKey(call, { password, newPassword, reason: form.elements.reason.value }, showStatus);
    form.reset();
    renderStrength($('rotate-strength'), '');
    // This device trusts the new key once the node shows the change it made, signed by the old key.
    if (!(await guard(null))) return;
    const revoked = answer.revoked.length ? ` ${answer.revoked.length} expired or unknown credential(s) were revoked.` : '';
    const dropped = answer.dropped_passkey_unlocks?.length ? ` ${answer.dropped_passkey_unlocks.length} passkey(s) no longer unlock your key on a new device (their copy held the old key): they still sign you in; register them again under Devices and keys to unlock with them.` : '';
    const lost = answer.dropped_encryption_keys?.length ? ` ${answer.dropped_encryption_keys.length} inbox encryption key(s) were dropped: messages sent to them can no longer be read.` : '';
    const inbox = answer.newEncryptionKey ? ' Your inbox has a new encryption key; messages to the earlier ones stay readable.' : '';
    showStatus(`The owner key is replaced: its key id is now ${answer.kid}. ${answer.rebound} device(s) and key(s) were bound to it again.${revoked}${dropped}${lost}${inbox}`);
    $('rotate-done').hidden = false;
    done().catch(() => {});
  } catch (error) {
    showStatus('');
    if (alarmIsUp()) return;
    if (error instanceof ApiError && error.slug === 'wrong-unlock-verifier') {
      showError('The password is wrong. Nothing was changed.');
      $('rotate-password').select();
    } else if (error instanceof ApiError && error.status === 429) {
      showError(`Too many wrong passwords. Try again in ${formatDuration(error.retryAfter ?? 60)}. Nothing was changed.`);
    } else if (error instanceof ApiError && error.slug === 'no-key-history') {
      showError(NO_HISTORY);
    } else {
      showError(`${describe(error)} The key was not replaced.`);
    }
  }
  setBusy(false, form);
}
