// Key statements (siteid-key-statement+jwt): each key of the owner's public history, vouched for by the key before it.

import { signJwt } from './jws.mjs';

/** A statement by {signingKey, kid}: a genesis by default (a key for itself), else {newKid, oldKid, seq, reason}. */
export function keyStatement(signer, { newKid, oldKid = null, seq = 0, reason = 'genesis', now = Math.floor(Date.now() / 1000) }) {
  return signJwt(signer.signingKey, { alg: 'ES384', typ: 'siteid-key-statement+jwt', kid: signer.kid }, { new: newKid, old: oldKid, seq, iat: now, reason });
}
