// Helpers for the inbox tests against the real binary: loopback nodes, claims with an encryption key, sign-in and the command line.

import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { generateEncryptionKey, wrapEncryptionKey } from '../../static/js/inbox-crypto.mjs';
import { claimProof, loginAssertion, recordSignature, signJwt } from '../../static/js/jws.mjs';
import { keyStatement } from '../../static/js/key-statement.mjs';
import { importSigningKey, jwkThumbprint, toPublicJwk, wrapPrivateKey } from '../../static/js/wrapped-key.mjs';
import { FAST_P2C, repoRoot } from './helpers.mjs';

/** The binary under test. */
export const BIN = process.env.SITEID_BIN || path.join(repoRoot, 'target', 'debug', 'siteid');

/** The password the test owners' keys are wrapped under. */
const PASSWORD = 'inbox interop: correct horse battery staple';

/** How long a node may take to print its listening line, and a command to finish, in milliseconds. */
const START_TIMEOUT_MS = 20_000;
const COMMAND_TIMEOUT_MS = 20_000;
/** How long one HTTP request to a test node may take, in milliseconds. */
const REQUEST_TIMEOUT_MS = 10_000;

/** Throws a clear error when the binary has not been built. */
export function requireBinary() {
  if (!existsSync(BIN)) {
    throw new Error(`the siteid binary is missing at ${BIN}: run \`cargo build\` in the repository first (or set SITEID_BIN to a built binary)`);
  }
}

/** The environment of a child process without SITEID_* variables, so a developer's settings cannot leak into a test. */
function childEnv() {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('SITEID_')));
}

/** Runs the binary to completion; resolves {code, stdout, stderr} whatever the exit code. */
export function runCli(args) {
  return new Promise((resolve) => {
    const child = execFile(BIN, args, { timeout: COMMAND_TIMEOUT_MS, env: childEnv() }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : (error.signal ?? -1)) : 0, stdout, stderr });
    });
    // No prompt may wait for input that never comes.
    child.stdin?.end();
  });
}

/** Every node process still running; killed when the test process exits however it ends. */
const running = new Set();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** A running `siteid serve` on 127.0.0.1 with a fresh data directory; stop() ends it and removes the directory. */
export class TestNode {
  constructor(dataDir, child, base) {
    this.dataDir = dataDir;
    this.child = child;
    this.base = base;
    this.log = '';
  }

  /** Starts a node on a free loopback port and resolves once it prints its listening line. */
  static async start(label) {
    requireBinary();
    const dataDir = await mkdtemp(path.join(tmpdir(), `siteid-inbox-${label}-`));
    const child = spawn(BIN, ['serve', '--data-dir', dataDir, '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'], env: childEnv() });
    running.add(child);
    child.once('exit', () => running.delete(child));
    const node = new TestNode(dataDir, child, null);
    child.stderr.on('data', (chunk) => {
      node.log += chunk;
    });
    try {
      node.base = await new Promise((resolve, reject) => {
        let stdout = '';
        const timer = setTimeout(() => reject(new Error(`siteid serve (${label}) printed no listening line within ${START_TIMEOUT_MS} ms; stderr:\n${node.log}`)), START_TIMEOUT_MS);
        child.stdout.on('data', (chunk) => {
          stdout += chunk;
          const newline = stdout.indexOf('\n');
          if (newline < 0) return;
          clearTimeout(timer);
          const line = stdout.slice(0, newline);
          const match = /^listening on (http:\/\/127\.0\.0\.1:\d+)$/.exec(line);
          if (match) resolve(match[1]);
          else reject(new Error(`siteid serve (${label}) printed ${JSON.stringify(line)}, expected "listening on http://127.0.0.1:PORT"`));
        });
        child.on('exit', (code, signal) => {
          clearTimeout(timer);
          reject(new Error(`siteid serve (${label}) exited early (${code ?? signal}); stderr:\n${node.log}`));
        });
      });
    } catch (e) {
      await node.stop();
      throw e;
    }
    return node;
  }

  /** Stops the node with SIGTERM (SIGKILL if it lingers) and removes its data directory. */
  async stop() {
    const { child } = this;
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    await rm(this.dataDir, { recursive: true, force: true });
  }

  /** Sends a request; resolves {status, type, headers, body} with the body parsed as JSON when it is JSON. */
  async call(method, route, { body, token } = {}) {
    const headers = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (token !== undefined) headers.authorization = `Bearer ${token}`;
    const response = await fetch(`${this.base}${route}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const text = await response.text();
    let json;
    try {
      json = JSON.parse(text);
    } catch {
      json = text;
    }
    return { status: response.status, type: response.headers.get('content-type') ?? '', headers: response.headers, body: json };
  }

  /** Like call, but throws with the whole answer unless the status is the expected one; resolves with the body. */
  async expect(status, method, route, options) {
    const res = await this.call(method, route, options);
    if (res.status !== status) throw new Error(`${method} ${route} on ${this.base}: expected ${status}, got ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  }
}

