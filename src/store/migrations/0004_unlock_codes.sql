-- One-time unlock codes: minted by a signed-in device or on the server, they let one password
-- unlock past the network and node-wide throttle windows. Only the SHA-256 of a code is kept.
CREATE TABLE unlock_code (
    id TEXT PRIMARY KEY,
    code_hash BLOB NOT NULL UNIQUE CHECK (length(code_hash) = 32),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    session_id TEXT
) STRICT;

-- Pruning and loading failed sign-ins scan by time.
CREATE INDEX login_failure_by_time ON login_failure (at);
