// Tests of the local password strength estimate used by the setup and password-change forms.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MIN_LENGTH, MIN_SCORE, estimate, refusal } from '../../static/js/strength.mjs';

describe('estimate', () => {
  it('scores common passwords, sequences, repeats and years as very weak, even with digits for letters', () => {
    for (const password of ['password1234', 'P@ssw0rd2024', 'qwertyuiop12', '123456789012', 'aaaaaaaaaaaa', 'abcabcabcabc', 'Password1234!']) {
      assert.equal(estimate(password).score, 0, password);
    }
  });

  it('names the patterns it found in its advice', () => {
    const { advice } = estimate('P@ssw0rd2024');
    assert.ok(advice.some((a) => a.includes('common words')), advice.join(' '));
    assert.ok(advice.some((a) => a.includes('years')), advice.join(' '));
    assert.ok(estimate('qwerty').advice.some((a) => a.includes(`${MIN_LENGTH} characters`)));
  });

  it('rates passphrases by their words: two are weak, three fair, four strong', () => {
    assert.equal(estimate('horse battery').score, 1);
    assert.equal(estimate('blue mango river').score, 2);
    assert.equal(estimate('correct horse battery staple').score, 3);
    assert.equal(estimate('correct horse battery staple 42').score, 4);
  });

  it('rates long random strings and Unicode passphrases as very strong', () => {
    assert.equal(estimate('kT9#vLq2!xWz').score, 4);
    assert.equal(estimate('Grüße, café ☃ 🔑 correct horse').score, 4);
  });

  it('caps anything shorter than the minimum length at weak', () => {
    assert.ok(estimate('kT9#vLq2!xW').score <= 1);
  });

  it('labels every score and always gives advice', () => {
    for (const password of ['', 'a', 'horse battery', 'correct horse battery staple 42']) {
      const { score, label, advice } = estimate(password);
      assert.ok(score >= 0 && score <= 4);
      assert.equal(typeof label, 'string');
      assert.ok(advice.length > 0);
    }
  });
});

describe('refusal', () => {
  it('refuses short, weak and mismatched passwords and accepts a good one', () => {
    assert.match(refusal('short', 'short'), /at least 12/);
    assert.match(refusal('password1234', 'password1234'), /too easy/);
    assert.match(refusal('blue mango river', 'blue mango rivers'), /differ/);
    assert.equal(refusal('blue mango river', 'blue mango river'), '');
    assert.ok(estimate('blue mango river').score >= MIN_SCORE);
  });
});