/**
 * Claims a node as the owner of a P-384 private JWK {kty, crv, x, y, d} (made anywhere), with a genesis statement,
 * the record signature and, unless withEncryptionKey is false, a fresh encryption key wrapped under the owner key and
 * bound by it. Resolves with the owner {privateJwk, publicJwk, kid, signingKey, enc: {privateJwk, publicJwk, kid} | null}.
 */
export async function claimNode(node, ownerPrivateJwk, { withEncryptionKey = true } = {}) {
  const urlLine = await runCli(['claim-url', '--data-dir', node.dataDir]);
  if (urlLine.code !== 0) throw new Error(`siteid claim-url failed (${urlLine.code}): ${urlLine.stderr}`);
  const line = urlLine.stdout.trim();
  const claimToken = line.slice(line.indexOf('#') + 1);

  const privateJwk = { kty: 'EC', crv: 'P-384', x: ownerPrivateJwk.x, y: ownerPrivateJwk.y, d: ownerPrivateJwk.d };
  const publicJwk = toPublicJwk(privateJwk);
  const kid = await jwkThumbprint(publicJwk);
  // importSigningKey deletes d from the object it is given: hand it a copy.
  const signingKey = await importSigningKey({ ...privateJwk });
  const owner = { privateJwk, publicJwk, kid, signingKey, enc: null };
  const { wrappedKey, unlockVerifier } = await wrapPrivateKey({ ...privateJwk }, PASSWORD, { p2c: FAST_P2C });
  const body = {
    claim_token: claimToken,
    public_key: publicJwk,
    wrapped_key: wrappedKey,
    unlock_verifier: unlockVerifier,
    proof: await claimProof(signingKey, { audience: node.base, claimToken }),
    statement: await keyStatement({ signingKey, kid }, { newKid: kid }),
    record: await recordSignature({ signingKey, kid }, { audience: node.base, wrappedKey, unlockVerifier }),
  };
  if (withEncryptionKey) {
    const enc = await generateEncryptionKey();
    body.encryption_key = {
      public_key: enc.publicJwk,
      wrapped_key: await wrapEncryptionKey({ ...privateJwk }, { ...enc.privateJwk }),
      binding: await signJwt(signingKey, { alg: 'ES384', typ: 'siteid-enc-key+jwt', kid }, { sub: enc.kid, use: 'enc', iat: Math.floor(Date.now() / 1000) }),
    };
    owner.enc = enc;
  }
  const answer = await node.expect(201, 'POST', '/api/v1/owner', { body });
  if (answer.kid !== kid) throw new Error(`the claim answered kid ${answer.kid}, expected ${kid}`);
  return owner;
}

/** Signs in as the owner with a login assertion; resolves with the bearer token. */
export async function signIn(node, owner) {
  const { nonce } = await node.expect(200, 'POST', '/api/v1/auth/challenge');
  const assertion = await loginAssertion(owner.signingKey, { audience: node.base, nonce, kid: owner.kid });
  const session = await node.expect(200, 'POST', '/api/v1/auth/login', { body: { assertion } });
  return session.access_token;
}
