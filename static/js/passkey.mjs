// Passkeys in the browser: registering one (bound by the owner key, with a PRF copy of the owner key where the authenticator supports PRF), signing in with one, and opening the PRF copy on a new device. The PRF output and the KEK derived from it never leave this browser.

import { api } from './api.mjs';
import { decode, encode, utf8 } from './b64url.mjs';
import { CTY, ENC, PRF_ALG, WrappedKeyError, jwkThumbprint, openJwk, parse, sealJwk, signingKeyFromJwk, toPublicJwk } from './wrapped-key.mjs';

const subtle = globalThis.crypto.subtle;

/** The PRF input (WebAuthn `prf.eval.first`) every siteid passkey evaluates. */
export const PRF_INPUT = 'siteid-prf-unlock-v1';
/** HKDF-SHA-256 salt and info that turn a PRF output into the KEK of the PRF copy. */
export const PRF_HKDF_SALT = 'siteid-prf-kek-v1';
export const PRF_HKDF_INFO = 'siteid owner key A256KW';

/**
 * The KEK of a passkey's PRF copy: HKDF-SHA-256 of the PRF output with PRF_HKDF_SALT and PRF_HKDF_INFO, as a
 * non-extractable AES-KW key. The PRF output and the KEK stay in this browser.
 */
export async function passkeyKek(prfOutput) {
  const base = await subtle.importKey('raw', prfOutput, 'HKDF', false, ['deriveKey']);
  const params = { name: 'HKDF', hash: 'SHA-256', salt: utf8(PRF_HKDF_SALT), info: utf8(PRF_HKDF_INFO) };
  return subtle.deriveKey(params, base, { name: 'AES-KW', length: 256 }, false, ['wrapKey', 'unwrapKey']);
}

/** The PRF copy of a private JWK under a KEK from passkeyKek: a compact JWE (A256KW, A256GCM) naming the key's kid. */
export async function wrapForPasskey(privateJwk, kek) {
  return sealJwk(privateJwk, kek, { alg: PRF_ALG, enc: ENC, cty: CTY, kid: await jwkThumbprint(toPublicJwk(privateJwk)) });
}

/** Opens a PRF copy with its KEK and imports the key; resolves with {signingKey, publicJwk, kid} (options: signingKeyFromJwk's). */
export async function unlockWithPasskey(compact, kek, options) {
  const parsed = parse(compact, true);
  let cek;
  try {
    cek = await subtle.unwrapKey('raw', parsed.encryptedKey, kek, 'AES-KW', 'AES-GCM', false, ['decrypt']);
  } catch {
    throw new WrappedKeyError('wrong-password', 'the passkey’s copy of your key does not open with this passkey');
  }
  return signingKeyFromJwk(await openJwk(parsed, cek), options);
}

/** Whether this browser speaks WebAuthn at all. */
export function passkeysSupported() {
  return typeof globalThis.PublicKeyCredential === 'function' && !!navigator.credentials;
}

/** Whether the browser can offer passkeys in the password field's autofill (conditional mediation). */
export async function autofillSupported() {
  try {
    return passkeysSupported() && (await PublicKeyCredential.isConditionalMediationAvailable?.()) === true;
  } catch {
    return false;
  }
}

const prfExtension = () => ({ prf: { eval: { first: utf8(PRF_INPUT) } } });

/** Creation options as the node sends them (base64url strings) turned into what navigator.credentials.create takes. */
function creationOptions({ publicKey }) {
  const { challenge, user, excludeCredentials, extensions, ...rest } = publicKey;
  return {
    ...rest,
    challenge: decode(challenge),
    user: { ...user, id: decode(user.id) },
    excludeCredentials: (excludeCredentials ?? []).map((c) => ({ type: c.type, id: decode(c.id) })),
    extensions: { ...extensions, credProps: true, ...prfExtension() },
  };
}

/** Request options as the node sends them turned into what navigator.credentials.get takes. */
function requestOptions({ publicKey }) {
  const { challenge, allowCredentials, extensions, ...rest } = publicKey;
  return {
    ...rest,
    challenge: decode(challenge),
    allowCredentials: (allowCredentials ?? []).map((c) => ({ type: c.type, id: decode(c.id) })),
    extensions: { ...(extensions ?? {}), ...prfExtension() },
  };
}

/** The PRF output of a ceremony's extension results, or null. */
function prfOutput(credential) {
  const first = credential.getClientExtensionResults?.().prf?.results?.first;
  return first ? new Uint8Array(first) : null;
}

/** A registration answer as the node reads it: no extension outputs (the PRF output stays here), no transports. */
function registrationJson(credential) {
  const { response } = credential;
  return {
    id: credential.id,
    rawId: encode(new Uint8Array(credential.rawId)),
    type: credential.type,
    response: { attestationObject: encode(new Uint8Array(response.attestationObject)), clientDataJSON: encode(new Uint8Array(response.clientDataJSON)) },
    clientExtensionResults: {},
  };
}

