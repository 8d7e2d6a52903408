-- The encrypted inbox (issue 14).
--
-- The owner key's credential and its live sessions gain capability `inbox` (the owner key holds
-- every capability, in the canonical order).
UPDATE credential
SET capabilities = '["session","sessions","audit","credentials","recovery","owner","inbox"]'
WHERE kind = 'owner';
UPDATE session
SET capabilities = '["session","sessions","audit","credentials","recovery","owner","inbox"]'
WHERE capabilities = '["session","sessions","audit","credentials","recovery","owner"]';

-- The owner's encryption keys (P-384, ECDH-ES+A256KW), made in the browser. Each private key is
-- kept only wrapped (a compact A256KW JWE under a key the owner key derives; the node cannot open
-- it) and bound by the current owner key (`siteid-enc-key+jwt`). The current key has no
-- `retired_at`; older ones stay for reading old messages, and receive messages until
-- `receives_until` (a grace for senders with an old JWKS; none after a compromise).
CREATE TABLE encryption_key (
    kid TEXT PRIMARY KEY,
    public_jwk TEXT NOT NULL,
    wrapped_key TEXT NOT NULL,
    binding TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    retired_at INTEGER,
    receives_until INTEGER
) STRICT;
CREATE UNIQUE INDEX encryption_key_current ON encryption_key ((retired_at IS NULL))
    WHERE retired_at IS NULL;

-- Messages as received: the JWE text exactly as sent (compact, or general JSON), never opened.
-- Listed newest first by rowid (the order they were stored in).
CREATE TABLE inbox_message (
    id TEXT PRIMARY KEY,
    kid TEXT NOT NULL,
    jwe TEXT NOT NULL,
    size INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    read_at INTEGER
) STRICT;
-- The storage cap sums sizes on every message received: from this index, not the rows.
CREATE INDEX inbox_message_size ON inbox_message (size);
