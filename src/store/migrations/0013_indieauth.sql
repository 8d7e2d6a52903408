-- The IndieAuth provider (issue 15).
--
-- The owner key's credential and its live sessions gain capability `indieauth`.
UPDATE credential
SET capabilities = '["session","sessions","audit","credentials","recovery","owner","inbox","indieauth"]'
WHERE kind = 'owner';
UPDATE session
SET capabilities = '["session","sessions","audit","credentials","recovery","owner","inbox","indieauth"]'
WHERE capabilities = '["session","sessions","audit","credentials","recovery","owner","inbox"]';

-- Authorization codes, stored as the SHA-256 of the code. Each is bound to its client, its
-- redirect URL, its PKCE challenge, the scopes the owner granted and the credential whose
-- session approved it. `used_at` marks a redemption; `grant_id` names the grant it created, so
-- that a second redemption can revoke it; `reused_at` marks the first time a used code came back
-- (only that one is audited).
CREATE TABLE indieauth_code (
    code_hash BLOB PRIMARY KEY,
    client_id TEXT NOT NULL,
    redirect_uri TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    scope TEXT NOT NULL,
    credential_id TEXT NOT NULL,
    client_name TEXT,
    client_uri TEXT,
    lifetime INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at INTEGER,
    grant_id TEXT,
    reused_at INTEGER
) STRICT;
CREATE INDEX indieauth_code_expiry ON indieauth_code (expires_at);

-- What a client was granted: its scopes, until when, and by which credential. Its tokens live
-- only while the grant is neither revoked nor expired and the credential is live.
CREATE TABLE indieauth_grant (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    client_name TEXT,
    client_uri TEXT,
    redirect_uri TEXT NOT NULL,
    scope TEXT NOT NULL,
    credential_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER,
    revoked_reason TEXT
) STRICT;
CREATE INDEX indieauth_grant_credential ON indieauth_grant (credential_id);

-- Access and refresh tokens, stored as the SHA-256 of the token. A refresh token used once is
-- `superseded_at`; presenting it again revokes its grant.
CREATE TABLE indieauth_token (
    token_hash BLOB PRIMARY KEY,
    grant_id TEXT NOT NULL REFERENCES indieauth_grant (id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('access', 'refresh')),
    scope TEXT NOT NULL,
    issued_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    superseded_at INTEGER
) STRICT;
CREATE INDEX indieauth_token_grant ON indieauth_token (grant_id);

-- The owner's profile as set on /account (name, photo, email, note, rel=me links), one JSON
-- object; without a row, the profile in config.toml is shown.
CREATE TABLE profile (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    document TEXT NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;
