// Tests of static/js/node-check.mjs (audit chain): entry hashes agree with an independent node:crypto implementation of
// the protocol's rule, a chain that extends the remembered head is followed across pages, and a chain rewritten from
// the start, shortened, renumbered or with a changed entry raises the alarm.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { NodeAlarm, auditEntryHash, followAuditChain, hex } from '../../static/js/node-check.mjs';
import { referenceAuditHash, referenceChain } from './helpers.mjs';

const digest = (text) => createHash('sha256').update(text).digest('hex');

/** Ten entries with every kind of field: digested and plain addresses, no address, no user agent, Unicode, no detail. */
const ENTRIES = Array.from({ length: 10 }, (_, i) => ({
  seq: i + 1,
  at: 1_700_000_000 + i * 61,
  event: ['owner.claimed', 'session.created', 'credential.added', 'owner.rotated'][i % 4],
  ip: i % 3 === 0 ? '203.0.113.0/24' : i % 3 === 1 ? '127.0.0.1' : null,
  ip_digest: i % 3 === 0 ? digest(`address ${i}`) : null,
  user_agent: i % 2 ? 'Mozilla/5.0 (X11; Linux x86_64) Chromium' : null,
  detail: i === 4 ? null : JSON.stringify({ label: `Grüße ☃ 🔑 ${i}`, n: i }),
}));

const CHAIN = referenceChain(ENTRIES);

/** A node answering GET /api/v1/audit/chain from entries (oldest first), recording the pages asked for. */
function node(entries, { base = null, head = entries.at(-1) } = {}) {
  const asked = [];
  const fetchPage = async (after, limit) => {
    asked.push(after);
    const page = entries.filter((e) => e.seq > after).slice(0, limit);
    return { base, head: { seq: head.seq, hash: head.hash }, entries: page, more: page.length > 0 && page.at(-1).seq < entries.at(-1).seq };
  };
  return { fetchPage, asked };
}

const at = (seq) => ({ seq, hash: CHAIN[seq - 1].hash });

async function alarmOf(promise) {
  await assert.rejects(promise, (error) => error instanceof NodeAlarm && error.kind === 'audit-rewritten' && error.message.length > 10);
}

test('entry hashes agree with the independent implementation of the rule', async () => {
  let prev = new Uint8Array(32);
  for (const entry of CHAIN) {
    const hash = hex(await auditEntryHash(prev, entry));
    assert.equal(hash, entry.hash, `entry ${entry.seq}`);
    prev = Uint8Array.from(Buffer.from(hash, 'hex'));
  }
  // Every member counts; an address counts through its digest when it has one (so that it can be cut later).
  const before = Buffer.from(CHAIN[3].hash, 'hex');
  for (const change of [{ at: 1 }, { event: 'x' }, { ip: '10.0.0.1' }, { ip_digest: digest('other') }, { user_agent: 'curl' }, { detail: '{}' }, { seq: 99 }]) {
    const changed = { ...CHAIN[4], ...change };
    assert.notEqual(hex(await auditEntryHash(before, changed)), CHAIN[4].hash, JSON.stringify(change));
    assert.equal(referenceAuditHash(CHAIN[3].hash, changed), hex(await auditEntryHash(before, changed)));
  }
  const cut = { ...CHAIN[3], ip: '203.0.113.7' };
  assert.equal(hex(await auditEntryHash(Buffer.from(CHAIN[2].hash, 'hex'), cut)), CHAIN[3].hash);
});

test('a chain that extends the remembered head is followed across pages to the node’s head', async () => {
  const { fetchPage, asked } = node(CHAIN);
  assert.deepEqual(await followAuditChain(at(3), fetchPage, { limit: 2 }), at(10));
  assert.deepEqual(asked, [3, 5, 7, 9]);
  assert.deepEqual(await followAuditChain(at(10), node(CHAIN).fetchPage), at(10), 'nothing new');
});

test('without a remembered head the device takes the node’s head as it is', async () => {
  const { fetchPage, asked } = node(CHAIN);
  assert.deepEqual(await followAuditChain(null, fetchPage), at(10));
  assert.deepEqual(asked, [0]);
});

test('a chain rewritten from the start raises the alarm, even though it is consistent in itself', async () => {
  const rewritten = referenceChain(ENTRIES.map((e) => (e.seq === 1 ? { ...e, detail: '{"note":"forged"}' } : e)));
  await alarmOf(followAuditChain(at(4), node(rewritten).fetchPage));
  await alarmOf(followAuditChain(at(10), node(rewritten).fetchPage), 'no new entries, another head hash');
  // The same chain checks from its own start, so it is the link to the remembered head that fails.
  assert.deepEqual(await followAuditChain({ seq: 4, hash: rewritten[3].hash }, node(rewritten).fetchPage), { seq: 10, hash: rewritten[9].hash });
});

test('a changed, removed or renumbered entry after the head raises the alarm', async () => {
  const changed = CHAIN.map((e) => (e.seq === 6 ? { ...e, detail: '{}' } : e));
  await alarmOf(followAuditChain(at(4), node(changed).fetchPage));
  const removed = CHAIN.filter((e) => e.seq !== 6);
  await alarmOf(followAuditChain(at(4), node(removed).fetchPage));
  // Removing entry 6 and renumbering the rest changes what this device saw at entry 7.
  const renumbered = referenceChain(ENTRIES.filter((e) => e.seq !== 6).map((e, i) => ({ ...e, seq: i + 1 })));
  await alarmOf(followAuditChain(at(7), node(renumbered).fetchPage));
});

test('a log shorter than the remembered head, or a head the chain does not lead to, raises the alarm', async () => {
  await alarmOf(followAuditChain(at(10), node(CHAIN.slice(0, 7)).fetchPage));
  await alarmOf(followAuditChain(at(4), node(CHAIN.slice(0, 8), { head: CHAIN[9] }).fetchPage));
  await alarmOf(followAuditChain(at(4), node(CHAIN, { head: { seq: 10, hash: CHAIN[8].hash } }).fetchPage));
});

test('a node pruned past the remembered head cannot be checked, and the device starts again from its head', async () => {
  const pruned = CHAIN.slice(6);
  assert.deepEqual(await followAuditChain(at(3), node(pruned, { base: { seq: 6, hash: CHAIN[5].hash } }).fetchPage), at(10));
  // A base at or before the remembered head is no excuse.
  const forged = referenceChain(ENTRIES.slice(5), 'f'.repeat(64));
  await alarmOf(followAuditChain(at(5), node(forged, { base: { seq: 5, hash: 'f'.repeat(64) } }).fetchPage));
});

test('malformed answers raise the alarm, and a node that never stops saying "more" cannot hold the device', async () => {
  await alarmOf(followAuditChain(at(4), async () => ({ head: { seq: 10, hash: 'XYZ' }, entries: [], more: false })));
  await alarmOf(followAuditChain(at(4), async () => ({ head: at(10), entries: [{ ...CHAIN[4], at: '1' }], more: false })));
  await alarmOf(followAuditChain(at(4), async () => ({ head: at(10), more: false })));
  let calls = 0;
  await alarmOf(followAuditChain(at(4), async () => (calls++, { head: at(10), entries: [], more: true })));
  assert.equal(calls, 1);
  // With entries on every page, the device stops after maxPages and keeps what it verified.
  const { fetchPage, asked } = node(CHAIN);
  assert.deepEqual(await followAuditChain(at(1), fetchPage, { limit: 1, maxPages: 3 }), at(4));
  assert.equal(asked.length, 3);
});
