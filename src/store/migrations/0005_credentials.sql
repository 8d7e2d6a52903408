-- The credential registry. Every key that may sign in is a credential: the owner key is the
-- root credential (its id is its kid, it has no binding and every capability); every other
-- credential carries a binding, a JWS by the owner key over its fields, checked whenever the
-- row is loaded. A revoked credential keeps its row (revoked_at) so that its key stays refused.
CREATE TABLE credential (
    id TEXT PRIMARY KEY,
    kid TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('owner', 'device', 'key')),
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

-- The owner key wrapped under a key-encryption key. Today the one wrapping is under the
-- password (PBES2), guarded by the verifier hash; passkeys will add their own.
CREATE TABLE key_wrapping (
    id INTEGER PRIMARY KEY,
    kid TEXT NOT NULL,
    method TEXT NOT NULL CHECK (method IN ('password')),
    wrapped_key TEXT NOT NULL,
    verifier_hash BLOB NOT NULL CHECK (length(verifier_hash) = 32),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (kid, method)
) STRICT;

-- The owner names which credential is the owner key, so that a later key can replace it.
CREATE TABLE owner_identity (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    kid TEXT NOT NULL REFERENCES credential (kid),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

INSERT INTO credential (id, kid, kind, alg, public_key, label, capabilities, networks,
                        expires_at, binding, created_at, updated_at)
    SELECT kid, kid, 'owner', 'ES384', public_jwk, 'Owner key',
           '["session","sessions","audit","credentials","recovery","owner"]', '[]',
           NULL, NULL, created_at, updated_at
    FROM owner;
INSERT INTO key_wrapping (kid, method, wrapped_key, verifier_hash, created_at, updated_at)
    SELECT kid, 'password', wrapped_key, verifier_hash, created_at, updated_at FROM owner;
INSERT INTO owner_identity (id, kid, created_at, updated_at)
    SELECT 1, kid, created_at, updated_at FROM owner;
DROP TABLE owner;
ALTER TABLE owner_identity RENAME TO owner;

-- Sessions carry their principal: the credential that signed in and its capabilities then.
ALTER TABLE session ADD COLUMN credential_id TEXT NOT NULL DEFAULT '';
ALTER TABLE session ADD COLUMN capabilities TEXT NOT NULL DEFAULT '[]';
UPDATE session SET credential_id = kid,
    capabilities = '["session","sessions","audit","credentials","recovery","owner"]';
