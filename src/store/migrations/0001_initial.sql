-- The owner's identity: one row at most. The private key is stored only wrapped (a PBES2 JWE);
-- the unlock verifier only as its SHA-256.
CREATE TABLE owner (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    kid TEXT NOT NULL,
    public_jwk TEXT NOT NULL,
    wrapped_key TEXT NOT NULL,
    verifier_hash BLOB NOT NULL CHECK (length(verifier_hash) = 32),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

-- The one-time claim token of an unclaimed node. Deleted by the claim.
CREATE TABLE claim_token (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    token TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

-- Failed password unlocks, for the sliding-window throttle. Rows older than a day are pruned.
CREATE TABLE unlock_failure (
    id INTEGER PRIMARY KEY,
    ip TEXT NOT NULL,
    at INTEGER NOT NULL
) STRICT;
CREATE INDEX unlock_failure_by_ip ON unlock_failure (ip, at);
CREATE INDEX unlock_failure_by_time ON unlock_failure (at);

-- The hash-chained audit log. seq has no gaps; hash covers prev_hash and every column.
CREATE TABLE audit_log (
    seq INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    event TEXT NOT NULL,
    ip TEXT,
    user_agent TEXT,
    detail TEXT NOT NULL,
    prev_hash BLOB NOT NULL,
    hash BLOB NOT NULL
) STRICT;

-- Small named values, such as the audit chain head (which catches deleted tail entries).
CREATE TABLE meta (
    name TEXT PRIMARY KEY,
    value BLOB NOT NULL
) STRICT;
