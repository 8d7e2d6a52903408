// Checks a node's answers against what a device verified before, trusting nothing the node says: its key history from
// a trusted kid to the current key (ES384 statements), and its audit chain from a remembered head (SHA-256 links).

import { decode, fromUtf8, utf8 } from './b64url.mjs';
import { importVerifyKey, jwkThumbprint } from './wrapped-key.mjs';

const subtle = globalThis.crypto.subtle;

/** A node contradicting what the device verified; kind: key-swapped, reset, history-rewritten or audit-rewritten. */
export class NodeAlarm extends Error {
  constructor(kind, message) {
    super(message);
    this.name = 'NodeAlarm';
    this.kind = kind;
  }
}

const alarm = (kind, message) => new NodeAlarm(kind, message);
const rewritten = (message) => alarm('history-rewritten', `The key history does not verify: ${message}.`);
const exactly = (value, names) => value !== null && typeof value === 'object' && Object.keys(value).sort().join() === names;

async function readStatement(compact, seq) {
  try {
    const [header, claims, signature, extra] = compact.split('.').map((part, i) => (i < 2 ? JSON.parse(fromUtf8(decode(part))) : part));
    if (extra === undefined && exactly(header, 'alg,kid,typ') && header.alg === 'ES384' && header.typ === 'siteid-key-statement+jwt' && exactly(claims, 'iat,new,old,reason,seq')) {
      return { header, claims, input: utf8(compact.slice(0, compact.lastIndexOf('.'))), signature: decode(signature) };
    }
  } catch {
    // Refused below.
  }
  throw rewritten(`entry ${seq} has no valid key statement`);
}

/**
 * Verifies a key history {"keys":[{kid, jwk, since, statement}]} on its own: each kid is its key's thumbprint, entry 0
 * a genesis its own key signed, entry i names entry i-1 as old and i as seq and is signed by entry i-1's key (rotation,
 * compromise) or its own (reset). Resolves with the steps [{kid, reason}]; throws a NodeAlarm.
 */
export async function verifyHistory(history) {
  const keys = history?.keys;
  if (!Array.isArray(keys)) throw rewritten('it is not a list of keys');
  const steps = [];
  for (const [seq, entry] of keys.entries()) {
    const kid = entry?.kid;
    if (!entry?.statement) throw alarm('key-swapped', `The node lists the key ${kid} with no statement by the key before it.`);
    if (typeof kid !== 'string' || kid !== (await jwkThumbprint(entry.jwk).catch(() => null))) throw rewritten(`entry ${seq} is not named by its key’s thumbprint`);
    const jws = await readStatement(entry.statement, seq);
    const { old, reason, iat } = jws.claims;
    const previous = keys[seq - 1];
    if (jws.claims.new !== kid || jws.claims.seq !== seq || !Number.isInteger(iat)) throw rewritten(`the statement of entry ${seq} is about another key or position`);
    if (seq === 0 ? old !== null || reason !== 'genesis' : old !== previous.kid || !['rotation', 'compromise', 'reset'].includes(reason)) {
      throw rewritten(`entry ${seq} does not follow the one before it`);
    }
    const signer = seq === 0 || reason === 'reset' ? entry : previous;
    let valid = false;
    try {
      valid = await subtle.verify({ name: 'ECDSA', hash: 'SHA-384' }, await importVerifyKey(signer.jwk), jws.signature, jws.input);
    } catch {
      // Not valid.
    }
    if (jws.header.kid !== signer.kid || !valid) throw rewritten(`the statement of entry ${seq} is not signed by ${signer.kid}`);
    steps.push({ kid, reason });
  }
  return steps;
}

/**
 * Checks that a device trusting trustedKid may accept currentKid, the key the node publishes: the history verifies,
 * ends at currentKid and holds trustedKid, and no step after it is a reset. An empty history (a node from before key
 * statements) keeps only the same key. Resolves with the steps; throws a NodeAlarm.
 */
export async function checkKeyHistory(history, currentKid, trustedKid) {
  const steps = await verifyHistory(history);
  const last = steps.at(-1)?.kid;
  if (last !== currentKid && (steps.length || currentKid !== trustedKid)) {
    throw alarm('key-swapped', `The node signs with the key ${currentKid}, but no statement hands over to it from ${last ?? trustedKid}.`);
  }
  const from = steps.findIndex((step) => step.kid === trustedKid);
  if (steps.length && from < 0) throw alarm('history-rewritten', `The key history no longer holds the key this device trusts, ${trustedKid}.`);
  const reset = steps.slice(from + 1).find((step) => step.reason === 'reset');
  if (reset) throw alarm('reset', `The key ${reset.kid} came in by a reset, signed only by itself and not by the key before it.`);
  return steps;
}

const AUDIT_DOMAIN = utf8('siteid audit entry v1');

function be64(n) {
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setBigInt64(0, BigInt(n));
  return bytes;
}

function field(text) {
  if (text === null || text === undefined) return [0];
  const bytes = utf8(text);
  return [1, ...be64(bytes.length), ...bytes];
}

/**
 * Checks the encryption key a node publishes (its JWKS key with use "enc", if any): the key history document must
 * carry the same key with a siteid-enc-key+jwt binding by ownerJwk, the owner key already checked against what the
 * device trusts. A key the owner did not bind would let the node read what senders encrypt. Throws a NodeAlarm.
 */
