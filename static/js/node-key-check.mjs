// The device's check of the node's own key (loaded on demand by alarm.mjs): a signing key the JWKS lists beside the owner key must be the node key, bound by the owner key for this origin.

import { NodeAlarm, ownerBinds } from './node-check.mjs';
import { jwkThumbprint } from './wrapped-key.mjs';

/**
 * Checks the node's own key when the JWKS lists it (a signing key beside the owner key, named by node-key.json): the
 * owner key must have bound it for this node (a siteid-node-key+jwt naming this origin and the key). Throws a NodeAlarm.
 */
export async function checkNodeKey(jwks, nodeKey, ownerJwk, ownerKid) {
  const listed = (Array.isArray(jwks?.keys) ? jwks.keys : []).filter((key) => key?.use !== 'enc' && key?.kid !== ownerKid);
  if (!listed.length) return;
  const swapped = (why) => new NodeAlarm('key-swapped', `The node publishes a signing key beside the owner key that the owner key did not bind: ${why}.`);
  if (listed.length > 1 || listed[0].kid !== nodeKey?.kid) throw swapped('it is not the node key');
  const kid = await jwkThumbprint(listed[0]).catch(() => null);
  if (kid !== nodeKey.kid || 'd' in listed[0] || typeof nodeKey.binding !== 'string') throw swapped('no binding names it');
  const valid = await ownerBinds(nodeKey.binding, 'siteid-node-key+jwt', 'aud,iat,sub', (claims) => claims.sub === kid && claims.aud === location.origin, ownerJwk, ownerKid);
  if (!valid) throw swapped('its binding does not verify with the owner key');
}
