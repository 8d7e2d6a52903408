// The inbox's encryption keys this browser opened: non-extractable ECDH P-384 CryptoKeys (deriveBits only) by kid, in an IndexedDB database of their own that signing out and forgetting the device delete.

import { drop, withObjectStore } from './keystore.mjs';

const DB = 'siteid-inbox';
const STORE = 'encryption-keys';

const withStore = (mode, use) => withObjectStore(DB, STORE, mode, use);

/** Whether a value is a private ECDH P-384 CryptoKey that cannot be exported and only derives bits. */
function isKeptKey(key) {
  return (
    key instanceof CryptoKey &&
    !key.extractable &&
    key.type === 'private' &&
    key.algorithm?.name === 'ECDH' &&
    key.algorithm.namedCurve === 'P-384' &&
    key.usages.length === 1 &&
    key.usages[0] === 'deriveBits'
  );
}

/** Keeps an opened encryption key {privateKey, kid, publicJwk}; refuses a key that could be exported or used otherwise. */
export async function saveEncryptionKey({ privateKey, kid, publicJwk }) {
  if (!isKeptKey(privateKey)) throw new TypeError('only a non-extractable ECDH P-384 key for deriveBits may be stored');
  if (typeof kid !== 'string' || kid === '') throw new TypeError('the kid must be a non-empty string');
  const { kty, crv, x, y } = publicJwk;
  await withStore('readwrite', (s) => s.put({ privateKey, kid, publicJwk: { kty, crv, x, y } }, kid));
}

/** The encryption keys this browser keeps, as a Map from kid to {privateKey, kid, publicJwk}; empty without the database. */
export async function loadEncryptionKeys() {
  const databases = indexedDB.databases ? await indexedDB.databases() : null;
  if (databases && !databases.some((d) => d.name === DB)) return new Map();
  const records = await withStore('readonly', (s) => s.getAll());
  return new Map(records.filter((r) => typeof r?.kid === 'string' && isKeptKey(r.privateKey)).map((r) => [r.kid, r]));
}

/** Deletes every encryption key this browser keeps, with their database. */
export function forgetEncryptionKeys() {
  return drop(DB);
}
