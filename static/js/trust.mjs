// What this browser has verified of its node, in localStorage (apart from its key, so that losing the key keeps it):
// the owner kid it trusts and the audit head {seq, hash} it last checked.

const TRUST = 'siteid.trust';

/** {kid, head} (head null before the first audit check), or null before this browser trusts any key. */
export function loadTrust() {
  try {
    const trust = JSON.parse(localStorage.getItem(TRUST));
    return typeof trust?.kid === 'string' ? { kid: trust.kid, head: trust.head ?? null } : null;
  } catch {
    return null;
  }
}

/** Remembers {kid, head}. */
export function saveTrust({ kid, head = null }) {
  localStorage.setItem(TRUST, JSON.stringify({ kid, head }));
}

/** Forgets it, with the device. */
export function forgetTrust() {
  localStorage.removeItem(TRUST);
}
