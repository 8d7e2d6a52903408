// Binding the node's own key with the owner key (loaded on demand while the owner key is open): the siteid-node-key+jwt
// that lets clients check they reach the node the owner bound (docs/protocol.md, "The node key").

import { api } from './api.mjs';
import { signJwt } from './jws.mjs';

/** The binding's typ. */
export const NODE_BINDING_TYP = 'siteid-node-key+jwt';

/**
 * Binds the node key with the owner key {signingKey, kid} unless the current owner key has bound it already; needs a
 * session with the owner capability. Resolves whether a binding was sent.
 */
export async function bindNodeKey(ownerKey) {
  const published = await nodeKey();
  if (typeof published?.kid !== 'string' || published.binding !== null) return false;
  await api('PUT', '/node-key/binding', { binding: await sign(ownerKey, published.kid) });
  return true;
}

/** A rotation's new key {signingKey, kid} binding the node key, sent with the rotation itself; null when the node has none. */
export async function rotationBinding(newKey) {
  const published = await nodeKey();
  return typeof published?.kid === 'string' ? sign(newKey, published.kid) : null;
}

async function nodeKey() {
  const response = await fetch('/.well-known/siteid/node-key.json', { cache: 'no-store', credentials: 'omit' });
  return response.ok ? response.json() : null;
}

function sign(ownerKey, nodeKid) {
  return signJwt(
    ownerKey.signingKey,
    { alg: 'ES384', typ: NODE_BINDING_TYP, kid: ownerKey.kid },
    { aud: location.origin, sub: nodeKid, iat: Math.floor(Date.now() / 1000) },
  );
}
