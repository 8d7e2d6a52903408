-- TOTP as a second factor on password unlock (issue 13). One settings row while it is on: the
-- secret sealed under the node's sealing key (the file sealing.key beside the database, never in
-- it), the secret's public id (SHA-256 over a random salt and the secret, kept with the salt),
-- the last time step a code was accepted at (a code works once), and when it was turned on.
-- A pending row holds a secret being set up, until one of its codes confirms it.
CREATE TABLE totp (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    sealed_secret BLOB NOT NULL,
    secret_id TEXT NOT NULL,
    secret_salt BLOB NOT NULL CHECK (length(secret_salt) = 16),
    last_used_step INTEGER,
    enabled_at INTEGER NOT NULL
) STRICT;
CREATE TABLE totp_pending (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    sealed_secret BLOB NOT NULL,
    secret_id TEXT NOT NULL,
    secret_salt BLOB NOT NULL CHECK (length(secret_salt) = 16),
    created_at INTEGER NOT NULL
) STRICT;
-- Single-use recovery codes: only the SHA-256 of each code; a used code's row is deleted.
CREATE TABLE totp_recovery_code (
    code_hash BLOB PRIMARY KEY CHECK (length(code_hash) = 32),
    created_at INTEGER NOT NULL
) STRICT;
