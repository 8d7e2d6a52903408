// End-to-end inbox tests against the real binary on loopback: npm jose and static/js/inbox-crypto.mjs interoperate through a node, and two nodes exchange signed messages with `siteid inbox send`.
// Needs `cargo build` first (or SITEID_BIN pointing at a built binary).

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as jose from 'jose';
import * as inbox from '../../static/js/inbox-crypto.mjs';
import { generateOwnerKey, importSigningKey } from '../../static/js/wrapped-key.mjs';
import { TestNode, claimNode, requireBinary, runCli, signIn } from './inbox-helpers.mjs';

const LDN_INBOX = 'http://www.w3.org/ns/ldp#inbox';
const utf8 = (text) => new TextEncoder().encode(text);
const text = (bytes) => new TextDecoder('utf-8', { fatal: true }).decode(bytes);

/** The published keys of a node: {sig, enc, link} from its JWKS answer. */
async function publishedKeys(node) {
  const res = await node.call('GET', '/.well-known/jwks.json');
  assert.equal(res.status, 200, `GET /.well-known/jwks.json on ${node.base}: ${res.status} ${JSON.stringify(res.body)}`);
  const byUse = (use) => res.body.keys.filter((k) => k.use === use);
  assert.equal(byUse('sig').length, 1, JSON.stringify(res.body));
  assert.ok(byUse('enc').length <= 1, JSON.stringify(res.body));
  return { sig: byUse('sig')[0], enc: byUse('enc')[0], link: res.headers.get('link') };
}

/** Opens the node's current encryption key as a reading device does: fetched with the session, opened with the owner key. */
async function openCurrentKey(node, owner, token) {
  const { keys } = await node.expect(200, 'GET', '/api/v1/owner/encryption-keys', { token });
  assert.ok(keys.length >= 1, 'the owner has an encryption key');
  const [current] = keys;
  assert.equal(current.kid, owner.enc.kid);
  assert.deepEqual(current.public_key, owner.enc.publicJwk);
  assert.equal(current.retired_at, null);
  const opened = await inbox.openEncryptionKey(owner.privateJwk, current.wrapped_key, current.kid);
  assert.equal(opened.kid, owner.enc.kid);
  assert.equal(opened.privateKey.extractable, false, 'the opened encryption key is not extractable');
  assert.deepEqual(opened.privateKey.usages, ['deriveBits']);
  return opened.privateKey;
}

/** Posts a message without a session; resolves with its id after checking the 201 answer. */
async function postMessage(node, message) {
  const res = await node.call('POST', '/api/v1/inbox', { body: { message } });
  assert.equal(res.status, 201, `POST /api/v1/inbox: ${res.status} ${JSON.stringify(res.body)}`);
  assert.equal(typeof res.body.id, 'string');
  assert.equal(res.headers.get('location'), `/api/v1/inbox/${res.body.id}`);
  return res.body.id;
}

/** Fetches one message with the session, through the list and by id; checks both carry it exactly as stored. */
async function fetchMessage(node, token, id, kid) {
  const list = await node.expect(200, 'GET', '/api/v1/inbox', { token });
  const listed = list.messages.find((m) => m.id === id);
  assert.ok(listed, `message ${id} is in the list ${JSON.stringify(list.messages.map((m) => m.id))}`);
  const one = await node.expect(200, 'GET', `/api/v1/inbox/${encodeURIComponent(id)}`, { token });
  assert.deepEqual(one, listed, 'the message by id is the listed one');
  assert.equal(one.kid, kid);
  assert.equal(one.read_at, null);
  assert.ok(Number.isInteger(one.received_at) && Number.isInteger(one.size) && one.size > 0, JSON.stringify(one));
  if (typeof one.message === 'string') assert.equal(one.size, one.message.length, 'the size of a compact message is its length');
  return one.message;
}

