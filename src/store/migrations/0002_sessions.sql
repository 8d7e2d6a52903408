-- Signed-in sessions. The bearer token is stored only as its SHA-256; a revoked or expired
-- session is deleted (the audit log keeps its history).
CREATE TABLE session (
    id TEXT PRIMARY KEY,
    token_hash BLOB NOT NULL UNIQUE CHECK (length(token_hash) = 32),
    kid TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    fresh_until INTEGER NOT NULL DEFAULT 0,
    ip TEXT NOT NULL,
    user_agent TEXT
) STRICT;

-- Failed sign-ins, for the per-client throttle. Rows older than the window are pruned.
CREATE TABLE login_failure (
    id INTEGER PRIMARY KEY,
    ip TEXT NOT NULL,
    at INTEGER NOT NULL
) STRICT;
CREATE INDEX login_failure_by_ip ON login_failure (ip, at);
