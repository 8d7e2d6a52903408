-- Passkeys. A passkey is a credential of kind 'passkey': its row holds the passkey's public key
-- as a JWK (converted from its COSE key), its kid is that JWK's thumbprint and its id is the
-- WebAuthn credential id (base64url), so the owner key's binding covers both. The WebAuthn
-- state (counter, backup flags, the key as webauthn-rs keeps it) lives beside it in `passkey`,
-- with the optional PRF copy of the owner key: a JWE the node cannot open.
--
-- The credential table is rebuilt to allow the new kind (foreign keys are off while a
-- migration runs, and checked before it commits).
CREATE TABLE credential_next (
    id TEXT PRIMARY KEY,
    kid TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('owner', 'device', 'key', 'passkey')),
    alg TEXT NOT NULL,
    public_key TEXT NOT NULL,
    label TEXT NOT NULL,
    capabilities TEXT NOT NULL,
    networks TEXT NOT NULL,
    expires_at INTEGER,
    binding TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at INTEGER,
    CHECK ((kind = 'owner') = (binding IS NULL))
) STRICT;
INSERT INTO credential_next SELECT * FROM credential;
DROP TABLE credential;
ALTER TABLE credential_next RENAME TO credential;

CREATE TABLE passkey (
    credential_id TEXT PRIMARY KEY REFERENCES credential (id),
    state TEXT NOT NULL,
    aaguid TEXT,
    sign_count INTEGER NOT NULL CHECK (sign_count >= 0),
    backup_eligible INTEGER NOT NULL CHECK (backup_eligible IN (0, 1)),
    backed_up INTEGER NOT NULL CHECK (backed_up IN (0, 1)),
    prf_wrapped_key TEXT,
    prf_kid TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    CHECK ((prf_wrapped_key IS NULL) = (prf_kid IS NULL))
) STRICT;