export async function checkEncryptionKey(jwks, history, ownerJwk, ownerKid) {
  const published = (Array.isArray(jwks?.keys) ? jwks.keys : []).filter((key) => key?.use === 'enc');
  if (!published.length) return;
  const swapped = (why) => alarm('key-swapped', `The node publishes an encryption key the owner key did not bind: ${why}.`);
  if (published.length > 1) throw swapped('it publishes more than one');
  const bound = history?.encryption_key;
  const kid = await jwkThumbprint(published[0]).catch(() => null);
  if (!kid || kid !== published[0].kid || 'd' in published[0]) throw swapped('its kid is not its thumbprint');
  if (bound?.kid !== kid || typeof bound?.binding !== 'string' || kid !== (await jwkThumbprint(bound.jwk).catch(() => null))) {
    throw swapped('no binding names it');
  }
  const valid = await ownerBinds(bound.binding, 'siteid-enc-key+jwt', 'iat,sub,use', (claims) => claims.sub === kid && claims.use === 'enc', ownerJwk, ownerKid);
  if (!valid) throw swapped('its binding does not verify with the owner key');
}

/** Whether binding is a compact JWS of type typ by the owner key, with exactly the claim names given (sorted, comma-separated) and claims passing fits. */
export async function ownerBinds(binding, typ, names, fits, ownerJwk, ownerKid) {
  try {
    const [header, claims, signature, extra] = binding.split('.').map((part, i) => (i < 2 ? JSON.parse(fromUtf8(decode(part))) : part));
    return (
      extra === undefined &&
      exactly(header, 'alg,kid,typ') && header.alg === 'ES384' && header.typ === typ && header.kid === ownerKid &&
      exactly(claims, names) && Number.isInteger(claims.iat) && fits(claims) &&
      (await subtle.verify({ name: 'ECDSA', hash: 'SHA-384' }, await importVerifyKey(ownerJwk), decode(signature), utf8(binding.slice(0, binding.lastIndexOf('.')))))
    );
  } catch {
    return false;
  }
}

/** Lowercase hex of bytes. */
export function hex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

const chainAlarm = (message) => alarm('audit-rewritten', message);

function hashBytes(text) {
  if (typeof text !== 'string' || !/^[0-9a-f]{64}$/.test(text)) throw chainAlarm('The node answered an audit hash that is not SHA-256 in lowercase hex.');
  return text.match(/../g).map((pair) => Number.parseInt(pair, 16));
}

/**
 * The hash of an audit entry after prevHash (bytes): SHA-256("siteid audit entry v1" || prev || be64(seq) || be64(at)
 * || field(event) || address || field(user_agent) || field(detail)), with field(null) = 0x00, field(text) = 0x01 ||
 * be64(length) || UTF-8, and address = 0x02 || be64(32) || ip_digest when there is one, else field(ip).
 */
export async function auditEntryHash(prevHash, entry) {
  const texts = [entry.event, entry.ip, entry.user_agent, entry.detail, entry.ip_digest];
  if (!Number.isSafeInteger(entry.seq) || !Number.isSafeInteger(entry.at) || typeof entry.event !== 'string' || texts.some((t) => t != null && typeof t !== 'string')) {
    throw chainAlarm(`The node answered audit entry ${entry.seq} with a member missing or of the wrong type.`);
  }
  const address = entry.ip_digest ? [2, ...be64(32), ...hashBytes(entry.ip_digest)] : field(entry.ip);
  const input = [...AUDIT_DOMAIN, ...prevHash, ...be64(entry.seq), ...be64(entry.at), ...field(entry.event), ...address, ...field(entry.user_agent), ...field(entry.detail)];
  return new Uint8Array(await subtle.digest('SHA-256', Uint8Array.from(input)));
}

function checkedHead(head) {
  hashBytes(head?.hash);
  if (!Number.isSafeInteger(head.seq)) throw chainAlarm('The node answered an audit head without a seq.');
  return { seq: head.seq, hash: head.hash };
}

/**
 * Follows the audit chain on from the head {seq, hash} a device remembers, with fetchPage(after, limit) answering GET
 * /api/v1/audit/chain: each entry must hash onto the one before, from the remembered hash on, and the last must be the
 * node's head. Resolves with the head to remember; throws a NodeAlarm. Without a remembered head it takes the node's
 * head as it is (first use); when the node pruned past the remembered head, it cannot check and starts again from the
 * node's head. After maxPages pages it resolves with the last entry verified, to go on from there next time.
 */
export async function followAuditChain(remembered, fetchPage, { maxPages = 100, limit = 500 } = {}) {
  if (!remembered) return checkedHead((await fetchPage(0, 1))?.head);
  let { seq, hash } = checkedHead(remembered);
  for (let page = 0; page < maxPages; page += 1) {
    const answer = await fetchPage(seq, limit);
    const head = checkedHead(answer?.head);
    if (!Array.isArray(answer.entries) || (answer.more && !answer.entries.length)) throw chainAlarm('The node answered an audit chain page without its entries.');
    if (head.seq < seq) throw chainAlarm(`The audit log now ends at entry ${head.seq}, before entry ${seq} that this device saw: entries were removed.`);
    const base = answer.base == null ? null : checkedHead(answer.base);
    if (base && base.seq > head.seq) throw chainAlarm('The node answered an audit base past its own head.');
    if (page === 0 && base?.seq > seq) return head;
    for (const entry of answer.entries) {
      if (entry?.seq !== seq + 1) throw chainAlarm(`Audit entry ${seq + 1} is missing: entries were removed or renumbered.`);
      if (hex(await auditEntryHash(hashBytes(hash), entry)) !== entry.hash) throw chainAlarm(`Audit entry ${entry.seq} does not follow entry ${seq} as this device verified it.`);
      ({ seq, hash } = entry);
    }
    if (!answer.more) {
      if (head.seq !== seq || head.hash !== hash) throw chainAlarm(`The audit head (entry ${head.seq}) is not where the chain this device verified leads.`);
      return { seq, hash };
    }
  }
  return { seq, hash };
}
