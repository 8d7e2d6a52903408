// The key this browser signs in with: one non-extractable CryptoKey with its kid, public JWK and credential in IndexedDB.

const DB = 'siteid';
const STORE = 'keys';
const ID = 'owner';

function done(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/** use(store) in one transaction on a one-store database; closes it after, or when another tab deletes it. */
export async function withObjectStore(name, store, mode, use) {
  const request = indexedDB.open(name, 1);
  request.onupgradeneeded = () => request.result.createObjectStore(store);
  const db = await done(request);
  db.onversionchange = () => db.close();
  try {
    const tx = db.transaction(store, mode);
    const finished = new Promise((resolve, reject) => {
      tx.oncomplete = resolve;
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error ?? new Error('the IndexedDB transaction was aborted'));
    });
    const result = await done(use(tx.objectStore(store)));
    await finished;
    return result;
  } finally {
    db.close();
  }
}

const withStore = (mode, use) => withObjectStore(DB, STORE, mode, use);

/**
 * The stored {signingKey, kid, publicJwk, credentialId, kind}, or null when this device holds no usable key. kind is
 * 'device' for this browser's own credential, 'owner' for the owner key kept by a browser from before device keys.
 */
export async function loadKey() {
  const databases = indexedDB.databases ? await indexedDB.databases() : null;
  if (databases && !databases.some((d) => d.name === DB)) return null;
  const record = await withStore('readonly', (s) => s.get(ID));
  if (!record || !(record.signingKey instanceof CryptoKey) || typeof record.kid !== 'string') return null;
  return { ...record, kind: record.kind === 'device' ? 'device' : 'owner' };
}

/** Stores this device's key, replacing any other; refuses an extractable key so raw material can never be read back out. */
export async function saveKey({ signingKey, kid, publicJwk, credentialId, kind }) {
  if (!(signingKey instanceof CryptoKey) || signingKey.extractable || signingKey.type !== 'private') {
    throw new TypeError('only a non-extractable private CryptoKey may be stored');
  }
  if (kind !== 'device' || typeof credentialId !== 'string') throw new TypeError('only a registered device key may be stored');
  const { kty, crv, x, y } = publicJwk;
  await withStore('readwrite', (s) => s.put({ signingKey, kid, publicJwk: { kty, crv, x, y }, credentialId, kind }, ID));
}

/** Deletes a database (once another tab that has it open lets go). */
export function drop(name) {
  return new Promise((resolve, reject) => {
    const request = indexedDB.deleteDatabase(name);
    request.onsuccess = request.onblocked = resolve;
    request.onerror = () => reject(request.error);
  });
}

/** Deletes the stored key, its database and the inbox's keys (inbox-keystore.mjs): nothing of siteid stays in IndexedDB. */
export async function deleteKey() {
  await withStore('readwrite', (s) => s.delete(ID));
  await drop(DB);
  await drop('siteid-inbox');
}
