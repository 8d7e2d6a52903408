// Integration test against the real siteid binary: claim a node from "the browser", unlock from a new device, check with Rust and npm jose.
// Needs `cargo build` first (or SITEID_BIN pointing at a built binary).

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as jose from 'jose';
import * as wk from '../../static/js/wrapped-key.mjs';
import { claimProof } from '../../static/js/jws.mjs';
import { FAST_P2C, partJson, repoRoot } from './helpers.mjs';

const BIN = process.env.SITEID_BIN || path.join(repoRoot, 'target', 'debug', 'siteid');
const PASSWORD = 'Grüße, cafe\u0301 ☃ 🔑 correct horse';

/** Runs the binary to completion; resolves {code, stdout, stderr} whatever the exit code. */
function run(args) {
  return new Promise((resolve) => {
    execFile(BIN, args, { timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : error.signal ?? -1) : 0, stdout, stderr });
    });
  });
}

/** Starts `siteid serve` and resolves with the base URL from its single stdout line. */
function startServer(dataDir) {
  const child = spawn(BIN, ['serve', '--data-dir', dataDir, '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  const url = new Promise((resolve, reject) => {
    let stdout = '';
    const timer = setTimeout(() => reject(new Error(`siteid serve printed no listening line within 30 s; stderr:\n${stderr}`)), 30_000);
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
      const newline = stdout.indexOf('\n');
      if (newline < 0) return;
      clearTimeout(timer);
      const line = stdout.slice(0, newline);
      const match = /^listening on (http:\/\/127\.0\.0\.1:\d+)$/.exec(line);
      if (match) resolve(match[1]);
      else reject(new Error(`siteid serve printed ${JSON.stringify(line)}, expected "listening on http://127.0.0.1:PORT"`));
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`siteid serve exited early (${code ?? signal}); stderr:\n${stderr}`));
    });
  });
  return { child, url, stderr: () => stderr };
}

