// Strict JSON for the inbox's JOSE objects: one object per text, each member once, and base64url JSON parts.

import { decode, fromUtf8 } from './b64url.mjs';

/** Whether a value is a plain JSON object (not null, not an array). */
export const isObject = (value) => value !== null && typeof value === 'object' && !Array.isArray(value);

/** The first member name that occurs twice in one object of already valid JSON text, or null. */
function duplicateMember(text) {
  const open = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '{') open.push(new Set());
    else if (c === '[') open.push(null);
    else if (c === '}' || c === ']') open.pop();
    else if (c === '"') {
      let end = i + 1;
      while (text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      const token = text.slice(i, end + 1);
      i = end;
      let next = end + 1;
      while (text[next] === ' ' || text[next] === '\t' || text[next] === '\n' || text[next] === '\r') next++;
      if (text[next] !== ':') continue;
      const name = JSON.parse(token);
      const names = open[open.length - 1];
      if (names.has(name)) return name;
      names.add(name);
    }
  }
  return null;
}

/** Parses JSON text that must be one object without duplicate members; throws a plain Error naming what. */
export function jsonObject(text, what) {
  let value;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Error(`the ${what} is not JSON`);
  }
  if (!isObject(value)) throw new Error(`the ${what} is not a JSON object`);
  const twice = duplicateMember(text);
  if (twice !== null) throw new Error(`the ${what} has the member ${twice} twice`);
  return value;
}

/** Parses the base64url JSON object of one JOSE part; throws a plain Error naming what. */
export function jsonPart(part, what) {
  let text;
  try {
    text = fromUtf8(decode(part));
  } catch {
    throw new Error(`the ${what} is not base64url UTF-8`);
  }
  return jsonObject(text, what);
}
