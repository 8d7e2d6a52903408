// Verifies a node's key history (/.well-known/siteid/keys.json) against its JWKS with the `jose`
// npm package, an implementation independent of siteid's, following docs/protocol.md.
// Usage: node verify-key-history.mjs KEYS_JSON_FILE JWKS_FILE. Prints the current kid and the
// reasons; exits 1 naming the first thing that does not hold.
import { readFileSync } from 'node:fs';
import { calculateJwkThumbprint, compactVerify, decodeProtectedHeader, importJWK } from 'jose';

function fail(message) {
  console.error(message);
  process.exit(1);
}

const history = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const jwks = JSON.parse(readFileSync(process.argv[3], 'utf8'));
if (!Array.isArray(history.keys) || history.keys.length === 0) fail('the history has no keys');

let previous = null;
const reasons = [];
for (const [index, entry] of history.keys.entries()) {
  const kid = await calculateJwkThumbprint(entry.jwk, 'sha256');
  if (kid !== entry.kid) fail(`key ${index}: the kid is not the JWK thumbprint`);
  const header = decodeProtectedHeader(entry.statement);
  let signer;
  if (header.kid === entry.kid) signer = entry.jwk;
  else if (previous && header.kid === previous.kid) signer = previous.jwk;
  else fail(`key ${index}: the statement is signed by neither this key nor the one before`);
  let verified;
  try {
    verified = await compactVerify(entry.statement, await importJWK(signer, 'ES384'), {
      algorithms: ['ES384'],
    });
  } catch (error) {
    fail(`key ${index}: the statement does not verify: ${error.message}`);
  }
  if (verified.protectedHeader.typ !== 'siteid-key-statement+jwt') fail(`key ${index}: wrong typ`);
  const claims = JSON.parse(new TextDecoder().decode(verified.payload));
  const members = Object.keys(claims).sort().join(',');
  if (members !== 'iat,new,old,reason,seq') fail(`key ${index}: claims ${members}`);
  if (claims.new !== entry.kid) fail(`key ${index}: new is not its kid`);
  if (claims.old !== (previous ? previous.kid : null)) fail(`key ${index}: old is not the key before`);
  if (claims.seq !== index) fail(`key ${index}: seq ${claims.seq}`);
  const bySelf = header.kid === entry.kid;
  const fits = previous === null
    ? claims.reason === 'genesis' && bySelf
    : bySelf ? claims.reason === 'reset' : ['rotation', 'compromise'].includes(claims.reason);
  if (!fits) fail(`key ${index}: reason ${claims.reason} does not fit its signer`);
  reasons.push(claims.reason);
  previous = entry;
}
// The owner key is the JWKS's one signing key; the encryption key (use "enc") has no history.
const signing = jwks.keys.filter((key) => key.use !== 'enc');
const published = await Promise.all(signing.map((key) => calculateJwkThumbprint(key, 'sha256')));
if (published.length !== 1 || published[0] !== previous.kid) {
  fail('the JWKS signing key is not the last key of the history');
}
console.log(JSON.stringify({ current: previous.kid, reasons }));