/** An assertion as the node reads it, without extension outputs. */
function assertionJson(credential) {
  const { response } = credential;
  const json = {
    id: credential.id,
    rawId: encode(new Uint8Array(credential.rawId)),
    type: credential.type,
    response: {
      authenticatorData: encode(new Uint8Array(response.authenticatorData)),
      clientDataJSON: encode(new Uint8Array(response.clientDataJSON)),
      signature: encode(new Uint8Array(response.signature)),
    },
    clientExtensionResults: {},
  };
  if (response.userHandle) json.response.userHandle = encode(new Uint8Array(response.userHandle));
  return json;
}

/** The new passkey's public key as PEM, for keys.mjs to read into a JWK and thumbprint. */
function publicKeyPem(credential) {
  const der = credential.response.getPublicKey?.();
  if (!der) throw new Error('This browser does not show the new passkey’s public key, so it cannot be bound to your identity. Use a current Chrome, Edge, Firefox or Safari.');
  const base64 = btoa(String.fromCharCode(...new Uint8Array(der)));
  return `-----BEGIN PUBLIC KEY-----\n${base64.match(/.{1,64}/g).join('\n')}\n-----END PUBLIC KEY-----\n`;
}

/** Asks the authenticator once more, for the PRF output only (some give none at creation). */
async function evaluatePrf(rawId) {
  const assertion = await navigator.credentials.get({
    publicKey: {
      challenge: globalThis.crypto.getRandomValues(new Uint8Array(32)),
      allowCredentials: [{ type: 'public-key', id: rawId }],
      userVerification: 'required',
      extensions: prfExtension(),
    },
  });
  return prfOutput(assertion);
}

/**
 * Registers a passkey: the session must have stepped up. ownerKey {signingKey, kid} signs the binding; privateJwk (the
 * owner key's private JWK, when given) is wrapped under the passkey's PRF-derived KEK if the authenticator has PRF.
 * Resolves with {credential, unlocks}: the node's view and whether the passkey unlocks a new device.
 */
export async function registerPasskey({ ownerKey, privateJwk, label, capabilities, bind, readPublicKey }) {
  const { registration_id: registrationId, options } = await api('POST', '/passkeys/registration-options');
  const created = await navigator.credentials.create({ publicKey: creationOptions(options) });
  const id = encode(new Uint8Array(created.rawId));
  const { kid } = await readPublicKey(publicKeyPem(created));
  const binding = await bind(ownerKey, { id, kid, kind: 'passkey', label, capabilities, networks: [], expiresAt: null });
  let prfWrappedKey = null;
  if (privateJwk && created.getClientExtensionResults?.().prf?.enabled !== false) {
    const output = prfOutput(created) ?? (created.getClientExtensionResults?.().prf?.enabled ? await evaluatePrf(created.rawId) : null);
    if (output) {
      prfWrappedKey = await wrapForPasskey(privateJwk, await passkeyKek(output));
      output.fill(0);
    }
  }
  const body = { registration_id: registrationId, credential: registrationJson(created), label, capabilities, networks: [], expires_at: null, binding };
  if (prfWrappedKey) body.prf_wrapped_key = prfWrappedKey;
  const credential = await api('POST', '/passkeys', body);
  return { credential, unlocks: !!prfWrappedKey };
}

/** A passkey assertion over a fresh sign-in challenge; mediation 'conditional' waits for the autofill. */
async function assert({ mediation, signal } = {}) {
  const { sign_in_id: signInId, options } = await api('POST', '/passkeys/sign-in-options');
  const request = { publicKey: requestOptions(options), signal };
  if (mediation) request.mediation = mediation;
  const assertion = await navigator.credentials.get(request);
  if (!assertion) throw new Error('No passkey was chosen.');
  return { signInId, assertion };
}

/**
 * Signs in with a passkey. Resolves with {session, ownerKey}: the node's sign-in answer, and the owner key opened from
 * the passkey's PRF copy where it has one and the authenticator gave a PRF output (else null), as unlockWithPasskey
 * gives it with keyOptions.
 */
export async function signInWithPasskey({ mediation, signal, keyOptions } = {}) {
  const { signInId, assertion } = await assert({ mediation, signal });
  const output = prfOutput(assertion);
  const session = await api('POST', '/auth/passkey', { sign_in_id: signInId, credential: assertionJson(assertion), unlock: output !== null });
  let ownerKey = null;
  if (output && session.prf) {
    try {
      ownerKey = await unlockWithPasskey(session.prf.wrapped_key, await passkeyKek(output), keyOptions);
    } finally {
      output.fill(0);
    }
  }
  return { session, ownerKey };
}

/** Steps the current session (one a passkey signed in) up with a new assertion of that passkey. */
export async function stepUpWithPasskey() {
  const { signInId, assertion } = await assert();
  prfOutput(assertion)?.fill(0);
  await api('POST', '/auth/passkey/reauth', { sign_in_id: signInId, credential: assertionJson(assertion) });
}
