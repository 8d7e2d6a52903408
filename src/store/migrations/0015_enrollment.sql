-- Pairing (issue 16): enrollment requests that wait for a device's approval. The enrollment
-- mode and the window live in `meta` (`enrollment_mode`, `enrollment_window`).
CREATE TABLE enrollment_request (
    id TEXT PRIMARY KEY,
    kid TEXT NOT NULL,
    kind TEXT NOT NULL,
    label TEXT NOT NULL,
    public_key TEXT NOT NULL,
    alg TEXT NOT NULL,
    node_nonce TEXT NOT NULL,
    ip TEXT NOT NULL,
    user_agent TEXT,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'expired')),
    answered_at INTEGER,
    answered_by TEXT
) STRICT;
CREATE INDEX enrollment_request_pending ON enrollment_request (status, expires_at);