/** A P-384 key made by node:crypto: its private JWK and its PKCS#8 PEM written to dir/name.pem. */
async function nodeCryptoKey(dir, name) {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
  const file = path.join(dir, `${name}.pem`);
  await writeFile(file, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  return { privateJwk: privateKey.export({ format: 'jwk' }), file };
}

/** Starts nodes, stopping the ones that started when another fails. */
async function startNodes(...labels) {
  const started = await Promise.allSettled(labels.map((label) => TestNode.start(label)));
  const failed = started.find((s) => s.status === 'rejected');
  if (failed) {
    await Promise.all(started.filter((s) => s.status === 'fulfilled').map((s) => s.value.stop()));
    throw failed.reason;
  }
  return started.map((s) => s.value);
}

describe('a message from an independent JOSE library and one from the browser module cross a real node both ways', () => {
  let node;
  let owner;
  let token;
  let readingKey;
  const nodes = [];

  before(async () => {
    requireBinary();
    [node] = await startNodes('interop');
    nodes.push(node);
    owner = await claimNode(node, (await generateOwnerKey()).privateJwk);
    token = await signIn(node, owner);
    readingKey = await openCurrentKey(node, owner, token);
  });

  after(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
  });

  it('publishes the encryption key beside the signing key, with its own kid and use enc', async () => {
    const { sig, enc, link } = await publishedKeys(node);
    assert.equal(sig.kid, owner.kid);
    assert.deepEqual(enc, { ...owner.enc.publicJwk, kid: owner.enc.kid, alg: 'ECDH-ES+A256KW', use: 'enc' });
    assert.notEqual(enc.kid, sig.kid);
    assert.equal(link, `<${node.base}/api/v1/inbox>; rel="${LDN_INBOX}"`);
  });

  it('stores a compact ECDH-ES+A256KW message that jose encrypted, which the browser module decrypts with a non-extractable key', async () => {
    const { enc } = await publishedKeys(node);
    const body = { subject: 'Compact from jose', text: 'Grüße aus jose ☃ — compact serialization' };
    const jwe = await new jose.CompactEncrypt(utf8(JSON.stringify(body)))
      .setProtectedHeader({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM', kid: enc.kid })
      .encrypt(await jose.importJWK(enc, 'ECDH-ES+A256KW'));
    const id = await postMessage(node, jwe);
    const stored = await fetchMessage(node, token, id, enc.kid);
    assert.equal(stored, jwe, 'the node keeps the compact JWE exactly as sent');
    const header = inbox.messageHeader(stored);
    assert.equal(header.alg, 'ECDH-ES+A256KW');
    assert.equal(header.kid, enc.kid);
    const plaintext = await inbox.decryptMessage(readingKey, stored);
    assert.equal(text(plaintext), JSON.stringify(body));
    assert.deepEqual(inbox.parsePlaintext(plaintext), { kind: 'plain', text: body.text, body });
  });

  it('stores a general JSON ECDH-ES message that jose encrypted, which the browser module decrypts', async () => {
    const { enc } = await publishedKeys(node);
    const message = 'Plain UTF-8 from jose, general JSON serialization, direct key agreement.';
    const jwe = await new jose.GeneralEncrypt(utf8(message))
      .setProtectedHeader({ enc: 'A256GCM' })
      .addRecipient(await jose.importJWK(enc, 'ECDH-ES'))
      .setUnprotectedHeader({ alg: 'ECDH-ES', kid: enc.kid })
      .encrypt();
    assert.equal(jwe.recipients.length, 1);
    assert.equal(jwe.recipients[0].encrypted_key, undefined, 'ECDH-ES carries no encrypted key');
    const id = await postMessage(node, jwe);
    const stored = await fetchMessage(node, token, id, enc.kid);
    assert.deepEqual(stored, jwe, 'the node keeps the general JSON JWE exactly as sent');
    assert.equal(inbox.messageHeader(stored).alg, 'ECDH-ES');
    const plaintext = await inbox.decryptMessage(readingKey, stored);
    assert.deepEqual(inbox.parsePlaintext(plaintext), { kind: 'plain', text: message, body: { text: message } });
  });

  for (const alg of ['ECDH-ES+A256KW', 'ECDH-ES']) {
    it(`stores a ${alg} message the browser module encrypted to the published key, which jose decrypts with the private JWK`, async () => {
      const { enc } = await publishedKeys(node);
      const message = `From the browser module with ${alg}: ¿qué tal? 🔐`;
      const jwe = await inbox.encryptMessage(enc, utf8(message), { kid: enc.kid, alg });
      const id = await postMessage(node, jwe);
      const stored = await fetchMessage(node, token, id, enc.kid);
      assert.equal(stored, jwe);
      const { plaintext, protectedHeader } = await jose.compactDecrypt(stored, await jose.importJWK(owner.enc.privateJwk, alg), {
        keyManagementAlgorithms: [alg],
        contentEncryptionAlgorithms: ['A256GCM'],
      });
      assert.equal(text(plaintext), message);
      assert.equal(protectedHeader.alg, alg);
      assert.equal(protectedHeader.enc, 'A256GCM');
      assert.equal(protectedHeader.kid, enc.kid);
    });
  }
});

describe('two siteid nodes exchange signed messages with the command line and each verifies the other', () => {
  let keyDir;
  const nodes = [];
  const site = {};

  before(async () => {
    requireBinary();
    keyDir = await mkdtemp(path.join(tmpdir(), 'siteid-inbox-keys-'));
    const [a, b] = await startNodes('a', 'b');
    nodes.push(a, b);
    for (const [name, node] of [['a', a], ['b', b]]) {
      const key = await nodeCryptoKey(keyDir, name);
      site[name] = { node, keyFile: key.file, owner: await claimNode(node, key.privateJwk) };
    }
    site.stranger = await nodeCryptoKey(keyDir, 'stranger');
  });

  after(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    if (keyDir) await rm(keyDir, { recursive: true, force: true });
  });

  /**
   * Runs `siteid inbox send` from one site to the other, naming the sender with --from (or, with fromDataDir, letting
   * the command read the sender node's public URL from its data directory); resolves with the printed message id.
   */
  async function send(from, to, { keyFile = from.keyFile, subject, textBody, fromDataDir = false }) {
    const sender = fromDataDir ? ['--data-dir', from.node.dataDir] : ['--from', from.node.base];
    const res = await runCli(['inbox', 'send', '--to', to.node.base, '--from-key', keyFile, ...sender, '--subject', subject, '--text', textBody]);
    assert.equal(res.code, 0, `siteid inbox send ${from.node.base} → ${to.node.base} failed (${res.code}): ${res.stderr}`);
    const id = res.stdout.trim();
    assert.match(id, /^\S+$/, `siteid inbox send printed ${JSON.stringify(res.stdout)}, expected a message id`);
    return id;
  }

  /**
   * Reads a message as the recipient's browser does: signs in, fetches, decrypts with its encryption key, parses the
   * plaintext and checks the signature against the sender keys its own node fetched. Resolves {verification, claims, header}.
   */
  async function readSigned(recipient, id) {
    const token = await signIn(recipient.node, recipient.owner);
    const key = await openCurrentKey(recipient.node, recipient.owner, token);
    const stored = await fetchMessage(recipient.node, token, id, recipient.owner.enc.kid);
    const header = inbox.messageHeader(stored);
    const parsed = inbox.parsePlaintext(await inbox.decryptMessage(key, stored));
    assert.equal(parsed.kind, 'signed', `the plaintext is a ${inbox.MESSAGE_TYP}`);
    const { claims } = inbox.unverifiedClaims(parsed.jws);
    const keys = await recipient.node.expect(200, 'GET', `/api/v1/inbox/sender-keys?iss=${encodeURIComponent(claims.iss)}`, { token });
    const verification = await inbox.verifyMessage(parsed.jws, { jwks: { keys: keys.keys }, expectedIss: keys.iss, expectedAud: recipient.node.base });
    return { verification, claims, header, senderKeys: keys };
  }

  it("announces each node's inbox with a Linked Data Notifications Link on its JWKS answer", async () => {
    for (const { node, owner } of [site.a, site.b]) {
      const { sig, enc, link } = await publishedKeys(node);
      assert.equal(sig.kid, owner.kid);
      assert.equal(enc.kid, owner.enc.kid);
      assert.equal(link, `<${node.base}/api/v1/inbox>; rel="${LDN_INBOX}"`);
    }
  });

  for (const [from, to] of [['a', 'b'], ['b', 'a']]) {
    it(`delivers a message signed by ${from.toUpperCase()}'s owner key to ${to.toUpperCase()}, which verifies it as from ${from.toUpperCase()}`, async () => {
      const sender = site[from];
      const recipient = site[to];
      const subject = `Hello from ${from.toUpperCase()}`;
      const textBody = `Site ${from.toUpperCase()} writes to site ${to.toUpperCase()}: “verified”, ünïcödé, 🔏.`;
      const id = await send(sender, recipient, { subject, textBody });
      const { verification, header, senderKeys } = await readSigned(recipient, id);
      assert.equal(header.alg, 'ECDH-ES+A256KW');
      assert.equal(header.kid, recipient.owner.enc.kid);
      assert.equal(header.cty, 'JWT');
      assert.equal(senderKeys.iss, sender.node.base);
      assert.equal(senderKeys.inbox, `${sender.node.base}/api/v1/inbox`);
      assert.equal(verification.verified, true, `verification failed: ${verification.reason}`);
      assert.equal(verification.iss, sender.node.base);
      assert.equal(verification.kid, sender.owner.kid);
      assert.deepEqual(verification.body, { subject, text: textBody });
    });
  }

  it("signs with the sending node's own public URL as iss when --from is left out", async () => {
    const id = await send(site.a, site.b, { subject: 'No --from', textBody: 'The iss comes from the data directory.', fromDataDir: true });
    const { verification, claims } = await readSigned(site.b, id);
    assert.equal(claims.iss, site.a.node.base);
    assert.equal(claims.aud, site.b.node.base);
    assert.equal(verification.verified, true, `verification failed: ${verification.reason}`);
    assert.equal(verification.body.text, 'The iss comes from the data directory.');
  });

  it('shows a message signed from the command line with a key the sender does not publish as unverified', async () => {
    const id = await send(site.a, site.b, { keyFile: site.stranger.file, subject: 'Not really A', textBody: 'Signed by a stranger, claiming to be A.' });
    const { verification, claims } = await readSigned(site.b, id);
    assert.equal(claims.iss, site.a.node.base);
    assert.equal(verification.verified, false);
    assert.match(verification.reason, /publishes no ES384 signing key/);
    assert.equal(verification.claims.body.text, 'Signed by a stranger, claiming to be A.', 'a forged message stays readable');
  });

  it("shows a message forged with the sender's owner kid but signed by another key as unverified", async () => {
    const { sig, enc } = await publishedKeys(site.b.node);
    assert.equal(sig.kid, site.b.owner.kid);
    const forger = await importSigningKey({ ...site.stranger.privateJwk });
    const body = { subject: 'Forged', text: 'This claims A’s owner kid but is signed by another key.' };
    const jws = await inbox.signMessage(forger, { kid: site.a.owner.kid, iss: site.a.node.base, aud: site.b.node.base, body });
    const id = await postMessage(site.b.node, await inbox.encryptMessage(enc, utf8(jws), { kid: enc.kid, cty: 'JWT' }));
    const { verification, claims } = await readSigned(site.b, id);
    assert.equal(claims.iss, site.a.node.base);
    assert.equal(verification.verified, false);
    assert.match(verification.reason, /signature does not verify/);
    assert.deepEqual(verification.claims.body, body);
  });
});

describe('the command line refuses to send to a node without an encryption key', () => {
  const nodes = [];
  let keyDir;
  let bare;
  let keyFile;

  before(async () => {
    requireBinary();
    keyDir = await mkdtemp(path.join(tmpdir(), 'siteid-inbox-keys-'));
    [bare] = await startNodes('bare');
    nodes.push(bare);
    await claimNode(bare, (await nodeCryptoKey(keyDir, 'owner')).privateJwk, { withEncryptionKey: false });
    keyFile = (await nodeCryptoKey(keyDir, 'sender')).file;
  });

  after(async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    if (keyDir) await rm(keyDir, { recursive: true, force: true });
  });

  it('publishes no encryption key and no inbox Link for an owner without an encryption key', async () => {
    const { sig, enc, link } = await publishedKeys(bare);
    assert.ok(sig);
    assert.equal(enc, undefined);
    assert.equal(link, null);
  });

  it('exits non-zero with a message naming the missing encryption key, and sends nothing', async () => {
    const res = await runCli(['inbox', 'send', '--to', bare.base, '--from-key', keyFile, '--from', 'http://127.0.0.1:9', '--text', 'Nobody can read this.']);
    assert.notEqual(res.code, 0, `siteid inbox send to a node without an encryption key must fail; stdout ${JSON.stringify(res.stdout)}`);
    assert.equal(res.stdout, '', 'no message id is printed');
    assert.match(res.stderr, /encryption key/, `stderr: ${res.stderr}`);
    assert.ok(res.stderr.includes(`${bare.base}/.well-known/jwks.json`), `the refusal names the JWKS it read; stderr: ${res.stderr}`);
    const direct = await bare.call('POST', '/api/v1/inbox', { body: { message: 'a.b.c.d.e' } });
    assert.equal(direct.status, 404, JSON.stringify(direct.body));
    assert.equal(direct.body.type, 'urn:siteid:problem:no-encryption-key');
  });
});
