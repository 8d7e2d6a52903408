// Shared test helpers: repository paths, vector files and independent node:crypto references.

import { createHash, createHmac, pbkdf2Sync } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

/** The repository root. */
export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

/** The smallest iteration count accepted; tests use it to stay fast. */
export const FAST_P2C = 210_000;

/** The absolute path of a file under tests/vectors. */
export function vectorPath(name) {
  return path.join(repoRoot, 'tests', 'vectors', name);
}

/** Reads a JSON file under tests/vectors, failing with a clear message when it is missing. */
export function readVector(name, missingHint = '') {
  const file = vectorPath(name);
  if (!existsSync(file)) throw new Error(`test fixture tests/vectors/${name} is missing. ${missingHint}`.trim());
  return JSON.parse(readFileSync(file, 'utf8'));
}

/** The KEK computed independently with node:crypto: PBKDF2-HMAC-SHA-512(pw, "PBES2-HS512+A256KW" || 0 || p2s, p2c, 32). */
export function referenceKek(password, p2sB64, p2c) {
  const salt = Buffer.concat([Buffer.from('PBES2-HS512+A256KW'), Buffer.from([0]), Buffer.from(p2sB64, 'base64url')]);
  return pbkdf2Sync(Buffer.from(password, 'utf8'), salt, p2c, 32, 'sha512');
}

/** The unlock verifier computed independently with node:crypto from KEK bytes. */
export function referenceVerifier(kek) {
  return createHmac('sha256', kek).update('siteid unlock verifier v1').digest('base64url');
}

/** Decodes the JSON of one base64url part of a compact JWS or JWE. */
export function partJson(compact, index) {
  return JSON.parse(Buffer.from(compact.split('.')[index], 'base64url').toString('utf8'));
}

/** The audit entry hash computed independently with node:crypto, from the rule in the protocol (hex in, hex out). */
export function referenceAuditHash(prevHex, entry) {
  const be64 = (n) => {
    const b = Buffer.alloc(8);
    b.writeBigInt64BE(BigInt(n));
    return b;
  };
  const field = (text) => (text == null ? Buffer.from([0]) : Buffer.concat([Buffer.from([1]), be64(Buffer.byteLength(text, 'utf8')), Buffer.from(text, 'utf8')]));
  const address = entry.ip_digest ? Buffer.concat([Buffer.from([2]), be64(32), Buffer.from(entry.ip_digest, 'hex')]) : field(entry.ip);
  return createHash('sha256')
    .update('siteid audit entry v1')
    .update(Buffer.from(prevHex, 'hex'))
    .update(be64(entry.seq))
    .update(be64(entry.at))
    .update(field(entry.event))
    .update(address)
    .update(field(entry.user_agent))
    .update(field(entry.detail))
    .digest('hex');
}

/** Entries {seq, at, event, ip, ip_digest, user_agent, detail} chained with referenceAuditHash after prevHex. */
export function referenceChain(entries, prevHex = '0'.repeat(64)) {
  let prev = prevHex;
  return entries.map((entry) => {
    const hash = referenceAuditHash(prev, entry);
    prev = hash;
    return { ...entry, hash };
  });
}
