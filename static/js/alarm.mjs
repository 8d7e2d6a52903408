// Devices that notice: checks the node against what this browser trusts (key history, audit chain), moves that memory
// on only over verified changes, and otherwise puts up a full-page alarm and sends nothing that would accept the change.

import { ApiError, api } from './api.mjs';
import { unlockWithPassword } from './auth.mjs';
import { NodeAlarm, checkEncryptionKey, checkKeyHistory, followAuditChain } from './node-check.mjs';
import { loadTrust, saveTrust } from './trust.mjs';
import { $, describe } from './ui.mjs';
import { jwkThumbprint, unlockSigningKey } from './wrapped-key.mjs';

async function getJson(path) {
  const response = await fetch(path, { cache: 'no-store', credentials: 'omit' });
  if (response.status === 404) return null;
  if (!response.ok) throw new ApiError(response.status);
  return response.json();
}

/** The kid of the key the node publishes (its JWKS key's thumbprint) and its key history (empty on older nodes). */
async function published() {
  const [jwks, history, nodeKey] = await Promise.all(['jwks.json', 'siteid/keys.json', 'siteid/node-key.json'].map((name) => getJson(`/.well-known/${name}`)));
  // The owner key is the one signing key; an encryption key (use "enc") and the node key (checkNodeKey) may stand beside it.
  const signing = (Array.isArray(jwks?.keys) ? jwks.keys : []).filter((key) => key?.use !== 'enc' && key?.kid !== nodeKey?.kid);
  const jwk = signing.length === 1 ? signing[0] : null;
  const kid = jwk && !('d' in jwk) && (await jwkThumbprint(jwk).catch(() => null));
  if (!kid || kid !== jwk.kid) throw new NodeAlarm('key-swapped', 'The node publishes no owner key, more than one, or one under another key’s name.');
  return { kid, jwk, jwks, nodeKey, history: history ?? { keys: [] } };
}

/** The node key's check, loaded only when the JWKS lists a key beside the owner's. */
async function checkNode(jwks, nodeKey, jwk, kid) {
  if ((jwks?.keys ?? []).some((key) => key?.use !== 'enc' && key?.kid !== kid)) await (await import('./node-key-check.mjs')).checkNodeKey(jwks, nodeKey, jwk, kid);
}

/** Runs check(); a NodeAlarm puts the alarm up and resolves false. */
async function alarmed(check) {
  try {
    await check();
    return true;
  } catch (error) {
    if (!(error instanceof NodeAlarm)) throw error;
    showAlarm(error);
    return false;
  }
}

/**
 * Checks that the node's key follows from the kid this device trusts (keys; first use trusts the owner key a device
 * keeps, else what the node shows) and that its audit chain extends the head verified last (audit, with a session).
 * Resolves true and remembers the new kid and head, or false with the alarm up: then the page must send nothing more.
 */
export function guard(device, { keys = true, audit = false } = {}) {
  return alarmed(async () => {
    if (keys) {
      const trust = loadTrust();
      const { kid, jwk, jwks, nodeKey, history } = await published();
      await checkKeyHistory(history, kid, trust?.kid ?? (device?.kind === 'owner' ? device.kid : kid));
      await checkEncryptionKey(jwks, history, jwk, kid);
      await checkNode(jwks, nodeKey, jwk, kid);
      saveTrust({ kid, head: trust?.head });
    }
    const trust = loadTrust();
    if (!audit || !trust) return;
    let head;
    try {
      head = await followAuditChain(trust.head, (after, limit) => api('GET', `/audit/chain?after=${after}&limit=${limit}`));
    } catch (error) {
      // A session without the audit capability, or a node that cannot answer now, leaves the head as it was.
      if (error instanceof ApiError) return;
      throw error;
    }
    const now = loadTrust();
    if (now && !(now.head?.seq > head.seq)) saveTrust({ kid: now.kid, head });
  });
}

/**
 * Whether the password may make this device trust kid: the history must lead to it from the kid trusted now, a reset
 * the only break (the password is what a reset proves). An old wrapped key the password still opens proves nothing.
 */
async function followsTrust(kid, history) {
  const trust = loadTrust();
  if (!trust) return;
  try {
    await checkKeyHistory(history, kid, trust.kid);
  } catch (error) {
    if (error?.kind !== 'reset') throw error;
  }
}

/** After a password unlock: this device trusts the unlocked key if the node publishes it and it follows; else the alarm. */
export function adopt(key) {
  return alarmed(async () => {
    const { kid, jwk, jwks, nodeKey, history } = await published();
    if (key.kid !== kid) throw new NodeAlarm('key-swapped', `Your password opens the key ${key.kid}, but the node publishes ${kid}.`);
    await followsTrust(kid, history);
    await checkEncryptionKey(jwks, history, jwk, kid);
    await checkNode(jwks, nodeKey, jwk, kid);
    saveTrust({ kid, head: loadTrust()?.head });
  });
}

/** The audit check between signing in and registering a device (enrollDevice); throws once the alarm is up. */
export async function auditBeforeWriting() {
  if (!(await guard(null, { keys: false, audit: true }))) throw new NodeAlarm('audit-rewritten', 'The audit log was rewritten.');
}

/** "I made this change": a password that opens the key the node publishes makes this device trust the node anew. */
async function trustWithPassword(event) {
  event.preventDefault();
  const form = $('alarm-form');
  const say = (text) => {
    $('alarm-result').textContent = text;
  };
  for (const control of form.elements) control.disabled = true;
  try {
    say('Checking your password… (deriving the key takes a moment)');
    const { wrappedKey, unlockKey } = await unlockWithPassword($('alarm-password').value);
    const key = await unlockSigningKey(wrappedKey, unlockKey);
    const { kid, history } = await published();
    if (key.kid === kid) {
      await followsTrust(kid, history);
      saveTrust({ kid });
      location.reload();
      return;
    }
    say($('alarm-not-yours').textContent);
  } catch (error) {
    say(error?.slug === 'wrong-unlock-verifier' || error?.name === 'WrappedKeyError' || error instanceof NodeAlarm ? $('alarm-not-yours').textContent : describe(error));
  }
  for (const control of form.elements) control.disabled = false;
  form.reset();
}

/** Whether the alarm is up. */
export function alarmIsUp() {
  return !$('alarm').hidden;
}

/** Puts the alarm in place of the page: what changed, what this device did and what the owner can do. */
export function showAlarm(alarm) {
  const section = $('alarm');
  for (const child of $('app').children) child.hidden = child !== section && child.localName !== 'h1';
  for (const what of $('alarm-what').children) what.hidden = what.dataset.kind !== alarm.kind;
  $('alarm-detail').textContent = alarm.message;
  $('app').dataset.alarm = alarm.kind;
  document.title = `Warning: ${alarm.message}`;
  $('alarm-form').onsubmit = trustWithPassword;
  section.hidden = false;
  $('alarm-heading').focus();
}