/** Stops the server with SIGTERM, then SIGKILL if it lingers. */
async function stopServer(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

/** Sends a request and returns {status, type, body} with the body parsed as JSON when possible. */
async function call(base, method, route, body) {
  const response = await fetch(`${base}${route}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: response.status, type: response.headers.get('content-type') ?? '', body: json };
}

/** Asserts an RFC 9457 problem response with the given status. */
function assertProblem(res, status, what) {
  const detail = `${what}: got ${res.status} ${res.type} ${JSON.stringify(res.body)}`;
  assert.equal(res.status, status, detail);
  assert.match(res.type, /^application\/problem\+json\b/, detail);
  for (const member of ['type', 'title', 'status', 'detail']) assert.ok(member in res.body, `${detail} (no ${member})`);
  assert.equal(res.body.status, status, detail);
}

describe('claiming a node in the browser and unlocking it on a new device', () => {
  let dataDir;
  let server;
  let base;
  let claimToken;
  let owner;
  let wrapped;

  before(async () => {
    if (!existsSync(BIN)) {
      throw new Error(`the siteid binary is missing at ${BIN}: run \`cargo build\` first (or set SITEID_BIN)`);
    }
    dataDir = await mkdtemp(path.join(tmpdir(), 'siteid-js-'));
    server = startServer(dataDir);
    base = await server.url;
  });

  after(async () => {
    if (server) await stopServer(server.child);
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('has no unlock parameters before a claim (404 problem)', async () => {
    assertProblem(await call(base, 'GET', '/api/v1/unlock'), 404, 'GET /api/v1/unlock before a claim');
  });

  it('prints the claim URL of this node while it runs', async () => {
    const res = await run(['claim-url', '--data-dir', dataDir]);
    assert.equal(res.code, 0, `siteid claim-url failed: ${res.stderr}`);
    const line = res.stdout.trim();
    // Take the token first so the later steps still run if only the URL part is wrong.
    claimToken = line.slice(line.indexOf('#') + 1);
    assert.match(claimToken, /^[A-Za-z0-9_-]{22,}$/);
    assert.ok(line.startsWith(`${base}/setup#`), `claim-url printed ${JSON.stringify(line)}, expected ${base}/setup#<token> (the public URL of the running node)`);
  });

  it('accepts a claim made with WebCrypto (201 and the kid is the RFC 7638 thumbprint)', async () => {
    const { privateJwk, publicJwk } = await wk.generateOwnerKey();
    const d = privateJwk.d;
    const { wrappedKey, unlockVerifier } = await wk.wrapPrivateKey(privateJwk, PASSWORD, { p2c: FAST_P2C });
    const signingKey = await wk.importSigningKey(privateJwk);
    owner = { d, publicJwk, wrappedKey, unlockVerifier, signingKey, kid: await wk.jwkThumbprint(publicJwk) };
    const claim = (proof, token = claimToken) => ({ claim_token: token, public_key: publicJwk, wrapped_key: wrappedKey, unlock_verifier: unlockVerifier, proof });

    const wrongAudience = await claimProof(signingKey, { audience: `${base}/`, claimToken });
    const refused = await call(base, 'POST', '/api/v1/owner', claim(wrongAudience));
    assertProblem(refused, refused.status, 'POST /api/v1/owner with aud = URL + "/"');
    assert.ok(refused.status >= 400 && refused.status < 500, `a proof for another audience must be a 4xx, got ${refused.status}`);
    assert.equal(refused.body.field, 'proof', JSON.stringify(refused.body));

    const proof = await claimProof(signingKey, { audience: base, claimToken });
    assertProblem(await call(base, 'POST', '/api/v1/owner', claim(proof, `${claimToken}x`)), 401, 'POST /api/v1/owner with a wrong claim token');

    const res = await call(base, 'POST', '/api/v1/owner', claim(proof));
    assert.equal(res.status, 201, `POST /api/v1/owner: got ${res.status} ${JSON.stringify(res.body)}`);
    assert.match(res.type, /^application\/json\b/);
    assert.deepEqual(res.body, { kid: owner.kid });

    assertProblem(await call(base, 'POST', '/api/v1/owner', claim(proof)), 403, 'a second claim');
  });

  it('publishes the unlock parameters of the stored key', async () => {
    const res = await call(base, 'GET', '/api/v1/unlock');
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body, { ...wk.unlockParams(owner.wrappedKey), kid: owner.kid });
  });

  it('lets a new device derive the KEK once, prove the password and unwrap the key', async () => {
    const subtle = globalThis.crypto.subtle;
    let derivations = 0;
    const deriveBits = subtle.deriveBits;
    subtle.deriveBits = function (...args) {
      derivations++;
      return deriveBits.apply(this, args);
    };
    try {
      const params = (await call(base, 'GET', '/api/v1/unlock')).body;
      const unlock = await wk.deriveUnlock(PASSWORD, params);
      assert.equal(unlock.unlockVerifier, owner.unlockVerifier);
      const res = await call(base, 'POST', '/api/v1/unlock', { unlock_verifier: unlock.unlockVerifier });
      assert.equal(res.status, 200, `POST /api/v1/unlock: got ${res.status} ${JSON.stringify(res.body)}`);
      assert.deepEqual(res.body, { wrapped_key: owner.wrappedKey, kid: owner.kid });
      wrapped = res.body.wrapped_key;
      const jwk = await wk.unwrapPrivateKey(wrapped, unlock);
      assert.equal(jwk.d, owner.d);
      const unlocked = await wk.unlockSigningKey(wrapped, unlock);
      assert.equal(unlocked.kid, owner.kid);
      assert.deepEqual(unlocked.publicJwk, owner.publicJwk);
      assert.equal(unlocked.signingKey.extractable, false);
      assert.equal(derivations, 1, 'one PBKDF2 run for the verifier and the unwrap');
    } finally {
      delete subtle.deriveBits;
    }
  });

  it('refuses the verifier of a wrong password (401 problem)', async () => {
    const params = (await call(base, 'GET', '/api/v1/unlock')).body;
    const wrong = await wk.deriveUnlock(PASSWORD.normalize('NFC'), params);
    assert.notEqual(wrong.unlockVerifier, owner.unlockVerifier);
    assertProblem(await call(base, 'POST', '/api/v1/unlock', { unlock_verifier: wrong.unlockVerifier }), 401, 'POST /api/v1/unlock with a wrong verifier');
  });

  it('stores a JWE that npm jose decrypts to the same key', async () => {
    const { plaintext, protectedHeader } = await jose.compactDecrypt(wrapped, new TextEncoder().encode(PASSWORD), {
      keyManagementAlgorithms: ['PBES2-HS512+A256KW'],
      contentEncryptionAlgorithms: ['A256GCM'],
      maxPBES2Count: 10_000_000,
    });
    assert.deepEqual(protectedHeader, partJson(wrapped, 0));
    assert.deepEqual(JSON.parse(new TextDecoder().decode(plaintext)), { ...owner.publicJwk, d: owner.d });
  });

  it('stores a JWE that the Rust implementation unwraps (`siteid wrapped-key check`)', async () => {
    const file = path.join(dataDir, 'password.txt');
    const check = async (content) => {
      await writeFile(file, content);
      return run(['wrapped-key', 'check', '--data-dir', dataDir, '--password-file', file]);
    };
    for (const content of [`${PASSWORD}\n`, PASSWORD]) {
      const res = await check(content);
      assert.equal(res.code, 0, `wrapped-key check with ${JSON.stringify(content)} failed: ${res.stderr}`);
      assert.equal(res.stdout.trim(), owner.kid);
    }
    for (const content of [`${PASSWORD.normalize('NFC')}\n`, `${PASSWORD}\n\n`, `${PASSWORD} \n`, 'wrong\n']) {
      const res = await check(content);
      assert.notEqual(res.code, 0, `wrapped-key check must refuse ${JSON.stringify(content)}; stdout ${res.stdout}`);
      assert.ok(res.stderr.trim().length > 0, 'a refusal explains itself on stderr');
    }
  });
});
