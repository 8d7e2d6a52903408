// A small local password strength estimate: length, character classes and common patterns, scored 0-4 with plain advice.

/** The fewest characters a password may have. */
export const MIN_LENGTH = 12;
/** The lowest score a new password may have. */
export const MIN_SCORE = 2;

const LABELS = ['Very weak', 'Weak', 'Fair', 'Strong', 'Very strong'];
const COMMON = ('password passwort passe contrase admin administrator letmein welcome qwerty azerty iloveyou ' +
  'monkey dragon master shadow sunshine princess football baseball soccer hockey superman batman trustno ' +
  'secret login siteid identity access hello freedom whatever charlie michael jordan computer internet ' +
  'summer winter spring autumn love starwars pokemon cookie flower ninja mustang abc123 changeme default').split(' ');
const RUNS = ['abcdefghijklmnopqrstuvwxyz', '01234567890', 'qwertyuiop', 'asdfghjkl', 'zxcvbnm', 'qwertzuiop', 'azertyuiop'];
const LEET = { '@': 'a', 4: 'a', 8: 'b', 3: 'e', 1: 'i', '!': 'i', 0: 'o', $: 's', 5: 's', 7: 't', '+': 't' };

function charsetSize(chars) {
  let size = 0;
  if (chars.some((c) => /[a-z]/.test(c))) size += 26;
  if (chars.some((c) => /[A-Z]/.test(c))) size += 26;
  if (chars.some((c) => /[0-9]/.test(c))) size += 10;
  if (chars.some((c) => /[ -/:-@[-`{-~]/.test(c))) size += 33;
  if (chars.some((c) => c > '~')) size += 100;
  return size;
}

/** The longest pattern starting at i: [length, bits, kind] or null; lower is lowercased, leet also undoes digit-for-letter swaps. */
function patternAt(lower, leet, i) {
  let best = null;
  const offer = (length, bits, kind) => {
    if (!best || length > best[0]) best = [length, bits, kind];
  };
  for (const word of COMMON) if (leet.startsWith(word, i) || lower.startsWith(word, i)) offer(word.length, 5, 'common');
  for (const run of RUNS) {
    for (const seq of [run, [...run].reverse().join('')]) {
      const start = seq.indexOf(lower[i]);
      let n = 0;
      while (start >= 0 && i + n < lower.length && lower[i + n] === seq[start + n]) n++;
      if (n >= 3) offer(n, 4 + Math.log2(n), 'sequence');
    }
  }
  let repeat = 1;
  while (lower[i + repeat] === lower[i]) repeat++;
  if (repeat >= 3) offer(repeat, 3 + Math.log2(repeat), 'repeat');
  if (/^(19|20)\d\d/.test(lower.slice(i, i + 4))) offer(4, 7, 'year');
  for (let len = 2; len <= 6; len++) {
    const unit = lower.slice(i, i + len);
    let copies = 1;
    while (unit.length === len && lower.startsWith(unit, i + copies * len)) copies++;
    if (copies >= 2 && len * copies >= 4) offer(len * copies, len * 4 + Math.log2(copies), 'repeat');
  }
  return best;
}

/**
 * Estimates how hard a password is to guess. Returns {score 0-4, label, bits, advice: [plain sentences]}.
 * It is a rough local guide (the password never leaves the page), not a promise.
 */
export function estimate(password) {
  const chars = [...password];
  // One UTF-16 unit per code point keeps both strings aligned with `chars`.
  const lower = chars.map((c) => (c.toLowerCase().length === 1 ? c.toLowerCase() : '\0')).join('');
  const leet = [...lower].map((c) => LEET[c] ?? c).join('');
  const perChar = Math.log2(Math.max(charsetSize(chars), 10));
  const found = new Set();
  let bits = 0;
  let gap = '';
  // Text outside known patterns: lowercase runs count as dictionary words, separators little, the rest per character.
  const flush = () => {
    for (const [piece] of gap.matchAll(/\p{Ll}{3,}|[\s\-_.,;:]|[^]/gu)) {
      if (piece.length >= 3) bits += Math.min(piece.length * Math.log2(26), 12 + piece.length / 2);
      else bits += /[\s\-_.,;:]/.test(piece) ? 1.5 : perChar;
    }
    gap = '';
  };
  for (let i = 0; i < lower.length; ) {
    const pattern = patternAt(lower, leet, i);
    if (pattern) {
      flush();
      found.add(pattern[2]);
      bits += pattern[1];
      i += pattern[0];
    } else {
      gap += chars[i];
      i += 1;
    }
  }
  flush();
  const words = password.split(/[\s\-_.,;:]+/).filter((w) => w.length >= 3).length;
  let score = bits < 28 ? 0 : bits < 40 ? 1 : bits < 55 ? 2 : bits < 70 ? 3 : 4;
  if (chars.length < MIN_LENGTH) score = Math.min(score, 1);
  const advice = [];
  if (chars.length < MIN_LENGTH) advice.push(`Use at least ${MIN_LENGTH} characters.`);
  if (found.has('common')) advice.push('Avoid common words and passwords such as “password” or “qwerty”, even with letters swapped for digits.');
  if (found.has('sequence')) advice.push('Avoid sequences such as “abc”, “1234” or keyboard rows.');
  if (found.has('repeat')) advice.push('Avoid repeated characters and repeated chunks.');
  if (found.has('year')) advice.push('Avoid years and dates.');
  if (score < 3) advice.push(words >= 2 ? 'Add another unrelated word or two.' : 'A passphrase of four or more unrelated words is both strong and easy to remember.');
  if (score >= 3 && !advice.length) advice.push(score === 4 ? 'Good. Keep it in a password manager or somewhere safe offline.' : 'Good. One more unrelated word would make it very strong.');
  return { score, label: LABELS[score], bits: Math.round(bits), advice };
}

/** Why a new password cannot be used, or '' when it can. */
export function refusal(password, again) {
  if ([...password].length < MIN_LENGTH) return `The password must have at least ${MIN_LENGTH} characters.`;
  if (estimate(password).score < MIN_SCORE) return 'This password is too easy to guess. Follow the advice under the strength meter.';
  if (password !== again) return 'The two passwords differ. Type the same password twice.';
  return '';
}

/** Shows the estimate for a password in an element: the label in bold, then the advice; nothing for an empty password. */
export function renderStrength(element, password) {
  const { label, advice } = estimate(password);
  const strong = document.createElement('strong');
  strong.textContent = `${label}.`;
  element.replaceChildren(...(password ? [strong, ` ${advice.join(' ')}`] : []));
}
