// Browser test helpers: a real siteid node on a temp data dir, page problem watching, screenshots and IndexedDB probes,
// and what the hostile-node tests share (what a device must never send, foreign keys, the trust memory).

import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import http from 'node:http';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateOwnerKey, importSigningKey, jwkThumbprint, wrapPrivateKey } from '../../static/js/wrapped-key.mjs';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
export const BIN = process.env.SITEID_BIN || path.join(repoRoot, 'target', 'debug', 'siteid');

/** The exact Content-Security-Policy every page must carry. */
export const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; object-src 'none'; base-uri 'none'";

/** Where `siteid login` keeps the owner kids it trusts: a new file for each run (ports are reused by other nodes), never the real home directory. */
let runs = 0;

/** Runs the binary to completion; resolves {code, stdout, stderr}. */
export function run(args) {
  return new Promise((resolve) => {
    runs += 1;
    const env = { ...process.env, SITEID_KNOWN_NODES: path.join(tmpdir(), `siteid-known-nodes-${process.pid}-${runs}.json`) };
    execFile(BIN, args, { timeout: 60_000, env }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stdout, stderr });
    });
  });
}

/** A loopback port free at the moment of asking (for a node whose public URL must name its port in advance). */
async function freeLoopbackPort() {
  const server = http.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * Starts `siteid serve` on 127.0.0.1 with a fresh data dir. Resolves {base, dataDir, claimToken(), init(password), audit(), stop()}.
 * With localhost, the public URL is http://localhost:PORT (WebAuthn refuses IP addresses) and base uses it.
 */
export async function startNode({ localhost = false } = {}) {
  if (!existsSync(BIN)) throw new Error(`${BIN} is missing: run cargo build first (or set SITEID_BIN)`);
  const dataDir = await mkdtemp(path.join(tmpdir(), 'siteid-browser-'));
  const wellKnown = path.join(dataDir, 'wk');
  await mkdir(wellKnown);
  const port = localhost ? await freeLoopbackPort() : 0;
  const publicUrl = localhost ? ['--public-url', `http://localhost:${port}`] : [];
  const child = spawn(BIN, ['serve', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir, '--well-known-dir', wellKnown, ...publicUrl], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn' },
  });
  let stderr = '';
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  const base = await new Promise((resolve, reject) => {
    let stdout = '';
    const timer = setTimeout(() => reject(new Error(`siteid serve printed no listening line within 30 s; stderr:\n${stderr}`)), 30_000);
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
      const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout);
      if (match) {
        clearTimeout(timer);
        resolve(localhost ? `http://localhost:${port}` : match[1]);
      }
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`siteid serve exited early (${code ?? signal}); stderr:\n${stderr}`));
    });
  });
  return {
    base,
    dataDir,
    stderr: () => stderr,
    /** The claim token: the fragment of `siteid claim-url`. */
    async claimToken() {
      const { code, stdout, stderr: err } = await run(['claim-url', '--data-dir', dataDir]);
      if (code !== 0) throw new Error(`siteid claim-url exited ${code}: ${err}`);
      return stdout.trim().split('#')[1];
    },
    /** Claims the node from the command line with a cheap p2c (for tests that only need an owner). */
    async init(password) {
      const file = path.join(dataDir, 'password.txt');
      await writeFile(file, `${password}\n`, { mode: 0o600 });
      const { code, stdout, stderr: err } = await run(['init', '--data-dir', dataDir, '--password-file', file, '--p2c', '210000']);
      if (code !== 0) throw new Error(`siteid init exited ${code}: ${err}`);
      return stdout.trim();
    },
    /** The audit log as `siteid audit list` prints it (read from the database while the node runs). */
    async audit() {
      const { code, stdout, stderr: err } = await run(['audit', 'list', '--data-dir', dataDir]);
      if (code !== 0) throw new Error(`siteid audit list exited ${code}: ${err}`);
      return stdout;
    },
    /** Stops the node and deletes its data dir. */
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Collects what goes wrong in a page: uncaught errors and console errors (CSP violations show up there),
 * except the browser's own lines about API answers with an error status or a cut network, which tests cause.
 */
export function watch(page, problems) {
  page.on('pageerror', (error) => problems.push(`${page.url()}: uncaught ${error.message}`));
  page.on('console', (message) => {
    if (message.type() !== 'error') return;
    const text = message.text();
    if (/^Failed to load resource: (the server responded with a status of (401|403|404|429)|net::ERR_INTERNET_DISCONNECTED)/.test(text)) return;
    problems.push(`${page.url()}: console error ${text}`);
  });
  return page;
}

/** Saves a full-page screenshot into the test's output directory and attaches it to the report. */
export async function shot(page, testInfo, name) {
  const file = testInfo.outputPath(`${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  await testInfo.attach(name, { path: file, contentType: 'image/png' });
}

/** The IndexedDB databases of the page's origin, by name. */
export function databases(page) {
  return page.evaluate(async () => (await indexedDB.databases()).map((d) => d.name));
}

/** What the page's IndexedDB holds for siteid: null without the database, else the records of its stores. */
export function storedKeys(page) {
  return page.evaluate(async () => {
    if (!(await indexedDB.databases()).some((d) => d.name === 'siteid')) return null;
    const db = await new Promise((resolve, reject) => {
      const request = indexedDB.open('siteid');
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
    const out = [];
    for (const name of db.objectStoreNames) {
      const records = await new Promise((resolve, reject) => {
        const request = db.transaction(name).objectStore(name).getAll();
        request.onsuccess = () => resolve(request.result);
        request.onerror = () => reject(request.error);
      });
      for (const r of records) {
        out.push({
          store: name,
          members: Object.keys(r).sort(),
          kid: r.kid,
          kind: r.kind,
          publicJwk: r.publicJwk,
          key: r.signingKey instanceof CryptoKey ? { type: r.signingKey.type, extractable: r.signingKey.extractable, usages: r.signingKey.usages, algorithm: r.signingKey.algorithm } : null,
        });
      }
    }
    db.close();
    return out;
  });
}

/**
 * POSTs JSON to the node from the loopback address `localAddress` (any of 127.0.0.0/8), so a test can play clients
 * on many addresses and networks. Resolves {status, body}.
 */
export function postFrom(base, localAddress, path, body) {
  if (!localAddress.startsWith('127.')) throw new Error('tests send only from loopback addresses');
  const url = new URL(path, base);
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const request = http.request(
      { host: url.hostname, port: url.port, path: url.pathname, method: 'POST', localAddress, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), connection: 'close' }, timeout: 30_000 },
      (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk) => {
          text += chunk;
        });
        response.on('end', () => resolve({ status: response.statusCode, body: text ? JSON.parse(text) : null }));
      },
    );
    request.on('error', reject);
    request.on('timeout', () => request.destroy(new Error('the node did not answer within 30 s')));
    request.end(payload);
  });
}

/** What a device must never send to a node it raised the alarm about: claims, records, rotations, bindings, shares. */
export const ACCEPTING = /^(POST|PUT|PATCH|DELETE) \/api\/v1\/(owner|credentials|recovery)/;

/** The password of the keys a hostile node passes off as the owner's. */
export const FOREIGN_PASSWORD = 'not the owner at all, a thief 19';

/** A key pair the hostile node passes off as the owner's: its public JWK, kid, signing key and wrapped key. */
export async function foreignKey() {
  const { privateJwk, publicJwk } = await generateOwnerKey();
  const { wrappedKey } = await wrapPrivateKey({ ...privateJwk }, FOREIGN_PASSWORD, { p2c: 210_000 });
  const kid = await jwkThumbprint(publicJwk);
  return { publicJwk, kid, wrappedKey, signingKey: await importSigningKey(privateJwk) };
}

/** A key as a JWKS publishes it. */
export const jwksOf = (key) => ({ ...key.publicJwk, kid: key.kid, alg: 'ES384', use: 'sig' });

/** What the page's browser trusts of the node: {kid, head} from localStorage. */
export const trustOf = (page) => page.evaluate(() => JSON.parse(localStorage.getItem('siteid.trust')));

/** The requests a page sends to the node at `base` from now on, as "METHOD /path". */
export function requestsTo(page, base) {
  const seen = [];
  page.on('request', (request) => {
    const url = new URL(request.url());
    if (url.origin === base) seen.push(`${request.method()} ${url.pathname}`);
  });
  return seen;
}
