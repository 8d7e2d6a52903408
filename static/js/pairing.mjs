// The pairing comparison code (docs/protocol.md, "The comparison code"), which the new device and the approving device each compute from what they hold.

/** The code's domain separator. */
const CONTEXT = 'siteid-pairing-v1';

/**
 * The six-digit code of a request: the first four bytes of SHA-256("siteid-pairing-v1" 0x00 publicUrl 0x00 requestId
 * 0x00 kid 0x00 nodeNonce) read big-endian, modulo 1,000,000, with leading zeros.
 */
export async function comparisonCode(publicUrl, requestId, kid, nodeNonce) {
  const input = new TextEncoder().encode([CONTEXT, publicUrl, requestId, kid, nodeNonce].join('\0'));
  const digest = new DataView(await globalThis.crypto.subtle.digest('SHA-256', input));
  return String(digest.getUint32(0) % 1_000_000).padStart(6, '0');
}

/** "205 431" for "205431": two groups of three, easier to compare at a glance. */
export function formatCode(code) {
  return `${code.slice(0, 3)} ${code.slice(3)}`;
}
